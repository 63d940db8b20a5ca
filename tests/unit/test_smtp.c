/* mailmill - ISC licence, see LICENSE */
/*
 * SMTP client: the reply parser and the DATA encoder fed in odd chunks, then
 * whole dialogues against a scripted server forked on a socketpair.
 */
#include <config.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto/b64.h"
#include "proto/smtp.h"
#include "tests/unit/script_server.h"
#include "tests/unit/tls_relay.h"

/* ------------------------------------------------------------ reply parser */

struct reply_case {
	const char *in;
	size_t in_len;       /* 0: strlen(in) */
	int want;            /* 1 or -1 */
	int code;
	const char *enhanced;
	const char *text;
	size_t nlines;
};

static const struct reply_case reply_cases[] = {
	{ "250 OK\r\n", 0, 1, 250, "", "OK", 1 },
	{ "220 bare LF\n", 0, 1, 220, "", "bare LF", 1 },
	{ "250\r\n", 0, 1, 250, "", "", 1 },
	{ "250-mx.example.org\r\n250-PIPELINING\r\n250 SIZE 1000\r\n", 0, 1, 250, "",
	  "mx.example.org\nPIPELINING\nSIZE 1000", 3 },
	{ "550 5.1.1 <bob@x>: user unknown\r\n", 0, 1, 550, "5.1.1", "<bob@x>: user unknown", 1 },
	{ "451-4.3.0 first\r\n451 4.3.0 second\r\n", 0, 1, 451, "4.3.0", "first\nsecond", 2 },
	{ "250 2.0.0\r\n", 0, 1, 250, "2.0.0", "", 1 },
	{ "553 5.1.10 three-digit detail\r\n", 0, 1, 553, "5.1.10", "three-digit detail", 1 },
	/* a status of another class is text, not a status */
	{ "250 5.1.1 odd\r\n", 0, 1, 250, "", "5.1.1 odd", 1 },
	{ "550 5.1234.1 too long\r\n", 0, 1, 550, "", "5.1234.1 too long", 1 },
	{ "550 5.1.1x no space\r\n", 0, 1, 550, "", "5.1.1x no space", 1 },
	{ "250-a\r\n251 b\r\n", 0, -1, 0, NULL, NULL, 0 },   /* codes differ */
	{ "hello\r\n", 0, -1, 0, NULL, NULL, 0 },
	{ "25x ok\r\n", 0, -1, 0, NULL, NULL, 0 },
	{ "250_ok\r\n", 0, -1, 0, NULL, NULL, 0 },
	{ "600 big\r\n", 0, -1, 0, NULL, NULL, 0 },
	{ "199 small\r\n", 0, -1, 0, NULL, NULL, 0 },
	{ "260 bad second digit\r\n", 0, -1, 0, NULL, NULL, 0 },
	{ "25\r\n", 0, -1, 0, NULL, NULL, 0 },
	{ "\r\n", 0, -1, 0, NULL, NULL, 0 },
	{ "250 a\0b\r\n", 9, -1, 0, NULL, NULL, 0 },
	/* max_line is 64 in these tests: 64 bytes pass, 65 do not */
	{ "250 123456789012345678901234567890123456789012345678901234567890\r\n", 0, 1, 250, "",
	  "123456789012345678901234567890123456789012345678901234567890", 1 },
	{ "250 1234567890123456789012345678901234567890123456789012345678901\r\n", 0, -1, 0,
	  NULL, NULL, 0 },
	/* at most 4 lines */
	{ "250-1\r\n250-2\r\n250-3\r\n250 4\r\n", 0, 1, 250, "", "1\n2\n3\n4", 4 },
	{ "250-1\r\n250-2\r\n250-3\r\n250-4\r\n250 5\r\n", 0, -1, 0, NULL, NULL, 0 },
};

/* Feed in chunks of `chunk` bytes (0: all at once); the result and the reply. */
static int
feed(const char *in, size_t len, size_t chunk, smtp_reply *r, size_t *consumed)
{
	smtp_reply_parser p;
	const char *why = NULL;
	size_t off = 0;
	int res = 0;

	assert_int_equal(smtp_reply_parser_init(&p, 64, 4), 0);
	while (off < len) {
		size_t n = chunk == 0 || len - off < chunk ? len - off : chunk, used;

		res = smtp_reply_parse(&p, in + off, n, &used, r, &why);
		assert_true(used <= n);
		off += used;
		if (res != 0)
			break;
		assert_int_equal(used, n);
	}
	if (res < 0)
		assert_non_null(why);
	*consumed = off;
	smtp_reply_parser_free(&p);
	return res;
}

static void
test_reply_table(void **state)
{
	static const size_t chunks[] = { 0, 1, 2, 5 };
	size_t i, c;

	for (i = 0; i < sizeof(reply_cases) / sizeof(reply_cases[0]); i++) {
		const struct reply_case *rc = &reply_cases[i];
		size_t len = rc->in_len != 0 ? rc->in_len : strlen(rc->in);

		for (c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
			smtp_reply r = { 0 };
			size_t used;
			int res = feed(rc->in, len, chunks[c], &r, &used);

			if (res != rc->want)
				fail_msg("case %zu chunk %zu: got %d, want %d", i, chunks[c], res,
					 rc->want);
			if (res == 1) {
				assert_int_equal(used, len);
				assert_int_equal(r.code, rc->code);
				assert_string_equal(r.enhanced, rc->enhanced);
				assert_string_equal(r.text, rc->text);
				assert_int_equal(r.nlines, rc->nlines);
			}
			smtp_reply_clear(&r);
		}
	}
}

/* Two replies in one buffer: the first stops where it ends. */
static void
test_reply_two_in_one(void **state)
{
	const char in[] = "250-a\r\n250 b\r\n354 go ahead\r\n";
	smtp_reply_parser p;
	smtp_reply r = { 0 };
	const char *why;
	size_t used;

	assert_int_equal(smtp_reply_parser_init(&p, 0, 0), 0);
	assert_int_equal(smtp_reply_parse(&p, in, sizeof(in) - 1, &used, &r, &why), 1);
	assert_int_equal(used, 14);
	assert_string_equal(r.text, "a\nb");
	smtp_reply_clear(&r);
	assert_int_equal(smtp_reply_parse(&p, in + used, sizeof(in) - 1 - used, &used, &r, &why),
			 1);
	assert_int_equal(r.code, 354);
	assert_string_equal(r.text, "go ahead");
	smtp_reply_clear(&r);
	/* after an error the parser stays failed */
	assert_int_equal(smtp_reply_parse_line(&p, "xyz", 3, &r, &why), -1);
	assert_int_equal(smtp_reply_parse_line(&p, "250 ok", 6, &r, &why), -1);
	smtp_reply_parser_free(&p);
}

static void
test_enhanced(void **state)
{
	assert_int_equal(smtp_parse_enhanced("2.0.0", 5), 5);
	assert_int_equal(smtp_parse_enhanced("4.7.1 x", 7), 5);
	assert_int_equal(smtp_parse_enhanced("5.123.123 x", 11), 9);
	assert_int_equal(smtp_parse_enhanced("3.0.0", 5), 0);
	assert_int_equal(smtp_parse_enhanced("5.0", 3), 0);
	assert_int_equal(smtp_parse_enhanced("5..0", 4), 0);
	assert_int_equal(smtp_parse_enhanced("5.0.0.0", 7), 0);
	assert_int_equal(smtp_parse_enhanced("x.0.0", 5), 0);
}

/* ------------------------------------------------------------ DATA encoder */

struct enc_case {
	const char *in;
	const char *out;
};

static const struct enc_case enc_cases[] = {
	{ "", ".\r\n" },
	{ "a\nb\n", "a\r\nb\r\n.\r\n" },
	{ "a\nb", "a\r\nb\r\n.\r\n" },
	{ ".\n", "..\r\n.\r\n" },
	{ "..x\n.y\n", "...x\r\n..y\r\n.\r\n" },
	{ "x.\n.\n\n.\n", "x.\r\n..\r\n\r\n..\r\n.\r\n" },
	{ "a\r\n.b\r\n", "a\r\n..b\r\n.\r\n" },
	{ "a\rb\n", "a\r\nb\r\n.\r\n" },
	{ "\n\n", "\r\n\r\n.\r\n" },
	{ ".", "..\r\n.\r\n" },
	/* a smuggled end of data stays data */
	{ "a\n.\r\nMAIL FROM:<x>\n", "a\r\n..\r\nMAIL FROM:<x>\r\n.\r\n" },
	{ "8bit \xc3\xa9\n", "8bit \xc3\xa9\r\n.\r\n" },
};

static int
emit_buf(void *arg, const char *data, size_t len)
{
	char *out = arg;
	size_t have = strlen(out);

	if (have + len >= 256)
		return -1;
	memcpy(out + have, data, len);
	out[have + len] = '\0';
	return 0;
}

/* Growing output buffer for the long-line cases. */
struct outbuf {
	char *p;
	size_t len, cap;
};

static int
emit_grow(void *arg, const char *data, size_t len)
{
	struct outbuf *o = arg;

	if (o->len + len + 1 > o->cap) {
		size_t cap = (o->len + len + 1) * 2;
		char *p = realloc(o->p, cap);

		if (p == NULL)
			return -1;
		o->p = p;
		o->cap = cap;
	}
	memcpy(o->p + o->len, data, len);
	o->len += len;
	o->p[o->len] = '\0';
	return 0;
}

/* in encoded with chunks of `chunk` bytes (0: at once); free the result. */
static char *
encode_all(const char *in, size_t chunk)
{
	struct outbuf out = { NULL, 0, 0 };
	size_t len = strlen(in), off = 0;
	smtp_data_enc e;

	assert_int_equal(emit_grow(&out, "", 0), 0);
	smtp_data_init(&e);
	while (off < len) {
		size_t n = chunk == 0 || len - off < chunk ? len - off : chunk;

		assert_int_equal(smtp_data_encode(&e, in + off, n, emit_grow, &out), 0);
		off += n;
	}
	assert_int_equal(smtp_data_finish(&e, emit_grow, &out), 0);
	assert_int_equal(e.out, out.len);
	assert_int_equal(smtp_data_wire_size(in, len), out.len);
	return out.p;
}

/* A run of n copies of c, in a static buffer of its own (slot 0..3). */
static const char *
run_of(int slot, size_t n, char c)
{
	static char bufs[4][2600];

	assert_true(n < sizeof(bufs[0]));
	memset(bufs[slot], c, n);
	bufs[slot][n] = '\0';
	return bufs[slot];
}

/* RFC 5321 4.5.3.1.6: no wire line over 998 octets; longer ones are folded
 * with CRLF SPACE, the dot-stuffing dot counting as part of the line. */
static void
test_data_encoder_long_lines(void **state)
{
	static const size_t chunks[] = { 0, 1, 7, 998 };
	const char *x998 = run_of(0, 998, 'x'), *x999 = run_of(1, 999, 'x');
	const char *y2500 = run_of(2, 2500, 'y'), *z997 = run_of(3, 997, 'z');
	static char in[5][8192], want[5][8192];
	size_t i, c;

	snprintf(in[0], sizeof(in[0]), "%s\n", x998);
	snprintf(want[0], sizeof(want[0]), "%s\r\n.\r\n", x998);
	snprintf(in[1], sizeof(in[1]), "%s\n", x999);
	snprintf(want[1], sizeof(want[1]), "%s\r\n x\r\n.\r\n", x998);
	snprintf(in[2], sizeof(in[2]), "a\n%s\nb", y2500);
	snprintf(want[2], sizeof(want[2]), "a\r\n%.998s\r\n %.997s\r\n %s\r\nb\r\n.\r\n",
		 y2500, y2500, y2500 + 998 + 997);
	/* "." + 998 bytes: 1000 on the wire after stuffing, folded after 998 */
	snprintf(in[3], sizeof(in[3]), ".%s\n", x998);
	snprintf(want[3], sizeof(want[3]), "..%.996s\r\n xx\r\n.\r\n", x998);
	/* a CRLF right at the limit is a line end, not a fold */
	snprintf(in[4], sizeof(in[4]), "%s\r\n.%.996s\r\n%s", x998, z997, z997);
	snprintf(want[4], sizeof(want[4]), "%s\r\n..%.996s\r\n%s\r\n.\r\n", x998, z997, z997);
	for (i = 0; i < 5; i++) {
		for (c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
			char *got = encode_all(in[i], chunks[c]);

			if (strcmp(got, want[i]) != 0)
				fail_msg("long case %zu chunk %zu: got %zu bytes, want %zu", i,
					 chunks[c], strlen(got), strlen(want[i]));
			free(got);
		}
	}
}

static void
test_data_encoder(void **state)
{
	static const size_t chunks[] = { 0, 1, 2, 5 };
	size_t i, c;

	for (i = 0; i < sizeof(enc_cases) / sizeof(enc_cases[0]); i++) {
		const char *in = enc_cases[i].in;
		size_t len = strlen(in);

		assert_int_equal(smtp_data_wire_size(in, len), strlen(enc_cases[i].out));
		for (c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
			char out[256] = "";
			smtp_data_enc e;
			size_t off = 0;

			smtp_data_init(&e);
			while (off < len) {
				size_t n = chunks[c] == 0 || len - off < chunks[c] ? len - off
										  : chunks[c];

				assert_int_equal(smtp_data_encode(&e, in + off, n, emit_buf, out), 0);
				off += n;
			}
			assert_int_equal(smtp_data_finish(&e, emit_buf, out), 0);
			if (strcmp(out, enc_cases[i].out) != 0)
				fail_msg("case %zu chunk %zu: got \"%s\"", i, chunks[c], out);
			assert_int_equal(e.out, strlen(out));
		}
	}
}

/* ------------------------------------ scripted server (tests/unit/script_server.h) */

static smtp_options
test_options(void)
{
	smtp_options o;

	memset(&o, 0, sizeof(o));
	o.helo = "client.test";
	o.command_timeout_ms = 3000;
	o.data_end_timeout_ms = 3000;
	return o;
}

/* Collects the trace into one string ("C: ...\n", "S: ...\n"). */
static void
trace_collect(void *arg, char dir, const char *line, size_t len)
{
	char *t = arg;
	size_t have = strlen(t);

	if (have + len + 4 < 8192) {
		snprintf(t + have, 8192 - have, "%c: %.*s\n", dir, (int)len, line);
	}
}

#define MSG1 "Subject: t\n\n.dot\nbody\n"
#define MSG1_WIRE "Subject: t\r\n\r\n..dot\r\nbody\r\n"  /* + ".\r\n": 30 bytes */

/* PIPELINING: MAIL, both RCPTs and DATA in one go; one recipient refused. */
static void
test_pipelined_one_refused(void **state)
{
	static const char *const script[] = {
		">220 fake ESMTP\r\n",
		"<EHLO client.test",
		">250-fake greets client.test\r\n250-PIPELINING\r\n250-SIZE 100000\r\n"
		"250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n",
		/* all four arrive before any reply is sent: no reply, no progress */
		"<MAIL FROM:<a@x.test> SIZE=30",
		"<RCPT TO:<b@x.test>",
		"<RCPT TO:<c@x.test>",
		"<DATA",
		">250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n354 go ahead\r\n",
		"D" MSG1_WIRE,
		">250 2.0.0 queued as X1\r\n",
		/* the same connection carries a second message: 8-bit, DSN not offered */
		"<MAIL FROM:<> SIZE=14 BODY=8BITMIME",
		"<RCPT TO:<b@x.test>",
		"<DATA",
		">250 ok\r\n250 ok\r\n354 go\r\n",
		"Dcaf\xc3\xa9\r\n..\r\n",
		">250 2.0.0 queued as X2\r\n",
		"<QUIT",
		">221 2.0.0 bye\r\n",
		NULL
	};
	const char *rcpts[] = { "b@x.test", "c@x.test" };
	const char *mail_opts[] = { "RET=HDRS", "ENVID=abc", NULL };
	const char *rcpt_opts[] = { "NOTIFY=NEVER", NULL };
	smtp_options o = test_options();
	smtp_rcpt_result res[2];
	smtp_session *s = NULL;
	char *err = NULL;
	script_server sv = script_server_start(script);

	assert_int_equal(smtp_from_fd(sv.fd, &o, &s, &err), SMTP_OK);
	assert_string_equal(smtp_greeting(s), "fake ESMTP");
	assert_true(smtp_has_ext(s, "pipelining"));
	assert_int_equal(smtp_max_size(s), 100000);
	assert_false(smtp_has_ext(s, "DSN"));

	assert_int_equal(smtp_sendmail(s, "a@x.test", rcpts, 2, MSG1, strlen(MSG1), NULL, NULL,
				       res, &err), SMTP_OK);
	assert_int_equal(res[0].status, SMTP_OK);
	assert_int_equal(res[0].code, 250);
	assert_string_equal(res[0].enhanced, "2.0.0");
	assert_string_equal(res[0].text, "queued as X1");
	assert_int_equal(res[1].status, SMTP_EPERM);
	assert_int_equal(res[1].code, 550);
	assert_string_equal(res[1].enhanced, "5.1.1");
	assert_string_equal(res[1].text, "no such user");
	smtp_results_clear(res, 2);

	assert_int_equal(smtp_sendmail(s, "", rcpts, 1, "caf\xc3\xa9\n.\n", 8, mail_opts,
				       rcpt_opts, res, &err), SMTP_OK);
	assert_int_equal(res[0].status, SMTP_OK);
	assert_string_equal(res[0].text, "queued as X2");
	smtp_results_clear(res, 1);
	assert_int_equal(smtp_quit(s, &err), SMTP_OK);
	smtp_close(&s);
	script_server_finish(&sv);
}

/* No PIPELINING: one command at a time; 4xx at MAIL, then 5xx at end of data. */
static void
test_mail_4xx_then_data_5xx(void **state)
{
	static const char *const script[] = {
		">220 fake\r\n",
		"<EHLO client.test",
		">250-fake\r\n250-SIZE\r\n250 DSN\r\n",
		"<MAIL FROM:<a@x.test> SIZE=30 RET=HDRS",
		">451 4.3.0 try again later\r\n",
		"<RSET",
		">250 ok\r\n",
		"<MAIL FROM:<a@x.test> SIZE=30 RET=HDRS",
		">250 ok\r\n",
		"<RCPT TO:<b@x.test> NOTIFY=NEVER",
		">250 ok\r\n",
		"<DATA",
		">354 go\r\n",
		"D" MSG1_WIRE,
		">554 5.6.0 content rejected\r\n",
		"<NOOP",
		">250 ok\r\n",
		"<QUIT",
		">221 bye\r\n",
		NULL
	};
	const char *rcpts[] = { "b@x.test" };
	const char *mail_opts[] = { "RET=HDRS", NULL };
	const char *rcpt_opts[] = { "NOTIFY=NEVER", NULL };
	smtp_options o = test_options();
	smtp_rcpt_result res[1];
	smtp_session *s = NULL;
	char *err = NULL;
	script_server sv = script_server_start(script);

	assert_int_equal(smtp_from_fd(sv.fd, &o, &s, &err), SMTP_OK);
	assert_int_equal(smtp_max_size(s), 0);
	assert_int_equal(smtp_sendmail(s, "a@x.test", rcpts, 1, MSG1, strlen(MSG1), mail_opts,
				       rcpt_opts, res, &err), SMTP_ETEMP);
	assert_non_null(err);
	assert_non_null(strstr(err, "451 4.3.0 try again later"));
	free(err);
	err = NULL;
	assert_int_equal(res[0].status, SMTP_ETEMP);
	assert_int_equal(res[0].code, 451);
	assert_int_equal(smtp_last_reply(s)->code, 451);
	assert_true(smtp_usable(s));
	smtp_results_clear(res, 1);

	assert_int_equal(smtp_sendmail(s, "a@x.test", rcpts, 1, MSG1, strlen(MSG1), mail_opts,
				       rcpt_opts, res, &err), SMTP_EPERM);
	free(err);
	err = NULL;
	assert_int_equal(res[0].status, SMTP_EPERM);
	assert_int_equal(res[0].code, 554);
	assert_string_equal(res[0].enhanced, "5.6.0");
	assert_string_equal(smtp_last_reply(s)->text, "content rejected");
	smtp_results_clear(res, 1);
	assert_int_equal(smtp_noop(s, &err), SMTP_OK);
	assert_int_equal(smtp_quit(s, &err), SMTP_OK);
	smtp_close(&s);
	script_server_finish(&sv);
}

/* SIZE: an oversized message is refused before MAIL; HELO when EHLO is unknown. */
static void
test_size_refusal(void **state)
{
	static const char *const script[] = {
		">220 fake\r\n",
		"<EHLO client.test",
		">250-fake\r\n250 SIZE 29\r\n",
		"<QUIT",
		">221 bye\r\n",
		NULL
	};
	const char *rcpts[] = { "b@x.test" };
	smtp_options o = test_options();
	smtp_session *s = NULL;
	char *err = NULL;
	script_server sv = script_server_start(script);

	assert_int_equal(smtp_from_fd(sv.fd, &o, &s, &err), SMTP_OK);
	assert_int_equal(smtp_sendmail(s, "a@x.test", rcpts, 1, MSG1, strlen(MSG1), NULL, NULL,
				       NULL, &err), SMTP_ETOOBIG);
	assert_non_null(strstr(err, "30 bytes"));
	free(err);
	err = NULL;
	assert_true(smtp_usable(s));
	assert_int_equal(smtp_quit(s, &err), SMTP_OK);
	smtp_close(&s);
	script_server_finish(&sv);
}

static void
test_helo_fallback(void **state)
{
	static const char *const script[] = {
		">220 old server\r\n",
		"<EHLO client.test",
		">502 5.5.2 command not recognized\r\n",
		"<HELO client.test",
		">250 old server\r\n",
		"<MAIL FROM:<a@x.test>",
		">250 ok\r\n",
		"<RCPT TO:<b@x.test>",
		">550 no\r\n",
		"<RCPT TO:<c@x.test>",
		">450 later\r\n",
		/* nobody to send to: no DATA */
		"<RSET",
		">250 ok\r\n",
		"E",
		NULL
	};
	const char *rcpts[] = { "b@x.test", "c@x.test" };
	smtp_options o = test_options();
	smtp_rcpt_result res[2];
	smtp_session *s = NULL;
	char *err = NULL;
	script_server sv = script_server_start(script);

	assert_int_equal(smtp_from_fd(sv.fd, &o, &s, &err), SMTP_OK);
	assert_false(smtp_has_ext(s, "SIZE"));
	assert_int_equal(smtp_sendmail(s, "a@x.test", rcpts, 2, MSG1, strlen(MSG1), NULL, NULL,
				       res, &err), SMTP_ETEMP);
	free(err);
	assert_int_equal(res[0].status, SMTP_EPERM);
	assert_int_equal(res[1].status, SMTP_ETEMP);
	assert_int_equal(res[1].code, 450);
	smtp_results_clear(res, 2);
	smtp_close(&s);
	script_server_finish(&sv);
}

/* The trace never shows AUTH data, PLAIN or LOGIN. */
static void
test_auth_trace_redacted(void **state)
{
	static const char *const script[] = {
		">220 fake\r\n",
		"<EHLO client.test",
		">250-fake\r\n250 AUTH LOGIN PLAIN\r\n",
		"<AUTH PLAIN AHVzZXIxAHNlY3JldA==",
		">235 2.7.0 ok\r\n",
		"<AUTH LOGIN",
		">334 VXNlcm5hbWU6\r\n",
		"<dXNlcjE=",
		">334 UGFzc3dvcmQ6\r\n",
		"<c2VjcmV0",
		">535 5.7.8 bad credentials\r\n",
		"<QUIT",
		">221 bye\r\n",
		NULL
	};
	static char tr[8192];
	smtp_options o = test_options();
	smtp_session *s = NULL;
	char *err = NULL;
	script_server sv;

	/* without TLS nothing is sent unless the caller allows it */
	o.allow_plaintext_auth = 0;
	sv = script_server_start(script);
	assert_int_equal(smtp_from_fd(sv.fd, &o, &s, &err), SMTP_OK);
	assert_int_equal(smtp_auth(s, "PLAIN", "user1", "secret", &err), SMTP_EUSAGE);
	free(err);
	err = NULL;
	/* and no AUTH the server did not offer */
	assert_int_equal(smtp_auth(s, "CRAM-MD5", "user1", "secret", &err), SMTP_EUSAGE);
	free(err);
	err = NULL;
	smtp_close(&s);
	kill(sv.pid, SIGTERM);
	waitpid(sv.pid, NULL, 0);

	o.allow_plaintext_auth = 1;
	tr[0] = '\0';
	sv = script_server_start(script);
	assert_int_equal(smtp_from_fd(sv.fd, &o, &s, &err), SMTP_OK);
	smtp_set_trace(s, trace_collect, tr);
	assert_true(smtp_has_auth(s, "plain"));
	assert_int_equal(smtp_auth(s, "PLAIN", "user1", "secret", &err), SMTP_OK);
	assert_int_equal(smtp_auth(s, "LOGIN", "user1", "secret", &err), SMTP_EAUTH);
	assert_non_null(strstr(err, "535"));
	free(err);
	err = NULL;
	assert_true(smtp_usable(s));
	assert_int_equal(smtp_quit(s, &err), SMTP_OK);
	smtp_close(&s);
	script_server_finish(&sv);

	assert_non_null(strstr(tr, "C: AUTH PLAIN <redacted>\n"));
	assert_non_null(strstr(tr, "C: AUTH LOGIN\n"));
	assert_non_null(strstr(tr, "S: 334 UGFzc3dvcmQ6\n"));
	assert_null(strstr(tr, "AHVzZXIxAHNlY3JldA"));
	assert_null(strstr(tr, "dXNlcjE"));
	assert_null(strstr(tr, "c2VjcmV0"));
	assert_null(strstr(tr, "secret"));
}

/* With tls = starttls, a server without STARTTLS gets nothing more. */
static void
test_starttls_required(void **state)
{
	static const char *const script[] = {
		">220 fake\r\n",
		"<EHLO client.test",
		">250-fake\r\n250 AUTH PLAIN\r\n",
		"E",
		NULL
	};
	smtp_options o = test_options();
	smtp_session *s = NULL;
	char *err = NULL;
	script_server sv = script_server_start(script);

	o.tls = SMTP_TLS_STARTTLS;
	o.host = "localhost";
	assert_int_equal(smtp_from_fd(sv.fd, &o, &s, &err), SMTP_ETLS);
	assert_null(s);
	assert_non_null(strstr(err, "STARTTLS"));
	free(err);
	script_server_finish(&sv);
}

/* Plain text after the go-ahead is an injection: nothing more is sent. */
static void
test_starttls_injection(void **state)
{
	static const char *const script[] = {
		">220 fake\r\n",
		"<EHLO client.test",
		">250-fake\r\n250 STARTTLS\r\n",
		"<STARTTLS",
		">220 go ahead\r\n250-injected\r\n250 AUTH PLAIN\r\n",
		"E",
		NULL
	};
	smtp_options o = test_options();
	smtp_session *s = NULL;
	char *err = NULL;
	script_server sv = script_server_start(script);

	o.tls = SMTP_TLS_STARTTLS;
	o.host = "localhost";
	assert_int_equal(smtp_from_fd(sv.fd, &o, &s, &err), SMTP_ETLS);
	assert_non_null(strstr(err, "injection"));
	free(err);
	script_server_finish(&sv);
}

/* The connection drops after the final dot: outcome unknown, not a failure. */
static void
test_lost_after_dot(void **state)
{
	static const char *const script[] = {
		">220 fake\r\n",
		"<EHLO client.test",
		">250 fake\r\n",
		"<MAIL FROM:<a@x.test>",
		">250 ok\r\n",
		"<RCPT TO:<b@x.test>",
		">250 ok\r\n",
		"<DATA",
		">354 go\r\n",
		"D" MSG1_WIRE,
		"X",
		NULL
	};
	const char *rcpts[] = { "b@x.test" };
	smtp_options o = test_options();
	smtp_rcpt_result res[1];
	smtp_session *s = NULL;
	char *err = NULL;
	script_server sv = script_server_start(script);

	assert_int_equal(smtp_from_fd(sv.fd, &o, &s, &err), SMTP_OK);
	assert_int_equal(smtp_sendmail(s, "a@x.test", rcpts, 1, MSG1, strlen(MSG1), NULL, NULL,
				       res, &err), SMTP_EUNKNOWN);
	assert_non_null(strstr(err, "outcome unknown"));
	free(err);
	err = NULL;
	/* the RCPT's 250 does not make it sent: only the end of data's would */
	assert_int_equal(res[0].status, SMTP_EUNKNOWN);
	assert_false(smtp_usable(s));
	assert_true(smtp_status_is_temporary(SMTP_EUNKNOWN));
	assert_int_equal(smtp_noop(s, &err), SMTP_EIO);
	free(err);
	smtp_results_clear(res, 1);
	smtp_close(&s);
	script_server_finish(&sv);
}

/*
 * PIPELINING, two recipients taken and one refused at RCPT, then after the
 * final dot: the connection closed, no reply before the deadline, or a reset
 * (RST).  The outcome is unknown for each recipient the server took, the
 * refusal stays a refusal, and the session is over (RFC 1047).
 */
static void
test_unknown_after_dot(void **state)
{
	static const char *const ends[] = { "X", "H", "R" };
	size_t k;

	for (k = 0; k < sizeof(ends) / sizeof(ends[0]); k++) {
		const char *const script[] = {
			">220 fake\r\n",
			"<EHLO client.test",
			">250-fake\r\n250 PIPELINING\r\n",
			"<MAIL FROM:<a@x.test>",
			"<RCPT TO:<b@x.test>",
			"<RCPT TO:<c@x.test>",
			"<RCPT TO:<d@x.test>",
			"<DATA",
			">250 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n250 2.1.5 ok\r\n354 go\r\n",
			"D" MSG1_WIRE,
			ends[k],
			NULL
		};
		const char *rcpts[] = { "b@x.test", "c@x.test", "d@x.test" };
		smtp_options o = test_options();
		smtp_rcpt_result res[3];
		smtp_session *s = NULL;
		char *err = NULL;
		script_server sv;

		o.data_end_timeout_ms = 300;  /* "H": the reply never comes */
		sv = script_server_start_tcp(script);
		assert_int_equal(smtp_from_fd(sv.fd, &o, &s, &err), SMTP_OK);
		assert_int_equal(smtp_sendmail(s, "a@x.test", rcpts, 3, MSG1, strlen(MSG1), NULL,
					       NULL, res, &err), SMTP_EUNKNOWN);
		if (strstr(err, "outcome unknown") == NULL)
			fail_msg("end \"%s\": %s", ends[k], err);
		free(err);
		err = NULL;
		if (res[0].status != SMTP_EUNKNOWN || res[2].status != SMTP_EUNKNOWN)
			fail_msg("end \"%s\": recipients %s and %s, want unknown", ends[k],
				 smtp_status_name(res[0].status), smtp_status_name(res[2].status));
		assert_int_equal(res[1].status, SMTP_EPERM);
		assert_int_equal(res[1].code, 550);
		assert_false(smtp_usable(s));
		assert_int_equal(smtp_sendmail(s, "a@x.test", rcpts, 1, MSG1, strlen(MSG1), NULL,
					       NULL, NULL, &err), SMTP_EIO);
		free(err);
		smtp_results_clear(res, 3);
		smtp_close(&s);
		script_server_finish(&sv);
	}
}

/* The connection lost among pipelined replies, before DATA: nothing was sent,
 * so a RCPT's 250 must not read as "sent" (the caller would drop it). */
static void
test_lost_before_data(void **state)
{
	static const char *const script[] = {
		">220 fake\r\n",
		"<EHLO client.test",
		">250-fake\r\n250 PIPELINING\r\n",
		"<MAIL FROM:<a@x.test>",
		"<RCPT TO:<b@x.test>",
		"<RCPT TO:<c@x.test>",
		"<DATA",
		">250 ok\r\n250 2.1.5 ok\r\n",
		"X",
		NULL
	};
	const char *rcpts[] = { "b@x.test", "c@x.test" };
	smtp_options o = test_options();
	smtp_rcpt_result res[2];
	smtp_session *s = NULL;
	char *err = NULL;
	script_server sv = script_server_start(script);

	assert_int_equal(smtp_from_fd(sv.fd, &o, &s, &err), SMTP_OK);
	assert_int_equal(smtp_sendmail(s, "a@x.test", rcpts, 2, MSG1, strlen(MSG1), NULL, NULL,
				       res, &err), SMTP_EIO);
	free(err);
	assert_int_equal(res[0].status, SMTP_EIO);
	assert_int_equal(res[1].status, SMTP_EIO);
	assert_true(smtp_status_is_temporary(res[0].status));
	smtp_results_clear(res, 2);
	smtp_close(&s);
	script_server_finish(&sv);
}

/* RFC 2920: every RCPT refused but DATA accepted: an empty message, then RSET. */
static void
test_pipelined_all_refused(void **state)
{
	static const char *const script[] = {
		">220 fake\r\n",
		"<EHLO client.test",
		">250-fake\r\n250 PIPELINING\r\n",
		"<MAIL FROM:<a@x.test>",
		"<RCPT TO:<b@x.test>",
		"<DATA",
		">250 ok\r\n550 5.1.1 unknown\r\n354 go\r\n",
		"<.",
		">554 5.5.1 no valid recipients\r\n",
		"<RSET",
		">250 ok\r\n",
		"<QUIT",
		">221 bye\r\n",
		NULL
	};
	const char *rcpts[] = { "b@x.test" };
	smtp_options o = test_options();
	smtp_rcpt_result res[1];
	smtp_session *s = NULL;
	char *err = NULL;
	script_server sv = script_server_start(script);

	assert_int_equal(smtp_from_fd(sv.fd, &o, &s, &err), SMTP_OK);
	assert_int_equal(smtp_sendmail(s, "a@x.test", rcpts, 1, MSG1, strlen(MSG1), NULL, NULL,
				       res, &err), SMTP_EPERM);
	free(err);
	err = NULL;
	assert_int_equal(res[0].code, 550);
	assert_int_equal(smtp_last_reply(s)->code, 550);
	smtp_results_clear(res, 1);
	assert_int_equal(smtp_quit(s, &err), SMTP_OK);
	smtp_close(&s);
	script_server_finish(&sv);
}

/* A non-ASCII address without SMTPUTF8, or one that would break the line:
 * refused before anything is sent. */
static void
test_envelope_checks(void **state)
{
	static const char *const script[] = {
		">220 fake\r\n",
		"<EHLO client.test",
		">250 fake\r\n",
		"<QUIT",
		">221 bye\r\n",
		NULL
	};
	const char *utf8[] = { "j\xc3\xb6rg@x.test" };
	const char *inject[] = { "b@x.test>\r\nRCPT TO:<evil@x.test" };
	const char *ascii[] = { "b@x.test" };
	const char *badopt[] = { "NOTIFY=NEVER ORCPT=x", NULL };
	smtp_options o = test_options();
	smtp_session *s = NULL;
	char *err = NULL;
	script_server sv = script_server_start(script);

	assert_int_equal(smtp_from_fd(sv.fd, &o, &s, &err), SMTP_OK);
	assert_int_equal(smtp_sendmail(s, "a@x.test", utf8, 1, "x\n", 2, NULL, NULL, NULL, &err),
			 SMTP_EPERM);
	assert_non_null(strstr(err, "SMTPUTF8"));
	free(err);
	err = NULL;
	assert_int_equal(smtp_sendmail(s, "a@x.test", inject, 1, "x\n", 2, NULL, NULL, NULL,
				       &err), SMTP_EUSAGE);
	free(err);
	err = NULL;
	assert_int_equal(smtp_sendmail(s, "a@x.test", ascii, 1, "x\n", 2, NULL, badopt, NULL,
				       &err), SMTP_EUSAGE);
	free(err);
	err = NULL;
	assert_int_equal(smtp_quit(s, &err), SMTP_OK);
	smtp_close(&s);
	script_server_finish(&sv);
}

/* ------------------------------------------------------------ OAuth (TLS) */

static smtp_options
tls_options(void)
{
	smtp_options o = test_options();

	o.tls = SMTP_TLS_IMPLICIT;
	o.host = "localhost";
	o.port = "465";
	o.ca_file = tls_relay_ca();
	/* Room for a handshake under valgrind (tests/run). */
	o.command_timeout_ms = 60000;
	return o;
}

/* Google's answer to a stale token: {"status":"401","schemes":"bearer mac",...} */
#define GOOGLE_CHALLENGE "334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIG1hYyIsInNjb3Bl" \
	"IjoiaHR0cHM6Ly9tYWlsLmdvb2dsZS5jb20vIn0="

/* A short token fits the 512 octets of the AUTH line (RFC 4954 4.): one line. */
static void
test_oauth_xoauth2_inline(void **state)
{
	char *tok = tls_relay_token(40);
	char *line = tls_relay_oauth_line("<AUTH XOAUTH2 ", 0, "box@example.com", tok, "465");
	const char *script[] = {
		">220 fake\r\n", "<EHLO client.test", ">250-fake\r\n250 AUTH PLAIN XOAUTH2\r\n",
		line, ">235 2.7.0 Accepted\r\n", "<QUIT", ">221 bye\r\n", NULL,
	};
	static char tr[8192];
	smtp_options o = tls_options();
	smtp_session *s = NULL;
	const char *used = NULL;
	char *err = NULL;
	script_server sv = script_server_start_tls(script);

	tr[0] = '\0';
	assert_int_equal(smtp_from_fd(sv.fd, &o, &s, &err), SMTP_OK);
	assert_true(smtp_is_tls(s));
	smtp_set_trace(s, trace_collect, tr);
	assert_int_equal(smtp_auth_oauth(s, NULL, "box@example.com", tok, &used, &err), SMTP_OK);
	assert_string_equal(used, "XOAUTH2");
	assert_int_equal(smtp_quit(s, &err), SMTP_OK);
	smtp_close(&s);
	script_server_finish(&sv);
	assert_non_null(strstr(tr, "C: AUTH XOAUTH2 <redacted>\nS: 235"));
	assert_null(strstr(tr, tok));
	free(line);
	free(tok);
}

/* OAUTHBEARER preferred; a 4 KB token waits for the server's 334. */
static void
test_oauth_oauthbearer_4k(void **state)
{
	char *tok = tls_relay_token(4096);
	char *line = tls_relay_oauth_line("<", 1, "box@example.com", tok, "465");
	const char *script[] = {
		">220 fake\r\n", "<EHLO client.test",
		">250-fake\r\n250-AUTH PLAIN XOAUTH2 OAUTHBEARER\r\n250 SIZE 1000\r\n",
		"<AUTH OAUTHBEARER", ">334 \r\n", line, ">235 2.7.0 Accepted\r\n",
		"<QUIT", ">221 bye\r\n", NULL,
	};
	static char tr[8192];
	smtp_options o = tls_options();
	smtp_session *s = NULL;
	const char *used = NULL;
	char *err = NULL;
	script_server sv = script_server_start_tls(script);

	tr[0] = '\0';
	assert_int_equal(smtp_from_fd(sv.fd, &o, &s, &err), SMTP_OK);
	smtp_set_trace(s, trace_collect, tr);
	assert_int_equal(smtp_auth_oauth(s, NULL, "box@example.com", tok, &used, &err), SMTP_OK);
	assert_string_equal(used, "OAUTHBEARER");
	assert_int_equal(smtp_quit(s, &err), SMTP_OK);
	smtp_close(&s);
	script_server_finish(&sv);
	assert_non_null(strstr(tr, "C: AUTH OAUTHBEARER\nS: 334 \nC: <redacted>\nS: 235"));
	assert_null(strstr(tr, "eyJ0eXAi"));
	free(line);
	free(tok);
}

/* Refused: the JSON challenge, an empty line (XOAUTH2), the final 535. */
static void
test_oauth_xoauth2_refused(void **state)
{
	char *tok = tls_relay_token(3000);
	char *line = tls_relay_oauth_line("<", 0, "box@example.com", tok, "465");
	const char *script[] = {
		">220 fake\r\n", "<EHLO client.test", ">250-fake\r\n250 AUTH XOAUTH2\r\n",
		"<AUTH XOAUTH2", ">334 \r\n", line, ">" GOOGLE_CHALLENGE "\r\n",
		"<", ">535-5.7.8 Username and Password not accepted.\r\n535 5.7.8 Learn more\r\n",
		"<QUIT", ">221 bye\r\n", NULL,
	};
	static char tr[8192];
	smtp_options o = tls_options();
	smtp_session *s = NULL;
	char *err = NULL;
	script_server sv = script_server_start_tls(script);

	tr[0] = '\0';
	assert_int_equal(smtp_from_fd(sv.fd, &o, &s, &err), SMTP_OK);
	smtp_set_trace(s, trace_collect, tr);
	assert_int_equal(smtp_auth_oauth(s, "XOAUTH2", "box@example.com", tok, NULL, &err),
			 SMTP_EAUTH);
	assert_non_null(strstr(err, "535 5.7.8"));
	assert_non_null(strstr(err, "\"status\":\"401\""));
	assert_non_null(strstr(err, "https://mail.google.com/"));
	assert_null(strstr(err, "eyJ0eXAi"));
	free(err);
	err = NULL;
	assert_true(smtp_usable(s));
	assert_int_equal(smtp_quit(s, &err), SMTP_OK);
	smtp_close(&s);
	script_server_finish(&sv);
	assert_null(strstr(tr, "eyJ0eXAi"));
	free(line);
	free(tok);
}

/* OAUTHBEARER's failure (RFC 7628 3.2.3): %x01, base64 "AQ==". */
static void
test_oauth_oauthbearer_refused(void **state)
{
	char *tok = tls_relay_token(30);
	char *line = tls_relay_oauth_line("<AUTH OAUTHBEARER ", 1, "box@example.com", tok, "465");
	const char *script[] = {
		">220 fake\r\n", "<EHLO client.test", ">250-fake\r\n250 AUTH OAUTHBEARER\r\n",
		line, ">" GOOGLE_CHALLENGE "\r\n", "<AQ==",
		">454 4.7.0 Temporary authentication failure\r\n",
		NULL,
	};
	smtp_options o = tls_options();
	smtp_session *s = NULL;
	char *err = NULL;
	script_server sv = script_server_start_tls(script);

	assert_int_equal(smtp_from_fd(sv.fd, &o, &s, &err), SMTP_OK);
	assert_int_equal(smtp_auth_oauth(s, NULL, "box@example.com", tok, NULL, &err),
			 SMTP_ETEMP);
	assert_non_null(strstr(err, "454"));
	assert_non_null(strstr(err, "bearer mac"));
	free(err);
	smtp_close(&s);
	script_server_finish(&sv);
	free(line);
	free(tok);
}

/* Without TLS never, even where plain-text passwords are allowed. */
static void
test_oauth_needs_tls(void **state)
{
	static const char *const script[] = {
		">220 fake\r\n", "<EHLO client.test", ">250-fake\r\n250 AUTH XOAUTH2 OAUTHBEARER\r\n",
		"<QUIT", ">221 bye\r\n", NULL,
	};
	static char tr[8192];
	smtp_options o = test_options();
	smtp_session *s = NULL;
	const char *used = NULL;
	char *err = NULL;
	script_server sv = script_server_start(script);

	o.allow_plaintext_auth = 1;
	tr[0] = '\0';
	assert_int_equal(smtp_from_fd(sv.fd, &o, &s, &err), SMTP_OK);
	smtp_set_trace(s, trace_collect, tr);
	assert_int_equal(smtp_auth_oauth(s, NULL, "box@example.com", "tok", &used, &err),
			 SMTP_EUSAGE);
	assert_string_equal(used, "OAUTHBEARER");
	assert_non_null(strstr(err, "TLS"));
	free(err);
	err = NULL;
	assert_int_equal(smtp_auth_oauth(s, "XOAUTH2", "box@example.com", "tok", NULL, &err),
			 SMTP_EUSAGE);
	free(err);
	err = NULL;
	assert_int_equal(smtp_quit(s, &err), SMTP_OK);
	smtp_close(&s);
	script_server_finish(&sv);
	assert_null(strstr(tr, "C: AUTH"));
}

/* PLAIN too keeps to 512 octets: long credentials follow the 334. */
static void
test_plain_long_not_inline(void **state)
{
	char pass[600], *raw, *b, *line;
	const char *script[] = {
		">220 fake\r\n", "<EHLO client.test", ">250-fake\r\n250 AUTH PLAIN\r\n",
		"<AUTH PLAIN", ">334 \r\n", NULL, ">235 ok\r\n", NULL,
	};
	smtp_options o = tls_options();
	smtp_session *s = NULL;
	char *err = NULL;
	script_server sv;

	memset(pass, 'p', sizeof(pass) - 1);
	pass[sizeof(pass) - 1] = '\0';
	assert_true(asprintf(&raw, "%cuser1%c%s", 0, 0, pass) > 0);
	b = b64_encode(raw, 7 + strlen(pass), NULL);
	assert_true(asprintf(&line, "<%s", b) > 0);
	script[5] = line;
	sv = script_server_start_tls(script);
	assert_int_equal(smtp_from_fd(sv.fd, &o, &s, &err), SMTP_OK);
	assert_int_equal(smtp_auth(s, NULL, "user1", pass, &err), SMTP_OK);
	smtp_close(&s);
	script_server_finish(&sv);
	free(raw);
	free(b);
	free(line);
}

static int
tls_setup(void **state)
{
	return tls_relay_certs(MM_TEST_SRCDIR);
}

static int
tls_teardown(void **state)
{
	tls_relay_cleanup();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_table),
		cmocka_unit_test(test_reply_two_in_one),
		cmocka_unit_test(test_enhanced),
		cmocka_unit_test(test_data_encoder),
		cmocka_unit_test(test_data_encoder_long_lines),
		cmocka_unit_test(test_pipelined_one_refused),
		cmocka_unit_test(test_mail_4xx_then_data_5xx),
		cmocka_unit_test(test_size_refusal),
		cmocka_unit_test(test_helo_fallback),
		cmocka_unit_test(test_auth_trace_redacted),
		cmocka_unit_test(test_starttls_required),
		cmocka_unit_test(test_starttls_injection),
		cmocka_unit_test(test_lost_after_dot),
		cmocka_unit_test(test_unknown_after_dot),
		cmocka_unit_test(test_lost_before_data),
		cmocka_unit_test(test_pipelined_all_refused),
		cmocka_unit_test(test_envelope_checks),
		cmocka_unit_test(test_oauth_xoauth2_inline),
		cmocka_unit_test(test_oauth_oauthbearer_4k),
		cmocka_unit_test(test_oauth_xoauth2_refused),
		cmocka_unit_test(test_oauth_oauthbearer_refused),
		cmocka_unit_test(test_oauth_needs_tls),
		cmocka_unit_test(test_plain_long_not_inline),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, tls_setup, tls_teardown);
}

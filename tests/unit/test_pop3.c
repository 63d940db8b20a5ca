/* mailmill - ISC licence, see LICENSE */
/*
 * The POP3 client: its parsers from tables, bodies fed in small chunks, and
 * whole dialogues against a scripted server forked on a socketpair.
 */
#include <config.h>

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/buf.h"
#include "proto/clock.h"
#include "proto/linebuf.h"
#include "proto/net.h"
#include "proto/pop3.h"
#include "tests/unit/script_server.h"
#include "tests/unit/tls_relay.h"

/* ------------------------------------------------------------ status lines */

static const struct {
	const char *line;
	int result;
	pop3_rcode code;
	const char *text;
} status_cases[] = {
	{ "+OK", 1, POP3_RC_NONE, "" },
	{ "+OK Dovecot ready.", 1, POP3_RC_NONE, "Dovecot ready." },
	{ "+OK [IN-USE] odd but fine", 1, POP3_RC_NONE, "[IN-USE] odd but fine" },
	{ "-ERR", 0, POP3_RC_NONE, "" },
	{ "-ERR no such message", 0, POP3_RC_NONE, "no such message" },
	{ "-ERR [IN-USE] Mailbox locked", 0, POP3_RC_IN_USE, "[IN-USE] Mailbox locked" },
	{ "-ERR [LOGIN-DELAY] wait", 0, POP3_RC_LOGIN_DELAY, "[LOGIN-DELAY] wait" },
	{ "-ERR [SYS/TEMP] try later", 0, POP3_RC_SYS_TEMP, "[SYS/TEMP] try later" },
	{ "-ERR [SYS/PERM] gone", 0, POP3_RC_SYS_PERM, "[SYS/PERM] gone" },
	{ "-ERR [AUTH] Authentication failed.", 0, POP3_RC_AUTH, "[AUTH] Authentication failed." },
	{ "-ERR [SYS/TEMP/DISK] sub-code", 0, POP3_RC_SYS_TEMP, "[SYS/TEMP/DISK] sub-code" },
	{ "-ERR [in-use] lower-case code", 0, POP3_RC_IN_USE, "[in-use] lower-case code" },
	{ "-ERR [XYZZY] unknown", 0, POP3_RC_OTHER, "[XYZZY] unknown" },
	{ "-ERR [SYS] only one level", 0, POP3_RC_OTHER, "[SYS] only one level" },
	{ "-ERR [AUTHX] not AUTH", 0, POP3_RC_OTHER, "[AUTHX] not AUTH" },
	{ "-ERR [IN-USE unterminated", 0, POP3_RC_NONE, "[IN-USE unterminated" },
	{ "-ERR []", 0, POP3_RC_NONE, "[]" },
	{ "-ERR [IN USE] space inside", 0, POP3_RC_NONE, "[IN USE] space inside" },
	{ "-ERR [SYS//TEMP]", 0, POP3_RC_NONE, "[SYS//TEMP]" },
	{ "-ERR [SYS/]", 0, POP3_RC_NONE, "[SYS/]" },
	{ "-ERR text [AUTH] later", 0, POP3_RC_NONE, "text [AUTH] later" },
	{ "+ok", -1, POP3_RC_NONE, NULL },
	{ "+Ok fine", -1, POP3_RC_NONE, NULL },
	{ "-err nope", -1, POP3_RC_NONE, NULL },
	{ "", -1, POP3_RC_NONE, NULL },
	{ "+", -1, POP3_RC_NONE, NULL },
	{ "+ ", -1, POP3_RC_NONE, NULL },
	{ "+O", -1, POP3_RC_NONE, NULL },
	{ "+OKAY", -1, POP3_RC_NONE, NULL },
	{ "-ERROR", -1, POP3_RC_NONE, NULL },
	{ "+OK\tx", -1, POP3_RC_NONE, NULL },
	{ " +OK", -1, POP3_RC_NONE, NULL },
	{ "OK", -1, POP3_RC_NONE, NULL },
	{ "* OK imap?", -1, POP3_RC_NONE, NULL },
	{ "250 smtp?", -1, POP3_RC_NONE, NULL },
};

static void
test_status_table(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(status_cases) / sizeof(status_cases[0]); i++) {
		const char *l = status_cases[i].line, *text = NULL;
		pop3_rcode code = (pop3_rcode)-1;
		int r = pop3_parse_status(l, strlen(l), &code, &text);

		if (r != status_cases[i].result || code != status_cases[i].code)
			fail_msg("case %zu \"%s\": got %d/%d", i, l, r, (int)code);
		if (status_cases[i].text != NULL)
			assert_string_equal(text, status_cases[i].text);
	}
}

/* The length is what counts, not a NUL: bytes past len are never looked at. */
static void
test_status_len(void **state)
{
	pop3_rcode code;
	const char *text;

	assert_int_equal(pop3_parse_status("+OKAY", 3, &code, &text), 1);
	assert_int_equal(pop3_parse_status("-ERR [AUTH] x", 8, &code, &text), 0);
	assert_int_equal(code, POP3_RC_NONE); /* "[AUT" is cut short */
	assert_int_equal(pop3_parse_status("+OK\0junk", 8, &code, &text), -1);
}

static void
test_rcode_classes(void **state)
{
	assert_true(pop3_rcode_is_temporary(POP3_RC_IN_USE));
	assert_true(pop3_rcode_is_temporary(POP3_RC_LOGIN_DELAY));
	assert_true(pop3_rcode_is_temporary(POP3_RC_SYS_TEMP));
	assert_false(pop3_rcode_is_temporary(POP3_RC_SYS_PERM));
	assert_false(pop3_rcode_is_temporary(POP3_RC_AUTH));
	assert_false(pop3_rcode_is_temporary(POP3_RC_OTHER));
	assert_false(pop3_rcode_is_temporary(POP3_RC_NONE));
	assert_string_equal(pop3_rcode_name(POP3_RC_SYS_TEMP), "SYS/TEMP");
	assert_string_equal(pop3_rcode_name(POP3_RC_IN_USE), "IN-USE");
}

/* ------------------------------------------------------------ LIST, UIDL, STAT */

static const struct {
	const char *line;
	int result;
	unsigned long msgno;
	unsigned long long size;
} list_cases[] = {
	{ "1 100", 0, 1, 100 },
	{ "42 0", 0, 42, 0 },
	{ "7 2048 extra text", 0, 7, 2048 },
	{ "1 18446744073709551615", 0, 1, 18446744073709551615ULL },
	{ "1 18446744073709551616", -1, 0, 0 },          /* 2^64 */
	{ "1 99999999999999999999999", -1, 0, 0 },
	{ "99999999999999999999999 1", -1, 0, 0 },
	{ "0 100", -1, 0, 0 },                           /* numbers start at 1 */
	{ "-1 100", -1, 0, 0 },
	{ "+1 100", -1, 0, 0 },
	{ "1 -100", -1, 0, 0 },
	{ "1 +100", -1, 0, 0 },
	{ " 1 100", -1, 0, 0 },
	{ "1  100", -1, 0, 0 },
	{ "1\t100", -1, 0, 0 },
	{ "1 100x", -1, 0, 0 },
	{ "1 0x10", -1, 0, 0 },
	{ "1 1e3", -1, 0, 0 },
	{ "1", -1, 0, 0 },
	{ "1 ", -1, 0, 0 },
	{ "", -1, 0, 0 },
	{ "abc def", -1, 0, 0 },
};

static void
test_list_table(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(list_cases) / sizeof(list_cases[0]); i++) {
		const char *l = list_cases[i].line;
		unsigned long msgno = 0;
		unsigned long long size = 0;
		int r = pop3_parse_list_line(l, strlen(l), &msgno, &size);

		if (r != list_cases[i].result)
			fail_msg("case %zu \"%s\": got %d", i, l, r);
		if (r == 0 && (msgno != list_cases[i].msgno || size != list_cases[i].size))
			fail_msg("case %zu \"%s\": got %lu %llu", i, l, msgno, size);
	}
}

#define UID70 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'()"
_Static_assert(sizeof(UID70) == 71, "UID70 is 70 characters");

static const struct {
	const char *line;
	int result, uid_ok;
	unsigned long msgno;
	const char *uid;
} uidl_cases[] = {
	{ "1 whqtswO00WBw418f9t5JxYwZ", 0, 1, 1, "whqtswO00WBw418f9t5JxYwZ" },
	{ "3 " UID70, 0, 1, 3, UID70 },
	{ "3 " UID70 "+", 0, 0, 3, "" },                  /* 71 characters */
	{ "2 ~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}", 0, 1, 2, "~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}" },
	{ "2 a b", 0, 0, 2, "" },                         /* space inside */
	{ "2  ab", 0, 0, 2, "" },                         /* leading space */
	{ "2 ab ", 0, 0, 2, "" },                         /* trailing space */
	{ "2 ", 0, 0, 2, "" },                            /* empty */
	{ "2 ab\x7f", 0, 0, 2, "" },
	{ "2 \xc3\xa9t\xc3\xa9", 0, 0, 2, "" },           /* 8-bit */
	{ "2 ../../etc", 0, 1, 2, "../../etc" },         /* valid: callers must not make it a path raw */
	{ "2", -1, 0, 0, "" },
	{ "0 abc", -1, 0, 0, "" },
	{ "-2 abc", -1, 0, 0, "" },
	{ "x abc", -1, 0, 0, "" },
	{ "99999999999999999999999 abc", -1, 0, 0, "" },
	{ "", -1, 0, 0, "" },
};

static void
test_uidl_table(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(uidl_cases) / sizeof(uidl_cases[0]); i++) {
		const char *l = uidl_cases[i].line;
		unsigned long msgno = 0;
		char uid[71];
		int ok = -1, r = pop3_parse_uidl_line(l, strlen(l), &msgno, uid, &ok);

		if (r != uidl_cases[i].result)
			fail_msg("case %zu \"%s\": got %d", i, l, r);
		if (r == 0 && (ok != uidl_cases[i].uid_ok || msgno != uidl_cases[i].msgno ||
			       strcmp(uid, uidl_cases[i].uid) != 0))
			fail_msg("case %zu \"%s\": got ok=%d %lu \"%s\"", i, l, ok, msgno, uid);
	}
}

static void
test_uid_valid(void **state)
{
	char u[80];

	assert_false(pop3_uid_valid("", 0));
	assert_true(pop3_uid_valid("a", 1));
	memset(u, 'x', sizeof(u));
	assert_true(pop3_uid_valid(u, 70));
	assert_false(pop3_uid_valid(u, 71));
	assert_false(pop3_uid_valid(" ", 1));
	assert_false(pop3_uid_valid("a\x7f", 2));
	assert_false(pop3_uid_valid("a\0b", 3));
	assert_true(pop3_uid_valid("!~", 2));
}

static void
test_stat_parse(void **state)
{
	unsigned long n = 0;
	unsigned long long o = 0;

	assert_int_equal(pop3_parse_stat("3 1234", 6, &n, &o), 0);
	assert_int_equal(n, 3);
	assert_int_equal(o, 1234);
	assert_int_equal(pop3_parse_stat("0 0", 3, &n, &o), 0);
	assert_int_equal(n, 0);
	assert_int_equal(pop3_parse_stat("2 10 more", 9, &n, &o), 0);
	assert_int_equal(pop3_parse_stat("2", 1, &n, &o), -1);
	assert_int_equal(pop3_parse_stat("-2 10", 5, &n, &o), -1);
	assert_int_equal(pop3_parse_stat("2 18446744073709551616", 22, &n, &o), -1);
	assert_int_equal(pop3_parse_stat("2 10x", 5, &n, &o), -1);
	assert_int_equal(pop3_parse_stat("", 0, &n, &o), -1);
}

/* ------------------------------------------------------------ multi-line bodies */

static void
test_ml_line(void **state)
{
	const char *d;
	size_t n;

	assert_int_equal(pop3_ml_line(".", 1, &d, &n), 0);
	assert_int_equal(pop3_ml_line("..", 2, &d, &n), 1);
	assert_int_equal(n, 1);
	assert_memory_equal(d, ".", 1);
	assert_int_equal(pop3_ml_line("...", 3, &d, &n), 1);
	assert_int_equal(n, 2);
	assert_int_equal(pop3_ml_line(".x", 2, &d, &n), 1);
	assert_int_equal(n, 1);
	assert_memory_equal(d, "x", 1);
	assert_int_equal(pop3_ml_line("", 0, &d, &n), 1);
	assert_int_equal(n, 0);
	assert_int_equal(pop3_ml_line("a.b", 3, &d, &n), 1);
	assert_int_equal(n, 3);
	assert_int_equal(pop3_ml_line(". ", 2, &d, &n), 1);
	assert_int_equal(n, 1);
}

static const char body_wire[] =
	"Subject: dots\r\n"
	"\r\n"
	"..\r\n"
	"...\r\n"
	"..leading dot\r\n"
	"middle . dot.\r\n"
	"\r\n"
	"bare LF line\n"
	". \r\n"
	"last\r\n"
	".\r\n"
	"+OK after the body\r\n";
static const char body_expected[] =
	"Subject: dots\n"
	"\n"
	".\n"
	"..\n"
	".leading dot\n"
	"middle . dot.\n"
	"\n"
	"bare LF line\n"
	" \n"
	"last\n";

/* Through the line splitter in every chunk size, as bytes arrive from a socket. */
static void
test_body_chunks(void **state)
{
	size_t chunk, total = sizeof(body_wire) - 1;

	for (chunk = 1; chunk <= total; chunk++) {
		linebuf lb;
		buf out = { .max = 4096 };
		size_t off = 0, len;
		const char *line;
		int done = 0, r;

		assert_int_equal(linebuf_init(&lb, 128), 0);
		while (!done) {
			r = linebuf_next(&lb, &line, &len);
			assert_int_not_equal(r, -1);
			if (r == 0) {
				size_t n = total - off < chunk ? total - off : chunk;

				assert_true(n > 0);
				assert_int_equal(linebuf_feed(&lb, body_wire + off, n), 0);
				off += n;
				continue;
			}
			r = pop3_body_piece(line, len, 1, 1, &out);
			assert_int_not_equal(r, -1);
			done = r == 0;
		}
		assert_int_equal(out.len, sizeof(body_expected) - 1);
		assert_memory_equal(out.data, body_expected, out.len);
		/* What follows the terminator is left for the next reply. */
		assert_int_equal(linebuf_next(&lb, &line, &len) == 1 ||
				 (linebuf_feed(&lb, body_wire + off, total - off) == 0 &&
				  linebuf_next(&lb, &line, &len) == 1), 1);
		assert_string_equal(line, "+OK after the body");
		linebuf_free(&lb);
		buf_free(&out);
	}
}

static void
test_body_cap(void **state)
{
	buf out = { .max = 10 };

	assert_int_equal(pop3_body_piece("12345678", 8, 1, 1, &out), 1); /* 9 bytes with LF */
	assert_int_equal(pop3_body_piece("", 0, 1, 1, &out), 1);         /* 10 */
	errno = 0;
	assert_int_equal(pop3_body_piece("x", 1, 1, 1, &out), -1);
	assert_int_equal(errno, EFBIG);
	assert_int_equal(pop3_body_piece(".", 1, 1, 1, &out), 0);
	buf_free(&out);
}

/* ------------------------------------ scripted server (tests/unit/script_server.h) */

/* Everything the trace callback saw, one "C: ..." / "S: ..." per line. */
static char trace_text[65536];
static size_t trace_len;

static void
trace_collect(void *arg, char dir, const char *line, size_t len)
{
	int n = snprintf(trace_text + trace_len, sizeof(trace_text) - trace_len, "%c: %.*s\n",
			 dir, (int)len, line);

	(void)arg;
	if (n > 0 && (size_t)n < sizeof(trace_text) - trace_len)
		trace_len += (size_t)n;
}

static pop3_session *
session(script_server sv, size_t max_line, int timeout_ms)
{
	pop3_options opt = { .command_timeout_ms = timeout_ms > 0 ? timeout_ms : 5000,
			     .max_line = max_line };
	pop3_session *s = NULL;
	char *err = NULL;
	pop3_status st;

	trace_len = 0;
	trace_text[0] = '\0';
	st = pop3_from_fd_trace(sv.fd, &opt, trace_collect, NULL, &s, &err);
	if (st != POP3_OK)
		fail_msg("pop3_from_fd: %d %s", st, err != NULL ? err : "");
	return s;
}

#define GREETING ">+OK POP3 ready <1896.697170952@dbc.mtview.ca.us>\r\n"
#define CAPA_REPLY ">+OK Capability list follows\r\nTOP\r\nUIDL\r\nUSER\r\nPIPELINING\r\n" \
	"SASL PLAIN LOGIN\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n.\r\n"

/* The daemon's whole path: log in, scan, pipelined RETR and DELE, QUIT. */
static void
test_dialogue(void **state)
{
	static const char *const script[] = {
		GREETING,
		"<CAPA", CAPA_REPLY,
		"<USER alice", ">+OK\r\n",
		"<PASS s3cret pass", ">+OK Logged in.\r\n",
		"<STAT", ">+OK 3 347\r\n",
		"<LIST", ">+OK 3 messages:\r\n1 120\r\n2 200\r\n3 27\r\n.\r\n",
		"<UIDL", "}+OK\r\n1 000000014f1d4c7a\r\n2 000000024f1d4c7a\r\n3 000000034f1d4c7a\r\n.\r\n",
		/* All three commands must arrive before any reply: that is pipelining. */
		"<RETR 1", "<RETR 2", "<RETR 3",
		"}+OK 120 octets\r\nSubject: one\r\n\r\n..stuffed\r\n.\r\n",
		">+OK 200 octets\r\nSubject: two\r\n\r\n...\r\n..\r\nend\r\n.\r\n",
		"}+OK\r\n\r\n.\r\n",
		"<DELE 1", "<DELE 2", "<DELE 3",
		">+OK\r\n+OK\r\n-ERR [SYS/TEMP] cannot delete now\r\n",
		"<QUIT", ">+OK Logging out, messages deleted.\r\n",
		"E", NULL,
	};
	static const char *const bodies[] = {
		"Subject: one\n\n.stuffed\n", "Subject: two\n\n..\n.\nend\n", "\n",
	};
	script_server sv = script_server_start(script);
	pop3_session *s = session(sv, 0, 0);
	pop3_entry *e = NULL;
	unsigned long count, i;
	unsigned long long octets;
	size_t n;
	char *err = NULL;
	buf b = { .max = 1 << 20 };

	assert_string_equal(pop3_greeting(s), "+OK POP3 ready <1896.697170952@dbc.mtview.ca.us>");
	assert_true(pop3_has_apop(s));
	assert_false(pop3_is_tls(s));
	assert_int_equal(pop3_capa(s, NULL), POP3_OK);
	assert_true(pop3_has_capa(s, "PIPELINING"));
	assert_true(pop3_has_capa(s, "uidl"));
	assert_false(pop3_has_capa(s, "STLS"));
	assert_false(pop3_has_capa(s, "RESP"));
	assert_true(pop3_has_sasl(s, "PLAIN"));
	assert_true(pop3_has_sasl(s, "login"));
	assert_false(pop3_has_sasl(s, "XOAUTH2"));
	assert_int_equal(pop3_user(s, "alice", NULL), POP3_OK);
	assert_int_equal(pop3_pass(s, "s3cret pass", NULL), POP3_OK);
	assert_int_equal(pop3_stat(s, &count, &octets, NULL), POP3_OK);
	assert_int_equal(count, 3);
	assert_int_equal(octets, 347);
	assert_int_equal(pop3_list(s, 100, &e, &n, NULL), POP3_OK);
	assert_int_equal(n, 3);
	assert_int_equal(e[1].msgno, 2);
	assert_int_equal(e[1].size, 200);
	assert_int_equal(e[2].uid_state, POP3_UID_MISSING);
	assert_int_equal(pop3_uidl(s, e, n, NULL), POP3_OK);
	for (i = 0; i < 3; i++)
		assert_int_equal(e[i].uid_state, POP3_UID_OK);
	assert_string_equal(e[2].uid, "000000034f1d4c7a");

	for (i = 1; i <= 3; i++)
		assert_int_equal(pop3_send_retr(s, i, NULL), POP3_OK);
	/* Neither a synchronous verb nor the wrong receive may cut in. */
	assert_int_equal(pop3_noop(s, &err), POP3_EUSAGE);
	free(err);
	err = NULL;
	assert_int_equal(pop3_recv_dele(s, &err), POP3_EUSAGE);
	free(err);
	err = NULL;
	assert_int_equal(pop3_flush(s, NULL), POP3_OK);
	for (i = 0; i < 3; i++) {
		buf_reset(&b);
		assert_int_equal(pop3_recv_retr(s, &b, NULL), POP3_OK);
		assert_int_equal(b.len, strlen(bodies[i]));
		assert_memory_equal(b.data, bodies[i], b.len);
	}
	for (i = 1; i <= 3; i++)
		assert_int_equal(pop3_send_dele(s, i, NULL), POP3_OK);
	assert_int_equal(pop3_recv_dele(s, NULL), POP3_OK);
	assert_int_equal(pop3_recv_dele(s, NULL), POP3_OK);
	assert_int_equal(pop3_recv_dele(s, &err), POP3_ENEG);
	assert_string_equal(err, "DELE 3: -ERR [SYS/TEMP] cannot delete now");
	assert_int_equal(pop3_last_code(s), POP3_RC_SYS_TEMP);
	free(err);
	assert_int_equal(pop3_quit(s, NULL), POP3_OK);
	pop3_close(&s);
	assert_null(s);
	script_server_finish(&sv);

	assert_null(strstr(trace_text, "s3cret"));
	assert_non_null(strstr(trace_text, "C: PASS <redacted>\n"));
	assert_non_null(strstr(trace_text, "C: USER alice\n"));
	assert_non_null(strstr(trace_text, "S: 2 000000024f1d4c7a\n"));
	assert_non_null(strstr(trace_text, "C: RETR 3\n"));
	assert_null(strstr(trace_text, "Subject: one")); /* bodies are not traced */
	free(e);
	buf_free(&b);
}

static void
test_pass_in_use(void **state)
{
	static const char *const script[] = {
		GREETING,
		"<USER alice", ">+OK\r\n",
		"<PASS hunter2", ">-ERR [IN-USE] Mailbox is locked by another POP3 session\r\n",
		/* A refused login leaves the session usable. */
		"<QUIT", ">+OK\r\n",
		"E", NULL,
	};
	script_server sv = script_server_start(script);
	pop3_session *s = session(sv, 0, 0);
	char *err = NULL;

	assert_int_equal(pop3_user(s, "alice", NULL), POP3_OK);
	assert_int_equal(pop3_pass(s, "hunter2", &err), POP3_EAUTH);
	assert_string_equal(err, "PASS: -ERR [IN-USE] Mailbox is locked by another POP3 session");
	assert_int_equal(pop3_last_code(s), POP3_RC_IN_USE);
	assert_true(pop3_rcode_is_temporary(pop3_last_code(s)));
	free(err);
	assert_int_equal(pop3_quit(s, NULL), POP3_OK);
	assert_int_equal(pop3_last_code(s), POP3_RC_NONE);
	pop3_close(&s);
	script_server_finish(&sv);
	assert_null(strstr(trace_text, "hunter2"));
	assert_non_null(strstr(trace_text, "S: -ERR [IN-USE]"));
}

static void
test_pass_auth_failed(void **state)
{
	static const char *const script[] = {
		GREETING,
		"<USER alice", ">+OK\r\n",
		"<PASS wrong", ">-ERR [AUTH] Authentication failed.\r\n",
		"E", NULL,
	};
	script_server sv = script_server_start(script);
	pop3_session *s = session(sv, 0, 0);
	char *err = NULL;

	assert_int_equal(pop3_user(s, "alice", NULL), POP3_OK);
	assert_int_equal(pop3_pass(s, "wrong", &err), POP3_EAUTH);
	assert_string_equal(err, "PASS: -ERR [AUTH] Authentication failed.");
	assert_int_equal(pop3_last_code(s), POP3_RC_AUTH);
	assert_false(pop3_rcode_is_temporary(pop3_last_code(s)));
	free(err);
	pop3_close(&s);
	script_server_finish(&sv);
}

/* RFC 1939's own example: the digest of timestamp + "tanstaaf". */
static void
test_apop(void **state)
{
	static const char *const script[] = {
		GREETING,
		"<APOP mrose c4c9334bac560ecc979e58001b3e22fb", ">+OK maildrop has 1 message\r\n",
		"<QUIT", ">+OK\r\n", "E", NULL,
	};
	script_server sv = script_server_start(script);
	pop3_session *s = session(sv, 0, 0);

	assert_int_equal(pop3_apop(s, "mrose", "tanstaaf", NULL), POP3_OK);
	assert_int_equal(pop3_quit(s, NULL), POP3_OK);
	pop3_close(&s);
	script_server_finish(&sv);
	assert_non_null(strstr(trace_text, "C: APOP mrose <redacted>\n"));
	assert_null(strstr(trace_text, "c4c9334b"));
}

static void
test_apop_without_timestamp(void **state)
{
	static const char *const script[] = { ">+OK ready\r\n", "E", NULL };
	script_server sv = script_server_start(script);
	pop3_session *s = session(sv, 0, 0);
	char *err = NULL;

	assert_false(pop3_has_apop(s));
	assert_int_equal(pop3_apop(s, "mrose", "tanstaaf", &err), POP3_EUSAGE);
	assert_non_null(strstr(err, "timestamp"));
	free(err);
	pop3_close(&s);
	script_server_finish(&sv);
}

static void
test_auth_plain(void **state)
{
	static const char *const script[] = {
		GREETING,
		"<CAPA", CAPA_REPLY,
		"<AUTH PLAIN", ">+ \r\n",
		"<AGFsaWNlAHMzY3JldCBwYXNz", ">+OK Logged in.\r\n",
		"E", NULL,
	};
	script_server sv = script_server_start(script);
	pop3_session *s = session(sv, 0, 0);
	char *err = NULL;

	assert_int_equal(pop3_capa(s, NULL), POP3_OK);
	assert_int_equal(pop3_auth(s, "CRAM-MD5", "alice", "s3cret pass", &err), POP3_EUSAGE);
	free(err);
	assert_int_equal(pop3_auth(s, "PLAIN", "alice", "s3cret pass", NULL), POP3_OK);
	pop3_close(&s);
	script_server_finish(&sv);
	assert_null(strstr(trace_text, "AGFsaWNl"));
	assert_null(strstr(trace_text, "s3cret"));
	assert_non_null(strstr(trace_text, "C: AUTH PLAIN\nS: + \nC: <redacted>\n"));
}

static void
test_auth_login(void **state)
{
	static const char *const script[] = {
		GREETING,
		"<AUTH LOGIN", ">+ VXNlcm5hbWU6\r\n",
		"<YWxpY2U=", ">+ UGFzc3dvcmQ6\r\n",
		"<czNjcmV0IHBhc3M=", ">-ERR [AUTH] Authentication failed.\r\n",
		"E", NULL,
	};
	script_server sv = script_server_start(script);
	pop3_session *s = session(sv, 0, 0);
	char *err = NULL;

	assert_int_equal(pop3_auth(s, "login", "alice", "s3cret pass", &err), POP3_EAUTH);
	assert_string_equal(err, "AUTH: -ERR [AUTH] Authentication failed.");
	assert_int_equal(pop3_last_code(s), POP3_RC_AUTH);
	free(err);
	pop3_close(&s);
	script_server_finish(&sv);
	assert_null(strstr(trace_text, "YWxpY2U="));
	assert_null(strstr(trace_text, "czNjcmV0"));
}

/* Past the cap the rest is read and dropped: the session goes on. */
static void
test_retr_too_big(void **state)
{
	static const char *const script[] = {
		GREETING,
		"<RETR 1", ">+OK\r\n0123456789012345678901234567890123456789\r\n"
			   "0123456789012345678901234567890123456789\r\n.x\r\n.\r\n",
		"<NOOP", ">+OK\r\n",
		"<RETR 2", ">+OK\r\nsmall\r\n.\r\n",
		"E", NULL,
	};
	script_server sv = script_server_start(script);
	pop3_session *s = session(sv, 0, 0);
	buf b = { .max = 64 };
	char *err = NULL;

	assert_int_equal(pop3_retr(s, 1, &b, &err), POP3_ETOOBIG);
	assert_non_null(strstr(err, "RETR 1"));
	assert_true(b.len <= 64);
	free(err);
	err = NULL;
	assert_int_equal(pop3_noop(s, &err), POP3_OK);
	buf_reset(&b);
	assert_int_equal(pop3_retr(s, 2, &b, &err), POP3_OK);
	assert_string_equal(b.data, "small\n");
	pop3_close(&s);
	script_server_finish(&sv);
	buf_free(&b);
}

static void
test_close_mid_retr(void **state)
{
	static const char *const script[] = {
		GREETING,
		"<RETR 1", ">+OK\r\nSubject: cut\r\n\r\nhalf a bo", "X", NULL,
	};
	script_server sv = script_server_start(script);
	pop3_session *s = session(sv, 0, 0);
	buf b = { .max = 4096 };
	char *err = NULL;

	assert_int_equal(pop3_send_retr(s, 1, NULL), POP3_OK);
	assert_int_equal(pop3_recv_retr(s, &b, &err), POP3_EIO);
	assert_non_null(strstr(err, "RETR 1: "));
	free(err);
	pop3_close(&s);
	script_server_finish(&sv);
	buf_free(&b);
}

static void
test_retr_err_then_top(void **state)
{
	static const char *const script[] = {
		GREETING,
		"<RETR 9", ">-ERR There's no message 9.\r\n",
		"<TOP 1 0", ">+OK\r\nSubject: x\r\n\r\n.\r\n",
		"<LIST 1", ">+OK 1 4711\r\n",
		"<UIDL 1", ">+OK 1 abc\r\n",
		"<UIDL 2", ">+OK 2 bad uid\r\n",
		"<NOOP", ">+OK\r\n",
		"<RSET", ">+OK\r\n",
		"<DELE 1", ">+OK Marked\r\n",
		"<QUIT", ">-ERR [SYS/TEMP] some deleted messages not removed\r\n",
		"E", NULL,
	};
	script_server sv = script_server_start(script);
	pop3_session *s = session(sv, 0, 0);
	buf b = { .max = 4096 };
	unsigned long long size;
	char uid[71], *err = NULL;

	assert_int_equal(pop3_retr(s, 9, &b, &err), POP3_ENEG);
	assert_string_equal(err, "RETR 9: -ERR There's no message 9.");
	free(err);
	err = NULL;
	assert_int_equal(pop3_top(s, 1, 0, &b, NULL), POP3_OK);
	assert_string_equal(b.data, "Subject: x\n\n");
	assert_int_equal(pop3_list_one(s, 1, &size, NULL), POP3_OK);
	assert_int_equal(size, 4711);
	assert_int_equal(pop3_uidl_one(s, 1, uid, NULL), POP3_OK);
	assert_string_equal(uid, "abc");
	assert_int_equal(pop3_uidl_one(s, 2, uid, &err), POP3_EPROTO);
	assert_string_equal(uid, "");
	free(err);
	err = NULL;
	assert_int_equal(pop3_noop(s, NULL), POP3_OK);
	assert_int_equal(pop3_rset(s, NULL), POP3_OK);
	assert_int_equal(pop3_dele(s, 1, NULL), POP3_OK);
	assert_int_equal(pop3_quit(s, &err), POP3_ENEG);
	assert_int_equal(pop3_last_code(s), POP3_RC_SYS_TEMP);
	free(err);
	pop3_close(&s);
	script_server_finish(&sv);
	buf_free(&b);
}

static void
test_uidl_marks(void **state)
{
	static const char *const script[] = {
		GREETING,
		"<LIST", ">+OK\r\n4 10\r\n1 10\r\n3 10\r\n2 10\r\n5 10\r\n.\r\n",
		"<UIDL", ">+OK\r\n1 same\r\n2 " UID70 "x\r\n3 same\r\n5 fine\r\n9 ghost\r\n.\r\n",
		"<UIDL", ">+OK\r\n1 a\r\n1 b\r\n.\r\n",
		"E", NULL,
	};
	script_server sv = script_server_start(script);
	pop3_session *s = session(sv, 0, 0);
	pop3_entry *e = NULL;
	size_t n;
	char *err = NULL;

	assert_int_equal(pop3_list(s, 10, &e, &n, NULL), POP3_OK);
	assert_int_equal(n, 5);
	assert_int_equal(e[0].msgno, 1); /* sorted */
	assert_int_equal(e[4].msgno, 5);
	assert_int_equal(pop3_uidl(s, e, n, NULL), POP3_OK);
	assert_int_equal(e[0].uid_state, POP3_UID_DUPLICATE);
	assert_int_equal(e[1].uid_state, POP3_UID_INVALID);
	assert_string_equal(e[1].uid, "");
	assert_int_equal(e[2].uid_state, POP3_UID_DUPLICATE);
	assert_int_equal(e[3].uid_state, POP3_UID_MISSING);
	assert_int_equal(e[4].uid_state, POP3_UID_OK);
	assert_string_equal(e[4].uid, "fine");
	/* One message with two UIDs: neither is trusted, the others are fine. */
	assert_int_equal(pop3_uidl(s, e, n, &err), POP3_OK);
	assert_int_equal(e[0].uid_state, POP3_UID_INVALID);
	assert_int_equal(e[1].uid_state, POP3_UID_MISSING);
	assert_int_equal(pop3_listing_ignored(s), 0);
	free(e);
	pop3_close(&s);
	script_server_finish(&sv);
}

static void
test_list_bad(void **state)
{
	static const char *const list_capped[] = {
		GREETING, "<LIST", ">+OK\r\n1 10\r\n2 10\r\n3 10\r\n.\r\n", "E", NULL,
	};
	static const char *const stat_bad[] = {
		GREETING, "<STAT", ">+OK -1 10\r\n", "E", NULL,
	};

	{
		script_server sv = script_server_start(list_capped);
		pop3_session *s = session(sv, 0, 0);
		pop3_entry *e = (pop3_entry *)1;
		size_t n = 99;
		char *err = NULL;

		assert_int_equal(pop3_list(s, 2, &e, &n, &err), POP3_EPROTO);
		assert_null(e);
		assert_int_equal(n, 0);
		assert_string_equal(err, "LIST: more than 2 messages");
		free(err);
		err = NULL;
		assert_int_equal(pop3_noop(s, &err), POP3_EUSAGE);
		free(err);
		pop3_close(&s);
		script_server_finish(&sv);
	}
	{
		script_server sv = script_server_start(stat_bad);
		pop3_session *s = session(sv, 0, 0);
		unsigned long c;
		unsigned long long o;
		char *err = NULL;

		assert_int_equal(pop3_stat(s, &c, &o, &err), POP3_EPROTO);
		assert_string_equal(err, "STAT: bad reply \"+OK -1 10\"");
		free(err);
		pop3_close(&s);
		script_server_finish(&sv);
	}
}

/*
 * A bad LIST or UIDL line costs only its message (issue 14): message 1 is
 * bad in each way, message 2 is good and comes out whole, and the session
 * goes on.  The listings are dripped a few bytes at a time.
 */
#define LONGLINE_20K "1 " REP20K
#define REP1K "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define REP20K REP1K REP1K REP1K REP1K REP1K REP1K REP1K REP1K REP1K REP1K \
	REP1K REP1K REP1K REP1K REP1K REP1K REP1K REP1K REP1K REP1K

static void
test_listing_one_bad_message(void **state)
{
	static const struct {
		const char *list, *uidl;
		int size_state, uid_state;
		unsigned long ignored_list, ignored_uidl;
		size_t n;
	} cases[] = {
		/* LIST: no size, a bad size, an overflow, a negative, listed twice, too long */
		{ "1\r\n", "1 a\r\n", POP3_SIZE_UNKNOWN, POP3_UID_OK, 0, 0, 2 },
		{ "1 x\r\n", "1 a\r\n", POP3_SIZE_UNKNOWN, POP3_UID_OK, 0, 0, 2 },
		{ "1 184467440737095516160000\r\n", "1 a\r\n", POP3_SIZE_UNKNOWN, POP3_UID_OK, 0, 0, 2 },
		{ "1 -5\r\n", "1 a\r\n", POP3_SIZE_UNKNOWN, POP3_UID_OK, 0, 0, 2 },
		{ "1 10\r\n1 10\r\n", "1 a\r\n", POP3_SIZE_UNKNOWN, POP3_UID_OK, 0, 0, 2 },
		{ LONGLINE_20K "\r\n", "1 a\r\n", POP3_SIZE_UNKNOWN, POP3_UID_OK, 0, 0, 2 },
		/* a LIST line naming no message: left out, counted */
		{ "x 10\r\n", "1 a\r\n", 0, 0, 1, 0, 1 },
		{ REP20K "\r\n", "1 a\r\n", 0, 0, 1, 0, 1 },
		/* UIDL: no UID, an empty one, a bad one, twice, too long */
		{ "1 10\r\n", "1\r\n", POP3_SIZE_OK, POP3_UID_INVALID, 0, 0, 2 },
		{ "1 10\r\n", "1 \r\n", POP3_SIZE_OK, POP3_UID_INVALID, 0, 0, 2 },
		{ "1 10\r\n", "1 a b\r\n", POP3_SIZE_OK, POP3_UID_INVALID, 0, 0, 2 },
		{ "1 10\r\n", "1 a\r\n1 c\r\n", POP3_SIZE_OK, POP3_UID_INVALID, 0, 0, 2 },
		{ "1 10\r\n", LONGLINE_20K "\r\n", POP3_SIZE_OK, POP3_UID_INVALID, 0, 0, 2 },
		/* a UIDL line naming no message: the one it may have been is invalid */
		{ "1 10\r\n", "one a\r\n", POP3_SIZE_OK, POP3_UID_INVALID, 0, 1, 2 },
		{ "1 10\r\n", "", POP3_SIZE_OK, POP3_UID_MISSING, 0, 0, 2 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char list[32768], uidl[32768];
		const char *script[] = {
			GREETING, "<LIST", list, "<UIDL", uidl, "<RETR 2", "}+OK\r\ngood\r\n.\r\n",
			"E", NULL,
		};
		script_server sv;
		pop3_session *s;
		pop3_entry *e = NULL;
		size_t n = 0;
		buf b = { .max = 1024 };
		char *err = NULL;

		snprintf(list, sizeof list, "}+OK\r\n%s2 7\r\n.\r\n", cases[i].list);
		snprintf(uidl, sizeof uidl, "}+OK\r\n%s2 good\r\n.\r\n", cases[i].uidl);
		sv = script_server_start(script);
		/* 20 KB dripped 3 bytes at a time: seconds under valgrind on a busy machine */
		s = session(sv, 0, 30000);
		if (pop3_list(s, 10, &e, &n, &err) != POP3_OK)
			fail_msg("case %zu: LIST: %s", i, err);
		assert_int_equal(pop3_listing_ignored(s), cases[i].ignored_list);
		if (n != cases[i].n)
			fail_msg("case %zu: %zu entries", i, n);
		if (pop3_uidl(s, e, n, &err) != POP3_OK)
			fail_msg("case %zu: UIDL: %s", i, err);
		assert_int_equal(pop3_listing_ignored(s), cases[i].ignored_uidl);
		if (n == 2) {
			assert_int_equal(e[0].msgno, 1);
			if (e[0].size_state != cases[i].size_state ||
			    e[0].uid_state != cases[i].uid_state)
				fail_msg("case %zu: size_state %d uid_state %d", i, e[0].size_state,
					 e[0].uid_state);
		}
		assert_int_equal(e[n - 1].msgno, 2);
		assert_int_equal(e[n - 1].size, 7);
		assert_int_equal(e[n - 1].size_state, POP3_SIZE_OK);
		assert_int_equal(e[n - 1].uid_state, POP3_UID_OK);
		assert_string_equal(e[n - 1].uid, "good");
		assert_int_equal(pop3_retr(s, 2, &b, &err), POP3_OK);
		assert_string_equal(b.data, "good\n");
		free(e);
		buf_free(&b);
		pop3_close(&s);
		script_server_finish(&sv);
	}
}

/*
 * A body line far longer than net's 1 MiB cap (a 1.1 MB header line) comes
 * whole, byte for byte, dripped or not; the message after it too.
 */
/* The message after the bad one comes whole; then the session ends. */
static void
retr_good_and_close(pop3_session *s, script_server sv, buf *b)
{
	char *err = NULL;

	buf_reset(b);
	assert_int_equal(pop3_retr(s, 2, b, &err), POP3_OK);
	assert_string_equal(b->data, "good\n");
	buf_free(b);
	pop3_close(&s);
	script_server_finish(&sv);
}

static void
test_retr_long_line(void **state)
{
	size_t big = 1100000, i, cut = 5 + 1024 * 1024; /* where net's first piece ends */
	char *wire = malloc(big + 256), *a, *m, *z;
	size_t n = 0;
	int round;

	assert_non_null(wire);
	n += (size_t)sprintf(wire + n, "+OK\r\nX-Long: ");
	for (i = 0; i < big; i++)
		wire[n++] = i % 1000 == 999 ? '\r' : (char)('a' + i % 26);
	/* A bare CR as the last byte of a piece stays content. */
	wire[cut - 1] = '\r';
	n += (size_t)sprintf(wire + n, "\r\n.dot\r\n\r\nbody\r\n.\r\n");
	/* Round 1 drips the bytes around the piece boundary, so the pieces are
	 * cut at every offset there. */
	a = calloc(1, n + 2);
	m = calloc(1, 512);
	z = calloc(1, n + 2);
	assert_true(a != NULL && m != NULL && z != NULL);
	for (round = 0; round < 2; round++) {
		const char *script0[] = {
			GREETING, "<RETR 1", a, "<RETR 2", ">+OK\r\ngood\r\n.\r\n", "E", NULL,
		};
		const char *script1[] = {
			GREETING, "<RETR 1", a, m, z, "<RETR 2", ">+OK\r\ngood\r\n.\r\n", "E", NULL,
		};
		script_server sv;
		pop3_session *s;
		buf b = { .max = 4 * 1024 * 1024 };
		char *err = NULL;

		if (round == 0) {
			a[0] = '>';
			memcpy(a + 1, wire, n);
			sv = script_server_start(script0);
		} else {
			m[0] = '}';
			z[0] = '>';
			memcpy(a + 1, wire, cut - 100);
			a[cut - 100 + 1] = '\0';
			memcpy(m + 1, wire + cut - 100, 200);
			memcpy(z + 1, wire + cut + 100, n - cut - 100);
			z[n - cut - 100 + 1] = '\0';
			a[0] = '>';
			sv = script_server_start(script1);
		}
		s = session(sv, 0, 0);
		if (pop3_retr(s, 1, &b, &err) != POP3_OK)
			fail_msg("round %d: %s", round, err);
		assert_int_equal(b.len, 8 + big + 1 + 4 + 1 + 5);
		assert_memory_equal(b.data, "X-Long: ", 8);
		assert_memory_equal(b.data + 8, wire + 5 + 8, big);
		assert_memory_equal(b.data + 8 + big, "\ndot\n\nbody\n", 11);
		retr_good_and_close(s, sv, &b);
	}
	free(a);
	free(m);
	free(z);
	free(wire);
}

/* A long line past the cap: dropped to the end, the session goes on. */
static void
test_retr_long_line_too_big(void **state)
{
	size_t big = 1500000;
	char *wire = malloc(big + 64);
	size_t n = 0;
	const char *script[] = {
		GREETING, "<RETR 1", wire, "<RETR 2", ">+OK\r\ngood\r\n.\r\n", "E", NULL,
	};
	script_server sv;
	pop3_session *s;
	buf b = { .max = 1200000 };
	char *err = NULL;

	assert_non_null(wire);
	n += (size_t)sprintf(wire, ">+OK\r\nSubject: x\r\n\r\n");
	memset(wire + n, 'B', big);
	n += big;
	sprintf(wire + n, "\r\n.\r\n");
	sv = script_server_start(script);
	s = session(sv, 0, 0);
	assert_int_equal(pop3_retr(s, 1, &b, &err), POP3_ETOOBIG);
	assert_true(b.len <= 1200000);
	free(err);
	retr_good_and_close(s, sv, &b);
	free(wire);
}

/* STLS required but not offered: refused before anything else is sent. */
static void
test_stls_not_offered(void **state)
{
	static const char *const script[] = {
		GREETING, "<CAPA", ">+OK\r\nUSER\r\nUIDL\r\n.\r\n", "E", NULL,
	};
	script_server sv = script_server_start(script);
	pop3_options opt = { .tls = POP3_TLS_STLS, .host = "localhost",
			     .command_timeout_ms = 5000 };
	pop3_session *s = (pop3_session *)1;
	char *err = NULL;

	assert_int_equal(pop3_from_fd(sv.fd, &opt, &s, &err), POP3_ETLS);
	assert_null(s);
	assert_non_null(strstr(err, "STLS"));
	free(err);
	script_server_finish(&sv);
}

/* Plain text after the go-ahead is an injection attempt. */
static void
test_stls_injection(void **state)
{
	static const char *const script[] = {
		GREETING, "<CAPA", ">+OK\r\nSTLS\r\nUSER\r\n.\r\n",
		"<STLS", ">+OK Begin TLS negotiation now.\r\n+OK injected\r\n",
		"E", NULL,
	};
	script_server sv = script_server_start(script);
	pop3_options opt = { .tls = POP3_TLS_STLS, .host = "localhost",
			     .command_timeout_ms = 5000 };
	pop3_session *s = NULL;
	char *err = NULL;

	assert_int_equal(pop3_from_fd(sv.fd, &opt, &s, &err), POP3_ETLS);
	assert_null(s);
	assert_non_null(strstr(err, "injection"));
	free(err);
	script_server_finish(&sv);
}

static void
test_stls_refused(void **state)
{
	static const char *const script[] = {
		GREETING, "<CAPA", ">+OK\r\nSTLS\r\n.\r\n",
		"<STLS", ">-ERR [SYS/TEMP] TLS not available right now\r\n", "E", NULL,
	};
	script_server sv = script_server_start(script);
	pop3_session *s = session(sv, 0, 0);
	char *err = NULL;

	assert_int_equal(pop3_stls(s, &err), POP3_ETLS);
	assert_string_equal(err, "STLS: -ERR [SYS/TEMP] TLS not available right now");
	free(err);
	err = NULL;
	assert_int_equal(pop3_user(s, "alice", &err), POP3_EUSAGE);
	free(err);
	pop3_close(&s);
	script_server_finish(&sv);
}

static void
test_bad_greetings(void **state)
{
	static const char *const neg[] = { ">-ERR [SYS/TEMP] Too many connections\r\n", "E", NULL };
	static const char *const garbage[] = { ">+ok hello\r\n", "E", NULL };
	static const char *const none[] = { "X", NULL };
	static const char *const *const scripts[] = { neg, garbage, none };
	static const pop3_status want[] = { POP3_ENEG, POP3_EPROTO, POP3_EIO };
	static const char *const msg[] = { "greeting: -ERR [SYS/TEMP] Too many connections",
					   "greeting: unexpected reply \"+ok hello\"", NULL };
	size_t i;

	for (i = 0; i < 3; i++) {
		script_server sv = script_server_start(scripts[i]);
		pop3_session *s = (pop3_session *)1;
		char *err = NULL;

		assert_int_equal(pop3_from_fd(sv.fd, NULL, &s, &err), want[i]);
		assert_null(s);
		assert_non_null(err);
		if (msg[i] != NULL)
			assert_string_equal(err, msg[i]);
		free(err);
		script_server_finish(&sv);
	}
}

static void
test_long_line_and_timeout(void **state)
{
	static const char *const long_line[] = {
		GREETING,
		"<NOOP", ">+OK 0123456789012345678901234567890123456789012345678901234567890123456789\r\n",
		"E", NULL,
	};
	/* Body lines are not replies: a long one is still a good message. */
	static const char *const long_body[] = {
		GREETING,
		"<RETR 1", ">+OK\r\n<html>0123456789012345678901234567890123456789012345678901"
			   "234567890123456789</html>\r\n.\r\n",
		"<NOOP", ">+OK\r\n", "E", NULL,
	};
	static const char *const silent[] = { GREETING, "<NOOP", "E", NULL };
	script_server sv = script_server_start(long_line);
	pop3_session *s = session(sv, 64, 0);
	buf b = { .max = 4096 };
	char *err = NULL;
	long long t0;

	assert_int_equal(pop3_noop(s, &err), POP3_EPROTO);
	assert_string_equal(err, "NOOP: reply line longer than 64 bytes");
	free(err);
	err = NULL;
	pop3_close(&s);
	script_server_finish(&sv);

	sv = script_server_start(long_body);
	s = session(sv, 64, 0);
	assert_int_equal(pop3_retr(s, 1, &b, NULL), POP3_OK);
	assert_int_equal(b.len, 84); /* 83 characters and LF */
	assert_int_equal(pop3_noop(s, NULL), POP3_OK);
	pop3_close(&s);
	script_server_finish(&sv);
	buf_free(&b);

	sv = script_server_start(silent);
	s = session(sv, 0, 300);
	t0 = clock_now_ms();
	assert_int_equal(pop3_noop(s, &err), POP3_EIO);
	assert_true(clock_now_ms() - t0 < 3000);
	assert_non_null(strstr(err, "timed out"));
	free(err);
	pop3_close(&s);
	script_server_finish(&sv);
}

/* Arguments that would smuggle a second command are refused before sending. */
static void
test_bad_arguments(void **state)
{
	static const char *const script[] = { GREETING, "E", NULL };
	script_server sv = script_server_start(script);
	pop3_session *s = session(sv, 0, 0);
	char *err = NULL, longarg[300], longpass[1100];

	memset(longarg, 'a', sizeof(longarg) - 1);
	longarg[sizeof(longarg) - 1] = '\0';
	memset(longpass, 'p', sizeof(longpass) - 1);
	longpass[sizeof(longpass) - 1] = '\0';
	assert_int_equal(pop3_user(s, "alice\r\nDELE 1", &err), POP3_EUSAGE);
	free(err);
	err = NULL;
	assert_int_equal(pop3_user(s, "", &err), POP3_EUSAGE);
	free(err);
	err = NULL;
	assert_int_equal(pop3_user(s, longarg, &err), POP3_EUSAGE);
	free(err);
	err = NULL;
	assert_int_equal(pop3_pass(s, "x\nQUIT", &err), POP3_EUSAGE);
	free(err);
	err = NULL;
	/* SASL's own limit (proto/sasl.h) is 1024 bytes, for POP3 and SMTP alike. */
	assert_int_equal(pop3_auth(s, "PLAIN", "alice", longpass, &err), POP3_EUSAGE);
	free(err);
	pop3_close(&s);
	script_server_finish(&sv);
	assert_int_equal(trace_len, strlen("S: +OK POP3 ready <1896.697170952@dbc.mtview.ca.us>\n"));
}

/* pop3_connect over TCP on loopback: greeting, then CAPA without being asked. */
static void
test_connect_capa(void **state)
{
	static const char *const script[] = {
		">+OK ready\r\n", "<CAPA", ">-ERR what is CAPA?\r\n",
		"<NOOP", ">+OK\r\n", "<QUIT", ">+OK\r\n", "E", NULL,
	};
	pop3_options opt = { .host = "127.0.0.1", .command_timeout_ms = 5000 };
	pop3_session *s = NULL;
	char *err = NULL;
	script_server sv = script_server_listen(script);

	opt.port = sv.port;
	/* A server without CAPA is plain RFC 1939: connecting still succeeds. */
	assert_int_equal(pop3_connect(&opt, &s, &err), POP3_OK);
	assert_null(err);
	assert_false(pop3_has_capa(s, "UIDL"));
	assert_int_equal(pop3_noop(s, NULL), POP3_OK);
	assert_int_equal(pop3_quit(s, NULL), POP3_OK);
	pop3_close(&s);
	script_server_finish(&sv);
}

/* ------------------------------------------------------------ bodies through the session */

/*
 * The reference: what the per-line path (linebuf + pop3_body_piece, whole
 * lines) makes of a whole body, into out.  1 at the terminator, -1 where buf refused (errno).
 */
static int
ref_body(const char *wire, size_t len, buf *out)
{
	linebuf lb;
	const char *line;
	size_t n;
	int r;

	assert_int_equal(linebuf_init(&lb, 1024 * 1024), 0);
	assert_int_equal(linebuf_feed(&lb, wire, len), 0);
	do {
		assert_int_equal(linebuf_next(&lb, &line, &n), 1);
		r = pop3_body_piece(line, n, 1, 1, out);
	} while (r == 1);
	linebuf_free(&lb);
	return r == 0 ? 1 : -1;
}

/*
 * RETR 1 whose reply arrives as the given pieces, with a pause between them
 * so each is a read of its own; "+OK next" follows the terminator in the
 * same write and must be left for a NOOP after it (if ok: the RETR is
 * expected to work).
 */
static pop3_status
retr_in_pieces(const char *const *pieces, size_t npieces, int ok, buf *b, char **err)
{
	const char *script[32];
	char *own[16];
	size_t i, n = 0, nown = 0;
	script_server sv;
	pop3_session *s;
	pop3_status st;

	assert_true(npieces <= 8);
	script[n++] = GREETING;
	script[n++] = "<RETR 1";
	for (i = 0; i < npieces; i++) {
		size_t len = strlen(pieces[i]);
		char *p = malloc(len + 2);

		assert_non_null(p);
		p[0] = '>';
		memcpy(p + 1, pieces[i], len + 1);
		own[nown++] = p;
		script[n++] = p;
		if (i + 1 < npieces)
			script[n++] = "Z3";
	}
	if (ok)
		script[n++] = "<NOOP";
	script[n++] = NULL;
	sv = script_server_start(script);
	s = session(sv, 0, 0);
	st = pop3_retr(s, 1, b, err);
	if (st == POP3_OK && ok) {
		/* In step with the server: the bytes after "." were kept. */
		assert_int_equal(pop3_noop(s, NULL), POP3_OK);
	}
	pop3_close(&s);
	if (ok) {
		script_server_finish(&sv);
	} else {
		int status;

		/* A refused body is not read to its end: the server may fail to write it. */
		assert_int_equal(waitpid(sv.pid, &status, 0), sv.pid);
	}
	for (i = 0; i < nown; i++)
		free(own[i]);
	return st;
}

/* Pipelined commands and their error labels spell every message number out. */
static void
test_pipe_numbers(void **state)
{
	static const char *const script[] = {
		GREETING,
		"<RETR 18446744073709551615", "<DELE 0", "<RETR 1000000007",
		">-ERR no such message\r\n+OK\r\n-ERR [SYS/TEMP] later\r\n",
		"E", NULL,
	};
	script_server sv = script_server_start(script);
	pop3_session *s = session(sv, 0, 0);
	buf b = { .max = 4096 };
	char *err = NULL;

	assert_int_equal(sizeof(unsigned long), 8);
	assert_int_equal(pop3_send_retr(s, 18446744073709551615UL, NULL), POP3_OK);
	assert_int_equal(pop3_send_dele(s, 0, NULL), POP3_OK);
	assert_int_equal(pop3_send_retr(s, 1000000007UL, NULL), POP3_OK);
	assert_int_equal(pop3_recv_retr(s, &b, &err), POP3_ENEG);
	assert_string_equal(err, "RETR 18446744073709551615: -ERR no such message");
	free(err);
	err = NULL;
	assert_int_equal(pop3_recv_dele(s, NULL), POP3_OK);
	assert_int_equal(pop3_recv_retr(s, &b, &err), POP3_ENEG);
	assert_string_equal(err, "RETR 1000000007: -ERR [SYS/TEMP] later");
	free(err);
	assert_true(strstr(trace_text, "C: RETR 18446744073709551615\nC: DELE 0\n"
				       "C: RETR 1000000007\n") != NULL);
	pop3_close(&s);
	script_server_finish(&sv);
	buf_free(&b);
}

/* Every odd line the wire may carry; the NOOP's reply follows the body. */
static const char edge_wire[] =
	"+OK 99 octets\r\n"
	"Subject: edges\r\n"
	"\r\n"
	"..\r\n"
	"...\r\n"
	"..leading dot\r\n"
	"bare CR\rinside\r\n"
	"two CRs\r\r\n"
	".\r\r\n"
	"\r\r\n"
	"bare LF line\n"
	". \r\n"
	"\n"
	"last\r\n"
	".\r\n"
	"+OK next\r\n";

/* The expected body, from the reference path (the status line skipped). */
static void
edge_expected(buf *want)
{
	const char *body = strchr(edge_wire, '\n') + 1;

	assert_int_equal(ref_body(body, strlen(body), want), 1);
	/* Only the CR right before the LF goes; stuffing is undone once. */
	assert_string_equal(want->data, "Subject: edges\n\n.\n..\n.leading dot\n"
			    "bare CR\rinside\ntwo CRs\r\n\r\n\r\nbare LF line\n \n\nlast\n");
}

/* Split once at every byte: "\r" | "\n", "." | "\r\n", a stuffed dot at the edge. */
static void
test_body_split_everywhere(void **state)
{
	buf want = { .max = 4096 };
	size_t k, total = strlen(edge_wire);
	char first[sizeof(edge_wire)], *err = NULL;

	edge_expected(&want);
	for (k = 1; k < total; k++) {
		const char *pieces[2] = { first, edge_wire + k };
		buf b = { .max = 4096 };
		pop3_status st;

		memcpy(first, edge_wire, k);
		first[k] = '\0';
		st = retr_in_pieces(pieces, 2, 1, &b, &err);
		if (st != POP3_OK)
			fail_msg("split at %zu: %d %s", k, st, err != NULL ? err : "");
		if (b.len != want.len || memcmp(b.data, want.data, want.len) != 0)
			fail_msg("split at %zu: body differs", k);
		assert_int_equal(b.data[b.len], '\0');
		buf_free(&b);
	}
	buf_free(&want);
}

/* Two pipelined bodies dripped a few bytes at a time, back to back. */
static void
test_body_drip_pipelined(void **state)
{
	static const char *const script[] = {
		GREETING,
		"<RETR 1", "<RETR 2",
		"}+OK\r\n..one\r\n\r\n.\r\n+OK\r\n...two\r\nx\ry\r\r\n.\r\n",
		"<NOOP", ">+OK\r\n", "E", NULL,
	};
	script_server sv = script_server_start(script);
	pop3_session *s = session(sv, 0, 0);
	buf b = { .max = 4096 };

	assert_int_equal(pop3_send_retr(s, 1, NULL), POP3_OK);
	assert_int_equal(pop3_send_retr(s, 2, NULL), POP3_OK);
	assert_int_equal(pop3_recv_retr(s, &b, NULL), POP3_OK);
	assert_string_equal(b.data, ".one\n\n");
	buf_reset(&b);
	assert_int_equal(pop3_recv_retr(s, &b, NULL), POP3_OK);
	assert_int_equal(b.len, 11);
	assert_memory_equal(b.data, "..two\nx\ry\r\n", 11);
	assert_int_equal(pop3_noop(s, NULL), POP3_OK);
	pop3_close(&s);
	script_server_finish(&sv);
	buf_free(&b);
}

/*
 * The cap at every size around the body's: exactly fitting works; one byte
 * less fails as ETOOBIG with what the per-line path would have kept.
 */
static void
test_body_cap_session(void **state)
{
	buf want = { .max = 4096 };
	size_t max;
	char *err = NULL;

	edge_expected(&want);
	for (max = want.len - 20; max <= want.len + 1; max++) {
		const char *pieces[1] = { edge_wire };
		buf b = { .max = max }, ref = { .max = max };
		const char *body = strchr(edge_wire, '\n') + 1;
		int rr = ref_body(body, strlen(body), &ref);
		pop3_status st = retr_in_pieces(pieces, 1, rr == 1, &b, &err);

		if (rr == 1) {
			assert_int_equal(st, POP3_OK);
		} else {
			assert_int_equal(st, POP3_ETOOBIG);
			assert_non_null(strstr(err, "RETR 1: message larger than the limit"));
		}
		free(err);
		err = NULL;
		assert_true(b.len <= max);
		assert_int_equal(b.len, ref.len);
		if (b.len > 0)
			assert_memory_equal(b.data, ref.data, b.len);
		buf_free(&b);
		buf_free(&ref);
	}
	buf_free(&want);
}

/* Random bodies (dots, CRs, LFs), random splits and caps, against the reference. */
static void
test_body_random(void **state)
{
	static const char alphabet[] = "ab..\r\r\n\n\n ";
	unsigned seed = 12345;
	int round;

	for (round = 0; round < 150; round++) {
		char wire[600], *pieces_own[4];
		const char *pieces[4];
		size_t n = 0, len, i, cut[3], max, np = 1 + (size_t)(rand_r(&seed) % 3);
		buf b, ref;
		int rr;
		pop3_status st;
		char *err = NULL;

		n = (size_t)snprintf(wire, sizeof(wire), "+OK\r\n");
		len = (size_t)(rand_r(&seed) % 400);
		for (i = 0; i < len; i++) {
			wire[n] = alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)];
			/* A lone "." line would end the body early: stuff it. */
			if (wire[n] == '\n' && wire[n - 1] == '.' && wire[n - 2] == '\n')
				wire[n] = 'x';
			if (wire[n] == '\n' && wire[n - 1] == '\r' && wire[n - 2] == '.' &&
			    wire[n - 3] == '\n')
				wire[n] = 'y';
			n++;
		}
		/* Nor may the CRLF below turn a last "." into one. */
		if (wire[n - 1] == '.' && wire[n - 2] == '\n')
			wire[n++] = 'z';
		n += (size_t)snprintf(wire + n, sizeof(wire) - n, "\r\n.\r\n+OK\r\n");
		max = 1 + (size_t)(rand_r(&seed) % 450);
		b = (buf){ .max = max };
		ref = (buf){ .max = max };
		rr = ref_body(wire + 5, n - 5, &ref);
		/* np pieces at sorted random cuts (empty pieces merge away). */
		for (i = 0; i + 1 < np; i++)
			cut[i] = 1 + (size_t)(rand_r(&seed) % (n - 1));
		if (np == 3 && cut[0] > cut[1]) {
			size_t t = cut[0];

			cut[0] = cut[1];
			cut[1] = t;
		}
		{
			size_t from = 0, k = 0;

			for (i = 0; i < np; i++) {
				size_t to = i + 1 < np ? cut[i] : n;

				if (to <= from)
					continue;
				pieces_own[k] = strndup(wire + from, to - from);
				assert_non_null(pieces_own[k]);
				pieces[k] = pieces_own[k];
				k++;
				from = to;
			}
			np = k;
		}
		st = retr_in_pieces(pieces, np, rr == 1, &b, &err);
		if (rr == 1 && st != POP3_OK)
			fail_msg("round %d: %d %s", round, st, err != NULL ? err : "");
		if (rr != 1 && st != POP3_ETOOBIG)
			fail_msg("round %d: %d, wanted ETOOBIG", round, st);
		if (b.len != ref.len || (b.len > 0 && memcmp(b.data, ref.data, b.len) != 0))
			fail_msg("round %d: body differs (%zu, want %zu)", round, b.len, ref.len);
		free(err);
		for (i = 0; i < np; i++)
			free(pieces_own[i]);
		buf_free(&b);
		buf_free(&ref);
	}
}

/* ------------------------------------------------------------ OAuth (TLS) */

static pop3_session *
session_tls(script_server sv)
{
	pop3_options opt = { .tls = POP3_TLS_IMPLICIT, .host = "localhost", .port = "995",
			     .ca_file = tls_relay_ca(),
			     /* Room for a handshake under valgrind (tests/run). */
			     .command_timeout_ms = 60000 };
	pop3_session *s = NULL;
	char *err = NULL;
	pop3_status st;

	trace_len = 0;
	trace_text[0] = '\0';
	st = pop3_from_fd_trace(sv.fd, &opt, trace_collect, NULL, &s, &err);
	if (st != POP3_OK)
		fail_msg("pop3_from_fd over TLS: %d %s", st, err != NULL ? err : "");
	assert_true(pop3_is_tls(s));
	/* As pop3_connect does: callers choose the mechanism from CAPA. */
	assert_int_equal(pop3_capa(s, NULL), POP3_OK);
	return s;
}

/* "<" + the base64 of the response the server must read. */
#define expect_b64(bearer, user, tok) tls_relay_oauth_line("<", bearer, user, tok, "995")
#define CAPA_OAUTH(mechs) ">+OK\r\nUIDL\r\nSASL PLAIN " mechs "\r\nRESP-CODES\r\n.\r\n"
/* RFC 7628 3.2.2's failure: {"status":"invalid_token","scope":"example_scope",...} */
#define CHALLENGE "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NvcGUiOiJleGFtcGxlX3Njb3BlIiwi" \
	"b3BlbmlkLWNvbmZpZ3VyYXRpb24iOiJodHRwczovL2V4YW1wbGUuY29tLy53ZWxsLWtub3duL29wZW5p" \
	"ZC1jb25maWd1cmF0aW9uIn0="

/* XOAUTH2 where only XOAUTH2 is offered: AUTH, "+ ", the response; never one line. */
static void
test_oauth_xoauth2(void **state)
{
	char *tok = tls_relay_token(40), *resp = expect_b64(0, "box@example.com", tok);
	const char *script[] = {
		GREETING, "<CAPA", CAPA_OAUTH("XOAUTH2"),
		"<AUTH XOAUTH2", ">+ \r\n", resp, ">+OK User successfully authenticated.\r\n",
		"<QUIT", ">+OK\r\n", "E", NULL,
	};
	script_server sv = script_server_start_tls(script);
	pop3_session *s = session_tls(sv);
	const char *used = "unset";

	assert_int_equal(pop3_auth_oauth(s, NULL, "box@example.com", tok, &used, NULL), POP3_OK);
	assert_string_equal(used, "XOAUTH2");
	assert_int_equal(pop3_quit(s, NULL), POP3_OK);
	pop3_close(&s);
	script_server_finish(&sv);
	assert_non_null(strstr(trace_text, "C: AUTH XOAUTH2\nS: + \nC: <redacted>\nS: +OK"));
	assert_null(strstr(trace_text, tok));
	assert_null(strstr(trace_text, resp + 1));
	free(resp);
	free(tok);
}

/* OAUTHBEARER preferred when both are offered; a 4 KB token makes a 6 KB line. */
static void
test_oauth_oauthbearer_4k(void **state)
{
	char *tok = tls_relay_token(4096), *resp = expect_b64(1, "box@example.com", tok);
	const char *script[] = {
		GREETING, "<CAPA", CAPA_OAUTH("XOAUTH2 OAUTHBEARER"),
		"<AUTH OAUTHBEARER", ">+\r\n", resp, ">+OK\r\n",
		"<STAT", ">+OK 0 0\r\n", "E", NULL,
	};
	script_server sv = script_server_start_tls(script);
	pop3_session *s = session_tls(sv);
	const char *used = NULL;
	unsigned long n;
	unsigned long long o;

	assert_true(strlen(resp) > 5500);
	assert_int_equal(pop3_auth_oauth(s, NULL, "box@example.com", tok, &used, NULL), POP3_OK);
	assert_string_equal(used, "OAUTHBEARER");
	assert_int_equal(pop3_stat(s, &n, &o, NULL), POP3_OK);
	pop3_close(&s);
	script_server_finish(&sv);
	assert_non_null(strstr(trace_text, "C: AUTH OAUTHBEARER\nS: +\nC: <redacted>\n"));
	assert_null(strstr(trace_text, "eyJ0eXAi"));
	free(resp);
	free(tok);
}

/* A refused token: the JSON challenge, our empty line, the final -ERR. */
static void
test_oauth_xoauth2_refused(void **state)
{
	char *tok = tls_relay_token(2500), *resp = expect_b64(0, "box@example.com", tok);
	const char *script[] = {
		GREETING, "<CAPA", CAPA_OAUTH("XOAUTH2"),
		"<AUTH XOAUTH2", ">+ \r\n", resp, ">+ " CHALLENGE "\r\n",
		"<", ">-ERR [AUTH] Authentication failed.\r\n",
		/* The session stays usable after a refusal. */
		"<QUIT", ">+OK\r\n", "E", NULL,
	};
	script_server sv = script_server_start_tls(script);
	pop3_session *s = session_tls(sv);
	char *err = NULL;

	assert_int_equal(pop3_auth_oauth(s, "xoauth2", "box@example.com", tok, NULL, &err),
			 POP3_EAUTH);
	assert_non_null(strstr(err, "-ERR [AUTH] Authentication failed."));
	assert_non_null(strstr(err, "\"status\":\"invalid_token\""));
	assert_non_null(strstr(err, "\"scope\":\"example_scope\""));
	assert_null(strstr(err, "eyJ0eXAi"));
	assert_int_equal(pop3_last_code(s), POP3_RC_AUTH);
	free(err);
	assert_int_equal(pop3_quit(s, NULL), POP3_OK);
	pop3_close(&s);
	script_server_finish(&sv);
	assert_null(strstr(trace_text, "eyJ0eXAi"));
	assert_non_null(strstr(trace_text, "C: <redacted>\nS: + eyJzdGF0dXMi"));
	free(resp);
	free(tok);
}

/* OAUTHBEARER's failure (RFC 7628 3.2.3): the client answers with %x01. */
static void
test_oauth_oauthbearer_refused(void **state)
{
	char *tok = tls_relay_token(64), *resp = expect_b64(1, "a,b@example.com", tok);
	const char *script[] = {
		GREETING, "<CAPA", CAPA_OAUTH("OAUTHBEARER XOAUTH2"),
		"<AUTH OAUTHBEARER", ">+ \r\n", NULL, ">+ " CHALLENGE "\r\n",
		"<AQ==", ">-ERR [AUTH] token expired\r\n", "E", NULL,
	};
	script_server sv;
	pop3_session *s;
	char *err = NULL, *esc = expect_b64(1, "a=2Cb@example.com", tok);

	free(resp);
	script[5] = esc; /* RFC 5801: "," in the user name is sent as "=2C" */
	sv = script_server_start_tls(script);
	s = session_tls(sv);
	assert_int_equal(pop3_auth_oauth(s, NULL, "a,b@example.com", tok, NULL, &err), POP3_EAUTH);
	assert_non_null(strstr(err, "token expired"));
	assert_non_null(strstr(err, "invalid_token"));
	free(err);
	pop3_close(&s);
	script_server_finish(&sv);
	free(esc);
	free(tok);
}

/* Exchange Online's way: -ERR right after the token, no challenge; then a
 * second challenge after our answer is cancelled, not answered again. */
static void
test_oauth_refused_plainly(void **state)
{
	char *tok = tls_relay_token(100), *resp = expect_b64(0, "box@example.com", tok);
	const char *script[] = {
		GREETING, "<CAPA", CAPA_OAUTH("XOAUTH2"),
		"<AUTH XOAUTH2", ">+ \r\n", resp,
		">-ERR Authentication failure: unknown user name or bad password.\r\n",
		"<AUTH XOAUTH2", ">+ \r\n", resp, ">+ " CHALLENGE "\r\n", "<", ">+ again\r\n",
		"<*", ">-ERR cancelled\r\n", "E", NULL,
	};
	script_server sv = script_server_start_tls(script);
	pop3_session *s = session_tls(sv);
	char *err = NULL;

	assert_int_equal(pop3_auth_oauth(s, NULL, "box@example.com", tok, NULL, &err), POP3_EAUTH);
	assert_string_equal(err, "AUTH: -ERR Authentication failure: unknown user name or bad "
			    "password.");
	free(err);
	err = NULL;
	assert_int_equal(pop3_auth_oauth(s, NULL, "box@example.com", tok, NULL, &err), POP3_EPROTO);
	assert_non_null(strstr(err, "second challenge"));
	assert_non_null(strstr(err, "invalid_token"));
	free(err);
	pop3_close(&s);
	script_server_finish(&sv);
	assert_null(strstr(trace_text, "eyJ0eXAi"));
	free(resp);
	free(tok);
}

/* Never before TLS: nothing is sent, whatever the server offers. */
static void
test_oauth_needs_tls(void **state)
{
	static const char *const script[] = {
		GREETING, "<CAPA", CAPA_OAUTH("XOAUTH2 OAUTHBEARER"), "E", NULL,
	};
	script_server sv = script_server_start(script);
	pop3_session *s = session(sv, 0, 0);
	const char *used = NULL;
	char *err = NULL;

	assert_int_equal(pop3_capa(s, NULL), POP3_OK);
	assert_int_equal(pop3_auth_oauth(s, NULL, "box@example.com", "tok", &used, &err),
			 POP3_EUSAGE);
	assert_non_null(strstr(err, "TLS"));
	assert_string_equal(used, "OAUTHBEARER");
	free(err);
	err = NULL;
	assert_int_equal(pop3_auth_oauth(s, "XOAUTH2", "box@example.com", "tok", NULL, &err),
			 POP3_EUSAGE);
	free(err);
	pop3_close(&s);
	script_server_finish(&sv);
	assert_null(strstr(trace_text, "C: AUTH"));
}

/* No OAuth mechanism offered, a bad mechanism or token: refused before sending. */
static void
test_oauth_usage(void **state)
{
	static const char *const script[] = {
		GREETING, "<CAPA", CAPA_OAUTH("LOGIN"), "<QUIT", ">+OK\r\n", "E", NULL,
	};
	script_server sv = script_server_start_tls(script);
	pop3_session *s = session_tls(sv);
	const char *used = "unset";
	char *err = NULL;

	assert_int_equal(pop3_auth_oauth(s, NULL, "box@example.com", "tok", &used, &err),
			 POP3_EUSAGE);
	assert_null(used);
	assert_non_null(strstr(err, "neither"));
	free(err);
	err = NULL;
	assert_int_equal(pop3_auth_oauth(s, "PLAIN", "box@example.com", "tok", NULL, &err),
			 POP3_EUSAGE);
	free(err);
	err = NULL;
	assert_int_equal(pop3_auth_oauth(s, "XOAUTH2", "box@example.com", "tok", NULL, &err),
			 POP3_EUSAGE);
	assert_non_null(strstr(err, "does not offer"));
	free(err);
	err = NULL;
	assert_int_equal(pop3_auth(s, "XOAUTH2", "box@example.com", "tok", &err), POP3_EUSAGE);
	free(err);
	assert_int_equal(pop3_quit(s, NULL), POP3_OK);
	pop3_close(&s);
	script_server_finish(&sv);
	assert_null(strstr(trace_text, "C: AUTH"));
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
		cmocka_unit_test(test_status_table),
		cmocka_unit_test(test_status_len),
		cmocka_unit_test(test_rcode_classes),
		cmocka_unit_test(test_list_table),
		cmocka_unit_test(test_uidl_table),
		cmocka_unit_test(test_uid_valid),
		cmocka_unit_test(test_stat_parse),
		cmocka_unit_test(test_ml_line),
		cmocka_unit_test(test_body_chunks),
		cmocka_unit_test(test_body_cap),
		cmocka_unit_test(test_dialogue),
		cmocka_unit_test(test_pass_in_use),
		cmocka_unit_test(test_pass_auth_failed),
		cmocka_unit_test(test_apop),
		cmocka_unit_test(test_apop_without_timestamp),
		cmocka_unit_test(test_auth_plain),
		cmocka_unit_test(test_auth_login),
		cmocka_unit_test(test_retr_too_big),
		cmocka_unit_test(test_close_mid_retr),
		cmocka_unit_test(test_retr_err_then_top),
		cmocka_unit_test(test_uidl_marks),
		cmocka_unit_test(test_list_bad),
		cmocka_unit_test(test_listing_one_bad_message),
		cmocka_unit_test(test_retr_long_line),
		cmocka_unit_test(test_retr_long_line_too_big),
		cmocka_unit_test(test_stls_not_offered),
		cmocka_unit_test(test_stls_injection),
		cmocka_unit_test(test_stls_refused),
		cmocka_unit_test(test_bad_greetings),
		cmocka_unit_test(test_long_line_and_timeout),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_connect_capa),
		cmocka_unit_test(test_pipe_numbers),
		cmocka_unit_test(test_body_split_everywhere),
		cmocka_unit_test(test_body_drip_pipelined),
		cmocka_unit_test(test_body_cap_session),
		cmocka_unit_test(test_body_random),
		cmocka_unit_test(test_oauth_xoauth2),
		cmocka_unit_test(test_oauth_oauthbearer_4k),
		cmocka_unit_test(test_oauth_xoauth2_refused),
		cmocka_unit_test(test_oauth_oauthbearer_refused),
		cmocka_unit_test(test_oauth_refused_plainly),
		cmocka_unit_test(test_oauth_needs_tls),
		cmocka_unit_test(test_oauth_usage),
	};

	return cmocka_run_group_tests(tests, tls_setup, tls_teardown);
}

/* mailmill - ISC licence, see LICENSE */
/*
 * The IMAP response parser without sockets: responses from tables, the
 * same transcript fed whole, byte by byte and in random small chunks (the
 * results must not differ), the bounds, and the helpers that build
 * commands (UID sets, modified UTF-7).
 */
#include <config.h>

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/buf.h"
#include "proto/imap.h"

/* One response as text: kind, tag, cond, number, name, [code arg], text, tokens. */
static void
describe_toks(buf *o, const imap_token *t, size_t from, size_t to)
{
	size_t i = from;
	char tmp[64];

	while (i < to) {
		if (i > from)
			buf_append(o, " ", 1);
		switch (t[i].type) {
		case IMAP_T_ATOM:
			buf_append(o, t[i].s, t[i].len);
			break;
		case IMAP_T_NIL:
			buf_append(o, "NIL", 3);
			break;
		case IMAP_T_STRING:
			buf_append(o, "\"", 1);
			buf_append(o, t[i].s, t[i].len);
			buf_append(o, "\"", 1);
			break;
		case IMAP_T_BODY:
			snprintf(tmp, sizeof(tmp), "<body %zu>", t[i].len);
			buf_append(o, tmp, strlen(tmp));
			break;
		case IMAP_T_LIST:
			buf_append(o, "(", 1);
			describe_toks(o, t, i + 1, t[i].end);
			buf_append(o, ")", 1);
			i = t[i].end;
			continue;
		}
		i++;
	}
}

static void
describe(buf *o, const imap_response *r)
{
	static const char *const kinds[] = { "+", "*", "T" };
	static const char *const conds[] = { "-", "OK", "NO", "BAD", "PREAUTH", "BYE" };
	char tmp[64];

	buf_append(o, kinds[r->kind], 1);
	buf_append(o, "|", 1);
	buf_append(o, r->tag, r->tag_len);
	buf_append(o, "|", 1);
	buf_append(o, conds[r->cond], strlen(conds[r->cond]));
	buf_append(o, "|", 1);
	if (r->has_number) {
		snprintf(tmp, sizeof(tmp), "%lu", (unsigned long)r->number);
		buf_append(o, tmp, strlen(tmp));
	}
	buf_append(o, "|", 1);
	buf_append(o, r->name, r->name_len);
	buf_append(o, "|", 1);
	buf_append(o, r->code, r->code_len);
	buf_append(o, "|", 1);
	buf_append(o, r->code_arg, r->code_arg_len);
	buf_append(o, "|", 1);
	buf_append(o, r->text, r->text_len);
	buf_append(o, "|", 1);
	describe_toks(o, r->toks, 0, r->n_toks);
	buf_append(o, "\n", 1);
}

/*
 * Feed in[0..len) in chunks of `chunk` bytes (0: random 1-7): every
 * response described into out, bodies appended to body; the result of the
 * last feed (IMAP_P_ERROR or IMAP_P_MORE).
 */
static imap_parse_event
run(const imap_parser_limits *lim, const char *in, size_t len, size_t chunk, buf *out, buf *body)
{
	imap_parser *p = imap_parser_new(lim);
	size_t off = 0;
	imap_parse_event ev = IMAP_P_MORE;

	assert_non_null(p);
	while (off < len && ev != IMAP_P_ERROR) {
		size_t n = chunk ? chunk : (size_t)(rand() % 7) + 1, pos = 0;

		if (n > len - off)
			n = len - off;
		while (pos < n) {
			const char *c = NULL;
			size_t used = 0, cl = 0;

			ev = imap_parser_feed(p, in + off + pos, n - pos, &used, &c, &cl);
			assert_true(used <= n - pos);
			pos += used;
			if (ev == IMAP_P_RESPONSE)
				describe(out, imap_parser_response(p));
			else if (ev == IMAP_P_BODY)
				buf_append(body, c, cl);
			else if (ev == IMAP_P_ERROR)
				break;
			else
				assert_int_equal(pos, n);
		}
		off += n;
	}
	if (ev == IMAP_P_ERROR)
		buf_append(out, imap_parser_error(p), strlen(imap_parser_error(p)));
	imap_parser_free(&p);
	assert_null(p);
	return ev == IMAP_P_ERROR ? ev : IMAP_P_MORE;
}

static const struct {
	const char *in, *want;
} cases[] = {
	{ "* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR] Dovecot ready.\r\n",
	  "*||OK||OK|CAPABILITY|IMAP4rev1 LITERAL+ SASL-IR|Dovecot ready.|\n" },
	{ "* PREAUTH welcome\r\n", "*||PREAUTH||PREAUTH|||welcome|\n" },
	{ "* BYE shutting down\n", "*||BYE||BYE|||shutting down|\n" },
	{ "A1 OK done\r\n", "T|A1|OK||OK|||done|\n" },
	{ "A2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
	  "T|A2|NO||NO|AUTHENTICATIONFAILED||Authentication failed.|\n" },
	{ "a3 bad\r\n", "T|a3|BAD||bad||||\n" },
	{ "+ \r\n", "+||-||||||\n" },
	{ "+ eyJzdGF0dXMiOiI0MDEifQ==\r\n", "+||-|||||eyJzdGF0dXMiOiI0MDEifQ==|\n" },
	{ "+\r\n", "+||-||||||\n" },
	{ "* 23 EXISTS\r\n", "*||-|23|EXISTS||||\n" },
	{ "* 4294967295 EXPUNGE\r\n", "*||-|4294967295|EXPUNGE||||\n" },
	{ "* OK [UIDVALIDITY 3857529045] UIDs valid\r\n",
	  "*||OK||OK|UIDVALIDITY|3857529045|UIDs valid|\n" },
	{ "A4 OK [READ-ONLY] EXAMINE completed\r\n", "T|A4|OK||OK|READ-ONLY||EXAMINE completed|\n" },
	{ "* CAPABILITY IMAP4rev1 IDLE MOVE\r\n",
	  "*||-||CAPABILITY||||IMAP4rev1 IDLE MOVE\n" },
	{ "* 12 FETCH (FLAGS (\\Seen \\Deleted) UID 44 RFC822.SIZE 1234)\r\n",
	  "*||-|12|FETCH||||(FLAGS (\\Seen \\Deleted) UID 44 RFC822.SIZE 1234)\n" },
	{ "* LIST (\\HasNoChildren) \"/\" \"Sent \\\"x\\\"\"\r\n",
	  "*||-||LIST||||(\\HasNoChildren) \"/\" \"Sent \"x\"\"\n" },
	{ "* LIST () NIL {5}\r\nIN\"BX\r\n", "*||-||LIST||||() NIL \"IN\"BX\"\n" },
	{ "* SEARCH 2 84 882\r\n", "*||-||SEARCH||||2 84 882\n" },
	{ "* SEARCH\r\n", "*||-||SEARCH||||\n" },
	{ "* 1 FETCH (UID 7 BODY[] {5}\r\nhello)\r\n", "*||-|1|FETCH||||(UID 7 BODY[] <body 5>)\n" },
	{ "* 1 FETCH (BODY[HEADER.FIELDS (FROM)]<0> {3}\r\nabc UID 9)\r\n",
	  "*||-|1|FETCH||||(BODY[HEADER.FIELDS (FROM)]<0> <body 3> UID 9)\n" },
	{ "* 1 FETCH (RFC822 {2}\r\nab)\r\n", "*||-|1|FETCH||||(RFC822 <body 2>)\n" },
	{ "* 1 FETCH (BINARY[] ~{2}\r\nab)\r\n", "*||-|1|FETCH||||(BINARY[] <body 2>)\n" },
	{ "* 1 FETCH (ENVELOPE (NIL {3}\r\nsub))\r\n", "*||-|1|FETCH||||(ENVELOPE (NIL \"sub\"))\n" },
	{ "* 1 FETCH (BODY[] {0}\r\n)\r\n", "*||-|1|FETCH||||(BODY[] <body 0>)\n" },
	{ "* 1 FETCH (BODY[] NIL)\r\n", "*||-|1|FETCH||||(BODY[] NIL)\n" },
	/* a body literal outside FETCH is an ordinary (bounded) literal */
	{ "* 1 XFOO (BODY[] {2}\r\nab)\r\n", "*||-|1|XFOO||||(BODY[] \"ab\")\n" },
	{ "* OK [ALERT] look (unbalanced\r\n", "*||OK||OK|ALERT||look (unbalanced|\n" },
	{ "* NO [UNAVAILABLE\r\n", "unterminated response code" },
	{ "A1 FOO bar\r\n", "tagged response that is not OK, NO or BAD" },
	{ "\r\n", "empty response line" },
	{ "* 1 FETCH (UID 1\r\n", "unbalanced parenthesis" },
	{ "* 1 FETCH UID 1)\r\n", "unbalanced parenthesis" },
	{ "* 1 FETCH (X \"abc)\r\n", "unterminated quoted string" },
	{ "* 4294967296 EXISTS\r\n", "number out of range" },
	{ "* 1 FETCH (X a\0b)\r\n", "NUL byte in a response line" },
	{ "* 1 FETCH (BODY[] {18446744073709551616}\r\n", "literal size out of range" },
	{ "* 1 FETCH (BODY[] {99999999999999999999999}\r\n", "literal size out of range" },
	{ "* 1 FETCH (X {65537}\r\n", "literal larger than the limit" },
};

static void
test_table(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].in);
		buf out = { 0 }, body = { 0 };

		if (strcmp(cases[i].want, "NUL byte in a response line") == 0)
			len = 19;
		(void)run(NULL, cases[i].in, len, len, &out, &body);
		if (out.data == NULL || strcmp(out.data, cases[i].want) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, out.data ? out.data : "",
				 cases[i].want);
		buf_free(&out);
		buf_free(&body);
	}
}

/* A FETCH answer where untagged responses for other messages come in between. */
static const char transcript[] =
	"* OK [CAPABILITY IMAP4rev1 IDLE] ready\r\n"
	"* 1 FETCH (UID 10 BODY[] {12}\r\nSubject: a\r\n FLAGS (\\Seen))\r\n"
	"* 3 EXISTS\r\n"
	"* 2 FETCH (FLAGS (\\Flagged))\r\n"
	"* 2 FETCH (BODY[] {0}\r\n UID 11)\r\n"
	"A1 OK done\r\n"
	"* 3 FETCH (UID 12 BODY[] {7}\r\n{5}\r\nab ENVELOPE (\"x\" {2}\r\nyz))\r\n"
	"* 1 EXPUNGE\r\n"
	"A2 NO [EXPUNGEISSUED] some gone\r\n";

static void
test_chunks(void **state)
{
	buf ref = { 0 }, refbody = { 0 };
	size_t len = sizeof(transcript) - 1, chunk;
	int round;

	assert_int_equal(run(NULL, transcript, len, len, &ref, &refbody), IMAP_P_MORE);
	assert_non_null(strstr(ref.data, "*||-|1|FETCH||||(UID 10 BODY[] <body 12> FLAGS (\\Seen))\n"));
	assert_non_null(strstr(ref.data, "(UID 12 BODY[] <body 7> ENVELOPE (\"x\" \"yz\"))"));
	assert_non_null(strstr(ref.data, "T|A2|NO||NO|EXPUNGEISSUED||some gone|\n"));
	assert_int_equal(refbody.len, 19);
	assert_memory_equal(refbody.data, "Subject: a\r\n{5}\r\nab", 19);
	for (chunk = 1; chunk <= 9; chunk++) {
		buf out = { 0 }, body = { 0 };

		assert_int_equal(run(NULL, transcript, len, chunk, &out, &body), IMAP_P_MORE);
		assert_string_equal(out.data, ref.data);
		assert_int_equal(body.len, refbody.len);
		assert_memory_equal(body.data, refbody.data, body.len);
		buf_free(&out);
		buf_free(&body);
	}
	srand(17);
	for (round = 0; round < 200; round++) {
		buf out = { 0 }, body = { 0 };

		assert_int_equal(run(NULL, transcript, len, 0, &out, &body), IMAP_P_MORE);
		assert_string_equal(out.data, ref.data);
		assert_memory_equal(body.data, refbody.data, refbody.len);
		buf_free(&out);
		buf_free(&body);
	}
	buf_free(&ref);
	buf_free(&refbody);
}

/* A body literal's size is only a number: nothing is allocated by it. */
static void
test_huge_body_literal(void **state)
{
	static const char in[] = "* 1 FETCH (UID 1 BODY[] {99999999999}\r\nabc";
	imap_parser *p = imap_parser_new(NULL);
	const char *c = NULL;
	size_t used, cl = 0;

	assert_non_null(p);
	assert_int_equal(imap_parser_feed(p, in, sizeof(in) - 1, &used, &c, &cl), IMAP_P_BODY);
	assert_int_equal(used, sizeof(in) - 1);
	assert_int_equal(cl, 3);
	assert_memory_equal(c, "abc", 3);
	assert_true(imap_parser_busy(p));
	assert_int_equal(imap_parser_body_left(p), 99999999999ULL - 3);
	imap_parser_free(&p);
}

static void
test_bounds(void **state)
{
	imap_parser_limits lim = { .max_line = 40, .max_literal = 8, .max_depth = 3,
				   .max_tokens = 10 };
	buf out = { 0 }, body = { 0 };
	char big[200];

	memset(big, 'x', sizeof(big));
	memcpy(big, "* OK ", 5);
	memcpy(big + sizeof(big) - 2, "\r\n", 2);
	assert_int_equal(run(&lim, big, sizeof(big), 3, &out, &body), IMAP_P_ERROR);
	assert_string_equal(out.data, "response line too long");
	out.len = 0;
	/* exactly max_line is fine, with CRLF or LF */
	memset(big, 'x', 40);
	memcpy(big, "* OK ", 5);
	memcpy(big + 40, "\r\n", 2);
	assert_int_equal(run(&lim, big, 42, 1, &out, &body), IMAP_P_MORE);
	out.len = 0;
	/* the text of all lines of one response counts */
	assert_int_equal(run(&lim, "* 1 FETCH (A {1}\r\nx BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB)\r\n", strlen("* 1 FETCH (A {1}\r\nx BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB)\r\n"), 5, &out, &body), IMAP_P_ERROR);
	out.len = 0;
	assert_int_equal(run(&lim, "* 1 FETCH (A {9}\r\n123456789)\r\n", strlen("* 1 FETCH (A {9}\r\n123456789)\r\n"), 30, &out, &body),
			 IMAP_P_ERROR);
	assert_string_equal(out.data, "literal larger than the limit");
	out.len = 0;
	/* two literals of 5: together over 8 */
	assert_int_equal(run(&lim, "* 1 X ({5}\r\n12345 {5}\r\n12345)\r\n", strlen("* 1 X ({5}\r\n12345 {5}\r\n12345)\r\n"), 2, &out, &body),
			 IMAP_P_ERROR);
	out.len = 0;
	assert_int_equal(run(&lim, "* 1 X ((((a))))\r\n", strlen("* 1 X ((((a))))\r\n"), 17, &out, &body), IMAP_P_ERROR);
	assert_string_equal(out.data, "lists nested too deeply");
	out.len = 0;
	assert_int_equal(run(&lim, "* 1 X (((a)))\r\n", strlen("* 1 X (((a)))\r\n"), 15, &out, &body), IMAP_P_MORE);
	out.len = 0;
	assert_int_equal(run(&lim, "* 1 X 1 2 3 4 5 6 7 8 9 10 11\r\n", strlen("* 1 X 1 2 3 4 5 6 7 8 9 10 11\r\n"), 31, &out, &body),
			 IMAP_P_ERROR);
	assert_string_equal(out.data, "too many items in a response");
	buf_free(&out);
	buf_free(&body);
}

static void
test_tok_number(void **state)
{
	imap_token t = { IMAP_T_ATOM, "4294967295", 10, 1 };
	unsigned long long v;

	assert_int_equal(imap_tok_number(&t, UINT32_MAX, &v), 0);
	assert_int_equal(v, 4294967295ULL);
	t.s = "4294967296";
	assert_int_equal(imap_tok_number(&t, UINT32_MAX, &v), -1);
	t.s = "18446744073709551616";
	t.len = 20;
	assert_int_equal(imap_tok_number(&t, UINT64_MAX, &v), -1);
	t.s = "12a";
	t.len = 3;
	assert_int_equal(imap_tok_number(&t, UINT32_MAX, &v), -1);
	t.len = 0;
	assert_int_equal(imap_tok_number(&t, UINT32_MAX, &v), -1);
	t.type = IMAP_T_STRING;
	t.s = "12";
	t.len = 2;
	assert_int_equal(imap_tok_number(&t, UINT32_MAX, &v), -1);
}

static void
test_uidset(void **state)
{
	uint32_t u[] = { 9, 1, 2, 3, 4, 5, 7, 0, 10, 11, 12, 5, 4294967295u };
	size_t n = imap_uids_sort(u, sizeof(u) / sizeof(u[0]));
	char out[64];
	uint32_t many[1000];
	size_t i, done = 0, cmds = 0;

	assert_int_equal(n, 11);
	assert_int_equal(imap_uidset(u, n, out, sizeof(out)), 11);
	assert_string_equal(out, "1:5,7,9:12,4294967295");
	/* cut where it no longer fits: "1:5,7" is 5 bytes */
	assert_int_equal(imap_uidset(u, n, out, 6), 6);
	assert_string_equal(out, "1:5,7");
	assert_int_equal(imap_uidset(u, n, out, 3), 0);
	/* every other UID: no ranges; split into lines of at most 100 bytes */
	for (i = 0; i < 1000; i++)
		many[i] = (uint32_t)(2 * i + 1000001);
	while (done < 1000) {
		size_t k = imap_uidset(many + done, 1000 - done, out, sizeof(out));

		assert_true(k > 0);
		assert_true(strlen(out) < sizeof(out));
		done += k;
		cmds++;
	}
	assert_int_equal(done, 1000);
	assert_true(cmds >= 1000 * 8 / 64);
}

static void
test_utf7(void **state)
{
	static const struct {
		const char *in, *out;
	} c[] = {
		{ "INBOX", "INBOX" },
		{ "Processed", "Processed" },
		{ "A&B", "A&-B" },
		{ "Entw\xc3\xbc" "rfe", "Entw&APw-rfe" },
		{ "\xe5\x8f\xb0\xe5\x8c\x97", "&U,BTFw-" },
		{ "[Gmail]/Gesendet", "[Gmail]/Gesendet" },
		{ "\xf0\x9f\x98\x80", "&2D3eAA-" },
	};
	size_t i;
	char *o;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		o = imap_utf7_encode(c[i].in);
		assert_non_null(o);
		assert_string_equal(o, c[i].out);
		free(o);
	}
	errno = 0;
	assert_null(imap_utf7_encode("bad\xc3"));
	assert_int_equal(errno, EINVAL);
	assert_null(imap_utf7_encode("a\rb"));
	assert_null(imap_utf7_encode("\xed\xa0\x80")); /* a surrogate */
}

static void
test_code_classes(void **state)
{
	assert_true(imap_code_is_temporary("UNAVAILABLE"));
	assert_true(imap_code_is_temporary("inuse"));
	assert_false(imap_code_is_temporary("AUTHENTICATIONFAILED"));
	assert_false(imap_code_is_temporary(""));
	assert_string_equal(imap_status_name(IMAP_EGONE), "IMAP_EGONE");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_chunks),
		cmocka_unit_test(test_huge_body_literal),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_tok_number),
		cmocka_unit_test(test_uidset),
		cmocka_unit_test(test_utf7),
		cmocka_unit_test(test_code_classes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

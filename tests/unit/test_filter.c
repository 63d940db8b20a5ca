/* mailmill - ISC licence, see LICENSE */
/* The filter plugin's matching (plugins/filter_match.c), without a daemon. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "plugins/filter.h"

static GMimeMessage *
parse(const char *text)
{
	GMimeStream *s = g_mime_stream_mem_new_with_buffer(text, strlen(text));
	GMimeParser *p = g_mime_parser_new_with_stream(s);
	GMimeMessage *m = g_mime_parser_construct_message(p, NULL);

	g_object_unref(p);
	g_object_unref(s);
	assert_non_null(m);
	return m;
}

static int
hdr(GMimeMessage *m, const char *name, const char *pattern, int nocase)
{
	regex_t re;
	char *err = NULL;
	int hit;

	assert_int_equal(filter_regex_compile(&re, pattern, nocase, &err), 0);
	hit = filter_header_matches(m, name, &re);
	regfree(&re);
	return hit;
}

static void
test_headers_decoded(void **state)
{
	/* "Grüße" as B and as Q, a folded header, a name in another case. */
	GMimeMessage *m = parse("From: a@b.example\n"
				"Subject: =?UTF-8?B?R3LDvMOfZQ==?= aus Bern\n"
				"X-Tag: =?ISO-8859-1?Q?K=E4se?=\n"
				"X-Long: first\n second\n"
				"\nbody\n");

	(void)state;
	assert_true(hdr(m, "subject", "^Grüße aus Bern$", 0));
	assert_false(hdr(m, "Subject", "R3LDvMOfZQ", 0));     /* not the raw text */
	assert_true(hdr(m, "x-tag", "^Käse$", 0));             /* Latin-1 -> UTF-8 */
	assert_true(hdr(m, "X-LONG", "^first second$", 0));   /* unfolded */
	assert_false(hdr(m, "X-Missing", "", 0));
	assert_false(hdr(m, "subject", "^grüsse", 0));
	assert_true(hdr(m, "subject", "^GRü", 1));             /* nocase (ASCII letters) */
	g_object_unref(m);
}

static void
test_bad_regex(void **state)
{
	regex_t re;
	char *err = NULL;

	(void)state;
	assert_int_equal(filter_regex_compile(&re, "(open", 0, &err), -1);
	assert_non_null(err);
	assert_true(strlen(err) > 0);
	g_free(err);
}

static void
test_addr_lists(void **state)
{
	const char *const list[] = { "bob@example.org", "example.net", "@corp.example",
				     ".spam.example", NULL };

	(void)state;
	assert_true(filter_addr_listed(list, "BOB@Example.org"));
	assert_false(filter_addr_listed(list, "alice@example.org"));
	assert_true(filter_addr_listed(list, "x@example.net"));
	assert_false(filter_addr_listed(list, "x@sub.example.net"));   /* exact domain */
	assert_true(filter_addr_listed(list, "x@corp.example"));
	assert_false(filter_addr_listed(list, "x@notcorp.example"));
	assert_true(filter_addr_listed(list, "x@mx.spam.example"));
	assert_true(filter_addr_listed(list, "x@a.b.spam.example"));
	assert_false(filter_addr_listed(list, "x@spam.example"));      /* below only */
	assert_false(filter_addr_listed(list, "x@nospam.example"));
	assert_false(filter_addr_listed(list, "no-at-sign"));
}

static void
test_senders_rcpts(void **state)
{
	GMimeMessage *m = parse("Return-Path: <bounce@lists.example>\n"
				"From: =?UTF-8?Q?J=C3=B6rg?= <Joerg@Example.ORG>\n"
				"To: group: a@one.example, b@two.example;, c@three.example\n"
				"Cc: d@four.example\n"
				"Delivered-To: me@here.example\n"
				"\nbody\n");
	filter_msg fm;
	char **s, **r;

	(void)state;
	filter_msg_init(&fm, m, 100);
	s = filter_msg_senders(&fm);
	assert_int_equal(g_strv_length(s), 2);
	assert_string_equal(s[0], "bounce@lists.example");
	assert_string_equal(s[1], "joerg@example.org");
	r = filter_msg_rcpts(&fm);
	assert_int_equal(g_strv_length(r), 5);
	assert_string_equal(r[0], "a@one.example");
	assert_string_equal(r[1], "b@two.example");
	assert_string_equal(r[4], "me@here.example");
	filter_msg_clear(&fm);
	g_object_unref(m);
}

static void
test_body_decoded(void **state)
{
	/* base64 UTF-8 text, QP Latin-1 text, an HTML part, a base64 attachment
	 * holding a word that must not be searched. */
	GMimeMessage *m = parse("MIME-Version: 1.0\n"
				"Content-Type: multipart/mixed; boundary=b\n\n"
				"--b\nContent-Type: text/plain; charset=utf-8\n"
				"Content-Transfer-Encoding: base64\n\n"
				"RGFzIEdlaGVpbW5pcy4K\n"                       /* "Das Geheimnis.\n" */
				"--b\nContent-Type: text/plain; charset=iso-8859-1\n"
				"Content-Transfer-Encoding: quoted-printable\n\n"
				"K=E4se=\n und Brot\n"
				"--b\nContent-Type: application/octet-stream\n"
				"Content-Disposition: attachment; filename=a.bin\n"
				"Content-Transfer-Encoding: base64\n\n"
				"U2NoYXR6Cg==\n"                               /* "Schatz\n" */
				"--b--\n");
	filter_msg fm;
	const char *body;

	(void)state;
	filter_msg_init(&fm, m, 500);
	body = filter_msg_body(&fm);
	assert_non_null(strstr(body, "Das Geheimnis."));
	assert_non_null(strstr(body, "Käse und Brot"));
	assert_null(strstr(body, "Schatz"));
	assert_null(strstr(body, "RGFz"));
	assert_int_equal(filter_msg_has_attachment(&fm), 1);
	filter_msg_clear(&fm);
	g_object_unref(m);
}

static void
test_no_attachment(void **state)
{
	GMimeMessage *m = parse("Content-Type: multipart/alternative; boundary=b\n\n"
				"--b\nContent-Type: text/plain\n\nhi\n"
				"--b\nContent-Type: text/html\n\n<p>hi</p>\n--b--\n");
	filter_msg fm;

	(void)state;
	filter_msg_init(&fm, m, 10);
	assert_int_equal(filter_msg_has_attachment(&fm), 0);
	assert_non_null(strstr(filter_msg_body(&fm), "<p>hi</p>"));
	filter_msg_clear(&fm);
	g_object_unref(m);
}

static void
test_rule_all_conditions(void **state)
{
	GMimeMessage *m = parse("From: x@corp.example\nTo: sales@example.org\n"
				"Subject: Order 42\n\nPlease ship it.\n");
	char *err = NULL;
	filter_msg fm;
	filter_rule r;

	(void)state;
	memset(&r, 0, sizeof r);
	r.size_over = r.size_under = -1;
	r.attachment = -1;
	r.header = g_strdup("Subject");
	assert_int_equal(filter_regex_compile(&r.header_re, "^Order [0-9]+$", 0, &err), 0);
	r.from = g_strsplit("corp.example", ",", -1);
	r.to = g_strsplit("sales@example.org", ",", -1);
	r.has_body = 1;
	assert_int_equal(filter_regex_compile(&r.body_re, "ship", 0, &err), 0);
	r.attachment = 0;
	filter_msg_init(&fm, m, 1000);
	assert_true(filter_rule_matches(&r, &fm));
	r.size_over = 1000;                  /* strictly greater */
	assert_false(filter_rule_matches(&r, &fm));
	r.size_over = 999;
	assert_true(filter_rule_matches(&r, &fm));
	r.size_under = 1000;                 /* strictly less */
	assert_false(filter_rule_matches(&r, &fm));
	r.size_under = -1;
	r.attachment = 1;                    /* one condition failing fails the rule */
	assert_false(filter_rule_matches(&r, &fm));
	r.attachment = -1;
	g_strfreev(r.to);
	r.to = g_strsplit("other@example.org", ",", -1);
	assert_false(filter_rule_matches(&r, &fm));
	filter_msg_clear(&fm);
	filter_rule_clear(&r);
	g_object_unref(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_headers_decoded),
		cmocka_unit_test(test_bad_regex),
		cmocka_unit_test(test_addr_lists),
		cmocka_unit_test(test_senders_rcpts),
		cmocka_unit_test(test_body_decoded),
		cmocka_unit_test(test_no_attachment),
		cmocka_unit_test(test_rule_all_conditions),
	};
	int rc;

	g_mime_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	g_mime_shutdown();
	return rc;
}

/* mailmill - ISC licence, see LICENSE */
/*
 * daemon/reply.c: the RFC 3834 reply built from parsed messages.
 *
 * Subject prefixes: "Re:" in any case ("RE:", "re:") is not doubled;
 * "Re[2]:" (a counter some clients write) is not taken as a reply prefix
 * and gets "Re: " in front, as RFC 5322 3.6.5 describes only "Re: ".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <gmime/gmime.h>

#include "daemon/reply.h"

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

/* The recipient a message with these header lines gets; NULL and *why. */
static char *
rcpt_of(const char *headers, const char **why)
{
	char *text = g_strdup_printf("%sSubject: x\n\nbody\n", headers);
	GMimeMessage *m = parse(text);
	char *r;

	*why = NULL;
	r = reply_recipient(m, why);
	g_object_unref(m);
	g_free(text);
	return r;
}

static void
test_recipient_order(void **state)
{
	static const struct {
		const char *headers, *want;
	} cases[] = {
		{ "Return-Path: <rp@example.com>\nReply-To: rt@example.com\nFrom: f@example.com\n",
		  "rp@example.com" },
		{ "Return-Path: rp2@example.com\nFrom: f@example.com\n", "rp2@example.com" },
		{ "Reply-To: Someone <rt@example.com>\nFrom: f@example.com\n", "rt@example.com" },
		{ "From: Fred <f@example.com>\n", "f@example.com" },
		{ "Reply-To: team: a@example.com, b@example.com;\nFrom: f@example.com\n",
		  "a@example.com" },
		{ "Reply-To: team:;\nFrom: f@example.com\n", "f@example.com" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *why;
		char *r = rcpt_of(cases[i].headers, &why);

		if (r == NULL || strcmp(r, cases[i].want) != 0)
			fail_msg("case %zu: got %s (%s), want %s", i, r ? r : "NULL",
				 why ? why : "", cases[i].want);
		g_free(r);
	}
}

static void
test_recipient_refused(void **state)
{
	static const struct {
		const char *headers, *why;
	} cases[] = {
		/* a bounce: never answered, though From and Reply-To are there */
		{ "Return-Path: <>\nReply-To: rt@example.com\nFrom: f@example.com\n", "null sender" },
		{ "Return-Path:  < >\nFrom: f@example.com\n", "null sender" },
		{ "Return-Path: <not an address>\nFrom: f@example.com\n", "Return-Path" },
		{ "Return-Path: <a@b@example.com>\nFrom: f@example.com\n", "Return-Path" },
		{ "X-Nothing: 1\n", "no Return-Path" },
		{ "From: nobody\n", "not usable" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *why;
		char *r = rcpt_of(cases[i].headers, &why);

		if (r != NULL)
			fail_msg("case %zu: got %s, want a refusal", i, r);
		assert_non_null(why);
		if (strstr(why, cases[i].why) == NULL)
			fail_msg("case %zu: why \"%s\" lacks \"%s\"", i, why, cases[i].why);
	}
}

/* A reply to a message with these headers, from help@example.org. */
static GMimeMessage *
reply_to(const char *headers, char **rcpt)
{
	char *text = g_strdup_printf("Return-Path: <alice@example.com>\n%s\nbody\n", headers);
	GMimeMessage *m = parse(text), *r;
	const char *why = NULL;

	r = reply_new(m, "Help Desk <help@example.org>", rcpt, &why);
	if (r == NULL)
		fail_msg("reply_new: %s", why ? why : "?");
	g_object_unref(m);
	g_free(text);
	return r;
}

static const char *
hdr(GMimeMessage *m, const char *name)
{
	return g_mime_object_get_header(GMIME_OBJECT(m), name);
}

static void
test_subject(void **state)
{
	static const struct {
		const char *subject, *want;
	} cases[] = {
		{ "hello", "Re: hello" },
		{ "Re: hello", "Re: hello" },
		{ "RE: hello", "RE: hello" },
		{ "re:hello", "re:hello" },
		{ "  Re: padded", "Re: padded" },
		{ "Re[2]: counted", "Re: Re[2]: counted" },
		{ "Reply policy", "Re: Reply policy" },
		{ "", "Re: (no subject)" },
		{ NULL, "Re: (no subject)" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *h = cases[i].subject ? g_strdup_printf("Subject: %s\n", cases[i].subject)
					   : g_strdup("X-No-Subject: 1\n");
		char *rcpt;
		GMimeMessage *r = reply_to(h, &rcpt);
		const char *got = g_mime_message_get_subject(r);

		if (got == NULL || strcmp(got, cases[i].want) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, got ? got : "NULL",
				 cases[i].want);
		g_object_unref(r);
		g_free(rcpt);
		g_free(h);
	}
}

static void
test_headers(void **state)
{
	char *rcpt;
	GMimeMessage *r = reply_to("Subject: s\nMessage-ID: <orig.1@example.com>\n"
				   "References: <a@x> <b@x>\n", &rcpt);
	InternetAddressList *to = g_mime_message_get_to(r);
	const char *mid;

	assert_string_equal(rcpt, "alice@example.com");
	assert_int_equal(internet_address_list_length(to), 1);
	assert_string_equal(internet_address_mailbox_get_addr(
		INTERNET_ADDRESS_MAILBOX(internet_address_list_get_address(to, 0))),
		"alice@example.com");
	assert_string_equal(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(
		internet_address_list_get_address(g_mime_message_get_from(r), 0))),
		"help@example.org");
	assert_string_equal(hdr(r, "In-Reply-To"), "<orig.1@example.com>");
	assert_string_equal(hdr(r, "References"), "<a@x> <b@x> <orig.1@example.com>");
	assert_string_equal(hdr(r, "Auto-Submitted"), "auto-replied");
	mid = g_mime_message_get_message_id(r);
	assert_non_null(mid);
	assert_string_not_equal(mid, "orig.1@example.com");
	/* in the domain of From */
	assert_non_null(strstr(mid, "@example.org"));
	assert_non_null(hdr(r, "Date"));
	g_object_unref(r);
	g_free(rcpt);

	/* two replies never share a Message-ID */
	{
		char *r2;
		GMimeMessage *a = reply_to("Subject: s\n", &rcpt), *b = reply_to("Subject: s\n", &r2);

		assert_string_not_equal(g_mime_message_get_message_id(a),
					g_mime_message_get_message_id(b));
		g_object_unref(a);
		g_object_unref(b);
		g_free(rcpt);
		g_free(r2);
	}
}

static void
test_no_message_id(void **state)
{
	char *rcpt;
	GMimeMessage *r = reply_to("Subject: s\nReferences: <a@x>\n", &rcpt);

	assert_null(hdr(r, "In-Reply-To"));
	assert_null(hdr(r, "References"));
	assert_string_equal(hdr(r, "Auto-Submitted"), "auto-replied");
	assert_non_null(g_mime_message_get_message_id(r));
	g_object_unref(r);
	g_free(rcpt);
}

/* A long thread: the newest 20 references and the original's id, which is
 * not repeated when the References already end with it. */
static void
test_references_capped(void **state)
{
	GString *h = g_string_new("Subject: s\nMessage-ID: <m@x>\nReferences:");
	char *rcpt, **ids;
	GMimeMessage *r;
	const char *refs;
	int n;

	for (int i = 0; i < 30; i++)
		g_string_append_printf(h, " <r%d@x>", i);
	g_string_append(h, " <m@x>\n");
	r = reply_to(h->str, &rcpt);
	refs = hdr(r, "References");
	assert_non_null(refs);
	ids = g_strsplit(refs, " ", -1);
	n = (int)g_strv_length(ids);
	/* of the 31 references the newest 20 are r11..r29 and m; m once */
	assert_int_equal(n, 20);
	assert_string_equal(ids[0], "<r11@x>");
	assert_string_equal(ids[18], "<r29@x>");
	assert_string_equal(ids[19], "<m@x>");
	assert_null(strstr(refs, "<r10@x>"));
	g_strfreev(ids);
	g_object_unref(r);
	g_free(rcpt);
	g_string_free(h, TRUE);
}

static void
test_bad_from(void **state)
{
	GMimeMessage *m = parse("Return-Path: <a@example.com>\nSubject: x\n\nb\n");
	const char *why = NULL;
	char *rcpt = (char *)"untouched";

	assert_null(reply_new(m, "not an address", &rcpt, &why));
	assert_null(rcpt);
	assert_non_null(why);
	why = NULL;
	assert_null(reply_new(m, NULL, &rcpt, &why));
	assert_non_null(why);
	g_object_unref(m);

	/* a null sender: nothing built, and why says so */
	m = parse("Return-Path: <>\nFrom: a@example.com\nSubject: x\n\nb\n");
	why = NULL;
	assert_null(reply_new(m, "help@example.org", &rcpt, &why));
	assert_null(rcpt);
	assert_non_null(strstr(why, "null sender"));
	g_object_unref(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_recipient_order),
		cmocka_unit_test(test_recipient_refused),
		cmocka_unit_test(test_subject),
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_no_message_id),
		cmocka_unit_test(test_references_capped),
		cmocka_unit_test(test_bad_from),
	};
	int rc;

	g_mime_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	g_mime_shutdown();
	return rc;
}

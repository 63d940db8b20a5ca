/* mailmill - ISC licence, see LICENSE */
/*
 * daemon/run/reply.c: the RFC 3834 reply, from the original's raw header fields,
 * built both ways: as a GMime message (reply_new) and as text (reply_format,
 * parsed back here with GMime); the header tests run against both.
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

#include "daemon/run/message.h"
#include "daemon/run/reply.h"

#define FROM "Help Desk <help@example.org>"

/* As the daemon parses a fetched message (within the structure caps). */
static GMimeMessage *
parse(const char *text)
{
	const char *note = NULL;
	GMimeMessage *m = message_parse(text, strlen(text), &note);

	assert_null(note);
	return m;
}

/* The original's fields, as the daemon reads them from the raw header. */
static void
orig_of(const char *text, reply_orig *o)
{
	memset(o, 0, sizeof(*o));
	message_headers(text, strlen(text), reply_orig_field, o);
}

/* The recipient a message with these header lines gets; NULL and *why. */
static char *
rcpt_of(const char *headers, const char **why)
{
	char *text = g_strdup_printf("%sSubject: x\n\nbody\n", headers);
	reply_orig o;
	char *r;

	orig_of(text, &o);
	*why = NULL;
	r = reply_recipient(&o, why);
	reply_orig_clear(&o);
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

/* *state says which builder a test runs against. */
static int as_gmime = 0, as_text = 1;

/* A reply to a message with these headers, from help@example.org, built by
 * reply_new or (parsed back) by reply_format. */
static GMimeMessage *
reply_to(void **state, const char *headers, char **rcpt)
{
	char *text = g_strdup_printf("Return-Path: <alice@example.com>\n%s\nbody\n", headers);
	const char *why = NULL;
	GMimeMessage *r = NULL;
	reply_orig o;

	orig_of(text, &o);
	if (*(int *)*state == as_gmime) {
		r = reply_new(&o, FROM, rcpt, &why);
	} else if ((*rcpt = reply_recipient(&o, &why)) != NULL) {
		size_t len;
		char *t = reply_format(&o, FROM, *rcpt, NULL, NULL, "body\n", &len, &why);

		if (t != NULL) {
			assert_int_equal(len, strlen(t));
			r = parse(t);
			g_free(t);
		}
	}
	if (r == NULL)
		fail_msg("reply: %s", why ? why : "?");
	reply_orig_clear(&o);
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
		GMimeMessage *r = reply_to(state, h, &rcpt);
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
	GMimeMessage *r = reply_to(state, "Subject: s\nMessage-ID: <orig.1@example.com>\n"
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
		GMimeMessage *a = reply_to(state, "Subject: s\n", &rcpt),
			     *b = reply_to(state, "Subject: s\n", &r2);

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
	GMimeMessage *r = reply_to(state, "Subject: s\nReferences: <a@x>\n", &rcpt);

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
	r = reply_to(state, h->str, &rcpt);
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
	const char *why = NULL;
	char *rcpt = (char *)"untouched";
	size_t len;
	reply_orig o;

	orig_of("Return-Path: <a@example.com>\nSubject: x\n\nb\n", &o);
	assert_null(reply_new(&o, "not an address", &rcpt, &why));
	assert_null(rcpt);
	assert_non_null(why);
	why = NULL;
	assert_null(reply_new(&o, NULL, &rcpt, &why));
	assert_non_null(why);
	why = NULL;
	assert_null(reply_format(&o, "not an address", "a@example.com", NULL, NULL, "b", &len, &why));
	assert_non_null(why);
	reply_orig_clear(&o);

	/* a null sender: nothing built, and why says so */
	orig_of("Return-Path: <>\nFrom: a@example.com\nSubject: x\n\nb\n", &o);
	why = NULL;
	assert_null(reply_new(&o, "help@example.org", &rcpt, &why));
	assert_null(rcpt);
	assert_non_null(strstr(why, "null sender"));
	reply_orig_clear(&o);
}

/* reply_format writes nothing a header could be smuggled through. */
static void
test_text_refuses(void **state)
{
	static const char *const bad_extra[][2] = {
		{ "X-Loop: a\nBcc: victim@example.com", NULL },
		{ "X-Loop: a\rb", NULL },
		{ "no colon", NULL },
		{ ": empty name", NULL },
		{ "Bad Name: v", NULL },
	};
	const char *why;
	size_t len;
	reply_orig o;

	orig_of("Return-Path: <a@example.com>\nSubject: x\n\nb\n", &o);
	for (size_t i = 0; i < sizeof(bad_extra) / sizeof(bad_extra[0]); i++) {
		why = NULL;
		if (reply_format(&o, FROM, "a@example.com", NULL, bad_extra[i], "b", &len, &why))
			fail_msg("extra field %zu accepted", i);
		assert_non_null(why);
	}
	why = NULL;
	assert_null(reply_format(&o, FROM, "a@example.com\nBcc: x@example.com", NULL, NULL, "b",
				 &len, &why));
	assert_non_null(why);
	reply_orig_clear(&o);
}

/* Non-ASCII subject and body, an extra field, a long thread folded: what a
 * mail reader gets back is what was meant, in lines of at most 78. */
static void
test_text_encoding(void **state)
{
	const char *extra[] = { "X-Loop: mailmill autoreply help@example.org", NULL };
	const char *body = "Grüße aus Köln.\nA line with trailing space \n";
	GString *h = g_string_new("Return-Path: <a@example.com>\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\n"
				  "Message-ID: <m@x>\nReferences:");
	const char *why = NULL;
	char *t, *b, **lines;
	GMimeMessage *m;
	GMimeObject *part;
	size_t len;
	reply_orig o;

	for (int i = 0; i < 30; i++)
		g_string_append_printf(h, " <a-rather-long-message-id-%d@host.example.com>", i);
	g_string_append(h, "\n\nb\n");
	orig_of(h->str, &o);
	t = reply_format(&o, FROM, "a@example.com", NULL, extra, body, &len, &why);
	assert_non_null(t);
	lines = g_strsplit(t, "\n", -1);
	for (char **l = lines; *l != NULL; l++) {
		if (strlen(*l) > 78)
			fail_msg("line over 78: %s", *l);
		for (const unsigned char *p = (const unsigned char *)*l; *p; p++)
			if (*p >= 0x80)
				fail_msg("8-bit byte in: %s", *l);
	}
	g_strfreev(lines);
	m = parse(t);
	assert_string_equal(g_mime_message_get_subject(m), "Re: Grüße");
	assert_string_equal(hdr(m, "X-Loop"), "mailmill autoreply help@example.org");
	assert_string_equal(hdr(m, "Auto-Submitted"), "auto-replied");
	assert_non_null(strstr(hdr(m, "References"), "<a-rather-long-message-id-29@host.example.com> <m@x>"));
	part = g_mime_message_get_mime_part(m);
	assert_true(GMIME_IS_TEXT_PART(part));
	b = g_mime_text_part_get_text(GMIME_TEXT_PART(part));
	assert_string_equal(b, body);
	g_free(b);
	g_object_unref(m);
	g_free(t);

	/* plain ASCII goes as it is, and a subject given is used as given */
	t = reply_format(&o, FROM, "a@example.com", "Away: back Monday", NULL, "Hi.", &len, &why);
	assert_non_null(t);
	assert_non_null(strstr(t, "\nSubject: Away: back Monday\n"));
	assert_non_null(strstr(t, "Content-Transfer-Encoding: 7bit\n\nHi.\n"));
	assert_int_equal(t[len - 1], '\n');
	g_free(t);
	reply_orig_clear(&o);
	g_string_free(h, TRUE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_recipient_order),
		cmocka_unit_test(test_recipient_refused),
		cmocka_unit_test_prestate(test_subject, &as_gmime),
		cmocka_unit_test_prestate(test_subject, &as_text),
		cmocka_unit_test_prestate(test_headers, &as_gmime),
		cmocka_unit_test_prestate(test_headers, &as_text),
		cmocka_unit_test_prestate(test_no_message_id, &as_gmime),
		cmocka_unit_test_prestate(test_no_message_id, &as_text),
		cmocka_unit_test_prestate(test_references_capped, &as_gmime),
		cmocka_unit_test_prestate(test_references_capped, &as_text),
		cmocka_unit_test(test_bad_from),
		cmocka_unit_test(test_text_refuses),
		cmocka_unit_test(test_text_encoding),
	};
	int rc;

	g_mime_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	g_mime_shutdown();
	return rc;
}

/* mailmill - ISC licence, see LICENSE */
/*
 * plugins/autoreply_rules.c: every reason not to answer (RFC 3834 2,
 * RFC 5230 4.6) as a table of messages, the robot senders, the templates.
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
#include "plugins/common/autoreply_rules.h"

static char *ours[] = { "help@example.org", "desk@example.org", NULL };

/* As the daemon parses a fetched message (within the structure caps). */
static GMimeMessage *
parse(const char *text)
{
	const char *note = NULL;
	GMimeMessage *m = message_parse(text, strlen(text), &note);

	assert_null(note);
	return m;
}

/* The two ways the daemon walks a message's header fields for a stage:
 * the raw header, and the parsed one once a stage has called mm_msg_mime. */
static int
walk_raw(void *src, autoreply_field_fn fn, void *arg)
{
	return message_headers(src, strlen(src), fn, arg);
}

static int
walk_mime(void *src, autoreply_field_fn fn, void *arg)
{
	return message_headers_mime(src, fn, arg);
}

/* autoreply_skip of text, both ways: they must agree.  The reason is in buf
 * or static. */
static const char *
skip_both(const autoreply_rules *r, const char *text, const char *sender, char *buf, size_t n)
{
	GMimeMessage *m = parse(text);
	char *buf2 = g_malloc(n);
	const char *a = autoreply_skip(r, walk_raw, (void *)text, sender, buf, n);
	const char *b = autoreply_skip(r, walk_mime, m, sender, buf2, n);

	if ((a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0))
		fail_msg("raw header: %s; parsed header: %s", a ? a : "reply", b ? b : "reply");
	g_object_unref(m);
	g_free(buf2);
	return a;
}

/* headers: the message's header lines (a To: to us is added unless
 * to is given); want: a substring of the reason, or NULL for "reply". */
static const struct skip_case {
	const char *name, *to, *headers, *sender, *want;
} skip_cases[] = {
	{ "plain mail", NULL, "", "alice@example.com", NULL },
	{ "To in another case", "To: HELP@Example.ORG\n", "", "alice@example.com", NULL },
	{ "Cc to us", "To: x@example.net\nCc: desk@example.org\n", "", "alice@example.com", NULL },
	{ "Resent-To to us", "To: x@example.net\nResent-To: help@example.org\n", "",
	  "alice@example.com", NULL },
	{ "Resent-Cc to us", "To: x@example.net\nResent-Cc: <help@example.org>\n", "",
	  "alice@example.com", NULL },
	{ "in a group", "To: staff: x@example.net, help@example.org;\n", "", "alice@example.com",
	  NULL },
	{ "not addressed to us", "To: x@example.net\n", "", "alice@example.com",
	  "none of our addresses" },
	{ "only Bcc (no header names us)", "To: undisclosed-recipients:;\n", "",
	  "alice@example.com", "none of our addresses" },
	{ "Auto-Submitted: no", NULL, "Auto-Submitted: no\n", "alice@example.com", NULL },
	{ "Auto-Submitted: no with comment", NULL, "Auto-Submitted: No (human)\n",
	  "alice@example.com", NULL },
	{ "Auto-Submitted: auto-replied", NULL, "Auto-Submitted: auto-replied\n",
	  "alice@example.com", "Auto-Submitted: auto-replied" },
	{ "Auto-Submitted: auto-generated", NULL, "Auto-Submitted: auto-generated\n",
	  "alice@example.com", "Auto-Submitted: auto-generated" },
	{ "Auto-Submitted: nothing (not \"no\")", NULL, "Auto-Submitted: nothing\n",
	  "alice@example.com", "Auto-Submitted: nothing" },
	{ "Precedence: bulk", NULL, "Precedence: bulk\n", "alice@example.com",
	  "Precedence: bulk" },
	{ "Precedence: LIST", NULL, "Precedence: LIST\n", "alice@example.com",
	  "Precedence: LIST" },
	{ "Precedence: junk", NULL, "Precedence: junk\n", "alice@example.com",
	  "Precedence: junk" },
	{ "Precedence: first-class", NULL, "Precedence: first-class\n", "alice@example.com",
	  NULL },
	{ "List-Id", NULL, "List-Id: <talk.example.com>\n", "alice@example.com",
	  "mailing list mail (List-Id)" },
	{ "List-Unsubscribe", NULL, "List-Unsubscribe: <mailto:u@example.com>\n",
	  "alice@example.com", "mailing list mail (List-Unsubscribe)" },
	{ "X-Auto-Response-Suppress", NULL, "X-Auto-Response-Suppress: OOF\n",
	  "alice@example.com", "X-Auto-Response-Suppress: OOF" },
	{ "spam header with the value", NULL, "X-Spam-Flag: YES\n", "alice@example.com",
	  "marked as spam" },
	{ "spam header without the value", NULL, "X-Spam-Flag: NO\n", "alice@example.com", NULL },
	{ "our X-Loop marker", NULL, "X-Loop: mailmill autoreply help@example.org\n",
	  "alice@example.com", "X-Loop" },
	{ "someone else's X-Loop", NULL, "X-Loop: other@example.net\n", "alice@example.com",
	  NULL },
	{ "no sender", NULL, "", NULL, "no sender" },
	{ "MAILER-DAEMON", NULL, "", "MAILER-DAEMON@example.com", "robot" },
	{ "postmaster", NULL, "", "postmaster@example.com", "robot" },
	{ "owner-*", NULL, "", "owner-talk@example.com", "robot" },
	{ "*-owner", NULL, "", "talk-owner@example.com", "robot" },
	{ "*-request", NULL, "", "talk-request@example.com", "robot" },
	{ "noreply", NULL, "", "noreply@example.com", "robot" },
	{ "no-reply", NULL, "", "No-Reply@example.com", "robot" },
	{ "bounces+", NULL, "", "bounces+123@example.com", "robot" },
	{ "our own address", NULL, "", "Help@example.org", "one of our own" },
};

static void
test_skip_table(void **state)
{
	autoreply_rules r = { 0 };

	r.addresses = ours;
	r.loop_marker = "mailmill autoreply help@example.org";
	r.spam_header = "X-Spam-Flag";
	r.spam_value = "yes";
	for (size_t i = 0; i < sizeof(skip_cases) / sizeof(skip_cases[0]); i++) {
		const struct skip_case *c = &skip_cases[i];
		char *text = g_strdup_printf("From: Someone <someone@example.com>\n%sSubject: s\n%s\n"
					     "body\n", c->to ? c->to : "To: Help <help@example.org>\n",
					     c->headers);
		char buf[512];
		const char *why = skip_both(&r, text, c->sender, buf, sizeof(buf));

		if (c->want == NULL && why != NULL)
			fail_msg("%s: skipped (%s), want a reply", c->name, why);
		if (c->want != NULL && (why == NULL || strstr(why, c->want) == NULL))
			fail_msg("%s: got %s, want a reason with \"%s\"", c->name,
				 why ? why : "a reply", c->want);
		g_free(text);
	}
}

/* Without spam_value any value of the spam header counts; without
 * spam_header or loop_marker those rules are off. */
static void
test_optional_rules(void **state)
{
	autoreply_rules r = { 0 };
	const char *m = "To: help@example.org\nX-Spam-Flag: maybe\n"
			"X-Loop: mailmill autoreply help@example.org\nSubject: s\n\nb\n";
	char buf[256];
	const char *why;

	r.addresses = ours;
	assert_null(skip_both(&r, m, "alice@example.com", buf, sizeof(buf)));
	r.spam_header = "x-spam-flag";
	why = skip_both(&r, m, "alice@example.com", buf, sizeof(buf));
	assert_non_null(why);
	assert_non_null(strstr(why, "marked as spam"));
	r.spam_header = NULL;
	r.loop_marker = "mailmill autoreply help@example.org";
	why = skip_both(&r, m, "alice@example.com", buf, sizeof(buf));
	assert_non_null(why);
	assert_non_null(strstr(why, "X-Loop"));
}

/* A long header value cannot overrun the caller's buffer. */
static void
test_reason_bounded(void **state)
{
	autoreply_rules r = { 0 };
	GString *h = g_string_new("To: help@example.org\nSubject: s\nAuto-Submitted: ");
	char buf[32];
	const char *why;

	r.addresses = ours;
	for (int i = 0; i < 2000; i++)
		g_string_append_c(h, 'a');
	g_string_append(h, "\n\nb\n");
	why = skip_both(&r, h->str, "alice@example.com", buf, sizeof(buf));
	assert_non_null(why);
	assert_true(strlen(why) < sizeof(buf));
	assert_non_null(strstr(why, "Auto-Submitted"));
	g_string_free(h, TRUE);
}

static void
test_robot_sender(void **state)
{
	static const struct {
		const char *addr;
		int robot;
	} cases[] = {
		{ "mailer-daemon@x", 1 }, { "MAILER-DAEMON", 1 }, { "postmaster@x", 1 },
		{ "owner-list@x", 1 }, { "list-request@x", 1 }, { "list-owner@x", 1 },
		{ "noreply@x", 1 }, { "do-not-reply@x", 1 }, { "donotreply@x", 1 },
		{ "bounce@x", 1 }, { "bounce-42@x", 1 }, { "majordomo@x", 1 },
		{ "listserv@x", 1 }, { "@x", 1 },
		{ "alice@x", 0 }, { "owner@x", 0 }, { "request@x", 0 }, { "-request@x", 0 },
		{ "requester@x", 0 }, { "postmasters@x", 0 }, { "replyno@x", 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (autoreply_robot_sender(cases[i].addr) != cases[i].robot)
			fail_msg("%s: want %d", cases[i].addr, cases[i].robot);
}

static void
test_expand(void **state)
{
	static const struct {
		const char *tmpl, *subject, *sender, *want;
	} cases[] = {
		{ "Re {subject} for {sender}.", "Hi", "a@x", "Re Hi for a@x." },
		{ "{subject}{subject}", "x", NULL, "xx" },
		{ "{sender}", NULL, NULL, "" },
		{ "{unknown} {subject", "s", "a", "{unknown} {subject" },
		{ "", "s", "a", "" },
		/* values are not expanded again */
		{ "<{subject}>", "{sender}", "a@x", "<{sender}>" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = autoreply_expand(cases[i].tmpl, cases[i].subject, cases[i].sender);

		assert_string_equal(got, cases[i].want);
		g_free(got);
	}
}

/* autoreply_robot_mail (the ticket plugin's "opens no ticket" check), on
 * the raw header and on the parsed message with its top-level part. */
static void
test_robot_mail(void **state)
{
	static const struct { const char *headers, *want; } cases[] = {
		{ "Return-Path: <>\n", "null sender" },
		{ "Return-Path:  < > \n", NULL },  /* not "<>": an odd, empty-ish path is no proof */
		{ "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\n", "MAILER-DAEMON" },
		{ "From: mailer-daemon-fan@example.net\n", NULL },
		{ "Auto-Submitted: auto-generated\n", "Auto-Submitted" },
		{ "Auto-Submitted: no\n", NULL },
		{ "Precedence: junk\n", "Precedence: junk" },
		{ "Precedence: first-class\n", NULL },
		{ "List-Unsubscribe: <mailto:leave@example.org>\n", "mailing list" },
		{ "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status;"
		  " boundary=b\n", "delivery status report" },
		{ "MIME-Version: 1.0\nContent-Type: multipart/report;"
		  " report-type=disposition-notification; boundary=b\n", NULL },
		{ "X-Mailer: a person's client\n", NULL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *text = g_strdup_printf("%sSubject: s\nTo: help@example.org\n\n--b\n\nx\n--b--\n",
					     cases[i].headers);
		GMimeMessage *m = parse(text);
		char buf[256], buf2[256];
		const char *a = autoreply_robot_mail(walk_raw, text, NULL, buf, sizeof buf);
		const char *b = autoreply_robot_mail(walk_mime, m, g_mime_message_get_mime_part(m), buf2,
						     sizeof buf2);

		if ((a == NULL) != (cases[i].want == NULL) ||
		    (a != NULL && strstr(a, cases[i].want) == NULL))
			fail_msg("case %zu raw: got %s, want %s", i, a ? a : "a person",
				 cases[i].want ? cases[i].want : "a person");
		if ((b == NULL) != (a == NULL) || (b != NULL && strcmp(a, b) != 0))
			fail_msg("case %zu: raw %s, parsed %s", i, a ? a : "a person", b ? b : "a person");
		g_object_unref(m);
		g_free(text);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_skip_table),
		cmocka_unit_test(test_optional_rules),
		cmocka_unit_test(test_reason_bounded),
		cmocka_unit_test(test_robot_sender),
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_robot_mail),
	};
	int rc;

	g_mime_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	g_mime_shutdown();
	return rc;
}

/* mailmill - ISC licence, see LICENSE */
/*
 * The IMAP client in whole dialogues against a scripted server forked on a
 * socketpair (or behind real TLS): logging in, STARTTLS refusals and
 * injection, SELECT, listing, pipelined fetches with untagged responses in
 * odd places, bounded literals, changes on UID sets, IDLE and BYE.
 */
#include <config.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "proto/buf.h"
#include "proto/imap.h"
#include "tests/unit/script_server.h"
#include "tests/unit/tls_relay.h"

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

static imap_status
start(script_server sv, imap_tls_mode tls, imap_session **s_r, char **err_r)
{
	/* room for a handshake under valgrind (tests/run) */
	imap_options opt = { .command_timeout_ms = 60000, .tls = tls, .host = "localhost",
			     .port = "993", .ca_file = tls_relay_ca() };

	trace_len = 0;
	trace_text[0] = '\0';
	return imap_from_fd_trace(sv.fd, &opt, trace_collect, NULL, s_r, err_r);
}

static imap_session *
session(script_server sv)
{
	imap_session *s = NULL;
	char *err = NULL;
	imap_status st = start(sv, IMAP_TLS_NONE, &s, &err);

	if (st != IMAP_OK)
		fail_msg("imap_from_fd: %s %s", imap_status_name(st), err != NULL ? err : "");
	return s;
}

#define GREETING ">* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR AUTH=PLAIN AUTH=LOGIN ID] ready\r\n"
#define LOGIN_OK "<A1 LOGIN \"user\" \"pass\"", \
	">A1 OK [CAPABILITY IMAP4rev1 IDLE MOVE UIDPLUS] Logged in\r\n"
#define SELECTED "<A2 SELECT \"INBOX\"", \
	">* 3 EXISTS\r\n* OK [UIDVALIDITY 7] v\r\nA2 OK [READ-WRITE] done\r\n"

/* Log in and select INBOX, as most tests start. */
static imap_session *
selected(script_server sv)
{
	imap_session *s = session(sv);
	imap_mailbox mb;

	assert_int_equal(imap_login(s, "user", "pass", NULL), IMAP_OK);
	assert_int_equal(imap_select(s, "INBOX", &mb, NULL), IMAP_OK);
	assert_int_equal(mb.exists, 3);
	return s;
}

static void
finish(imap_session **s, script_server *sv)
{
	imap_close(s);
	script_server_finish(sv);
}

/* ------------------------------------------------------------ logging in */

static void
test_login(void **state)
{
	const char *script[] = {
		GREETING, "<A1 LOGIN \"us\\\"er\" \"p\\\\ss word\"",
		">* OK [ALERT] Password expires soon\r\n"
		"A1 OK [CAPABILITY IMAP4rev1 IDLE MOVE UIDPLUS] Logged in\r\n",
		"<A2 LOGOUT", ">* BYE logging out\r\nA2 OK done\r\n", "E", NULL,
	};
	script_server sv = script_server_start(script);
	imap_session *s = session(sv);
	char capa[256];

	assert_true(imap_has_capa(s, "sasl-ir"));
	assert_true(imap_has_auth(s, "PLAIN"));
	assert_false(imap_has_capa(s, "MOVE"));
	assert_false(imap_is_authenticated(s));
	assert_int_equal(imap_login(s, "us\"er", "p\\ss word", NULL), IMAP_OK);
	assert_true(imap_is_authenticated(s));
	/* the capabilities of the OK replace the greeting's */
	assert_true(imap_has_capa(s, "MOVE"));
	assert_false(imap_has_capa(s, "SASL-IR"));
	imap_capa_text(s, capa, sizeof(capa));
	assert_string_equal(capa, "IMAP4REV1 IDLE MOVE UIDPLUS");
	assert_string_equal(imap_alert(s), "Password expires soon");
	assert_int_equal(imap_logout(s, NULL), IMAP_OK);
	finish(&s, &sv);
	assert_non_null(strstr(trace_text, "C: A1 LOGIN \"us\\\"er\" <redacted>\n"));
	assert_null(strstr(trace_text, "ss word"));
}

/* An 8-bit password goes as a literal: synchronizing without LITERAL+. */
static void
test_login_literal(void **state)
{
	const char *script[] = {
		">* OK [CAPABILITY IMAP4rev1] hi\r\n",
		"<A1 LOGIN \"user\" {4}", ">+ go ahead\r\n", "<p\xc3\xa4s",
		">A1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
		"<A2 LOGIN \"user\" {4}", ">A2 BAD [CLIENTBUG] no literals today\r\n",
		"<A3 NOOP", ">A3 OK\r\n", "E", NULL,
	};
	script_server sv = script_server_start(script);
	imap_session *s = session(sv);
	char *err = NULL;

	assert_int_equal(imap_login(s, "user", "p\xc3\xa4s", &err), IMAP_EAUTH);
	assert_string_equal(err, "LOGIN: NO [AUTHENTICATIONFAILED] Authentication failed.");
	assert_string_equal(imap_last_code(s), "AUTHENTICATIONFAILED");
	assert_false(imap_code_is_temporary(imap_last_code(s)));
	free(err);
	assert_int_equal(imap_login(s, "user", "p\xc3\xa4s", NULL), IMAP_EAUTH);
	assert_int_equal(imap_noop(s, NULL), IMAP_OK);
	finish(&s, &sv);
	assert_null(strstr(trace_text, "p\xc3\xa4s"));
}

static void
test_login_literal_plus(void **state)
{
	const char *script[] = {
		GREETING, "<A1 LOGIN \"user\" {4+}", "<p\xc3\xa4s", ">A1 OK done\r\n",
		"<A2 CAPABILITY", ">* CAPABILITY IMAP4rev1 MOVE\r\nA2 OK\r\n", "E", NULL,
	};
	script_server sv = script_server_start(script);
	imap_session *s = session(sv);

	assert_int_equal(imap_login(s, "user", "p\xc3\xa4s", NULL), IMAP_OK);
	assert_true(imap_has_capa(s, "MOVE"));
	finish(&s, &sv);
}

/* LITERAL- (RFC 7888): non-synchronizing literals up to 4096 bytes (LOGIN's
 * arguments are at most 1024). */
static void
test_login_literal_minus(void **state)
{
	const char *script[] = {
		">* OK [CAPABILITY IMAP4rev1 LITERAL-] hi\r\n",
		"<A1 LOGIN \"user\" {4+}", "<p\xc3\xa4s", ">A1 NO [AUTHENTICATIONFAILED] no\r\n",
		"E", NULL,
	};
	script_server sv = script_server_start(script);
	imap_session *s = session(sv);

	assert_int_equal(imap_login(s, "user", "p\xc3\xa4s", NULL), IMAP_EAUTH);
	finish(&s, &sv);
}

/* A mailbox known to be empty: the listing sends nothing. */
static void
test_empty_mailbox(void **state)
{
	const char *script[] = {
		GREETING, LOGIN_OK, "<A2 SELECT \"Empty\"", ">* 0 EXISTS\r\nA2 OK\r\n", "E", NULL,
	};
	script_server sv = script_server_start(script);
	imap_session *s = session(sv);
	imap_entry *e = (imap_entry *)1;
	size_t n = 9;

	assert_int_equal(imap_login(s, "user", "pass", NULL), IMAP_OK);
	assert_int_equal(imap_select(s, "Empty", NULL, NULL), IMAP_OK);
	assert_int_equal(imap_uid_list(s, 1, 0, &e, &n, NULL), IMAP_OK);
	assert_null(e);
	assert_int_equal(n, 0);
	finish(&s, &sv);
}

static void
test_logindisabled(void **state)
{
	const char *script[] = {
		">* OK hi\r\n", "<A1 CAPABILITY",
		">* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\nA1 OK\r\n", "E", NULL,
	};
	script_server sv = script_server_start(script);
	imap_session *s = session(sv);
	char *err = NULL;

	assert_int_equal(imap_login(s, "user", "pass", &err), IMAP_EUSAGE);
	assert_non_null(strstr(err, "LOGINDISABLED"));
	free(err);
	assert_int_equal(imap_login(s, "", "pass", NULL), IMAP_EUSAGE);
	assert_int_equal(imap_login(s, "a\r\nb", "pass", NULL), IMAP_EUSAGE);
	assert_int_equal(imap_select(s, "INBOX", NULL, NULL), IMAP_EUSAGE); /* not logged in */
	finish(&s, &sv);
}

/* AUTH=PLAIN with SASL-IR: the response rides on the command line. */
static void
test_sasl_ir(void **state)
{
	const char *script[] = {
		GREETING, "<A1 AUTHENTICATE PLAIN AHVzZXIAcGFzcw==", ">A1 OK done\r\n",
		"<A2 CAPABILITY", ">* CAPABILITY IMAP4rev1 IDLE\r\nA2 OK\r\n", "E", NULL,
	};
	script_server sv = script_server_start(script);
	imap_session *s = session(sv);

	assert_int_equal(imap_authenticate(s, "PLAIN", "user", "pass", NULL), IMAP_OK);
	assert_true(imap_has_capa(s, "IDLE"));
	finish(&s, &sv);
	assert_non_null(strstr(trace_text, "C: A1 AUTHENTICATE PLAIN <redacted>\n"));
	assert_null(strstr(trace_text, "AHVzZXIAcGFzcw=="));
}

/* Without SASL-IR the response follows the "+"; LOGIN always does. */
static void
test_sasl_continuation(void **state)
{
	const char *script[] = {
		">* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=LOGIN] hi\r\n",
		"<A1 AUTHENTICATE PLAIN", ">+ \r\n", "<AHVzZXIAcGFzcw==",
		">A1 NO [UNAVAILABLE] try later\r\n",
		"<A2 AUTHENTICATE LOGIN", ">+ VXNlcm5hbWU6\r\n", "<dXNlcg==",
		">+ UGFzc3dvcmQ6\r\n", "<cGFzcw==", ">A2 OK [CAPABILITY IMAP4rev1] ok\r\n",
		"E", NULL,
	};
	script_server sv = script_server_start(script);
	imap_session *s = session(sv);

	assert_int_equal(imap_authenticate(s, "PLAIN", "user", "pass", NULL), IMAP_EAUTH);
	assert_true(imap_code_is_temporary(imap_last_code(s)));
	assert_int_equal(imap_authenticate(s, "XOAUTH2", "user", "pass", NULL), IMAP_EUSAGE);
	assert_int_equal(imap_authenticate(s, "CRAM-MD5", "user", "pass", NULL), IMAP_EUSAGE);
	assert_int_equal(imap_authenticate(s, "LOGIN", "user", "pass", NULL), IMAP_OK);
	assert_true(imap_is_authenticated(s));
	finish(&s, &sv);
	assert_null(strstr(trace_text, "cGFzcw=="));
}

/* A server that asks once more than the mechanism needs is cancelled. */
static void
test_sasl_extra_challenge(void **state)
{
	const char *script[] = {
		GREETING, "<A1 AUTHENTICATE PLAIN AHVzZXIAcGFzcw==", ">+ more?\r\n", "<*",
		">A1 BAD cancelled\r\n", "E", NULL,
	};
	script_server sv = script_server_start(script);
	imap_session *s = session(sv);

	assert_int_equal(imap_authenticate(s, "PLAIN", "user", "pass", NULL), IMAP_EPROTO);
	finish(&s, &sv);
}

/* ------------------------------------------------------------ OAuth (TLS) */

/* RFC 7628 3.2.2's failure: {"status":"invalid_token",...} */
#define CHALLENGE "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NvcGUiOiJleGFtcGxlX3Njb3BlIn0="

static void
test_oauth_refused(void **state)
{
	char *tok = tls_relay_token(40);
	char *x = tls_relay_oauth_line("<A1 AUTHENTICATE XOAUTH2 ", 0, "box@example.com", tok, "993");
	char *b = tls_relay_oauth_line("<A2 AUTHENTICATE OAUTHBEARER ", 1, "box@example.com", tok,
				       "993");
	const char *script[] = {
		">* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2 AUTH=OAUTHBEARER] hi\r\n",
		x, ">+ " CHALLENGE "\r\n", "<", ">A1 NO [AUTHENTICATIONFAILED] Invalid credentials\r\n",
		b, ">+ " CHALLENGE "\r\n", "<AQ==", ">A2 NO [AUTHENTICATIONFAILED] no\r\n",
		"E", NULL,
	};
	script_server sv = script_server_start_tls(script);
	imap_session *s = NULL;
	char *err = NULL;
	const char *used = NULL;

	assert_int_equal(start(sv, IMAP_TLS_IMPLICIT, &s, &err), IMAP_OK);
	assert_true(imap_is_tls(s));
	assert_int_equal(imap_auth_oauth(s, "XOAUTH2", "box@example.com", tok, &used, &err),
			 IMAP_EAUTH);
	assert_string_equal(used, "XOAUTH2");
	assert_non_null(strstr(err, "invalid_token"));
	assert_null(strstr(err, tok));
	free(err);
	err = NULL;
	assert_int_equal(imap_auth_oauth(s, NULL, "box@example.com", tok, &used, &err), IMAP_EAUTH);
	assert_string_equal(used, "OAUTHBEARER");
	assert_non_null(strstr(err, "invalid_token"));
	free(err);
	finish(&s, &sv);
	assert_null(strstr(trace_text, tok));
	free(x);
	free(b);
	free(tok);
}

static void
test_oauth_needs_tls(void **state)
{
	const char *script[] = { ">* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] hi\r\n", "E", NULL };
	script_server sv = script_server_start(script);
	imap_session *s = session(sv);
	char *tok = tls_relay_token(40);

	assert_int_equal(imap_auth_oauth(s, NULL, "box@example.com", tok, NULL, NULL), IMAP_EUSAGE);
	finish(&s, &sv);
	free(tok);
}

/* ------------------------------------------------------------ STARTTLS */

static void
expect_connect(const char *const *script, imap_tls_mode mode, imap_status want,
	       const char *want_err)
{
	script_server sv = script_server_start(script);
	imap_session *s = NULL;
	char *err = NULL;

	assert_int_equal(start(sv, mode, &s, &err), want);
	assert_null(s);
	if (want_err != NULL && (err == NULL || strstr(err, want_err) == NULL))
		fail_msg("error \"%s\" lacks \"%s\"", err != NULL ? err : "", want_err);
	free(err);
	script_server_finish(&sv);
}

static void
test_starttls_refusals(void **state)
{
	const char *not_offered[] = { ">* OK [CAPABILITY IMAP4rev1] hi\r\n", "E", NULL };
	const char *said_no[] = {
		">* OK [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n", "<A1 STARTTLS", ">A1 NO not now\r\n",
		"E", NULL,
	};
	const char *injected[] = {
		">* OK [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n", "<A1 STARTTLS",
		">A1 OK Begin TLS\r\n* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n", "H", NULL,
	};
	const char *preauth[] = { ">* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n", "E", NULL };
	const char *bye[] = { ">* BYE too many connections\r\n", "E", NULL };
	const char *junk[] = { ">HTTP/1.1 400 Bad\r\n", "E", NULL };

	expect_connect(not_offered, IMAP_TLS_STARTTLS, IMAP_ETLS, "does not offer STARTTLS");
	expect_connect(said_no, IMAP_TLS_STARTTLS, IMAP_ETLS, "NO not now");
	expect_connect(injected, IMAP_TLS_STARTTLS, IMAP_ETLS, "inject");
	expect_connect(preauth, IMAP_TLS_STARTTLS, IMAP_ETLS, "PREAUTH");
	expect_connect(bye, IMAP_TLS_NONE, IMAP_ENO, "too many connections");
	expect_connect(junk, IMAP_TLS_NONE, IMAP_EPROTO, NULL);
}

/* STARTTLS for real: what was said in plain text no longer counts. */
static void
test_starttls(void **state)
{
	const char *script[] = {
		">* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED AUTH=PLAIN] hi\r\n",
		"<A1 STARTTLS", ">A1 OK Begin TLS negotiation now\r\n", "T",
		"<A2 CAPABILITY", ">* CAPABILITY IMAP4rev1 IDLE\r\nA2 OK\r\n",
		"<A3 LOGIN \"user\" \"pass\"", ">A3 OK [CAPABILITY IMAP4rev1 IDLE MOVE] in\r\n",
		"<A4 LOGOUT", ">* BYE\r\nA4 OK\r\n", "E", NULL,
	};
	script_server sv = script_server_start(script);
	imap_session *s = NULL;
	char *err = NULL;

	assert_int_equal(start(sv, IMAP_TLS_STARTTLS, &s, &err), IMAP_OK);
	assert_true(imap_is_tls(s));
	assert_false(imap_has_capa(s, "LOGINDISABLED"));
	assert_false(imap_has_auth(s, "PLAIN"));
	assert_int_equal(imap_login(s, "user", "pass", NULL), IMAP_OK);
	assert_int_equal(imap_logout(s, NULL), IMAP_OK);
	finish(&s, &sv);
}

/* OAuth accepted: XOAUTH2 with SASL-IR, OAUTHBEARER after the "+" without it. */
static void
test_oauth_ok(void **state)
{
	char *tok = tls_relay_token(3000);
	char *x = tls_relay_oauth_line("<A1 AUTHENTICATE XOAUTH2 ", 0, "box@example.com", tok, "993");
	char *b = tls_relay_oauth_line("<", 1, "box@example.com", tok, "993");
	const char *script1[] = {
		">* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] hi\r\n",
		x, ">A1 OK [CAPABILITY IMAP4rev1 IDLE] in\r\n", "E", NULL,
	};
	const char *script2[] = {
		">* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2 AUTH=OAUTHBEARER] hi\r\n",
		"<A1 AUTHENTICATE OAUTHBEARER", ">+ \r\n", b, ">A1 OK [CAPABILITY IMAP4rev1] in\r\n",
		"E", NULL,
	};
	script_server sv = script_server_start_tls(script1);
	imap_session *s = NULL;
	const char *used = NULL;

	assert_int_equal(start(sv, IMAP_TLS_IMPLICIT, &s, NULL), IMAP_OK);
	assert_int_equal(imap_auth_oauth(s, NULL, "box@example.com", tok, &used, NULL), IMAP_OK);
	assert_string_equal(used, "XOAUTH2");
	assert_true(imap_has_capa(s, "IDLE"));
	finish(&s, &sv);
	assert_non_null(strstr(trace_text, "C: A1 AUTHENTICATE XOAUTH2 <redacted>\n"));
	assert_null(strstr(trace_text, tok));
	sv = script_server_start_tls(script2);
	assert_int_equal(start(sv, IMAP_TLS_IMPLICIT, &s, NULL), IMAP_OK);
	assert_int_equal(imap_auth_oauth(s, NULL, "box@example.com", tok, &used, NULL), IMAP_OK);
	assert_string_equal(used, "OAUTHBEARER");
	finish(&s, &sv);
	assert_null(strstr(trace_text, tok));
	free(x);
	free(b);
	free(tok);
}

static void
test_preauth(void **state)
{
	const char *script[] = {
		">* PREAUTH [CAPABILITY IMAP4rev1 IDLE] hi\r\n", "<A1 NOOP", ">A1 OK\r\n", "E", NULL,
	};
	script_server sv = script_server_start(script);
	imap_session *s = session(sv);

	assert_true(imap_is_authenticated(s));
	assert_int_equal(imap_login(s, "user", "pass", NULL), IMAP_EUSAGE);
	assert_int_equal(imap_noop(s, NULL), IMAP_OK);
	finish(&s, &sv);
}

/* ------------------------------------------------------------ mailboxes */

static void
test_select(void **state)
{
	const char *script[] = {
		GREETING, LOGIN_OK, "<A2 EXAMINE \"Entw&APw-rfe\"",
		">* 172 EXISTS\r\n* 1 RECENT\r\n* OK [UNSEEN 12] Message 12 is first unseen\r\n"
		"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n* OK [UIDNEXT 4392] Predicted next UID\r\n"
		"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
		"* OK [PERMANENTFLAGS ()] No permanent flags permitted\r\n"
		"A2 OK [READ-ONLY] EXAMINE completed\r\n",
		"<A3 SELECT \"Nope\"", ">A3 NO [NONEXISTENT] Unknown Mailbox\r\n",
		"<A4 CREATE \"Processed\"", ">A4 NO [ALREADYEXISTS] Mailbox exists\r\n",
		"<A5 CREATE \"Other\"", ">A5 NO exists somehow\r\n",
		"<A6 LIST \"\" \"Other\"", ">* LIST (\\HasNoChildren) \"/\" Other\r\nA6 OK\r\n",
		"<A7 LIST \"\" \"Gone\"", ">* LIST (\\NonExistent) \"/\" Gone\r\nA7 OK\r\n",
		"E", NULL,
	};
	script_server sv = script_server_start(script);
	imap_session *s = session(sv);
	imap_mailbox mb;
	int exists = -1;

	assert_int_equal(imap_login(s, "user", "pass", NULL), IMAP_OK);
	assert_int_equal(imap_examine(s, "Entw\xc3\xbcrfe", &mb, NULL), IMAP_OK);
	assert_int_equal(mb.exists, 172);
	assert_int_equal(mb.uidvalidity, 3857529045u);
	assert_int_equal(mb.uidnext, 4392);
	assert_true(mb.read_only);
	assert_int_equal(imap_counters_get(s)->recent, 1);
	assert_string_equal(imap_selected(s), "Entw\xc3\xbcrfe");
	assert_int_equal(imap_select(s, "Nope", &mb, NULL), IMAP_ENO);
	assert_string_equal(imap_last_code(s), "NONEXISTENT");
	assert_null(imap_selected(s));
	assert_int_equal(imap_create(s, "Processed", NULL), IMAP_OK);
	assert_int_equal(imap_create(s, "Other", NULL), IMAP_OK);
	assert_int_equal(imap_mailbox_exists(s, "Gone", &exists, NULL), IMAP_OK);
	assert_int_equal(exists, 0);
	assert_int_equal(imap_select(s, "a\rb", &mb, NULL), IMAP_EUSAGE);
	assert_int_equal(imap_select(s, "bad\xff", &mb, NULL), IMAP_EUSAGE);
	finish(&s, &sv);
}

/* ------------------------------------------------------------ listing */

static void
test_listing(void **state)
{
	const char *script[] = {
		GREETING, LOGIN_OK, SELECTED,
		"<A3 UID FETCH 1:* (UID RFC822.SIZE)",
		">* 1 FETCH (UID 5 RFC822.SIZE 100)\r\n"
		"* 3 FETCH (RFC822.SIZE 300 UID 9)\r\n"
		"* 4 EXISTS\r\n"
		"* 2 FETCH (UID 7 RFC822.SIZE 99999999999999999999999)\r\n"
		"* 1 FETCH (UID 5 RFC822.SIZE 101)\r\n"
		"* 4 FETCH (UID 0 RFC822.SIZE 1)\r\n"
		"* 4 FETCH (UID 4294967296 RFC822.SIZE 1)\r\n"
		"* 4 FETCH (FLAGS (\\Seen))\r\n"
		"* 4 FETCH (UID 4294967295)\r\n"
		"A3 OK done\r\n",
		"<A4 UID FETCH 8:* (UID RFC822.SIZE)",
		">* 3 FETCH (UID 9 RFC822.SIZE 300)\r\n* 2 FETCH (UID 7 RFC822.SIZE 1)\r\n"
		"A4 OK done\r\n",
		"<A5 UID FETCH 1:* (UID RFC822.SIZE)",
		">* 1 FETCH (UID 5 RFC822.SIZE 100)\r\n* 2 FETCH (UID 7 RFC822.SIZE 1)\r\n"
		"* 3 FETCH (UID 9 RFC822.SIZE 300)\r\nA5 OK done\r\n",
		"<A6 UID SEARCH UNSEEN", ">* SEARCH 9 5 x 5 0\r\nA6 OK\r\n",
		"<A7 NOOP", ">A7 OK\r\n", "E", NULL,
	};
	script_server sv = script_server_start(script);
	imap_session *s = selected(sv);
	imap_entry *e = NULL;
	uint32_t *u = NULL;
	size_t n = 0;

	assert_int_equal(imap_uid_list(s, 0, 0, &e, &n, NULL), IMAP_OK);
	assert_int_equal(n, 4);
	assert_int_equal(e[0].uid, 5);
	assert_int_equal(e[0].size, 100); /* the first size of a UID listed twice */
	assert_int_equal(e[1].uid, 7);
	assert_false(e[1].size_known);
	assert_int_equal(e[2].uid, 9);
	assert_int_equal(e[2].size, 300);
	assert_int_equal(e[3].uid, 4294967295u);
	assert_int_equal(imap_counters_get(s)->exists, 4);
	free(e);
	/* "8:*" answers UID 7 too when it is the last: left out */
	assert_int_equal(imap_uid_list(s, 8, 0, &e, &n, NULL), IMAP_OK);
	assert_int_equal(n, 1);
	assert_int_equal(e[0].uid, 9);
	free(e);
	assert_int_equal(imap_uid_list(s, 1, 2, &e, &n, NULL), IMAP_ETOOBIG);
	assert_null(e);
	assert_int_equal(imap_uid_search(s, "UNSEEN", 0, &u, &n, NULL), IMAP_OK);
	assert_int_equal(n, 2);
	assert_int_equal(u[0], 5);
	assert_int_equal(u[1], 9);
	free(u);
	assert_int_equal(imap_uid_search(s, "a\r\n", 0, &u, &n, NULL), IMAP_EUSAGE);
	assert_int_equal(imap_noop(s, NULL), IMAP_OK);
	finish(&s, &sv);
}

/* ------------------------------------------------------------ fetching */

/* Three pipelined fetches; other messages' news in between; one is gone. */
static void
test_pipelined_fetch(void **state)
{
	const char *script[] = {
		GREETING, LOGIN_OK, SELECTED,
		"<A3 UID FETCH 10:12 (BODY.PEEK[])",
		">* 1 FETCH (UID 10 FLAGS (\\Seen) BODY[] {7}\r\nhello\r\n)\r\n"
		"* 9 EXISTS\r\n* 7 FETCH (FLAGS (\\Flagged))\r\n"
		"* 7 FETCH (FLAGS (\\Seen))\r\n"
		"* 2 FETCH (BODY[] {3}\r\nabc UID 11 FLAGS ())\r\n* 5 EXPUNGE\r\n"
		"* 3 EXPUNGE\r\nA3 OK done\r\n",
		"<A4 UID FETCH 13 (BODY.PEEK[])",
		">* 4 FETCH (UID 13 BODY[] {2}\r\nxy)\r\nA4 NO [EXPUNGEISSUED] Some of the "
		"requested messages no longer exist\r\n",
		"<A5 UID FETCH 14 (BODY.PEEK[])", ">A5 NO [EXPUNGEISSUED] gone\r\n",
		"<A6 NOOP", ">A6 OK\r\n", "E", NULL,
	};
	script_server sv = script_server_start(script);
	imap_session *s = selected(sv);
	buf out = { .max = 1000 };
	uint32_t uid = 0;
	char *err = NULL;

	assert_int_equal(imap_send_fetch(s, 10, NULL), IMAP_OK);
	assert_int_equal(imap_send_fetch(s, 11, NULL), IMAP_OK);
	assert_int_equal(imap_send_fetch(s, 12, NULL), IMAP_OK);
	assert_int_equal(imap_in_flight(s), 3);
	assert_int_equal(imap_noop(s, NULL), IMAP_EUSAGE); /* not while fetches are in flight */
	assert_int_equal(imap_flush(s, NULL), IMAP_OK);
	assert_int_equal(imap_recv_fetch(s, &out, &uid, NULL), IMAP_OK);
	assert_int_equal(uid, 10);
	assert_int_equal(out.len, 7);
	assert_memory_equal(out.data, "hello\r\n", 7);
	buf_reset(&out);
	assert_int_equal(imap_recv_fetch(s, &out, &uid, NULL), IMAP_OK);
	assert_int_equal(uid, 11);
	assert_string_equal(out.data, "abc");
	buf_reset(&out);
	assert_int_equal(imap_recv_fetch(s, &out, &uid, &err), IMAP_EGONE);
	assert_int_equal(uid, 12);
	assert_int_equal(out.len, 0);
	free(err);
	assert_int_equal(imap_counters_get(s)->exists, 7);
	assert_int_equal(imap_counters_get(s)->n_expunge, 2);
	assert_int_equal(imap_counters_get(s)->n_fetch, 2);
	/* a body and a NO: the body is what counts (the server sent it whole) */
	assert_int_equal(imap_fetch(s, 13, &out, NULL), IMAP_ENO);
	buf_reset(&out);
	assert_int_equal(imap_fetch(s, 14, &out, NULL), IMAP_EGONE);
	assert_int_equal(imap_noop(s, NULL), IMAP_OK);
	buf_free(&out);
	finish(&s, &sv);
	/* bodies are not traced */
	assert_null(strstr(trace_text, "hello"));
	assert_non_null(strstr(trace_text, "S: * 1 FETCH (UID 10 FLAGS (\\Seen) BODY[] {7 bytes})\n"));
}

/* A second body for one UID within a command (one of them unsolicited): no
 * body of the command is handed over, the session is given up. */
static void
test_fetch_two_bodies(void **state)
{
	const char *script[] = {
		GREETING, LOGIN_OK, SELECTED,
		"<A3 UID FETCH 10:11 (BODY.PEEK[])",
		">* 2 FETCH (UID 11 BODY[] {3}\r\nbad)\r\n"
		"* 1 FETCH (UID 10 BODY[] {2}\r\nok)\r\n"
		"* 2 FETCH (UID 11 BODY[] {4}\r\ngood)\r\nA3 OK done\r\n",
		"E", NULL,
	};
	script_server sv = script_server_start(script);
	imap_session *s = selected(sv);
	buf out = { .max = 1000 };
	uint32_t uid = 0;
	char *err = NULL;

	(void)state;
	assert_int_equal(imap_send_fetch(s, 10, NULL), IMAP_OK);
	assert_int_equal(imap_send_fetch(s, 11, NULL), IMAP_OK);
	assert_int_equal(imap_recv_fetch(s, &out, &uid, &err), IMAP_EPROTO);
	assert_non_null(strstr(err, "two bodies"));
	free(err);
	buf_free(&out);
	finish(&s, &sv);
}

/* Dovecot runs pipelined fetches at once: every body before the first OK. */
static void
test_pipelined_bodies_first(void **state)
{
	const char *script[] = {
		GREETING, LOGIN_OK, SELECTED,
		"<A3 UID FETCH 10:13 (BODY.PEEK[])",
		">* 2 FETCH (UID 11 BODY[] {3}\r\nbbb)\r\n"
		"* 1 FETCH (UID 10 BODY[] {2}\r\naa)\r\n"
		"* 4 FETCH (UID 13 BODY[] {30}\r\n012345678901234567890123456789)\r\n"
		"* 9 FETCH (UID 99 BODY[] {4}\r\nnone)\r\n"
		"A3 OK\r\n",
		"<A4 NOOP", ">A4 OK\r\n", "E", NULL,
	};
	script_server sv = script_server_start(script);
	imap_session *s = selected(sv);
	buf out = { .max = 10 };
	uint32_t uid, want[] = { 10, 11, 12, 13 };
	size_t i;

	for (i = 0; i < 4; i++)
		assert_int_equal(imap_send_fetch(s, want[i], NULL), IMAP_OK);
	assert_int_equal(imap_recv_fetch(s, &out, &uid, NULL), IMAP_OK);
	assert_int_equal(uid, 10);
	assert_string_equal(out.data, "aa");
	buf_reset(&out);
	assert_int_equal(imap_recv_fetch(s, &out, &uid, NULL), IMAP_OK);
	assert_int_equal(uid, 11);
	assert_string_equal(out.data, "bbb");
	buf_reset(&out);
	assert_int_equal(imap_recv_fetch(s, &out, &uid, NULL), IMAP_EGONE);
	assert_int_equal(imap_recv_fetch(s, &out, &uid, NULL), IMAP_ETOOBIG);
	assert_int_equal(uid, 13);
	assert_int_equal(out.len, 0);
	assert_int_equal(imap_counters_get(s)->n_dropped, 1);
	assert_int_equal(imap_noop(s, NULL), IMAP_OK);
	buf_free(&out);
	finish(&s, &sv);
}

/*
 * Changes pipelined between fetch sets, as the run sends a batch's effect:
 * each goes after the fetches queued before it; a change's answer that
 * comes while a fetch is read waits for imap_recv_change; bodies and a
 * later set's answer that come while a change is awaited wait for their
 * imap_recv_fetch, matched by UID though EXPUNGE renumbers the messages; a
 * refused change is the change's result and leaves the session usable.
 */
static void
test_pipelined_changes(void **state)
{
	const char *script[] = {
		GREETING, LOGIN_OK, SELECTED,
		"<A3 UID FETCH 1:2 (BODY.PEEK[])",
		"<A4 UID STORE 1:2 +FLAGS.SILENT (\\Deleted)",
		"<A5 UID EXPUNGE 1:2",
		"<A6 UID FETCH 3:4 (BODY.PEEK[])",
		"<A7 UID MOVE 3:4 \"Done\"",
		">* 1 FETCH (UID 1 BODY[] {2}\r\naa)\r\n"
		"* 2 FETCH (BODY[] {2}\r\nbb UID 2)\r\n"
		"A4 OK\r\nA3 OK\r\n"
		"* 1 EXPUNGE\r\n* 1 EXPUNGE\r\n"
		"* 2 FETCH (UID 4 BODY[] {2}\r\ndd)\r\n"
		"* 1 FETCH (UID 3 BODY[] {2}\r\ncc)\r\n"
		"A6 OK\r\nA5 OK\r\n"
		"A7 NO [CANNOT] not today\r\n",
		"<A8 NOOP", ">A8 OK\r\n", "E", NULL,
	};
	script_server sv = script_server_start(script);
	imap_session *s = selected(sv);
	buf out = { .max = 10 };
	uint32_t uid, first[] = { 2, 1 }, second[] = { 3, 4 };
	char *err = NULL;

	assert_int_equal(imap_send_fetch(s, 1, NULL), IMAP_OK);
	assert_int_equal(imap_send_fetch(s, 2, NULL), IMAP_OK);
	assert_int_equal(imap_send_change(s, IMAP_CHANGE_FLAGS, first, 2, "\\Deleted", NULL),
			 IMAP_OK);
	assert_int_equal(imap_send_change(s, IMAP_CHANGE_EXPUNGE, first, 2, NULL, NULL), IMAP_OK);
	assert_int_equal(imap_send_fetch(s, 3, NULL), IMAP_OK);
	assert_int_equal(imap_send_fetch(s, 4, NULL), IMAP_OK);
	assert_int_equal(imap_send_change(s, IMAP_CHANGE_MOVE, second, 2, "Done", NULL), IMAP_OK);
	assert_int_equal(imap_changes_in_flight(s), 3);
	assert_int_equal(imap_flush(s, NULL), IMAP_OK);
	assert_int_equal(imap_recv_fetch(s, &out, &uid, NULL), IMAP_OK);
	assert_int_equal(uid, 1);
	assert_string_equal(out.data, "aa");
	buf_reset(&out);
	assert_int_equal(imap_recv_fetch(s, &out, &uid, NULL), IMAP_OK);
	assert_string_equal(out.data, "bb");
	buf_reset(&out);
	assert_int_equal(imap_recv_change(s, NULL), IMAP_OK);
	assert_int_equal(imap_noop(s, NULL), IMAP_EUSAGE);
	assert_int_equal(imap_recv_change(s, NULL), IMAP_OK);
	assert_int_equal(imap_counters_get(s)->n_expunge, 2);
	assert_int_equal(imap_recv_fetch(s, &out, &uid, NULL), IMAP_OK);
	assert_int_equal(uid, 3);
	assert_string_equal(out.data, "cc");
	buf_reset(&out);
	assert_int_equal(imap_recv_fetch(s, &out, &uid, NULL), IMAP_OK);
	assert_int_equal(uid, 4);
	assert_string_equal(out.data, "dd");
	assert_int_equal(imap_recv_change(s, &err), IMAP_ENO);
	assert_non_null(strstr(err, "UID MOVE: NO [CANNOT] not today"));
	free(err);
	assert_int_equal(imap_changes_in_flight(s), 0);
	assert_int_equal(imap_recv_change(s, NULL), IMAP_EUSAGE);
	assert_int_equal(imap_noop(s, NULL), IMAP_OK);
	assert_int_equal(imap_counters_get(s)->n_dropped, 0);
	buf_free(&out);
	finish(&s, &sv);
}

/* A change's answer with a tag nobody sent breaks the session; a change
 * the server cannot do is refused before anything is sent. */
static void
test_change_unknown_tag(void **state)
{
	const char *script[] = {
		GREETING, "<A1 LOGIN \"user\" \"pass\"",
		">A1 OK [CAPABILITY IMAP4rev1] Logged in\r\n", SELECTED,
		"<A3 UID STORE 5 +FLAGS.SILENT (\\Seen)",
		">A9 OK\r\n", "E", NULL,
	};
	script_server sv = script_server_start(script);
	imap_session *s = selected(sv);
	uint32_t uid = 5;
	char *err = NULL;

	assert_int_equal(imap_send_change(s, IMAP_CHANGE_EXPUNGE, &uid, 1, NULL, NULL),
			 IMAP_EUSAGE);
	assert_int_equal(imap_send_change(s, IMAP_CHANGE_MOVE, &uid, 1, "Done", NULL), IMAP_EUSAGE);
	assert_int_equal(imap_changes_in_flight(s), 0);
	assert_int_equal(imap_send_change(s, IMAP_CHANGE_FLAGS, &uid, 1, "\\Seen", NULL), IMAP_OK);
	assert_int_equal(imap_flush(s, NULL), IMAP_OK);
	assert_int_equal(imap_recv_change(s, &err), IMAP_EPROTO);
	assert_non_null(strstr(err, "unknown tag"));
	free(err);
	finish(&s, &sv);
}

/*
 * Hostile answers around a pipelined change: a body for a message still in
 * flight that comes while the change is awaited, then its "real" body,
 * is two bodies for one message (neither is handed over); a change's tag
 * answered twice is an answer out of order.
 */
static void
test_change_hostile(void **state)
{
	const char *two_bodies[] = {
		GREETING, LOGIN_OK, SELECTED,
		"<A3 UID FETCH 1 (BODY.PEEK[])",
		"<A4 UID STORE 1 +FLAGS.SILENT (\\Deleted)",
		"<A5 UID FETCH 2 (BODY.PEEK[])",
		">* 1 FETCH (UID 1 BODY[] {2}\r\naa)\r\nA3 OK\r\n"
		"* 2 FETCH (UID 2 BODY[] {4}\r\nfake)\r\nA4 OK\r\n"
		"* 2 FETCH (UID 2 BODY[] {4}\r\nreal)\r\nA5 OK\r\n",
		"E", NULL,
	};
	const char *twice[] = {
		GREETING, LOGIN_OK, SELECTED,
		"<A3 UID STORE 1 +FLAGS.SILENT (\\Deleted)",
		"<A4 UID FETCH 2 (BODY.PEEK[])",
		">A3 OK\r\nA3 OK\r\n* 2 FETCH (UID 2 BODY[] {2}\r\nbb)\r\nA4 OK\r\n",
		"E", NULL,
	};
	script_server sv = script_server_start(two_bodies);
	imap_session *s = selected(sv);
	buf out = { .max = 10 };
	uint32_t one = 1;
	char *err = NULL;

	assert_int_equal(imap_send_fetch(s, 1, NULL), IMAP_OK);
	assert_int_equal(imap_send_change(s, IMAP_CHANGE_FLAGS, &one, 1, "\\Deleted", NULL),
			 IMAP_OK);
	assert_int_equal(imap_send_fetch(s, 2, NULL), IMAP_OK);
	assert_int_equal(imap_flush(s, NULL), IMAP_OK);
	assert_int_equal(imap_recv_fetch(s, &out, NULL, NULL), IMAP_OK);
	assert_string_equal(out.data, "aa");
	assert_int_equal(imap_recv_change(s, NULL), IMAP_OK);
	buf_reset(&out);
	assert_int_equal(imap_recv_fetch(s, &out, NULL, &err), IMAP_EPROTO);
	assert_non_null(strstr(err, "two bodies"));
	free(err);
	err = NULL;
	finish(&s, &sv);

	sv = script_server_start(twice);
	s = selected(sv);
	assert_int_equal(imap_send_change(s, IMAP_CHANGE_FLAGS, &one, 1, "\\Deleted", NULL),
			 IMAP_OK);
	assert_int_equal(imap_send_fetch(s, 2, NULL), IMAP_OK);
	assert_int_equal(imap_flush(s, NULL), IMAP_OK);
	assert_int_equal(imap_recv_change(s, NULL), IMAP_OK);
	buf_reset(&out);
	assert_int_equal(imap_recv_fetch(s, &out, NULL, &err), IMAP_EPROTO);
	assert_non_null(strstr(err, "out of order"));
	free(err);
	buf_free(&out);
	finish(&s, &sv);
}

/* lf_line_ends: bodies as pop3_retr gives them (early or in turn). */
static void
test_fetch_lf(void **state)
{
	const char *script[] = {
		GREETING, LOGIN_OK, SELECTED,
		"<A3 UID FETCH 7:8 (BODY.PEEK[])",
		">* 2 FETCH (UID 8 BODY[] {4}\r\nz\r\n\r)\r\n"
		"* 1 FETCH (BODY[] {13}\r\nA: b\r\n\r\nx\ry\r\n UID 7)\r\nA3 OK\r\n",
		"E", NULL,
	};
	script_server sv = script_server_start(script);
	imap_options opt = { .command_timeout_ms = 5000, .lf_line_ends = 1 };
	imap_session *s = NULL;
	buf out = { .max = 100 };

	assert_int_equal(imap_from_fd(sv.fd, &opt, &s, NULL), IMAP_OK);
	assert_int_equal(imap_login(s, "user", "pass", NULL), IMAP_OK);
	assert_int_equal(imap_select(s, "INBOX", NULL, NULL), IMAP_OK);
	assert_int_equal(imap_send_fetch(s, 7, NULL), IMAP_OK);
	assert_int_equal(imap_send_fetch(s, 8, NULL), IMAP_OK);
	assert_int_equal(imap_recv_fetch(s, &out, NULL, NULL), IMAP_OK);
	assert_string_equal(out.data, "A: b\n\nx\ry\n");
	buf_reset(&out);
	assert_int_equal(imap_recv_fetch(s, &out, NULL, NULL), IMAP_OK);
	assert_string_equal(out.data, "z\n\r");
	buf_free(&out);
	finish(&s, &sv);
}

/*
 * lf_line_ends with the body arriving three bytes at a time: a CR at the end
 * of a piece is kept or dropped by the first byte of the next, at every
 * offset (the bodies start one byte later each time); max counts the bytes
 * as sent, not as converted.
 */
static void
test_fetch_lf_pieces(void **state)
{
	const char *script[] = {
		GREETING, LOGIN_OK, SELECTED,
		"<A3 UID FETCH 7:10 (BODY.PEEK[])",
		"}* 1 FETCH (UID 7 BODY[] {13}\r\na\r\nbc\r\n\r\rd\r\n\r)\r\n",
		"}* 2 FETCH (UID 8 BODY[] {14}\r\nxa\r\nbc\r\n\r\rd\r\n\r)\r\n",
		"}* 3 FETCH (UID 9 BODY[] {15}\r\nxya\r\nbc\r\n\r\rd\r\n\r)\r\n",
		"}* 4 FETCH (UID 10 BODY[] {16}\r\nxyza\r\nbc\r\n\r\rd\r\n\r)\r\nA3 OK\r\n",
		"E", NULL,
	};
	static const char *const want[] = { "a\nbc\n\r\rd\n\r", "xa\nbc\n\r\rd\n\r",
					    "xya\nbc\n\r\rd\n\r" };
	script_server sv = script_server_start(script);
	imap_options opt = { .command_timeout_ms = 5000, .lf_line_ends = 1 };
	imap_session *s = NULL;
	buf out = { .max = 15 };
	uint32_t uid;

	assert_int_equal(imap_from_fd(sv.fd, &opt, &s, NULL), IMAP_OK);
	assert_int_equal(imap_login(s, "user", "pass", NULL), IMAP_OK);
	assert_int_equal(imap_select(s, "INBOX", NULL, NULL), IMAP_OK);
	for (uid = 7; uid <= 10; uid++)
		assert_int_equal(imap_send_fetch(s, uid, NULL), IMAP_OK);
	for (size_t i = 0; i < 3; i++) {
		buf_reset(&out);
		assert_int_equal(imap_recv_fetch(s, &out, &uid, NULL), IMAP_OK);
		assert_int_equal(uid, 7 + i);
		assert_string_equal(out.data, want[i]);
	}
	/* 16 bytes sent, 12 after the conversion: still over a max of 15 */
	buf_reset(&out);
	assert_int_equal(imap_recv_fetch(s, &out, &uid, NULL), IMAP_ETOOBIG);
	assert_int_equal(uid, 10);
	buf_free(&out);
	finish(&s, &sv);
}

/*
 * Sets: ascending runs go into one command each (a UID lower than the one
 * before starts another), a UID missing from a set's answers is gone, bodies
 * come in any order, one not asked for is dropped, and a message is handed
 * over as soon as it came (before its set's tagged answer).
 */
static void
test_fetch_sets(void **state)
{
	const char *script[] = {
		GREETING, LOGIN_OK, SELECTED,
		"<A3 UID FETCH 20:22,24,30 (BODY.PEEK[])", "<A4 UID FETCH 5 (BODY.PEEK[])",
		">* 5 FETCH (UID 24 BODY[] {2}\r\n24)\r\n"
		"* 1 FETCH (UID 20 BODY[] {2}\r\n20)\r\n",
		">* 7 FETCH (UID 30 BODY[] {2}\r\n30)\r\n"
		"* 2 FETCH (UID 21 BODY[] {2}\r\n21)\r\n"
		"* 8 FETCH (UID 31 BODY[] {2}\r\n31)\r\n"
		"A3 OK\r\n* 9 FETCH (UID 5 BODY[] {1}\r\n5)\r\nA4 OK\r\n",
		"<A5 NOOP", ">A5 OK\r\n", "E", NULL,
	};
	script_server sv = script_server_start(script);
	imap_session *s = selected(sv);
	buf out = { .max = 100 };
	uint32_t uid, want[] = { 20, 21, 22, 24, 30, 5 };
	static const imap_status st[] = { IMAP_OK, IMAP_OK, IMAP_EGONE, IMAP_OK, IMAP_OK,
					  IMAP_OK };
	size_t i;

	for (i = 0; i < 6; i++)
		assert_int_equal(imap_send_fetch(s, want[i], NULL), IMAP_OK);
	assert_int_equal(imap_flush(s, NULL), IMAP_OK);
	for (i = 0; i < 6; i++) {
		char *err = NULL;

		buf_reset(&out);
		assert_int_equal(imap_recv_fetch(s, &out, &uid, &err), st[i]);
		assert_int_equal(uid, want[i]);
		if (st[i] == IMAP_OK) {
			char num[16];

			snprintf(num, sizeof(num), "%u", (unsigned)want[i]);
			assert_string_equal(out.data, num);
		} else {
			assert_int_equal(out.len, 0);
			assert_non_null(strstr(err, "gone"));
		}
		free(err);
	}
	assert_int_equal(imap_counters_get(s)->n_dropped, 1);
	assert_int_equal(imap_in_flight(s), 0);
	assert_int_equal(imap_noop(s, NULL), IMAP_OK);
	buf_free(&out);
	finish(&s, &sv);
}

/* A set's command is bounded (256 messages); a set refused whole: every
 * message gets the refusal, none is called gone. */
static void
test_fetch_set_bounds(void **state)
{
	const char *script[] = {
		GREETING, LOGIN_OK, SELECTED,
		"<A3 UID FETCH 1:256 (BODY.PEEK[])", "<A4 UID FETCH 257:300 (BODY.PEEK[])",
		">A3 NO [SERVERBUG] try later\r\nA4 BAD no\r\n",
		"<A5 NOOP", ">A5 OK\r\n", "E", NULL,
	};
	script_server sv = script_server_start(script);
	imap_session *s = selected(sv);
	buf out = { .max = 100 };
	uint32_t uid;
	size_t i;

	for (i = 1; i <= 300; i++)
		assert_int_equal(imap_send_fetch(s, (uint32_t)i, NULL), IMAP_OK);
	assert_int_equal(imap_flush(s, NULL), IMAP_OK);
	for (i = 1; i <= 300; i++) {
		char *err = NULL;

		assert_int_equal(imap_recv_fetch(s, &out, &uid, &err),
				 i <= 256 ? IMAP_ENO : IMAP_EBAD);
		assert_int_equal(uid, i);
		assert_non_null(err);
		free(err);
	}
	assert_int_equal(imap_noop(s, NULL), IMAP_OK);
	buf_free(&out);
	finish(&s, &sv);
}

/* A body over out->max is read and dropped: ETOOBIG, the session usable. */
static void
test_fetch_too_big(void **state)
{
	const char *script[] = {
		GREETING, LOGIN_OK, SELECTED, "<A3 UID FETCH 10 (BODY.PEEK[])",
		">* 1 FETCH (UID 10 BODY[] {50}\r\n01234567890123456789012345678901234567890123456789"
		" FLAGS (\\Seen))\r\nA3 OK\r\n",
		"<A4 UID FETCH 11 (BODY.PEEK[])", ">* 2 FETCH (UID 11 BODY[] {4}\r\nsmal)\r\nA4 OK\r\n",
		"E", NULL,
	};
	script_server sv = script_server_start(script);
	imap_session *s = selected(sv);
	buf out = { .max = 10 };

	assert_int_equal(imap_fetch(s, 10, &out, NULL), IMAP_ETOOBIG);
	assert_int_equal(out.len, 0);
	assert_int_equal(imap_fetch(s, 11, &out, NULL), IMAP_OK);
	assert_string_equal(out.data, "smal");
	buf_free(&out);
	finish(&s, &sv);
}

/*
 * A body that came before its turn (UID 8's) must not lift the cap from the
 * body read after it: 48 MB for UID 7 with a cap of 100 bytes is dropped as
 * it comes, not kept whole and refused at the end.
 */
static void
test_fetch_cap_after_early_body(void **state)
{
	enum { BIG = 48 * 1024 * 1024 };
	const char *head = ">* 2 FETCH (UID 8 BODY[] {2}\r\nok)\r\n* 1 FETCH (UID 7 BODY[] {50331648}\r\n";
	const char *tail = ")\r\nA3 OK\r\n";
	size_t hl = strlen(head), tl = strlen(tail);
	char *answer = malloc(hl + BIG + tl + 1);
	const char *script[] = {
		GREETING, LOGIN_OK, SELECTED, "<A3 UID FETCH 7:8 (BODY.PEEK[])", answer, "E", NULL,
	};
	struct rusage before, after;
	script_server sv;
	imap_session *s;
	buf out = { .max = 100 };
	uint32_t uid;

	assert_non_null(answer);
	memcpy(answer, head, hl);
	memset(answer + hl, 'x', BIG);
	memcpy(answer + hl + BIG, tail, tl + 1);
	sv = script_server_start(script);
	s = selected(sv);
	assert_int_equal(getrusage(RUSAGE_SELF, &before), 0);
	assert_int_equal(imap_send_fetch(s, 7, NULL), IMAP_OK);
	assert_int_equal(imap_send_fetch(s, 8, NULL), IMAP_OK);
	assert_int_equal(imap_recv_fetch(s, &out, &uid, NULL), IMAP_ETOOBIG);
	assert_int_equal(uid, 7);
	assert_int_equal(getrusage(RUSAGE_SELF, &after), 0);
	/* ru_maxrss in KB: the 48 MB were never held (the script's copy was) */
	assert_true(after.ru_maxrss - before.ru_maxrss < 16 * 1024);
	buf_reset(&out);
	assert_int_equal(imap_recv_fetch(s, &out, &uid, NULL), IMAP_OK);
	assert_int_equal(uid, 8);
	assert_string_equal(out.data, "ok");
	buf_free(&out);
	finish(&s, &sv);
	free(answer);
}

/* Literal sizes are only numbers: 100 GB claimed, then the connection drops. */
static void
test_fetch_huge_and_cut(void **state)
{
	static const char *const answers[] = {
		">* 1 FETCH (UID 10 BODY[] {99999999999}\r\nabc",
		">* 1 FETCH (UID 10 BODY[] {99999999999999999999999}\r\nabc",
		">* 1 FETCH (UID 10 BODY[] {18446744073709551617}\r\n",
		">* 1 FETCH (UID 10 BODY[] {20}\r\nonly ten b",
	};
	static const imap_status want[] = { IMAP_EIO, IMAP_EPROTO, IMAP_EPROTO, IMAP_EIO };
	size_t i;

	for (i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
		const char *script[] = {
			GREETING, LOGIN_OK, SELECTED, "<A3 UID FETCH 10 (BODY.PEEK[])", answers[i],
			"X", NULL,
		};
		script_server sv = script_server_start(script);
		imap_session *s = selected(sv);
		buf out = { .max = 1000 };

		assert_int_equal(imap_fetch(s, 10, &out, NULL), want[i]);
		assert_true(out.cap <= 64 * 1024);
		/* broken now: nothing more is sent */
		assert_int_equal(imap_noop(s, NULL), IMAP_EUSAGE);
		buf_free(&out);
		finish(&s, &sv);
	}
}

/* ------------------------------------------------------------ changes */

static void
test_move(void **state)
{
	const char *script[] = {
		GREETING, LOGIN_OK, SELECTED, "<A3 UID MOVE 1:3,5 \"Processed\"",
		">* OK [COPYUID 7 1:3,5 20:23] Moved\r\n* 1 EXPUNGE\r\n* 1 EXPUNGE\r\n"
		"* 1 EXPUNGE\r\n* 2 EXPUNGE\r\nA3 OK done\r\n",
		"<A4 UID MOVE 8 \"Nope\"", ">A4 NO [TRYCREATE] no such mailbox\r\n", "E", NULL,
	};
	script_server sv = script_server_start(script);
	imap_session *s = selected(sv);
	uint32_t uids[] = { 5, 3, 2, 1, 3, 0 };
	uint32_t one = 8;

	assert_int_equal(imap_uid_move(s, uids, 6, "Processed", NULL), IMAP_OK);
	assert_int_equal(imap_counters_get(s)->n_expunge, 4);
	assert_int_equal(imap_uid_move(s, &one, 1, "Nope", NULL), IMAP_ENO);
	assert_string_equal(imap_last_code(s), "TRYCREATE");
	assert_int_equal(imap_uid_move(s, uids, 0, "Nope", NULL), IMAP_OK); /* nothing sent */
	finish(&s, &sv);
}

/* Without MOVE: COPY, +FLAGS.SILENT (\Deleted), UID EXPUNGE of those UIDs only. */
static void
test_copy_store_expunge(void **state)
{
	const char *script[] = {
		GREETING, "<A1 LOGIN \"user\" \"pass\"",
		">A1 OK [CAPABILITY IMAP4rev1 UIDPLUS] Logged in\r\n", SELECTED,
		"<A3 UID COPY 4,6 \"Archive\"", ">A3 OK [COPYUID 7 4,6 1:2] done\r\n",
		"<A4 UID STORE 4,6 +FLAGS.SILENT (\\Deleted)", ">A4 OK\r\n",
		"<A5 UID EXPUNGE 4,6", ">* 1 EXPUNGE\r\n* 2 EXPUNGE\r\nA5 OK\r\n",
		"<A6 UID STORE 4 +FLAGS.SILENT (\\Seen $Processed)", ">A6 OK\r\n",
		"E", NULL,
	};
	script_server sv = script_server_start(script);
	imap_session *s = selected(sv);
	uint32_t uids[] = { 6, 4 };

	assert_int_equal(imap_uid_move(s, uids, 2, "Archive", NULL), IMAP_EUSAGE);
	assert_int_equal(imap_uid_copy(s, uids, 2, "Archive", NULL), IMAP_OK);
	assert_int_equal(imap_uid_store_flags(s, uids, 2, "\\Deleted", NULL), IMAP_OK);
	assert_int_equal(imap_uid_expunge(s, uids, 2, NULL), IMAP_OK);
	assert_int_equal(imap_uid_store_flags(s, uids + 1, 1, "\\Seen $Processed", NULL), IMAP_OK);
	assert_int_equal(imap_uid_store_flags(s, uids, 2, "(\\Seen)", NULL), IMAP_EUSAGE);
	assert_int_equal(imap_uid_store_flags(s, uids, 2, "\\Seen\r\nA9 EXPUNGE", NULL),
			 IMAP_EUSAGE);
	assert_int_equal(imap_uid_store_flags(s, uids, 2, "", NULL), IMAP_EUSAGE);
	finish(&s, &sv);
	assert_null(strstr(trace_text, "C: A5 EXPUNGE"));
}

/* A set too long for one line goes in several commands, each short. */
static void
test_long_set(void **state)
{
	enum { N = 600 };
	uint32_t uids[N];
	const char *script[40];
	char *lines[32];
	size_t i, done = 0, k = 0, nl = 0;
	script_server sv;
	imap_session *s;
	char set[1000];

	for (i = 0; i < N; i++)
		uids[i] = (uint32_t)(1000000 + 2 * i);
	script[k++] = GREETING;
	script[k++] = "<A1 LOGIN \"user\" \"pass\"";
	script[k++] = ">A1 OK [CAPABILITY IMAP4rev1 UIDPLUS] Logged in\r\n";
	script[k++] = "<A2 SELECT \"INBOX\"";
	script[k++] = ">* 3 EXISTS\r\nA2 OK done\r\n";
	while (done < N) {
		size_t n = imap_uidset(uids + done, N - done, set, sizeof(set));

		assert_true(nl < 15);
		assert_true(asprintf(&lines[nl], "<A%zu UID EXPUNGE %s", nl + 3, set) > 0);
		script[k++] = lines[nl];
		assert_true(asprintf(&lines[nl + 16], ">A%zu OK\r\n", nl + 3) > 0);
		script[k++] = lines[nl + 16];
		nl++;
		done += n;
	}
	script[k++] = "E";
	script[k] = NULL;
	assert_true(nl >= 5);
	sv = script_server_start(script);
	s = selected(sv);
	assert_int_equal(imap_uid_expunge(s, uids, N, NULL), IMAP_OK);
	finish(&s, &sv);
	for (i = 0; i < nl; i++) {
		assert_true(strlen(lines[i]) < 1000 + 20);
		free(lines[i]);
		free(lines[i + 16]);
	}
}

/* ------------------------------------------------------------ IDLE, BYE */

static void
test_idle(void **state)
{
	const char *script[] = {
		GREETING, LOGIN_OK, SELECTED, "<A3 IDLE", ">+ idling\r\n", "Z100",
		">* 4 EXISTS\r\n* 1 RECENT\r\n", "<DONE", ">* 2 EXPUNGE\r\nA3 OK IDLE terminated\r\n",
		"<A4 IDLE", ">+ idling\r\n", "}* 5 EXISTS\r\n", "Z300", "<DONE", ">A4 OK\r\n",
		"<A5 NOOP", ">A5 OK\r\n", "E", NULL,
	};
	script_server sv = script_server_start(script);
	imap_session *s = selected(sv);
	unsigned ev = 99;

	assert_int_equal(imap_idle_start(s, NULL), IMAP_OK);
	assert_true(imap_idling(s));
	assert_true(imap_fd(s) >= 0);
	assert_int_equal(imap_noop(s, NULL), IMAP_EUSAGE);
	/* nothing yet: returns at once */
	assert_int_equal(imap_idle_read(s, &ev, NULL), IMAP_OK);
	assert_int_equal(ev, 0);
	assert_int_equal(imap_idle_wait(s, 5000, &ev, NULL), IMAP_OK);
	assert_true(ev & IMAP_IDLE_EXISTS);
	assert_int_equal(imap_counters_get(s)->exists, 4);
	assert_int_equal(imap_idle_done(s, NULL), IMAP_OK);
	assert_false(imap_idling(s));
	assert_int_equal(imap_counters_get(s)->exists, 3);
	/* an EXISTS dripping in 3 bytes at a time */
	assert_int_equal(imap_idle_start(s, NULL), IMAP_OK);
	ev = 0;
	while (ev == 0)
		assert_int_equal(imap_idle_wait(s, 5000, &ev, NULL), IMAP_OK);
	assert_int_equal(ev, IMAP_IDLE_EXISTS);
	assert_int_equal(imap_counters_get(s)->exists, 5);
	/* a quiet wait times out with no events and a usable session */
	assert_int_equal(imap_idle_wait(s, 50, &ev, NULL), IMAP_OK);
	assert_int_equal(ev, 0);
	assert_int_equal(imap_idle_done(s, NULL), IMAP_OK);
	assert_int_equal(imap_noop(s, NULL), IMAP_OK);
	finish(&s, &sv);
}

static void
test_bye(void **state)
{
	const char *script[] = {
		GREETING, LOGIN_OK, SELECTED, "<A3 IDLE", ">+ idling\r\n",
		">* BYE Server shutting down\r\n", "X", NULL,
	};
	script_server sv = script_server_start(script);
	imap_session *s = selected(sv);
	unsigned ev = 0;
	char *err = NULL;

	assert_int_equal(imap_idle_start(s, NULL), IMAP_OK);
	assert_int_equal(imap_idle_wait(s, 5000, &ev, &err), IMAP_EIO);
	assert_non_null(strstr(err, "Server shutting down"));
	assert_true(imap_counters_get(s)->bye);
	free(err);
	assert_int_equal(imap_noop(s, NULL), IMAP_EUSAGE);
	finish(&s, &sv);
}

static void
test_bye_in_command(void **state)
{
	const char *script[] = {
		GREETING, LOGIN_OK, "<A2 NOOP", ">* BYE Autologout; idle for too long\r\n", "X", NULL,
	};
	script_server sv = script_server_start(script);
	imap_session *s = session(sv);

	assert_int_equal(imap_login(s, "user", "pass", NULL), IMAP_OK);
	assert_int_equal(imap_noop(s, NULL), IMAP_EIO);
	finish(&s, &sv);
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
		cmocka_unit_test(test_login),
		cmocka_unit_test(test_login_literal),
		cmocka_unit_test(test_login_literal_plus),
		cmocka_unit_test(test_login_literal_minus),
		cmocka_unit_test(test_logindisabled),
		cmocka_unit_test(test_empty_mailbox),
		cmocka_unit_test(test_sasl_ir),
		cmocka_unit_test(test_sasl_continuation),
		cmocka_unit_test(test_sasl_extra_challenge),
		cmocka_unit_test(test_oauth_refused),
		cmocka_unit_test(test_oauth_needs_tls),
		cmocka_unit_test(test_starttls_refusals),
		cmocka_unit_test(test_starttls),
		cmocka_unit_test(test_oauth_ok),
		cmocka_unit_test(test_preauth),
		cmocka_unit_test(test_select),
		cmocka_unit_test(test_listing),
		cmocka_unit_test(test_pipelined_fetch),
		cmocka_unit_test(test_pipelined_bodies_first),
		cmocka_unit_test(test_fetch_two_bodies),
		cmocka_unit_test(test_fetch_lf),
		cmocka_unit_test(test_fetch_lf_pieces),
		cmocka_unit_test(test_pipelined_changes),
		cmocka_unit_test(test_change_unknown_tag),
		cmocka_unit_test(test_change_hostile),
		cmocka_unit_test(test_fetch_sets),
		cmocka_unit_test(test_fetch_set_bounds),
		cmocka_unit_test(test_fetch_too_big),
		cmocka_unit_test(test_fetch_cap_after_early_body),
		cmocka_unit_test(test_fetch_huge_and_cut),
		cmocka_unit_test(test_move),
		cmocka_unit_test(test_copy_store_expunge),
		cmocka_unit_test(test_long_set),
		cmocka_unit_test(test_idle),
		cmocka_unit_test(test_bye),
		cmocka_unit_test(test_bye_in_command),
	};

	return cmocka_run_group_tests(tests, tls_setup, tls_teardown);
}

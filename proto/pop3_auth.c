/* mailmill - ISC licence, see LICENSE */
/*
 * Logging in: USER/PASS, APOP, SASL (RFC 5034) PLAIN and LOGIN, and OAuth
 * with XOAUTH2 or OAUTHBEARER (RFC 7628); the mechanisms are proto/sasl.c.  No secret
 * reaches the trace: it sees "<redacted>" in place of each one.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/net.h"
#include "proto/pop3.h"
#include "proto/pop3_int.h"
#include "proto/sasl.h"
#include "proto/tls.h"

/* A refusal of credentials is EAUTH; pop3_last_code says whether to retry. */
static pop3_status
auth_status(pop3_status st)
{
	return st == POP3_ENEG ? POP3_EAUTH : st;
}

static pop3_status
usage(pop3_session *s, char **err_r, const char *label, const char *what)
{
	return pop3_fail(s, POP3_EUSAGE, err_r, "%s: %s", label, what);
}

pop3_status
pop3_user(pop3_session *s, const char *user, char **err_r)
{
	char line[CMD_MAX];

	if (!pop3_arg_ok(user) || strchr(user, ' ') != NULL)
		return usage(s, err_r, "USER", "bad user name");
	snprintf(line, sizeof(line), "USER %s", user);
	return auth_status(pop3_simple(s, "USER", line, NULL, NULL, NULL, err_r));
}

pop3_status
pop3_pass(pop3_session *s, const char *password, char **err_r)
{
	char line[CMD_MAX];
	pop3_status st;

	/* RFC 1939 lets the password contain spaces: it is the rest of the line. */
	if (!pop3_arg_ok(password))
		return usage(s, err_r, "PASS", "bad password (empty, too long or multi-line)");
	snprintf(line, sizeof(line), "PASS %s", password);
	st = pop3_simple(s, "PASS", line, "PASS <redacted>", NULL, NULL, err_r);
	explicit_bzero(line, sizeof(line));
	return auth_status(st);
}

pop3_status
pop3_apop(pop3_session *s, const char *user, const char *password, char **err_r)
{
	char line[CMD_MAX], shown[CMD_MAX], hex[33];
	char *data;
	size_t tl, pl;
	pop3_status st;
	int r;

	if (!pop3_arg_ok(user) || strchr(user, ' ') != NULL)
		return usage(s, err_r, "APOP", "bad user name");
	if (password == NULL || strlen(password) > ARG_MAX_LEN)
		return usage(s, err_r, "APOP", "bad password");
	if (s->apop_ts == NULL)
		return usage(s, err_r, "APOP", "the greeting carries no APOP timestamp");
	tl = strlen(s->apop_ts);
	pl = strlen(password);
	if ((data = malloc(tl + pl + 1)) == NULL)
		return usage(s, err_r, "APOP", "out of memory");
	memcpy(data, s->apop_ts, tl);
	memcpy(data + tl, password, pl);
	r = tls_md5_hex(data, tl + pl, hex);
	explicit_bzero(data, tl + pl);
	free(data);
	if (r < 0)
		return usage(s, err_r, "APOP", "MD5 is not available");
	snprintf(line, sizeof(line), "APOP %s %s", user, hex);
	snprintf(shown, sizeof(shown), "APOP %s <redacted>", user);
	st = pop3_simple(s, "APOP", line, shown, NULL, NULL, err_r);
	explicit_bzero(line, sizeof(line));
	explicit_bzero(hex, sizeof(hex));
	return auth_status(st);
}

/*
 * Read what follows an AUTH step: 1 for a "+ " continuation (its text in
 * *text_r, borrowed until the next read), 0 for +OK, or -1 with the
 * failure in *st_r.
 */
static int
auth_reply(pop3_session *s, pop3_status *st_r, const char **text_r, size_t *tlen_r,
	   char **err_r)
{
	const char *line;
	size_t len;

	if ((*st_r = pop3_get_line(s, "AUTH", 1, &line, &len, err_r)) != POP3_OK)
		return -1;
	pop3_trace_line(s, 'S', line, len);
	if (len >= 1 && line[0] == '+' && (len == 1 || line[1] == ' ')) {
		*text_r = len > 2 ? line + 2 : "";
		*tlen_r = len > 2 ? len - 2 : 0;
		return 1;
	}
	*st_r = auth_status(pop3_check_status(s, "AUTH", line, len, NULL, NULL, err_r));
	return *st_r == POP3_OK ? 0 : -1;
}

/* A prompt we have no answer for: cancel (RFC 5034 4.) and say so. */
static pop3_status
auth_cancel(pop3_session *s, const char *why, char **err_r)
{
	const char *text;
	size_t tlen;
	pop3_status st;

	if ((st = pop3_send_line(s, "AUTH", "*", NULL, 1, err_r)) != POP3_OK)
		return st;
	if (auth_reply(s, &st, &text, &tlen, err_r) < 0) {
		if (err_r != NULL)
			free(*err_r);
	}
	return pop3_fail(s, POP3_EPROTO, err_r, "AUTH: %s", why);
}

/*
 * The end of a refused OAuth exchange: the server's "+ " error challenge
 * (decoded into the message), our answer (an empty line for XOAUTH2, %x01
 * for OAUTHBEARER, RFC 7628 3.2.3), and its final -ERR.
 */
static pop3_status
auth_oauth_refused(pop3_session *s, sasl_mech m, const char *chal, size_t clen, char **err_r)
{
	char *why = sasl_error_text(chal, clen), *e = NULL;
	const char *text;
	size_t tlen;
	pop3_status st;
	int r;

	if (why == NULL)
		return pop3_fail(s, POP3_EIO, err_r, "AUTH: out of memory");
	st = pop3_send_line(s, "AUTH", m == SASL_OAUTHBEARER ? SASL_OAUTHBEARER_ABORT : "", NULL,
			    1, err_r);
	if (st == POP3_OK && (r = auth_reply(s, &st, &text, &tlen, &e)) >= 0)
		st = r == 1 ? auth_cancel(s, "a second challenge after the error challenge", &e) :
			pop3_fail(s, POP3_EPROTO, &e, "AUTH: +OK after an error challenge");
	if (st != POP3_OK && err_r != NULL && e != NULL) {
		*err_r = err_fmt("%s (%s error: %s)", e, sasl_mech_name(m), why);
		free(e);
	} else {
		free(e);
	}
	free(why);
	return st;
}

/*
 * One SASL exchange: AUTH MECH, then each response after a "+ " prompt
 * (never SASL-IR: Exchange Online refuses the initial response on the AUTH
 * line).  The responses are built before anything is sent, so a bad
 * argument sends nothing; the trace sees "<redacted>" for each.
 */
static pop3_status
auth_exchange(pop3_session *s, sasl_mech m, const sasl_creds *c, char **err_r)
{
	char *resp[2] = { NULL, NULL }, *e = NULL, line[32];
	const char *text;
	size_t tlen;
	pop3_status st;
	int step, n = sasl_steps(m), r;

	for (step = 0; step < n; step++)
		if ((resp[step] = sasl_response(m, step, c, NULL, &e)) == NULL) {
			st = pop3_fail(s, POP3_EUSAGE, err_r, "AUTH: %s",
				       e != NULL ? e : "out of memory");
			goto out;
		}
	if (s->capa_known && !pop3_has_sasl(s, sasl_mech_name(m))) {
		st = pop3_fail(s, POP3_EUSAGE, err_r, "AUTH: the server does not offer SASL %s",
			       sasl_mech_name(m));
		goto out;
	}
	snprintf(line, sizeof(line), "AUTH %s", sasl_mech_name(m));
	if ((st = pop3_begin(s, "AUTH", err_r)) != POP3_OK ||
	    (st = pop3_send_line(s, "AUTH", line, NULL, 1, err_r)) != POP3_OK)
		goto out;
	for (step = 0;; step++) {
		if ((r = auth_reply(s, &st, &text, &tlen, err_r)) < 0)
			goto out;
		if (r == 0) {
			if (step != n)
				st = pop3_fail(s, POP3_EPROTO, err_r, "AUTH: +OK before the credentials");
			goto out;
		}
		if (step < n)
			st = pop3_send_line(s, "AUTH", resp[step], "<redacted>", 1, err_r);
		else if (step == n && sasl_mech_is_oauth(m))
			st = auth_oauth_refused(s, m, text, tlen, err_r);
		else
			st = auth_cancel(s, "unexpected extra challenge", err_r);
		if (st != POP3_OK || step >= n)
			goto out;
	}
out:
	free(e);
	sasl_free(resp[0]);
	sasl_free(resp[1]);
	return st;
}

pop3_status
pop3_auth(pop3_session *s, const char *mech, const char *user, const char *password,
	  char **err_r)
{
	sasl_creds c = { .user = user, .secret = password };
	sasl_mech m;

	if (sasl_mech_parse(mech, &m) < 0 || sasl_mech_is_oauth(m))
		return usage(s, err_r, "AUTH", "only the PLAIN and LOGIN mechanisms are supported");
	return auth_exchange(s, m, &c, err_r);
}

pop3_status
pop3_auth_oauth(pop3_session *s, const char *mech, const char *user, const char *token,
		const char **mech_used_r, char **err_r)
{
	sasl_creds c = { .user = user, .secret = token };
	const char *why;
	sasl_mech m;

	if (mech_used_r != NULL)
		*mech_used_r = NULL;
	if (s == NULL || s->conn == NULL) {
		err_set(err_r, "AUTH: no session");
		return POP3_EUSAGE;
	}
	if (sasl_oauth_pick(mech, pop3_has_sasl(s, "OAUTHBEARER"), pop3_has_sasl(s, "XOAUTH2"), &m,
			    &why) < 0)
		return usage(s, err_r, "AUTH", why);
	if (mech_used_r != NULL)
		*mech_used_r = sasl_mech_name(m);
	/* A bearer token is as good as a password to whoever reads it. */
	if (!pop3_is_tls(s))
		return usage(s, err_r, "AUTH", "refusing to send an OAuth token without TLS");
	c.host = s->host;
	c.port = s->port;
	return auth_exchange(s, m, &c, err_r);
}

/* mailmill - ISC licence, see LICENSE */
/*
 * SMTP AUTH (RFC 4954): PLAIN and LOGIN with a password, XOAUTH2 and
 * OAUTHBEARER with a token; the SASL bytes come from proto/sasl.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/b64.h"
#include "proto/sasl.h"
#include "proto/smtp_int.h"

/* AUTH outcome: 235 ok, 4xx temporary, 5xx refused, anything else broken. */
static smtp_status
auth_result(smtp_session *s, smtp_status st, char **err_r)
{
	if (st == SMTP_EPERM) {
		free(err_r != NULL ? *err_r : NULL);
		return smtp_fail_reply(s, SMTP_EAUTH, err_r, "SMTP: authentication refused");
	}
	return st;
}

/* One line of a SASL exchange and the reply, not yet judged. */
static smtp_status
auth_step(smtp_session *s, const char *line, const char *shown, char **err_r)
{
	smtp_status st;

	net_deadline(s->conn, s->command_timeout_ms);
	if ((st = smtp_send_line(s, line, shown, err_r)) != SMTP_OK ||
	    (st = smtp_flush(s, err_r)) != SMTP_OK)
		return st;
	return smtp_read_reply(s, err_r);
}

/*
 * One SASL exchange (RFC 4954 4.).  The initial response rides on the AUTH
 * line only while that line keeps within RFC 5321's 512 octets (4.5.3.1.4):
 * a longer one (any OAuth token) follows the server's empty 334.  A 334
 * after the last response is, for OAuth, the error challenge: answered (an
 * empty line for XOAUTH2, %x01 for OAUTHBEARER, RFC 7628 3.2.3) so that the
 * server sends its final refusal, which gets the decoded challenge.
 */
static smtp_status
auth_exchange(smtp_session *s, sasl_mech m, const sasl_creds *c, char **err_r)
{
	const char *name = sasl_mech_name(m);
	char *resp[2] = { NULL, NULL }, *e = NULL, *line = NULL, *chal = NULL, what[40];
	char shown[40];
	size_t rlen = 0;
	int n = sasl_steps(m), step = 0;
	smtp_status st;

	snprintf(what, sizeof(what), "SMTP: AUTH %s", name);
	for (step = 0; step < n; step++)
		if ((resp[step] = sasl_response(m, step, c, step == 0 ? &rlen : NULL, &e)) == NULL) {
			st = smtp_fail(s, SMTP_EUSAGE, err_r, "SMTP: %s", e != NULL ? e : "out of memory");
			goto out;
		}
	step = 0;
	if (m != SASL_LOGIN && strlen("AUTH  \r\n") + strlen(name) + rlen <= SMTP_CMD_LINE_MAX) {
		if (asprintf(&line, "AUTH %s %s", name, resp[0]) < 0) {
			line = NULL;
			st = smtp_fail(s, SMTP_EIO, err_r, "SMTP: out of memory");
			goto out;
		}
		snprintf(shown, sizeof(shown), "AUTH %s <redacted>", name);
		step = 1;
		st = auth_step(s, line, shown, err_r);
	} else {
		snprintf(shown, sizeof(shown), "AUTH %s", name);
		st = auth_step(s, shown, NULL, err_r);
	}
	while (st == SMTP_OK) {
		if (s->last.code == 334 && step < n) {
			st = auth_step(s, resp[step++], "<redacted>", err_r);
		} else if (s->last.code == 334 && sasl_mech_is_oauth(m) && chal == NULL) {
			if ((chal = sasl_error_text(s->last.text, strlen(s->last.text))) == NULL) {
				st = smtp_fail(s, SMTP_EIO, err_r, "SMTP: out of memory");
				break;
			}
			st = auth_step(s, m == SASL_OAUTHBEARER ? SASL_OAUTHBEARER_ABORT : "", NULL,
				       err_r);
		} else if (s->last.code == 334) {
			/* No answer for it: cancel (RFC 4954 4.), then give up on the session. */
			if ((st = auth_step(s, "*", NULL, err_r)) == SMTP_OK)
				st = smtp_fail(s, SMTP_EPROTO, err_r, "%s: unexpected challenge", what);
			break;
		} else if (s->last.code == 235 && step == n && chal == NULL) {
			break;
		} else if (s->last.code / 100 == 2) {
			/* Success before the credentials, or after an error challenge. */
			st = smtp_fail_reply(s, SMTP_EPROTO, err_r, what);
			break;
		} else {
			st = auth_result(s, smtp_classify(s, 2, err_r, what), err_r);
			break;
		}
	}
	if (st != SMTP_OK && chal != NULL && err_r != NULL && *err_r != NULL) {
		free(e);
		e = *err_r;
		*err_r = err_fmt("%s (%s error: %s)", e, name, chal);
	}
out:
	free(e);
	free(chal);
	if (line != NULL)
		b64_free_secret(line, strlen(line));
	sasl_free(resp[0]);
	sasl_free(resp[1]);
	return st;
}

smtp_status
smtp_auth(smtp_session *s, const char *mech, const char *user, const char *password,
	  char **err_r)
{
	sasl_creds c = { .user = user, .secret = password };
	sasl_mech m;
	smtp_status st;

	if ((st = smtp_check_usable(s, err_r)) != SMTP_OK)
		return st;
	if (user == NULL || password == NULL)
		return smtp_fail(s, SMTP_EUSAGE, err_r, "SMTP: AUTH needs a user and a password");
	if (!net_is_tls(s->conn) && !s->allow_plaintext_auth)
		return smtp_fail(s, SMTP_EUSAGE, err_r,
				 "SMTP: refusing to send a password without TLS");
	if (mech == NULL)
		mech = smtp_has_auth(s, "PLAIN") ? "PLAIN" : smtp_has_auth(s, "LOGIN") ? "LOGIN" : NULL;
	if (mech == NULL)
		return smtp_fail(s, SMTP_EUSAGE, err_r,
				 "SMTP: the server offers neither AUTH PLAIN nor AUTH LOGIN");
	if (sasl_mech_parse(mech, &m) < 0 || sasl_mech_is_oauth(m))
		return smtp_fail(s, SMTP_EUSAGE, err_r, "SMTP: unsupported AUTH mechanism %s", mech);
	if (!smtp_has_auth(s, mech))
		return smtp_fail(s, SMTP_EUSAGE, err_r, "SMTP: the server does not offer AUTH %s", mech);
	return auth_exchange(s, m, &c, err_r);
}

smtp_status
smtp_auth_oauth(smtp_session *s, const char *mech, const char *user, const char *token,
		const char **mech_used_r, char **err_r)
{
	sasl_creds c = { .user = user, .secret = token };
	const char *why;
	sasl_mech m;
	smtp_status st;

	if (mech_used_r != NULL)
		*mech_used_r = NULL;
	if ((st = smtp_check_usable(s, err_r)) != SMTP_OK)
		return st;
	if (sasl_oauth_pick(mech, smtp_has_auth(s, "OAUTHBEARER"), smtp_has_auth(s, "XOAUTH2"), &m,
			    &why) < 0)
		return smtp_fail(s, SMTP_EUSAGE, err_r, "SMTP: AUTH: %s", why);
	if (mech_used_r != NULL)
		*mech_used_r = sasl_mech_name(m);
	/* Never in clear text, whatever allow_plaintext_auth says: a bearer token
	 * works for anyone who reads it, and for more than this server. */
	if (!net_is_tls(s->conn))
		return smtp_fail(s, SMTP_EUSAGE, err_r, "SMTP: refusing to send an OAuth token without TLS");
	if (!smtp_has_auth(s, sasl_mech_name(m)))
		return smtp_fail(s, SMTP_EUSAGE, err_r, "SMTP: the server does not offer AUTH %s",
				 sasl_mech_name(m));
	c.host = s->host;
	c.port = s->port;
	return auth_exchange(s, m, &c, err_r);
}

smtp_status
smtp_login(smtp_session *s, const char *user, const char *password, char **err_r)
{
	return smtp_auth(s, NULL, user, password, err_r);
}

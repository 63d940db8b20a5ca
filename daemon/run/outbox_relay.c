/* mailmill - ISC licence, see LICENSE */
/*
 * The connection to the relay: TLS, the login (a password or OAuth), the
 * trace and its crash points; --check-login for the relay.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "proto/smtp.h"
#include "daemon/run/outbox.h"
#include "daemon/run/outbox_int.h"
#include "daemon/core/crash.h"
#include "daemon/core/log.h"
#include "daemon/core/secret.h"
#include "daemon/oauth/oauth.h"
#include "daemon/run/run.h"

/*
 * Installed on every session: the crash points of DATA must fire whether or
 * not the operator asked for a trace.  "smtpdata" fires on the 354 go-ahead,
 * before any message data; "smtpdot" fires when the reply to the final dot
 * arrives, before it is read: the relay has the message and the outbox does
 * not know it (the RFC 1047 window).  The trace of "." itself comes before
 * the data is flushed, so it cannot be that point.
 */
static void
outbox_trace(void *arg, char dir, const char *line, size_t len)
{
	outbox_tracer *t = arg;

	if (dir == 'S' && t->dot_sent) {
		t->dot_sent = 0;
		crash_point("smtpdot");
	} else if (dir == 'S' && len >= 3 && strncmp(line, "354", 3) == 0) {
		crash_point("smtpdata");
	} else if (dir == 'C' && len == 1 && line[0] == '.') {
		t->dot_sent = 1;
	}
	if (t->log)
		log_debug("smtp: %s %.*s", dir == 'C' ? "C:" : "S:",
			  (int)(len > 300 ? 300 : len), line);
}

static smtp_status
outbox_connect_once(const cfg_smtp *m, outbox_tracer *tr, smtp_session **s_r, char **err_r)
{
	smtp_options o;
	smtp_status rc;

	memset(&o, 0, sizeof(o));
	o.host = m->host;
	o.port = m->port;
	o.tls = m->tls == CFG_TLS_IMPLICIT ? SMTP_TLS_IMPLICIT :
		m->tls == CFG_TLS_STARTTLS ? SMTP_TLS_STARTTLS : SMTP_TLS_NONE;
	o.ca_file = m->ca_file;
	o.helo = m->helo;
	o.connect_timeout_ms = (int)(m->connect_timeout_s * 1000);
	o.command_timeout_ms = (int)(m->timeout_s * 1000);
	o.data_end_timeout_ms = (int)(m->timeout_s * 2000 < 600000 ? m->timeout_s * 2000 : 600000);
	o.allow_plaintext_auth = m->allow_plaintext_password;
	rc = smtp_connect(&o, s_r, err_r);
	if (rc != SMTP_OK)
		return rc;
	smtp_set_trace(*s_r, outbox_trace, tr);
	if (smtp_is_tls(*s_r))
		log_debug("outbox: %s", smtp_tls_describe(*s_r));
	return SMTP_OK;
}

/*
 * OAuth: the token before the connection; a cached token the relay refuses
 * is refreshed once and tried once more on a new connection.  *signin_r:
 * the token could not be had (logged here, with what to run).
 */
static smtp_status
outbox_connect_oauth(const cfg *c, store *st, outbox_tracer *tr, smtp_session **s_r,
		     const char **how_r, int *signin_r, char **err_r)
{
	const cfg_smtp *m = c->smtp;
	const char *mech = m->auth == CFG_SMTP_AUTH_XOAUTH2 ? "XOAUTH2" :
			   m->auth == CFG_SMTP_AUTH_OAUTHBEARER ? "OAUTHBEARER" : NULL;
	const char *used = NULL;
	smtp_status rc = SMTP_EUSAGE;
	char *token = NULL;
	int cached = 0;

	for (int attempt = 0; attempt < 2; attempt++) {
		oauth_status os = oauth_token_get(st, m->oauth, m->user, attempt > 0, &token,
						  &cached, err_r);

		if (os != OAUTH_OK) {
			run_oauth_failed(c->path, "smtp", (int)os, *err_r);
			*signin_r = 1;
			return SMTP_EUSAGE;
		}
		if ((rc = outbox_connect_once(m, tr, s_r, err_r)) != SMTP_OK)
			break;
		rc = smtp_auth_oauth(*s_r, mech, m->user, token, &used, err_r);
		*how_r = used;
		secret_wipe(&token);
		if (rc == SMTP_OK) {
			log_debug("outbox: signed in with %s as %s", used != NULL ? used : "-", m->user);
			break;
		}
		if (rc == SMTP_EAUTH && cached && attempt == 0) {
			char *e2 = NULL;

			log_info("outbox: the relay refused the cached access token (%s): getting a new"
				 " one and trying once more", *err_r != NULL ? *err_r : "refused");
			free(*err_r);
			*err_r = NULL;
			if (oauth_token_refused(st, m->oauth, m->user, &e2) < 0) {
				log_warn("outbox: cannot forget the refused token: %s", e2);
				free(e2);
			}
			smtp_close(s_r);
			continue;
		}
		break;
	}
	secret_wipe(&token);
	return rc;
}

smtp_status
outbox_connect(const cfg *c, store *st, outbox_tracer *tr, smtp_session **s_r,
	       const char **how_r, int *signin_r, char **err_r)
{
	const cfg_smtp *m = c->smtp;
	smtp_status rc;
	char *pw = NULL;

	*signin_r = 0;
	*how_r = m->user == NULL ? "no AUTH" : m->auth == CFG_SMTP_AUTH_PLAIN ? "PLAIN" :
		 m->auth == CFG_SMTP_AUTH_LOGIN ? "LOGIN" : "a password";
	if (m->oauth != NULL)
		return outbox_connect_oauth(c, st, tr, s_r, how_r, signin_r, err_r);
	rc = outbox_connect_once(m, tr, s_r, err_r);
	if (rc != SMTP_OK || m->user == NULL)
		return rc;
	if (secret_get(&m->secret, &pw, err_r) < 0)
		return SMTP_EUSAGE;
	rc = smtp_auth(*s_r, m->auth == CFG_SMTP_AUTH_PLAIN ? "PLAIN" :
		       m->auth == CFG_SMTP_AUTH_LOGIN ? "LOGIN" : NULL, m->user, pw, err_r);
	secret_wipe(&pw);
	return rc;
}

int
outbox_check_login(const cfg *c, store *st, int trace, FILE *out)
{
	outbox_tracer tracer = { 0, 0 };
	smtp_session *s = NULL;
	const char *how = NULL;
	char *err = NULL;
	int signin = 0, rc = 0;

	tracer.log = trace;
	if (outbox_connect(c, st, &tracer, &s, &how, &signin, &err) != SMTP_OK) {
		if (!signin)
			log_error("smtp: relay %s:%s: %s", c->smtp->host, c->smtp->port,
				  err != NULL ? err : "login failed");
		fprintf(out, "smtp relay %s:%s: login FAILED (see the log above)\n", c->smtp->host,
			c->smtp->port);
		rc = -1;
	} else {
		fprintf(out, "smtp relay %s:%s, %s, signed in with %s%s%s; nothing sent\n",
			c->smtp->host, c->smtp->port, smtp_is_tls(s) ? smtp_tls_describe(s) : "no TLS",
			how != NULL ? how : "-", c->smtp->user != NULL ? " as " : "",
			c->smtp->user != NULL ? c->smtp->user : "");
		if (smtp_quit(s, &err) != SMTP_OK)
			log_debug("smtp: QUIT: %s", err != NULL ? err : "failed");
	}
	free(err);
	smtp_close(&s);
	return rc;
}

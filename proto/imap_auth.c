/* mailmill - ISC licence, see LICENSE */
/*
 * Logging in: LOGIN (quoted strings, or literals for 8-bit bytes) and
 * AUTHENTICATE with the mechanisms of proto/sasl.c, the initial response on
 * the command line when the server offers SASL-IR (RFC 4959).  Secrets are
 * built before anything is sent (a bad argument sends nothing) and the
 * trace shows "<redacted>" in their place.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/imap.h"
#include "proto/imap_int.h"
#include "proto/net.h"
#include "proto/sasl.h"

/* After a successful login: the capabilities may have changed (RFC 3501 6.2.3). */
static imap_status
logged_in(imap_session *s, const imap_response *ok, char **err_r)
{
	s->authenticated = 1;
	if (ok != NULL && ok->code_len == 10 && strncasecmp(ok->code, "CAPABILITY", 10) == 0)
		return IMAP_OK;
	return imap_capability(s, err_r);
}

/* An astring argument that must be a literal (8-bit bytes, or quoting refuses it). */
static int
needs_literal(const char *a)
{
	buf t = { .max = 0 };
	int r = imap_append_quoted(&t, a) < 0;

	if (t.data != NULL)
		explicit_bzero(t.data, t.len);
	buf_free(&t);
	return r;
}

/* Wait for the "+" a synchronizing literal needs (untagged taken as usual). */
static imap_status
wait_continue(imap_session *s, const char *label, const char *tag, char **err_r)
{
	const imap_response *r;
	imap_status st;

	for (;;) {
		if ((st = imap_read(s, label, &r, err_r)) != IMAP_OK)
			return st;
		if (r->kind == IMAP_R_CONTINUE)
			return IMAP_OK;
		if (r->kind == IMAP_R_TAGGED) {
			if (r->tag_len != strlen(tag) || memcmp(r->tag, tag, r->tag_len) != 0)
				return imap_fail(s, IMAP_EPROTO, err_r, "%s: answer with unknown tag",
						 label);
			st = imap_tagged_status(s, label, r, err_r);
			return st == IMAP_OK ? imap_fail(s, IMAP_EPROTO, err_r,
							 "%s: OK before the arguments", label) : st;
		}
		if ((st = imap_untagged(s, label, r, err_r)) != IMAP_OK)
			return st;
	}
}

/* One LOGIN argument, quoted or as a literal; *sync_r 1 if we must wait for "+". */
static int
append_arg(imap_session *s, buf *line, const char *a, int *sync_r)
{
	char lit[32];

	*sync_r = 0;
	if (!needs_literal(a))
		return imap_append_quoted(line, a);
	/* RFC 7888: LITERAL- allows non-synchronizing literals up to 4096 bytes */
	*sync_r = !imap_has_capa(s, "LITERAL+") &&
		  !(imap_has_capa(s, "LITERAL-") && strlen(a) <= 4096);
	snprintf(lit, sizeof(lit), "{%zu%s}\r\n", strlen(a), *sync_r ? "" : "+");
	return buf_append(line, lit, strlen(lit)) < 0 || buf_append(line, a, strlen(a)) < 0 ? -1 : 0;
}

static int
arg_ok(const char *a, int may_be_empty)
{
	return a != NULL && (may_be_empty || a[0] != '\0') && strlen(a) <= IMAP_ARG_MAX &&
	       strpbrk(a, "\r\n") == NULL;
}

imap_status
imap_login(imap_session *s, const char *user, const char *password, char **err_r)
{
	buf line = { .max = 4 * IMAP_ARG_MAX + 64 };
	char tag[16], shown[IMAP_ARG_MAX + 64];
	const imap_response *ok = NULL;
	imap_status st;
	int sync_u, sync_p;
	size_t upart, ppart;

	if ((st = imap_begin(s, "LOGIN", 0, err_r)) != IMAP_OK)
		return st;
	if (s->authenticated)
		return imap_fail(s, IMAP_EUSAGE, err_r, "LOGIN: already authenticated");
	if (imap_has_capa(s, "LOGINDISABLED"))
		return imap_fail(s, IMAP_EUSAGE, err_r, "LOGIN: the server says LOGINDISABLED%s",
				 imap_is_tls(s) ? "" : " (it may allow it over TLS)");
	if (!arg_ok(user, 0) || !arg_ok(password, 1))
		return imap_fail(s, IMAP_EUSAGE, err_r, "LOGIN: user name or password empty, too "
				 "long, or holding a line break");
	imap_next_tag(s, tag);
	if (buf_append(&line, tag, strlen(tag)) < 0 || buf_append(&line, " LOGIN ", 7) < 0 ||
	    append_arg(s, &line, user, &sync_u) < 0)
		goto nomem;
	upart = line.len;
	if (buf_append(&line, " ", 1) < 0 || append_arg(s, &line, password, &sync_p) < 0)
		goto nomem;
	ppart = line.len;
	(void)ppart;
	snprintf(shown, sizeof(shown), "%.*s <redacted>", (int)(upart - strlen(tag) - 1),
		 line.data + strlen(tag) + 1);
	{
		char *t = err_fmt("%s %s", tag, shown);

		if (t != NULL)
			imap_trace(s, 'C', t, strlen(t));
		free(t);
	}
	/*
	 * With synchronizing literals, send up to each "{n}\r\n" and wait for
	 * the server's "+" before the bytes.
	 */
	{
		size_t from = 0, i;

		for (i = 0; i < line.len; i++) {
			if (line.data[i] != '\n' || i < 2 || line.data[i - 2] != '}' ||
			    line.data[i - 3] == '+')
				continue;
			if ((st = imap_send_raw(s, "LOGIN", line.data + from, i + 1 - from, 1,
						err_r)) != IMAP_OK ||
			    (st = wait_continue(s, "LOGIN", tag, err_r)) != IMAP_OK)
				goto out;
			from = i + 1;
		}
		if ((st = imap_send_raw(s, "LOGIN", line.data + from, line.len - from, 0,
					err_r)) != IMAP_OK ||
		    (st = imap_send_raw(s, "LOGIN", "\r\n", 2, 1, err_r)) != IMAP_OK)
			goto out;
	}
	(void)sync_u;
	(void)sync_p;
	st = imap_wait(s, "LOGIN", tag, NULL, NULL, &ok, err_r);
	if (st == IMAP_OK)
		st = logged_in(s, ok, err_r);
	goto out;
nomem:
	st = imap_fail(s, IMAP_EIO, err_r, "LOGIN: out of memory");
out:
	if (st == IMAP_ENO || st == IMAP_EBAD)
		st = IMAP_EAUTH;
	if (line.data != NULL)
		explicit_bzero(line.data, line.len);
	buf_free(&line);
	return st;
}

/*
 * One SASL exchange.  The responses are built first; the initial one goes
 * on the AUTHENTICATE line with SASL-IR (client-first mechanisms only),
 * else after the first "+".  A challenge after the last response is, for
 * OAuth, the error challenge: answered, decoded into the message.  Any
 * other extra challenge is cancelled with "*".
 */
static imap_status
auth_exchange(imap_session *s, sasl_mech m, const sasl_creds *c, char **err_r)
{
	char *resp[2] = { NULL, NULL }, *e = NULL, *why = NULL, tag[16], line[64];
	const imap_response *r, *ok = NULL;
	imap_status st;
	int step = 0, n = sasl_steps(m), cancelled = 0;
	size_t len0 = 0;

	for (int i = 0; i < n; i++)
		if ((resp[i] = sasl_response(m, i, c, i == 0 ? &len0 : NULL, &e)) == NULL) {
			st = imap_fail(s, IMAP_EUSAGE, err_r, "AUTHENTICATE: %s",
				       e != NULL ? e : "out of memory");
			goto out;
		}
	if ((st = imap_begin(s, "AUTHENTICATE", 0, err_r)) != IMAP_OK)
		goto out;
	if (s->authenticated) {
		st = imap_fail(s, IMAP_EUSAGE, err_r, "AUTHENTICATE: already authenticated");
		goto out;
	}
	if (!imap_has_auth(s, sasl_mech_name(m))) {
		st = imap_fail(s, IMAP_EUSAGE, err_r, "AUTHENTICATE: the server does not offer "
			       "AUTH=%s", sasl_mech_name(m));
		goto out;
	}
	imap_next_tag(s, tag);
	snprintf(line, sizeof(line), "AUTHENTICATE %s", sasl_mech_name(m));
	if (m != SASL_LOGIN && imap_has_capa(s, "SASL-IR") &&
	    len0 + strlen(line) + strlen(tag) + 4 <= IMAP_SASL_IR_MAX) {
		char shown[96], *full = err_fmt("%s %s", line, resp[0]);

		if (full == NULL) {
			st = imap_fail(s, IMAP_EIO, err_r, "AUTHENTICATE: out of memory");
			goto out;
		}
		snprintf(shown, sizeof(shown), "%s <redacted>", line);
		st = imap_send(s, "AUTHENTICATE", tag, full, shown, 1, err_r);
		explicit_bzero(full, strlen(full));
		free(full);
		step = 1;
	} else {
		st = imap_send(s, "AUTHENTICATE", tag, line, NULL, 1, err_r);
	}
	if (st != IMAP_OK)
		goto out;
	for (;;) {
		if ((st = imap_read(s, "AUTHENTICATE", &r, err_r)) != IMAP_OK)
			goto out;
		if (r->kind == IMAP_R_UNTAGGED) {
			if ((st = imap_untagged(s, "AUTHENTICATE", r, err_r)) != IMAP_OK)
				goto out;
			continue;
		}
		if (r->kind == IMAP_R_TAGGED)
			break;
		if (step < n) {
			imap_trace(s, 'C', "<redacted>", 10);
			if ((st = imap_send_raw(s, "AUTHENTICATE", resp[step], strlen(resp[step]), 0,
						err_r)) != IMAP_OK ||
			    (st = imap_send_raw(s, "AUTHENTICATE", "\r\n", 2, 1, err_r)) != IMAP_OK)
				goto out;
			step++;
		} else if (sasl_mech_is_oauth(m) && why == NULL) {
			const char *ans = m == SASL_OAUTHBEARER ? SASL_OAUTHBEARER_ABORT : "";

			if ((why = sasl_error_text(r->text, r->text_len)) == NULL) {
				st = imap_fail(s, IMAP_EIO, err_r, "AUTHENTICATE: out of memory");
				goto out;
			}
			imap_trace(s, 'C', ans, strlen(ans));
			if ((st = imap_send_raw(s, "AUTHENTICATE", ans, strlen(ans), 0, err_r)) != IMAP_OK ||
			    (st = imap_send_raw(s, "AUTHENTICATE", "\r\n", 2, 1, err_r)) != IMAP_OK)
				goto out;
		} else {
			imap_trace(s, 'C', "*", 1);
			if ((st = imap_send_raw(s, "AUTHENTICATE", "*\r\n", 3, 1, err_r)) != IMAP_OK)
				goto out;
			cancelled = 1;
		}
	}
	if (r->tag_len != strlen(tag) || memcmp(r->tag, tag, r->tag_len) != 0) {
		st = imap_fail(s, IMAP_EPROTO, err_r, "AUTHENTICATE: answer with unknown tag");
		goto out;
	}
	ok = r;
	st = imap_tagged_status(s, "AUTHENTICATE", r, err_r);
	if (cancelled) {
		if (err_r != NULL) {
			free(*err_r);
			*err_r = NULL;
		}
		st = imap_fail(s, IMAP_EPROTO, err_r, "AUTHENTICATE: unexpected extra challenge");
	} else if (st == IMAP_OK && step < n) {
		st = imap_fail(s, IMAP_EPROTO, err_r, "AUTHENTICATE: OK before the credentials");
	} else if (st == IMAP_OK) {
		st = logged_in(s, ok, err_r);
	} else if (st == IMAP_ENO || st == IMAP_EBAD) {
		st = IMAP_EAUTH;
		if (why != NULL && err_r != NULL && *err_r != NULL) {
			char *full = err_fmt("%s (%s error: %s)", *err_r, sasl_mech_name(m), why);

			if (full != NULL) {
				free(*err_r);
				*err_r = full;
			}
		}
	}
out:
	free(e);
	free(why);
	sasl_free(resp[0]);
	sasl_free(resp[1]);
	return st;
}

imap_status
imap_authenticate(imap_session *s, const char *mech, const char *user, const char *password,
		  char **err_r)
{
	sasl_creds c = { .user = user, .secret = password };
	sasl_mech m;

	if (s == NULL || mech == NULL || sasl_mech_parse(mech, &m) < 0 || sasl_mech_is_oauth(m)) {
		err_set(err_r, "AUTHENTICATE: only PLAIN and LOGIN take a password");
		return IMAP_EUSAGE;
	}
	return auth_exchange(s, m, &c, err_r);
}

imap_status
imap_auth_oauth(imap_session *s, const char *mech, const char *user, const char *token,
		const char **mech_used_r, char **err_r)
{
	sasl_creds c = { .user = user, .secret = token };
	const char *why;
	sasl_mech m;

	if (mech_used_r != NULL)
		*mech_used_r = NULL;
	if (s == NULL || s->conn == NULL) {
		err_set(err_r, "AUTHENTICATE: no session");
		return IMAP_EUSAGE;
	}
	if (sasl_oauth_pick(mech, imap_has_auth(s, "OAUTHBEARER"), imap_has_auth(s, "XOAUTH2"), &m,
			    &why) < 0)
		return imap_fail(s, IMAP_EUSAGE, err_r, "AUTHENTICATE: %s", why);
	if (mech_used_r != NULL)
		*mech_used_r = sasl_mech_name(m);
	/* A bearer token is as good as a password to whoever reads it. */
	if (!imap_is_tls(s))
		return imap_fail(s, IMAP_EUSAGE, err_r,
				 "AUTHENTICATE: refusing to send an OAuth token without TLS");
	c.host = s->host;
	c.port = s->port;
	return auth_exchange(s, m, &c, err_r);
}

/* mailmill - ISC licence, see LICENSE */
/*
 * Logging in: USER/PASS, APOP, SASL PLAIN and LOGIN (RFC 5034).  No secret
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
 * Read what follows an AUTH step: 1 for a "+ " continuation, 0 for +OK, or
 * a failure status (as a negative pop3_status) in *st_r.
 */
static int
auth_reply(pop3_session *s, pop3_status *st_r, char **err_r)
{
	const char *line;
	size_t len;

	if ((*st_r = pop3_get_line(s, "AUTH", 1, &line, &len, err_r)) != POP3_OK)
		return -1;
	pop3_trace_line(s, 'S', line, len);
	if (len >= 1 && line[0] == '+' && (len == 1 || line[1] == ' '))
		return 1;
	*st_r = auth_status(pop3_check_status(s, "AUTH", line, len, NULL, NULL, err_r));
	return *st_r == POP3_OK ? 0 : -1;
}

/* Send one base64 response; the trace sees only that one was sent. */
static pop3_status
auth_send(pop3_session *s, const void *data, size_t len, char **err_r)
{
	char b64[CMD_MAX];
	pop3_status st;

	if (pop3_base64_encode(data, len, b64, sizeof(b64)) < 0)
		return usage(s, err_r, "AUTH", "credentials too long");
	st = pop3_send_line(s, "AUTH", b64, "<redacted>", 1, err_r);
	explicit_bzero(b64, sizeof(b64));
	return st;
}

pop3_status
pop3_auth(pop3_session *s, const char *mech, const char *user, const char *password,
	  char **err_r)
{
	char raw[2 * ARG_MAX_LEN + 2], line[64];
	size_t ul, pl;
	pop3_status st;
	int plain, step, r;

	if (mech == NULL || (!(plain = strcasecmp(mech, "PLAIN") == 0) &&
			     strcasecmp(mech, "LOGIN") != 0))
		return usage(s, err_r, "AUTH", "only the PLAIN and LOGIN mechanisms are supported");
	if (user == NULL || password == NULL || (ul = strlen(user)) == 0 ||
	    ul > ARG_MAX_LEN || (pl = strlen(password)) > ARG_MAX_LEN)
		return usage(s, err_r, "AUTH", "bad user name or password");
	if (s->capa_known && !pop3_has_sasl(s, mech))
		return pop3_fail(s, POP3_EUSAGE, err_r, "AUTH: the server does not offer SASL %s",
			    plain ? "PLAIN" : "LOGIN");
	snprintf(line, sizeof(line), "AUTH %s", plain ? "PLAIN" : "LOGIN");
	if ((st = pop3_begin(s, "AUTH", err_r)) != POP3_OK ||
	    (st = pop3_send_line(s, "AUTH", line, NULL, 1, err_r)) != POP3_OK)
		return st;
	/*
	 * PLAIN: one response, "\0user\0password" (no authorisation identity).
	 * LOGIN: the user name, then the password, each after a "+ " prompt.
	 */
	for (step = 0;; step++) {
		if ((r = auth_reply(s, &st, err_r)) < 0)
			return st;
		if (r == 0)
			return step == (plain ? 1 : 2) ? POP3_OK :
				pop3_fail(s, POP3_EPROTO, err_r, "AUTH: +OK before the credentials");
		if (plain && step == 0) {
			raw[0] = '\0';
			memcpy(raw + 1, user, ul);
			raw[ul + 1] = '\0';
			memcpy(raw + ul + 2, password, pl);
			st = auth_send(s, raw, ul + pl + 2, err_r);
			explicit_bzero(raw, sizeof(raw));
		} else if (!plain && step < 2) {
			st = step == 0 ? auth_send(s, user, ul, err_r) :
				auth_send(s, password, pl, err_r);
		} else {
			/* A prompt we have no answer for: cancel (RFC 5034 4.). */
			if ((st = pop3_send_line(s, "AUTH", "*", NULL, 1, err_r)) != POP3_OK)
				return st;
			if (auth_reply(s, &st, err_r) < 0)
				return st;
			return pop3_fail(s, POP3_EPROTO, err_r, "AUTH: unexpected extra challenge");
		}
		if (st != POP3_OK)
			return st;
	}
}

/* mailmill - ISC licence, see LICENSE */
/*
 * SASL client responses and error challenges.  The raw response is built in
 * a buffer sized to the input, encoded, and wiped at once: only the base64
 * form leaves this file, and the caller wipes that with sasl_free.
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>

#include "proto/b64.h"
#include "proto/err.h"
#include "proto/sasl.h"

static const char *const mech_names[] = { "PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER" };

int
sasl_mech_parse(const char *name, sasl_mech *m_r)
{
	size_t i;

	for (i = 0; name != NULL && i < sizeof(mech_names) / sizeof(mech_names[0]); i++)
		if (strcasecmp(name, mech_names[i]) == 0) {
			*m_r = (sasl_mech)i;
			return 0;
		}
	return -1;
}

const char *
sasl_mech_name(sasl_mech m)
{
	return (unsigned)m < sizeof(mech_names) / sizeof(mech_names[0]) ? mech_names[m] : "?";
}

int
sasl_mech_is_oauth(sasl_mech m)
{
	return m == SASL_XOAUTH2 || m == SASL_OAUTHBEARER;
}

int
sasl_steps(sasl_mech m)
{
	return m == SASL_LOGIN ? 2 : 1;
}

int
sasl_oauth_pick(const char *mech, int offers_oauthbearer, int offers_xoauth2, sasl_mech *m_r,
		const char **why_r)
{
	if (mech != NULL) {
		if (sasl_mech_parse(mech, m_r) == 0 && sasl_mech_is_oauth(*m_r))
			return 0;
		*why_r = "OAuth needs the XOAUTH2 or OAUTHBEARER mechanism";
		return -1;
	}
	if (offers_oauthbearer || offers_xoauth2) {
		*m_r = offers_oauthbearer ? SASL_OAUTHBEARER : SASL_XOAUTH2;
		return 0;
	}
	*why_r = "the server offers neither OAUTHBEARER nor XOAUTH2";
	return -1;
}

/* RFC 6750 2.1 b64token: what a bearer token may hold, so that it cannot
 * break out of the \1-separated fields. */
static int
token_ok(const char *t, size_t len)
{
	size_t i = 0;

	while (i < len && (((t[i] | 0x20) >= 'a' && (t[i] | 0x20) <= 'z') ||
			   (t[i] >= '0' && t[i] <= '9') || strchr("-._~+/", t[i]) != NULL))
		i++;
	if (i == 0)
		return 0;
	while (i < len && t[i] == '=')
		i++;
	return i == len;
}

static int
printable(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

/* A growing raw response, wiped whenever it moves or goes. */
typedef struct raw {
	char *p;
	size_t len, cap;
} raw;

static void
raw_put(raw *r, const void *data, size_t len)
{
	/* The caller sized cap for everything it puts: checked, not trusted. */
	if (r->p == NULL || len > r->cap - r->len) {
		r->len = r->cap + 1;
		return;
	}
	memcpy(r->p + r->len, data, len);
	r->len += len;
}

static void
raw_puts(raw *r, const char *s)
{
	raw_put(r, s, strlen(s));
}

/* RFC 5801 saslname: "," and "=" as "=2C" and "=3D". */
static void
raw_saslname(raw *r, const char *u)
{
	for (; *u != '\0'; u++) {
		if (*u == ',')
			raw_puts(r, "=2C");
		else if (*u == '=')
			raw_puts(r, "=3D");
		else
			raw_put(r, u, 1);
	}
}

/* The port as a number: digits, or a service name; 0 when unknown. */
static unsigned
port_number(const char *port)
{
	struct servent *se;
	char *end;
	unsigned long v;

	if (port == NULL || port[0] == '\0')
		return 0;
	if (port[0] >= '0' && port[0] <= '9') {
		v = strtoul(port, &end, 10);
		return *end == '\0' && v > 0 && v <= 65535 ? (unsigned)v : 0;
	}
	se = getservbyname(port, "tcp");
	return se != NULL ? ntohs((uint16_t)se->s_port) : 0;
}

static int
check(const sasl_creds *c, sasl_mech m, size_t *ul_r, size_t *sl_r, char **err_r)
{
	const char *what = sasl_mech_is_oauth(m) ? "access token" : "password";
	size_t smax = sasl_mech_is_oauth(m) ? SASL_TOKEN_MAX : SASL_USER_MAX;

	if (c == NULL || c->user == NULL || c->secret == NULL) {
		err_set(err_r, "%s: no user name or %s", sasl_mech_name(m), what);
		return -1;
	}
	*ul_r = strlen(c->user);
	*sl_r = strlen(c->secret);
	if (*ul_r == 0 || *ul_r > SASL_USER_MAX) {
		err_set(err_r, "%s: the user name is empty or longer than %d bytes",
			sasl_mech_name(m), SASL_USER_MAX);
		return -1;
	}
	if (*sl_r > smax) {
		err_set(err_r, "%s: the %s is longer than %zu bytes", sasl_mech_name(m), what, smax);
		return -1;
	}
	if (!sasl_mech_is_oauth(m))
		return 0;
	/* A control byte (\1 above all) would split the fields. */
	if (!printable(c->user, *ul_r)) {
		err_set(err_r, "%s: the user name holds a control byte", sasl_mech_name(m));
		return -1;
	}
	if (!token_ok(c->secret, *sl_r)) {
		err_set(err_r, "%s: the access token is empty or not an RFC 6750 token "
			"(letters, digits, -._~+/ and trailing =)", sasl_mech_name(m));
		return -1;
	}
	if (m == SASL_OAUTHBEARER && c->host != NULL &&
	    (c->host[0] == '\0' || !printable(c->host, strlen(c->host)) ||
	     strlen(c->host) > 255)) {
		err_set(err_r, "%s: bad host name", sasl_mech_name(m));
		return -1;
	}
	return 0;
}

char *
sasl_response(sasl_mech m, int step, const sasl_creds *c, size_t *len_r, char **err_r)
{
	raw r = { 0 };
	char port[24];
	unsigned pn;
	size_t ul, sl;
	char *out;

	if (step < 0 || step >= sasl_steps(m) || (unsigned)m > SASL_OAUTHBEARER) {
		err_set(err_r, "%s: no response for step %d", sasl_mech_name(m), step + 1);
		return NULL;
	}
	if (check(c, m, &ul, &sl, err_r) < 0)
		return NULL;
	if (m == SASL_LOGIN) {
		/* Each field is the whole response: nothing to assemble. */
		const char *f = step == 0 ? c->user : c->secret;

		if ((out = b64_encode(f, step == 0 ? ul : sl, len_r)) == NULL)
			err_set(err_r, "LOGIN: out of memory");
		return out;
	}
	/* Escaping at most triples the user name; the rest is fixed text. */
	r.cap = 3 * ul + sl + (c->host != NULL ? strlen(c->host) : 0) + 64;
	if ((r.p = malloc(r.cap)) == NULL) {
		err_set(err_r, "%s: out of memory", sasl_mech_name(m));
		return NULL;
	}
	switch (m) {
	case SASL_PLAIN:
		raw_put(&r, "", 1);
		raw_put(&r, c->user, ul);
		raw_put(&r, "", 1);
		raw_put(&r, c->secret, sl);
		break;
	case SASL_XOAUTH2:
		raw_puts(&r, "user=");
		raw_put(&r, c->user, ul);
		raw_puts(&r, "\001auth=Bearer ");
		raw_put(&r, c->secret, sl);
		raw_puts(&r, "\001\001");
		break;
	default:
		raw_puts(&r, "n,a=");
		raw_saslname(&r, c->user);
		raw_puts(&r, ",\001");
		if (c->host != NULL) {
			raw_puts(&r, "host=");
			raw_puts(&r, c->host);
			raw_puts(&r, "\001");
		}
		if ((pn = port_number(c->port)) != 0) {
			snprintf(port, sizeof(port), "port=%u\001", pn);
			raw_puts(&r, port);
		}
		raw_puts(&r, "auth=Bearer ");
		raw_put(&r, c->secret, sl);
		raw_puts(&r, "\001\001");
		break;
	}
	out = r.len <= r.cap ? b64_encode(r.p, r.len, len_r) : NULL;
	if (out == NULL)
		err_set(err_r, "%s: out of memory", sasl_mech_name(m));
	b64_free_secret(r.p, r.cap);
	return out;
}

void
sasl_free(char *response)
{
	if (response != NULL)
		b64_free_secret(response, strlen(response));
}

/* Printable ASCII, white space runs folded to one space, bounded. */
static void
append_clean(char *dst, size_t *n, size_t max, const unsigned char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len && *n < max; i++) {
		unsigned char ch = s[i];

		if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
			if (*n > 0 && dst[*n - 1] != ' ')
				dst[(*n)++] = ' ';
			continue;
		}
		dst[(*n)++] = ch < 0x20 || ch >= 0x7f ? '?' : (char)ch;
	}
	dst[*n] = '\0';
	if (i < len) {
		memcpy(dst + *n, "...", 4);
		*n += 3;
	}
}

char *
sasl_error_text(const char *challenge, size_t len)
{
	static const char note[] = "undecodable challenge: ";
	unsigned char *dec = NULL;
	size_t dlen = 0, n = 0, take = len;
	char *out;
	int cut = 0;

	/* A longer challenge is read only as far as an error message shows. */
	if (take > SASL_CHALLENGE_MAX / 3 * 4) {
		take = SASL_CHALLENGE_MAX / 3 * 4;
		cut = 1;
	}
	if ((out = malloc(sizeof(note) + SASL_ERROR_TEXT_MAX + 4)) == NULL)
		return NULL;
	if (challenge != NULL && b64_decode(challenge, take, SASL_CHALLENGE_MAX, &dec, &dlen) == 0) {
		append_clean(out, &n, SASL_ERROR_TEXT_MAX, dec, dlen);
		if (cut && n + 3 <= SASL_ERROR_TEXT_MAX && (n < 3 || strcmp(out + n - 3, "...") != 0)) {
			memcpy(out + n, "...", 4);
			n += 3;
		}
		free(dec);
		if (n == 0)
			memcpy(out, "(empty challenge)", sizeof("(empty challenge)"));
		return out;
	}
	memcpy(out, note, sizeof(note));
	n = sizeof(note) - 1;
	append_clean(out, &n, sizeof(note) - 1 + SASL_ERROR_TEXT_MAX,
		     (const unsigned char *)(challenge != NULL ? challenge : ""),
		     challenge != NULL ? len : 0);
	return out;
}

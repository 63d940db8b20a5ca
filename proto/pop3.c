/* mailmill - ISC licence, see LICENSE */
/*
 * The POP3 session: connecting, the greeting, CAPA and STLS.  The I/O
 * helpers every command uses are pop3_wire.c, logging in is pop3_auth.c,
 * the transaction verbs and the pipeline pop3_cmd.c, the parsers
 * pop3_parse.c.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/net.h"
#include "proto/pop3.h"
#include "proto/pop3_int.h"

/* ------------------------------------------------------------ session */

/* The APOP timestamp: "<...@...>" in the greeting (RFC 1939 7.). */
static char *
find_apop_ts(const char *g)
{
	const char *lt = strchr(g, '<'), *gt, *p;
	char *ts;

	if (lt == NULL || (gt = strchr(lt, '>')) == NULL || gt - lt < 3)
		return NULL;
	for (p = lt + 1; p < gt; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '<')
			return NULL;
	if (memchr(lt, '@', (size_t)(gt - lt)) == NULL)
		return NULL;
	ts = strndup(lt, (size_t)(gt - lt) + 1);
	return ts;
}

static pop3_status
session_start(net_conn *c, const pop3_options *opt, pop3_trace_fn *fn, void *arg,
	      pop3_session **s_r, char **err_r)
{
	pop3_session *s;
	pop3_status st;
	const char *line;
	size_t len;
	char *nerr = NULL;

	*s_r = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		net_close(&c);
		err_set(err_r, "POP3: out of memory");
		return POP3_EIO;
	}
	s->conn = c;
	s->trace = fn;
	s->trace_arg = arg;
	s->command_timeout_ms = opt != NULL && opt->command_timeout_ms > 0 ?
		opt->command_timeout_ms : 60000;
	s->capa.max = CAPA_MAX_BYTES;
	s->max_line = opt != NULL && opt->max_line > 0 ? opt->max_line : 8192;
	if (opt != NULL && ((opt->host != NULL && (s->host = strdup(opt->host)) == NULL) ||
			    (opt->port != NULL && (s->port = strdup(opt->port)) == NULL) ||
			    (opt->ca_file != NULL && (s->ca_file = strdup(opt->ca_file)) == NULL))) {
		st = pop3_fail(s, POP3_EIO, err_r, "POP3: out of memory");
		goto out;
	}
	net_deadline(c, s->command_timeout_ms);
	if (opt != NULL && opt->tls == POP3_TLS_IMPLICIT &&
	    net_starttls(c, s->host, s->ca_file, &nerr) < 0) {
		st = pop3_net_fail(s, POP3_ETLS, "POP3S", nerr, err_r);
		goto out;
	}
	if ((st = pop3_get_line(s, "greeting", 1, &line, &len, err_r)) != POP3_OK)
		goto out;
	pop3_trace_line(s, 'S', line, len);
	if ((s->greeting = malloc(len + 1)) == NULL) {
		st = pop3_fail(s, POP3_EIO, err_r, "POP3: out of memory");
		goto out;
	}
	memcpy(s->greeting, line, len + 1);
	if ((st = pop3_check_status(s, "greeting", s->greeting, len, NULL, NULL, err_r)) != POP3_OK)
		goto out;
	s->apop_ts = find_apop_ts(s->greeting);
	if (opt != NULL && opt->tls == POP3_TLS_STLS && (st = pop3_stls(s, err_r)) != POP3_OK)
		goto out;
	*s_r = s;
	return POP3_OK;
out:
	pop3_close(&s);
	return st;
}

/* net's cap: the longer of a body line and the caller's reply line. */
static size_t
net_max_line(const pop3_options *opt)
{
	return opt != NULL && opt->max_line > BODY_LINE_MAX ? opt->max_line : BODY_LINE_MAX;
}

struct pop3_dial {
	net_conn *c;
};

pop3_status
pop3_dial_open(const pop3_options *opt, pop3_dial **d_r, char **err_r)
{
	net_conn *c;
	char *nerr = NULL;

	*d_r = NULL;
	if (opt == NULL || opt->host == NULL || opt->port == NULL) {
		err_set(err_r, "POP3: no host or port");
		return POP3_EUSAGE;
	}
	if (net_connect(opt->host, opt->port, opt->connect_timeout_ms > 0 ?
			opt->connect_timeout_ms : 30000, net_max_line(opt), &c, &nerr) < 0) {
		/* net's message already names the host and port. */
		err_set(err_r, "%s", nerr != NULL ? nerr : "cannot connect: out of memory");
		free(nerr);
		return POP3_EIO;
	}
	if ((*d_r = malloc(sizeof(**d_r))) == NULL) {
		net_close(&c);
		err_set(err_r, "POP3: out of memory");
		return POP3_EIO;
	}
	(*d_r)->c = c;
	return POP3_OK;
}

void
pop3_dial_close(pop3_dial **d)
{
	if (*d == NULL)
		return;
	net_close(&(*d)->c);
	free(*d);
	*d = NULL;
}

pop3_status
pop3_connect_dial(pop3_dial *d, const pop3_options *opt, pop3_trace_fn *fn, void *arg,
		  pop3_session **s_r, char **err_r)
{
	net_conn *c = d->c;
	pop3_status st;

	free(d);
	if ((st = session_start(c, opt, fn, arg, s_r, err_r)) != POP3_OK)
		return st;
	/*
	 * Callers choose the mechanism and pipelining from CAPA, so learn it now
	 * (STLS already did, over TLS).  A server without CAPA is RFC 1939 only.
	 */
	if (!(*s_r)->capa_known) {
		st = pop3_capa(*s_r, err_r);
		if (st == POP3_ENEG && err_r != NULL) {
			free(*err_r);
			*err_r = NULL;
		} else if (st != POP3_OK && st != POP3_ENEG) {
			pop3_close(s_r);
			return st;
		}
	}
	return POP3_OK;
}

pop3_status
pop3_connect_trace(const pop3_options *opt, pop3_trace_fn *fn, void *arg, pop3_session **s_r,
		   char **err_r)
{
	pop3_dial *d;
	pop3_status st;

	*s_r = NULL;
	if ((st = pop3_dial_open(opt, &d, err_r)) != POP3_OK)
		return st;
	return pop3_connect_dial(d, opt, fn, arg, s_r, err_r);
}

pop3_status
pop3_connect(const pop3_options *opt, pop3_session **s_r, char **err_r)
{
	return pop3_connect_trace(opt, NULL, NULL, s_r, err_r);
}

pop3_status
pop3_from_fd_trace(int fd, const pop3_options *opt, pop3_trace_fn *fn, void *arg,
		   pop3_session **s_r, char **err_r)
{
	net_conn *c;
	char *nerr = NULL;

	*s_r = NULL;
	if (net_from_fd(fd, net_max_line(opt), &c, &nerr) < 0) {
		err_set(err_r, "POP3: %s", nerr != NULL ? nerr : "cannot use the socket");
		free(nerr);
		return POP3_EIO;
	}
	return session_start(c, opt, fn, arg, s_r, err_r);
}

pop3_status
pop3_from_fd(int fd, const pop3_options *opt, pop3_session **s_r, char **err_r)
{
	return pop3_from_fd_trace(fd, opt, NULL, NULL, s_r, err_r);
}

void
pop3_close(pop3_session **sp)
{
	pop3_session *s = *sp;

	if (s == NULL)
		return;
	net_close(&s->conn);
	free(s->host);
	free(s->port);
	free(s->ca_file);
	free(s->greeting);
	free(s->apop_ts);
	buf_free(&s->capa);
	free(s);
	*sp = NULL;
}

void
pop3_set_trace(pop3_session *s, pop3_trace_fn *fn, void *arg)
{
	s->trace = fn;
	s->trace_arg = arg;
}

pop3_rcode
pop3_last_code(const pop3_session *s)
{
	return s->last_code;
}

const char *
pop3_greeting(const pop3_session *s)
{
	return s->greeting != NULL ? s->greeting : "";
}

int
pop3_is_tls(const pop3_session *s)
{
	return s->conn != NULL && net_is_tls(s->conn);
}

const char *
pop3_tls_describe(const pop3_session *s)
{
	return s->conn != NULL ? net_tls_describe(s->conn) : "";
}

const char *
pop3_tls_cert(const pop3_session *s)
{
	return s->conn != NULL ? net_tls_cert(s->conn) : "";
}

int
pop3_has_apop(const pop3_session *s)
{
	return s->apop_ts != NULL;
}

/* ------------------------------------------------------------ CAPA, STLS */

pop3_status
pop3_capa(pop3_session *s, char **err_r)
{
	const char *line;
	size_t len;
	pop3_status st;
	int r;

	if ((st = pop3_simple(s, "CAPA", "CAPA", NULL, NULL, NULL, err_r)) != POP3_OK)
		return st;
	buf_reset(&s->capa);
	s->capa_known = 0;
	while ((r = pop3_ml_next(s, "CAPA", &line, &len, &st, err_r)) > 0) {
		if (buf_append(&s->capa, line, len) < 0 || buf_append(&s->capa, "", 1) < 0)
			return pop3_fail(s, POP3_EPROTO, err_r, "CAPA: capability list over %d bytes",
				    CAPA_MAX_BYTES);
	}
	if (r < 0)
		return st;
	s->capa_known = 1;
	return POP3_OK;
}

/* The capability line whose first word is name (case-insensitive), or NULL. */
static const char *
capa_line(const pop3_session *s, const char *name)
{
	size_t off = 0, n = strlen(name);

	if (!s->capa_known || s->capa.data == NULL)
		return NULL;
	while (off < s->capa.len) {
		const char *l = s->capa.data + off;

		if (strncasecmp(l, name, n) == 0 && (l[n] == '\0' || l[n] == ' '))
			return l;
		off += strlen(l) + 1;
	}
	return NULL;
}

int
pop3_has_capa(const pop3_session *s, const char *name)
{
	return capa_line(s, name) != NULL;
}

size_t
pop3_capa_text(const pop3_session *s, char *out, size_t len)
{
	size_t off = 0, n = 0;

	if (len == 0)
		return 0;
	out[0] = '\0';
	while (s->capa_known && s->capa.data != NULL && off < s->capa.len && n + 1 < len) {
		const char *l = s->capa.data + off;
		int w = snprintf(out + n, len - n, "%s%s", n > 0 ? ", " : "", l);

		if (w < 0)
			break;
		n += (size_t)w < len - n ? (size_t)w : len - n - 1;
		off += strlen(l) + 1;
	}
	/* The server's text: printable ASCII only. */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] > 0x7e)
			out[i] = '?';
	return n;
}

int
pop3_has_sasl(const pop3_session *s, const char *mech)
{
	const char *l = capa_line(s, "SASL"), *p;
	size_t n = strlen(mech);

	if (l == NULL || n == 0)
		return 0;
	for (p = l + 4; *p != '\0';) {
		size_t w;

		while (*p == ' ')
			p++;
		w = strcspn(p, " ");
		if (w == n && strncasecmp(p, mech, n) == 0)
			return 1;
		p += w;
	}
	return 0;
}

pop3_status
pop3_stls(pop3_session *s, char **err_r)
{
	pop3_status st;
	char *nerr = NULL;

	if ((st = pop3_begin(s, "STLS", err_r)) != POP3_OK)
		return st;
	if (net_is_tls(s->conn))
		return pop3_fail(s, POP3_EUSAGE, err_r, "STLS: the connection is already TLS");
	if (!s->capa_known) {
		st = pop3_capa(s, err_r);
		if (st == POP3_ENEG) {
			if (err_r != NULL) {
				free(*err_r);
				*err_r = NULL;
			}
		} else if (st != POP3_OK) {
			return st;
		}
	}
	/* No silent downgrade: without STLS in CAPA nothing more is sent. */
	if (!pop3_has_capa(s, "STLS"))
		return pop3_fail(s, POP3_ETLS, err_r,
			    "STLS: the server does not offer STLS in its CAPA; refusing to go on "
			    "without TLS");
	st = pop3_simple(s, "STLS", "STLS", NULL, NULL, NULL, err_r);
	if (st == POP3_ENEG) {
		s->broken = 1;
		return POP3_ETLS;
	}
	if (st != POP3_OK)
		return st;
	/* net refuses if plain-text bytes followed the go-ahead (injection). */
	if (net_starttls(s->conn, s->host, s->ca_file, &nerr) < 0)
		return pop3_net_fail(s, POP3_ETLS, "STLS", nerr, err_r);
	/* RFC 2595 4.: what was learnt before TLS may have been forged. */
	buf_reset(&s->capa);
	s->capa_known = 0;
	st = pop3_capa(s, err_r);
	if (st == POP3_ENEG) {
		/* TLS is up; a server without CAPA over TLS is odd but usable. */
		if (err_r != NULL) {
			free(*err_r);
			*err_r = NULL;
		}
		return POP3_OK;
	}
	return st;
}

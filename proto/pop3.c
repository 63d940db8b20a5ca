/* mailmill - ISC licence, see LICENSE */
/*
 * The POP3 session: connecting, the I/O helpers every command uses, CAPA
 * and STLS.  Logging in is pop3_auth.c, the transaction verbs and the
 * pipeline pop3_cmd.c, the parsers pop3_parse.c.  Any
 * failure that may leave unread bytes on the wire (I/O, protocol, TLS, a
 * body over the caller's cap) marks the session broken: a later verb would
 * otherwise read the tail of an old reply as its own.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/net.h"
#include "proto/pop3.h"
#include "proto/pop3_int.h"

static int
is_fatal(pop3_status st)
{
	return st == POP3_EIO || st == POP3_EPROTO || st == POP3_ETLS;
}

pop3_status
pop3_fail(pop3_session *s, pop3_status st, char **err_r, const char *fmt, ...)
{
	va_list ap;

	if (is_fatal(st))
		s->broken = 1;
	va_start(ap, fmt);
	err_vset(err_r, fmt, ap);
	va_end(ap);
	return st;
}

void
pop3_trace_line(pop3_session *s, char dir, const char *line, size_t len)
{
	if (s->trace != NULL)
		s->trace(s->trace_arg, dir, line, len);
}

pop3_status
pop3_net_fail(pop3_session *s, pop3_status st, const char *label, char *nerr, char **err_r)
{
	pop3_status r = pop3_fail(s, st, err_r, "%s: %s", label, nerr != NULL ? nerr : "I/O error");

	free(nerr);
	return r;
}

/* A command argument: present, one line, no more than RFC 2449 allows. */
int
pop3_arg_ok(const char *a)
{
	return a != NULL && a[0] != '\0' && strlen(a) <= ARG_MAX_LEN && strpbrk(a, "\r\n") == NULL;
}

/*
 * Queue line + CRLF; the trace sees `shown` instead when given, so secrets
 * never reach it.
 */
pop3_status
pop3_send_line(pop3_session *s, const char *label, const char *line, const char *shown, int flush,
	  char **err_r)
{
	char *nerr = NULL;
	size_t len = strlen(line);

	pop3_trace_line(s, 'C', shown != NULL ? shown : line, shown != NULL ? strlen(shown) : len);
	if (net_write(s->conn, line, len, &nerr) < 0 || net_write(s->conn, "\r\n", 2, &nerr) < 0)
		return pop3_net_fail(s, POP3_EIO, label, nerr, err_r);
	if (flush) {
		if (net_flush(s->conn, &nerr) < 0)
			return pop3_net_fail(s, POP3_EIO, label, nerr, err_r);
		s->unflushed = 0;
	} else {
		s->unflushed = 1;
	}
	return POP3_OK;
}

/* A line of the body (reply == 0) or of the protocol (bounded by max_line). */
pop3_status
pop3_get_line(pop3_session *s, const char *label, int reply, const char **line_r, size_t *len_r,
	 char **err_r)
{
	char *nerr = NULL;

	if (net_getline(s->conn, line_r, len_r, &nerr) < 0)
		return pop3_net_fail(s, POP3_EIO, label, nerr, err_r);
	if (reply && *len_r > s->max_line)
		return pop3_fail(s, POP3_EPROTO, err_r, "%s: reply line longer than %zu bytes", label,
			    s->max_line);
	return POP3_OK;
}

/* Judge a status line: OK, ENEG (code recorded) or EPROTO. */
pop3_status
pop3_check_status(pop3_session *s, const char *label, const char *line, size_t len,
	     const char **text_r, size_t *tlen_r, char **err_r)
{
	const char *text;
	char q[QUOTE_MAX + 4];
	pop3_rcode code;
	int r;

	r = pop3_parse_status(line, len, &code, &text);
	if (r < 0) {
		err_quote(q, line, len);
		return pop3_fail(s, POP3_EPROTO, err_r, "%s: unexpected reply \"%s\"", label, q);
	}
	if (r == 0) {
		err_quote(q, line, len);
		s->last_code = code;
		return pop3_fail(s, POP3_ENEG, err_r, "%s: %s", label, q);
	}
	if (text_r != NULL) {
		*text_r = text;
		*tlen_r = len - (size_t)(text - line);
	}
	return POP3_OK;
}

pop3_status
pop3_read_status(pop3_session *s, const char *label, const char **text_r, size_t *tlen_r,
	    char **err_r)
{
	const char *line;
	size_t len;
	pop3_status st;

	if ((st = pop3_get_line(s, label, 1, &line, &len, err_r)) != POP3_OK)
		return st;
	pop3_trace_line(s, 'S', line, len);
	return pop3_check_status(s, label, line, len, text_r, tlen_r, err_r);
}

/* Next line of a multi-line listing: 1 a line, 0 the end, -1 failure (*st_r). */
int
pop3_ml_next(pop3_session *s, const char *label, const char **data_r, size_t *len_r,
	pop3_status *st_r, char **err_r)
{
	const char *line;
	size_t len;

	if ((*st_r = pop3_get_line(s, label, 1, &line, &len, err_r)) != POP3_OK)
		return -1;
	pop3_trace_line(s, 'S', line, len);
	return pop3_ml_line(line, len, data_r, len_r);
}

int
pop3_listing_next(pop3_session *s, const char *label, const char **data_r, size_t *len_r,
		  pop3_status *st_r, char **err_r)
{
	const char *line;
	char *nerr = NULL;
	size_t len, n = 0;
	int whole;

	*st_r = POP3_OK;
	if (net_getline_part(s->conn, &line, &len, &whole, &nerr) < 0) {
		*st_r = pop3_net_fail(s, POP3_EIO, label, nerr, err_r);
		return -1;
	}
	pop3_trace_line(s, 'S', line, len > s->max_line ? s->max_line : len);
	if (whole && len <= s->max_line)
		return pop3_ml_line(line, len, data_r, len_r);
	/* Too long for a listing line: keep its number, drop the rest. */
	while (n < len && n < sizeof(s->cut) - 1 && line[n] >= '0' && line[n] <= '9')
		n++;
	if (n == len || line[n] != ' ')
		n = 0;
	memcpy(s->cut, line, n);
	s->cut[n] = '\0';
	while (!whole)
		if (net_getline_part(s->conn, &line, &len, &whole, &nerr) < 0) {
			*st_r = pop3_net_fail(s, POP3_EIO, label, nerr, err_r);
			return -1;
		}
	*data_r = s->cut;
	*len_r = n;
	return 1;
}

/* Bytes out takes without growing, before its NUL and within its cap. */
static size_t
body_room(const buf *out)
{
	size_t room = out->data != NULL && out->cap > out->len ? out->cap - out->len - 1 : 0;
	size_t left;

	if (out->max != 0) {
		left = out->len < out->max ? out->max - out->len : 0;
		if (room > left)
			room = left;
	}
	return room;
}

/*
 * The body lines already buffered, straight into out: one scan for each LF,
 * one copy per line, no call per line.  It does exactly what
 * pop3_get_line + pop3_body_line do for each line (strip one CR before the
 * LF, unstuff a leading dot, end at "."), and leaves anything that needs
 * their checks or their error to them: a line past net's cap, a line that
 * would pass out's cap, a line not yet complete, out of memory.  1 once the
 * terminating "." is consumed (what follows stays buffered), else 0.
 */
static int
body_run(pop3_session *s, buf *out)
{
	const char *start, *p, *end, *lf, *data;
	size_t cap = net_line_cap(s->conn), len, olen, room;
	char *dst;
	int done = 0;

	len = net_peek(s->conn, &start);
	if (len == 0)
		return 0;
	p = start;
	end = start + len;
	olen = out->len;
	room = body_room(out);
	dst = out->data != NULL ? out->data + olen : NULL;
	while ((lf = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		data = p;
		len = (size_t)(lf - p);
		if (len > 0 && lf[-1] == '\r')
			len--;
		if (len > cap)
			break;
		/* p < lf here, so a '.' there makes len at least 1 (it is no CR). */
		if (*p == '.') {
			if (len == 1) {
				p = lf + 1;
				done = 1;
				break;
			}
			data++;
			len--;
		}
		if (len + 1 > room) {
			/* Grow as buf_append would; at the cap, leave it to buf_append. */
			if (olen != out->len) {
				out->len = olen;
				out->data[olen] = '\0';
			}
			if (buf_reserve(out, len + 1) < 0)
				break;
			room = body_room(out);
			dst = out->data + olen;
		}
		memcpy(dst, data, len);
		dst[len] = '\n';
		dst += len + 1;
		olen += len + 1;
		room -= len + 1;
		p = lf + 1;
	}
	if (olen != out->len) {
		out->len = olen;
		out->data[olen] = '\0';
	}
	net_consume(s->conn, (size_t)(p - start));
	return done;
}

/*
 * A RETR/TOP body; not traced (it is mail, not protocol).  A line longer
 * than net's cap comes in pieces.  Past out's cap the rest is read to the
 * terminating dot and dropped, so that the session stays in step: one
 * message too big does not end the run.
 */
pop3_status
pop3_read_body(pop3_session *s, const char *label, buf *out, char **err_r)
{
	const char *line;
	char *nerr = NULL;
	size_t len;
	int first = 1, whole, over = 0, r;

	for (;;) {
		/* Most lines: whole runs of them from what is already buffered. */
		if (first && !over && body_run(s, out))
			return POP3_OK;
		/* One line or piece the slow way: it reads more, or fails as it must. */
		if (net_getline_part(s->conn, &line, &len, &whole, &nerr) < 0)
			return pop3_net_fail(s, POP3_EIO, label, nerr, err_r);
		if (over)
			r = first && whole && len == 1 && line[0] == '.' ? 0 : 1;
		else
			r = pop3_body_piece(line, len, first, whole, out);
		first = whole;
		if (r == 0 && !over)
			return POP3_OK;
		if (r == 0) {
			err_set(err_r, "%s: message larger than the limit of %zu bytes (read and dropped)",
				label, out->max);
			return POP3_ETOOBIG;
		}
		if (r < 0) {
			if (errno != EFBIG)
				return pop3_fail(s, POP3_EIO, err_r, "%s: %s", label, strerror(errno));
			over = 1;
		}
	}
}

/* Every synchronous verb starts here: usable session, fresh deadline. */
pop3_status
pop3_begin(pop3_session *s, const char *label, char **err_r)
{
	if (s == NULL || s->conn == NULL) {
		err_set(err_r, "%s: no session", label);
		return POP3_EUSAGE;
	}
	if (s->broken)
		return pop3_fail(s, POP3_EUSAGE, err_r,
			    "%s: the session is unusable after an earlier error or QUIT", label);
	if (s->pipe_n > 0)
		return pop3_fail(s, POP3_EUSAGE, err_r, "%s: %zu pipelined replies not yet read", label,
			    s->pipe_n);
	s->last_code = POP3_RC_NONE;
	net_deadline(s->conn, s->command_timeout_ms);
	return POP3_OK;
}

pop3_status
pop3_simple(pop3_session *s, const char *label, const char *line, const char *shown,
       const char **text_r, size_t *tlen_r, char **err_r)
{
	pop3_status st;

	if ((st = pop3_begin(s, label, err_r)) != POP3_OK)
		return st;
	if ((st = pop3_send_line(s, label, line, shown, 1, err_r)) != POP3_OK)
		return st;
	return pop3_read_status(s, label, text_r, tlen_r, err_r);
}

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

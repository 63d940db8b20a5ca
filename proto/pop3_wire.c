/* mailmill - ISC licence, see LICENSE */
/*
 * The POP3 wire: sending command lines, reading status and listing lines
 * and RETR/TOP bodies, and the errors every verb returns.  Any failure that
 * may leave unread bytes on the wire (I/O, protocol, TLS, a body over the
 * caller's cap) marks the session broken: a later verb would otherwise read
 * the tail of an old reply as its own.
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
 * pop3_get_line + pop3_body_piece (whole lines) do for each line (strip one CR before the
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

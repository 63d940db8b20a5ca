/* mailmill - ISC licence, see LICENSE */
/*
 * The IMAP wire: tags, sending commands, reading responses through the
 * parser (bodies into the caller's sink), untagged responses into the
 * session's counters, tagged ones into a status, and the errors every verb
 * returns.  Any failure that may leave unread bytes on the wire (I/O,
 * protocol, TLS) marks the session broken: a later verb would otherwise
 * read the tail of an old answer as its own.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/imap.h"
#include "proto/imap_int.h"
#include "proto/net.h"

static int
is_fatal(imap_status st)
{
	return st == IMAP_EIO || st == IMAP_EPROTO || st == IMAP_ETLS;
}

imap_status
imap_fail(imap_session *s, imap_status st, char **err_r, const char *fmt, ...)
{
	va_list ap;

	if (is_fatal(st))
		s->broken = 1;
	va_start(ap, fmt);
	err_vset(err_r, fmt, ap);
	va_end(ap);
	return st;
}

imap_status
imap_net_fail(imap_session *s, imap_status st, const char *label, char *nerr, char **err_r)
{
	imap_status r = imap_fail(s, st, err_r, "%s: %s", label, nerr != NULL ? nerr : "I/O error");

	free(nerr);
	return r;
}

void
imap_quote(char dst[ERR_QUOTE_MAX + 4], const char *src, size_t len)
{
	err_quote(dst, src, len);
}

void
imap_trace(imap_session *s, char dir, const char *line, size_t len)
{
	if (s->trace != NULL)
		s->trace(s->trace_arg, dir, line, len);
}

imap_status
imap_begin(imap_session *s, const char *label, int need_auth, char **err_r)
{
	if (s == NULL || s->broken || s->conn == NULL) {
		err_set(err_r, "%s: the session is no longer usable", label);
		return IMAP_EUSAGE;
	}
	if (s->pipe_n > 0 || s->chg_n > 0)
		return imap_fail(s, IMAP_EUSAGE, err_r, "%s: %s still in flight", label,
				 s->pipe_n > 0 ? "fetches are" : "changes are");
	if (s->idling)
		return imap_fail(s, IMAP_EUSAGE, err_r, "%s: IDLE is running", label);
	if (need_auth && !s->authenticated)
		return imap_fail(s, IMAP_EUSAGE, err_r, "%s: not logged in", label);
	s->last_code[0] = '\0';
	net_deadline(s->conn, s->command_timeout_ms);
	return IMAP_OK;
}

void
imap_next_tag(imap_session *s, char tag[16])
{
	snprintf(tag, 16, "A%lu", ++s->tagno % 100000000UL);
}

imap_status
imap_send_raw(imap_session *s, const char *label, const void *data, size_t len, int flush,
	      char **err_r)
{
	char *nerr = NULL;

	if (len > 0 && net_write(s->conn, data, len, &nerr) < 0)
		return imap_net_fail(s, IMAP_EIO, label, nerr, err_r);
	if (flush && net_flush(s->conn, &nerr) < 0)
		return imap_net_fail(s, IMAP_EIO, label, nerr, err_r);
	return IMAP_OK;
}

imap_status
imap_send(imap_session *s, const char *label, const char *tag, const char *line,
	  const char *shown, int flush, char **err_r)
{
	char *nerr = NULL;

	if (s->trace != NULL) {
		char *t = err_fmt("%s %s", tag, shown != NULL ? shown : line);

		if (t != NULL)
			imap_trace(s, 'C', t, strlen(t));
		free(t);
	}
	if (net_write(s->conn, tag, strlen(tag), &nerr) < 0 || net_write(s->conn, " ", 1, &nerr) < 0 ||
	    net_write(s->conn, line, strlen(line), &nerr) < 0 ||
	    net_write(s->conn, "\r\n", 2, &nerr) < 0)
		return imap_net_fail(s, IMAP_EIO, label, nerr, err_r);
	return imap_send_raw(s, label, NULL, 0, flush, err_r);
}

#define SINK_PRESIZE_MAX (16U * 1024 * 1024)

void
imap_sink_open(imap_session *s, buf *b)
{
	buf_reset(b);
	s->sink = b;
	s->sink_full = 0;
	s->sink_raw = 0;
	s->sink_cr = 0;
}

/*
 * Append a body chunk to b with each CR LF made LF (a lone CR stays), as it
 * comes from the connection: one copy of the body, not one into a buffer
 * and another to convert it.  A CR that ends the chunk waits in *cr for
 * the next byte (sink_end if there is none).  -1 if b refuses it.
 */
static int
sink_lf(buf *b, const char *p, size_t n, int *cr)
{
	const char *end = p + n, *c;
	char *o;

	/* What comes out is never longer than the chunk and the waiting CR. */
	if (n == 0 || buf_reserve(b, n + (size_t)*cr) < 0)
		return n == 0 ? 0 : -1;
	o = b->data + b->len;
	if (*cr) {
		*cr = 0;
		if (*p != '\n')
			*o++ = '\r';
	}
	while (p < end) {
		if ((c = memchr(p, '\r', (size_t)(end - p))) == NULL) {
			memcpy(o, p, (size_t)(end - p));
			o += end - p;
			break;
		}
		memcpy(o, p, (size_t)(c - p));
		o += c - p;
		p = c + 1;
		if (p == end)
			*cr = 1;
		else if (*p != '\n')
			*o++ = '\r';
	}
	b->len = (size_t)(o - b->data);
	*o = '\0';
	return 0;
}

/* A body chunk: into the sink while it takes it, else dropped.  The cap
 * counts the bytes as sent, whatever the line ends become. */
static void
sink_chunk(imap_session *s, const char *data, size_t len)
{
	if (s->sink == NULL || s->sink_full)
		return;
	if (s->sink->max != 0 && len > s->sink->max - s->sink_raw) {
		s->sink_full = 1;
		return;
	}
	/* Room for the whole body at its first bytes, rather than doubling as
	 * it comes.  The size is the server's word: never beyond the cap, nor
	 * SINK_PRESIZE_MAX (a larger body grows as it comes). */
	if (s->sink_raw == 0 && s->sink->max != 0) {
		unsigned long long want = imap_parser_body_size(s->parser);

		if (want > s->sink->max)
			want = s->sink->max;
		(void)buf_reserve(s->sink, want < SINK_PRESIZE_MAX ? (size_t)want : SINK_PRESIZE_MAX);
	}
	s->sink_raw += len;
	if (s->lf_line_ends ? sink_lf(s->sink, data, len, &s->sink_cr) < 0
			    : buf_append(s->sink, data, len) < 0)
		s->sink_full = 1;
}

/* The response is whole: a CR that ended its body stays. */
static void
sink_end(imap_session *s)
{
	if (!s->sink_cr)
		return;
	s->sink_cr = 0;
	if (s->sink != NULL && !s->sink_full && buf_append(s->sink, "\r", 1) < 0)
		s->sink_full = 1;
}

/* The response as the trace shows it: on one line, a body as "{N bytes}". */
static void
trace_response(imap_session *s)
{
	const char *raw;
	size_t len = imap_parser_raw(s->parser, &raw), i, o = 0;
	char line[4096];

	if (s->trace == NULL)
		return;
	for (i = 0; i < len && o + 8 < sizeof(line); i++) {
		unsigned char c = (unsigned char)raw[i];

		if (c == '\0' && o > 0 && line[o - 1] == '}') {
			memcpy(line + o - 1, " bytes}", 7);
			o += 6;
			continue;
		}
		line[o++] = c == '\n' ? ' ' : c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	imap_trace(s, 'S', line, o);
}

imap_status
imap_read(imap_session *s, const char *label, const imap_response **r_r, char **err_r)
{
	char *nerr = NULL;

	for (;;) {
		const char *data, *chunk = NULL;
		size_t n = net_peek(s->conn, &data), used = 0, clen = 0;
		imap_parse_event ev = IMAP_P_MORE;

		if (n > 0) {
			ev = imap_parser_feed(s->parser, data, n, &used, &chunk, &clen);
			if (ev == IMAP_P_BODY)
				sink_chunk(s, chunk, clen);
			net_consume(s->conn, used);
		}
		if (ev == IMAP_P_RESPONSE) {
			sink_end(s);
			*r_r = imap_parser_response(s->parser);
			trace_response(s);
			return IMAP_OK;
		}
		if (ev == IMAP_P_ERROR)
			return imap_fail(s, IMAP_EPROTO, err_r, "%s: bad response from the server: %s",
					 label, imap_parser_error(s->parser));
		if (ev == IMAP_P_BODY)
			continue;
		if (net_read_more(s->conn, &nerr) < 0)
			return imap_net_fail(s, IMAP_EIO, label, nerr, err_r);
	}
}

int
imap_set_capa(imap_session *s, const char *text, size_t len)
{
	size_t i;

	s->capa.len = 0;
	if (buf_append(&s->capa, " ", 1) < 0)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		c = c >= 'a' && c <= 'z' ? (unsigned char)(c - 32) : c < 0x21 || c > 0x7e ? ' ' : c;
		if (buf_append(&s->capa, &c, 1) < 0)
			return -1;
	}
	if (buf_append(&s->capa, " ", 1) < 0)
		return -1;
	s->capa_known = 1;
	return 0;
}

void
imap_note_code(imap_session *s, const imap_response *r)
{
	if (r->code_len == 10 && strncasecmp(r->code, "CAPABILITY", 10) == 0)
		(void)imap_set_capa(s, r->code_arg, r->code_arg_len);
	else if (r->code_len == 5 && strncasecmp(r->code, "ALERT", 5) == 0)
		imap_quote(s->alert, r->text, r->text_len);
}

imap_status
imap_untagged(imap_session *s, const char *label, const imap_response *r, char **err_r)
{
	char q[ERR_QUOTE_MAX + 4];

	if (r->cond != IMAP_C_NONE) {
		imap_note_code(s, r);
		if (r->cond == IMAP_C_BYE) {
			s->ctr.bye = 1;
			if (!s->logging_out) {
				imap_quote(q, r->text, r->text_len);
				return imap_fail(s, IMAP_EIO, err_r, "%s: the server said BYE: %s",
						 label, q);
			}
		}
		return IMAP_OK;
	}
	if (r->name_len == 10 && strncasecmp(r->name, "CAPABILITY", 10) == 0) {
		const char *raw, *after = r->name + r->name_len;
		size_t len = imap_parser_raw(s->parser, &raw);

		/* the rest of the line is the list (as the tokens were, before unquoting) */
		if (imap_set_capa(s, after, len - (size_t)(after - raw)) < 0)
			return imap_fail(s, IMAP_EIO, err_r, "%s: out of memory", label);
		return IMAP_OK;
	}
	if (!r->has_number)
		return IMAP_OK;
	if (r->name_len == 6 && strncasecmp(r->name, "EXISTS", 6) == 0) {
		s->ctr.exists = r->number;
		s->ctr.exists_known = 1;
		s->ctr.n_exists++;
	} else if (r->name_len == 6 && strncasecmp(r->name, "RECENT", 6) == 0) {
		s->ctr.recent = r->number;
	} else if (r->name_len == 7 && strncasecmp(r->name, "EXPUNGE", 7) == 0) {
		s->ctr.n_expunge++;
		if (s->ctr.exists > 0)
			s->ctr.exists--;
	} else if (r->name_len == 5 && strncasecmp(r->name, "FETCH", 5) == 0) {
		size_t i;

		s->ctr.n_fetch++;
		for (i = 0; i < r->n_toks; i++)
			if (r->toks[i].type == IMAP_T_BODY)
				s->ctr.n_dropped++;
	}
	return IMAP_OK;
}

imap_status
imap_tagged_status(imap_session *s, const char *label, const imap_response *r, char **err_r)
{
	char q[ERR_QUOTE_MAX + 4];
	size_t n;

	imap_note_code(s, r);
	if (r->cond == IMAP_C_OK)
		return IMAP_OK;
	n = r->code_len < sizeof(s->last_code) - 1 ? r->code_len : sizeof(s->last_code) - 1;
	memcpy(s->last_code, r->code, n);
	s->last_code[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s->last_code[i] < 0x21 || (unsigned char)s->last_code[i] > 0x7e)
			s->last_code[i] = '?';
	imap_quote(q, r->text, r->text_len);
	if (r->cond == IMAP_C_NO)
		return imap_fail(s, IMAP_ENO, err_r, "%s: NO %s%s%s%s", label, n ? "[" : "",
				 s->last_code, n ? "] " : "", q);
	return imap_fail(s, IMAP_EBAD, err_r, "%s: BAD %s%s%s%s", label, n ? "[" : "",
			 s->last_code, n ? "] " : "", q);
}

imap_status
imap_wait(imap_session *s, const char *label, const char *tag, imap_untagged_fn *fn, void *arg,
	  const imap_response **r_r, char **err_r)
{
	const imap_response *r;
	imap_status st;
	char q[ERR_QUOTE_MAX + 4];

	for (;;) {
		if ((st = imap_read(s, label, &r, err_r)) != IMAP_OK)
			return st;
		if (r->kind == IMAP_R_UNTAGGED) {
			int took = 0;

			st = IMAP_OK;
			if (fn != NULL && (took = fn(s, r, arg, &st, err_r)) < 0)
				return st;
			if (!took && (st = imap_untagged(s, label, r, err_r)) != IMAP_OK)
				return st;
			continue;
		}
		if (r->kind == IMAP_R_CONTINUE)
			return imap_fail(s, IMAP_EPROTO, err_r, "%s: unexpected continuation request",
					 label);
		if (r->tag_len != strlen(tag) || memcmp(r->tag, tag, r->tag_len) != 0) {
			imap_quote(q, r->tag, r->tag_len);
			return imap_fail(s, IMAP_EPROTO, err_r, "%s: answer with unknown tag \"%s\"",
					 label, q);
		}
		if (r_r != NULL)
			*r_r = r;
		return imap_tagged_status(s, label, r, err_r);
	}
}

imap_status
imap_simple(imap_session *s, const char *label, int need_auth, const char *args,
	    imap_untagged_fn *fn, void *arg, char **err_r)
{
	char tag[16];
	imap_status st;

	if ((st = imap_begin(s, label, need_auth, err_r)) != IMAP_OK)
		return st;
	imap_next_tag(s, tag);
	if ((st = imap_send(s, label, tag, args, NULL, 1, err_r)) != IMAP_OK)
		return st;
	return imap_wait(s, label, tag, fn, arg, NULL, err_r);
}

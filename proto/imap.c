/* mailmill - ISC licence, see LICENSE */
/*
 * The IMAP session: connecting, the greeting, CAPABILITY and STARTTLS, and
 * the wire every command uses (tags, reading responses through the
 * parser, untagged responses into the counters).  Logging in is
 * imap_auth.c, mailbox verbs and changes imap_cmd.c, listing and fetching
 * imap_fetch.c, IDLE imap_idle.c, the parser imap_parse.c.
 *
 * Any failure that may leave unread bytes on the wire (I/O, protocol, TLS)
 * marks the session broken: a later verb would otherwise read the tail of
 * an old answer as its own.
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

const char *
imap_status_name(imap_status st)
{
	static const char *const names[] = {
		"IMAP_OK", "IMAP_ENO", "IMAP_EBAD", "IMAP_EIO", "IMAP_EPROTO", "IMAP_ETLS",
		"IMAP_EAUTH", "IMAP_ETOOBIG", "IMAP_EUSAGE", "IMAP_EGONE"
	};

	return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "IMAP_?";
}

int
imap_code_is_temporary(const char *code)
{
	static const char *const temp[] = {
		"UNAVAILABLE", "INUSE", "LIMIT", "SERVERBUG", "OVERQUOTA", "EXPUNGEISSUED",
		"CORRUPTION", NULL
	};
	size_t i;

	for (i = 0; code != NULL && temp[i] != NULL; i++)
		if (strcasecmp(code, temp[i]) == 0)
			return 1;
	return 0;
}

imap_status
imap_begin(imap_session *s, const char *label, int need_auth, char **err_r)
{
	if (s == NULL || s->broken || s->conn == NULL) {
		err_set(err_r, "%s: the session is no longer usable", label);
		return IMAP_EUSAGE;
	}
	if (s->pipe_n > 0)
		return imap_fail(s, IMAP_EUSAGE, err_r, "%s: fetches are still in flight", label);
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

/* A body chunk: into the sink while it takes it, else dropped. */
static void
sink_chunk(imap_session *s, const char *data, size_t len)
{
	s->sink_got += len;
	if (s->sink == NULL || s->sink_full)
		return;
	if (buf_append(s->sink, data, len) < 0)
		s->sink_full = 1;
}

static void
trace_response(imap_session *s)
{
	const char *raw;
	size_t len = imap_parser_raw(s->parser, &raw), i;
	char line[4096];

	if (s->trace == NULL)
		return;
	if (len > sizeof(line))
		len = sizeof(line);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)raw[i];

		line[i] = c == '\n' ? ' ' : c == '\0' ? '~' : c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	imap_trace(s, 'S', line, len);
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
		const char *raw;
		size_t len = imap_parser_raw(s->parser, &raw);

		/* "* CAPABILITY " is 13 bytes; the rest is the list */
		if (len >= 13 && imap_set_capa(s, raw + 13, len - 13) < 0)
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

/* ------------------------------------------------------------ connect */

static imap_status
greeting(imap_session *s, const imap_options *opt, char **err_r)
{
	const imap_response *r;
	imap_status st;
	char q[ERR_QUOTE_MAX + 4];

	if ((st = imap_read(s, "greeting", &r, err_r)) != IMAP_OK)
		return st;
	if (r->kind != IMAP_R_UNTAGGED ||
	    (r->cond != IMAP_C_OK && r->cond != IMAP_C_PREAUTH && r->cond != IMAP_C_BYE)) {
		imap_quote(q, r->name, r->name_len);
		return imap_fail(s, IMAP_EPROTO, err_r, "greeting: not an IMAP greeting (\"%s\")", q);
	}
	imap_quote(q, r->text, r->text_len);
	if ((s->greeting = strdup(q)) == NULL)
		return imap_fail(s, IMAP_EIO, err_r, "greeting: out of memory");
	if (r->cond == IMAP_C_BYE)
		return imap_fail(s, IMAP_ENO, err_r, "greeting: BYE %s", q);
	imap_note_code(s, r);
	if (r->cond == IMAP_C_PREAUTH) {
		s->authenticated = 1;
		if (opt != NULL && opt->tls == IMAP_TLS_STARTTLS)
			return imap_fail(s, IMAP_ETLS, err_r, "greeting: PREAUTH where STARTTLS "
					 "was required (STARTTLS is impossible once authenticated)");
	}
	return IMAP_OK;
}

static imap_status
session_start(net_conn *c, const imap_options *opt, imap_trace_fn *fn, void *arg,
	      imap_session **s_r, char **err_r)
{
	imap_session *s;
	imap_parser_limits lim = { 0 };
	imap_status st;
	char *nerr = NULL;

	*s_r = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		net_close(&c);
		err_set(err_r, "IMAP: out of memory");
		return IMAP_EIO;
	}
	s->conn = c;
	s->trace = fn;
	s->trace_arg = arg;
	s->command_timeout_ms = opt != NULL && opt->command_timeout_ms > 0 ?
		opt->command_timeout_ms : 60000;
	s->capa.max = IMAP_CAPA_MAX;
	if (opt != NULL) {
		lim.max_line = opt->max_line;
		lim.max_literal = opt->max_literal;
	}
	if ((s->parser = imap_parser_new(&lim)) == NULL ||
	    (opt != NULL && ((opt->host != NULL && (s->host = strdup(opt->host)) == NULL) ||
			     (opt->port != NULL && (s->port = strdup(opt->port)) == NULL) ||
			     (opt->ca_file != NULL && (s->ca_file = strdup(opt->ca_file)) == NULL)))) {
		st = imap_fail(s, IMAP_EIO, err_r, "IMAP: out of memory");
		goto out;
	}
	net_deadline(c, s->command_timeout_ms);
	if (opt != NULL && opt->tls == IMAP_TLS_IMPLICIT &&
	    net_starttls(c, s->host, s->ca_file, &nerr) < 0) {
		st = imap_net_fail(s, IMAP_ETLS, "IMAPS", nerr, err_r);
		goto out;
	}
	if ((st = greeting(s, opt, err_r)) != IMAP_OK)
		goto out;
	if (!s->capa_known && (st = imap_capability(s, err_r)) != IMAP_OK)
		goto out;
	if (opt != NULL && opt->tls == IMAP_TLS_STARTTLS && (st = imap_starttls(s, err_r)) != IMAP_OK)
		goto out;
	*s_r = s;
	return IMAP_OK;
out:
	imap_close(&s);
	return st;
}

imap_status
imap_connect_trace(const imap_options *opt, imap_trace_fn *fn, void *arg, imap_session **s_r,
		   char **err_r)
{
	net_conn *c;
	char *nerr = NULL;

	*s_r = NULL;
	if (opt == NULL || opt->host == NULL || opt->port == NULL) {
		err_set(err_r, "IMAP: no host or port");
		return IMAP_EUSAGE;
	}
	if (net_connect(opt->host, opt->port, opt->connect_timeout_ms > 0 ?
			opt->connect_timeout_ms : 30000, IMAP_NET_LINE, &c, &nerr) < 0) {
		err_set(err_r, "%s", nerr != NULL ? nerr : "cannot connect: out of memory");
		free(nerr);
		return IMAP_EIO;
	}
	return session_start(c, opt, fn, arg, s_r, err_r);
}

imap_status
imap_connect(const imap_options *opt, imap_session **s_r, char **err_r)
{
	return imap_connect_trace(opt, NULL, NULL, s_r, err_r);
}

imap_status
imap_from_fd_trace(int fd, const imap_options *opt, imap_trace_fn *fn, void *arg,
		   imap_session **s_r, char **err_r)
{
	net_conn *c;
	char *nerr = NULL;

	*s_r = NULL;
	if (net_from_fd(fd, IMAP_NET_LINE, &c, &nerr) < 0) {
		err_set(err_r, "IMAP: %s", nerr != NULL ? nerr : "cannot use the socket");
		free(nerr);
		return IMAP_EIO;
	}
	return session_start(c, opt, fn, arg, s_r, err_r);
}

imap_status
imap_from_fd(int fd, const imap_options *opt, imap_session **s_r, char **err_r)
{
	return imap_from_fd_trace(fd, opt, NULL, NULL, s_r, err_r);
}

void
imap_close(imap_session **sp)
{
	imap_session *s = *sp;

	if (s == NULL)
		return;
	net_close(&s->conn);
	imap_parser_free(&s->parser);
	free(s->host);
	free(s->port);
	free(s->ca_file);
	free(s->greeting);
	free(s->selected);
	free(s->idle_tag);
	buf_free(&s->capa);
	free(s);
	*sp = NULL;
}

imap_status
imap_capability(imap_session *s, char **err_r)
{
	return imap_simple(s, "CAPABILITY", 0, "CAPABILITY", NULL, NULL, err_r);
}

imap_status
imap_starttls(imap_session *s, char **err_r)
{
	imap_status st;
	char *nerr = NULL;

	if ((st = imap_begin(s, "STARTTLS", 0, err_r)) != IMAP_OK)
		return st;
	if (net_is_tls(s->conn))
		return imap_fail(s, IMAP_EUSAGE, err_r, "STARTTLS: already TLS");
	if (s->authenticated)
		return imap_fail(s, IMAP_ETLS, err_r, "STARTTLS: impossible once authenticated");
	if (!imap_has_capa(s, "STARTTLS"))
		return imap_fail(s, IMAP_ETLS, err_r, "STARTTLS: the server does not offer "
				 "STARTTLS (refusing to continue without TLS)");
	st = imap_simple(s, "STARTTLS", 0, "STARTTLS", NULL, NULL, err_r);
	if (st == IMAP_ENO || st == IMAP_EBAD)
		return imap_fail(s, IMAP_ETLS, NULL, "%s", "STARTTLS refused");
	if (st != IMAP_OK)
		return st;
	/* Anything the parser holds or the socket has now is an injection. */
	if (imap_parser_busy(s->parser))
		return imap_fail(s, IMAP_ETLS, err_r, "STARTTLS: data injected before the "
				 "TLS handshake");
	if (net_starttls(s->conn, s->host, s->ca_file, &nerr) < 0)
		return imap_net_fail(s, IMAP_ETLS, "STARTTLS", nerr, err_r);
	/* Only what the server says over TLS counts. */
	s->capa_known = 0;
	s->capa.len = 0;
	return imap_capability(s, err_r);
}

void
imap_set_trace(imap_session *s, imap_trace_fn *fn, void *arg)
{
	s->trace = fn;
	s->trace_arg = arg;
}

const char *
imap_greeting(const imap_session *s)
{
	return s->greeting != NULL ? s->greeting : "";
}

int
imap_is_tls(const imap_session *s)
{
	return s->conn != NULL && net_is_tls(s->conn);
}

const char *
imap_tls_describe(const imap_session *s)
{
	return s->conn != NULL ? net_tls_describe(s->conn) : "";
}

const char *
imap_tls_cert(const imap_session *s)
{
	return s->conn != NULL ? net_tls_cert(s->conn) : "";
}

int
imap_is_authenticated(const imap_session *s)
{
	return s->authenticated;
}

const char *
imap_last_code(const imap_session *s)
{
	return s->last_code;
}

const char *
imap_alert(const imap_session *s)
{
	return s->alert;
}

const imap_counters *
imap_counters_get(const imap_session *s)
{
	return &s->ctr;
}

int
imap_has_capa(const imap_session *s, const char *name)
{
	size_t n = strlen(name), i;
	const char *c = s->capa.data;

	if (c == NULL || n == 0)
		return 0;
	for (i = 0; i + n + 1 < s->capa.len; i++)
		if (c[i] == ' ' && strncasecmp(c + i + 1, name, n) == 0 && c[i + 1 + n] == ' ')
			return 1;
	return 0;
}

int
imap_has_auth(const imap_session *s, const char *mech)
{
	char name[80];

	if (strlen(mech) > 70)
		return 0;
	snprintf(name, sizeof(name), "AUTH=%s", mech);
	return imap_has_capa(s, name);
}

size_t
imap_capa_text(const imap_session *s, char *out, size_t len)
{
	size_t n = s->capa.len > 2 ? s->capa.len - 2 : 0;

	if (len == 0)
		return 0;
	if (n >= len)
		n = len - 1;
	if (n > 0)
		memcpy(out, s->capa.data + 1, n);
	out[n] = '\0';
	return n;
}

imap_status
imap_noop(imap_session *s, char **err_r)
{
	return imap_simple(s, "NOOP", 0, "NOOP", NULL, NULL, err_r);
}

imap_status
imap_logout(imap_session *s, char **err_r)
{
	imap_status st;

	if ((st = imap_begin(s, "LOGOUT", 0, err_r)) != IMAP_OK)
		return st;
	s->logging_out = 1;
	st = imap_simple(s, "LOGOUT", 0, "LOGOUT", NULL, NULL, err_r);
	if (st == IMAP_EIO && s->ctr.bye && err_r != NULL) {
		/* some servers close after their BYE without the tagged OK */
		free(*err_r);
		*err_r = NULL;
		st = IMAP_OK;
	} else if (st == IMAP_EIO && s->ctr.bye) {
		st = IMAP_OK;
	}
	s->broken = 1; /* nothing more after LOGOUT */
	return st;
}

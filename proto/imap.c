/* mailmill - ISC licence, see LICENSE */
/*
 * The IMAP session: connecting, the greeting, CAPABILITY and STARTTLS, the
 * session's getters, NOOP and LOGOUT.  The wire every command uses is
 * imap_wire.c, logging in imap_auth.c, mailbox verbs and changes
 * imap_cmd.c, listing and fetching imap_fetch.c, IDLE imap_idle.c, the
 * parser imap_parse.c.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/imap.h"
#include "proto/imap_int.h"
#include "proto/net.h"

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
		s->lf_line_ends = opt->lf_line_ends;
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
	for (size_t i = 0; s->pipe != NULL && i < IMAP_PIPE_MAX; i++)
		buf_free(&s->pipe[i].body);
	free(s->pipe);
	free(s->pipe_hash);
	for (size_t i = 0; i < s->chg_n; i++)
		free(s->chg[i].err);
	free(s->chg);
	buf_free(&s->scratch);
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

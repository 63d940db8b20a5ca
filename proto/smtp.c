/* mailmill - ISC licence, see LICENSE */
/*
 * The SMTP session: one blocking call per verb over proto/net.  Connecting,
 * EHLO and its extensions, STARTTLS, RSET, NOOP, QUIT.  The wire helpers
 * are smtp_wire.c, AUTH smtp_auth.c, the mail transaction smtp_send.c,
 * reply parsing and the DATA encoder smtp_reply.c.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "proto/smtp_int.h"

/* ------------------------------------------------------------ session */

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

/* RFC 5321 4.1.3: a domain or an address literal, nothing that splits a line. */
static int
helo_valid(const char *h)
{
	size_t i, n = strlen(h);

	if (n == 0 || n > 255)
		return 0;
	for (i = 0; i < n; i++) {
		char c = h[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || c == '[' || c == ']' || c == ':' || c == '_'))
			return 0;
	}
	return 1;
}

static void
forget_ext(smtp_session *s)
{
	size_t i;

	for (i = 0; i < s->n_ext; i++)
		free(s->ext[i]);
	free(s->ext);
	s->ext = NULL;
	s->n_ext = 0;
}

static smtp_status
session_new(const smtp_options *opt, smtp_session **s_r, char **err_r)
{
	smtp_session *s;
	char name[256];

	*s_r = NULL;
	if (opt == NULL)
		return smtp_fail(NULL, SMTP_EUSAGE, err_r, "SMTP: no options");
	if (opt->tls != SMTP_TLS_NONE && (opt->host == NULL || *opt->host == '\0'))
		return smtp_fail(NULL, SMTP_EUSAGE, err_r, "SMTP: TLS needs a host name to verify");
	if (opt->helo != NULL) {
		if (!helo_valid(opt->helo))
			return smtp_fail(NULL, SMTP_EUSAGE, err_r, "SMTP: invalid HELO name");
		snprintf(name, sizeof(name), "%s", opt->helo);
	} else if (gethostname(name, sizeof(name)) < 0 || (name[sizeof(name) - 1] = '\0',
							   !helo_valid(name))) {
		snprintf(name, sizeof(name), "localhost");
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return smtp_fail(NULL, SMTP_EUSAGE, err_r, "SMTP: out of memory");
	s->tls = opt->tls;
	s->connect_timeout_ms = opt->connect_timeout_ms > 0 ? opt->connect_timeout_ms : 30000;
	s->command_timeout_ms = opt->command_timeout_ms > 0 ? opt->command_timeout_ms : 300000;
	s->data_end_timeout_ms = opt->data_end_timeout_ms > 0 ? opt->data_end_timeout_ms : 600000;
	s->max_line = opt->max_line > 0 ? opt->max_line : 2048;
	s->allow_plaintext_auth = opt->allow_plaintext_auth;
	s->host = dup_or_null(opt->host);
	s->port = dup_or_null(opt->port);
	s->ca_file = dup_or_null(opt->ca_file);
	s->helo = strdup(name);
	if ((opt->host != NULL && s->host == NULL) || (opt->ca_file != NULL && s->ca_file == NULL) ||
	    (opt->port != NULL && s->port == NULL) ||
	    s->helo == NULL || smtp_reply_parser_init(&s->parser, s->max_line, 0) < 0) {
		smtp_close(&s);
		return smtp_fail(NULL, SMTP_EUSAGE, err_r, "SMTP: out of memory");
	}
	*s_r = s;
	return SMTP_OK;
}

/* Implicit TLS, greeting, EHLO, STARTTLS: everything after the TCP connect. */
static smtp_status
session_start(smtp_session *s, char **err_r)
{
	char *neterr = NULL;
	smtp_status st;

	net_deadline(s->conn, s->command_timeout_ms);
	if (s->tls == SMTP_TLS_IMPLICIT && net_starttls(s->conn, s->host, s->ca_file, &neterr) < 0)
		return smtp_fail_net(s, SMTP_ETLS, err_r, "SMTP: TLS", neterr);
	if ((st = smtp_read_reply(s, err_r)) != SMTP_OK)
		return st;
	if ((st = smtp_classify(s, 2, err_r, "SMTP: greeting")) != SMTP_OK)
		return st;
	if (s->last.code != 220)
		return smtp_fail_reply(s, SMTP_EPROTO, err_r, "SMTP: greeting");
	s->greeting = strdup(s->last.text);
	if (s->greeting == NULL)
		return smtp_fail(s, SMTP_EIO, err_r, "SMTP: out of memory");
	if ((st = smtp_ehlo(s, err_r)) != SMTP_OK)
		return st;
	if (s->tls == SMTP_TLS_STARTTLS)
		return smtp_starttls(s, err_r);
	return SMTP_OK;
}

smtp_status
smtp_connect(const smtp_options *opt, smtp_session **s_r, char **err_r)
{
	smtp_session *s;
	char *neterr = NULL;
	smtp_status st;

	if ((st = session_new(opt, &s, err_r)) != SMTP_OK)
		return st;
	if (opt->host == NULL || opt->port == NULL) {
		smtp_close(&s);
		return smtp_fail(NULL, SMTP_EUSAGE, err_r, "SMTP: host and port are required");
	}
	if (net_connect(opt->host, opt->port, s->connect_timeout_ms, s->max_line, &s->conn,
			&neterr) < 0) {
		smtp_close(&s);
		return smtp_fail_net(NULL, SMTP_EIO, err_r, "SMTP: connect", neterr);
	}
	if ((st = session_start(s, err_r)) != SMTP_OK) {
		smtp_close(&s);
		return st;
	}
	*s_r = s;
	return SMTP_OK;
}

smtp_status
smtp_from_fd(int fd, const smtp_options *opt, smtp_session **s_r, char **err_r)
{
	smtp_session *s;
	char *neterr = NULL;
	smtp_status st;

	if ((st = session_new(opt, &s, err_r)) != SMTP_OK) {
		close(fd);
		return st;
	}
	if (net_from_fd(fd, s->max_line, &s->conn, &neterr) < 0) {
		smtp_close(&s);
		return smtp_fail_net(NULL, SMTP_EIO, err_r, "SMTP", neterr);
	}
	if ((st = session_start(s, err_r)) != SMTP_OK) {
		smtp_close(&s);
		return st;
	}
	*s_r = s;
	return SMTP_OK;
}

void
smtp_close(smtp_session **sp)
{
	smtp_session *s = *sp;

	if (s == NULL)
		return;
	if (s->conn != NULL)
		net_close(&s->conn);
	forget_ext(s);
	smtp_reply_parser_free(&s->parser);
	smtp_reply_clear(&s->last);
	free(s->greeting);
	free(s->host);
	free(s->port);
	free(s->ca_file);
	free(s->helo);
	free(s);
	*sp = NULL;
}

int
smtp_usable(const smtp_session *s)
{
	return s != NULL && s->conn != NULL && !s->broken;
}

void
smtp_set_trace(smtp_session *s, smtp_trace_fn *fn, void *arg)
{
	s->trace = fn;
	s->trace_arg = arg;
}

const smtp_reply *
smtp_last_reply(const smtp_session *s)
{
	return &s->last;
}

const char *
smtp_greeting(const smtp_session *s)
{
	return s->greeting != NULL ? s->greeting : "";
}

int
smtp_is_tls(const smtp_session *s)
{
	return s->conn != NULL && net_is_tls(s->conn);
}

const char *
smtp_tls_describe(const smtp_session *s)
{
	return s->conn != NULL ? net_tls_describe(s->conn) : "";
}

/* ------------------------------------------------------------ EHLO */

static int
keyword_valid(const char *k, size_t n)
{
	size_t i;

	if (n == 0 || n > 64)
		return 0;
	for (i = 0; i < n; i++) {
		char c = k[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      (c == '-' && i > 0)))
			return 0;
	}
	return 1;
}

/* Keep "KEYWORD params" for every valid line after the first (the domain). */
static smtp_status
learn_ext(smtp_session *s, char **err_r)
{
	const char *p = s->last.text, *nl;
	size_t n = 0, cap = s->last.nlines;

	forget_ext(s);
	if (cap == 0 || (nl = strchr(p, '\n')) == NULL)
		return SMTP_OK;
	s->ext = calloc(cap, sizeof(*s->ext));
	if (s->ext == NULL)
		return smtp_fail(s, SMTP_EIO, err_r, "SMTP: out of memory");
	for (p = nl + 1; p != NULL && n < cap; p = nl != NULL ? nl + 1 : NULL) {
		size_t len, klen;

		nl = strchr(p, '\n');
		len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		klen = strcspn(p, " \n");
		if (klen > len)
			klen = len;
		if (!keyword_valid(p, klen))
			continue;
		s->ext[n] = strndup(p, len);
		if (s->ext[n] == NULL)
			return smtp_fail(s, SMTP_EIO, err_r, "SMTP: out of memory");
		n++;
		s->n_ext = n;
	}
	return SMTP_OK;
}

smtp_status
smtp_helo(smtp_session *s, char **err_r)
{
	char line[300];
	smtp_status st;

	if ((st = smtp_check_usable(s, err_r)) != SMTP_OK)
		return st;
	forget_ext(s);
	snprintf(line, sizeof(line), "HELO %s", s->helo);
	return smtp_command(s, line, NULL, 2, "SMTP: HELO", err_r);
}

smtp_status
smtp_ehlo(smtp_session *s, char **err_r)
{
	char line[300], *e = NULL;
	smtp_status st;

	if ((st = smtp_check_usable(s, err_r)) != SMTP_OK)
		return st;
	forget_ext(s);
	snprintf(line, sizeof(line), "EHLO %s", s->helo);
	st = smtp_command(s, line, NULL, 2, "SMTP: EHLO", &e);
	/* an old server that does not know EHLO: RFC 5321 4.1.4 */
	if (st == SMTP_EPERM && !s->broken) {
		free(e);
		return smtp_helo(s, err_r);
	}
	if (st != SMTP_OK) {
		if (err_r != NULL)
			*err_r = e;
		else
			free(e);
		return st;
	}
	return learn_ext(s, err_r);
}

const char *
smtp_ext_param(const smtp_session *s, const char *name)
{
	size_t i, n = strlen(name);

	for (i = 0; i < s->n_ext; i++) {
		const char *e = s->ext[i];

		if (strncasecmp(e, name, n) == 0 && (e[n] == '\0' || e[n] == ' '))
			return e[n] == ' ' ? e + n + 1 : e + n;
	}
	return NULL;
}

int
smtp_has_ext(const smtp_session *s, const char *name)
{
	return smtp_ext_param(s, name) != NULL;
}

unsigned long long
smtp_max_size(const smtp_session *s)
{
	const char *p = smtp_ext_param(s, "SIZE");
	unsigned long long v = 0;

	if (p == NULL)
		return 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (~0ULL - d) / 10)
			return 0; /* nonsense: behave as if there were no limit */
		v = v * 10 + d;
	}
	return v;
}

int
smtp_has_auth(const smtp_session *s, const char *mech)
{
	const char *p = smtp_ext_param(s, "AUTH");
	size_t n = strlen(mech);

	while (p != NULL && *p != '\0') {
		size_t w;

		p += strspn(p, " ");
		w = strcspn(p, " ");
		if (w == n && w > 0 && strncasecmp(p, mech, n) == 0)
			return 1;
		p += w;
	}
	return 0;
}

/* ------------------------------------------------------------ STARTTLS, small verbs */

smtp_status
smtp_starttls(smtp_session *s, char **err_r)
{
	char *neterr = NULL;
	smtp_status st;

	if ((st = smtp_check_usable(s, err_r)) != SMTP_OK)
		return st;
	if (net_is_tls(s->conn))
		return smtp_fail(s, SMTP_EUSAGE, err_r, "SMTP: TLS is already active");
	if (s->host == NULL)
		return smtp_fail(s, SMTP_EUSAGE, err_r, "SMTP: STARTTLS needs a host name to verify");
	if (!smtp_has_ext(s, "STARTTLS"))
		return smtp_fail(s, SMTP_ETLS, err_r,
				 "SMTP: the server does not offer STARTTLS; refusing to go on in plain text");
	st = smtp_command(s, "STARTTLS", NULL, 2, "SMTP: STARTTLS", err_r);
	if (st == SMTP_ETEMP || st == SMTP_EPERM) {
		s->broken = 1; /* never fall back to plain text */
		return SMTP_ETLS;
	}
	if (st != SMTP_OK)
		return st;
	/* What the server said in plain text no longer counts (RFC 3207 4.2). */
	forget_ext(s);
	if (net_pending(s->conn) > 0)
		return smtp_fail(s, SMTP_ETLS, err_r, "SMTP: the server sent plain text after its "
				 "STARTTLS go-ahead: possible injection attack, connection dropped");
	net_deadline(s->conn, s->command_timeout_ms);
	if (net_starttls(s->conn, s->host, s->ca_file, &neterr) < 0)
		return smtp_fail_net(s, SMTP_ETLS, err_r, "SMTP: STARTTLS", neterr);
	return smtp_ehlo(s, err_r);
}

/* ------------------------------------------------------------ small verbs */

smtp_status
smtp_rset(smtp_session *s, char **err_r)
{
	smtp_status st;

	if ((st = smtp_check_usable(s, err_r)) != SMTP_OK)
		return st;
	return smtp_command(s, "RSET", NULL, 2, "SMTP: RSET", err_r);
}

smtp_status
smtp_noop(smtp_session *s, char **err_r)
{
	smtp_status st;

	if ((st = smtp_check_usable(s, err_r)) != SMTP_OK)
		return st;
	return smtp_command(s, "NOOP", NULL, 2, "SMTP: NOOP", err_r);
}

smtp_status
smtp_quit(smtp_session *s, char **err_r)
{
	smtp_status st;

	if ((st = smtp_check_usable(s, err_r)) != SMTP_OK)
		return st;
	st = smtp_command(s, "QUIT", NULL, 2, "SMTP: QUIT", err_r);
	s->broken = 1; /* nothing may follow QUIT */
	return st;
}

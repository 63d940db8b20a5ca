/* mailmill - ISC licence, see LICENSE */
/*
 * The SMTP session: one blocking call per verb over proto/net.  Parsing and
 * the DATA encoder live in smtp_reply.c.  Any failure that may leave unread
 * bytes on the wire (I/O, protocol, TLS, a 421) marks the session broken: a
 * later verb would otherwise read the tail of an old reply as its own.
 */
#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "proto/b64.h"
#include "proto/err.h"
#include "proto/net.h"
#include "proto/sasl.h"
#include "proto/smtp.h"

/* Server text quoted in an error message. */
#define QUOTE_MAX ERR_QUOTE_MAX
/* RFC 5321 4.5.3.1: paths up to 256 octets; some slack for odd servers. */
#define ADDR_MAX 1000
#define PARAM_MAX 500
/* RFC 5321 4.5.3.1.4: a command line, CRLF included (RFC 4954 4. for AUTH). */
#define SMTP_CMD_LINE_MAX 512
/* Commands in flight with PIPELINING: bounded so that neither side's socket
 * buffer can fill with unread replies while the other blocks writing. */
#define PIPE_WINDOW 64
/* The data deadline is renewed after this many bytes (RFC 5321 4.5.3.2.5). */
#define DATA_BLOCK 65536

struct smtp_session {
	net_conn *conn;
	char *host, *port, *ca_file, *helo; /* port: for OAUTHBEARER */
	smtp_tls_mode tls;
	int connect_timeout_ms, command_timeout_ms, data_end_timeout_ms;
	size_t max_line;
	int allow_plaintext_auth;
	smtp_reply_parser parser;
	smtp_trace_fn *trace;
	void *trace_arg;
	char *greeting;
	smtp_reply last;
	char **ext;        /* EHLO lines after the first, "KEYWORD params" */
	size_t n_ext;
	int broken;
};

static int
is_fatal(smtp_status st)
{
	return st == SMTP_EIO || st == SMTP_EUNKNOWN || st == SMTP_EPROTO || st == SMTP_ETLS;
}

static smtp_status fail(smtp_session *s, smtp_status st, char **err_r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static smtp_status
fail(smtp_session *s, smtp_status st, char **err_r, const char *fmt, ...)
{
	va_list ap;

	if (s != NULL && is_fatal(st))
		s->broken = 1;
	va_start(ap, fmt);
	err_vset(err_r, fmt, ap);
	va_end(ap);
	return st;
}

/* A net error: the connection is gone; its message is taken over. */
static smtp_status
fail_net(smtp_session *s, smtp_status st, char **err_r, const char *what, char *neterr)
{
	st = fail(s, st, err_r, "%s: %s", what, neterr != NULL ? neterr : "connection failed");
	free(neterr);
	return st;
}

/* "550 5.1.1 text" of the last reply, for error messages. */
static smtp_status
fail_reply(smtp_session *s, smtp_status st, char **err_r, const char *what)
{
	char q[QUOTE_MAX + 4];

	err_quote(q, s->last.text != NULL ? s->last.text : "",
		  s->last.text != NULL ? strlen(s->last.text) : 0);
	return fail(s, st, err_r, "%s: server replied %d%s%s %s", what, s->last.code,
		    s->last.enhanced[0] != '\0' ? " " : "", s->last.enhanced, q);
}

static void
trace(smtp_session *s, char dir, const char *line, size_t len)
{
	if (s->trace != NULL)
		s->trace(s->trace_arg, dir, line, len);
}

const char *
smtp_status_name(smtp_status st)
{
	switch (st) {
	case SMTP_OK: return "ok";
	case SMTP_ETEMP: return "temporary failure";
	case SMTP_EPERM: return "permanent failure";
	case SMTP_EIO: return "connection failure";
	case SMTP_EUNKNOWN: return "outcome unknown";
	case SMTP_EPROTO: return "protocol error";
	case SMTP_ETLS: return "TLS failure";
	case SMTP_EAUTH: return "authentication refused";
	case SMTP_ETOOBIG: return "message too big";
	case SMTP_EUSAGE: return "usage error";
	}
	return "unknown status";
}

int
smtp_status_is_temporary(smtp_status st)
{
	return st == SMTP_ETEMP || st == SMTP_EIO || st == SMTP_EUNKNOWN || st == SMTP_ETLS;
}

/* ------------------------------------------------------------ wire */

static smtp_status
check_usable(smtp_session *s, char **err_r)
{
	if (s == NULL || s->conn == NULL)
		return fail(NULL, SMTP_EUSAGE, err_r, "SMTP: no session");
	if (s->broken)
		return fail(s, SMTP_EIO, err_r, "SMTP: session unusable after an earlier failure");
	return SMTP_OK;
}

/*
 * Queue one command line.  shown is what the trace sees (NULL: the line
 * itself), so that AUTH data never reaches it.
 */
static smtp_status
send_line(smtp_session *s, const char *line, const char *shown, char **err_r)
{
	char *neterr = NULL;

	trace(s, 'C', shown != NULL ? shown : line, strlen(shown != NULL ? shown : line));
	if (net_write(s->conn, line, strlen(line), &neterr) < 0 ||
	    net_write(s->conn, "\r\n", 2, &neterr) < 0)
		return fail_net(s, SMTP_EIO, err_r, "SMTP: sending a command", neterr);
	return SMTP_OK;
}

static smtp_status
flush(smtp_session *s, char **err_r)
{
	char *neterr = NULL;

	if (net_flush(s->conn, &neterr) < 0)
		return fail_net(s, SMTP_EIO, err_r, "SMTP: sending", neterr);
	return SMTP_OK;
}

/* Read one whole reply into s->last (within the deadline already set). */
static smtp_status
read_reply(smtp_session *s, char **err_r)
{
	smtp_reply r;
	const char *line, *why;
	size_t len;
	char *neterr = NULL;
	int res;

	for (;;) {
		if (net_getline(s->conn, &line, &len, &neterr) < 0)
			return fail_net(s, SMTP_EIO, err_r, "SMTP: reading a reply", neterr);
		trace(s, 'S', line, len);
		res = smtp_reply_parse_line(&s->parser, line, len, &r, &why);
		if (res < 0)
			return fail(s, SMTP_EPROTO, err_r, "SMTP: bad reply from the server: %s", why);
		if (res > 0)
			break;
	}
	smtp_reply_clear(&s->last);
	s->last = r;
	/* 421: the server is closing the channel (RFC 5321 3.8) */
	if (r.code == 421)
		s->broken = 1;
	return SMTP_OK;
}

/* The class of the last reply as a status; want is the expected first digit. */
static smtp_status
classify(smtp_session *s, int want, char **err_r, const char *what)
{
	int cls = s->last.code / 100;

	if (cls == want)
		return SMTP_OK;
	if (cls == 4)
		return fail_reply(s, SMTP_ETEMP, err_r, what);
	if (cls == 5)
		return fail_reply(s, SMTP_EPERM, err_r, what);
	return fail_reply(s, SMTP_EPROTO, err_r, what);
}

/* Send, read the reply, classify: the usual one-command exchange. */
static smtp_status
command(smtp_session *s, const char *line, const char *shown, int want, const char *what,
	char **err_r)
{
	smtp_status st;

	net_deadline(s->conn, s->command_timeout_ms);
	if ((st = send_line(s, line, shown, err_r)) != SMTP_OK ||
	    (st = flush(s, err_r)) != SMTP_OK ||
	    (st = read_reply(s, err_r)) != SMTP_OK)
		return st;
	return classify(s, want, err_r, what);
}

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
		return fail(NULL, SMTP_EUSAGE, err_r, "SMTP: no options");
	if (opt->tls != SMTP_TLS_NONE && (opt->host == NULL || *opt->host == '\0'))
		return fail(NULL, SMTP_EUSAGE, err_r, "SMTP: TLS needs a host name to verify");
	if (opt->helo != NULL) {
		if (!helo_valid(opt->helo))
			return fail(NULL, SMTP_EUSAGE, err_r, "SMTP: invalid HELO name");
		snprintf(name, sizeof(name), "%s", opt->helo);
	} else if (gethostname(name, sizeof(name)) < 0 || (name[sizeof(name) - 1] = '\0',
							   !helo_valid(name))) {
		snprintf(name, sizeof(name), "localhost");
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return fail(NULL, SMTP_EUSAGE, err_r, "SMTP: out of memory");
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
		return fail(NULL, SMTP_EUSAGE, err_r, "SMTP: out of memory");
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
		return fail_net(s, SMTP_ETLS, err_r, "SMTP: TLS", neterr);
	if ((st = read_reply(s, err_r)) != SMTP_OK)
		return st;
	if ((st = classify(s, 2, err_r, "SMTP: greeting")) != SMTP_OK)
		return st;
	if (s->last.code != 220)
		return fail_reply(s, SMTP_EPROTO, err_r, "SMTP: greeting");
	s->greeting = strdup(s->last.text);
	if (s->greeting == NULL)
		return fail(s, SMTP_EIO, err_r, "SMTP: out of memory");
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
		return fail(NULL, SMTP_EUSAGE, err_r, "SMTP: host and port are required");
	}
	if (net_connect(opt->host, opt->port, s->connect_timeout_ms, s->max_line, &s->conn,
			&neterr) < 0) {
		smtp_close(&s);
		return fail_net(NULL, SMTP_EIO, err_r, "SMTP: connect", neterr);
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
		return fail_net(NULL, SMTP_EIO, err_r, "SMTP", neterr);
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
		return fail(s, SMTP_EIO, err_r, "SMTP: out of memory");
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
			return fail(s, SMTP_EIO, err_r, "SMTP: out of memory");
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

	if ((st = check_usable(s, err_r)) != SMTP_OK)
		return st;
	forget_ext(s);
	snprintf(line, sizeof(line), "HELO %s", s->helo);
	return command(s, line, NULL, 2, "SMTP: HELO", err_r);
}

smtp_status
smtp_ehlo(smtp_session *s, char **err_r)
{
	char line[300], *e = NULL;
	smtp_status st;

	if ((st = check_usable(s, err_r)) != SMTP_OK)
		return st;
	forget_ext(s);
	snprintf(line, sizeof(line), "EHLO %s", s->helo);
	st = command(s, line, NULL, 2, "SMTP: EHLO", &e);
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

/* ------------------------------------------------------------ STARTTLS, AUTH */

smtp_status
smtp_starttls(smtp_session *s, char **err_r)
{
	char *neterr = NULL;
	smtp_status st;

	if ((st = check_usable(s, err_r)) != SMTP_OK)
		return st;
	if (net_is_tls(s->conn))
		return fail(s, SMTP_EUSAGE, err_r, "SMTP: TLS is already active");
	if (s->host == NULL)
		return fail(s, SMTP_EUSAGE, err_r, "SMTP: STARTTLS needs a host name to verify");
	if (!smtp_has_ext(s, "STARTTLS"))
		return fail(s, SMTP_ETLS, err_r,
			    "SMTP: the server does not offer STARTTLS; refusing to go on in plain text");
	st = command(s, "STARTTLS", NULL, 2, "SMTP: STARTTLS", err_r);
	if (st == SMTP_ETEMP || st == SMTP_EPERM) {
		s->broken = 1; /* never fall back to plain text */
		return SMTP_ETLS;
	}
	if (st != SMTP_OK)
		return st;
	/* What the server said in plain text no longer counts (RFC 3207 4.2). */
	forget_ext(s);
	if (net_pending(s->conn) > 0)
		return fail(s, SMTP_ETLS, err_r, "SMTP: the server sent plain text after its "
			    "STARTTLS go-ahead: possible injection attack, connection dropped");
	net_deadline(s->conn, s->command_timeout_ms);
	if (net_starttls(s->conn, s->host, s->ca_file, &neterr) < 0)
		return fail_net(s, SMTP_ETLS, err_r, "SMTP: STARTTLS", neterr);
	return smtp_ehlo(s, err_r);
}

/* AUTH outcome: 235 ok, 4xx temporary, 5xx refused, anything else broken. */
static smtp_status
auth_result(smtp_session *s, smtp_status st, char **err_r)
{
	if (st == SMTP_EPERM) {
		free(err_r != NULL ? *err_r : NULL);
		return fail_reply(s, SMTP_EAUTH, err_r, "SMTP: authentication refused");
	}
	return st;
}

/* One line of a SASL exchange and the reply, not yet judged. */
static smtp_status
auth_step(smtp_session *s, const char *line, const char *shown, char **err_r)
{
	smtp_status st;

	net_deadline(s->conn, s->command_timeout_ms);
	if ((st = send_line(s, line, shown, err_r)) != SMTP_OK || (st = flush(s, err_r)) != SMTP_OK)
		return st;
	return read_reply(s, err_r);
}

/*
 * One SASL exchange (RFC 4954 4.).  The initial response rides on the AUTH
 * line only while that line keeps within RFC 5321's 512 octets (4.5.3.1.4):
 * a longer one (any OAuth token) follows the server's empty 334.  A 334
 * after the last response is, for OAuth, the error challenge: answered (an
 * empty line for XOAUTH2, %x01 for OAUTHBEARER, RFC 7628 3.2.3) so that the
 * server sends its final refusal, which gets the decoded challenge.
 */
static smtp_status
auth_exchange(smtp_session *s, sasl_mech m, const sasl_creds *c, char **err_r)
{
	const char *name = sasl_mech_name(m);
	char *resp[2] = { NULL, NULL }, *e = NULL, *line = NULL, *chal = NULL, what[40];
	char shown[40];
	size_t rlen = 0;
	int n = sasl_steps(m), step = 0;
	smtp_status st;

	snprintf(what, sizeof(what), "SMTP: AUTH %s", name);
	for (step = 0; step < n; step++)
		if ((resp[step] = sasl_response(m, step, c, step == 0 ? &rlen : NULL, &e)) == NULL) {
			st = fail(s, SMTP_EUSAGE, err_r, "SMTP: %s", e != NULL ? e : "out of memory");
			goto out;
		}
	step = 0;
	if (m != SASL_LOGIN && strlen("AUTH  \r\n") + strlen(name) + rlen <= SMTP_CMD_LINE_MAX) {
		if (asprintf(&line, "AUTH %s %s", name, resp[0]) < 0) {
			line = NULL;
			st = fail(s, SMTP_EIO, err_r, "SMTP: out of memory");
			goto out;
		}
		snprintf(shown, sizeof(shown), "AUTH %s <redacted>", name);
		step = 1;
		st = auth_step(s, line, shown, err_r);
	} else {
		snprintf(shown, sizeof(shown), "AUTH %s", name);
		st = auth_step(s, shown, NULL, err_r);
	}
	while (st == SMTP_OK) {
		if (s->last.code == 334 && step < n) {
			st = auth_step(s, resp[step++], "<redacted>", err_r);
		} else if (s->last.code == 334 && sasl_mech_is_oauth(m) && chal == NULL) {
			if ((chal = sasl_error_text(s->last.text, strlen(s->last.text))) == NULL) {
				st = fail(s, SMTP_EIO, err_r, "SMTP: out of memory");
				break;
			}
			st = auth_step(s, m == SASL_OAUTHBEARER ? SASL_OAUTHBEARER_ABORT : "", NULL,
				       err_r);
		} else if (s->last.code == 334) {
			/* No answer for it: cancel (RFC 4954 4.), then give up on the session. */
			if ((st = auth_step(s, "*", NULL, err_r)) == SMTP_OK)
				st = fail(s, SMTP_EPROTO, err_r, "%s: unexpected challenge", what);
			break;
		} else if (s->last.code == 235 && step == n && chal == NULL) {
			break;
		} else if (s->last.code / 100 == 2) {
			/* Success before the credentials, or after an error challenge. */
			st = fail_reply(s, SMTP_EPROTO, err_r, what);
			break;
		} else {
			st = auth_result(s, classify(s, 2, err_r, what), err_r);
			break;
		}
	}
	if (st != SMTP_OK && chal != NULL && err_r != NULL && *err_r != NULL) {
		free(e);
		e = *err_r;
		*err_r = err_fmt("%s (%s error: %s)", e, name, chal);
	}
out:
	free(e);
	free(chal);
	if (line != NULL)
		b64_free_secret(line, strlen(line));
	sasl_free(resp[0]);
	sasl_free(resp[1]);
	return st;
}

smtp_status
smtp_auth(smtp_session *s, const char *mech, const char *user, const char *password,
	  char **err_r)
{
	sasl_creds c = { .user = user, .secret = password };
	sasl_mech m;
	smtp_status st;

	if ((st = check_usable(s, err_r)) != SMTP_OK)
		return st;
	if (user == NULL || password == NULL)
		return fail(s, SMTP_EUSAGE, err_r, "SMTP: AUTH needs a user and a password");
	if (!net_is_tls(s->conn) && !s->allow_plaintext_auth)
		return fail(s, SMTP_EUSAGE, err_r,
			    "SMTP: refusing to send a password without TLS");
	if (mech == NULL)
		mech = smtp_has_auth(s, "PLAIN") ? "PLAIN" : smtp_has_auth(s, "LOGIN") ? "LOGIN" : NULL;
	if (mech == NULL)
		return fail(s, SMTP_EUSAGE, err_r,
			    "SMTP: the server offers neither AUTH PLAIN nor AUTH LOGIN");
	if (sasl_mech_parse(mech, &m) < 0 || sasl_mech_is_oauth(m))
		return fail(s, SMTP_EUSAGE, err_r, "SMTP: unsupported AUTH mechanism %s", mech);
	if (!smtp_has_auth(s, mech))
		return fail(s, SMTP_EUSAGE, err_r, "SMTP: the server does not offer AUTH %s", mech);
	return auth_exchange(s, m, &c, err_r);
}

smtp_status
smtp_auth_oauth(smtp_session *s, const char *mech, const char *user, const char *token,
		const char **mech_used_r, char **err_r)
{
	sasl_creds c = { .user = user, .secret = token };
	const char *why;
	sasl_mech m;
	smtp_status st;

	if (mech_used_r != NULL)
		*mech_used_r = NULL;
	if ((st = check_usable(s, err_r)) != SMTP_OK)
		return st;
	if (sasl_oauth_pick(mech, smtp_has_auth(s, "OAUTHBEARER"), smtp_has_auth(s, "XOAUTH2"), &m,
			    &why) < 0)
		return fail(s, SMTP_EUSAGE, err_r, "SMTP: AUTH: %s", why);
	if (mech_used_r != NULL)
		*mech_used_r = sasl_mech_name(m);
	/* Never in clear text, whatever allow_plaintext_auth says: a bearer token
	 * works for anyone who reads it, and for more than this server. */
	if (!net_is_tls(s->conn))
		return fail(s, SMTP_EUSAGE, err_r, "SMTP: refusing to send an OAuth token without TLS");
	if (!smtp_has_auth(s, sasl_mech_name(m)))
		return fail(s, SMTP_EUSAGE, err_r, "SMTP: the server does not offer AUTH %s",
			    sasl_mech_name(m));
	c.host = s->host;
	c.port = s->port;
	return auth_exchange(s, m, &c, err_r);
}

smtp_status
smtp_login(smtp_session *s, const char *user, const char *password, char **err_r)
{
	return smtp_auth(s, NULL, user, password, err_r);
}

/* ------------------------------------------------------------ small verbs */

smtp_status
smtp_rset(smtp_session *s, char **err_r)
{
	smtp_status st;

	if ((st = check_usable(s, err_r)) != SMTP_OK)
		return st;
	return command(s, "RSET", NULL, 2, "SMTP: RSET", err_r);
}

smtp_status
smtp_noop(smtp_session *s, char **err_r)
{
	smtp_status st;

	if ((st = check_usable(s, err_r)) != SMTP_OK)
		return st;
	return command(s, "NOOP", NULL, 2, "SMTP: NOOP", err_r);
}

smtp_status
smtp_quit(smtp_session *s, char **err_r)
{
	smtp_status st;

	if ((st = check_usable(s, err_r)) != SMTP_OK)
		return st;
	st = command(s, "QUIT", NULL, 2, "SMTP: QUIT", err_r);
	s->broken = 1; /* nothing may follow QUIT */
	return st;
}

/* ------------------------------------------------------------ sendmail */

/* ESMTP parameters of one MAIL or RCPT command given by the caller. */
#define OPTS_MAX 16
#define LINE_MAX_SEND (ADDR_MAX + 64 + (OPTS_MAX + 4) * (PARAM_MAX + 1))

void
smtp_results_clear(smtp_rcpt_result *results, size_t n)
{
	size_t i;

	for (i = 0; results != NULL && i < n; i++) {
		free(results[i].text);
		memset(&results[i], 0, sizeof(results[i]));
	}
}

/* An address for <...>: no control characters, nothing that closes the path. */
static int
addr_ok(const char *a, int *utf8_r)
{
	size_t i, n = strlen(a);

	if (n > ADDR_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)a[i];

		if (c < 0x20 || c == 0x7f || c == '<' || c == '>')
			return 0;
		if (c >= 0x80)
			*utf8_r = 1;
	}
	return 1;
}

/* One "KEY=value" parameter: printable, no space (that would make two). */
static int
opts_ok(const char *const *opts)
{
	size_t i, j, n;

	for (i = 0; opts != NULL && opts[i] != NULL; i++) {
		n = strlen(opts[i]);
		if (i >= OPTS_MAX || n == 0 || n > PARAM_MAX)
			return 0;
		for (j = 0; j < n; j++) {
			unsigned char c = (unsigned char)opts[i][j];

			if (c <= 0x20 || c == 0x7f)
				return 0;
		}
	}
	return 1;
}

static int
param_is(const char *p, const char *name)
{
	size_t n = strlen(name);

	return strncasecmp(p, name, n) == 0 && (p[n] == '=' || p[n] == '\0');
}

static void
append(char *line, size_t *pos, const char *a, const char *b)
{
	int n = snprintf(line + *pos, LINE_MAX_SEND - *pos, "%s%s", a, b);

	if (n > 0)
		*pos += (size_t)n < LINE_MAX_SEND - *pos ? (size_t)n : LINE_MAX_SEND - *pos - 1;
}

/* Appends caller options, minus DSN ones the server did not offer and the
 * ones this library already set. */
static void
append_opts(char *line, size_t *pos, const char *const *opts, int dsn, int mail,
	    int have_size, int have_body, int have_utf8)
{
	size_t i;

	for (i = 0; opts != NULL && opts[i] != NULL; i++) {
		const char *o = opts[i];

		if (!dsn && (mail ? param_is(o, "RET") || param_is(o, "ENVID")
				  : param_is(o, "NOTIFY") || param_is(o, "ORCPT")))
			continue;
		if ((have_size && param_is(o, "SIZE")) || (have_body && param_is(o, "BODY")) ||
		    (have_utf8 && param_is(o, "SMTPUTF8")))
			continue;
		append(line, pos, " ", o);
	}
}

static int
has_8bit(const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)p[i] >= 0x80)
			return 1;
	return 0;
}

/* The header section: up to the first empty line. */
static size_t
header_len(const char *msg, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i++) {
		if (msg[i] == '\n' && msg[i + 1] == '\n')
			return i + 1;
		if (i + 2 < len && msg[i] == '\n' && msg[i + 1] == '\r' && msg[i + 2] == '\n')
			return i + 1;
	}
	return len;
}

static void
reply_copy(smtp_reply *dst, const smtp_reply *src)
{
	smtp_reply_clear(dst);
	dst->code = src->code;
	memcpy(dst->enhanced, src->enhanced, sizeof(dst->enhanced));
	dst->nlines = src->nlines;
	dst->text = strdup(src->text != NULL ? src->text : "");
}

static void
result_set(smtp_rcpt_result *r, smtp_status st, const smtp_reply *rep)
{
	if (r == NULL)
		return;
	free(r->text);
	r->status = st;
	r->code = rep->code;
	memcpy(r->enhanced, rep->enhanced, sizeof(r->enhanced));
	r->text = strdup(rep->text != NULL ? rep->text : "");
}

static smtp_status
class_status(int code)
{
	switch (code / 100) {
	case 2: case 3: return SMTP_OK;
	case 4: return SMTP_ETEMP;
	case 5: return SMTP_EPERM;
	}
	return SMTP_EPROTO;
}

/* RSET after a refused transaction; s->last keeps the refusal. */
static void
rset_quiet(smtp_session *s)
{
	smtp_reply keep = s->last;

	memset(&s->last, 0, sizeof(s->last));
	if (!s->broken)
		(void)command(s, "RSET", NULL, 2, "SMTP: RSET", NULL);
	smtp_reply_clear(&s->last);
	s->last = keep;
}

static void
take_last(smtp_session *s, smtp_reply *r)
{
	smtp_reply_clear(&s->last);
	s->last = *r;
	memset(r, 0, sizeof(*r));
}

struct data_ctx {
	smtp_session *s;
	size_t since;
	char *neterr;
};

static int
data_emit(void *arg, const char *d, size_t len)
{
	struct data_ctx *c = arg;

	if (net_write(c->s->conn, d, len, &c->neterr) < 0)
		return -1;
	c->since += len;
	if (c->since >= DATA_BLOCK) {
		c->since = 0;
		net_deadline(c->s->conn, c->s->command_timeout_ms);
	}
	return 0;
}

/* After DATA's 354: the message, the final dot, and the verdict. */
static smtp_status
send_data(smtp_session *s, const char *msg, size_t msg_len, char **err_r)
{
	struct data_ctx ctx = { s, 0, NULL };
	smtp_data_enc enc;
	char shown[64];
	smtp_status st;

	net_deadline(s->conn, s->command_timeout_ms);
	smtp_data_init(&enc);
	if (smtp_data_encode(&enc, msg, msg_len, data_emit, &ctx) < 0 ||
	    smtp_data_finish(&enc, data_emit, &ctx) < 0)
		return fail_net(s, SMTP_EIO, err_r, "SMTP: sending message data", ctx.neterr);
	snprintf(shown, sizeof(shown), "<%llu bytes of message data>", enc.out - 3);
	trace(s, 'C', shown, strlen(shown));
	trace(s, 'C', ".", 1);
	/* From here on the server may have the whole message. */
	if (net_flush(s->conn, &ctx.neterr) < 0)
		return fail_net(s, SMTP_EUNKNOWN, err_r,
				"SMTP: connection lost while sending the final dot, outcome unknown",
				ctx.neterr);
	net_deadline(s->conn, s->data_end_timeout_ms);
	if ((st = read_reply(s, err_r)) != SMTP_OK) {
		char *e = err_r != NULL ? *err_r : NULL;

		if (err_r != NULL)
			*err_r = NULL;
		return fail_net(s, SMTP_EUNKNOWN, err_r,
				"SMTP: no reply after the final dot, outcome unknown", e);
	}
	return SMTP_OK;
}

smtp_status
smtp_sendmail(smtp_session *s, const char *from, const char *const *rcpts, size_t nrcpts,
	      const char *msg, size_t msg_len, const char *const *mail_options,
	      const char *const *rcpt_options, smtp_rcpt_result *results, char **err_r)
{
	smtp_reply mail_reply = { 0 }, refusal = { 0 }, data_reply = { 0 };
	smtp_status st = SMTP_OK, mail_st = SMTP_OK;
	size_t i, total, sent = 0, got = 0, accepted = 0, window, pos = 0;
	int any_temp = 0, utf8_env = 0, bit8, utf8, dsn, pipelining, stop = 0, data_sent = 0;
	unsigned long long wire, max;
	char *mail_line = NULL, *line = NULL;

	if ((st = check_usable(s, err_r)) != SMTP_OK)
		return st;
	if (results != NULL)
		memset(results, 0, nrcpts * sizeof(*results));
	if (from == NULL || rcpts == NULL || nrcpts == 0 || (msg == NULL && msg_len > 0))
		return fail(s, SMTP_EUSAGE, err_r, "SMTP: sendmail needs a sender, recipients "
			    "and a message");
	if (!addr_ok(from, &utf8_env))
		return fail(s, SMTP_EUSAGE, err_r, "SMTP: invalid sender address");
	for (i = 0; i < nrcpts; i++)
		if (rcpts[i] == NULL || *rcpts[i] == '\0' || !addr_ok(rcpts[i], &utf8_env))
			return fail(s, SMTP_EUSAGE, err_r, "SMTP: invalid recipient address #%zu",
				    i + 1);
	if (!opts_ok(mail_options) || !opts_ok(rcpt_options))
		return fail(s, SMTP_EUSAGE, err_r, "SMTP: invalid ESMTP parameter");

	if (utf8_env && !smtp_has_ext(s, "SMTPUTF8"))
		return fail(s, SMTP_EPERM, err_r, "SMTP: the envelope has a non-ASCII address and "
			    "the server does not offer SMTPUTF8");
	bit8 = msg_len > 0 && has_8bit(msg, msg_len);
	utf8 = smtp_has_ext(s, "SMTPUTF8") &&
	       (utf8_env || (bit8 && has_8bit(msg, header_len(msg, msg_len))));
	wire = smtp_data_wire_size(msg != NULL ? msg : "", msg_len);
	max = smtp_max_size(s);
	if (max > 0 && wire > max)
		return fail(s, SMTP_ETOOBIG, err_r, "SMTP: message of %llu bytes is larger than "
			    "the server's limit of %llu", wire, max);
	dsn = smtp_has_ext(s, "DSN");
	pipelining = smtp_has_ext(s, "PIPELINING");
	window = pipelining ? PIPE_WINDOW : 1;
	if (nrcpts > (size_t)-1 - 2)
		return fail(s, SMTP_EUSAGE, err_r, "SMTP: too many recipients");
	total = nrcpts + 2; /* MAIL, RCPT..., DATA */

	mail_line = malloc(LINE_MAX_SEND);
	line = malloc(LINE_MAX_SEND);
	if (mail_line == NULL || line == NULL) {
		st = fail(s, SMTP_EUSAGE, err_r, "SMTP: out of memory");
		goto out;
	}
	mail_line[0] = '\0';
	append(mail_line, &pos, "MAIL FROM:<", from);
	append(mail_line, &pos, ">", "");
	if (smtp_has_ext(s, "SIZE")) {
		char num[32];

		snprintf(num, sizeof(num), "%llu", wire);
		append(mail_line, &pos, " SIZE=", num);
	}
	if (bit8 && smtp_has_ext(s, "8BITMIME"))
		append(mail_line, &pos, " BODY=8BITMIME", "");
	if (utf8)
		append(mail_line, &pos, " SMTPUTF8", "");
	append_opts(mail_line, &pos, mail_options, dsn, 1, smtp_has_ext(s, "SIZE"),
		    bit8 && smtp_has_ext(s, "8BITMIME"), utf8);

	while (got < sent || (!stop && sent < total)) {
		while (!stop && sent < total && sent - got < window) {
			const char *l = mail_line;

			if (sent == total - 1) {
				/* without PIPELINING, DATA only for someone to send to */
				if (!pipelining && (accepted == 0 || mail_st != SMTP_OK)) {
					stop = 1;
					break;
				}
				l = "DATA";
				data_sent = 1;
			} else if (sent > 0) {
				pos = 0;
				line[0] = '\0';
				append(line, &pos, "RCPT TO:<", rcpts[sent - 1]);
				append(line, &pos, ">", "");
				append_opts(line, &pos, rcpt_options, dsn, 0, 0, 0, 0);
				l = line;
			}
			if ((st = send_line(s, l, NULL, err_r)) != SMTP_OK)
				goto out;
			sent++;
		}
		if (got == sent)
			break;
		net_deadline(s->conn, s->command_timeout_ms);
		if ((st = flush(s, err_r)) != SMTP_OK || (st = read_reply(s, err_r)) != SMTP_OK)
			goto out;
		st = class_status(s->last.code);
		if (st == SMTP_EPROTO || (got < total - 1 && s->last.code / 100 == 3) ||
		    (got == total - 1 && s->last.code / 100 == 2)) {
			st = fail_reply(s, SMTP_EPROTO, err_r, "SMTP: unexpected reply");
			goto out;
		}
		if (got == 0) {
			reply_copy(&mail_reply, &s->last);
			mail_st = st;
			if (st != SMTP_OK && !pipelining)
				stop = 1;
		} else if (got < total - 1) {
			if (mail_st != SMTP_OK) {
				result_set(results ? &results[got - 1] : NULL, mail_st, &mail_reply);
			} else {
				result_set(results ? &results[got - 1] : NULL, st, &s->last);
				if (st == SMTP_OK)
					accepted++;
				else
					reply_copy(&refusal, &s->last);
				any_temp |= st == SMTP_ETEMP;
			}
		} else {
			reply_copy(&data_reply, &s->last);
		}
		got++;
		if (s->broken) {
			/* 421: the server is going away; what was not answered is temporary */
			for (i = got < 1 ? 0 : got - 1; results != NULL && i < nrcpts; i++)
				if (results[i].code == 0)
					result_set(&results[i], SMTP_ETEMP, &s->last);
			st = fail_reply(s, SMTP_ETEMP, err_r, "SMTP: the server is closing");
			goto out;
		}
	}

	if (mail_st != SMTP_OK || accepted == 0) {
		if (data_sent && data_reply.code / 100 == 3) {
			/* RFC 2920 3.1: DATA accepted with nobody to send to: an empty message */
			net_deadline(s->conn, s->command_timeout_ms);
			if ((st = send_line(s, ".", NULL, err_r)) != SMTP_OK ||
			    (st = flush(s, err_r)) != SMTP_OK || (st = read_reply(s, err_r)) != SMTP_OK)
				goto out;
		}
		if (mail_st != SMTP_OK) {
			for (i = 0; results != NULL && i < nrcpts; i++)
				if (results[i].code == 0)
					result_set(&results[i], mail_st, &mail_reply);
			take_last(s, &mail_reply);
			rset_quiet(s);
			st = fail_reply(s, mail_st, err_r, "SMTP: sender refused");
		} else {
			take_last(s, &refusal);
			rset_quiet(s);
			st = fail_reply(s, any_temp ? SMTP_ETEMP : SMTP_EPERM, err_r,
					"SMTP: all recipients refused, the last");
		}
		goto out;
	}
	if (data_reply.code / 100 != 3) {
		st = class_status(data_reply.code);
		for (i = 0; results != NULL && i < nrcpts; i++)
			if (results[i].status == SMTP_OK)
				result_set(&results[i], st, &data_reply);
		take_last(s, &data_reply);
		rset_quiet(s);
		st = fail_reply(s, st, err_r, "SMTP: DATA refused");
		goto out;
	}

	if ((st = send_data(s, msg != NULL ? msg : "", msg_len, err_r)) != SMTP_OK)
		goto out;
	st = class_status(s->last.code);
	if (s->last.code / 100 == 3)
		st = SMTP_EPROTO;
	for (i = 0; results != NULL && i < nrcpts; i++)
		if (results[i].status == SMTP_OK)
			result_set(&results[i], st == SMTP_EPROTO ? SMTP_EUNKNOWN : st, &s->last);
	if (st == SMTP_EPROTO)
		st = fail_reply(s, SMTP_EUNKNOWN, err_r, "SMTP: end of data, outcome unknown");
	else if (st != SMTP_OK)
		st = fail_reply(s, st, err_r, "SMTP: message refused at end of data");
out:
	smtp_reply_clear(&mail_reply);
	smtp_reply_clear(&refusal);
	smtp_reply_clear(&data_reply);
	free(mail_line);
	free(line);
	return st;
}

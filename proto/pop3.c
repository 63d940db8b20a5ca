/* mailmill - ISC licence, see LICENSE */
/*
 * The POP3 session: one blocking call per command over proto/net, plus a
 * pipelined queue of RETR/DELE.  Parsing lives in pop3_parse.c.  Any
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
#include "proto/tls.h"

/* The window is the caller's to bound; this only stops a runaway caller. */
#define PIPE_MAX 256
/* CAPA is a few hundred bytes in practice. */
#define CAPA_MAX_BYTES 16384
#define LIST_DEFAULT_MAX 1000000UL
/* RFC 2449 allows 255 octets per argument; a command line fits in this. */
#define ARG_MAX_LEN 255
#define CMD_MAX 1024
/*
 * Body lines may be far longer than replies (RFC 5322's 998 is often
 * ignored, e.g. by HTML mailers): net's line cap is this, and the caller's
 * max_line bounds protocol lines only.  Memory grows only when a long line
 * actually arrives.
 */
#define BODY_LINE_MAX (1024 * 1024)
/* Server text quoted in an error message. */
#define QUOTE_MAX 200

enum { PIPE_RETR = 1, PIPE_DELE };

struct pop3_session {
	net_conn *conn;
	char *host, *ca_file;
	int command_timeout_ms;
	size_t max_line;   /* for status and listing lines */
	pop3_trace_fn *trace;
	void *trace_arg;
	pop3_rcode last_code;
	char *greeting;
	char *apop_ts;
	buf capa;          /* CAPA lines, each NUL-terminated */
	int capa_known;
	int broken;
	int unflushed;
	struct {
		int verb;
		unsigned long msgno;
	} pipe[PIPE_MAX];
	size_t pipe_head, pipe_n;
};

static void seterr(char **err_r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
seterr(char **err_r, const char *fmt, ...)
{
	va_list ap;

	if (err_r == NULL)
		return;
	va_start(ap, fmt);
	if (vasprintf(err_r, fmt, ap) < 0)
		*err_r = NULL;
	va_end(ap);
}

/* Server text goes into logs: no control characters, bounded length. */
static void
quote(char dst[QUOTE_MAX + 4], const char *src, size_t len)
{
	size_t i, n = len > QUOTE_MAX ? QUOTE_MAX : len;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	if (len > n) {
		memcpy(dst + n, "...", 3);
		n += 3;
	}
	dst[n] = '\0';
}

static int
is_fatal(pop3_status st)
{
	return st == POP3_EIO || st == POP3_EPROTO || st == POP3_ETLS || st == POP3_ETOOBIG;
}

static pop3_status fail(pop3_session *s, pop3_status st, char **err_r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static pop3_status
fail(pop3_session *s, pop3_status st, char **err_r, const char *fmt, ...)
{
	va_list ap;

	if (is_fatal(st))
		s->broken = 1;
	if (err_r != NULL) {
		va_start(ap, fmt);
		if (vasprintf(err_r, fmt, ap) < 0)
			*err_r = NULL;
		va_end(ap);
	}
	return st;
}

static void
trace(pop3_session *s, char dir, const char *line, size_t len)
{
	if (s->trace != NULL)
		s->trace(s->trace_arg, dir, line, len);
}

static pop3_status
net_fail(pop3_session *s, pop3_status st, const char *label, char *nerr, char **err_r)
{
	pop3_status r = fail(s, st, err_r, "%s: %s", label, nerr != NULL ? nerr : "I/O error");

	free(nerr);
	return r;
}

/* A command argument: present, one line, no more than RFC 2449 allows. */
static int
arg_ok(const char *a)
{
	return a != NULL && a[0] != '\0' && strlen(a) <= ARG_MAX_LEN && strpbrk(a, "\r\n") == NULL;
}

/*
 * Queue line + CRLF; the trace sees `shown` instead when given, so secrets
 * never reach it.
 */
static pop3_status
send_line(pop3_session *s, const char *label, const char *line, const char *shown, int flush,
	  char **err_r)
{
	char *nerr = NULL;
	size_t len = strlen(line);

	trace(s, 'C', shown != NULL ? shown : line, shown != NULL ? strlen(shown) : len);
	if (net_write(s->conn, line, len, &nerr) < 0 || net_write(s->conn, "\r\n", 2, &nerr) < 0)
		return net_fail(s, POP3_EIO, label, nerr, err_r);
	if (flush) {
		if (net_flush(s->conn, &nerr) < 0)
			return net_fail(s, POP3_EIO, label, nerr, err_r);
		s->unflushed = 0;
	} else {
		s->unflushed = 1;
	}
	return POP3_OK;
}

/* A line of the body (reply == 0) or of the protocol (bounded by max_line). */
static pop3_status
get_line(pop3_session *s, const char *label, int reply, const char **line_r, size_t *len_r,
	 char **err_r)
{
	char *nerr = NULL;

	if (net_getline(s->conn, line_r, len_r, &nerr) < 0)
		return net_fail(s, POP3_EIO, label, nerr, err_r);
	if (reply && *len_r > s->max_line)
		return fail(s, POP3_EPROTO, err_r, "%s: reply line longer than %zu bytes", label,
			    s->max_line);
	return POP3_OK;
}

/* Judge a status line: OK, ENEG (code recorded) or EPROTO. */
static pop3_status
check_status(pop3_session *s, const char *label, const char *line, size_t len,
	     const char **text_r, size_t *tlen_r, char **err_r)
{
	const char *text;
	char q[QUOTE_MAX + 4];
	pop3_rcode code;
	int r;

	r = pop3_parse_status(line, len, &code, &text);
	if (r < 0) {
		quote(q, line, len);
		return fail(s, POP3_EPROTO, err_r, "%s: unexpected reply \"%s\"", label, q);
	}
	if (r == 0) {
		quote(q, line, len);
		s->last_code = code;
		return fail(s, POP3_ENEG, err_r, "%s: %s", label, q);
	}
	if (text_r != NULL) {
		*text_r = text;
		*tlen_r = len - (size_t)(text - line);
	}
	return POP3_OK;
}

static pop3_status
read_status(pop3_session *s, const char *label, const char **text_r, size_t *tlen_r,
	    char **err_r)
{
	const char *line;
	size_t len;
	pop3_status st;

	if ((st = get_line(s, label, 1, &line, &len, err_r)) != POP3_OK)
		return st;
	trace(s, 'S', line, len);
	return check_status(s, label, line, len, text_r, tlen_r, err_r);
}

/* Next line of a multi-line listing: 1 a line, 0 the end, -1 failure (*st_r). */
static int
ml_next(pop3_session *s, const char *label, const char **data_r, size_t *len_r,
	pop3_status *st_r, char **err_r)
{
	const char *line;
	size_t len;

	if ((*st_r = get_line(s, label, 1, &line, &len, err_r)) != POP3_OK)
		return -1;
	trace(s, 'S', line, len);
	return pop3_ml_line(line, len, data_r, len_r);
}

/* A RETR/TOP body; not traced (it is mail, not protocol). */
static pop3_status
read_body(pop3_session *s, const char *label, buf *out, char **err_r)
{
	const char *line;
	size_t len;
	pop3_status st;
	int r;

	for (;;) {
		if ((st = get_line(s, label, 0, &line, &len, err_r)) != POP3_OK)
			return st;
		r = pop3_body_line(line, len, out);
		if (r == 0)
			return POP3_OK;
		if (r < 0) {
			if (errno == EFBIG)
				return fail(s, POP3_ETOOBIG, err_r,
					    "%s: message larger than the limit of %zu bytes", label,
					    out->max);
			return fail(s, POP3_EIO, err_r, "%s: %s", label, strerror(errno));
		}
	}
}

/* Every synchronous verb starts here: usable session, fresh deadline. */
static pop3_status
begin(pop3_session *s, const char *label, char **err_r)
{
	if (s == NULL || s->conn == NULL) {
		seterr(err_r, "%s: no session", label);
		return POP3_EUSAGE;
	}
	if (s->broken)
		return fail(s, POP3_EUSAGE, err_r,
			    "%s: the session is unusable after an earlier error or QUIT", label);
	if (s->pipe_n > 0)
		return fail(s, POP3_EUSAGE, err_r, "%s: %zu pipelined replies not yet read", label,
			    s->pipe_n);
	s->last_code = POP3_RC_NONE;
	net_deadline(s->conn, s->command_timeout_ms);
	return POP3_OK;
}

static pop3_status
simple(pop3_session *s, const char *label, const char *line, const char *shown,
       const char **text_r, size_t *tlen_r, char **err_r)
{
	pop3_status st;

	if ((st = begin(s, label, err_r)) != POP3_OK)
		return st;
	if ((st = send_line(s, label, line, shown, 1, err_r)) != POP3_OK)
		return st;
	return read_status(s, label, text_r, tlen_r, err_r);
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
		seterr(err_r, "POP3: out of memory");
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
			    (opt->ca_file != NULL && (s->ca_file = strdup(opt->ca_file)) == NULL))) {
		st = fail(s, POP3_EIO, err_r, "POP3: out of memory");
		goto out;
	}
	net_deadline(c, s->command_timeout_ms);
	if (opt != NULL && opt->tls == POP3_TLS_IMPLICIT &&
	    net_starttls(c, s->host, s->ca_file, &nerr) < 0) {
		st = net_fail(s, POP3_ETLS, "TLS", nerr, err_r);
		goto out;
	}
	if ((st = get_line(s, "greeting", 1, &line, &len, err_r)) != POP3_OK)
		goto out;
	trace(s, 'S', line, len);
	if ((s->greeting = malloc(len + 1)) == NULL) {
		st = fail(s, POP3_EIO, err_r, "POP3: out of memory");
		goto out;
	}
	memcpy(s->greeting, line, len + 1);
	if ((st = check_status(s, "greeting", s->greeting, len, NULL, NULL, err_r)) != POP3_OK)
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

pop3_status
pop3_connect_trace(const pop3_options *opt, pop3_trace_fn *fn, void *arg, pop3_session **s_r,
		   char **err_r)
{
	net_conn *c;
	char *nerr = NULL;
	pop3_status st;

	*s_r = NULL;
	if (opt == NULL || opt->host == NULL || opt->port == NULL) {
		seterr(err_r, "POP3: no host or port");
		return POP3_EUSAGE;
	}
	if (net_connect(opt->host, opt->port, opt->connect_timeout_ms > 0 ?
			opt->connect_timeout_ms : 30000, net_max_line(opt), &c, &nerr) < 0) {
		seterr(err_r, "connect to %s port %s: %s", opt->host, opt->port,
		       nerr != NULL ? nerr : "failed");
		free(nerr);
		return POP3_EIO;
	}
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
		seterr(err_r, "POP3: %s", nerr != NULL ? nerr : "cannot use the socket");
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

	if ((st = simple(s, "CAPA", "CAPA", NULL, NULL, NULL, err_r)) != POP3_OK)
		return st;
	buf_reset(&s->capa);
	s->capa_known = 0;
	while ((r = ml_next(s, "CAPA", &line, &len, &st, err_r)) > 0) {
		if (buf_append(&s->capa, line, len) < 0 || buf_append(&s->capa, "", 1) < 0)
			return fail(s, POP3_EPROTO, err_r, "CAPA: capability list over %d bytes",
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

	if ((st = begin(s, "STLS", err_r)) != POP3_OK)
		return st;
	if (net_is_tls(s->conn))
		return fail(s, POP3_EUSAGE, err_r, "STLS: the connection is already TLS");
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
		return fail(s, POP3_ETLS, err_r,
			    "STLS: the server does not offer STLS in its CAPA; refusing to go on "
			    "without TLS");
	st = simple(s, "STLS", "STLS", NULL, NULL, NULL, err_r);
	if (st == POP3_ENEG) {
		s->broken = 1;
		return POP3_ETLS;
	}
	if (st != POP3_OK)
		return st;
	/* net refuses if plain-text bytes followed the go-ahead (injection). */
	if (net_starttls(s->conn, s->host, s->ca_file, &nerr) < 0)
		return net_fail(s, POP3_ETLS, "STLS", nerr, err_r);
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

/* ------------------------------------------------------------ authentication */

/* A refusal of credentials is EAUTH; pop3_last_code says whether to retry. */
static pop3_status
auth_status(pop3_status st)
{
	return st == POP3_ENEG ? POP3_EAUTH : st;
}

static pop3_status
usage(pop3_session *s, char **err_r, const char *label, const char *what)
{
	return fail(s, POP3_EUSAGE, err_r, "%s: %s", label, what);
}

pop3_status
pop3_user(pop3_session *s, const char *user, char **err_r)
{
	char line[CMD_MAX];

	if (!arg_ok(user) || strchr(user, ' ') != NULL)
		return usage(s, err_r, "USER", "bad user name");
	snprintf(line, sizeof(line), "USER %s", user);
	return auth_status(simple(s, "USER", line, NULL, NULL, NULL, err_r));
}

pop3_status
pop3_pass(pop3_session *s, const char *password, char **err_r)
{
	char line[CMD_MAX];
	pop3_status st;

	/* RFC 1939 lets the password contain spaces: it is the rest of the line. */
	if (!arg_ok(password))
		return usage(s, err_r, "PASS", "bad password (empty, too long or multi-line)");
	snprintf(line, sizeof(line), "PASS %s", password);
	st = simple(s, "PASS", line, "PASS <redacted>", NULL, NULL, err_r);
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

	if (!arg_ok(user) || strchr(user, ' ') != NULL)
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
	st = simple(s, "APOP", line, shown, NULL, NULL, err_r);
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

	if ((*st_r = get_line(s, "AUTH", 1, &line, &len, err_r)) != POP3_OK)
		return -1;
	trace(s, 'S', line, len);
	if (len >= 1 && line[0] == '+' && (len == 1 || line[1] == ' '))
		return 1;
	*st_r = auth_status(check_status(s, "AUTH", line, len, NULL, NULL, err_r));
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
	st = send_line(s, "AUTH", b64, "<redacted>", 1, err_r);
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
		return fail(s, POP3_EUSAGE, err_r, "AUTH: the server does not offer SASL %s",
			    plain ? "PLAIN" : "LOGIN");
	snprintf(line, sizeof(line), "AUTH %s", plain ? "PLAIN" : "LOGIN");
	if ((st = begin(s, "AUTH", err_r)) != POP3_OK ||
	    (st = send_line(s, "AUTH", line, NULL, 1, err_r)) != POP3_OK)
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
				fail(s, POP3_EPROTO, err_r, "AUTH: +OK before the credentials");
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
			if ((st = send_line(s, "AUTH", "*", NULL, 1, err_r)) != POP3_OK)
				return st;
			if (auth_reply(s, &st, err_r) < 0)
				return st;
			return fail(s, POP3_EPROTO, err_r, "AUTH: unexpected extra challenge");
		}
		if (st != POP3_OK)
			return st;
	}
}

/* ------------------------------------------------------------ transaction */

pop3_status
pop3_stat(pop3_session *s, unsigned long *count_r, unsigned long long *octets_r, char **err_r)
{
	const char *text;
	size_t tlen;
	char q[QUOTE_MAX + 4];
	pop3_status st;

	if ((st = simple(s, "STAT", "STAT", NULL, &text, &tlen, err_r)) != POP3_OK)
		return st;
	if (pop3_parse_stat(text, tlen, count_r, octets_r) < 0) {
		quote(q, text, tlen);
		return fail(s, POP3_EPROTO, err_r, "STAT: bad reply \"+OK %s\"", q);
	}
	return POP3_OK;
}

static int
entry_cmp(const void *a, const void *b)
{
	const pop3_entry *x = a, *y = b;

	return x->msgno < y->msgno ? -1 : x->msgno > y->msgno;
}

pop3_status
pop3_list(pop3_session *s, unsigned long max_count, pop3_entry **entries_r, size_t *n_r,
	  char **err_r)
{
	pop3_entry *v = NULL, *nv;
	size_t n = 0, cap = 0, len, i;
	const char *line;
	char q[QUOTE_MAX + 4];
	pop3_status st;
	int r;

	*entries_r = NULL;
	*n_r = 0;
	if (max_count == 0)
		max_count = LIST_DEFAULT_MAX;
	if ((st = simple(s, "LIST", "LIST", NULL, NULL, NULL, err_r)) != POP3_OK)
		return st;
	while ((r = ml_next(s, "LIST", &line, &len, &st, err_r)) > 0) {
		if (n >= max_count) {
			free(v);
			return fail(s, POP3_EPROTO, err_r, "LIST: more than %lu messages",
				    max_count);
		}
		if (n == cap) {
			/* Grown as lines arrive: the server's count is never trusted. */
			size_t ncap = cap == 0 ? 64 : cap * 2;

			if (ncap > max_count)
				ncap = max_count;
			if (ncap > ((size_t)-1) / sizeof(*v) ||
			    (nv = realloc(v, ncap * sizeof(*v))) == NULL) {
				free(v);
				return fail(s, POP3_EIO, err_r, "LIST: out of memory");
			}
			v = nv;
			cap = ncap;
		}
		memset(&v[n], 0, sizeof(v[n]));
		v[n].uid_state = POP3_UID_MISSING;
		if (pop3_parse_list_line(line, len, &v[n].msgno, &v[n].size) < 0) {
			free(v);
			quote(q, line, len);
			return fail(s, POP3_EPROTO, err_r, "LIST: bad line \"%s\"", q);
		}
		n++;
	}
	if (r < 0) {
		free(v);
		return st;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), entry_cmp);
	for (i = 1; i < n; i++)
		if (v[i].msgno == v[i - 1].msgno) {
			unsigned long dup = v[i].msgno;

			free(v);
			return fail(s, POP3_EPROTO, err_r, "LIST: message %lu listed twice", dup);
		}
	*entries_r = v;
	*n_r = n;
	return POP3_OK;
}

pop3_status
pop3_list_one(pop3_session *s, unsigned long msgno, unsigned long long *size_r, char **err_r)
{
	char line[64], label[64], q[QUOTE_MAX + 4];
	const char *text;
	size_t tlen;
	unsigned long got;
	pop3_status st;

	snprintf(line, sizeof(line), "LIST %lu", msgno);
	snprintf(label, sizeof(label), "LIST %lu", msgno);
	if ((st = simple(s, label, line, NULL, &text, &tlen, err_r)) != POP3_OK)
		return st;
	if (pop3_parse_list_line(text, tlen, &got, size_r) < 0 || got != msgno) {
		quote(q, text, tlen);
		return fail(s, POP3_EPROTO, err_r, "%s: bad reply \"+OK %s\"", label, q);
	}
	return POP3_OK;
}

static int
entry_msgno_cmp(const void *key, const void *elt)
{
	unsigned long k = *(const unsigned long *)key;
	const pop3_entry *e = elt;

	return k < e->msgno ? -1 : k > e->msgno;
}

static int
entry_uid_cmp(const void *a, const void *b)
{
	const pop3_entry *x = *(pop3_entry *const *)a, *y = *(pop3_entry *const *)b;

	return strcmp(x->uid, y->uid);
}

/* Every entry sharing a UID with another is marked: neither may become a path. */
static pop3_status
mark_duplicates(pop3_session *s, pop3_entry *entries, size_t n, char **err_r)
{
	pop3_entry **p;
	size_t m = 0, i, j;

	if (n < 2)
		return POP3_OK;
	if (n > ((size_t)-1) / sizeof(*p) || (p = malloc(n * sizeof(*p))) == NULL)
		return fail(s, POP3_EIO, err_r, "UIDL: out of memory");
	for (i = 0; i < n; i++)
		if (entries[i].uid_state == POP3_UID_OK)
			p[m++] = &entries[i];
	qsort(p, m, sizeof(*p), entry_uid_cmp);
	for (i = 0; i < m; i = j) {
		for (j = i + 1; j < m && strcmp(p[i]->uid, p[j]->uid) == 0; j++)
			;
		if (j - i > 1)
			while (i < j)
				p[i++]->uid_state = POP3_UID_DUPLICATE;
	}
	free(p);
	return POP3_OK;
}

pop3_status
pop3_uidl(pop3_session *s, pop3_entry *entries, size_t n, char **err_r)
{
	const char *line;
	char uid[71], q[QUOTE_MAX + 4];
	unsigned long msgno;
	size_t len, i;
	pop3_entry *e;
	pop3_status st;
	int r, ok, sorted = 1;

	for (i = 0; i < n; i++) {
		entries[i].uid[0] = '\0';
		entries[i].uid_state = POP3_UID_MISSING;
		if (i > 0 && entries[i].msgno <= entries[i - 1].msgno)
			sorted = 0;
	}
	if ((st = simple(s, "UIDL", "UIDL", NULL, NULL, NULL, err_r)) != POP3_OK)
		return st;
	while ((r = ml_next(s, "UIDL", &line, &len, &st, err_r)) > 0) {
		if (pop3_parse_uidl_line(line, len, &msgno, uid, &ok) < 0) {
			quote(q, line, len);
			return fail(s, POP3_EPROTO, err_r, "UIDL: bad line \"%s\"", q);
		}
		e = NULL;
		if (sorted) {
			e = bsearch(&msgno, entries, n, sizeof(*entries), entry_msgno_cmp);
		} else {
			for (i = 0; i < n && e == NULL; i++)
				if (entries[i].msgno == msgno)
					e = &entries[i];
		}
		/* A message LIST did not show (deleted meanwhile?) is not ours to judge. */
		if (e == NULL)
			continue;
		if (e->uid_state != POP3_UID_MISSING)
			return fail(s, POP3_EPROTO, err_r, "UIDL: message %lu listed twice", msgno);
		if (ok) {
			memcpy(e->uid, uid, sizeof(e->uid));
			e->uid_state = POP3_UID_OK;
		} else {
			e->uid_state = POP3_UID_INVALID;
		}
	}
	if (r < 0)
		return st;
	return mark_duplicates(s, entries, n, err_r);
}

pop3_status
pop3_uidl_one(pop3_session *s, unsigned long msgno, char uid_r[71], char **err_r)
{
	char line[64], label[64], q[QUOTE_MAX + 4];
	const char *text;
	size_t tlen;
	unsigned long got;
	pop3_status st;
	int ok;

	uid_r[0] = '\0';
	snprintf(line, sizeof(line), "UIDL %lu", msgno);
	snprintf(label, sizeof(label), "UIDL %lu", msgno);
	if ((st = simple(s, label, line, NULL, &text, &tlen, err_r)) != POP3_OK)
		return st;
	if (pop3_parse_uidl_line(text, tlen, &got, uid_r, &ok) < 0 || got != msgno || !ok) {
		uid_r[0] = '\0';
		quote(q, text, tlen);
		/* The reply was read whole: the session stays usable. */
		seterr(err_r, "%s: bad or invalid UID in \"+OK %s\"", label, q);
		return POP3_EPROTO;
	}
	return POP3_OK;
}

static pop3_status
fetch(pop3_session *s, const char *line, const char *label, buf *out, char **err_r)
{
	pop3_status st;

	if ((st = simple(s, label, line, NULL, NULL, NULL, err_r)) != POP3_OK)
		return st;
	return read_body(s, label, out, err_r);
}

pop3_status
pop3_retr(pop3_session *s, unsigned long msgno, buf *out, char **err_r)
{
	char line[64];

	snprintf(line, sizeof(line), "RETR %lu", msgno);
	return fetch(s, line, line, out, err_r);
}

pop3_status
pop3_top(pop3_session *s, unsigned long msgno, unsigned long lines, buf *out, char **err_r)
{
	char line[80];

	snprintf(line, sizeof(line), "TOP %lu %lu", msgno, lines);
	return fetch(s, line, line, out, err_r);
}

pop3_status
pop3_dele(pop3_session *s, unsigned long msgno, char **err_r)
{
	char line[64];

	snprintf(line, sizeof(line), "DELE %lu", msgno);
	return simple(s, line, line, NULL, NULL, NULL, err_r);
}

pop3_status
pop3_rset(pop3_session *s, char **err_r)
{
	return simple(s, "RSET", "RSET", NULL, NULL, NULL, err_r);
}

pop3_status
pop3_noop(pop3_session *s, char **err_r)
{
	return simple(s, "NOOP", "NOOP", NULL, NULL, NULL, err_r);
}

pop3_status
pop3_quit(pop3_session *s, char **err_r)
{
	pop3_status st = simple(s, "QUIT", "QUIT", NULL, NULL, NULL, err_r);

	/* After QUIT the server closes; only pop3_close remains. */
	if (s != NULL)
		s->broken = 1;
	return st;
}

/* ------------------------------------------------------------ pipelining */

static pop3_status
pipe_send(pop3_session *s, int verb, unsigned long msgno, char **err_r)
{
	char line[64];
	const char *name = verb == PIPE_RETR ? "RETR" : "DELE";
	pop3_status st;

	if (s == NULL || s->conn == NULL) {
		seterr(err_r, "%s: no session", name);
		return POP3_EUSAGE;
	}
	if (s->broken)
		return fail(s, POP3_EUSAGE, err_r,
			    "%s: the session is unusable after an earlier error or QUIT", name);
	if (s->pipe_n == PIPE_MAX)
		return fail(s, POP3_EUSAGE, err_r, "%s: more than %d commands in flight", name,
			    PIPE_MAX);
	snprintf(line, sizeof(line), "%s %lu", name, msgno);
	net_deadline(s->conn, s->command_timeout_ms);
	if ((st = send_line(s, line, line, NULL, 0, err_r)) != POP3_OK)
		return st;
	s->pipe[(s->pipe_head + s->pipe_n) % PIPE_MAX].verb = verb;
	s->pipe[(s->pipe_head + s->pipe_n) % PIPE_MAX].msgno = msgno;
	s->pipe_n++;
	return POP3_OK;
}

pop3_status
pop3_send_retr(pop3_session *s, unsigned long msgno, char **err_r)
{
	return pipe_send(s, PIPE_RETR, msgno, err_r);
}

pop3_status
pop3_send_dele(pop3_session *s, unsigned long msgno, char **err_r)
{
	return pipe_send(s, PIPE_DELE, msgno, err_r);
}

pop3_status
pop3_flush(pop3_session *s, char **err_r)
{
	char *nerr = NULL;

	if (s == NULL || s->conn == NULL || s->broken) {
		seterr(err_r, "flush: the session is unusable");
		return POP3_EUSAGE;
	}
	net_deadline(s->conn, s->command_timeout_ms);
	if (net_flush(s->conn, &nerr) < 0)
		return net_fail(s, POP3_EIO, "flush", nerr, err_r);
	s->unflushed = 0;
	return POP3_OK;
}

/* Take the oldest outstanding command, which must be `verb`; label it. */
static pop3_status
pipe_recv(pop3_session *s, int verb, char label[64], char **err_r)
{
	const char *name = verb == PIPE_RETR ? "RETR" : "DELE";
	pop3_status st;

	if (s == NULL || s->conn == NULL || s->broken) {
		seterr(err_r, "%s: the session is unusable", name);
		return POP3_EUSAGE;
	}
	if (s->pipe_n == 0 || s->pipe[s->pipe_head].verb != verb)
		return fail(s, POP3_EUSAGE, err_r, "%s: no %s reply is next in the pipeline", name,
			    name);
	if (s->unflushed && (st = pop3_flush(s, err_r)) != POP3_OK)
		return st;
	snprintf(label, 64, "%s %lu", name, s->pipe[s->pipe_head].msgno);
	s->pipe_head = (s->pipe_head + 1) % PIPE_MAX;
	s->pipe_n--;
	s->last_code = POP3_RC_NONE;
	/* Each reply gets the whole command deadline, measured from now. */
	net_deadline(s->conn, s->command_timeout_ms);
	return read_status(s, label, NULL, NULL, err_r);
}

pop3_status
pop3_recv_retr(pop3_session *s, buf *out, char **err_r)
{
	char label[64];
	pop3_status st;

	if ((st = pipe_recv(s, PIPE_RETR, label, err_r)) != POP3_OK)
		return st;
	return read_body(s, label, out, err_r);
}

pop3_status
pop3_recv_dele(pop3_session *s, char **err_r)
{
	char label[64];

	return pipe_recv(s, PIPE_DELE, label, err_r);
}

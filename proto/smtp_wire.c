/* mailmill - ISC licence, see LICENSE */
/*
 * The SMTP wire: sending command lines, reading a whole reply, judging it,
 * and the errors every verb returns.  Any failure that may leave unread
 * bytes on the wire (I/O, protocol, TLS, a 421) marks the session broken: a
 * later verb would otherwise read the tail of an old reply as its own.
 */
#include <config.h>

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "proto/smtp_int.h"

static int
is_fatal(smtp_status st)
{
	return st == SMTP_EIO || st == SMTP_EUNKNOWN || st == SMTP_EPROTO || st == SMTP_ETLS;
}

smtp_status
smtp_fail(smtp_session *s, smtp_status st, char **err_r, const char *fmt, ...)
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
smtp_status
smtp_fail_net(smtp_session *s, smtp_status st, char **err_r, const char *what, char *neterr)
{
	st = smtp_fail(s, st, err_r, "%s: %s", what, neterr != NULL ? neterr : "connection failed");
	free(neterr);
	return st;
}

/* "550 5.1.1 text" of the last reply, for error messages. */
smtp_status
smtp_fail_reply(smtp_session *s, smtp_status st, char **err_r, const char *what)
{
	char q[QUOTE_MAX + 4];

	err_quote(q, s->last.text != NULL ? s->last.text : "",
		  s->last.text != NULL ? strlen(s->last.text) : 0);
	return smtp_fail(s, st, err_r, "%s: server replied %d%s%s %s", what, s->last.code,
			 s->last.enhanced[0] != '\0' ? " " : "", s->last.enhanced, q);
}

void
smtp_trace_line(smtp_session *s, char dir, const char *line, size_t len)
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

smtp_status
smtp_check_usable(smtp_session *s, char **err_r)
{
	if (s == NULL || s->conn == NULL)
		return smtp_fail(NULL, SMTP_EUSAGE, err_r, "SMTP: no session");
	if (s->broken)
		return smtp_fail(s, SMTP_EIO, err_r, "SMTP: session unusable after an earlier failure");
	return SMTP_OK;
}

/*
 * Queue one command line.  shown is what the trace sees (NULL: the line
 * itself), so that AUTH data never reaches it.
 */
smtp_status
smtp_send_line(smtp_session *s, const char *line, const char *shown, char **err_r)
{
	char *neterr = NULL;

	smtp_trace_line(s, 'C', shown != NULL ? shown : line, strlen(shown != NULL ? shown : line));
	if (net_write(s->conn, line, strlen(line), &neterr) < 0 ||
	    net_write(s->conn, "\r\n", 2, &neterr) < 0)
		return smtp_fail_net(s, SMTP_EIO, err_r, "SMTP: sending a command", neterr);
	return SMTP_OK;
}

smtp_status
smtp_flush(smtp_session *s, char **err_r)
{
	char *neterr = NULL;

	if (net_flush(s->conn, &neterr) < 0)
		return smtp_fail_net(s, SMTP_EIO, err_r, "SMTP: sending", neterr);
	return SMTP_OK;
}

/* Read one whole reply into s->last (within the deadline already set). */
smtp_status
smtp_read_reply(smtp_session *s, char **err_r)
{
	smtp_reply r;
	const char *line, *why;
	size_t len;
	char *neterr = NULL;
	int res;

	for (;;) {
		if (net_getline(s->conn, &line, &len, &neterr) < 0)
			return smtp_fail_net(s, SMTP_EIO, err_r, "SMTP: reading a reply", neterr);
		smtp_trace_line(s, 'S', line, len);
		res = smtp_reply_parse_line(&s->parser, line, len, &r, &why);
		if (res < 0)
			return smtp_fail(s, SMTP_EPROTO, err_r, "SMTP: bad reply from the server: %s", why);
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
smtp_status
smtp_classify(smtp_session *s, int want, char **err_r, const char *what)
{
	int cls = s->last.code / 100;

	if (cls == want)
		return SMTP_OK;
	if (cls == 4)
		return smtp_fail_reply(s, SMTP_ETEMP, err_r, what);
	if (cls == 5)
		return smtp_fail_reply(s, SMTP_EPERM, err_r, what);
	return smtp_fail_reply(s, SMTP_EPROTO, err_r, what);
}

/* Send, read the reply, classify: the usual one-command exchange. */
smtp_status
smtp_command(smtp_session *s, const char *line, const char *shown, int want, const char *what,
	     char **err_r)
{
	smtp_status st;

	net_deadline(s->conn, s->command_timeout_ms);
	if ((st = smtp_send_line(s, line, shown, err_r)) != SMTP_OK ||
	    (st = smtp_flush(s, err_r)) != SMTP_OK ||
	    (st = smtp_read_reply(s, err_r)) != SMTP_OK)
		return st;
	return smtp_classify(s, want, err_r, what);
}

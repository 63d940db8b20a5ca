/* mailmill - ISC licence, see LICENSE */
#ifndef MM_SMTP_INT_H
#define MM_SMTP_INT_H
/*
 * Shared by the smtp*.c files only: the session and the wire helpers every
 * verb is built from (smtp_wire.c).  Not part of the library's interface.
 */
#include <stddef.h>

#include "proto/err.h"
#include "proto/net.h"
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

/* Set *err_r (if err_r) and return st; a fatal st marks s (if any) broken. */
smtp_status smtp_fail(smtp_session *s, smtp_status st, char **err_r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* A net error: the connection is gone; neterr (taken and freed) is the message. */
smtp_status smtp_fail_net(smtp_session *s, smtp_status st, char **err_r, const char *what,
			  char *neterr);
/* As smtp_fail with "what: server replied 550 5.1.1 text" from s->last. */
smtp_status smtp_fail_reply(smtp_session *s, smtp_status st, char **err_r, const char *what);
void smtp_trace_line(smtp_session *s, char dir, const char *line, size_t len);
/* SMTP_OK for a connected session not broken by an earlier failure. */
smtp_status smtp_check_usable(smtp_session *s, char **err_r);
/* Queue line + CRLF; the trace sees shown if not NULL (AUTH data never). */
smtp_status smtp_send_line(smtp_session *s, const char *line, const char *shown, char **err_r);
smtp_status smtp_flush(smtp_session *s, char **err_r);
/* One whole reply into s->last, within the deadline already set; a 421 breaks s. */
smtp_status smtp_read_reply(smtp_session *s, char **err_r);
/* The class of s->last as a status; want is the expected first digit. */
smtp_status smtp_classify(smtp_session *s, int want, char **err_r, const char *what);
/* Fresh deadline, send, flush, read the reply, classify. */
smtp_status smtp_command(smtp_session *s, const char *line, const char *shown, int want,
			 const char *what, char **err_r);
#endif

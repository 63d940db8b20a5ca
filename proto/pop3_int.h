/* mailmill - ISC licence, see LICENSE */
#ifndef MM_POP3_INT_H
#define MM_POP3_INT_H
/*
 * Shared by the pop3*.c files only: the session and the helpers every
 * command is built from.  Not part of the library's interface.
 */
#include <stddef.h>

#include "proto/buf.h"
#include "proto/err.h"
#include "proto/net.h"
#include "proto/pop3.h"

/* The window is the caller's to bound; this only stops a runaway caller. */
#define PIPE_MAX 1024
/* CAPA is a few hundred bytes in practice. */
#define CAPA_MAX_BYTES 16384
#define LIST_DEFAULT_MAX 1000000UL
/* RFC 2449 allows 255 octets per argument; a command line fits in this. */
#define ARG_MAX_LEN 255
#define CMD_MAX 1024
/*
 * Body lines may be far longer than replies (RFC 5322's 998 is often
 * ignored, e.g. by HTML mailers): net's line cap is this, and the caller's
 * max_line bounds protocol lines only.  A body line longer still comes in
 * pieces of this size (net_getline_part), so memory stays bounded and no
 * line length fails a message.
 */
#define BODY_LINE_MAX (1024 * 1024)
/* Server text quoted in an error message. */
#define QUOTE_MAX ERR_QUOTE_MAX

enum { PIPE_RETR = 1, PIPE_DELE };

struct pop3_session {
	net_conn *conn;
	char *host, *port, *ca_file; /* port: the caller's, for OAUTHBEARER */
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
	int quit_sent;     /* QUIT sent, its reply not read (pop3_quit_recv) */
	int unflushed;
	unsigned long ignored; /* listing lines of the last LIST/UIDL left out */
	char cut[24];      /* the message number of a listing line too long */
	struct {
		int verb;
		unsigned long msgno;
	} pipe[PIPE_MAX];
	size_t pipe_head, pipe_n;
};

/* ---- the wire (pop3_wire.c) ---- */
/* *err_r = an allocated message (nothing if err_r is NULL). */
/* Server text made safe for a log line into dst: no control bytes, bounded. */
/* Set the message and return st; a fatal st marks the session broken. */
pop3_status pop3_fail(pop3_session *s, pop3_status st, char **err_r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* As pop3_fail with net's message (taken and freed). */
pop3_status pop3_net_fail(pop3_session *s, pop3_status st, const char *label, char *nerr,
			  char **err_r);
void pop3_trace_line(pop3_session *s, char dir, const char *line, size_t len);
/* 1 for a non-empty single-line argument within RFC 2449's length. */
int pop3_arg_ok(const char *a);
/* Queue line + CRLF (and flush if asked); the trace sees `shown` if not NULL. */
pop3_status pop3_send_line(pop3_session *s, const char *label, const char *line,
			   const char *shown, int flush, char **err_r);
/* Next line; reply != 0 bounds it by max_line (EPROTO beyond). */
pop3_status pop3_get_line(pop3_session *s, const char *label, int reply, const char **line_r,
			  size_t *len_r, char **err_r);
/* Judge a status line: OK (text after the status word), ENEG (code kept) or EPROTO. */
pop3_status pop3_check_status(pop3_session *s, const char *label, const char *line, size_t len,
			      const char **text_r, size_t *tlen_r, char **err_r);
pop3_status pop3_read_status(pop3_session *s, const char *label, const char **text_r,
			     size_t *tlen_r, char **err_r);
/* A listing line: 1 a line, 0 the terminating ".", -1 failure (*st_r). */
int pop3_ml_next(pop3_session *s, const char *label, const char **data_r, size_t *len_r,
		 pop3_status *st_r, char **err_r);
/*
 * As pop3_ml_next for LIST and UIDL, where a line longer than max_line
 * costs only its message: it is read to its end and comes back as its
 * leading message number alone ("" if it has none).
 */
int pop3_listing_next(pop3_session *s, const char *label, const char **data_r, size_t *len_r,
		      pop3_status *st_r, char **err_r);
/* A RETR/TOP body into out (not traced). */
pop3_status pop3_read_body(pop3_session *s, const char *label, buf *out, char **err_r);
/* Start a synchronous command: a usable session, no replies pending, a fresh deadline. */
pop3_status pop3_begin(pop3_session *s, const char *label, char **err_r);
/* pop3_begin, send one line, read its status. */
pop3_status pop3_simple(pop3_session *s, const char *label, const char *line, const char *shown,
			const char **text_r, size_t *tlen_r, char **err_r);
#endif

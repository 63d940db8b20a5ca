/* mailmill - ISC licence, see LICENSE */
#ifndef MM_NET_H
#define MM_NET_H
/*
 * A buffered client connection: TCP (getaddrinfo, IPv4 and IPv6), optional
 * TLS (implicit or upgraded in band), line reading with a bounded line
 * length, and deadlines.  Every blocking call fails once the current
 * deadline has passed, so a server that drips one byte a second cannot hold
 * a command forever: callers set a deadline per command (net_deadline).
 *
 * Error contract: functions returning int give 0 (or a count) on success and
 * -1 on failure with *err_r set to an allocated message (caller frees); the
 * connection is then unusable except for net_close.  net_last_timeout() says
 * whether the failure was a deadline.
 */
#include <stddef.h>
#include <sys/types.h>

typedef struct net_conn net_conn;

/*
 * Connect to host:port, trying every address getaddrinfo returns until one
 * answers, within timeout_ms in all (each address gets a share of what is
 * left; <= 0 means no limit).  The connect deadline stays the current one
 * (net_deadline) until changed, so a greeting or implicit TLS handshake that
 * follows is bounded too.  max_line bounds net_getline.  Name resolution
 * itself is bounded only by the resolver's own timeouts.
 */
int net_connect(const char *host, const char *port, int timeout_ms, size_t max_line,
		net_conn **conn_r, char **err_r);
/* Wrap an already connected fd (a socketpair in tests).  Takes the fd, and
 * closes it on failure too.  It is made non-blocking; no deadline is set. */
int net_from_fd(int fd, size_t max_line, net_conn **conn_r, char **err_r);
/*
 * Start TLS on the connection (implicit TLS right after connect, or after a
 * STLS/STARTTLS go-ahead).  Refuses with an "injection" error if any bytes
 * were already received and buffered in plain text, or are already waiting
 * in the socket: a server may not send anything between its go-ahead and the
 * handshake.  Also refuses if unsent output is queued.  host is what the
 * certificate must name (a DNS name, or an IP literal); ca_file NULL means
 * the system store.  Bounded by the current deadline.  On any failure the
 * connection is dead: there is never a fallback to plain text.
 */
int net_starttls(net_conn *c, const char *host, const char *ca_file, char **err_r);
int net_is_tls(const net_conn *c);
const char *net_tls_describe(const net_conn *c); /* "" without TLS; borrowed */
const char *net_tls_cert(const net_conn *c);     /* tls_cert; "" without TLS */

/*
 * Every following I/O must finish within ms from now (<= 0: no deadline).
 * The deadline is absolute: it is checked before every read and write and
 * bounds every wait, so data trickling in does not extend it.
 */
void net_deadline(net_conn *c, int ms);
/* 1 if the failure that killed the connection was the deadline. */
int net_last_timeout(const net_conn *c);

/*
 * Next line without its line end (CRLF or LF): 1 and *line, *len (borrowed
 * until the next read on c, NUL-terminated), -1 on error (EOF before a line
 * end, too long, timeout, I/O error).  Queued output is flushed first, so
 * the command a reply answers has always been sent.
 */
int net_getline(net_conn *c, const char **line, size_t *len, char **err_r);
/*
 * As net_getline, but a line longer than the cap comes in pieces of the cap
 * (linebuf_next_part): *whole says whether this is a line's last piece.  A
 * piece that is not whole is not NUL-terminated.  For message bodies, whose
 * lines only the caller's size limit bounds.
 */
int net_getline_part(net_conn *c, const char **line, size_t *len, int *whole, char **err_r);
/*
 * For a caller that splits many lines at once (a message body): the bytes
 * already received and not yet returned, without any I/O (borrowed until the
 * next call on c; not NUL-terminated), 0 on a failed connection.  Drop what
 * was used with net_consume (n <= what net_peek returned); read more with
 * net_getline, which keeps all of its checks for the next line.
 * net_line_cap is net_getline's line cap (max_line).
 */
size_t net_peek(const net_conn *c, const char **data_r);
void net_consume(net_conn *c, size_t n);
size_t net_line_cap(const net_conn *c);
/*
 * For a caller that frames the stream itself (IMAP literals): flush queued
 * output, then read at least one more byte into the buffer (net_peek shows
 * it), within the current deadline.  Bytes read (> 0), or -1 (EOF is an
 * error here: "connection closed by ...").
 */
int net_read_more(net_conn *c, char **err_r);
/*
 * As net_read_more when the socket (or TLS) already has something to read,
 * without waiting otherwise: 0 if nothing is there.  For callers that poll
 * many connections (IMAP IDLE).  A TLS record only partly arrived is waited
 * for within the current deadline.
 */
int net_read_ready(net_conn *c, char **err_r);
/* Queue bytes for sending (buffered until net_flush or the buffer fills). */
int net_write(net_conn *c, const void *data, size_t len, char **err_r);
int net_printf(net_conn *c, char **err_r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int net_flush(net_conn *c, char **err_r);
/* Bytes received and not yet returned as lines. */
size_t net_pending(const net_conn *c);
/* Closes (TLS close_notify best effort) and frees; sets *c to NULL. */
void net_close(net_conn **c);
/* The socket (borrowed: for poll, or for tests that shut it down abruptly to
 * simulate a lost connection).  Do not read or write it directly. */
int net_fd(const net_conn *c);
#endif

/* mailmill - ISC licence, see LICENSE */
/*
 * rawio: what the benchmark's raw reference clients (rawpop, rawimap) share,
 * measuring tools, not part of mailmill: one blocking connection (TCP or
 * verified TLS) read through one buffer, the current message's buffer, and
 * the durable Maildir writer (tmp/ -> new/, one flush for the whole run).
 * Every failure ends the process with a message naming the tool.
 */
#ifndef MAILMILL_BENCH_RAWIO_H
#define MAILMILL_BENCH_RAWIO_H

#include <stddef.h>

/* The tool's name in messages ("rawpop"), set by main before anything else. */
extern const char *rawio_name;

void rawio_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

void rawio_connect(const char *host, const char *port);
/* Implicit TLS on the connection: the peer must present a certificate for
 * `name` signed by `cafile` (NULL: the system's store). */
void rawio_tls(const char *cafile, const char *name);
void rawio_write(const char *p, size_t n);
/* printf into one write (at most 511 bytes). */
void rawio_command(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The next line without CRLF, NUL-terminated in place, valid until the next
 * read; *len its length. */
char *rawio_line(size_t *len);
/* Reads exactly n bytes into the current message (appended). */
void rawio_read_msg(size_t n);

/* The current message: bytes as they will be stored. */
extern char *rawio_msg;
extern size_t rawio_msg_len;
void rawio_msg_reset(void);
void rawio_msg_add(const char *p, size_t n);
/* Rewrites CRLF to LF in the current message, from byte `from` on. */
void rawio_msg_to_lf(size_t from);

/* Storage for fetched messages: a Maildir (durable at rawio_store_flush)
 * or /dev/null when maildir is NULL. */
void rawio_store_open(const char *maildir);
/* Stores the current message as file number i. */
void rawio_store(long i);
/* One syncfs of the Maildir's file system, then fsync of new/ (no-op for
 * /dev/null). */
void rawio_store_flush(void);

#endif

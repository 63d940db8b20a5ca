/* mailmill - ISC licence, see LICENSE */
#ifndef MM_TLS_H
#define MM_TLS_H
/*
 * TLS over a connected socket.  The only place that includes OpenSSL.
 * Verification is always on: peer certificate against the system store or
 * ca_file, host name (or IP address) against the certificate, TLS >= 1.2,
 * SNI sent for host names.  Errors: -1 and *err_r set (allocated, caller
 * frees) to a message fit for an operator, errno ETIMEDOUT when the deadline
 * passed.  The socket must be non-blocking; writes never raise SIGPIPE.
 * deadline_ms 0 means no deadline.
 */
#include <stddef.h>
#include <sys/types.h>

typedef struct tls_conn tls_conn;

/*
 * Before forking many processes that connect: initialise the library and
 * load the CA store of ca_file (NULL: the system's) once, so that each
 * process forked after uses it instead of loading it again (as long as the
 * file is unchanged: a changed file is read afresh).  0, or -1 and *err_r
 * (the connections then load it themselves and say why it fails).
 */
int tls_preload(const char *ca_file, char **err_r);

/*
 * Handshake on fd (blocking socket semantics emulated with poll until
 * deadline_ms, a CLOCK_MONOTONIC time in ms).  ca_file may be NULL (system
 * store).  On success *tls_r is owned by the caller (tls_close).
 */
int tls_connect(int fd, const char *host, const char *ca_file, long long deadline_ms,
		tls_conn **tls_r, char **err_r);
/* Read up to len bytes; returns bytes (>0), 0 on clean EOF, -1 on error. */
ssize_t tls_read(tls_conn *t, void *buf, size_t len, long long deadline_ms, char **err_r);
/* Write all len bytes; 0 or -1. */
int tls_write(tls_conn *t, const void *buf, size_t len, long long deadline_ms, char **err_r);
/* Bytes already decrypted and waiting inside the TLS layer. */
size_t tls_pending(tls_conn *t);
/* Human-readable "TLSv1.3 TLS_AES_256_GCM_SHA384" (borrowed). */
const char *tls_describe(tls_conn *t);
/* "subject CN = host, expires Dec  4 21:00:00 2027 GMT": the server's
 * certificate (borrowed; "" if it could not be described). */
const char *tls_cert(tls_conn *t);
/*
 * MD5 of data as 32 lowercase hex digits and a NUL, for APOP (RFC 1939),
 * which is defined on MD5; kept here so that OpenSSL stays in one file.
 * 0, or -1 if MD5 is unavailable (e.g. a FIPS-only OpenSSL).
 */
int tls_md5_hex(const void *data, size_t len, char hex[33]);
/* Sends close_notify (best effort) and frees; does not close the fd. */
void tls_close(tls_conn **t);
#endif

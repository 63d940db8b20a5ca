/* mailmill - ISC licence, see LICENSE */
#ifndef MM_TEST_TLS_RELAY_H
#define MM_TEST_TLS_RELAY_H
/*
 * Real TLS for the scripted servers of the unit tests: a throw-away CA and
 * server certificate (tests/data/tls/mkcerts.sh), and a process that
 * speaks TLS on one socket and relays the plain text to another, so a
 * script written for plain text runs unchanged behind TLS.
 */
#include <stddef.h>
#include <sys/types.h>

/* Make the certificates in a fresh temporary directory: 0, or -1. */
int tls_relay_certs(const char *srcdir);
/* The test CA's file (for pop3_options/smtp_options ca_file); borrowed. */
const char *tls_relay_ca(void);
/* Remove the directory. */
void tls_relay_cleanup(void);
/*
 * In a forked scripted server: fork a relay that accepts TLS on tls_fd (as
 * "localhost") and carries the plain text to and from the returned fd,
 * which the script then reads and writes.  *pid_r is the relay (wait for
 * it after closing the returned fd); -1 on failure.
 */
int tls_relay_start(int tls_fd, pid_t *pid_r);

/* What the OAuth tests behind the relay share.  A token of n characters of
 * RFC 6750's alphabet, starting "eyJ0eXAi" (caller frees). */
char *tls_relay_token(size_t n);
/*
 * prefix + the base64 of the response the server must read (caller frees):
 * XOAUTH2, or with bearer OAUTHBEARER for host "localhost" and port.  Built
 * here from the specifications' byte layout, independently of proto/sasl.
 */
char *tls_relay_oauth_line(const char *prefix, int bearer, const char *user,
			   const char *token, const char *port);
#endif

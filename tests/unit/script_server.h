/* mailmill - ISC licence, see LICENSE */
#ifndef MM_TEST_SCRIPT_SERVER_H
#define MM_TEST_SCRIPT_SERVER_H
/*
 * A scripted server for the protocol unit tests (POP3, SMTP, the account
 * run): a forked child plays a list of steps against the client, so a
 * dialogue, a refusal, a cut or a stall is written out line by line.
 *
 * A script is a NULL-terminated array of steps; the first character says
 * what the step does:
 *   "<LINE"  read one CRLF-terminated client line, which must equal LINE
 *   ">TEXT"  send TEXT as it is, in one write (TEXT carries its own CRLFs)
 *   "}TEXT"  send TEXT three bytes at a time, pausing between writes
 *   "DDATA"  read message data up to the "." line; it must equal DATA
 *            (dot-stuffed, CRLF line ends, without the final ".\r\n")
 *   "E"      read until EOF: the client must send nothing more
 *   "H"      hold: answer nothing more, read until the client leaves
 *   "Zms"    sleep ms milliseconds
 *   "X"      close the connection now (and stop)
 *   "R"      reset the connection (RST, SO_LINGER 0; TCP only) and stop
 *   "T"      start TLS as "localhost" (tests/unit/tls_relay: call
 *            tls_relay_certs first) and play the rest of the script behind it:
 *            the server side of STARTTLS / STLS
 * The child exits 0, or with the number of the step that failed (after a
 * line on stderr saying what it got and what it wanted).
 */
#include <sys/types.h>

typedef struct {
	pid_t pid;  /* the scripted child */
	int fd;     /* the client's end (the caller hands it on or closes it), or -1 */
	char port[8]; /* script_server_listen: the 127.0.0.1 port, else "" */
} script_server;

/* Over a socketpair: fd is the client's end. */
script_server script_server_start(const char *const *script);
/* Over TCP on 127.0.0.1 (where "R" can reset): fd is already connected. */
script_server script_server_start_tcp(const char *const *script);
/*
 * A listener on 127.0.0.1 at an ephemeral port: the child accepts one
 * connection and plays the script on it.  fd is -1; connect to port
 * (e.g. through pop3_connect) yourself.
 */
script_server script_server_listen(const char *const *script);
/*
 * Over a socketpair behind real TLS as "localhost" (tests/unit/tls_relay:
 * call tls_relay_certs first); fd is the client's end.
 */
script_server script_server_start_tls(const char *const *script);
/* A listening socket on 127.0.0.1 at an ephemeral port (written to port):
 * its fd. */
int script_server_bind(char port[8]);
/* Wait for the child; the test fails unless every step went as scripted. */
void script_server_finish(script_server *sv);
/* Play script on fd in this process: 0, or the number of the failed step. */
int script_server_run(int fd, const char *const *script);
#endif

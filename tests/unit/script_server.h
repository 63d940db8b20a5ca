/* mailmill - ISC licence, see LICENSE */
#ifndef MM_TEST_SCRIPT_SERVER_H
#define MM_TEST_SCRIPT_SERVER_H
/*
 * A scripted server for the unit tests (cmocka): a list of steps run by a
 * forked child on its end of a socketpair (server_start) or on the one
 * connection it accepts on 127.0.0.1 (server_listen):
 *   "<LINE"  read one CRLF-terminated command, which must be LINE
 *   ">TEXT"  send TEXT at once
 *   "}TEXT"  send TEXT a few bytes at a time, pausing between writes
 *   "E"      read until EOF: the client must send nothing more
 *   "Zms"    sleep ms milliseconds
 *   "X"      close the connection now (and stop)
 * The child's exit status is 0, or the number of the step that failed.
 */

#include <sys/types.h>

typedef struct {
	pid_t pid;
	int fd;                /* the client's end; -1 for server_listen */
} server;

/* Fork the server on a socketpair; the test talks over sv.fd. */
server server_start(const char *const *script);
/* Fork the server on a fresh 127.0.0.1 port (*port_r), for code that
 * connects by itself; it serves one connection. */
server server_listen(const char *const *script, int *port_r);
/* Run script on fd (for a server the test forks itself, e.g. behind a TLS
 * relay): 0, or the number of the step that failed. */
int srv_run(int fd, const char *const *script);
/* Wait for the server; fails the test unless it ran its whole script. */
void server_done(server sv);
#endif

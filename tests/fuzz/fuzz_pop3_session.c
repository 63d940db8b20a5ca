/* mailmill - ISC licence, see LICENSE */
/*
 * A whole POP3 session against a server that says the fuzzer's bytes: the
 * input is written into one end of a socketpair, then the client library
 * reads its greeting, CAPA, authenticates, LISTs, UIDLs, RETRs and DELEs in
 * pipelined batches and QUITs on the other end, as the daemon does.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "proto/buf.h"
#include "proto/pop3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	pop3_options po = { .command_timeout_ms = 1000, .connect_timeout_ms = 1000 };
	pop3_session *s = NULL;
	pop3_entry *e = NULL;
	size_t n = 0, i;
	int sv[2], big = 1 << 20;
	char *err = NULL;
	buf body = { .max = 65536 };

	/* The whole input must fit in the socket buffers: nobody reads later. */
	if (size > 65536 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 0;
	(void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
	(void)setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
	if (size > 0 && write(sv[1], data, size) != (ssize_t)size)
		goto out;
	shutdown(sv[1], SHUT_WR);
	if (pop3_from_fd(sv[0], &po, &s, &err) != POP3_OK) {
		sv[0] = -1; /* the library owns it */
		goto out;
	}
	sv[0] = -1;
	(void)pop3_has_capa(s, "PIPELINING");
	if (pop3_user(s, "u", &err) != POP3_OK || pop3_pass(s, "p", &err) != POP3_OK)
		goto out;
	free(err);
	err = NULL;
	if (pop3_list(s, 1000, &e, &n, &err) != POP3_OK)
		goto out;
	if (pop3_uidl(s, e, n, &err) != POP3_OK)
		goto out;
	for (i = 0; i < n && i < 8; i++)
		if (pop3_send_retr(s, e[i].msgno, &err) != POP3_OK)
			goto out;
	for (i = 0; i < n && i < 8; i++) {
		buf_reset(&body);
		if (pop3_recv_retr(s, &body, &err) > POP3_ENEG)
			goto out;
		free(err);
		err = NULL;
		if (body.len > body.max)
			__builtin_trap();
	}
	for (i = 0; i < n && i < 8; i++)
		if (pop3_send_dele(s, e[i].msgno, &err) != POP3_OK)
			goto out;
	for (i = 0; i < n && i < 8; i++) {
		if (pop3_recv_dele(s, &err) > POP3_ENEG)
			goto out;
		free(err);
		err = NULL;
	}
	(void)pop3_quit(s, &err);
out:
	free(err);
	free(e);
	buf_free(&body);
	pop3_close(&s);
	if (sv[0] >= 0)
		close(sv[0]);
	close(sv[1]);
	return 0;
}

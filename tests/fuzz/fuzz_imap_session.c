/* mailmill - ISC licence, see LICENSE */
/*
 * A whole IMAP session against a server that says the fuzzer's bytes: the
 * input is written into one end of a socketpair, then the client library
 * reads the greeting, logs in, selects, lists, fetches in a pipelined
 * batch, flags, moves or expunges, IDLEs and logs out on the other end, as
 * the daemon would.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "proto/buf.h"
#include "proto/imap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SOFT(st) ((st) == IMAP_OK || (st) == IMAP_ENO || (st) == IMAP_EBAD || \
		  (st) == IMAP_ETOOBIG || (st) == IMAP_EGONE || (st) == IMAP_EUSAGE || \
		  (st) == IMAP_EAUTH)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	imap_options o = { .command_timeout_ms = 1000, .max_line = 4096, .max_literal = 1024 };
	imap_session *s = NULL;
	imap_entry *e = NULL;
	imap_mailbox mb;
	uint32_t uids[8];
	size_t n = 0, i, k = 0;
	int sv[2], big = 1 << 20;
	unsigned ev;
	char *err = NULL;
	buf body = { .max = 4096 };
	imap_status st;

	if (size > 65536 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 0;
	(void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
	(void)setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
	if (size > 0 && write(sv[1], data, size) != (ssize_t)size)
		goto out;
	shutdown(sv[1], SHUT_WR);
	st = imap_from_fd(sv[0], &o, &s, &err);
	sv[0] = -1; /* the library owns it */
	if (st != IMAP_OK)
		goto out;
#define STEP(call) do { free(err); err = NULL; st = (call); if (!SOFT(st)) goto out; } while (0)
	if (!imap_is_authenticated(s))
		STEP(imap_login(s, "user", "p\xc3\xa4ss", &err));
	STEP(imap_select(s, "INBOX", &mb, &err));
	STEP(imap_uid_list(s, 1, 100, &e, &n, &err));
	for (i = 0; i < n && k < 8; i++)
		if (imap_send_fetch(s, e[i].uid, &err) == IMAP_OK)
			uids[k++] = e[i].uid;
	for (i = 0; i < k; i++) {
		buf_reset(&body);
		STEP(imap_recv_fetch(s, &body, NULL, &err));
		if (body.len > body.max)
			__builtin_trap();
	}
	STEP(imap_uid_store_flags(s, uids, k, "\\Seen", &err));
	if (imap_has_capa(s, "MOVE"))
		STEP(imap_uid_move(s, uids, k, "Done", &err));
	else
		STEP(imap_uid_expunge(s, uids, k, &err));
	STEP(imap_idle_start(s, &err));
	if (st == IMAP_OK) {
		STEP(imap_idle_read(s, &ev, &err));
		STEP(imap_idle_done(s, &err));
	}
	free(err);
	err = NULL;
	(void)imap_logout(s, &err);
out:
	free(err);
	free(e);
	buf_free(&body);
	imap_close(&s);
	if (sv[0] >= 0)
		close(sv[0]);
	close(sv[1]);
	return 0;
}

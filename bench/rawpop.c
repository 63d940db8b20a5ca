/* mailmill - ISC licence, see LICENSE */
/*
 * rawpop: the benchmark's reference POP3 client, a measuring tool, not part
 * of mailmill.  One connection, USER/PASS, STAT, then RETR i + DELE i for
 * every message, pipelined with a bounded window, then QUIT.
 *
 *   rawpop [-t] [-C cafile] [-N name] [-w window] [-d maildir] host port user pass
 *
 * Without -d every message is written to /dev/null: the server's limit.
 * With -d each message (dot-unstuffed, LF line ends) becomes a file in
 * maildir/tmp, renamed into maildir/new; before QUIT the whole batch is made
 * durable with one flush (syncfs, then fsync of new/): the durable-write
 * limit that no safe Maildir archiver can beat by much.
 * Prints "messages=N bytes=B" (B = message bytes as stored).
 * Built with rawio.c (connection, Maildir).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rawio.h"

#define MAX_MSGS 10000000L

static void expect_ok(const char *what)
{
	size_t n;
	char *l = rawio_line(&n);
	if (strncmp(l, "+OK", 3) != 0)
		rawio_die("%s: %s", what, l);
}

/* The current message, dot-unstuffed, LF line ends. */
static void read_message(void)
{
	size_t n;
	rawio_msg_reset();
	for (;;) {
		char *l = rawio_line(&n);
		if (l[0] == '.') {
			if (n == 1)
				return;
			l++;
			n--;
		}
		rawio_msg_add(l, n);
	}
}

int main(int argc, char **argv)
{
	const char *cafile = NULL, *name = "localhost", *maildir = NULL;
	long window = 256;
	int c, use_tls = 0;
	rawio_name = "rawpop";
	while ((c = getopt(argc, argv, "tC:N:w:d:")) != -1) {
		switch (c) {
		case 't': use_tls = 1; break;
		case 'C': cafile = optarg; break;
		case 'N': name = optarg; break;
		case 'w': window = strtol(optarg, NULL, 10); break;
		case 'd': maildir = optarg; break;
		default: return 2;
		}
	}
	if (argc - optind != 4 || window < 2 || window > 4096) {
		fprintf(stderr, "usage: rawpop [-t] [-C cafile] [-N name] [-w 2..4096] "
				"[-d maildir] host port user pass\n");
		return 2;
	}
	rawio_store_open(maildir);
	rawio_connect(argv[optind], argv[optind + 1]);
	if (use_tls)
		rawio_tls(cafile, name);
	expect_ok("greeting");
	rawio_command("USER %s\r\n", argv[optind + 2]);
	expect_ok("USER");
	rawio_command("PASS %s\r\n", argv[optind + 3]);
	expect_ok("PASS");
	rawio_command("STAT\r\n");
	size_t n;
	char *l = rawio_line(&n);
	long total;
	if (sscanf(l, "+OK %ld", &total) != 1 || total < 0 || total > MAX_MSGS)
		rawio_die("STAT: %s", l);

	/* Commands are RETR 1, DELE 1, RETR 2, ...; command k is RETR for even k.
	 * At most `window` commands are unanswered, so our writes never block
	 * while the server waits for us to read. */
	long ncmd = 2 * total, sent = 0, done = 0, bytes = 0;
	while (done < ncmd) {
		if (sent < ncmd && sent - done <= window / 2) {
			char b[64 * 1024];
			size_t bl = 0;
			while (sent < ncmd && sent - done < window && bl + 32 < sizeof b) {
				int w = snprintf(b + bl, sizeof b - bl, "%s %ld\r\n",
						 sent % 2 ? "DELE" : "RETR", sent / 2 + 1);
				bl += (size_t)w;
				sent++;
			}
			rawio_write(b, bl);
		}
		l = rawio_line(&n);
		if (strncmp(l, "+OK", 3) != 0)
			rawio_die("%s %ld: %s", done % 2 ? "DELE" : "RETR", done / 2 + 1, l);
		if (done % 2 == 0) {
			read_message();
			rawio_store(done / 2 + 1);
			bytes += (long)rawio_msg_len;
		}
		done++;
	}
	/* one flush for the whole batch, then the names in new/ */
	rawio_store_flush();
	rawio_command("QUIT\r\n");
	expect_ok("QUIT");
	printf("messages=%ld bytes=%ld\n", total, bytes);
	return 0;
}

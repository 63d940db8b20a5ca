/* mailmill - ISC licence, see LICENSE */
/*
 * rawimap: the benchmark's reference IMAP client, a measuring tool, not part
 * of mailmill.  One connection: LOGIN, SELECT, then every message fetched
 * with pipelined FETCH (UID BODY.PEEK[]) commands (chunks of -c messages,
 * all sent at once), then either UID STORE +FLAGS.SILENT (\Deleted) and
 * UID EXPUNGE of exactly the fetched UIDs (pipelined together), or UID MOVE
 * of them to the -m folder (RFC 6851), then LOGOUT.
 *
 *   rawimap [-t] [-C cafile] [-N name] [-f folder] [-m move_to] [-c chunk]
 *           [-u window] [-d maildir] host port user pass
 *
 * -u: fetch as a UID-keyed client does instead: UID SEARCH ALL, then one
 * UID FETCH <uid> (BODY.PEEK[]) per message, at most `window` in flight
 * (what proto/imap sends), to tell the server's cost per command from its
 * cost per message.
 *
 * Without -d every message is written to /dev/null: the server's limit.
 * With -d each message (LF line ends) becomes a file in maildir/tmp, renamed
 * into maildir/new as it arrives; before the messages leave the folder the
 * whole batch is made durable with one flush (syncfs, then fsync of new/):
 * the durable-write limit for a Maildir archive.
 * Prints "messages=N bytes=B" (B = message bytes as stored).
 * Built with rawio.c (connection, Maildir).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rawio.h"

#define MAX_MSGS 10000000L
#define MAX_LITERAL (1L << 30)

static int tag_is(const char *l, const char *tag)
{
	size_t t = strlen(tag);
	return strncmp(l, tag, t) == 0 && l[t] == ' ';
}

/* Reads lines until the tagged answer to `tag`; dies unless it is OK. */
static void expect_tagged_ok(const char *tag)
{
	size_t n;
	for (;;) {
		char *l = rawio_line(&n);
		if (!tag_is(l, tag))
			continue;
		if (strncmp(l + strlen(tag) + 1, "OK", 2) != 0)
			rawio_die("%s", l);
		return;
	}
}

/* A literal announced at the end of line l ("... {123}"), or -1. */
static long literal_size(const char *l, size_t n)
{
	if (n < 3 || l[n - 1] != '}')
		return -1;
	const char *o = memrchr(l, '{', n);
	if (o == NULL)
		return -1;
	char *end;
	long v = strtol(o + 1, &end, 10);
	if (end != l + n - 1 || v < 0 || v > MAX_LITERAL)
		rawio_die("bad literal: %s", l);
	return v;
}

static long uid_in(const char *l)
{
	const char *u = strstr(l, "UID ");
	return u ? strtol(u + 4, NULL, 10) : 0;
}

/* Quoted IMAP string (the benchmark's names and passwords need no more). */
static const char *quoted(const char *s)
{
	static char b[4][256];
	static int k;
	char *q = b[k++ % 4];
	size_t o = 0;
	q[o++] = '"';
	for (; *s && o < sizeof b[0] - 3; s++) {
		if (*s == '"' || *s == '\\')
			q[o++] = '\\';
		q[o++] = *s;
	}
	if (*s)
		rawio_die("argument too long");
	q[o++] = '"';
	q[o] = '\0';
	return q;
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return (x > y) - (x < y);
}

/* "1:500,502,510:511" from sorted UIDs; the caller frees it. */
static char *uid_set(long *uids, long n)
{
	size_t cap = 64 + (size_t)n * 24, o = 0;
	char *s = malloc(cap);
	if (s == NULL)
		rawio_die("out of memory");
	qsort(uids, (size_t)n, sizeof *uids, cmp_long);
	for (long i = 0; i < n;) {
		long j = i;
		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		o += (size_t)snprintf(s + o, cap - o, i == j ? "%s%ld" : "%s%ld:%ld",
				      o ? "," : "", uids[i], uids[j]);
		i = j + 1;
	}
	return s;
}

/* UID SEARCH ALL: the folder's UIDs (exactly total of them), ascending. */
static long *search_all(long total)
{
	long *u = calloc((size_t)total + 1, sizeof *u), n = 0;
	size_t len;
	if (u == NULL)
		rawio_die("out of memory");
	rawio_command("q UID SEARCH ALL\r\n");
	for (;;) {
		char *l = rawio_line(&len);
		if (strncmp(l, "* SEARCH", 8) == 0) {
			for (char *p = l + 8; *p == ' ';) {
				long v = strtol(p + 1, &p, 10);
				if (n == total || v <= 0)
					rawio_die("SEARCH: more UIDs than EXISTS, or a bad one");
				u[n++] = v;
			}
		} else if (tag_is(l, "q")) {
			if (strncmp(l + 2, "OK", 2) != 0 || n != total)
				rawio_die("SEARCH: %s (%ld of %ld UIDs)", l, n, total);
			return u;
		}
	}
}

/* One write of UID FETCH commands for want[from..until): the new count sent. */
static long send_uid_fetches(const long *want, long from, long total, long until)
{
	char b[64 * 1024];
	size_t bl = 0;
	while (from < total && from < until && bl + 64 < sizeof b) {
		bl += (size_t)snprintf(b + bl, sizeof b - bl, "u%ld UID FETCH %ld (BODY.PEEK[])\r\n",
				       from, want[from]);
		from++;
	}
	rawio_write(b, bl);
	return from;
}

int main(int argc, char **argv)
{
	const char *cafile = NULL, *name = "localhost", *maildir = NULL;
	const char *folder = "INBOX", *move_to = NULL;
	long chunk = 1000, window = 0;
	int c, use_tls = 0;
	rawio_name = "rawimap";
	while ((c = getopt(argc, argv, "tC:N:f:m:c:u:d:")) != -1) {
		switch (c) {
		case 't': use_tls = 1; break;
		case 'C': cafile = optarg; break;
		case 'N': name = optarg; break;
		case 'f': folder = optarg; break;
		case 'm': move_to = optarg; break;
		case 'c': chunk = strtol(optarg, NULL, 10); break;
		case 'u': window = strtol(optarg, NULL, 10); break;
		case 'd': maildir = optarg; break;
		default: return 2;
		}
	}
	if (argc - optind != 4 || chunk < 1 || window < 0 || window > 4096) {
		fprintf(stderr, "usage: rawimap [-t] [-C cafile] [-N name] [-f folder] [-m move_to] "
				"[-c chunk] [-u 1..4096] [-d maildir] host port user pass\n");
		return 2;
	}
	rawio_store_open(maildir);
	rawio_connect(argv[optind], argv[optind + 1]);
	if (use_tls)
		rawio_tls(cafile, name);
	size_t n;
	char *l = rawio_line(&n);
	if (strncmp(l, "* OK", 4) != 0)
		rawio_die("greeting: %s", l);
	rawio_command("l LOGIN %s %s\r\n", quoted(argv[optind + 2]), quoted(argv[optind + 3]));
	expect_tagged_ok("l");

	rawio_command("s SELECT %s\r\n", quoted(folder));
	long total = -1;
	for (;;) {
		l = rawio_line(&n);
		long v;
		char word[16];
		if (sscanf(l, "* %ld %15s", &v, word) == 2 && strcmp(word, "EXISTS") == 0)
			total = v;
		if (tag_is(l, "s")) {
			if (strncmp(l + 2, "OK", 2) != 0)
				rawio_die("SELECT: %s", l);
			break;
		}
	}
	if (total < 0 || total > MAX_MSGS)
		rawio_die("SELECT gave no usable EXISTS");

	long *uids = calloc((size_t)total + 1, sizeof *uids);
	if (uids == NULL)
		rawio_die("out of memory");
	long nchunks = (total + chunk - 1) / chunk, *want = NULL, sent = 0;
	if (window > 0) {
		want = search_all(total);
		nchunks = total;
	} else {
		/* All FETCH commands at once: they are a few bytes each, and the
		 * server answers them in order while we read. */
		for (long k = 0; k < nchunks; k++) {
			long lo = k * chunk + 1, hi = lo + chunk - 1 < total ? lo + chunk - 1 : total;
			rawio_command("f%ld FETCH %ld:%ld (UID BODY.PEEK[])\r\n", k, lo, hi);
		}
	}
	long got = 0, bytes = 0, done = 0;
	while (done < nchunks) {
		if (want != NULL && sent < total && sent - done <= window / 2)
			sent = send_uid_fetches(want, sent, total, done + window);
		l = rawio_line(&n);
		if (l[0] == 'f' || l[0] == 'u') {
			if (strncmp(strchr(l, ' ') ? strchr(l, ' ') + 1 : l, "OK", 2) != 0)
				rawio_die("FETCH: %s", l);
			done++;
			continue;
		}
		long lit = literal_size(l, n);
		if (strncmp(l, "* ", 2) != 0 || strstr(l, " FETCH (") == NULL || lit < 0)
			continue;
		if (got == total)
			rawio_die("more messages than EXISTS said");
		long uid = uid_in(l);
		rawio_msg_reset();
		rawio_read_msg((size_t)lit);
		rawio_msg_to_lf(0);
		/* the rest of the response: ")" or " UID 7)" */
		l = rawio_line(&n);
		if (uid == 0)
			uid = uid_in(l);
		if (uid <= 0)
			rawio_die("FETCH response without UID");
		uids[got++] = uid;
		if (want != NULL && uid != want[got - 1])
			rawio_die("UID FETCH %ld answered with UID %ld", want[got - 1], uid);
		rawio_store(got);
		bytes += (long)rawio_msg_len;
	}
	if (got != total)
		rawio_die("fetched %ld of %ld messages", got, total);
	/* durable before anything leaves the folder */
	rawio_store_flush();

	if (got > 0) {
		char *set = uid_set(uids, got);
		size_t cap = strlen(set) + 600, len;
		char *cmd = malloc(cap);
		if (cmd == NULL)
			rawio_die("out of memory");
		if (move_to != NULL) {
			len = (size_t)snprintf(cmd, cap, "m UID MOVE %s %s\r\n", set, quoted(move_to));
			rawio_write(cmd, len);
			expect_tagged_ok("m");
		} else {
			len = (size_t)snprintf(cmd, cap,
					       "d UID STORE %s +FLAGS.SILENT (\\Deleted)\r\n"
					       "e UID EXPUNGE %s\r\n", set, set);
			rawio_write(cmd, len);
			expect_tagged_ok("d");
			expect_tagged_ok("e");
		}
		free(cmd);
		free(set);
	}
	rawio_command("z LOGOUT\r\n");
	expect_tagged_ok("z");
	free(uids);
	free(want);
	printf("messages=%ld bytes=%ld\n", got, bytes);
	return 0;
}

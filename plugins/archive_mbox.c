/* mailmill - ISC licence, see LICENSE */
/*
 * mbox delivery (mboxrd quoting, fcntl lock) with an index file that makes
 * it idempotent.  Messages are formatted into memory by mbox_stage() and
 * written by mbox_commit(): index lines first (fsync), then the messages
 * (fsync).  A crash before the index is durable leaves no message in the
 * mbox; a crash after it leaves index lines that mbox_open() verifies
 * against the mbox, so a rerun neither duplicates nor loses a message.
 * Nothing here calls mm_*.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <glib.h>

#include "archive.h"

#define MBOX_LOCK_TRIES 100       /* x 100 ms: the 10 s bound on the lock wait */
#define MBOX_VERIFY_LAST 256      /* index lines checked against the mbox at open */
#define MBOX_HEAD 512             /* bytes hashed into an index line */
#define MBOX_MAX_STAGED (512u << 20) /* bytes held in memory between commits */

struct mbox_staged {
	char digest[ARCHIVE_DIGEST_LEN + 1];
	size_t start, len; /* within mb->buf */
};

struct mbox {
	char *file, *idx;
	GHashTable *known;  /* digests archived or staged */
	GArray *staged;     /* struct mbox_staged */
	GString *buf;       /* the staged messages, formatted */
	int broken;         /* a failed commit could not be undone */
};

struct mbox_entry {
	char digest[ARCHIVE_DIGEST_LEN + 1];
	unsigned long long off, len;
	uint32_t head;
};

static void __attribute__((format(printf, 2, 3)))
seterr(char **err_r, const char *fmt, ...)
{
	va_list ap;

	if (err_r == NULL)
		return;
	va_start(ap, fmt);
	if (vasprintf(err_r, fmt, ap) < 0)
		*err_r = NULL;
	va_end(ap);
}

/* FNV-1a: only detects that an index line points at someone else's bytes. */
static uint32_t
mbox_head_hash(const char *p, size_t len)
{
	uint32_t h = 2166136261u;

	if (len > MBOX_HEAD)
		len = MBOX_HEAD;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)p[i];
		h *= 16777619u;
	}
	return h;
}

static int
sender_ok(const char *s)
{
	if (s == NULL || *s == '\0' || strlen(s) > 255)
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

void
mbox_format(GString *out, const char *sender, long long date, const char *data, size_t len)
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t t = (time_t)date;
	struct tm tm;
	const char *end = data + len;

	if ((long long)t != date || localtime_r(&t, &tm) == NULL) {
		t = 0;
		if (gmtime_r(&t, &tm) == NULL)
			memset(&tm, 0, sizeof(tm));
	}
	/* asctime(3)'s layout, spelled out to be independent of the locale. */
	g_string_append_printf(out, "From %s %s %s%3d %02d:%02d:%02d %d\n",
			       sender_ok(sender) ? sender : "MAILER-DAEMON",
			       days[tm.tm_wday % 7], months[tm.tm_mon % 12], tm.tm_mday,
			       tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_year + 1900);
	for (const char *line = data; line < end;) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		const char *next = nl != NULL ? nl + 1 : end;
		const char *p = line;

		while (p < next && *p == '>')
			p++;
		if ((size_t)(next - p) >= 5 && memcmp(p, "From ", 5) == 0)
			g_string_append_c(out, '>');
		g_string_append_len(out, line, next - line);
		line = next;
	}
	if (len == 0 || data[len - 1] != '\n')
		g_string_append_c(out, '\n');
	g_string_append_c(out, '\n');
}

static int
mbox_parse_entry(const char *line, struct mbox_entry *e)
{
	char *end;
	unsigned long h;

	for (int i = 0; i < ARCHIVE_DIGEST_LEN; i++) {
		char c = line[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return -1;
		e->digest[i] = c;
	}
	e->digest[ARCHIVE_DIGEST_LEN] = '\0';
	line += ARCHIVE_DIGEST_LEN;
	errno = 0;
	if (*line++ != ' ' || *line < '0' || *line > '9')
		return -1;
	e->off = strtoull(line, &end, 10);
	if (errno != 0 || *end != ' ' || end[1] < '0' || end[1] > '9')
		return -1;
	e->len = strtoull(end + 1, &end, 10);
	if (errno != 0 || *end != ' ' || end[1] < '0' || end[1] > '9')
		return -1;
	h = strtoul(end + 1, &end, 10);
	if (errno != 0 || h > UINT32_MAX || *end != '\n')
		return -1;
	e->head = (uint32_t)h;
	return 0;
}

/* Is the message of `e` really at its place in the mbox (fd, size)? */
static int
mbox_entry_ok(int fd, off_t size, const struct mbox_entry *e, int check_head)
{
	char buf[MBOX_HEAD];
	size_t want;
	ssize_t n;

	if (e->len == 0 || e->off > (unsigned long long)size ||
	    e->len > (unsigned long long)size - e->off)
		return 0;
	if (!check_head)
		return 1;
	want = e->len < MBOX_HEAD ? (size_t)e->len : MBOX_HEAD;
	n = pread(fd, buf, want, (off_t)e->off);
	return n == (ssize_t)want && mbox_head_hash(buf, want) == e->head;
}

/* Load the index lines whose messages are in the mbox into mb->known. */
static int
mbox_load_index(struct mbox *mb, char **err_r)
{
	GArray *entries = g_array_new(FALSE, FALSE, sizeof(struct mbox_entry));
	struct stat st;
	char *line = NULL;
	size_t cap = 0;
	FILE *f;
	int fd, ret = -1;

	if ((fd = open(mb->file, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT) /* no mbox: nothing is archived in it */
			ret = 0;
		else
			seterr(err_r, "open %s: %s", mb->file, strerror(errno));
		g_array_free(entries, TRUE);
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		seterr(err_r, "stat %s: %s", mb->file, strerror(errno));
		goto out;
	}
	if ((f = fopen(mb->idx, "re")) == NULL) {
		if (errno == ENOENT)
			ret = 0;
		else
			seterr(err_r, "open %s: %s", mb->idx, strerror(errno));
		goto out;
	}
	/* A torn last line (no '\n') or a damaged one is skipped. */
	while (getline(&line, &cap, f) >= 0) {
		struct mbox_entry e;

		if (mbox_parse_entry(line, &e) == 0)
			g_array_append_val(entries, e);
	}
	if (ferror(f)) {
		seterr(err_r, "read %s: %s", mb->idx, strerror(errno));
		(void)fclose(f);
		goto out;
	}
	(void)fclose(f); /* read-only */
	for (guint i = 0; i < entries->len; i++) {
		struct mbox_entry *e = &g_array_index(entries, struct mbox_entry, i);

		if (mbox_entry_ok(fd, st.st_size, e, i + MBOX_VERIFY_LAST >= entries->len))
			g_hash_table_add(mb->known, g_strdup(e->digest));
	}
	ret = 0;
out:
	free(line);
	g_array_free(entries, TRUE);
	(void)close(fd); /* read-only */
	return ret;
}

int
mbox_open(const char *file, struct mbox **mb_r, char **err_r)
{
	struct mbox *mb = g_new0(struct mbox, 1);
	char *parent = g_path_get_dirname(file);
	int r = archive_mkdirs(parent, err_r);

	g_free(parent);
	mb->file = g_strdup(file);
	mb->idx = g_strdup_printf("%s.mailmill-idx", file);
	mb->known = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	mb->staged = g_array_new(FALSE, FALSE, sizeof(struct mbox_staged));
	mb->buf = g_string_new(NULL);
	if (r < 0 || mbox_load_index(mb, err_r) < 0) {
		mbox_close(&mb);
		return -1;
	}
	*mb_r = mb;
	return 0;
}

int
mbox_stage(struct mbox *mb, const char *digest, const char *sender, long long date,
	   const char *data, size_t len, char **err_r)
{
	struct mbox_staged s;

	if (g_hash_table_contains(mb->known, digest))
		return 1;
	/* Quoting adds at most one byte per line: at most twice the size. */
	if (len > MBOX_MAX_STAGED / 4 || mb->buf->len > MBOX_MAX_STAGED - 2 * len - 1024) {
		seterr(err_r, "%s: too much mail staged for one commit", mb->file);
		return -1;
	}
	memcpy(s.digest, digest, sizeof(s.digest));
	s.start = mb->buf->len;
	mbox_format(mb->buf, sender, date, data, len);
	s.len = mb->buf->len - s.start;
	g_array_append_val(mb->staged, s);
	g_hash_table_add(mb->known, g_strdup(digest));
	return 0;
}

size_t
mbox_pending(const struct mbox *mb)
{
	return mb->staged->len;
}

const char *
mbox_file(const struct mbox *mb)
{
	return mb->file;
}

/* Open for appending; *created_r says whether the file is new. */
static int
open_append(const char *path, int *created_r, char **err_r)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT) {
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0)
			*created_r = 1;
		else if (errno == EEXIST) /* lost a race with another writer */
			fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	}
	if (fd < 0)
		seterr(err_r, "open %s: %s", path, strerror(errno));
	return fd;
}

static int
mbox_lock(int fd, const char *path, char **err_r)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

	for (int i = 0; i < MBOX_LOCK_TRIES; i++) {
		const struct timespec pause = { 0, 100 * 1000 * 1000 };

		if (fcntl(fd, F_SETLK, &fl) == 0)
			return 0;
		if (errno != EACCES && errno != EAGAIN && errno != EINTR)
			break;
		(void)nanosleep(&pause, NULL); /* EINTR just retries sooner */
	}
	seterr(err_r, "lock %s: %s", path, errno == EACCES || errno == EAGAIN ?
	       "still locked by another process after 10 s" : strerror(errno));
	return -1;
}

static int
write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
write_sync(int fd, const char *path, const char *data, size_t len, char **err_r)
{
	if (write_all(fd, data, len) < 0) {
		seterr(err_r, "write %s: %s", path, strerror(errno));
		return -1;
	}
	if (fsync(fd) < 0) {
		seterr(err_r, "fsync %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static void
mbox_forget_staged(struct mbox *mb)
{
	for (guint i = 0; i < mb->staged->len; i++)
		g_hash_table_remove(mb->known,
				    g_array_index(mb->staged, struct mbox_staged, i).digest);
	g_array_set_size(mb->staged, 0);
	g_string_truncate(mb->buf, 0);
}

int
mbox_commit(struct mbox *mb, char **err_r)
{
	GString *lines = NULL;
	struct stat st, ist;
	int fd = -1, ifd = -1, created = 0, ret = -1;
	char *parent;

	if (mb->staged->len == 0)
		return 0;
	if (mb->broken) {
		seterr(err_r, "%s: an earlier failed write could not be undone", mb->file);
		goto out;
	}
	if ((fd = open_append(mb->file, &created, err_r)) < 0)
		goto out;
	if (mbox_lock(fd, mb->file, err_r) < 0)
		goto out;
	if ((ifd = open_append(mb->idx, &created, err_r)) < 0)
		goto out;
	if (fstat(fd, &st) < 0 || fstat(ifd, &ist) < 0) {
		seterr(err_r, "stat %s: %s", mb->file, strerror(errno));
		goto out;
	}
	lines = g_string_new(NULL);
	for (guint i = 0; i < mb->staged->len; i++) {
		struct mbox_staged *s = &g_array_index(mb->staged, struct mbox_staged, i);

		g_string_append_printf(lines, "%s %llu %zu %lu\n", s->digest,
				       (unsigned long long)st.st_size + s->start, s->len,
				       (unsigned long)mbox_head_hash(mb->buf->str + s->start, s->len));
	}
	/* Index first: a message never reaches the mbox unlisted. */
	if (write_sync(ifd, mb->idx, lines->str, lines->len, err_r) < 0 ||
	    write_sync(fd, mb->file, mb->buf->str, mb->buf->len, err_r) < 0) {
		/* ENOSPC half way: leave both files as they were. */
		if (ftruncate(fd, st.st_size) < 0 || ftruncate(ifd, ist.st_size) < 0 ||
		    fsync(fd) < 0 || fsync(ifd) < 0)
			mb->broken = 1;
		goto out;
	}
	if (created) {
		parent = g_path_get_dirname(mb->file);
		ret = archive_fsync_dir(parent, err_r);
		g_free(parent);
		if (ret < 0)
			goto out; /* both written: a rerun finds them if they survive */
	}
	ret = 0;
out:
	if (lines != NULL)
		g_string_free(lines, TRUE);
	if (ifd >= 0 && close(ifd) < 0 && ret == 0) {
		seterr(err_r, "close %s: %s", mb->idx, strerror(errno));
		ret = -1;
	}
	if (fd >= 0 && close(fd) < 0 && ret == 0) { /* also drops the lock */
		seterr(err_r, "close %s: %s", mb->file, strerror(errno));
		ret = -1;
	}
	if (ret < 0)
		mbox_forget_staged(mb);
	g_array_set_size(mb->staged, 0);
	g_string_truncate(mb->buf, 0);
	return ret;
}

void
mbox_abort(struct mbox *mb)
{
	mbox_forget_staged(mb);
}

void
mbox_close(struct mbox **mbp)
{
	struct mbox *mb = *mbp;

	if (mb == NULL)
		return;
	g_hash_table_destroy(mb->known);
	g_array_free(mb->staged, TRUE);
	g_string_free(mb->buf, TRUE);
	g_free(mb->file);
	g_free(mb->idx);
	g_free(mb);
	*mbp = NULL;
}

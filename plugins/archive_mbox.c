/* mailmill - ISC licence, see LICENSE */
/*
 * mbox delivery (mboxrd quoting, fcntl lock) with an index file that makes
 * it idempotent.  A batch is written as it is staged, in chunks of
 * MBOX_CHUNK bytes (by a writer thread while the next chunk is formatted),
 * so that memory does not grow with the batch: the first
 * mbox_stage() of a batch locks the mbox and notes both files' lengths;
 * each chunk's index lines are written and made durable before the chunk's
 * messages are written, so a message never reaches the mbox unlisted, even
 * after a power loss; mbox_commit() writes the last chunk the same way and
 * fsyncs the mbox.  An index line whose message is not in the mbox (crash
 * before that fsync) is ignored by mbox_open(), which verifies them.  Any
 * error truncates both files back to their lengths before the batch (all or
 * nothing).  The batch's files, the writer thread and the rollback are
 * archive_mbox_write.c.  Nothing here calls mm_*.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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

#define MBOX_VERIFY_LAST 256      /* index lines checked against the mbox at open */
#define MBOX_HEAD 512             /* bytes hashed into an index line */
/* Formatted bytes held before they are written: each chunk costs an fsync
 * of the index (in the writer thread), and two chunks are in memory at once
 * (the writer's and the one being formatted). */
#define MBOX_CHUNK (2u << 20)

struct mbox_entry {
	char digest[ARCHIVE_DIGEST_LEN + 1];
	unsigned long long off, len;
	uint32_t head;
};

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
	/*
	 * Only lines matching ^>*From  change, and they are rare: find "From "
	 * and copy the spans between them in one append each.
	 */
	for (const char *span = data, *q = data; q < end;) {
		const char *r;

		/* memchr is vectorised; glibc's memmem costs several times more. */
		while ((q = memchr(q, 'F', (size_t)(end - q))) != NULL &&
		       ((size_t)(end - q) < 5 || memcmp(q, "From ", 5) != 0))
			q++;
		if (q == NULL) {
			g_string_append_len(out, span, end - span);
			break;
		}
		for (r = q; r > data && r[-1] == '>'; r--)
			;
		if (r == data || r[-1] == '\n') {
			g_string_append_len(out, span, r - span);
			g_string_append_c(out, '>');
			span = r;
		}
		q += 5;
		if (q >= end)
			g_string_append_len(out, span, end - span);
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

	if ((fd = open(mb->file, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
		if (errno == ENOENT) /* no mbox: nothing is archived in it */
			ret = 0;
		else
			archive_seterr(err_r, "open %s: %s", mb->file, strerror(errno));
		g_array_free(entries, TRUE);
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		archive_seterr(err_r, "stat %s: %s", mb->file, strerror(errno));
		goto out;
	}
	if ((f = fopen(mb->idx, "re")) == NULL) {
		if (errno == ENOENT)
			ret = 0;
		else
			archive_seterr(err_r, "open %s: %s", mb->idx, strerror(errno));
		goto out;
	}
	/* A torn last line (no '\n') or a damaged one is skipped. */
	while (getline(&line, &cap, f) >= 0) {
		struct mbox_entry e;

		if (mbox_parse_entry(line, &e) == 0)
			g_array_append_val(entries, e);
	}
	if (ferror(f)) {
		archive_seterr(err_r, "read %s: %s", mb->idx, strerror(errno));
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
	return mbox_open_perms(file, NULL, mb_r, err_r);
}

int
mbox_open_perms(const char *file, const perms *p, struct mbox **mb_r, char **err_r)
{
	struct mbox *mb = g_new0(struct mbox, 1);
	char *parent = g_path_get_dirname(file);
	int r;

	if (p != NULL)
		mb->perms = *p;
	else
		perms_default(&mb->perms);
	mb->file = g_strdup(file);
	mb->idx = g_strdup_printf("%s.mailmill-idx", file);
	/* Before anything opens it: opening a FIFO would block, a device
	 * would take the mail. */
	r = archive_mbox_usable(mb->file, err_r) < 0 || archive_mbox_usable(mb->idx, err_r) < 0 ?
	    -1 : archive_mkdirs(parent, &mb->perms, err_r);
	g_free(parent);
	mb->known = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	mb->staged = g_array_new(FALSE, FALSE, sizeof(struct mbox_staged));
	mb->buf = g_string_new(NULL);
	mb->lines = g_string_new(NULL);
	mb->wbuf = g_string_new(NULL);
	mb->wlines = g_string_new(NULL);
	pthread_mutex_init(&mb->lock, NULL);
	pthread_cond_init(&mb->cond, NULL);
	mb->fd = mb->ifd = -1;
	if (r < 0 || mbox_load_index(mb, err_r) < 0) {
		mbox_close(&mb);
		return -1;
	}
	*mb_r = mb;
	return 0;
}

size_t
mbox_pending(const struct mbox *mb)
{
	return mb->staged->len;
}

int
mbox_stage(struct mbox *mb, const char *digest, const char *sender, long long date,
	   const char *data, size_t len, char **err_r)
{
	struct mbox_staged s;
	size_t start, n;

	if (g_hash_table_contains(mb->known, digest))
		return 1;
	if (mb->failed != NULL) {
		archive_seterr(err_r, "%s", mb->failed);
		return -1;
	}
	if (mb->fd < 0 && mbox_begin_batch(mb, err_r) < 0)
		return -1;
	memcpy(s.digest, digest, sizeof(s.digest));
	start = mb->buf->len;
	mbox_format(mb->buf, sender, date, data, len);
	n = mb->buf->len - start;
	g_string_append_printf(mb->lines, "%s %llu %zu %lu\n", digest, mb->off, n,
			       (unsigned long)mbox_head_hash(mb->buf->str + start, n));
	mb->off += n;
	g_array_append_val(mb->staged, s);
	g_hash_table_add(mb->known, g_strdup(digest));
	if (mb->buf->len >= MBOX_CHUNK && mbox_hand_over(mb, err_r) < 0) {
		/*
		 * The whole batch is undone now.  One entry stays staged so that
		 * the caller's sync reaches mbox_commit, which reports the
		 * failure: the messages staged before this one are not archived.
		 */
		char *why = err_r != NULL && *err_r != NULL ? strdup(*err_r) : NULL;

		mbox_rollback(mb);
		mb->failed = why != NULL ? why : strdup("write failed");
		g_array_append_val(mb->staged, s);
		return -1;
	}
	return 0;
}

int
mbox_commit(struct mbox *mb, char **err_r)
{
	char *parent;
	int r;

	if (mb->staged->len == 0)
		return 0;
	if (mb->failed != NULL) {
		archive_seterr(err_r, "%s", mb->failed);
		free(mb->failed);
		mb->failed = NULL;
		g_array_set_size(mb->staged, 0); /* rolled back when it failed */
		return -1;
	}
	if (mb->fd < 0) {
		archive_seterr(err_r, "%s: no batch open", mb->file);
		mbox_forget_staged(mb);
		return -1;
	}
	{
		char *werr = mbox_writer_wait(mb);

		if (werr != NULL) {
			if (err_r != NULL)
				*err_r = werr;
			else
				free(werr);
			goto fail;
		}
	}
	if (mbox_write_chunk(mb, mb->buf, mb->lines, mb->off - mb->buf->len, err_r) < 0)
		goto fail;
	if (fsync(mb->fd) < 0) {
		archive_seterr(err_r, "fsync %s: %s", mb->file, strerror(errno));
		goto fail;
	}
	if (mb->created) {
		parent = g_path_get_dirname(mb->file);
		r = archive_fsync_dir(parent, err_r);
		g_free(parent);
		if (r < 0) {
			/* Both written: a rerun finds them if they survive. */
			mbox_forget_staged(mb);
			(void)mbox_end_batch(mb, NULL);
			return -1;
		}
	}
	g_array_set_size(mb->staged, 0);
	return mbox_end_batch(mb, err_r);
fail:
	mbox_rollback(mb);
	return -1;
}

void
mbox_abort(struct mbox *mb)
{
	if (mb->fd >= 0)
		mbox_rollback(mb);
	else
		mbox_forget_staged(mb);
	free(mb->failed);
	mb->failed = NULL;
}

void
mbox_close(struct mbox **mbp)
{
	struct mbox *mb = *mbp;

	if (mb == NULL)
		return;
	mbox_abort(mb); /* a batch never committed leaves nothing behind */
	if (mb->has_writer && mb->writer_pid == getpid()) {
		pthread_mutex_lock(&mb->lock);
		mb->stop = 1;
		pthread_cond_broadcast(&mb->cond);
		pthread_mutex_unlock(&mb->lock);
		(void)pthread_join(mb->writer, NULL);
	}
	free(mb->werr);
	pthread_mutex_destroy(&mb->lock);
	pthread_cond_destroy(&mb->cond);
	g_string_free(mb->wbuf, TRUE);
	g_string_free(mb->wlines, TRUE);
	g_hash_table_destroy(mb->known);
	g_array_free(mb->staged, TRUE);
	g_string_free(mb->buf, TRUE);
	g_string_free(mb->lines, TRUE);
	g_free(mb->file);
	g_free(mb->idx);
	g_free(mb);
	*mbp = NULL;
}

/* ---- the format table (archive.h) ---- */

static int
mbox_fmt_open(const char *path, const char *host, const perms *p, void **t_r, char **err_r)
{
	return mbox_open_perms(path, p, (struct mbox **)t_r, err_r);
}

static int
mbox_fmt_stage(void *t, const char *digest, const char *sender, long long date, const char *data,
	       size_t len, char **err_r)
{
	return mbox_stage(t, digest, sender, date, data, len, err_r);
}

static size_t
mbox_fmt_pending(const void *t)
{
	return mbox_pending(t);
}

static int
mbox_fmt_commit(void *t, char **err_r)
{
	return mbox_commit(t, err_r);
}

/* An mbox batch is truncated back on failure: nothing is ever left short. */
static size_t
mbox_fmt_recovered(const void *t)
{
	return 0;
}

static void
mbox_fmt_close(void *t)
{
	struct mbox *mb = t;

	mbox_close(&mb);
}

const struct archive_format archive_format_mbox = {
	.name = "mbox",
	.kind = ARCHIVE_KIND_MBOX,
	.needs_sender = 1,
	.open = mbox_fmt_open,
	.stage = mbox_fmt_stage,
	.pending = mbox_fmt_pending,
	.commit = mbox_fmt_commit,
	.recovered = mbox_fmt_recovered,
	.close = mbox_fmt_close,
};

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
 * nothing).  Nothing here calls mm_*.
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

#define MBOX_LOCK_TRIES 100       /* x 100 ms: the 10 s bound on the lock wait */
#define MBOX_VERIFY_LAST 256      /* index lines checked against the mbox at open */
#define MBOX_HEAD 512             /* bytes hashed into an index line */
/* Formatted bytes held before they are written: each chunk costs an fsync
 * of the index (in the writer thread), and two chunks are in memory at once
 * (the writer's and the one being formatted). */
#define MBOX_CHUNK (2u << 20)

struct mbox_staged {
	char digest[ARCHIVE_DIGEST_LEN + 1];
};

struct mbox {
	char *file, *idx;
	perms perms;        /* of the files and directories it creates */
	GHashTable *known;  /* digests archived or staged */
	GArray *staged;     /* struct mbox_staged, this batch's */
	GString *buf;       /* formatted messages not written yet */
	GString *lines;     /* their index lines */
	int broken;         /* a failed commit could not be undone */
	/* The open batch (fd >= 0): both files locked/open since its first stage. */
	int fd, ifd, created;
	off_t base, ibase;  /* lengths before the batch: the rollback point */
	unsigned long long off; /* where the next message goes in the mbox */
	char *failed;       /* a chunk could not be written: the batch is lost */
	/* The writer (mbox_writer): a thread that writes a full chunk (its index
	 * lines made durable first) while the next one is formatted, so the
	 * fetch does not wait for each index fsync.  lock guards wbuf, wlines,
	 * wstart, busy, stop and werr. */
	pthread_t writer;
	int has_writer;     /* started, in writer_pid */
	pid_t writer_pid;   /* a forked child has no writer thread */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	GString *wbuf, *wlines; /* the chunk handed over (busy) */
	unsigned long long wstart; /* its offset in the mbox */
	int busy, stop;
	char *werr;         /* the writer's error (free), reported at the next hand-over */
};

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

const char *
mbox_file(const struct mbox *mb)
{
	return mb->file;
}

/* Open for appending; *created_r says whether the file is new. */
static int
open_append(const char *path, const perms *p, int *created_r, char **err_r)
{
	/* O_NONBLOCK: a FIFO planted since mbox_open must not hang the run. */
	int fd = open(path, O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC);
	struct stat st;

	if (fd < 0 && errno == ENOENT) {
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, p->mode);
		if (fd >= 0)
			*created_r = 1;
		if (fd >= 0 && perms_apply_fd(fd, p, 0, path, err_r) < 0) {
			(void)close(fd); /* empty and new: the next run tries again */
			(void)unlink(path);
			return -1;
		}
		else if (errno == EEXIST) /* lost a race with another writer */
			fd = open(path, O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC);
	}
	if (fd < 0) {
		archive_seterr(err_r, "open %s: %s", path, strerror(errno));
	} else if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		archive_seterr(err_r, "%s is not a regular file: refusing to write mail into it",
			       path);
		(void)close(fd); /* nothing written */
		fd = -1;
	}
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
	archive_seterr(err_r, "lock %s: %s", path, errno == EACCES || errno == EAGAIN ?
	       "still locked by another process after 10 s" : strerror(errno));
	return -1;
}

static int
write_sync(int fd, const char *path, const char *data, size_t len, char **err_r)
{
	if (archive_write_all(fd, data, len) < 0) {
		archive_seterr(err_r, "write %s: %s", path, strerror(errno));
		return -1;
	}
	if (fsync(fd) < 0) {
		archive_seterr(err_r, "fsync %s: %s", path, strerror(errno));
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
}

/* Close the batch's files (dropping the lock); -1 if a close failed. */
static int
mbox_end_batch(struct mbox *mb, char **err_r)
{
	int ret = 0;

	if (mb->ifd >= 0 && close(mb->ifd) < 0) {
		archive_seterr(err_r, "close %s: %s", mb->idx, strerror(errno));
		ret = -1;
	}
	if (mb->fd >= 0 && close(mb->fd) < 0 && ret == 0) {
		archive_seterr(err_r, "close %s: %s", mb->file, strerror(errno));
		ret = -1;
	}
	mb->fd = mb->ifd = -1;
	g_string_truncate(mb->buf, 0);
	g_string_truncate(mb->lines, 0);
	return ret;
}

static char *mbox_writer_wait(struct mbox *mb);

/* Both files back to their lengths before the batch; its messages forgotten. */
static void
mbox_rollback(struct mbox *mb)
{
	free(mbox_writer_wait(mb)); /* the batch is undone whatever it said */
	if (mb->fd >= 0 &&
	    (ftruncate(mb->fd, mb->base) < 0 || ftruncate(mb->ifd, mb->ibase) < 0 ||
	     fsync(mb->fd) < 0 || fsync(mb->ifd) < 0))
		mb->broken = 1;
	mbox_forget_staged(mb);
	(void)mbox_end_batch(mb, NULL); /* truncated: nothing left to lose */
}

/* First message of a batch: lock the mbox and note where the batch starts. */
static int
mbox_begin_batch(struct mbox *mb, char **err_r)
{
	struct stat st, ist;

	if (mb->broken) {
		archive_seterr(err_r, "%s: an earlier failed write could not be undone", mb->file);
		return -1;
	}
	mb->created = 0;
	if ((mb->fd = open_append(mb->file, &mb->perms, &mb->created, err_r)) < 0)
		return -1;
	if (mbox_lock(mb->fd, mb->file, err_r) < 0 ||
	    (mb->ifd = open_append(mb->idx, &mb->perms, &mb->created, err_r)) < 0)
		goto fail;
	if (fstat(mb->fd, &st) < 0 || fstat(mb->ifd, &ist) < 0) {
		archive_seterr(err_r, "stat %s: %s", mb->file, strerror(errno));
		goto fail;
	}
	mb->base = st.st_size;
	mb->ibase = ist.st_size;
	mb->off = (unsigned long long)st.st_size;
	return 0;
fail:
	(void)mbox_end_batch(mb, NULL); /* nothing written */
	return -1;
}

/* A chunk's index lines, durable, then its messages (not durable yet). */
static int
mbox_write_chunk(struct mbox *mb, GString *buf, GString *lines, unsigned long long start,
		 char **err_r)
{
	if (buf->len == 0)
		return 0;
	if (write_sync(mb->ifd, mb->idx, lines->str, lines->len, err_r) < 0)
		return -1;
	if (archive_write_all(mb->fd, buf->str, buf->len) < 0) {
		archive_seterr(err_r, "write %s: %s", mb->file, strerror(errno));
		return -1;
	}
	/* Start writing it back now, so that the commit's fsync finds little
	 * left to do (a hint: durability is still the commit's fsync). */
	(void)sync_file_range(mb->fd, (off_t)start, (off_t)buf->len, SYNC_FILE_RANGE_WRITE);
	g_string_truncate(buf, 0);
	g_string_truncate(lines, 0);
	return 0;
}

static void *
mbox_writer(void *p)
{
	struct mbox *mb = p;

	pthread_mutex_lock(&mb->lock);
	for (;;) {
		char *err = NULL;
		int r;

		if (mb->stop)
			break;
		if (!mb->busy || mb->werr != NULL) {
			pthread_cond_wait(&mb->cond, &mb->lock);
			continue;
		}
		/* main touches neither wbuf nor the fds while busy */
		pthread_mutex_unlock(&mb->lock);
		r = mbox_write_chunk(mb, mb->wbuf, mb->wlines, mb->wstart, &err);
		pthread_mutex_lock(&mb->lock);
		if (r < 0)
			mb->werr = err != NULL ? err : strdup("write failed");
		g_string_truncate(mb->wbuf, 0);
		g_string_truncate(mb->wlines, 0);
		mb->busy = 0;
		pthread_cond_broadcast(&mb->cond);
	}
	pthread_mutex_unlock(&mb->lock);
	return NULL;
}

/* Until the writer is idle; then its error, if any (the caller frees). */
static char *
mbox_writer_wait(struct mbox *mb)
{
	char *err;

	pthread_mutex_lock(&mb->lock);
	while (mb->busy)
		pthread_cond_wait(&mb->cond, &mb->lock);
	err = mb->werr;
	mb->werr = NULL;
	pthread_mutex_unlock(&mb->lock);
	return err;
}

/* Hand the full chunk to the writer (after the previous one is done): 0, or
 * -1 and *err_r with the writer's error on the previous chunk. */
static int
mbox_hand_over(struct mbox *mb, char **err_r)
{
	GString *t;
	char *err = mbox_writer_wait(mb);

	if (err != NULL) {
		if (err_r != NULL)
			*err_r = err;
		else
			free(err);
		return -1;
	}
	if (!mb->has_writer || mb->writer_pid != getpid()) {
		/* Never started, or started by the process this one was forked from. */
		mb->writer_pid = getpid();
		mb->has_writer = pthread_create(&mb->writer, NULL, mbox_writer, mb) == 0;
		if (!mb->has_writer) /* no thread to be had: write it here */
			return mbox_write_chunk(mb, mb->buf, mb->lines, mb->off - mb->buf->len,
						err_r);
	}
	pthread_mutex_lock(&mb->lock);
	mb->wstart = mb->off - mb->buf->len;
	t = mb->wbuf, mb->wbuf = mb->buf, mb->buf = t;
	t = mb->wlines, mb->wlines = mb->lines, mb->lines = t;
	mb->busy = 1;
	pthread_cond_broadcast(&mb->cond);
	pthread_mutex_unlock(&mb->lock);
	return 0;
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

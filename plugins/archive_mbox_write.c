/* mailmill - ISC licence, see LICENSE */
/*
 * The mbox batch on disk (archive_mbox.c formats and stages): opening and
 * locking both files at a batch's first message, the writer thread that
 * writes each full chunk (its index lines made durable first) while the
 * next one is formatted, and the rollback that truncates both files back to
 * their lengths before the batch.  Nothing here calls mm_*.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sync_file_range */
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <glib.h>

#include "archive.h"

#define MBOX_LOCK_TRIES 100       /* x 100 ms: the 10 s bound on the lock wait */

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

void
mbox_forget_staged(struct mbox *mb)
{
	for (guint i = 0; i < mb->staged->len; i++)
		g_hash_table_remove(mb->known,
				    g_array_index(mb->staged, struct mbox_staged, i).digest);
	g_array_set_size(mb->staged, 0);
}

/* Close the batch's files (dropping the lock); -1 if a close failed. */
int
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

/* Both files back to their lengths before the batch; its messages forgotten. */
void
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
int
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
int
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
char *
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
int
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

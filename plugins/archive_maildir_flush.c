/* mailmill - ISC licence, see LICENSE */
/*
 * Making a Maildir batch durable (archive_maildir.c writes and moves the
 * files): the flusher thread that starts the write-back while later
 * messages are fetched, the commit's one flush (a fsync per file for a few,
 * one syncfs for many), and the rollback that removes a failed batch from
 * new/.  Nothing here calls mm_*.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* syncfs */
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>

#include "archive.h"

/*
 * From this many staged files on, one syncfs() on the file system is
 * cheaper than a fsync() per file: the journal commits once either way,
 * but each fsync is a round trip to the disk's cache flush.
 */
#define MAILDIR_SYNCFS_MIN 8

/* 0 if fd is still the directory at path, else -1 and why. */
static int
maildir_dirfd_same(int fd, const char *path, char **err_r)
{
	struct stat a, b;

	if (stat(path, &a) < 0) {
		archive_seterr(err_r, "stat %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		archive_seterr(err_r, "%s was replaced while the batch was written", path);
		return -1;
	}
	return 0;
}

/* fsync dir/name: 0; 1 if it is no longer there; -1 and why. */
static int
fsync_at(int dirfd, const char *dir, const char *name, char **err_r)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		if (errno == ENOENT)
			return 1; /* a reader moved it on (to cur/): the caller flushes all */
		archive_seterr(err_r, "open %s/%s: %s", dir, name, strerror(errno));
		return -1;
	}
	if (fsync(fd) < 0) {
		int e = errno;

		(void)close(fd);
		archive_seterr(err_r, "fsync %s/%s: %s", dir, name, strerror(e));
		return -1;
	}
	if (close(fd) < 0) {
		archive_seterr(err_r, "close %s/%s: %s", dir, name, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * The flusher thread: every MAILDIR_FLUSH_EVERY staged files (or
 * MAILDIR_FLUSH_BYTES) it starts a syncfs, so that the data is on its way
 * to the disk while later messages are fetched.  Only an optimisation: the commit flushes on its own, and a
 * write-back error shows there too (syncfs reports errors per descriptor,
 * and this one uses its own).
 */
static void *
maildir_flusher(void *p)
{
	struct maildir *md = p;

	pthread_mutex_lock(&md->lock);
	while (!md->stop) {
		if (md->unflushed < MAILDIR_FLUSH_EVERY &&
		    md->unflushed_bytes < MAILDIR_FLUSH_BYTES) {
			pthread_cond_wait(&md->cond, &md->lock);
			continue;
		}
		md->unflushed = 0;
		md->unflushed_bytes = 0;
		pthread_mutex_unlock(&md->lock);
		(void)syncfs(md->flushfd);
		pthread_mutex_lock(&md->lock);
	}
	pthread_mutex_unlock(&md->lock);
	return NULL;
}

/* Start the flusher unless it runs in this process.  Without it (a thread
 * cannot be made) the commit's flush does all the work. */
void
maildir_flusher_start(struct maildir *md)
{
	if (md->has_flusher && md->flusher_pid == md->pid)
		return;
	/* Never started, or started by the process this one was forked from. */
	md->flusher_pid = md->pid;
	if (md->flushfd < 0 && (md->flushfd = fcntl(md->rootfd, F_DUPFD_CLOEXEC, 0)) < 0) {
		md->has_flusher = 0;
		return;
	}
	md->has_flusher = pthread_create(&md->flusher, NULL, maildir_flusher, md) == 0;
}

/* Remove what this batch put into new/ so the next run delivers it afresh. */
void
maildir_rollback(struct maildir *md)
{
	free(maildir_writer_wait(md)); /* the batch is undone whatever it said */
	for (guint i = 0; i < md->staged->len; i++) {
		struct maildir_staged *s = g_ptr_array_index(md->staged, i);

		if (s->name == NULL) { /* never made: the writer failed before it */
			g_hash_table_remove(md->known, s->digest);
			continue;
		}
		/*
		 * A file that cannot be removed (or that a reader moved to cur/
		 * meanwhile) keeps the marker, so the next run checks it and
		 * makes it durable before counting it as delivered.
		 */
		if (unlinkat(md->newfd, s->name, 0) < 0)
			md->unclean = 1;
		g_hash_table_remove(md->known, s->digest);
	}
	g_ptr_array_set_size(md->staged, 0);
}

int
maildir_commit(struct maildir *md, char **err_r)
{
	guint n = md->staged->len;
	char *werr;

	if (n == 0)
		return 0;
	if ((werr = maildir_writer_wait(md)) != NULL) {
		archive_seterr(err_r, "%s", werr);
		free(werr);
		goto fail;
	}
	/* The files went into new/ by its fd: if the directory at the path is
	 * another one now, they are not where readers look.  Then the batch
	 * fails (and is removed from the old one). */
	if (maildir_dirfd_same(md->newfd, md->new, err_r) < 0)
		goto fail;
	pthread_mutex_lock(&md->lock);
	md->unflushed = 0; /* this flush covers them */
	md->unflushed_bytes = 0;
	pthread_mutex_unlock(&md->lock);
	/* A few files are flushed one by one; a file a reader has already
	 * moved out of new/ (the files are visible before the commit) is
	 * covered by flushing the whole file system instead. */
	for (guint i = 0; i < n && n < MAILDIR_SYNCFS_MIN; i++) {
		int r = fsync_at(md->newfd, md->new,
				 ((struct maildir_staged *)g_ptr_array_index(md->staged, i))->name,
				 err_r);

		if (r < 0)
			goto fail;
		if (r > 0)
			n = MAILDIR_SYNCFS_MIN;
	}
	if (n >= MAILDIR_SYNCFS_MIN) {
		/* Data and directory entries alike: one journal commit. */
		if (syncfs(md->newfd) < 0) {
			archive_seterr(err_r, "syncfs %s: %s", md->dir, strerror(errno));
			goto fail;
		}
	} else if (fsync(md->newfd) < 0) {
		archive_seterr(err_r, "fsync %s: %s", md->new, strerror(errno));
		goto fail;
	}
	g_ptr_array_set_size(md->staged, 0);
	return 0;
fail:
	maildir_rollback(md);
	return -1;
}

/* mailmill - ISC licence, see LICENSE */
/*
 * Putting a staged message's file into a Maildir (archive_maildir.c decides
 * what is staged): the write into tmp/ and the move into new/, done by a
 * writer thread while the next messages are fetched and parsed.  Creating
 * a file is most of what archiving a small message costs (openat, write,
 * close and rename: about 60 us, nearly all of it in the kernel), and the
 * fetch has no need to wait for it: nothing is durable before the commit,
 * which waits for the writer.  A file the writer cannot make fails the
 * whole batch at its commit, as an mbox chunk does.  Nothing here calls
 * mm_*.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* renameat2 */
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>

#include "archive.h"

/* A message handed to the writer: its bytes are copied, since the core
 * frees the message once the stage returns. */
struct maildir_job {
	struct maildir_staged *s; /* in md->staged; the writer sets s->name */
	size_t len;
	char data[];
};

/*
 * tmp/name -> new/name, never replacing an existing file.  One rename
 * (RENAME_NOREPLACE) is one directory update fewer than qmail's link +
 * unlink; where the file system lacks the flag, link + unlink.
 */
static int
maildir_move(struct maildir *md, const char *name, char **err_r)
{
	if (renameat2(md->tmpfd, name, md->newfd, name, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
		goto fail;
	if (linkat(md->tmpfd, name, md->newfd, name, 0) == 0) {
		/* A leftover tmp/ link is no second copy: readers ignore tmp/. */
		(void)unlinkat(md->tmpfd, name, 0);
		return 0;
	}
	if ((errno == EPERM || errno == ENOTSUP || errno == ENOSYS) &&
	    renameat(md->tmpfd, name, md->newfd, name) == 0)
		return 0; /* neither hard links nor the flag; the name is unique anyway */
fail:
	archive_seterr(err_r, "rename %s/%s to %s: %s", md->tmp, name, md->new, strerror(errno));
	return -1;
}

/* Write data into tmp/ under a fresh name (*name_r, malloc'd). */
static int
maildir_write(struct maildir *md, const char *digest, const char *data, size_t len,
	      char **name_r, char **err_r)
{
	struct timeval tv;
	char *name = NULL;
	int fd, e;

	/*
	 * The name can only exist already if a crashed run with the same pid
	 * staged this message in the same microsecond: the clock moves on.
	 */
	for (int tries = 0;; tries++) {
		if (gettimeofday(&tv, NULL) < 0 ||
		    (name = maildir_name(&tv, md->pid, digest, md->host, len)) == NULL) {
			archive_seterr(err_r, "out of memory");
			return -1;
		}
		fd = openat(md->tmpfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			    md->perms.mode);
		if (fd >= 0 || errno != EEXIST || tries == 2)
			break;
		free(name);
		(void)usleep(1000);
	}
	if (fd < 0) {
		archive_seterr(err_r, "create %s/%s: %s", md->tmp, name, strerror(errno));
		free(name);
		return -1;
	}
	if (perms_apply_fd(fd, &md->perms, 0, name, err_r) < 0) {
		(void)close(fd);
		goto fail;
	}
	if (archive_write_all(fd, data, len) < 0) {
		e = errno;
		(void)close(fd); /* the write error is the one to report */
		archive_seterr(err_r, "write %s/%s: %s", md->tmp, name, strerror(e));
		goto fail;
	}
	if (close(fd) < 0) {
		archive_seterr(err_r, "close %s/%s: %s", md->tmp, name, strerror(errno));
		goto fail;
	}
	*name_r = name;
	return 0;
fail:
	(void)unlinkat(md->tmpfd, name, 0);
	free(name);
	return -1;
}

/* Write one message into tmp/, move it into new/, record its name in s
 * and count it for the flusher. */
static int
maildir_deliver(struct maildir *md, struct maildir_staged *s, const char *data, size_t len,
		char **err_r)
{
	char *name;

	if (maildir_write(md, s->digest, data, len, &name, err_r) < 0)
		return -1;
	if (maildir_move(md, name, err_r) < 0) {
		(void)unlinkat(md->tmpfd, name, 0);
		free(name);
		return -1;
	}
	pthread_mutex_lock(&md->lock);
	s->name = name;
	md->unflushed_bytes += len;
	if (++md->unflushed >= MAILDIR_FLUSH_EVERY || md->unflushed_bytes >= MAILDIR_FLUSH_BYTES)
		pthread_cond_signal(&md->cond);
	pthread_mutex_unlock(&md->lock);
	return 0;
}

/* Room in the queue again for a waiting stage: below half of either bound,
 * so that it is woken once per half queue, not once per file. */
static int
maildir_room(const struct maildir *md)
{
	return md->jobs.length < MAILDIR_WRITE_AHEAD / 2 &&
	       md->jbytes < MAILDIR_WRITE_AHEAD_BYTES / 2;
}

static void *
maildir_writer(void *p)
{
	struct maildir *md = p;

	pthread_mutex_lock(&md->wlock);
	for (;;) {
		struct maildir_job *j = g_queue_pop_head(&md->jobs);
		char *err = NULL;

		if (j == NULL) {
			md->wbusy = 0;
			if (md->wwaiting)
				pthread_cond_signal(&md->wdone);
			if (md->wstop)
				break;
			pthread_cond_wait(&md->wcond, &md->wlock);
			continue;
		}
		md->wbusy = 1;
		md->jbytes -= j->len;
		if (md->wwaiting && maildir_room(md))
			pthread_cond_signal(&md->wdone);
		if (md->werr != NULL) { /* the batch fails anyway: write no more of it */
			free(j);
			continue;
		}
		pthread_mutex_unlock(&md->wlock);
		if (maildir_deliver(md, j->s, j->data, j->len, &err) < 0 && err == NULL)
			err = strdup("out of memory");
		free(j);
		pthread_mutex_lock(&md->wlock);
		if (err != NULL && md->werr == NULL)
			md->werr = err;
		else
			free(err);
	}
	pthread_mutex_unlock(&md->wlock);
	return NULL;
}

/* Start the writer unless it runs in this process; 0 if there is none (a
 * thread cannot be made). */
static int
maildir_writer_start(struct maildir *md)
{
	if (md->has_writer && md->writer_pid == md->pid)
		return 1;
	/* Never started, or started by the process this one was forked from:
	 * that one's queue was empty (every fork happens between batches). */
	md->writer_pid = md->pid;
	md->wbusy = md->wstop = md->wwaiting = 0;
	md->has_writer = pthread_create(&md->writer, NULL, maildir_writer, md) == 0;
	return md->has_writer;
}

int
maildir_writer_push(struct maildir *md, struct maildir_staged *s, const char *data, size_t len,
		    char **err_r)
{
	struct maildir_job *j;

	/* A large message is written here: copying it would cost more than
	 * the writer saves, and hold a second copy of it in memory. */
	if (len > MAILDIR_WRITE_COPY_MAX || !maildir_writer_start(md))
		return maildir_deliver(md, s, data, len, err_r);
	if ((j = malloc(sizeof(*j) + len)) == NULL) {
		archive_seterr(err_r, "out of memory");
		return -1;
	}
	j->s = s;
	j->len = len;
	if (len > 0) /* an empty message may come with no bytes at all (NULL) */
		memcpy(j->data, data, len);
	pthread_mutex_lock(&md->wlock);
	/* Bounded: a slow disk holds the fetch back, not the memory. */
	while (md->jobs.length > 0 && (md->jobs.length >= MAILDIR_WRITE_AHEAD ||
				       md->jbytes + len > MAILDIR_WRITE_AHEAD_BYTES)) {
		md->wwaiting = 1;
		pthread_cond_wait(&md->wdone, &md->wlock);
		md->wwaiting = 0;
	}
	g_queue_push_tail(&md->jobs, j);
	md->jbytes += len;
	if (!md->wbusy && md->jobs.length == 1)
		pthread_cond_signal(&md->wcond);
	pthread_mutex_unlock(&md->wlock);
	return 0;
}

char *
maildir_writer_wait(struct maildir *md)
{
	char *err;

	if (!md->has_writer || md->writer_pid != getpid())
		return NULL;
	pthread_mutex_lock(&md->wlock);
	while (md->jobs.length > 0 || md->wbusy) {
		md->wwaiting = 1;
		pthread_cond_wait(&md->wdone, &md->wlock);
		md->wwaiting = 0;
	}
	err = md->werr;
	md->werr = NULL;
	pthread_mutex_unlock(&md->wlock);
	return err;
}

char *
maildir_writer_failed(struct maildir *md)
{
	char *err = NULL;

	if (!md->has_writer || md->writer_pid != getpid())
		return NULL;
	pthread_mutex_lock(&md->wlock);
	if (md->werr != NULL)
		err = strdup(md->werr);
	pthread_mutex_unlock(&md->wlock);
	return err;
}

void
maildir_writer_stop(struct maildir *md)
{
	if (!md->has_writer || md->writer_pid != getpid())
		return;
	free(maildir_writer_wait(md));
	pthread_mutex_lock(&md->wlock);
	md->wstop = 1;
	pthread_cond_signal(&md->wcond);
	pthread_mutex_unlock(&md->wlock);
	(void)pthread_join(md->writer, NULL);
	md->has_writer = 0;
}

/* mailmill - ISC licence, see LICENSE */
/*
 * The Maildir writer moves each message into new/ as soon as it is written
 * and makes a whole batch durable with one flush before the journal commit
 * (archive_maildir.c).  Until that flush a crash can leave files in new/
 * whose data never reached the disk.  A marker file, durable before the
 * first such move, tells the next run to look: it lives in the Maildir's
 * root as "mailmill-unsynced.<pid>.<n>", holds the writer's host name and
 * is locked (flock) by the writer for as long as it runs.
 *
 * Recovery, on opening the Maildir: for every marker whose lock is free (its
 * writer is gone), each file in new/ and cur/ that this writer made (its
 * pid and host in the name) must have the size its ",S=" field records;
 * one that does not lost its data in a crash and is moved to tmp/, out of
 * readers' sight and out of the "already delivered" set, so its message is
 * fetched and delivered again (it was never journalled: the journal commits
 * after the flush).  Then one syncfs makes what stays durable (a killed
 * writer's files may still be only in the page cache) and the marker goes.
 *
 * Where a file system can expose a size before the data it covers (ext4
 * with data=writeback) a file could pass with the wrong bytes; ext4's
 * default (data=ordered), XFS and btrfs write data before the size.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* syncfs */
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"

#define MARK_PREFIX "mailmill-unsynced."
#define MARK_HOST_MAX 1024 /* maildir_hostname() of 255 bytes is at most 1020 */

int
archive_recover_mark(int rootfd, const char *dir, const char *host, struct archive_mark *m,
		     char **err_r)
{
	size_t hlen = strlen(host);
	int fd, e;

	/* One per writer, not per process: a --once run's accounts may archive
	 * into the same Maildir, each through its own writer. */
	static unsigned seq;

	m->pid = getpid();
	snprintf(m->name, sizeof(m->name), MARK_PREFIX "%ld.%u", (long)m->pid, ++seq);
	fd = openat(rootfd, m->name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		archive_seterr(err_r, "create %s/%s: %s", dir, m->name, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0 || archive_write_all(fd, host, hlen) < 0 ||
	    archive_write_all(fd, "\n", 1) < 0 || fsync(fd) < 0 || fsync(rootfd) < 0) {
		e = errno;
		(void)close(fd); /* the first error is the one to report */
		(void)unlinkat(rootfd, m->name, 0);
		archive_seterr(err_r, "write %s/%s: %s", dir, m->name, strerror(e));
		return -1;
	}
	m->fd = fd;
	return 0;
}

void
archive_recover_unmark(int rootfd, struct archive_mark *m, int keep)
{
	if (m->fd < 0)
		return;
	/* Only the process that made the marker removes it; a leftover one
	 * only costs the next run a look at this writer's files. */
	if (!keep && m->pid == getpid())
		(void)unlinkat(rootfd, m->name, 0);
	(void)close(m->fd); /* releases the lock; nothing was written since the fsync */
	m->fd = -1;
}

/*
 * "<sec>.M<usec>P<pid>Q<digest>.<host>,S=<size>[:2,<flags>]": 0 and the
 * pid, host (not NUL-terminated) and size, else -1 (not one of ours).
 */
static int
recover_parse(const char *name, long *pid_r, const char **host_r, size_t *hlen_r,
	      unsigned long long *size_r)
{
	const char *p = strchr(name, '.'), *q, *s;
	char *end;

	if (p == NULL || p[1] != 'M' || (p = strchr(p, 'P')) == NULL)
		return -1;
	errno = 0;
	*pid_r = strtol(p + 1, &end, 10);
	if (errno != 0 || end == p + 1 || *end != 'Q' || (q = strchr(end, '.')) == NULL)
		return -1;
	*host_r = q + 1;
	if ((s = strstr(*host_r, ",S=")) == NULL || s[3] < '0' || s[3] > '9')
		return -1;
	*hlen_r = (size_t)(s - *host_r);
	errno = 0;
	*size_r = strtoull(s + 3, &end, 10);
	if (errno != 0 || (*end != '\0' && *end != ':' && *end != ','))
		return -1;
	return 0;
}

/* Move the writer's files in `sub` whose size is not their ",S=" to tmp/. */
static int
recover_dir(int rootfd, int tmpfd, const char *dir, const char *sub, long pid,
	    const char *host, size_t *moved, char **err_r)
{
	struct dirent *de;
	struct stat st;
	int fd = openat(rootfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;

	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		archive_seterr(err_r, "open %s/%s: %s", dir, sub, strerror(errno));
		if (fd >= 0)
			(void)close(fd);
		return -1;
	}
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		unsigned long long size;
		const char *h;
		size_t hlen;
		long p;

		if (de->d_name[0] == '.' || recover_parse(de->d_name, &p, &h, &hlen, &size) < 0 ||
		    p != pid || (host[0] != '\0' && (hlen != strlen(host) || memcmp(h, host, hlen) != 0)))
			goto next;
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
		    (unsigned long long)st.st_size == size)
			goto next;
		if (renameat(fd, de->d_name, tmpfd, de->d_name) < 0) {
			archive_seterr(err_r, "move %s/%s/%s to tmp/: %s", dir, sub, de->d_name,
				       strerror(errno));
			(void)closedir(d);
			return -1;
		}
		(*moved)++;
next:
		errno = 0;
	}
	if (errno != 0) {
		archive_seterr(err_r, "readdir %s/%s: %s", dir, sub, strerror(errno));
		(void)closedir(d);
		return -1;
	}
	(void)closedir(d); /* read-only */
	return 0;
}

/* Recover after the writer of marker `name`, if it is gone. */
static int
recover_one(int rootfd, int tmpfd, const char *dir, const char *name, size_t *moved,
	    char **err_r)
{
	char host[MARK_HOST_MAX + 2], *nl;
	long pid = strtol(name + strlen(MARK_PREFIX), NULL, 10);
	ssize_t n;
	int fd, rc = -1;

	if (pid <= 0)
		return 0; /* no writer's: ours carry a real pid */
	if ((fd = openat(rootfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		/* Gone: another run recovered it meanwhile.  A symbolic link:
		 * not a marker (ours are files), and not one to follow. */
		if (errno == ENOENT || errno == ELOOP)
			return 0;
		archive_seterr(err_r, "open %s/%s: %s", dir, name, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		(void)close(fd);
		return 0; /* its writer is still at work */
	}
	/* A marker torn by the crash names no host: check every file of this
	 * pid.  One for which that is wrong was made durable on commit. */
	n = read(fd, host, sizeof(host) - 1);
	host[n > 0 ? n : 0] = '\0';
	if ((nl = strchr(host, '\n')) != NULL)
		*nl = '\0';
	else
		host[0] = '\0';
	if (recover_dir(rootfd, tmpfd, dir, "new", pid, host, moved, err_r) < 0 ||
	    recover_dir(rootfd, tmpfd, dir, "cur", pid, host, moved, err_r) < 0)
		goto out;
	if (syncfs(rootfd) < 0) {
		archive_seterr(err_r, "syncfs %s: %s", dir, strerror(errno));
		goto out;
	}
	(void)unlinkat(rootfd, name, 0); /* if this is lost, the check runs again */
	rc = 0;
out:
	(void)close(fd);
	return rc;
}

int
archive_recover_scan(int rootfd, int tmpfd, const char *dir, size_t *moved_r, char **err_r)
{
	struct dirent *de;
	int fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;
	DIR *d;

	*moved_r = 0;
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		archive_seterr(err_r, "open %s: %s", dir, strerror(errno));
		if (fd >= 0)
			(void)close(fd);
		return -1;
	}
	while (rc == 0 && (de = readdir(d)) != NULL) {
		const char *p = de->d_name + strlen(MARK_PREFIX);
		size_t n;

		/* "<pid>.<seq>" (or "<pid>"): digits, one dot, digits. */
		if (strncmp(de->d_name, MARK_PREFIX, strlen(MARK_PREFIX)) != 0 ||
		    (n = strspn(p, "0123456789")) == 0 ||
		    (p[n] != '\0' && (p[n] != '.' || p[n + 1] == '\0' ||
				      strspn(p + n + 1, "0123456789") != strlen(p + n + 1))))
			continue;
		rc = recover_one(rootfd, tmpfd, dir, de->d_name, moved_r, err_r);
	}
	(void)closedir(d);
	return rc;
}

/* mailmill - ISC licence, see LICENSE */
#include <config.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <glib.h>
#include "daemon/core/statelock.h"
#include "proto/err.h"

#define STATELOCK_FILE "mailmilld.lock"

static long
statelock_read_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	char *end;
	long pid;

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	errno = 0;
	pid = strtol(buf, &end, 10);
	if (errno != 0 || end == buf || pid <= 0)
		return 0;
	return pid;
}

int
statelock_set_pid(int fd, pid_t pid)
{
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%ld\n", (long)pid);

	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != (ssize_t)n)
		return -1;
	return 0;
}

int
statelock_take(const char *state_dir, int *fd_r, char **err_r)
{
	char *path = g_strdup_printf("%s/%s", state_dir, STATELOCK_FILE);
	int fd;

	*fd_r = -1;
	if (g_mkdir_with_parents(state_dir, 0700) < 0) {
		*err_r = err_fmt("cannot create %s: %s", state_dir, strerror(errno));
		g_free(path);
		return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0644);
	if (fd < 0) {
		*err_r = err_fmt("cannot open %s: %s", path, strerror(errno));
		g_free(path);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		long holder = statelock_read_pid(fd);

		if (e == EWOULDBLOCK && holder > 0)
			*err_r = err_fmt("%s is in use by another mailmilld, pid %ld (it holds %s)",
					 state_dir, holder, path);
		else if (e == EWOULDBLOCK)
			*err_r = err_fmt("%s is in use by another mailmilld (it holds %s)",
					 state_dir, path);
		else
			*err_r = err_fmt("cannot lock %s: %s", path, strerror(e));
		close(fd);
		g_free(path);
		return -1;
	}
	if (statelock_set_pid(fd, getpid()) < 0) {
		*err_r = err_fmt("cannot write %s: %s", path, strerror(errno));
		close(fd);
		g_free(path);
		return -1;
	}
	g_free(path);
	*fd_r = fd;
	return 0;
}

long
statelock_holder(const char *state_dir)
{
	char *path = g_strdup_printf("%s/%s", state_dir, STATELOCK_FILE);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	long pid = -1;

	g_free(path);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	/* A shared lock is refused exactly while someone holds the exclusive one. */
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		pid = 0;
		flock(fd, LOCK_UN);
	} else if (errno == EWOULDBLOCK) {
		pid = statelock_read_pid(fd);
		if (pid == 0)
			pid = -1;
	}
	close(fd);
	return pid;
}

/* mailmill - ISC licence, see LICENSE */
#include <config.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include "daemon/core/detach.h"
#include "proto/err.h"

int
detach_fork(int quiet_stderr, char **err_r)
{
	pid_t pid;
	int fd;

	pid = fork();
	if (pid < 0) {
		*err_r = err_fmt("cannot fork: %s", strerror(errno));
		return -1;
	}
	if (pid > 0)
		return 1;
	if (setsid() < 0 || chdir("/") < 0) {
		*err_r = err_fmt("cannot detach: %s", strerror(errno));
		return -1;
	}
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0 || dup2(fd, STDIN_FILENO) < 0 || dup2(fd, STDOUT_FILENO) < 0 ||
	    (quiet_stderr && dup2(fd, STDERR_FILENO) < 0)) {
		*err_r = err_fmt("cannot open /dev/null: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
detach_write_pidfile(const char *path, char **err_r)
{
	char *tmp = g_strdup_printf("%s.tmp", path);
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	ssize_t w;

	if (fd < 0)
		goto fail;
	w = write(fd, buf, (size_t)n);
	if (w != (ssize_t)n) {
		if (w >= 0)
			errno = ENOSPC;     /* a short write sets no errno */
		goto fail;
	}
	/* close() is the last chance to hear of a write that did not happen. */
	n = close(fd);
	fd = -1;
	if (n < 0 || rename(tmp, path) < 0)
		goto fail;
	g_free(tmp);
	return 0;
fail:
	*err_r = err_fmt("cannot write the pid file %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	g_free(tmp);
	return -1;
}

void
detach_remove_pidfile(const char *path)
{
	char buf[32];
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return;
	if (fgets(buf, sizeof buf, f) != NULL && strtol(buf, NULL, 10) == (long)getpid())
		unlink(path);
	fclose(f);
}

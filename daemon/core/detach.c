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

/* The detached process's end of the pipe its starter waits on. */
static int detach_ready_fd = -1;

int
detach_fork(int quiet_stderr, char **err_r)
{
	pid_t pid;
	int fd, p[2];

	if (pipe2(p, O_CLOEXEC) < 0) {
		*err_r = err_fmt("cannot make a pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		*err_r = err_fmt("cannot fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid > 0) {
		/* Whoever started the daemon may read its pid file as soon as
		 * this returns: wait for detach_ready, or for the end of the
		 * pipe if it died first. */
		char c;
		ssize_t n;

		close(p[1]);
		do
			n = read(p[0], &c, 1);
		while (n < 0 && errno == EINTR);
		close(p[0]);
		return n == 1 ? 1 : 2;
	}
	close(p[0]);
	detach_ready_fd = p[1];
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

void
detach_ready(void)
{
	if (detach_ready_fd < 0)
		return;
	if (write(detach_ready_fd, "", 1) < 0) {
		/* The starter is gone: nobody waits for the answer. */
	}
	close(detach_ready_fd);
	detach_ready_fd = -1;
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

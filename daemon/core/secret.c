/* mailmill - ISC licence, see LICENSE */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/core/secret.h"
#include "daemon/core/trust.h"
#include "proto/clock.h"
#include "proto/err.h"

/* A password longer than this is a mistake (or the wrong file). */
#define SECRET_MAX 4096
/* How much more output of a password_command is read and thrown away. */
#define SECRET_DRAIN_MAX (64 * 1024)
/* How much of a command's stderr goes into its error message. */
#define SECRET_STDERR_MAX 400

static int secret_timeout_ms = 10000;

void
secret_set_command_timeout_ms(int ms)
{
	secret_timeout_ms = ms > 0 ? ms : 10000;
}

void
secret_wipe(char **pw)
{
	if (pw == NULL || *pw == NULL)
		return;
	explicit_bzero(*pw, strlen(*pw));
	free(*pw);
	*pw = NULL;
}

void
secret_clear(secret *s)
{
	if (s == NULL)
		return;
	if (s->kind == SECRET_INLINE)
		secret_wipe(&s->value);
	free(s->value);
	if (s->argv != NULL) {
		for (char **a = s->argv; *a != NULL; a++)
			free(*a);
		free(s->argv);
	}
	memset(s, 0, sizeof(*s));
}

/*
 * The first line of buf[0..len) as an allocated string, CR/LF stripped.
 * `complete`: len is all there is (EOF seen), so a missing newline is fine.
 */
static int
secret_first_line(char *buf, size_t len, int complete, const char *what, char **pw_r,
		  char **err_r)
{
	char *nl = memchr(buf, '\n', len);
	size_t n;

	if (nl == NULL && !complete) {
		err_set(err_r, "%s: first line longer than %zu bytes", what, len - 1);
		return -1;
	}
	n = nl != NULL ? (size_t)(nl - buf) : len;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (memchr(buf, '\0', n) != NULL) {
		err_set(err_r, "%s: %s contains a NUL byte", what,
			strstr(what, "token") != NULL ? "the token" : "password");
		return -1;
	}
	if (n == 0) {
		err_set(err_r, "%s: %s is empty", what,
			strstr(what, "token") != NULL ? "the token" : "password");
		return -1;
	}
	*pw_r = malloc(n + 1);
	if (*pw_r == NULL) {
		err_set(err_r, "%s: out of memory", what);
		return -1;
	}
	memcpy(*pw_r, buf, n);
	(*pw_r)[n] = '\0';
	return 0;
}

/* Group or others able to read (or swap) the password: refuse. */
static int
secret_mode_ok(const char *key, const char *path, const struct stat *sb, char **err_r)
{
	if (sb->st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) {
		err_set(err_r, "%s %s: mode %04o lets group or others read or "
			"change it; run: chmod 600 %s", key, path,
			(unsigned)(sb->st_mode & 07777), path);
		return -1;
	}
	return 0;
}

int
secret_check_file_as(const char *key, const char *path, char **err_r)
{
	struct stat sb;

	if (stat(path, &sb) < 0) {
		err_set(err_r, "%s %s: %s", key, path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(sb.st_mode)) {
		err_set(err_r, "%s %s: not a regular file", key, path);
		return -1;
	}
	if (secret_mode_ok(key, path, &sb, err_r) < 0)
		return -1;
	/* Someone else's file (or directory) could hand us their password. */
	return trust_check_path(path, key, err_r);
}

int
secret_check_file(const char *path, char **err_r)
{
	return secret_check_file_as("password_file", path, err_r);
}

static int
secret_from_file(const char *key, const char *path, char **pw_r, char **err_r)
{
	char buf[SECRET_MAX];
	size_t len = 0;
	struct stat sb;
	int fd, rc;

	if (trust_check_path(path, key, err_r) < 0)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		err_set(err_r, "%s %s: %s", key, path, strerror(errno));
		return -1;
	}
	/* Checked on the open file, so a swap after the check does not matter. */
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		err_set(err_r, "%s %s: not a regular file", key, path);
		close(fd);
		return -1;
	}
	if (secret_mode_ok(key, path, &sb, err_r) < 0) {
		close(fd);
		return -1;
	}
	while (len < sizeof(buf)) {
		ssize_t r = read(fd, buf + len, sizeof(buf) - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err_set(err_r, "%s %s: %s", key, path, strerror(errno));
			close(fd);
			explicit_bzero(buf, sizeof(buf));
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (memchr(buf, '\n', len) != NULL)
			break;
	}
	close(fd);
	rc = secret_first_line(buf, len, len < sizeof(buf), key, pw_r, err_r);
	explicit_bzero(buf, sizeof(buf));
	return rc;
}

/* Child side: never returns.  Only async-signal-safe calls after fork. */
static void
secret_child(char *const argv[], int out_fd, int err_fd, int stderr_fd)
{
	int null_fd, e;

	setpgid(0, 0);
	null_fd = open("/dev/null", O_RDONLY);
	if (null_fd >= 0) {
		dup2(null_fd, STDIN_FILENO);
		if (null_fd != STDIN_FILENO)
			close(null_fd);
	}
	if (dup2(out_fd, STDOUT_FILENO) < 0)
		_exit(127);
	if (out_fd != STDOUT_FILENO)
		close(out_fd);
	if (stderr_fd >= 0 && stderr_fd != STDERR_FILENO) {
		if (dup2(stderr_fd, STDERR_FILENO) < 0)
			_exit(127);
		close(stderr_fd);
	}
	/* The daemon may ignore SIGPIPE; the command should not inherit that. */
	signal(SIGPIPE, SIG_DFL);
	execvp(argv[0], argv);
	e = errno;
	if (write(err_fd, &e, sizeof(e)) < 0)
		_exit(127);
	_exit(127);
}

/*
 * Wait for the child until deadline; kill its process group on timeout.
 * Returns 0 and *status_r, or -1 on timeout (the child is killed and reaped).
 */
static int
secret_reap(pid_t pid, long long deadline, int *status_r)
{
	for (;;) {
		pid_t r = waitpid(pid, status_r, WNOHANG);
		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR) {
			*status_r = 0;
			return 0;
		}
		if (clock_now_ms() >= deadline) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			while (waitpid(pid, status_r, 0) < 0 && errno == EINTR)
				;
			return -1;
		}
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

/* pipe2() is not POSIX; we fork no threads, so the window does not matter. */
static int
secret_pipe(int fds[2])
{
	if (pipe(fds) < 0)
		return -1;
	if (fcntl(fds[0], F_SETFD, FD_CLOEXEC) < 0 || fcntl(fds[1], F_SETFD, FD_CLOEXEC) < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	return 0;
}

/* What a command wrote on stderr, on one line, for its error message. */
static void
secret_stderr_text(char *e, size_t n, char *out, size_t size)
{
	size_t j = 0;

	while (n > 0 && (e[n - 1] == '\n' || e[n - 1] == '\r' || e[n - 1] == ' '))
		n--;
	for (size_t i = 0; i < n && j + 1 < size; i++)
		out[j++] = (e[i] == '\n' || e[i] == '\r' || e[i] == '\t' ||
			    (unsigned char)e[i] < 0x20) ? ' ' : e[i];
	out[j] = '\0';
}

/*
 * Run argv and take the first line of its stdout (at most max - 1 bytes).
 * With want_stderr, its stderr (the first SECRET_STDERR_MAX bytes) is
 * captured and quoted in the error; otherwise it is inherited.
 */
static int
secret_from_command(const char *key, char *const argv[], size_t max, int want_stderr,
		    char **pw_r, char **err_r)
{
	char *buf, ebuf[SECRET_STDERR_MAX], etext[SECRET_STDERR_MAX + 1], why[128];
	size_t len = 0, elen = 0, drained = 0;
	int out[2], errp[2], se[2] = { -1, -1 }, status = 0, reaped = 0, timed_out = 0;
	int exec_errno = 0, rc, out_open = 1;
	long long deadline = clock_now_ms() + secret_timeout_ms;
	const char *cmd = argv[0];
	pid_t pid;

	if ((buf = malloc(max)) == NULL) {
		err_set(err_r, "%s %s: out of memory", key, cmd);
		return -1;
	}
	if (secret_pipe(out) < 0) {
		err_set(err_r, "%s %s: pipe: %s", key, cmd, strerror(errno));
		free(buf);
		return -1;
	}
	if (secret_pipe(errp) < 0) {
		err_set(err_r, "%s %s: pipe: %s", key, cmd, strerror(errno));
		close(out[0]);
		close(out[1]);
		free(buf);
		return -1;
	}
	if (want_stderr && secret_pipe(se) < 0) {
		err_set(err_r, "%s %s: pipe: %s", key, cmd, strerror(errno));
		close(out[0]); close(out[1]); close(errp[0]); close(errp[1]);
		free(buf);
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		err_set(err_r, "%s %s: fork: %s", key, cmd, strerror(errno));
		close(out[0]); close(out[1]); close(errp[0]); close(errp[1]);
		if (se[0] >= 0) {
			close(se[0]);
			close(se[1]);
		}
		free(buf);
		return -1;
	}
	if (pid == 0) {
		close(out[0]);
		close(errp[0]);
		if (se[0] >= 0)
			close(se[0]);
		secret_child(argv, out[1], errp[1], se[1]);
	}
	/* Also in the parent, so a timeout can kill the group without a race. */
	setpgid(pid, pid);
	close(out[1]);
	close(errp[1]);
	if (se[1] >= 0)
		close(se[1]);

	/*
	 * Keep the first max bytes and drain (bounded) past them, so a command
	 * printing more than one line is not killed by SIGPIPE.  Stop at EOF,
	 * or once a line is in and the command has exited (a helper it started
	 * may keep the pipe open), or at the deadline.
	 */
	for (;;) {
		char sink[1024];
		long long left = deadline - clock_now_ms();
		struct pollfd pfd[2] = { { .fd = out_open ? out[0] : -1, .events = POLLIN },
					 { .fd = se[0], .events = POLLIN } };
		ssize_t r;
		int pr;

		if (len > 0 && memchr(buf, '\n', len) != NULL &&
		    waitpid(pid, &status, WNOHANG) == pid) {
			reaped = 1;
			break;
		}
		if (left <= 0 || drained >= SECRET_DRAIN_MAX || (!out_open && se[0] < 0))
			break;
		pr = poll(pfd, 2, left > 50 ? 50 : (int)left);
		if (pr <= 0)
			continue;  /* EINTR or nothing yet: the deadline bounds us */
		if (se[0] >= 0 && pfd[1].revents != 0) {
			r = elen < sizeof(ebuf) ? read(se[0], ebuf + elen, sizeof(ebuf) - elen) :
						  read(se[0], sink, sizeof(sink));
			if (r <= 0 && !(r < 0 && (errno == EINTR || errno == EAGAIN))) {
				close(se[0]);
				se[0] = -1;
			} else if (r > 0 && elen < sizeof(ebuf)) {
				elen += (size_t)r;
			} else if (r > 0) {
				drained += (size_t)r;
			}
		}
		if (!out_open || pfd[0].revents == 0)
			continue;
		if (len < max)
			r = read(out[0], buf + len, max - len);
		else
			r = read(out[0], sink, sizeof(sink));
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0) {
			out_open = 0;
			continue;
		}
		if (len < max)
			len += (size_t)r;
		else
			drained += (size_t)r;
	}
	close(out[0]);
	if (se[0] >= 0)
		close(se[0]);
	if (!reaped && secret_reap(pid, deadline, &status) < 0)
		timed_out = 1;
	if (read(errp[0], &exec_errno, sizeof(exec_errno)) != (ssize_t)sizeof(exec_errno))
		exec_errno = 0;
	close(errp[0]);

	secret_stderr_text(ebuf, elen, etext, sizeof etext);
	why[0] = '\0';
	if (exec_errno != 0) {
		snprintf(why, sizeof why, "cannot run: %s", strerror(exec_errno));
	} else if (timed_out) {
		snprintf(why, sizeof why, "not finished within %.1f s, killed",
			 secret_timeout_ms / 1000.0);
	} else if (WIFSIGNALED(status)) {
		snprintf(why, sizeof why, "killed by signal %d", WTERMSIG(status));
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(why, sizeof why, "exited with status %d",
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	}
	if (why[0] != '\0') {
		err_set(err_r, "%s %s: %s%s%s", key, cmd, why, etext[0] ? ": " : "", etext);
		rc = -1;
	} else {
		rc = secret_first_line(buf, len, len < max, key, pw_r, err_r);
	}
	explicit_bzero(buf, max);
	free(buf);
	return rc;
}

int
secret_get(const secret *s, char **pw_r, char **err_r)
{
	*pw_r = NULL;
	switch (s->kind) {
	case SECRET_INLINE:
		if (s->value == NULL || (*pw_r = strdup(s->value)) == NULL) {
			err_set(err_r, "password: out of memory");
			return -1;
		}
		return 0;
	case SECRET_FILE:
		return secret_from_file(s->key != NULL ? s->key : "password_file", s->value, pw_r,
					err_r);
	case SECRET_COMMAND:
		if (s->argv == NULL || s->argv[0] == NULL) {
			err_set(err_r, "password_command: empty command");
			return -1;
		}
		return secret_from_command(s->key != NULL ? s->key : "password_command", s->argv,
					   s->max > 0 ? s->max : SECRET_MAX, s->want_stderr, pw_r,
					   err_r);
	case SECRET_NONE:
		break;
	}
	err_set(err_r, "no password configured");
	return -1;
}

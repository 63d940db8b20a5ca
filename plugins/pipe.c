/* mailmill - ISC licence, see LICENSE */
/*
 * The `pipe` plugin: hand the message to a command.
 *
 *   { plugin = "pipe";
 *     command = [ "/usr/local/bin/import-mail", "--queue", "support" ];
 *     timeout = 60;           # seconds; then the process group is killed
 *     on_success = "done"; }  # verdict for exit 0: "done", "keep" or "pass"
 *
 * The command (no shell; command[0] an absolute path) gets the raw message
 * on stdin ("\n" line ends, as fetched) and MAILMILL_ACCOUNT, MAILMILL_UID,
 * MAILMILL_SENDER, MAILMILL_RECIPIENT, MAILMILL_SUBJECT in its environment.
 * Exit 0: on_success; 75 (EX_TEMPFAIL): MM_DEFER; anything else, a signal or
 * the deadline: MM_FAIL (left on the server, counted toward quarantine).  The
 * first PIPE_ERR_MAX bytes of its stderr are logged; stdout is discarded.
 */
#define _GNU_SOURCE   /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <mailmill/plugin.h>

#define PIPE_ERR_MAX 4096
#define PIPE_MAX_ARGS 256
#define PIPE_TIMEOUT_MAX 86400
#define PIPE_ENV_VALUE_MAX 1024
#define PIPE_GRACE_MS 2000          /* between SIGTERM and SIGKILL at the deadline */

extern char **environ;

typedef struct pipe_stage {
	char **argv;
	long long timeout_s;
	mm_verdict on_success;
} pipe_stage;

static const char *const pipe_keys[] = { "command", "timeout", "on_success", NULL };

static void
pipe_free(void *p)
{
	pipe_stage *ps = p;

	if (ps == NULL)
		return;
	g_strfreev(ps->argv);
	g_free(ps);
}

static int
pipe_init(mm_ctx *ctx, const config_setting_t *g, void **state)
{
	pipe_stage *ps = g_new0(pipe_stage, 1);
	const config_setting_t *s;
	int bad = mm_settings_check(ctx, g, pipe_keys) < 0, n;

	ps->timeout_s = 60;
	ps->on_success = MM_DONE;
	s = config_setting_get_member(g, "command");
	n = mm_setting_strings(ctx, g, "command", PIPE_MAX_ARGS, &ps->argv);
	if (n == 0)
		mm_ctx_error(ctx, g, "`command` is required: a list of 1 to %d strings,"
			     " the program (an absolute path) and its arguments; no shell",
			     PIPE_MAX_ARGS);
	if (n <= 0) {
		bad = 1;
	} else {
		if (ps->argv[0][0] != '/') {
			mm_ctx_error(ctx, s, "`command`: \"%s\" must be an absolute path", ps->argv[0]);
			bad = 1;
		} else if (access(ps->argv[0], X_OK) < 0) {
			mm_ctx_error(ctx, s, "`command`: %s: %s", ps->argv[0], strerror(errno));
			bad = 1;
		}
	}
	/* A duration ("2m"); a plain number is seconds, as before. */
	if (mm_setting_duration(ctx, g, "timeout", 1, PIPE_TIMEOUT_MAX, &ps->timeout_s) < 0 ||
	    mm_setting_verdict(ctx, g, "on_success", MM_VERDICT_BIT(MM_DONE) | MM_VERDICT_BIT(MM_KEEP) |
			       MM_VERDICT_BIT(MM_PASS), &ps->on_success) < 0)
		bad = 1;
	if (bad) {
		pipe_free(ps);
		return -1;
	}
	*state = ps;
	return 0;
}

/* A value for the environment: one line, bounded, no NULs. */
static char *
pipe_env_value(const char *v)
{
	char *out = g_strndup(v != NULL ? v : "", PIPE_ENV_VALUE_MAX);

	for (char *p = out; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	return out;
}

/* The first address of the first header named in names that has one, or "". */
static char *
pipe_first_addr(GMimeMessage *m, const char *const *names)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(m));

	for (; *names != NULL; names++) {
		GMimeHeader *h = hl != NULL ? g_mime_header_list_get_header(hl, *names) : NULL;
		const char *raw = h != NULL ? g_mime_header_get_raw_value(h) : NULL;
		InternetAddressList *l = raw != NULL ? internet_address_list_parse(NULL, raw) : NULL;
		char *a = NULL;

		if (l != NULL && internet_address_list_length(l) > 0) {
			InternetAddress *ia = internet_address_list_get_address(l, 0);

			if (INTERNET_ADDRESS_IS_MAILBOX(ia))
				a = g_strdup(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)));
		}
		if (l != NULL)
			g_object_unref(l);
		if (a != NULL && *a != '\0')
			return a;
		g_free(a);
	}
	return g_strdup("");
}

/* The daemon's environment without MAILMILL_*, then ours. */
static char **
pipe_env(mm_msg *msg)
{
	static const char *const senders[] = { "Return-Path", "Sender", "From", NULL };
	static const char *const rcpts[] = { "Delivered-To", "X-Original-To", "To", "Cc", NULL };
	GMimeMessage *m = mm_msg_mime(msg);
	GPtrArray *env = g_ptr_array_new();
	char *v;

	for (char **e = environ; e != NULL && *e != NULL; e++)
		if (strncmp(*e, "MAILMILL_", 9) != 0)
			g_ptr_array_add(env, g_strdup(*e));
	v = pipe_env_value(mm_msg_account(msg));
	g_ptr_array_add(env, g_strconcat("MAILMILL_ACCOUNT=", v, NULL));
	g_free(v);
	v = pipe_env_value(mm_msg_uid(msg));
	g_ptr_array_add(env, g_strconcat("MAILMILL_UID=", v, NULL));
	g_free(v);
	v = pipe_first_addr(m, senders);
	g_ptr_array_add(env, g_strconcat("MAILMILL_SENDER=", v, NULL));
	g_free(v);
	v = pipe_first_addr(m, rcpts);
	g_ptr_array_add(env, g_strconcat("MAILMILL_RECIPIENT=", v, NULL));
	g_free(v);
	/* GMime gives the Subject decoded (RFC 2047) as UTF-8. */
	v = pipe_env_value(g_mime_message_get_subject(m));
	g_ptr_array_add(env, g_strconcat("MAILMILL_SUBJECT=", v, NULL));
	g_free(v);
	g_ptr_array_add(env, NULL);
	return (char **)g_ptr_array_free(env, FALSE);
}

/* Child side: never returns; only async-signal-safe calls after fork. */
static void
pipe_child(char **argv, char **envp, int in_fd, int err_fd)
{
	sigset_t none;
	int null_fd;

	setpgid(0, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* The daemon ignores SIGPIPE; exec keeps ignored signals ignored. */
	signal(SIGPIPE, SIG_DFL);
	null_fd = open("/dev/null", O_WRONLY);
	if (dup2(in_fd, STDIN_FILENO) < 0 || dup2(err_fd, STDERR_FILENO) < 0 ||
	    null_fd < 0 || dup2(null_fd, STDOUT_FILENO) < 0)
		_exit(126);
	execve(argv[0], argv, envp);
	_exit(127);
}

typedef struct pipe_result {
	int status;            /* waitpid's */
	int timed_out;
	char err[PIPE_ERR_MAX + 1];
	size_t err_len, err_dropped;
} pipe_result;

static void
pipe_kill(pid_t pid, int sig)
{
	kill(-pid, sig);
	kill(pid, sig);
}

/*
 * Feed the message and collect stderr, both through poll, so that a command
 * that writes much before it reads cannot deadlock us; until both pipes are
 * closed and the child has exited, or the deadline.
 */
static void
pipe_talk(pid_t pid, int in_fd, int err_fd, const char *data, size_t len, long long deadline,
	  pipe_result *res)
{
	size_t off = 0;
	int exited = 0;
	long long kill_at = 0;

	while (in_fd >= 0 || err_fd >= 0 || !exited) {
		struct pollfd p[2];
		nfds_t n = 0;
		/* GLib's monotonic clock: a plugin cannot link proto/clock */
		long long now = g_get_monotonic_time() / 1000, wait_ms;

		if (!exited) {
			pid_t r = waitpid(pid, &res->status, WNOHANG);

			if (r == pid || (r < 0 && errno == ECHILD))
				exited = 1;
		}
		if (exited && err_fd < 0)
			break;
		if (!res->timed_out && now >= deadline) {
			res->timed_out = 1;
			pipe_kill(pid, SIGTERM);
			kill_at = now + PIPE_GRACE_MS;
		}
		if (res->timed_out && now >= kill_at) {
			pipe_kill(pid, SIGKILL);
			/* What is left of the group may hold stderr open: stop reading. */
			if (exited)
				break;
			kill_at = now + 1000;
		}
		if (in_fd >= 0) {
			p[n].fd = in_fd;
			p[n++].events = POLLOUT;
		}
		if (err_fd >= 0) {
			p[n].fd = err_fd;
			p[n++].events = POLLIN;
		}
		/* Short waits while the child has not been reaped: no SIGCHLD here. */
		wait_ms = (res->timed_out ? kill_at : deadline) - now;
		if (wait_ms > 50)
			wait_ms = 50;
		if (wait_ms < 0)
			wait_ms = 0;
		if (poll(p, n, (int)wait_ms) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (nfds_t i = 0; i < n; i++) {
			if (p[i].fd == in_fd && (p[i].revents & (POLLOUT | POLLERR | POLLHUP))) {
				ssize_t w = off < len ? write(in_fd, data + off, len - off > 65536 ?
							      65536 : len - off) : 0;

				if (w > 0)
					off += (size_t)w;
				/* Done, or the command closed its stdin (EPIPE): no more. */
				if (off >= len || (w < 0 && errno != EAGAIN && errno != EINTR)) {
					close(in_fd);
					in_fd = -1;
				}
			} else if (p[i].fd == err_fd && (p[i].revents & (POLLIN | POLLERR | POLLHUP))) {
				char buf[4096];
				ssize_t r = read(err_fd, buf, sizeof buf);

				if (r > 0) {
					size_t room = PIPE_ERR_MAX - res->err_len, k = (size_t)r < room ?
						      (size_t)r : room;

					memcpy(res->err + res->err_len, buf, k);
					res->err_len += k;
					res->err_dropped += (size_t)r - k;
				} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
					close(err_fd);
					err_fd = -1;
				}
			}
		}
	}
	if (in_fd >= 0)
		close(in_fd);
	if (err_fd >= 0)
		close(err_fd);
	if (!exited) {
		while (waitpid(pid, &res->status, 0) < 0 && errno == EINTR)
			;
	}
	res->err[res->err_len] = '\0';
}

static int
pipe_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* stderr, line by line, at level. */
static void
pipe_log_stderr(mm_ctx *ctx, mm_log_level level, const char *uid, const pipe_result *res)
{
	char **lines = g_strsplit(res->err, "\n", -1);

	for (char **l = lines; *l != NULL; l++) {
		g_strchomp(*l);
		if (**l != '\0')
			mm_log(ctx, level, "uid %s: stderr: %s", uid, *l);
	}
	if (res->err_dropped > 0)
		mm_log(ctx, level, "uid %s: stderr: (%zu more bytes not logged)", uid, res->err_dropped);
	g_strfreev(lines);
}

static mm_verdict
pipe_process(void *state, mm_msg *msg, mm_ctx *ctx)
{
	pipe_stage *ps = state;
	const char *uid = mm_msg_uid(msg), *data;
	int in[2] = { -1, -1 }, er[2] = { -1, -1 }, code;
	pipe_result *res;
	char **envp;
	size_t len;
	pid_t pid;
	mm_verdict v;

	if (mm_ctx_dry_run(ctx)) {
		mm_log(ctx, MM_LOG_INFO, "uid %s: dry run: would run %s with %zu bytes on stdin", uid,
		       ps->argv[0], mm_msg_size(msg));
		return ps->on_success;
	}
	data = mm_msg_raw(msg, &len);
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(er, O_CLOEXEC) < 0) {
		mm_log(ctx, MM_LOG_ERROR, "uid %s: pipe: %s: deferred", uid, strerror(errno));
		goto fail_fds;
	}
	envp = pipe_env(msg);
	pid = fork();
	if (pid < 0) {
		mm_log(ctx, MM_LOG_ERROR, "uid %s: fork: %s: deferred", uid, strerror(errno));
		g_strfreev(envp);
		goto fail_fds;
	}
	if (pid == 0)
		pipe_child(ps->argv, envp, in[0], er[1]);
	/* Also here, so that the deadline can kill the group without a race. */
	setpgid(pid, pid);
	g_strfreev(envp);
	close(in[0]);
	close(er[1]);
	if (pipe_nonblock(in[1]) < 0 || pipe_nonblock(er[0]) < 0)
		mm_log(ctx, MM_LOG_WARNING, "uid %s: cannot make the pipes non-blocking", uid);
	res = g_new0(pipe_result, 1);
	pipe_talk(pid, in[1], er[0], data, len, g_get_monotonic_time() / 1000 + ps->timeout_s * 1000,
		  res);
	code = WIFEXITED(res->status) ? WEXITSTATUS(res->status) : -1;
	if (res->timed_out) {
		v = MM_FAIL;
		mm_log(ctx, MM_LOG_ERROR, "uid %s: %s did not finish within %llds: killed; the message"
		       " stays on the server", uid, ps->argv[0], ps->timeout_s);
	} else if (code == 0) {
		v = ps->on_success;
		mm_log(ctx, MM_LOG_INFO, "uid %s: %s exited 0", uid, ps->argv[0]);
	} else if (code == 75) {
		v = MM_DEFER;
		mm_log(ctx, MM_LOG_WARNING, "uid %s: %s exited 75 (temporary failure): deferred", uid,
		       ps->argv[0]);
	} else {
		v = MM_FAIL;
		if (WIFSIGNALED(res->status))
			mm_log(ctx, MM_LOG_ERROR, "uid %s: %s killed by signal %d: failed", uid,
			       ps->argv[0], WTERMSIG(res->status));
		else
			mm_log(ctx, MM_LOG_ERROR, "uid %s: %s exited %d%s: failed", uid, ps->argv[0], code,
			       code == 127 ? " (could not be run)" : "");
	}
	pipe_log_stderr(ctx, v == MM_FAIL ? MM_LOG_ERROR : v == MM_DEFER ? MM_LOG_WARNING :
			MM_LOG_INFO, uid, res);
	g_free(res);
	return v;
fail_fds:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (er[i] >= 0)
			close(er[i]);
	}
	return MM_DEFER;
}

const struct mailmill_plugin mailmill_plugin = {
	.abi = MAILMILL_PLUGIN_ABI,
	.name = "pipe",
	.version = "1",
	.init = pipe_init,
	.process = pipe_process,
	.sync = NULL,
	.fini = pipe_free,
};

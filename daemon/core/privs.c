/* mailmill - ISC licence, see LICENSE */
#include <config.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>
#include <glib.h>
#include "daemon/core/privs.h"
#include "proto/err.h"

static struct passwd *
privs_lookup(const char *user, char **err_r)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(user);
	if (pw == NULL)
		*err_r = err_fmt("user \"%s\": %s", user,
				 errno ? strerror(errno) : "no such user");
	return pw;
}

int
privs_drop(const char *user, char **err_r)
{
	struct passwd *pw;

	if (user == NULL || geteuid() != 0)
		return 0;
	if ((pw = privs_lookup(user, err_r)) == NULL)
		return -1;
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		*err_r = err_fmt("cannot become user \"%s\": %s", user, strerror(errno));
		return -1;
	}
	/* setuid from root drops the saved id too; make sure it cannot come back. */
	if (pw->pw_uid != 0 && setuid(0) == 0) {
		*err_r = err_fmt("could regain root after becoming \"%s\"", user);
		return -1;
	}
	return 0;
}

int
privs_run_as(const char *user, int (*fn)(void *arg), void (*on_drop_error)(const char *err),
	     void *arg, char **err_r)
{
	char *err = NULL;
	int status, rc;
	pid_t pid;

	if (user == NULL || geteuid() != 0)
		return fn(arg);
	fflush(NULL);
	if ((pid = fork()) < 0) {
		*err_r = err_fmt("cannot fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		if (privs_drop(user, &err) < 0) {
			on_drop_error(err);
			rc = EX_CONFIG;
		} else {
			rc = fn(arg);
		}
		fflush(NULL);
		_exit(rc & 0xff);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			*err_r = err_fmt("waiting for the check as user %s: %s", user,
					 strerror(errno));
			return -1;
		}
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	*err_r = err_fmt("the check as user %s was killed by signal %d", user,
			 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	return -1;
}

int
privs_limit_memory(unsigned long long bytes, char **err_r)
{
	struct rlimit rl;

	if (bytes == 0)
		return 0;
	rl.rlim_cur = rl.rlim_max = (rlim_t)bytes;
	if (setrlimit(RLIMIT_AS, &rl) < 0) {
		*err_r = err_fmt("cannot limit memory to %llu bytes: %s", bytes,
				 strerror(errno));
		return -1;
	}
	return 0;
}

int
privs_chown_state(const cfg *c, char **err_r)
{
	static const char *const files[] = { "", "/mailmill.db", "/mailmill.db-wal",
					     "/mailmill.db-shm" };
	struct passwd *pw;
	size_t i;

	if (c->user == NULL || geteuid() != 0)
		return 0;
	if ((pw = privs_lookup(c->user, err_r)) == NULL)
		return -1;
	for (i = 0; i < sizeof files / sizeof files[0]; i++) {
		char *p = g_strdup_printf("%s%s", c->state_dir, files[i]);

		/* lchown: a symbolic link planted there does not redirect us. */
		if (lchown(p, pw->pw_uid, pw->pw_gid) < 0 && errno != ENOENT) {
			*err_r = err_fmt("cannot chown %s to %s: %s", p, c->user,
					 strerror(errno));
			g_free(p);
			return -1;
		}
		g_free(p);
	}
	return 0;
}

/* As the worker user: why it cannot reach path (search every directory on
 * the way) or use it with mode; NULL when it can.  g_malloc'd. */
static char *
privs_unreachable(const char *user, const char *what, const char *path, int mode)
{
	char *dir = g_strdup(path), *p, *why = NULL;

	for (p = strchr(dir + 1, '/'); p != NULL && why == NULL; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (access(dir, X_OK) < 0)
			why = g_strdup_printf("user \"%s\" cannot reach %s %s: it cannot search %s (%s);"
					      " give it search permission (chmod o+x %s) or move %s",
					      user, what, path, dir, strerror(errno), dir, what);
		*p = '/';
	}
	g_free(dir);
	if (why == NULL && access(path, mode) < 0)
		why = g_strdup_printf("user \"%s\" cannot %s %s %s: %s", user,
				      (mode & W_OK) ? "write" : "read", what, path, strerror(errno));
	return why;
}

char *
privs_plugins_unreachable(const cfg *c)
{
	char *why = privs_unreachable(c->user, "plugin_dir", c->plugin_dir, R_OK | X_OK);

	for (size_t k = 0; k < c->n_accounts && why == NULL; k++) {
		for (size_t i = 0; i < c->accounts[k].n_stages && why == NULL; i++) {
			const char *name = c->accounts[k].stages[i].plugin;
			char *path = strchr(name, '/') != NULL ? g_strdup(name)
					: g_strdup_printf("%s/%s.so", c->plugin_dir, name);

			why = privs_unreachable(c->user, "plugin", path, R_OK);
			g_free(path);
		}
	}
	return why;
}

/* In the child, after privs_drop: the first thing the workers need that
 * the user cannot reach, or NULL. */
static char *
privs_check_as_user(const cfg *c)
{
	char *why = privs_plugins_unreachable(c);

	if (why == NULL)
		why = privs_unreachable(c->user, "state_dir", c->state_dir, R_OK | W_OK | X_OK);
	return why;
}

int
privs_check_access(const cfg *c, char **err_r)
{
	GString *why;
	char buf[512];
	ssize_t n;
	pid_t pid;
	int p[2], status = 0;

	if (c->user == NULL || geteuid() != 0)
		return 0;
	if (pipe(p) < 0) {
		*err_r = err_fmt("cannot make a pipe: %s", strerror(errno));
		return -1;
	}
	fflush(NULL);
	if ((pid = fork()) < 0) {
		*err_r = err_fmt("cannot fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		char *e = NULL, *w;
		size_t left;

		close(p[0]);
		if (privs_drop(c->user, &e) == 0)
			e = privs_check_as_user(c);
		for (w = e, left = e != NULL ? strlen(e) : 0; left > 0;) {
			n = write(p[1], w, left);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			w += n;
			left -= (size_t)n;
		}
		_exit(e != NULL);
	}
	close(p[1]);
	why = g_string_new(NULL);
	while ((n = read(p[0], buf, sizeof buf)) != 0) {
		if (n > 0)
			g_string_append_len(why, buf, n);
		else if (errno != EINTR)
			break;
	}
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (why->len == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
		g_string_printf(why, "cannot check what user \"%s\" can reach", c->user);
	if (why->len > 0) {
		*err_r = strdup(why->str);
		g_string_free(why, TRUE);
		return -1;
	}
	g_string_free(why, TRUE);
	return 0;
}

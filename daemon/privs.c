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
#include "daemon/privs.h"

static struct passwd *
privs_lookup(const char *user, char **err_r)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(user);
	if (pw == NULL)
		*err_r = g_strdup_printf("user \"%s\": %s", user,
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
		*err_r = g_strdup_printf("cannot become user \"%s\": %s", user, strerror(errno));
		return -1;
	}
	/* setuid from root drops the saved id too; make sure it cannot come back. */
	if (pw->pw_uid != 0 && setuid(0) == 0) {
		*err_r = g_strdup_printf("could regain root after becoming \"%s\"", user);
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
		*err_r = g_strdup_printf("cannot fork: %s", strerror(errno));
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
			*err_r = g_strdup_printf("waiting for the check as user %s: %s", user,
						 strerror(errno));
			return -1;
		}
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	*err_r = g_strdup_printf("the check as user %s was killed by signal %d", user,
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
		*err_r = g_strdup_printf("cannot limit memory to %llu bytes: %s", bytes,
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
			*err_r = g_strdup_printf("cannot chown %s to %s: %s", p, c->user,
						 strerror(errno));
			g_free(p);
			return -1;
		}
		g_free(p);
	}
	return 0;
}

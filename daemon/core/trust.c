/* mailmill - ISC licence, see LICENSE */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <glib.h>

#include "daemon/core/trust.h"
#include "proto/err.h"

/* Who owns it, for the message: "nobody (uid 65534)". */
static char *
trust_owner_name(uid_t uid)
{
	struct passwd *pw = getpwuid(uid);

	if (pw != NULL)
		return g_strdup_printf("%s (uid %lu)", pw->pw_name, (unsigned long)uid);
	return g_strdup_printf("uid %lu", (unsigned long)uid);
}

/* The owner that fixes it: root:root, or mailmilld's own user. */
static char *
trust_fix_owner(void)
{
	uid_t me = geteuid();
	struct passwd *pw;

	if (me == 0)
		return g_strdup("root:root");
	pw = getpwuid(me);
	return pw != NULL ? g_strdup(pw->pw_name) : g_strdup_printf("%lu", (unsigned long)me);
}

static int
trust_owner_ok(const struct stat *sb)
{
	return sb->st_uid == 0 || sb->st_uid == geteuid();
}

/* "owned by X, not by root" (and mailmilld's user when that is not root). */
static int
trust_bad_owner(const char *what, const char *path, const char *kind, const char *file,
		const struct stat *sb, char **err_r)
{
	char *owner = trust_owner_name(sb->st_uid), *fix = trust_fix_owner();
	char *me = geteuid() != 0 ? trust_owner_name(geteuid()) : NULL;

	if (strcmp(path, file) == 0)
		*err_r = err_fmt("%s %s is owned by %s, not by root%s%s: refused; run: "
				 "chown %s %s", what, path, owner, me ? " or " : "",
				 me ? me : "", fix, file);
	else
		*err_r = err_fmt("%s %s: %s %s is owned by %s, not by root%s%s: refused; "
				 "run: chown %s %s", what, path, kind, file, owner,
				 me ? " or " : "", me ? me : "", fix, file);
	g_free(owner);
	g_free(fix);
	g_free(me);
	return -1;
}

/* One directory on the way to path: others must not be able to swap what is in it. */
static int
trust_check_parent(const char *what, const char *path, const char *dir, char **err_r)
{
	struct stat sb;

	if (stat(dir, &sb) < 0) {
		*err_r = err_fmt("%s %s: cannot check directory %s: %s", what, path, dir,
				 strerror(errno));
		return -1;
	}
	if (!S_ISDIR(sb.st_mode)) {
		*err_r = err_fmt("%s %s: %s is not a directory", what, path, dir);
		return -1;
	}
	if (!trust_owner_ok(&sb))
		return trust_bad_owner(what, path, "directory", dir, &sb, err_r);
	if ((sb.st_mode & (S_IWGRP | S_IWOTH)) && !(sb.st_mode & S_ISVTX)) {
		*err_r = err_fmt("%s %s: directory %s has mode %04o: group or others can "
				 "replace what is in it: refused; run: chmod go-w %s",
				 what, path, dir, (unsigned)(sb.st_mode & 07777), dir);
		return -1;
	}
	return 0;
}

/* Every directory above abs (an absolute path), up to "/". */
static int
trust_walk(const char *what, const char *path, const char *abs, char **err_r)
{
	char *dir = g_strdup(abs);
	int rc = 0;

	for (;;) {
		char *slash = strrchr(dir, '/');

		if (slash == NULL)
			break;
		if (slash == dir) {
			if (dir[1] == '\0')
				break;  /* "/" was the last one checked */
			dir[1] = '\0';
		} else {
			*slash = '\0';
		}
		if ((rc = trust_check_parent(what, path, dir, err_r)) < 0)
			break;
	}
	g_free(dir);
	return rc;
}

static int
trust_check(const char *path, const char *what, int want_dir, char **err_r)
{
	struct stat sb;
	char *abs, *real, cwd[PATH_MAX];
	int rc;

	if (stat(path, &sb) < 0) {
		*err_r = err_fmt("%s %s: %s", what, path, strerror(errno));
		return -1;
	}
	if (want_dir && !S_ISDIR(sb.st_mode)) {
		*err_r = err_fmt("%s %s is not a directory", what, path);
		return -1;
	}
	if (!want_dir && !S_ISREG(sb.st_mode)) {
		*err_r = err_fmt("%s %s is %s, not a regular file", what, path,
				 S_ISDIR(sb.st_mode) ? "a directory" : "a special file");
		return -1;
	}
	if (!trust_owner_ok(&sb))
		return trust_bad_owner(what, path, "", path, &sb, err_r);
	if (sb.st_mode & (S_IWGRP | S_IWOTH)) {
		*err_r = err_fmt("%s %s has mode %04o: group or others can change it: "
				 "refused; run: chmod go-w %s", what, path,
				 (unsigned)(sb.st_mode & 07777), path);
		return -1;
	}
	if (path[0] == '/') {
		abs = g_strdup(path);
	} else if (getcwd(cwd, sizeof cwd) != NULL) {
		abs = g_strdup_printf("%s/%s", cwd, path);
	} else {
		*err_r = err_fmt("%s %s: cannot find the current directory: %s", what,
				 path, strerror(errno));
		return -1;
	}
	rc = trust_walk(what, path, abs, err_r);
	if (rc == 0) {
		/* The directories the links lead through, too. */
		real = realpath(path, NULL);
		if (real == NULL) {
			*err_r = err_fmt("%s %s: %s", what, path, strerror(errno));
			rc = -1;
		} else if (strcmp(real, abs) != 0) {
			rc = trust_walk(what, path, real, err_r);
		}
		free(real);
	}
	g_free(abs);
	return rc;
}

int
trust_check_path(const char *path, const char *what, char **err_r)
{
	return trust_check(path, what, 0, err_r);
}

int
trust_check_dir(const char *path, const char *what, char **err_r)
{
	return trust_check(path, what, 1, err_r);
}

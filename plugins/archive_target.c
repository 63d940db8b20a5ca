/* mailmill - ISC licence, see LICENSE */
/*
 * Is a place safe to archive into?  mailmilld usually runs as root and an
 * archive `path` is one typo away from /etc: a directory that is not a
 * Maildir and holds anything is never made one, an mbox path that is not a
 * regular file (a directory, a device, a FIFO) is never written, whatever
 * symbolic link leads there.  archive_*_usable() are asked when a target is
 * opened; archive_target_check() at init (start, --check-config, which runs
 * it as the worker user) says whether this process can ever create the
 * target, creating nothing.  Nothing here calls mm_*: tests/unit links it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>

#include "archive.h"

static const char *const maildir_subdirs[] = { "tmp", "new", "cur" };

/* Index of name in maildir_subdirs, or -1. */
static int
maildir_subdir_index(const char *name)
{
	for (int i = 0; i < 3; i++)
		if (strcmp(name, maildir_subdirs[i]) == 0)
			return i;
	return -1;
}

int
archive_maildir_usable(const char *dir, char **err_r)
{
	unsigned have = 0;   /* bit i: maildir_subdirs[i] is a directory */
	int others = 0;
	struct dirent *de;
	DIR *d = opendir(dir); /* follows a symbolic link: its target is judged */

	if (d == NULL) {
		if (errno == ENOENT)
			return 0;    /* created by maildir_open */
		archive_seterr(err_r, "%s: %s", dir, errno == ENOTDIR ?
			       "exists and is not a directory: refusing to make a Maildir there" :
			       strerror(errno));
		return -1;
	}
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		int i;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		i = maildir_subdir_index(de->d_name);
		if (i >= 0 && fstatat(dirfd(d), de->d_name, &st, 0) == 0 && S_ISDIR(st.st_mode))
			have |= 1U << i;
		else
			others++;
		errno = 0;
	}
	if (errno != 0) {
		archive_seterr(err_r, "readdir %s: %s", dir, strerror(errno));
		(void)closedir(d);
		return -1;
	}
	(void)closedir(d); /* read-only */
	/* A Maildir, or empty, or what a crash left of our own mkdirs. */
	if (have == 7 || others == 0)
		return 0;
	archive_seterr(err_r, "%s is not a Maildir (no tmp/, new/ and cur/) and not empty:"
		       " refusing to make a Maildir of it and write there; point `path` at a"
		       " Maildir, an empty directory or one that does not exist yet", dir);
	return -1;
}

int
archive_mbox_usable(const char *file, char **err_r)
{
	struct stat st;

	if (stat(file, &st) < 0)
		return 0;    /* missing (created), or mbox_open reports why */
	if (S_ISREG(st.st_mode))
		return 0;
	archive_seterr(err_r, "%s exists and is not a regular file (%s): refusing to write mail"
		       " into it; point `path` at an mbox file or one that does not exist yet",
		       file, S_ISDIR(st.st_mode) ? "a directory" : "a device, FIFO or socket");
	return -1;
}

/* "user NAME (uid N)" for messages about this process's rights. */
static char *
archive_whoami(void)
{
	uid_t uid = geteuid();
	struct passwd *pw = getpwuid(uid);

	return g_strdup_printf("user %s (uid %lu)", pw != NULL ? pw->pw_name : "?",
			       (unsigned long)uid);
}

/* `dir` lets this process create and rename entries in it. */
static int
archive_writable(const char *path, const char *dir, char **err_r)
{
	char *who;

	if (faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) == 0)
		return 0;
	who = archive_whoami();
	archive_seterr(err_r, "%s: %s%s is not writable by %s: %s", path,
		       strcmp(path, dir) == 0 ? "" : "the directory ",
		       strcmp(path, dir) == 0 ? "it" : dir, who, strerror(errno));
	g_free(who);
	return -1;
}

/* path does not exist: the nearest ancestor that does must be a directory
 * this process can write into. */
static int
archive_creatable(const char *path, char **err_r)
{
	char *dir = g_path_get_dirname(path);
	struct stat st;
	int ret = -1;

	for (;;) {
		if (stat(dir, &st) == 0)
			break;
		if (errno != ENOENT && errno != ENOTDIR) {
			char *who = archive_whoami();

			archive_seterr(err_r, "%s: cannot reach %s as %s: %s", path, dir, who,
				       strerror(errno));
			g_free(who);
			goto out;
		}
		if (strcmp(dir, "/") == 0 || strcmp(dir, ".") == 0) {
			archive_seterr(err_r, "%s: no part of it exists", path);
			goto out;
		}
		char *up = g_path_get_dirname(dir);

		g_free(dir);
		dir = up;
	}
	if (!S_ISDIR(st.st_mode)) {
		archive_seterr(err_r, "%s cannot be created: %s is not a directory", path, dir);
		goto out;
	}
	ret = archive_writable(path, dir, err_r);
out:
	g_free(dir);
	return ret;
}

int
archive_target_check(const char *path, enum archive_kind kind, char **err_r)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return archive_creatable(path, err_r);
		char *who = archive_whoami();

		archive_seterr(err_r, "%s: cannot reach it as %s: %s", path, who, strerror(errno));
		g_free(who);
		return -1;
	}
	switch (kind) {
	case ARCHIVE_KIND_MAILDIR:
		if (archive_maildir_usable(path, err_r) < 0)
			return 1;
		for (int i = 0; i < 3; i++) {
			char *sub = g_build_filename(path, maildir_subdirs[i], NULL);
			int r = access(sub, F_OK) < 0 ? 0 : archive_writable(path, sub, err_r);

			g_free(sub);
			if (r < 0)
				return -1;
		}
		return archive_writable(path, path, err_r);
	case ARCHIVE_KIND_MBOX: {
		char *idx = g_strdup_printf("%s.mailmill-idx", path), *dir;
		int r;

		if (archive_mbox_usable(path, err_r) < 0) {
			g_free(idx);
			return 1;
		}
		if (faccessat(AT_FDCWD, path, R_OK | W_OK, AT_EACCESS) < 0) {
			char *who = archive_whoami();

			archive_seterr(err_r, "%s is not writable by %s: %s", path, who,
				       strerror(errno));
			g_free(who);
			g_free(idx);
			return -1;
		}
		/* The index is created next to it when it is missing. */
		dir = g_path_get_dirname(path);
		r = access(idx, F_OK) == 0 ? 0 : archive_writable(path, dir, err_r);
		g_free(dir);
		g_free(idx);
		return r;
	}
	case ARCHIVE_KIND_FOLDERS:
		if (!S_ISDIR(st.st_mode)) {
			archive_seterr(err_r, "%s exists and is not a directory", path);
			return -1;
		}
		return archive_writable(path, path, err_r);
	}
	return 0;
}

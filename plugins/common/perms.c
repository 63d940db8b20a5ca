/* mailmill - ISC licence, see LICENSE */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf */
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "perms.h"

void
perms_default(perms *p)
{
	p->mode = PERMS_MODE_DEFAULT;
	p->dir_mode = PERMS_DIR_MODE_DEFAULT;
	p->gid = (gid_t)-1;
}

int
perms_is_default(const perms *p)
{
	return p == NULL || (p->mode == PERMS_MODE_DEFAULT && p->dir_mode == PERMS_DIR_MODE_DEFAULT &&
			     p->gid == (gid_t)-1);
}

static int
perms_fail(char **err_r, const char *op, const char *what)
{
	int e = errno;

	if (err_r != NULL && asprintf(err_r, "%s %s: %s", op, what, strerror(e)) < 0)
		*err_r = NULL;
	return -1;
}

/*
 * The defaults are what the writers create with (0600 files, 0700
 * directories, a umask only removes bits): nothing to do for them, so the
 * common case costs no system call per message.
 */
int
perms_apply_fd(int fd, const perms *p, int dir, const char *what, char **err_r)
{
	if (perms_is_default(p))
		return 0;
	if (p->gid != (gid_t)-1 && fchown(fd, (uid_t)-1, p->gid) < 0)
		return perms_fail(err_r, "chgrp", what);
	if (fchmod(fd, dir ? p->dir_mode : p->mode) < 0)
		return perms_fail(err_r, "chmod", what);
	return 0;
}

int
perms_apply_path(const char *path, const perms *p, int dir, char **err_r)
{
	int fd, r;

	if (perms_is_default(p))
		return 0;
	fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDONLY | O_NONBLOCK) | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return perms_fail(err_r, "open", path);
	r = perms_apply_fd(fd, p, dir, path, err_r);
	(void)close(fd);
	return r;
}

/* mailmill - ISC licence, see LICENSE */
#ifndef MM_PLUGIN_PERMS_H
#define MM_PLUGIN_PERMS_H
/*
 * Modes and group of the files and directories a plugin writes (archive
 * Maildirs and mboxes, ticket json_dir files): the settings `mode`
 * (default 0600), `dir_mode` (default 0700) and `group` (default unset:
 * the group the writing process creates files with, the user's primary
 * group).  perms.c is file-system code only (no mm_* call, so unit tests
 * link it without the daemon); perms_settings.c reads the settings.
 */
#include <sys/types.h>
#include <mailmill/plugin.h>

#define PERMS_MODE_DEFAULT 0600u
#define PERMS_DIR_MODE_DEFAULT 0700u

typedef struct perms {
	unsigned mode, dir_mode; /* exact: applied whatever the umask */
	gid_t gid;               /* (gid_t)-1: not set, nothing chown'ed */
} perms;

/* The defaults (0600, 0700, no group). */
void perms_default(perms *p);
/* 1 if p asks for nothing beyond what creating with the defaults gives. */
int perms_is_default(const perms *p);
/*
 * Give the file (dir 0) or directory (dir 1) open at fd its group and mode
 * (group first: a chown may clear mode bits).  Nothing when p is NULL or
 * default.  0, or -1 with *err_r (malloc'd) naming `what`.
 */
int perms_apply_fd(int fd, const perms *p, int dir, const char *what, char **err_r);
/* The same by path (not following a final symbolic link for the group). */
int perms_apply_path(const char *path, const perms *p, int dir, char **err_r);

/* Read `mode`, `group` and (with_dirs: for a plugin that creates
 * directories) `dir_mode` of the stage's settings into p (defaults for those
 * absent).  0, or -1 after mm_ctx_error (file:line): a bad mode, a group
 * that does not exist, or one this process (the worker user) may not give. */
int perms_settings(mm_ctx *ctx, const config_setting_t *g, int with_dirs, perms *p);
#endif

/* mailmill - ISC licence, see LICENSE */
#ifndef MM_TRUST_H
#define MM_TRUST_H
/*
 * Nobody else's files are trusted.  mailmilld usually runs as root, and what
 * it reads can run commands (password_command, pipe) and load code
 * (plugins), so every file it takes orders from - the configuration and its
 * @include files, password files, plugins and plugin_dir - must be:
 *   - owned by root or by the user mailmilld runs as (its effective uid),
 *   - not writable by group or others,
 *   - in directories owned by root or that user, none of them writable by
 *     group or others unless it has the sticky bit (like /tmp).
 * Both the directories on the path as written and those of the path with
 * every symbolic link resolved are checked, so neither a link nor the
 * directory holding it can be swapped by someone else.
 *
 * On failure *err_r (allocated, caller frees) is one line: what (e.g.
 * "configuration file"), the file, what was found (owner or mode) and the
 * command that fixes it.
 */

/* A regular file that may be trusted: 0, or -1 and *err_r. */
int trust_check_path(const char *path, const char *what, char **err_r);
/* The same for a directory (plugin_dir): 0, or -1 and *err_r. */
int trust_check_dir(const char *path, const char *what, char **err_r);
#endif

/* mailmill - ISC licence, see LICENSE */
#ifndef MM_CFGINCLUDE_H
#define MM_CFGINCLUDE_H
/*
 * libconfig 1.5 (Debian 12) opens @include files itself and has no hook to
 * stop it, and its flex scanner calls exit() when a read fails (an @include
 * of a directory ends the process).  So every @include is found and checked
 * here first, the way libconfig's scanner finds them: a line starting with
 * optional blanks, "@include", blanks and a quoted name (\\ and \" escaped),
 * not inside a string or a block comment, the scanner's state carried from
 * an included file back into the one that included it.  A name is opened as
 * incdir "/" name (libconfig's include directory).
 *
 * Refused, as "file:line: @include "name": why": a missing or unreadable
 * file, a directory or anything but a regular file, a file someone else
 * could change (daemon/core/trust.h), a cycle, nesting deeper than
 * CFGINCLUDE_MAX_DEPTH, more than CFGINCLUDE_MAX_FILES includes in all.
 * libconfig opens the files again afterwards; by then only root or
 * mailmilld's own user can have changed them (that is what trust checks).
 */

#define CFGINCLUDE_MAX_DEPTH 8
#define CFGINCLUDE_MAX_FILES 200

/* path: the configuration file (already checked by the caller); incdir as
 * given to config_set_include_dir, or NULL.  0, or -1 and *err_r (one line,
 * allocated, caller frees). */
int cfginclude_check(const char *path, const char *incdir, char **err_r);
#endif

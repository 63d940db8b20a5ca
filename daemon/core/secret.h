/* mailmill - ISC licence, see LICENSE */
#ifndef MM_SECRET_H
#define MM_SECRET_H
/*
 * Where a password comes from: inline `password`, `password_file` (first
 * line; the file must not be readable by group or others) or
 * `password_command` (an argv list run without a shell; first line of its
 * stdout, bounded; non-zero exit is an error).
 */
typedef enum { SECRET_NONE = 0, SECRET_INLINE, SECRET_FILE, SECRET_COMMAND } secret_kind;

typedef struct secret {
	secret_kind kind;
	char *value;   /* SECRET_INLINE: the password; SECRET_FILE: the path */
	char **argv;   /* SECRET_COMMAND: NULL-terminated argv */
	/* For secrets other than a password (0/NULL: a password's defaults). */
	const char *key;   /* the setting named in errors, e.g. "token_command" */
	size_t max;        /* longest first line + 1 a command may print (4096) */
	int want_stderr;   /* a command's stderr goes into its error, not ours */
} secret;

/* Fetch the password: 0 and *pw_r (allocated; caller wipes and frees with
 * secret_wipe), or -1 and *err_r (allocated, never contains the secret). */
int secret_get(const secret *s, char **pw_r, char **err_r);
void secret_wipe(char **pw);        /* zero the memory, free, set NULL */
void secret_clear(secret *s);       /* free what s holds */

/*
 * For --check-config and cfg_load: is the password_file there, a regular
 * file, and not readable or writable by group or others?  0, or -1 and
 * *err_r (says the mode and the chmod that fixes it).  Reads nothing.
 * Also the owner and the directories above it (daemon/core/trust.h): a file
 * someone else owns or can replace is refused.
 */
int secret_check_file(const char *path, char **err_r);
/* The same for another setting than password_file (named in the error). */
int secret_check_file_as(const char *key, const char *path, char **err_r);

/*
 * password_command runs in its own process group with stdin from /dev/null
 * and stderr inherited; it is reaped with waitpid() on its own pid, so a
 * SIGCHLD handler must not reap with waitpid(-1) while secret_get runs.
 * Its deadline is 10 s; tests may shorten it (ms <= 0 restores 10 s).
 */
void secret_set_command_timeout_ms(int ms);
#endif

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
} secret;

/* Fetch the password: 0 and *pw_r (allocated; caller wipes and frees with
 * secret_wipe), or -1 and *err_r (allocated, never contains the secret). */
int secret_get(const secret *s, char **pw_r, char **err_r);
void secret_wipe(char **pw);        /* zero the memory, free, set NULL */
void secret_clear(secret *s);       /* free what s holds */
#endif

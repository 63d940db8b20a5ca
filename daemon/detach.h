/* mailmill - ISC licence, see LICENSE */
#ifndef MM_DETACH_H
#define MM_DETACH_H
/*
 * Leaving the terminal: fork, new session, cwd "/", stdin and stdout from
 * /dev/null.  stderr is left as it is: a detached daemon should log to
 * syslog (log.target), but an operator who redirected stderr keeps it.
 */

/* 1 in the original process (which should return from main with 0), 0 in
 * the detached one, -1 and *err_r (allocated) on failure. */
int detach_fork(char **err_r);
/* Write the pid file atomically (tmp + rename), mode 0644. */
int detach_write_pidfile(const char *path, char **err_r);
/* Remove it if it still holds our pid. */
void detach_remove_pidfile(const char *path);
#endif

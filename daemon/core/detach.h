/* mailmill - ISC licence, see LICENSE */
#ifndef MM_DETACH_H
#define MM_DETACH_H
/*
 * Leaving the terminal: fork, new session, cwd "/", stdin and stdout from
 * /dev/null.  stderr: to /dev/null too when the daemon logs to syslog
 * (quiet_stderr), so that it holds no terminal or pipe of whoever started
 * it (a shell's `$(mailmilld)` would otherwise wait forever); left alone
 * when it logs to stderr, so that an operator who redirected stderr to a
 * file (mailmilld 2>>/var/log/mailmill.log) keeps the log there.
 */

/* 0 in the detached process, which calls detach_ready once it runs (its pid
 * file written); in the original one, once that happened: 1 (return from
 * main with 0), or 2 if the detached process ended before (it logged why);
 * -1 and *err_r (allocated) on failure. */
int detach_fork(int quiet_stderr, char **err_r);
/* Tell the original process that the daemon runs; later calls do nothing. */
void detach_ready(void);
/* Write the pid file atomically (tmp + rename), mode 0644. */
int detach_write_pidfile(const char *path, char **err_r);
/* Remove it if it still holds our pid. */
void detach_remove_pidfile(const char *path);
#endif

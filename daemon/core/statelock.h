/* mailmill - ISC licence, see LICENSE */
#ifndef MM_STATELOCK_H
#define MM_STATELOCK_H
/*
 * One daemon per state directory: state_dir/mailmilld.lock, held with
 * flock() by the daemon (or a --once run) and, because flock locks belong to
 * the open file, by every worker it forked until the last one exits.  The
 * file holds the holder's pid so that a refused second daemon can name it.
 */
#include <sys/types.h>

/* Take the lock (creating state_dir 0700 and the file if missing) and write
 * our pid into it.  0 and *fd_r (keep it open: closing it releases the
 * lock), or -1 and *err_r (allocated; names the holder when there is one). */
int statelock_take(const char *state_dir, int *fd_r, char **err_r);
/* Rewrite the pid (after detaching, the daemon's pid changed). */
int statelock_set_pid(int fd, pid_t pid);
/* The pid of the process holding the lock, 0 if none holds it, -1 when it
 * cannot be told (no such directory, permission). */
long statelock_holder(const char *state_dir);
#endif

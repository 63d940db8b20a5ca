/* mailmill - ISC licence, see LICENSE */
#ifndef MM_PRIVS_H
#define MM_PRIVS_H
/*
 * The `user` and `worker_memory` settings.  The daemon (started as root)
 * keeps root to read secrets and configuration; the processes it forks to
 * talk to servers and run plugins become `user`.  Those write the store,
 * so at start the daemon gives the state directory and the store's files
 * to that user (privs_chown_state); the archive paths are the operator's
 * to make writable by it (mailmill.conf(5)).
 */
#include "daemon/core/cfg.h"

/* Become user (by name) when running as root, for good: groups, gid, uid;
 * a no-op when user is NULL or we are not root.  0, or -1 and *err_r. */
int privs_drop(const char *user, char **err_r);

/*
 * Run fn(arg) as `user` would: started as root with user set, in a forked
 * child that first drops to it (privs_drop; a failure is given to
 * on_drop_error, then the child exits with 78) and exits with fn's value
 * (0..255), which is returned here; otherwise fn(arg) runs in this
 * process.  -1 and *err_r when the child could not be made or died.  Used
 * to check the configuration's stages as the workers will run them.
 */
int privs_run_as(const char *user, int (*fn)(void *arg), void (*on_drop_error)(const char *err),
		 void *arg, char **err_r);

/* Limit the address space to bytes (0: no limit).  0, or -1 and *err_r. */
int privs_limit_memory(unsigned long long bytes, char **err_r);

/* As root with c->user set: chown state_dir and the store's files
 * (mailmill.db, -wal, -shm) to that user and its group, so its workers can
 * write them.  0 (also when there is nothing to do), or -1 and *err_r. */
int privs_chown_state(const cfg *c, char **err_r);

/* As root with c->user set: can that user reach and read plugin_dir and
 * every stage's plugin file, and reach and write state_dir (after
 * privs_chown_state)?  Checked in a child that becomes the user.  0, or -1
 * and *err_r naming the path, the user, and the directory in the way. */
int privs_check_access(const cfg *c, char **err_r);
/* Already running as c->user: the first of plugin_dir and the stages'
 * plugins it cannot reach or read, said as privs_check_access says it
 * (g_malloc'd), or NULL. */
char *privs_plugins_unreachable(const cfg *c);
#endif

/* mailmill - ISC licence, see LICENSE */
#ifndef MM_WORKER_H
#define MM_WORKER_H
/*
 * A worker: one account run in a forked process, so that a plugin that
 * crashes or hangs takes down that run and not the daemon.  The daemon
 * (supervise.c) and --once (once.c) both run every account this way: one
 * path, one privilege drop, the secret resolved once.  The worker
 * reports its progress to the daemon over a pipe (daemon/sched/progress.h), so the
 * daemon knows which message was in hand when the worker died or passed a
 * deadline.
 *
 * In the worker: SIGTERM and SIGINT set the run's stop flag (finish the
 * message in hand, QUIT); SIGHUP and SIGUSR1 are ignored.  The password is
 * fetched first, then privileges are dropped (the `user` setting, when
 * started as root) and the resource limit applied, then the store is opened
 * and the plugins loaded: a plugin never runs as root when `user` is set
 * (daemon/core/privs.h).  A worker_memory limit it cannot set is logged, not fatal.
 *
 * Exit status: 0 the run finished, 75 it failed, 77 authentication was
 * refused, 78 the pipeline could not be built.
 */
#include <sys/types.h>
#include "daemon/core/cfg.h"
#include "daemon/run/outbox.h"
#include "daemon/run/run.h"
#include "daemon/store/store.h"

#define WORKER_EXIT_AUTH 77

/*
 * The signals of a process forked by the daemon (a worker, the outbox flush,
 * the IDLE watcher): SIGTERM and SIGINT call on_stop (without SA_RESTART: a
 * blocked read or poll sees EINTR); SIGHUP, SIGUSR1 and SIGPIPE are ignored;
 * SIGCHLD is the default; nothing is blocked.
 */
void worker_signals(void (*on_stop)(int));

/*
 * The account's secret, resolved as a worker does it (before dropping
 * privileges: it may be readable by root only): *a becomes a copy of acct
 * whose password is inline (or whose OAuth client secret is pinned into
 * *oc).  0 and *secret_r (wipe it with secret_wipe once a is no longer
 * used; may be NULL), or -1 (logged with the account's name).
 */
int worker_pin_secret(const cfg_account *acct, cfg_account *a, oauth_cfg *oc, char **secret_r);

/*
 * A progress pipe: p[0] non-blocking (the reader's), both close-on-exec.
 * 0, or -1 and *err_r.
 */
int worker_pipe(int p[2], char **err_r);

/*
 * The body of a worker process just forked (worker_spawn, the spawner):
 * its signals, then the run of account a reporting on fd (the progress
 * pipe's write end).  Returns the exit status to _exit with.
 */
int worker_child(const cfg *c, const cfg_account *a, const run_opts *o, int fd);

/*
 * Fork a worker for account a.  0 with *pid_r and *fd_r (the read end of
 * the progress pipe: non-blocking, close-on-exec; the caller closes it), or
 * -1 and *err_r (allocated).  Never returns in the worker.
 */
int worker_spawn(const cfg *c, const cfg_account *a, const run_opts *o, pid_t *pid_r,
		 int *fd_r, char **err_r);

/*
 * Fork a process that flushes the outbox once (daemon/run/outbox.h), with the
 * same privileges and limits as a worker.  Exit 0, or 75 if the relay
 * could not be reached.  0 and *pid_r, or -1 and *err_r.  lease: NULL, or
 * the outbox's (claim.h): the flush fences its store with it and renews it
 * before each message (outbox_flush).
 */
int worker_spawn_outbox(const cfg *c, int trace, const struct run_lease *lease, pid_t *pid_r,
			char **err_r);
/*
 * --once and --flush: the same flush, waited for (all: every queued message
 * now, ignoring back-off, for --flush); its counts into *os.  0 when the
 * relay took its decisions, -1 when it could not be reached, the process
 * failed before flushing or crashed (logged).
 */
int worker_flush_outbox(const cfg *c, int all, int trace, const struct run_lease *lease,
			outbox_stats *os);
/*
 * --once and --flush: worker_flush_outbox under the outbox's lease
 * (claim.h, owner), which the flush renews before each message.  0
 * flushed, -1 failed (logged), 1 another daemon holds it and flushes (*os
 * zeroed).
 */
int worker_flush_leased(const cfg *c, store *st, const char *owner, int all, int trace,
			outbox_stats *os);

#endif

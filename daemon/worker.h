/* mailmill - ISC licence, see LICENSE */
#ifndef MM_WORKER_H
#define MM_WORKER_H
/*
 * A worker: one account run in a forked process, so that a plugin that
 * crashes or hangs takes down that run and not the daemon.  The worker
 * reports its progress to the daemon over a pipe, one line per event:
 *
 *   S uid size                      a message went into the pipeline
 *   D uid size verdict stage        it was decided (stage "-": the pipeline end)
 *   E text                          the last error logged (once, before R)
 *   R fetched deleted kept deferred skipped bytes deleted_bytes fail stopped
 *
 * so the daemon knows which message was in hand when the worker died or
 * passed a deadline.  UIDs, verdicts and stage names hold no spaces.
 *
 * In the worker: SIGTERM and SIGINT set the run's stop flag (finish the
 * message in hand, QUIT); SIGHUP and SIGUSR1 are ignored.  The password is
 * fetched first, then privileges are dropped (the `user` setting, when
 * started as root) and the resource limit applied, then the store is opened
 * and the plugins loaded: a plugin never runs as root when `user` is set.
 *
 * Exit status: 0 the run finished, 75 it failed, 77 authentication was
 * refused, 78 the pipeline could not be built.
 */
#include <sys/types.h>
#include "daemon/config.h"
#include "daemon/run.h"

#define WORKER_EXIT_AUTH 77

/*
 * Fork a worker for account a.  0 with *pid_r and *fd_r (the read end of
 * the progress pipe: non-blocking, close-on-exec; the caller closes it), or
 * -1 and *err_r (allocated).  Never returns in the worker.
 */
int worker_spawn(const cfg *c, const cfg_account *a, const run_opts *o, pid_t *pid_r,
		 int *fd_r, char **err_r);

typedef enum { WORKER_EV_START, WORKER_EV_DONE, WORKER_EV_ERROR, WORKER_EV_RESULT } worker_ev_kind;

typedef struct worker_event {
	worker_ev_kind kind;
	char uid[72];
	unsigned long long size;
	char verdict[16];
	char stage[72];              /* "" for the pipeline end */
	char error[512];
	run_stats stats;             /* WORKER_EV_RESULT */
} worker_event;

/* One line of the protocol above (without its '\n'): 0, or -1 if malformed. */
int worker_parse(const char *line, worker_event *ev);

/*
 * Fork a process that flushes the outbox once (daemon/outbox.h), with the
 * same privileges and limits as a worker.  Exit 0, or 75 if the relay
 * could not be reached.  0 and *pid_r, or -1 and *err_r.
 */
int worker_spawn_outbox(const cfg *c, int trace, pid_t *pid_r, char **err_r);

/* Drop to user (name) when running as root: 0, or -1 and *err_r. */
int worker_drop_privileges(const char *user, char **err_r);
#endif

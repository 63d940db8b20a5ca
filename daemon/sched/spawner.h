/* mailmill - ISC licence, see LICENSE */
#ifndef MM_SPAWNER_H
#define MM_SPAWNER_H
/*
 * The spawner: the small process the daemon's workers are forked from.
 *
 * A fork costs in proportion to the parent's address space (its page
 * tables are copied, and the worker tears them down at exit), and the
 * scheduler's grows with the number of accounts (their timers, leases,
 * metrics, the store's cache).  So the scheduler does not fork its workers:
 * it starts one spawner, a fresh exec of mailmilld (`--spawner=FD:PID:B`,
 * named mailmilld-spawn in ps) that
 * loads the configuration and holds nothing else, and asks it over a
 * SOCK_SEQPACKET socket pair to run an account.  The worker it forks runs
 * exactly as before (daemon/sched/worker.h) and reports its progress on a
 * pipe the scheduler made and handed over with the request (SCM_RIGHTS):
 * the scheduler reads it directly.
 *
 * Messages, one per datagram, text:
 *   scheduler -> spawner
 *     R seq fence ttl empty owner account
 *                                     run account (fd: the progress pipe's
 *                                     write end); owner "-": no lease;
 *                                     empty 0/1: run_lease.journal_empty
 *     K seq sig                       send sig to the worker of run seq
 *     Q                               no more runs: exit once the workers
 *                                     are gone (a reload made a new one)
 *   spawner -> scheduler
 *     S seq pid                       run seq's worker started
 *     E seq reason                    it could not start
 *     X seq status                    it ended (waitpid's status)
 *
 * The spawner stops (SIGTERM to its workers, then exits once they are
 * reaped, reporting each) on SIGTERM or SIGINT, when the scheduler's end of
 * the socket closes, and when the scheduler dies (PR_SET_PDEATHSIG): it
 * leaves no orphans.  It reaps whatever ends up its child (a subreaper).
 * The scheduler re-makes a spawner that died (daemon/sched/spawnctl.c: at
 * once, then after a back-off if it keeps dying); while there is none it
 * forks the worker itself, as before the spawner, so that runs go on.
 */
#include <sys/types.h>
#include "daemon/core/cfg.h"
#include "daemon/run/run.h"

/* The longest message either way. */
#define SPAWNER_MSG_MAX 1024

/*
 * The spawner process (mailmilld --spawner=FD): serves the scheduler on
 * socket fd until it is told to stop.  c is the configuration it loaded
 * (borrowed), o the options every run gets (trace, config_path), parent
 * the scheduler's pid.  Returns an exit status.
 */
int spawner_main(const cfg *c, const run_opts *o, int fd, pid_t parent);

#endif

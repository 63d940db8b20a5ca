/* mailmill - ISC licence, see LICENSE */
#ifndef MM_ONCE_H
#define MM_ONCE_H
/*
 * --once (cron): every selected account runs once, one after the other,
 * each in a worker (daemon/sched/worker.h) exactly as the daemon runs it:
 * the secret read as root, then the `user` setting, worker_memory, the
 * deadlines (run_timeout, message_timeout; a message in hand when a worker
 * dies or is killed is charged toward quarantine).  Each run is recorded
 * in the store (--status) and state_dir/metrics.prom is written after it,
 * as the daemon does; then the outbox is flushed, in a process of its own
 * as the daemon's flush is (as `user`).  A dry run records and
 * writes nothing.  On a terminal (not systemd's journal) the worker draws
 * a progress line (run_opts.meter).
 *
 * Returns the exit status of mailmilld(8): 0 when every run finished and
 * settled and every mail due was sent, 75 otherwise (a last line says
 * why), 78 for a state directory the workers' user cannot use.
 */
#include "daemon/core/cfg.h"
#include "daemon/run/run.h"

int once_main(const cfg *c, const run_opts *ro, char **only, int n_only);
#endif

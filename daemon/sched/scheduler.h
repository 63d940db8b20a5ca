/* mailmill - ISC licence, see LICENSE */
#ifndef MM_SCHEDULER_H
#define MM_SCHEDULER_H
/*
 * The long-running daemon: a GLib main loop that runs every account on its
 * own interval (with jitter) in forked workers (daemon/sched/worker.h), at most
 * `workers` at once and never one account twice at once; backs off after
 * failures (harder after refused logins); kills a worker past its run or
 * message deadline and charges the message it had in hand, quarantining it
 * after the account's max_attempts; reloads on SIGHUP, polls on SIGUSR1,
 * stops cleanly on SIGTERM/SIGINT; records every run in the store and
 * writes state_dir/metrics.prom after each.
 */
#include "daemon/core/cfg.h"
#include "daemon/run/run.h"

typedef struct sched_opts {
	const char *config_path;   /* re-read on SIGHUP */
	int foreground;            /* 0: detach and write the pid file */
	int log_level;             /* -1: the configuration's; else the command line's */
	char **only;               /* --account names, n_only of them */
	int n_only;
	run_opts ro;               /* trace */
} sched_opts;

/* Runs until SIGTERM/SIGINT; takes ownership of c.  Returns an exit status
 * (sysexits): 0 after a clean stop. */
int sched_main(cfg *c, const sched_opts *o);
#endif

/* mailmill - ISC licence, see LICENSE */
#ifndef MM_SCHED_INT_H
#define MM_SCHED_INT_H
/*
 * The daemon's state, shared by the modules that make up the scheduler
 * (not by anything else):
 *
 *   scheduler.c   sched_      accounts, their timers, the queue of due ones,
 *                             back-off after a run, start and stop
 *   supervise.c   supervise_  forked account workers: progress, deadlines,
 *                             crashes charged to the message in hand
 *   flushtimer.c  flushtimer_ the outbox flush on its own timer
 *   claim.c       claim_      leases on a store several daemons share
 *   reload.c      reload_     SIGHUP: a new configuration, or the old one
 *   signals.c     signals_    SIGTERM/SIGINT, SIGHUP, SIGUSR1
 *   privs.c       privs_      the `user` and `worker_memory` settings
 *
 * with pure modules of their own (unit-tested): backoff.h (when an account
 * runs next), at.h (its `at` slots in local time) and progress.h (the
 * worker's progress lines).
 *
 * Everything runs in the GLib main loop's thread: no locking.
 */
#include <sys/types.h>
#include <glib.h>
#include "daemon/sched/scheduler.h"
#include "daemon/sched/metrics.h"
#include "daemon/sched/claim.h"
#include "daemon/store/store.h"

typedef struct sched_acct {
	char *name;
	guint timer;          /* until the next run; 0: none */
	int queued;           /* waiting for a free worker */
	int running;
	int gone;             /* removed by a reload */
	int failures;         /* failed runs in a row */
	guint at_timer;       /* until the next `at` slot (daemon/sched/at.h); 0: none */
	long long at_due;     /* that slot, unix time */
	int at_pending;       /* a slot came while it ran: run again after */
	claim lease;          /* while it runs, and until its next run (claim.h) */
} sched_acct;

typedef struct sched {
	cfg *c;                       /* the current configuration (owned) */
	const sched_opts *o;
	GMainLoop *loop;
	store *st;
	metrics *m;
	int lock_fd;
	GPtrArray *accts;             /* sched_acct * */
	GQueue ready;                 /* sched_acct * waiting for a worker */
	GPtrArray *workers;           /* supervise_worker *, owned by supervise.c */
	int stopping;
	guint watchdog;
	guint sig[4];                 /* signals.c's sources */
	guint outbox_timer;           /* flushtimer.c's */
	pid_t outbox_pid;             /* a flush running, 0 none */
	gint64 outbox_deadline;
	claim outbox_lease;           /* while a flush runs */
	char owner[CLAIM_OWNER_MAX];  /* this daemon's lease owner id */
} sched;

/* How a worker's run ended, for sched_run_done(). */
typedef enum {
	SCHED_RUN_OK,
	SCHED_RUN_CHARGED,    /* a message was charged: bounded by max_attempts */
	SCHED_RUN_FAILED,
	SCHED_RUN_AUTH,       /* the login was refused */
} sched_run_end;

/* scheduler.c */
int sched_selected(const sched *s, const char *name);
void sched_sync_accounts(sched *s);
void sched_try_start(sched *s);
void sched_poll_all(sched *s);
void sched_stop(sched *s);
/* A worker of account a is gone: arm its next run, start what waits. */
void sched_run_done(sched *s, sched_acct *a, sched_run_end how);
/* Quit the loop once stopping and nothing runs any more; 1 if it did. */
int sched_maybe_quit(sched *s);
void sched_write_metrics(sched *s);

/* supervise.c */
/* 0, or -1 and *err_r when no worker could be started. */
int supervise_start(sched *s, sched_acct *a, char **err_r);
/* Kill workers past their run or message deadline (monotonic us now);
 * renew their leases, and stop a worker whose lease ran out. */
void supervise_check_deadlines(sched *s, gint64 now);
void supervise_signal_all(sched *s, int sig);
void supervise_signin(sched *s, const char *name);

/* flushtimer.c */
void flushtimer_start(sched *s);
void flushtimer_check_deadline(sched *s, gint64 now);
void flushtimer_stop(sched *s);

/* reload.c: SIGHUP; a broken new configuration keeps the old one. */
void reload_config(sched *s);

/* signals.c */
void signals_install(sched *s);
void signals_remove(sched *s);
#endif

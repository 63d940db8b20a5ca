/* mailmill - ISC licence, see LICENSE */
#ifndef MM_SCHED_INT_H
#define MM_SCHED_INT_H
/*
 * The daemon's state, shared by the modules that make up the scheduler
 * (not by anything else):
 *
 *   scheduler.c   sched_      accounts, their timers, the queue of due ones,
 *                             back-off after a run, start and stop
 *   supervise.c   supervise_  account workers: progress, deadlines,
 *                             crashes charged to the message in hand
 *   spawnctl.c    spawnctl_   the spawner the workers are forked from
 *                             (daemon/sched/spawner.h): start, re-make
 *   flushtimer.c  flushtimer_ the outbox flush on its own timer
 *   claim.c       claim_      leases on a store several daemons share
 *   metrics_http.c metrics_http_ /metrics and /healthz (its own thread)
 *   reload.c      reload_     SIGHUP: a new configuration, or the old one
 *   signals.c     signals_    SIGTERM/SIGINT, SIGHUP, SIGUSR1
 *   idle.c        idle_       the IMAP IDLE watcher process: "new mail
 *                             for X" runs X now (daemon/sched/idlewatch.h)
 *   privs.c       privs_      the `user` and `worker_memory` settings
 *
 * with pure modules of their own (unit-tested): backoff.h (when an account
 * runs next), at.h (its `at` slots in local time), progress.h (the
 * worker's progress lines), timerq.h (every account's timers in one heap)
 * and metrics.h (the counters in memory).
 *
 * Nothing done per run looks at every account: timers are one heap,
 * accounts are found by name in a hash table, each has its configuration
 * at hand (ca), and the metrics text is rendered at a bounded rate.
 *
 * Everything runs in the GLib main loop's thread: no locking.
 */
#include <sys/types.h>
#include <glib.h>
#include "daemon/sched/scheduler.h"
#include "daemon/sched/metrics.h"
#include "daemon/sched/claim.h"
#include "daemon/sched/metrics_http.h"
#include "daemon/sched/timerq.h"
#include "daemon/store/store.h"

struct sched_acct;

/* A node of the timer heap and what it is for. */
typedef struct sched_timer {
	timerq_node node;     /* first: a timerq_node * is a sched_timer * */
	struct sched_acct *a;
	int at;               /* 1: the `at` slot, 0: the next run */
} sched_timer;

typedef struct sched_acct {
	char *name;
	const cfg_account *ca; /* in s->c; NULL once a reload removed it */
	sched_timer timer;    /* until the next run; not queued: none */
	int queued;           /* waiting for a free worker */
	int running;
	int gone;             /* removed by a reload */
	int failures;         /* failed runs in a row */
	sched_timer at_timer; /* until the next `at` slot (daemon/sched/at.h) */
	long long at_due;     /* that slot, unix time */
	int at_pending;       /* a slot came while it ran: run again after */
	int again;            /* new mail (IDLE) came while it ran: run again after */
	claim lease;          /* while it runs, and until its next run (claim.h) */
	int claim_retry;      /* `at` only: a refused claim is tried once more */
} sched_acct;

typedef struct idle_sup idle_sup;
typedef struct spawnctl spawnctl;

typedef struct sched {
	cfg *c;                       /* the current configuration (owned) */
	const sched_opts *o;
	GMainLoop *loop;
	store *st;
	metrics *m;
	int lock_fd;
	GPtrArray *accts;             /* sched_acct * */
	GHashTable *by_name;          /* name -> sched_acct * (borrowed from accts) */
	timerq tq;                    /* every account's timers */
	guint tq_source;              /* the GLib timeout for the head; 0 none */
	gint64 tq_due;                /* when it fires, monotonic us */
	int tq_dispatching;
	guint metrics_timer;          /* a metrics write pending; 0 none */
	gint64 metrics_last;          /* monotonic us of the last write */
	guint health_timer;           /* the store check for /healthz */
	int store_ok;
	metrics_http *http;           /* metrics_listen; NULL none */
	GQueue ready;                 /* sched_acct * waiting for a worker */
	GPtrArray *workers;           /* supervise_worker *, owned by supervise.c */
	int stopping;
	guint watchdog;
	guint sig[4];                 /* signals.c's sources */
	guint outbox_timer;           /* flushtimer.c's */
	pid_t outbox_pid;             /* a flush running, 0 none */
	gint64 outbox_deadline;
	idle_sup *idle;               /* idle.c's; NULL until an account idles */
	claim outbox_lease;           /* while a flush runs */
	spawnctl *spawner;            /* where workers are forked; NULL: none now */
	GPtrArray *spawners_old;      /* spawnctl *: replaced by a reload, ending */
	guint spawner_retry;          /* re-making it after a back-off */
	int spawner_backoff;          /* seconds; 0: re-make at once */
	unsigned long long spawn_seq; /* the last run handed to a spawner */
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
/* New mail for the account (IDLE): run it as soon as a worker is free, or
 * once more after the run in progress.  Unknown names are ignored. */
void sched_run_now(sched *s, const char *name);
void sched_stop(sched *s);
/* A worker of account a is gone: arm its next run, start what waits. */
void sched_run_done(sched *s, sched_acct *a, sched_run_end how);
/* Quit the loop once stopping and nothing runs any more; 1 if it did. */
int sched_maybe_quit(sched *s);
/* The metrics changed: written now, or at most METRICS_PERIOD_S after the
 * last write (scheduler.c). */
void sched_metrics_changed(sched *s);

/* supervise.c */
/* 0, or -1 and *err_r when no worker could be started. */
int supervise_start(sched *s, sched_acct *a, char **err_r);
/* Kill workers past their run or message deadline (monotonic us now);
 * renew their leases, and stop a worker whose lease ran out. */
void supervise_check_deadlines(sched *s, gint64 now);
void supervise_signal_all(sched *s, int sig);
void supervise_signin(sched *s, const sched_acct *a);

/* What a spawner said about run seq (spawnctl.c calls these). */
void supervise_spawned(sched *s, spawnctl *sp, unsigned long long seq, pid_t pid);
void supervise_refused(sched *s, spawnctl *sp, unsigned long long seq, const char *why);
void supervise_ended(sched *s, spawnctl *sp, unsigned long long seq, int status);
/* sp died: its workers are this daemon's children now. */
void supervise_orphaned(sched *s, spawnctl *sp);

/* spawnctl.c */
/* Become a subreaper and start the spawner: 0, or -1 and *err_r. */
int spawnctl_init(sched *s, char **err_r);
/* A reload: a new spawner for the new configuration; the old one ends
 * when its workers have. */
void spawnctl_renew(sched *s);
/* Hand account's run to the spawner (s->spawner: none, -1) with the write end of its progress
 * pipe (pfd, borrowed: the caller closes it).  0 with *sp_r and *seq_r
 * (supervise_spawned or _refused follows), or -1 and *err_r. */
int spawnctl_run(sched *s, const char *account, const struct run_lease *rl, int pfd,
		 spawnctl **sp_r, unsigned long long *seq_r, char **err_r);
void spawnctl_kill(spawnctl *sp, unsigned long long seq, int sig);
/* At exit, after the last worker: close the spawners, wait for them. */
void spawnctl_free(sched *s);

/* flushtimer.c */
void flushtimer_start(sched *s);
void flushtimer_check_deadline(sched *s, gint64 now);
void flushtimer_stop(sched *s);

/* reload.c: SIGHUP; a broken new configuration keeps the old one. */
void reload_config(sched *s);

/* idle.c */
/* Start, or start anew for a new configuration, the watcher of the
 * selected accounts with idle = true; none when there are none. */
void idle_sync(sched *s);
/* Send sig to the watcher (and one still ending); it is not restarted. */
void idle_signal(sched *s, int sig);
/* 1 while a watcher process has not been reaped. */
int idle_alive(const sched *s);
void idle_free(sched *s);

/* signals.c */
void signals_install(sched *s);
void signals_remove(sched *s);
#endif

/* mailmill - ISC licence, see LICENSE */
#ifndef MM_RUN_H
#define MM_RUN_H
/*
 * One account run, the core contract of DESIGN.md: list, fetch what is new,
 * run each message through the pipeline as it arrives, make a batch's side
 * effects durable (pipeline_sync), commit its verdicts to the journal, and
 * only then DELE; QUIT; record the confirmed deletions.
 */
#include <signal.h>
#include <stdio.h>
#include "daemon/core/cfg.h"
#include "daemon/run/pipeline.h"
#include "daemon/store/store.h"

typedef struct run_opts {
	int dry_run;   /* fetch and run the pipeline; write, delete, send nothing */
	int trace;     /* log the POP3 dialogue at debug level (secrets redacted) */
	/* Hooks for the worker that runs the account (daemon/sched/worker.c),
	 * for the daemon and --once alike; NULL elsewhere (tests). */
	volatile sig_atomic_t *stop;   /* non-zero: finish the message in hand, DELE what
					* was committed, QUIT; fetch nothing more */
	/* Called when a message starts through the pipeline (verdict NULL) and
	 * when it is decided (stage NULL: the pipeline end).  Strings borrowed. */
	void (*progress)(void *arg, const char *uid, unsigned long long size, const char *stage,
			 const char *verdict);
	void *progress_arg;
	/* Called once the run knows how many messages it will fetch. */
	void (*planned)(void *arg, unsigned long n);
	int meter;     /* the worker draws a progress line on the terminal (--once) */
	unsigned long limit;   /* fetch at most this many messages per run; 0: all */
	/* Where OAuth tokens are cached: a writable store even in a dry run (a
	 * rotated refresh token must not be lost); NULL: the run's store. */
	store *tokens;
	const char *config_path;   /* named in the "needs sign-in" line */
	/* run_account's st may be NULL: the run opens its store with this only
	 * when it needs it (a mailbox lists messages, OAuth wants its token),
	 * so that a poll that finds nothing never touches the database.  The
	 * store stays the opener's to close. */
	int (*open_store)(void *arg, store **st_r, char **err_r);
	void *open_store_arg;
	/* Several daemons on one database (daemon/sched, PostgreSQL): the lease
	 * this run holds on its account, NULL when there is none to hold.  The
	 * run fences its store with it (store_fence_set: a commit after the
	 * lease is lost fails) and renews it (store_lease_renew) before it
	 * changes anything on the server (DELE and QUIT, MOVE, STORE, EXPUNGE):
	 * if the renewal fails it changes nothing and the run fails. */
	const struct run_lease {
		const char *owner;
		long long fence;
		long long ttl_s;
		/* The daemon's last run of the account left its journal empty
		 * (run_stats.journal_empty), and nobody claimed the account
		 * since: a POP3 listing that is empty need not open it. */
		int journal_empty;
	} *lease;
} run_opts;

/* Why a run failed, for the scheduler's back-off. */
typedef enum { RUN_FAIL_NONE = 0, RUN_FAIL_TEMP, RUN_FAIL_AUTH } run_fail;

typedef struct run_stats {
	unsigned long listed, fetched, deleted, kept, deferred, skipped, failed;
	/* IMAP: done mail moved (after = "move") or flagged (after = "flag",
	 * and "delete" on a server without UIDPLUS: flagged \Deleted only);
	 * deleted counts what the server removed. */
	unsigned long moved, flagged;
	/* Left on the server for a reason that is not the configuration's
	 * (max_size) nor a verdict: a UID the run cannot use, a refused DELE. */
	unsigned long unsettled;
	unsigned long long bytes;
	unsigned long long deleted_bytes;  /* of the deleted ones, by the server's sizes */
	run_fail fail;                     /* set when run_account returns -1 */
	int stopped;                       /* the stop flag cut the run short */
	int journal_empty;                 /* the account's journal holds no row
					    * after the run (POP3: its listing was
					    * empty and whole) */
} run_stats;

/*
 * 1 when every message the run listed reached a final verdict and what it
 * meant to delete was deleted: nothing deferred (by a stage, a full disk, a
 * server's -ERR), failed (a stage's FAIL, a quarantine) or unsettled.
 * --once exits 75 otherwise (mailmilld(8), EXIT STATUS).
 */
int run_settled(const run_stats *s);

/*
 * Count a failed attempt on (account, uid) in the journal and quarantine the
 * message once it has failed max_attempts times; logs either way.  1 if it
 * was quarantined now, 0 if counted, -1 if the journal could not be written.
 * Shared by run.c (a stage said MM_FAIL) and the scheduler (a worker died or
 * overran its deadline on the message).
 */
int run_charge(store *st, const char *account, const char *uid, const char *why,
	       int max_attempts);

/* 0 if the run completed, -1 if it failed (already logged: a temporary
 * failure, retried on the next run; nothing unprocessed was deleted). */
/*
 * Connect to a's server now, for the run_account that follows: the caller
 * opens the journal and loads the plugins while the server starts its
 * login process (docs/design.md, "Measurements behind the interfaces").
 * A failure is kept and reported by
 * run_account.  NULL only when out of memory (run_account then connects).
 */
typedef struct run_dial run_dial;
run_dial *run_dial_start(const cfg_account *a);
void run_dial_free(run_dial **d);
/* One run of account a; `dial` (NULL, or from run_dial_start for a) is
 * taken over. */
int run_account(const cfg_account *a, pipeline *pl, store *st,
		const run_opts *o, run_dial *dial, run_stats *stats);
/*
 * --check-login: connect, TLS, authenticate, CAPA, STAT; print what was
 * found on out; change nothing on the server (no RETR, no DELE) and write
 * nothing to the store but the token cache.  0 or -1 (logged).
 */
int run_check_login(const cfg *c, const cfg_account *a, store *st, const run_opts *o,
		    FILE *out);
/* The line an OAuth failure gets, and its run_fail; shared with the outbox.
 * what: the account name or "smtp". */
run_fail run_oauth_failed(const char *config_path, const char *what, int status,
			  const char *err);
#endif

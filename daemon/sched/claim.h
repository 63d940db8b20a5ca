/* mailmill - ISC licence, see LICENSE */
#ifndef MM_CLAIM_H
#define MM_CLAIM_H
/*
 * The leases of the daemon and of --once (daemon/store/store.h,
 * store_lease_*): several daemons pointed at one database share the
 * accounts, with no leader.  Before a worker runs an account (or flushes
 * the outbox, lease CLAIM_OUTBOX) its parent claims the lease; a lease
 * another daemon holds is no failure: the account waits for its next due
 * time.  The parent renews the lease from its own loop (the daemon's
 * watchdog, --once's wait) every third of its ttl while the worker runs,
 * and stops the worker when the lease could not be renewed before it ran
 * out; the worker fences its store with the lease, so a commit after the
 * lease was lost is refused whatever the parent does.  After a run the
 * daemon keeps the lease until the account's next run (claim_hold), so
 * the other daemons leave the account alone meanwhile instead of polling it
 * again; a daemon that stops gives its leases back, one that dies loses
 * them when they expire.  On SQLite every claim succeeds and the rest does
 * nothing (one daemon per file).
 *
 * Errors are logged here, with the account's name.
 */
#include <stddef.h>
#include <glib.h>
#include "daemon/run/outbox.h"
#include "daemon/run/run.h"
#include "daemon/store/store.h"

#define CLAIM_OUTBOX OUTBOX_LEASE
#define CLAIM_OWNER_MAX 320

typedef struct claim {
	const char *name;       /* account or CLAIM_OUTBOX; borrowed */
	const char *owner;      /* borrowed */
	long long fence, ttl_s;
	gint64 renew_at;        /* monotonic us: the next renewal */
	gint64 until;           /* monotonic us: surely ours until then */
	int held, lost_said;
	/* The fence of this daemon's last run whose journal was left empty
	 * (claim_note_empty), 0: none; and, once claimed again, whether that
	 * still holds: no claim by anyone came between (run_lease). */
	long long empty_at;
	int journal_empty;
} claim;

/* This process's owner id: "host:pid:boot", boot random per call. */
void claim_owner(char *buf, size_t len);
/* --once's owner id: "host:once:XXXXXXXX", the same for every --once on
 * this state_dir.  Only one runs at a time (the state lock), so a --once
 * takes back at once the leases an earlier one could not give back (its
 * database was down), instead of skipping those accounts until they
 * expire; fencing still refuses anything the earlier one left running. */
void claim_owner_once(char *buf, size_t len, const char *state_dir);
/* Claim name's lease for ttl_s: 1 ours (cl filled), 0 another daemon holds
 * it (said at debug level), -1 the store failed (logged as a warning). */
int claim_take(claim *cl, store *st, const char *owner, const char *name, long long ttl_s);
/* While the worker runs: renew when due.  0 it holds; -1 it could not be
 * renewed until it ran out (logged once): stop the worker. */
int claim_tick(claim *cl, store *st, gint64 now);
/* After the run: keep it until hold_s seconds from now plus the ttl (the
 * daemon's next run of it); lost or not renewed: no longer held. */
void claim_hold(claim *cl, store *st, double hold_s);
/* Give it back (no-op when not held). */
void claim_release(claim *cl, store *st);
/* The run under this lease left the account's journal empty. */
void claim_note_empty(claim *cl);
/* The lease for run_opts.lease / the outbox flush. */
void claim_lease(const claim *cl, struct run_lease *rl);
#endif

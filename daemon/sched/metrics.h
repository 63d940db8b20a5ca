/* mailmill - ISC licence, see LICENSE */
#ifndef MM_METRICS_H
#define MM_METRICS_H
/*
 * The daemon's counters, kept in memory: each update is O(1) (a hash
 * lookup), so a run costs the same with ten or ten thousand accounts.  The
 * text (Prometheus format) is rendered from them at a bounded rate, never
 * per run: the daemon writes it to state_dir/metrics.prom at most every
 * METRICS_PERIOD_S seconds and at exit (scheduler.c), and serves the same
 * text over HTTP when metrics_listen is set (metrics_http.h).  Counters count
 * since the daemon started; Prometheus handles the reset a restart is.
 *
 * The file is written to a temporary name and renamed over the old one, so a
 * reader (node_exporter's textfile collector) never sees half a file; it is
 * not fsynced: the counters die with the process anyway, and a file lost or
 * stale after a power cut is replaced by the next write, nothing reads it to
 * decide anything.
 */
#include <stddef.h>
#include "daemon/run/run.h"
#include "daemon/store/store.h"

#define METRICS_PERIOD_S 5

typedef struct metrics metrics;

metrics *metrics_new(void);
void metrics_free(metrics **m);
/* A message decided by the pipeline (from a worker's progress). */
void metrics_verdict(metrics *m, const char *account, const char *stage, const char *verdict,
		     unsigned long long bytes);
/* A message put in quarantine. */
void metrics_quarantined(metrics *m, const char *account, unsigned long long bytes);
/* Whether an OAuth account needs a person to sign in (the gauge
 * mailmill_account_needs_signin; accounts never set have none). */
void metrics_signin(metrics *m, const char *account, int needs);
/* Whether this daemon holds the account's lease now (daemon/sched/claim.h),
 * as owner: the gauge mailmill_account_lease{account,owner}, so that the
 * daemons sharing a store show which holds which account.  Accounts never
 * set have none. */
void metrics_lease(metrics *m, const char *account, const char *owner, int held);
/* A finished run; ok: it completed; now: unix time. */
void metrics_run(metrics *m, const char *account, const run_stats *s, int ok, long long now,
		 double seconds);
/* 1 when something changed since the last metrics_render(). */
int metrics_dirty(const metrics *m);
/*
 * The text, allocated (g_free), its length in *len_r; st (may be NULL)
 * gives the outbox and quarantine gauges (a few aggregate queries, whatever
 * the number of accounts).  Clears the dirty flag.  *store_ok_r (may be
 * NULL): 0 when a store query failed.
 */
char *metrics_render(metrics *m, store *st, size_t *len_r, int *store_ok_r);
/* Write text to state_dir/metrics.prom (temporary file, rename, mode 0644).
 * 0, or -1 and *err_r (allocated). */
int metrics_write_text(const char *state_dir, const char *text, size_t len, char **err_r);
/* Render and write. */
int metrics_write(metrics *m, const char *state_dir, store *st, char **err_r);
#endif

/* mailmill - ISC licence, see LICENSE */
#ifndef MM_METRICS_H
#define MM_METRICS_H
/*
 * The daemon's counters, written in the Prometheus text format to
 * state_dir/metrics.prom (tmp + rename, so node_exporter's textfile
 * collector never reads half a file) after every account run.  Counters
 * count since the daemon started; Prometheus handles the reset a restart is.
 */
#include "daemon/run/run.h"
#include "daemon/store/store.h"

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
/* Write state_dir/metrics.prom; st (may be NULL) gives the outbox and the
 * quarantine gauges.  0, or -1 and *err_r (allocated). */
int metrics_write(metrics *m, const char *state_dir, store *st, char **err_r);
#endif

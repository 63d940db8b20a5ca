/* mailmill - ISC licence, see LICENSE */
#ifndef MM_WATCH_H
#define MM_WATCH_H
/*
 * The parent's side of one worker (daemon/sched/worker.h), shared by the
 * daemon (supervise.c, in its main loop) and --once (once.c, blocking):
 * what the worker reported over its progress pipe, what its end means, and
 * the run's record in the store and the metrics.  One account run is
 * watched, recorded and counted the same way whoever started it.
 */
#include <sys/types.h>
#include <glib.h>
#include "daemon/core/cfg.h"
#include "daemon/sched/metrics.h"
#include "daemon/sched/progress.h"
#include "daemon/store/store.h"

typedef struct watch {
	const char *account;            /* borrowed */
	metrics *m;                     /* verdicts are counted here; borrowed */
	GString *in;                    /* a line not yet complete */
	char uid[PROGRESS_UID_MAX];     /* message in hand, "" none */
	unsigned long long uid_size;
	gint64 uid_since;               /* monotonic us when it went in; 0 none */
	char error[PROGRESS_ERROR_MAX]; /* the worker's last error */
	run_stats stats;
	int have_stats;
	gint64 t0;                      /* monotonic us at the start */
	long long started;              /* unix */
} watch;

void watch_init(watch *w, const char *account, metrics *m);
void watch_clear(watch *w);
/* Read what the worker wrote on fd (non-blocking) and act on each line: 1 at
 * end of file (or a read error), 0 when it would block. */
int watch_drain(watch *w, int fd);
/*
 * What the end means: "ok", "failed", "auth", "crashed" or "timeout", and
 * why into why (len bytes, "" for ok).  status: waitpid's; killed: why the
 * parent killed it, or NULL.
 */
const char *watch_result(const watch *w, int status, const char *killed, char *why, size_t len);
/* The run in the store (store_run_add; a failure is logged) and in the
 * metrics, with the needs-sign-in gauge of account a (NULL: a reload
 * removed it; no gauge).  O(1) in the number of accounts. */
void watch_record(const watch *w, const cfg_account *a, store *st, const char *result,
		  const char *why);
/* The needs-sign-in gauge of OAuth account a (named account; a may be NULL:
 * nothing), from the store. */
void watch_signin(const cfg_account *a, store *st, metrics *m, const char *account);
#endif

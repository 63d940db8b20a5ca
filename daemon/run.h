/* mailmill - ISC licence, see LICENSE */
#ifndef MM_RUN_H
#define MM_RUN_H
/*
 * One account run, the core contract of DESIGN.md: list, fetch what is new,
 * run each message through the pipeline as it arrives, make a batch's side
 * effects durable (pipeline_sync), commit its verdicts to the journal, and
 * only then DELE; QUIT; record the confirmed deletions.
 */
#include "daemon/config.h"
#include "daemon/pipeline.h"
#include "daemon/store.h"

typedef struct run_opts {
	int dry_run;   /* fetch and run the pipeline; write, delete, send nothing */
	int trace;     /* log the POP3 dialogue at debug level (secrets redacted) */
} run_opts;

typedef struct run_stats {
	unsigned long listed, fetched, deleted, kept, deferred, skipped, failed;
	unsigned long long bytes;
} run_stats;

/* 0 if the run completed, -1 if it failed (already logged: a temporary
 * failure, retried on the next run; nothing unprocessed was deleted). */
int run_account(const cfg *c, const cfg_account *a, pipeline *pl, store *st,
		const run_opts *o, run_stats *stats);
#endif

/* mailmill - ISC licence, see LICENSE */
#ifndef MM_RUN_INT_H
#define MM_RUN_INT_H
/*
 * Shared by the files of the account run (run.c: the session and the fetch
 * loop; run_plan.c: the listing and the plan; run_commit.c: verdicts, the
 * batch commit and the journal after QUIT).  run.h is the interface.
 */
#include <glib.h>
#include "proto/pop3.h"
#include "daemon/run/run.h"
#include "daemon/run/api.h"

/*
 * Group commit: a batch is made durable with one pipeline_sync and one store
 * transaction.  Bigger batches mean fewer flushes; the bounds keep the
 * unflushed data and the journal transaction small.
 */
#define RUN_BATCH_MAX 4096
#define RUN_BATCH_BYTES (64ULL * 1024 * 1024)
/* What the batch's stages staged (replies, keys) is held in memory until
 * the commit: an auto-responder's 4096 replies grew the worker by 12 MB. */
#define RUN_BATCH_STAGED (2ULL * 1024 * 1024)

typedef struct run_item {
	char uid[72];
	size_t entry;          /* index into run.entries */
	ledger_state state;
	char *message_id;
	unsigned long long size;
	const char *stage;     /* borrowed from the configuration */
	mm_verdict verdict;
	GPtrArray *effects;    /* staged mail and kv puts (api.h), NULL if none */
} run_item;

typedef struct run {
	const cfg_account *a;
	pipeline *pl;
	store *st;
	const run_opts *o;
	run_stats *stats;
	api_batch *api;        /* the API's side of the run: store, staged effects */
	pop3_session *s;
	pop3_entry *entries;
	size_t n_entries;
	GHashTable *ledger;    /* uid -> ledger state + 1 (rows of this account) */
	GArray *dele;          /* indices into entries to delete, in commit order */
	size_t dele_sent;      /* dele[0..dele_sent) have had their DELE sent */
	run_item batch[RUN_BATCH_MAX];
	size_t n_batch;
	unsigned long long batch_bytes;
	unsigned long long batch_staged; /* api_effects_size of the batch */
	int listing_partial;   /* LIST or UIDL left lines out: the listing is not all */
	unsigned long limited; /* new messages not fetched because of o->limit */
} run;

/* run_plan.c */
/* store_ledger_load's row callback: arg is the run's ledger table. */
void run_ledger_row(void *arg, const char *uid, ledger_state st, int attempts);
/* The journal's state of uid, LEDGER_NEW if it has no row. */
ledger_state run_ledger_get(const run *r, const char *uid);
/* LIST and UIDL into r->entries: 0, or -1 (logged). */
int run_list(run *r);
/* Decide per listed message: fetch (its index into fetch), delete (processed
 * earlier: into r->dele), or leave. */
void run_plan(run *r, GArray *fetch);

/* run_commit.c */
/* Make the batch durable and commit its verdicts; then its deletions may go.
 * 0, or -1 (logged; the batch's messages are left on the server). */
int run_commit_batch(run *r);
/* Run the fetched message entries[ei] through the pipeline and into the
 * batch (committed when full): 0, or -1 if a commit failed. */
int run_message(run *r, size_t ei, const buf *body);
/* Fetching entries[ei] failed: count it toward quarantine if it has a UID. */
void run_fetch_failed(run *r, size_t ei, const char *why);
/* After QUIT is sent: the transaction that records the deletions, left open
 * for the caller to commit once QUIT succeeds.  0, or -1 (logged, none open). */
int run_after_quit(run *r, const GPtrArray *deleted);
#endif

/* mailmill - ISC licence, see LICENSE */
#ifndef MM_RUN_INT_H
#define MM_RUN_INT_H
/*
 * Shared by the files of the account run (run.c: the fetch loop and the
 * effects; run_plan.c: the plan against the journal; run_commit.c: verdicts,
 * the batch commit and the journal once a mailbox is finished) and by the
 * mail sources behind source.h (source_pop3.c, source_imap.c).  run.h is
 * the interface.
 */
#include <glib.h>
#include "proto/buf.h"
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
/* Pipelined commands in flight.  Deep enough that the server, whose one
 * process is the bottleneck on loopback, keeps sending while a batch
 * commits (about 25 ms, 500 small messages): 64 left it idle for 130 ms
 * of a 10,000-message run. */
#define RUN_WINDOW 1024
/* A journal key: a POP3 UID (70 characters), or an IMAP
 * "FOLDER;UIDVALIDITY=V/;UID=N" (source_imap.c bounds the folder name). */
#define RUN_KEY_MAX 320

/* One listed message, as every source gives it. */
enum { RUN_UID_OK = 0, RUN_UID_MISSING, RUN_UID_INVALID, RUN_UID_DUPLICATE };
typedef struct run_entry {
	char *uid;                 /* the journal key, owned by the source's listing;
				    * RUN_UID_MISSING: a writable buffer of 71 bytes
				    * that run_message fills with the digest key */
	unsigned long msgno;       /* POP3: the message number; IMAP: the UID */
	unsigned long long size;   /* the server's number: bounded while fetching */
	unsigned char uid_state;   /* RUN_UID_* */
	unsigned char size_ok;     /* 0: the listing gave no valid size */
} run_entry;

typedef struct run_item {
	char uid[RUN_KEY_MAX];
	size_t entry;          /* index into run.entries */
	ledger_state state;
	char *message_id;
	unsigned long long size;
	const char *stage;     /* borrowed from the configuration */
	mm_verdict verdict;
	const char *verdict_name; /* instead of verdict's name ("duplicate"), or NULL */
	GPtrArray *effects;    /* staged mail and kv puts (api.h), NULL if none */
	char digest[65];       /* IMAP: hex SHA-256; "" for POP3 */
} run_item;

typedef struct run_source_ops run_source_ops;

typedef struct run {
	const cfg_account *a;
	pipeline *pl;
	store *st;             /* NULL until run_journal_open (run_opts.open_store) */
	int journal_open;      /* the store is fenced and the journal loaded */
	const run_opts *o;
	run_stats *stats;
	api_batch *api;        /* the API's side of the run: store, staged effects */
	const run_source_ops *src;
	void *sd;              /* the source's session and listing (source_*.c) */
	run_entry *entries;    /* the current mailbox's listing, owned by the source */
	size_t n_entries;
	/* The current mailbox's keys start with this (IMAP: the folder and its
	 * UIDVALIDITY); NULL: every row of the account is the mailbox's (POP3). */
	const char *key_prefix;
	GHashTable *ledger;    /* uid -> ledger state + 1 (rows of this account) */
	GArray *dele;          /* indices into entries whose effect is due, in commit order */
	size_t dele_sent;      /* dele[0..dele_sent) have had their effect sent */
	size_t dele_renewed;   /* the lease was renewed with dele[0..dele_renewed) due */
	run_item batch[RUN_BATCH_MAX];
	size_t n_batch;
	unsigned long long batch_bytes;
	unsigned long long batch_staged; /* api_effects_size of the batch */
	int listing_partial;   /* the listing left lines out: it is not the whole mailbox */
	unsigned long planned; /* messages planned for fetching in earlier mailboxes (--limit) */
	unsigned long limited; /* new messages not fetched because of o->limit */
	/* SHA-256 fetched from OpenSSL once a run, not once a message (it looks
	 * the algorithm up again on every EVP_sha256() digest); NULL until the
	 * first digest; freed by run_digest_free */
	struct evp_md_st *sha256;
	/* NULL: every digest is looked up in the journal.  Else the account
	 * had no journal row when the run began, and these are the digests the
	 * run has journalled since (run_commit_batch): see run_seen. */
	GHashTable *digests;
	int gone_checked;      /* run_seen asked whether forgotten keys' digests exist */
	struct evp_md_ctx_st *sha256_ctx;
} run;

/* run.c */
static inline int
run_stopping(const run *r)
{
	return r->o->stop != NULL && *r->o->stop != 0;
}
/* The "quit" crash point and the protocol trace (run_opts.trace). */
void run_trace(void *arg, char dir, const char *line, size_t len);
/* Before a change on the server: renew the run's lease, if it holds one.
 * 0, or -1 (logged: change nothing, fail the run). */
int run_lease_renew(run *r);
/* The journal, when the run first needs it (a mailbox listed messages):
 * the store opened, fenced with the run's lease, aged and loaded.  An
 * empty mailbox needs none of it: nothing to compare, nothing to redo.
 * 0, or -1 (logged: the run fails before it changes anything). */
int run_journal_open(run *r);
/* Where the OAuth token is cached: run_opts.tokens or the run's store
 * (opened now if need be); NULL only for an account without OAuth, or
 * if the store cannot be opened (logged). */
store *run_token_store(run *r);

/* run_plan.c */
/* store_ledger_load's row callback: arg is the run's ledger table. */
void run_ledger_row(void *arg, const char *uid, ledger_state st, int attempts);
/* The journal's state of uid, LEDGER_NEW if it has no row. */
ledger_state run_ledger_get(const run *r, const char *uid);
/* Decide per listed message: fetch (its index into fetch), redo its effect
 * (processed earlier: into r->dele), or leave. */
void run_plan(run *r, GArray *fetch);

/* run_commit.c */
/* Make the batch durable and commit its verdicts; then their effects may go.
 * 0, or -1 (logged; the batch's messages are left on the server). */
int run_commit_batch(run *r);
/* Run the fetched message entries[ei] through the pipeline and into the
 * batch (committed when full): 0, or -1 if a commit failed. */
int run_message(run *r, size_t ei, const buf *body);
/* The run's SHA-256 algorithm and context, if it made any digest. */
void run_digest_free(run *r);
/* Fetching entries[ei] failed: count it toward quarantine if it has a UID. */
void run_fetch_failed(run *r, size_t ei, const char *why);
/* The mailbox is finished (POP3: QUIT is sent): the transaction that records
 * the confirmed effects (done: keys) and forgets the mailbox's rows the
 * listing lacks, left open for the caller to commit.  0, or -1 (logged,
 * none open). */
int run_journal_settle(run *r, const GPtrArray *done);
#endif

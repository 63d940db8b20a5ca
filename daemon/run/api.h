/* mailmill - ISC licence, see LICENSE */
#ifndef MM_API_H
#define MM_API_H
/*
 * What stands behind the opaque handles of include/mailmill/plugin.h.  Only
 * daemon/ sees these structs; daemon/run/api.c, api_kv.c and api_mail.c
 * implement the mm_* functions.
 */
#include <stddef.h>
#include <glib.h>
#include <mailmill/plugin.h>
#include "daemon/store/store.h"

typedef struct api_batch api_batch;

struct mm_ctx {
	const char *account;   /* borrowed from the configuration */
	const char *stage;     /* borrowed from the configuration */
	int dry_run;
	int errors;            /* mm_ctx_error calls so far */
	/* For mm_ctx_has_stage: the account's stage names in pipeline order
	 * (borrowed from the configuration) and this stage's place among them. */
	const char *const *stage_names;
	size_t n_stages, index;
	/* The message in hand while the stage's process runs (pipeline_run),
	 * else NULL: the calls that take no message reach the run's batch
	 * through it. */
	mm_msg *msg;
};

struct mm_msg {
	GMimeMessage *mime;    /* owned by the run */
	const char *raw;       /* borrowed: the fetched bytes */
	size_t len;
	const char *uid;
	const char *account;
	long long date;
	GPtrArray *effects;    /* api_effect *, staged by the stages; NULL if none */
	char *goto_stage;      /* mm_msg_goto's (g_malloc'd); pipeline_run frees it */
	GString *fields;       /* the raw header's fields as "name\0value\0"..., read
				* once for mm_msg_headers; api_msg_release frees it */
	api_batch *batch;      /* borrowed from the run; NULL: no store (mm_kv_get
				* sees only this message's puts) */
};

/*
 * Staging (include/mailmill/plugin.h: "outgoing mail and plugin state").
 * mm_queue, mm_queue_raw and mm_kv_put add an api_effect to the message's
 * `effects`.  run.c owns what happens next: on DONE or KEEP it moves the
 * array into its batch (api_batch_add makes it visible to mm_kv_get until
 * the batch is committed or dropped) and writes it with api_batch_commit in
 * the transaction of the verdicts; on DEFER or FAIL it frees it.  In a dry run
 * mm_queue stages too (--test prints the mail); the run commits nothing.
 */
typedef struct api_effect {
	int is_kv;
	char *account, *stage, *uid;
	/* outbox */
	char *env_from;        /* "" for <> */
	char *rcpts;           /* "\n"-separated */
	char *data;
	size_t len;
	char *message_id;
	unsigned flags;
	/* kv */
	char *key, *value;
	long long expires_at;
	char *ns;              /* kv in a namespace (mm_kv_put_ns); NULL: scoped */
} api_effect;

/*
 * The batch of one account run (or of one --test message): the store the
 * plugins read and claim in, and the effects of the messages whose verdicts
 * are decided but not committed yet.  Owned by the run, which hands it to
 * each message it processes (mm_msg.batch); there is no global state, so two
 * batches (two tests) may live side by side in one process.
 */
/* st: borrowed, outlives the batch; NULL: no store (reads find nothing). */
api_batch *api_batch_new(store *st);
/* Drops what is pending (not the effects: their owners free them); *b = NULL. */
void api_batch_free(api_batch **b);
/* Borrow a batch item's effects until api_batch_clear (committed or dropped). */
void api_batch_add(api_batch *b, GPtrArray *effects);
void api_batch_clear(api_batch *b);
/* Write one item's effects into the batch's store; joins the caller's
 * transaction (a key put again later in the batch is written once).  0 / -1. */
int api_batch_commit(api_batch *b, GPtrArray *effects, char **err_r);
/*
 * --test: every line a stage logs while it processes a message of this batch
 * is also handed to fn (stage name and text borrowed for the call), whatever
 * the log level.  fn NULL: none.
 */
typedef void api_note_fn(void *arg, const char *stage, mm_log_level level, const char *text);
void api_batch_notes(api_batch *b, api_note_fn *fn, void *arg);
/* A message for pipeline_run, in the batch b: raw, uid and account borrowed
 * (they outlive msg); the rest zero.  api_msg_release frees what the API
 * caches in it; the run frees its mime and effects. */
void api_msg_init(mm_msg *msg, api_batch *b, const char *raw, size_t len, const char *uid,
		  const char *account, long long date);
/* Free what the API cached in msg (not msg itself, nor its mime). */
void api_msg_release(mm_msg *msg);
/* Roughly the bytes effects hold (mail and values), for bounding a batch. */
size_t api_effects_size(const GPtrArray *effects);
/* Frees the array and its effects; sets *effects to NULL. */
void api_effects_free(GPtrArray **effects);
#endif

/* mailmill - ISC licence, see LICENSE */
#ifndef MM_API_H
#define MM_API_H
/*
 * What stands behind the opaque handles of include/mailmill/plugin.h.  Only
 * daemon/ sees these structs; daemon/run/api.c implements the mm_* functions.
 */
#include <stddef.h>
#include <glib.h>
#include <mailmill/plugin.h>
#include "daemon/store/store.h"

struct mm_ctx {
	const char *account;   /* borrowed from the configuration */
	const char *stage;     /* borrowed from the configuration */
	int dry_run;
	int errors;            /* mm_ctx_error calls so far */
	/* For mm_ctx_has_stage: the account's stage names in pipeline order
	 * (borrowed from the configuration) and this stage's place among them. */
	const char *const *stage_names;
	size_t n_stages, index;
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
};

/*
 * Staging (include/mailmill/plugin.h: "outgoing mail and plugin state").
 * mm_queue, mm_queue_raw and mm_kv_put add an api_effect to the message's
 * `effects`.  run.c owns what happens next: on DONE or KEEP it moves the
 * array into its batch (api_pending_add makes it visible to mm_kv_get until
 * the batch is committed or dropped) and writes it with api_effects_commit in
 * the transaction of the verdicts; on DEFER it frees it.
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

/* The store mm_kv_get reads (NULL: none; outside a run). */
void api_run_set(store *st);
/* The message being processed (its staged puts are visible), or NULL. */
void api_msg_set(mm_msg *msg);
/* Free what the API cached in msg (not msg itself, nor its mime). */
void api_msg_release(mm_msg *msg);
/* Borrow a batch item's effects until api_pending_clear (batch committed or dropped). */
void api_pending_add(GPtrArray *effects);
/* Roughly the bytes effects hold (mail and values), for bounding a batch. */
size_t api_effects_size(const GPtrArray *effects);
void api_pending_clear(void);
/* Write the effects into st; joins the caller's transaction.  0 / -1. */
int api_effects_commit(store *st, GPtrArray *effects, char **err_r);
/* Frees the array and its effects; sets *effects to NULL. */
void api_effects_free(GPtrArray **effects);
#endif

/* mailmill - ISC licence, see LICENSE */
#ifndef MM_API_INT_H
#define MM_API_INT_H
/*
 * Shared by the files of the plugin API (api.c: the context, the message
 * and the batch; api_kv.c: state; api_mail.c: outgoing mail).  Not for
 * anything outside them: api.h is the interface.
 */
#include "daemon/run/api.h"

/* Bounds on what a plugin may stage: one message's worth, not a mailbox's. */
#define API_MAX_MAIL (64U * 1024 * 1024)
#define API_MAX_RCPTS 100
#define API_MAX_ADDR 254
#define API_MAX_KEY 512
#define API_MAX_VALUE 4096

struct api_batch {
	store *st;             /* borrowed; NULL: none */
	/* The latest staged put of each key in the batch not yet committed, by
	 * api_kv_index_key (a scan of the whole batch per mm_kv_get made an
	 * auto-responder quadratic in the batch size).  Values borrowed from the
	 * batch's effects, which outlive the entries (api_batch_clear). */
	GHashTable *pending;
	api_note_fn *note;
	void *note_arg;
};

/* "account\x1fstage\x1fkey", or "\x1ens\x1fkey" for a namespace: g_free. */
char *api_kv_index_key(const char *account, const char *stage, const char *ns, const char *key);
/* The batch of the message the stage has in hand, or NULL (init, sync). */
api_batch *api_batch_of(const mm_ctx *ctx);
/* The store the stage reads and claims in: its batch's, or NULL. */
store *api_store_of(const mm_ctx *ctx);
/* Add e (taken over) to msg's effects. */
void api_stage(mm_msg *msg, api_effect *e);
#endif

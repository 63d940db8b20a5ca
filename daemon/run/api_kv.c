/* mailmill - ISC licence, see LICENSE */
/*
 * The plugins' state: mm_kv_* (a stage's own keys, and namespaces shared
 * between stages) and mm_seq_next.  Puts are staged on the message and
 * committed with its verdict (api.c); reads see them first.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "daemon/run/api.h"
#include "daemon/run/api_int.h"

/* The latest staged put of a key in this message, else in the pending batch. */
static const api_effect *
api_kv_staged(const mm_ctx *ctx, const char *ns, const char *key)
{
	const mm_msg *msg = ctx->msg;
	const api_batch *b = api_batch_of(ctx);
	const api_effect *e = NULL;
	char *k;

	for (guint i = msg != NULL && msg->effects != NULL ? msg->effects->len : 0;
	     e == NULL && i > 0; i--) {
		const api_effect *c = g_ptr_array_index(msg->effects, i - 1);

		if (c->is_kv && strcmp(c->key, key) == 0 &&
		    (ns != NULL ? c->ns != NULL && strcmp(c->ns, ns) == 0
				: c->ns == NULL && strcmp(c->stage, ctx->stage) == 0 &&
				  strcmp(c->account, ctx->account) == 0))
			e = c;
	}
	if (e != NULL || b == NULL)
		return e;
	k = api_kv_index_key(ctx->account, ctx->stage, ns, key);
	e = g_hash_table_lookup(b->pending, k);
	g_free(k);
	return e;
}

/* A key of the stage's scope (ns NULL) or of namespace ns: newest first, this
 * message, the batch not yet committed, the store.  g_free. */
static char *
api_kv_read(mm_ctx *ctx, const char *ns, const char *key)
{
	long long now = (long long)time(NULL);
	const api_effect *e = api_kv_staged(ctx, ns, key);
	store *st = api_store_of(ctx);
	char *v = NULL, *err = NULL, *g;
	int rc;

	if (e != NULL)
		return e->expires_at != 0 && e->expires_at <= now ? NULL : g_strdup(e->value);
	if (st == NULL)
		return NULL;
	rc = store_kv_get(st, &(store_kv_scope){ ctx->account, ctx->stage, ns }, key, now,
			  &v, &err);
	if (rc < 0) {
		mm_log(ctx, MM_LOG_ERROR, "mm_kv_get%s %s%s%s: %s", ns != NULL ? "_ns" : "",
		       ns != NULL ? ns : "", ns != NULL ? " " : "", key, err != NULL ? err : "error");
		free(err);
		return NULL;
	}
	if (v == NULL)
		return NULL;
	g = g_strdup(v);
	free(v);
	return g;
}

/* Stage a put of key in the stage's scope (ns NULL) or in namespace ns. */
static void
api_stage_kv(mm_ctx *ctx, mm_msg *msg, const char *ns, const char *key, const char *value,
	     long long expires_at)
{
	api_effect *e = g_new0(api_effect, 1);

	e->is_kv = 1;
	e->account = g_strdup(ctx->account);
	e->stage = g_strdup(ctx->stage);
	e->uid = g_strdup(msg->uid);
	e->ns = g_strdup(ns);
	e->key = g_strdup(key);
	e->value = g_strdup(value);
	e->expires_at = expires_at;
	api_stage(msg, e);
}

char *
mm_kv_get(mm_ctx *ctx, const char *key)
{
	return key != NULL ? api_kv_read(ctx, NULL, key) : NULL;
}

int
mm_kv_put(mm_ctx *ctx, mm_msg *msg, const char *key, const char *value, long long expires_at)
{
	if (msg == NULL || key == NULL || value == NULL || *key == '\0' ||
	    strlen(key) > API_MAX_KEY || strlen(value) > API_MAX_VALUE || expires_at < 0) {
		mm_log(ctx, MM_LOG_ERROR, "mm_kv_put: needs a message, a key of 1 to %d bytes and a"
		       " value of at most %d", API_MAX_KEY, API_MAX_VALUE);
		return -1;
	}
	api_stage_kv(ctx, msg, NULL, key, value, expires_at);
	return 0;
}

/* ------------------------------------------------- namespaces, sequences */

#define API_MAX_NS 256

static int
api_ns_ok(mm_ctx *ctx, const char *fn, const char *ns, const char *key)
{
	if (ns == NULL || *ns == '\0' || strlen(ns) > API_MAX_NS || key == NULL ||
	    *key == '\0' || strlen(key) > API_MAX_KEY) {
		mm_log(ctx, MM_LOG_ERROR, "%s: needs a namespace of 1 to %d bytes and a key of 1 to"
		       " %d", fn, API_MAX_NS, API_MAX_KEY);
		return 0;
	}
	return 1;
}

/* The latest staged put of (ns, key) in effects, or NULL. */
char *
mm_kv_get_ns(mm_ctx *ctx, const char *ns, const char *key)
{
	return api_ns_ok(ctx, "mm_kv_get_ns", ns, key) ? api_kv_read(ctx, ns, key) : NULL;
}

int
mm_kv_put_ns(mm_ctx *ctx, mm_msg *msg, const char *ns, const char *key, const char *value,
	     long long expires_at)
{
	if (!api_ns_ok(ctx, "mm_kv_put_ns", ns, key))
		return -1;
	if (msg == NULL || value == NULL || strlen(value) > API_MAX_VALUE || expires_at < 0) {
		mm_log(ctx, MM_LOG_ERROR, "mm_kv_put_ns: needs a message and a value of at most %d"
		       " bytes", API_MAX_VALUE);
		return -1;
	}
	api_stage_kv(ctx, msg, ns, key, value, expires_at);
	return 0;
}

int
mm_kv_claim_ns(mm_ctx *ctx, const char *ns, const char *key, const char *value,
	       long long expires_at, char **holder_r)
{
	char *holder = NULL, *err = NULL;
	int rc;

	if (holder_r != NULL)
		*holder_r = NULL;
	if (!api_ns_ok(ctx, "mm_kv_claim_ns", ns, key))
		return -1;
	if (value == NULL || strlen(value) > API_MAX_VALUE || expires_at < 0 || holder_r == NULL) {
		mm_log(ctx, MM_LOG_ERROR, "mm_kv_claim_ns: needs a value of at most %d bytes and"
		       " holder_r", API_MAX_VALUE);
		return -1;
	}
	if (api_store_of(ctx) == NULL) {
		mm_log(ctx, MM_LOG_ERROR, "mm_kv_claim_ns: no store outside a run");
		return -1;
	}
	rc = store_kv_claim(api_store_of(ctx), &(store_kv_scope){ .ns = ns }, key, value, expires_at,
			    (long long)time(NULL), &holder, &err);
	if (rc < 0) {
		mm_log(ctx, MM_LOG_ERROR, "mm_kv_claim_ns %s %s: %s", ns, key,
		       err != NULL ? err : "error");
		free(err);
		return -1;
	}
	if (rc == 0) {
		*holder_r = g_strdup(holder != NULL ? holder : "");
		free(holder);
	}
	return rc;
}

int
mm_seq_next(mm_ctx *ctx, const char *ns, const char *name, long long *value_r)
{
	char *err = NULL;

	if (value_r == NULL || !api_ns_ok(ctx, "mm_seq_next", ns, name))
		return -1;
	*value_r = 0;
	if (api_store_of(ctx) == NULL) {
		mm_log(ctx, MM_LOG_ERROR, "mm_seq_next: no store outside a run");
		return -1;
	}
	if (store_seq_next(api_store_of(ctx), ns, name, value_r, &err) < 0) {
		mm_log(ctx, MM_LOG_ERROR, "mm_seq_next %s %s: %s", ns, name,
		       err != NULL ? err : "error");
		free(err);
		return -1;
	}
	return 0;
}

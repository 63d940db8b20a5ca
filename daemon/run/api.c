/* mailmill - ISC licence, see LICENSE */
/*
 * The functions a plugin may call (include/mailmill/plugin.h).  Part of the
 * core library; mailmilld (and the tests that load plugins) link all of it
 * and export it (-export-dynamic, Makefile.am), so that dlopen'd plugins
 * resolve these against the running program.  This file: the context, the
 * message and the batch whose effects commit with the verdicts; api_kv.c:
 * the plugins' state; api_mail.c: outgoing mail.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "daemon/run/api.h"
#include "daemon/run/api_int.h"
#include "daemon/core/log.h"
#include "daemon/run/message.h"

const char *
mm_ctx_account(const mm_ctx *ctx)
{
	return ctx->account;
}

const char *
mm_ctx_stage(const mm_ctx *ctx)
{
	return ctx->stage;
}

int
mm_ctx_dry_run(const mm_ctx *ctx)
{
	return ctx->dry_run;
}

/* mm_log's lines while a message is in hand, for --test (api_batch_notes). */
static api_note_fn *
api_note_of(const mm_ctx *ctx, void **arg_r);

void
mm_log(mm_ctx *ctx, mm_log_level level, const char *fmt, ...)
{
	char text[2048];
	void *arg = NULL;
	api_note_fn *note = api_note_of(ctx, &arg);
	va_list ap;

	/* Not formatted to be dropped: the archive logs a debug line per message. */
	if ((int)level > log_level() && note == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (note != NULL)
		note(arg, ctx->stage, level, text);
	if ((int)level <= log_level())
		log_msg((int)level, "%s: %s: %s", ctx->account, ctx->stage, text);
}

void
mm_ctx_error(mm_ctx *ctx, const config_setting_t *setting, const char *fmt, ...)
{
	char text[2048];
	const char *file = NULL;
	int line = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (setting != NULL) {
		file = config_setting_source_file(setting);
		line = (int)config_setting_source_line(setting);
	}
	ctx->errors++;
	if (file != NULL)
		log_error("%s:%d: account %s, stage %s: %s", file, line, ctx->account, ctx->stage, text);
	else
		log_error("account %s, stage %s: %s", ctx->account, ctx->stage, text);
}

int
mm_settings_check(mm_ctx *ctx, const config_setting_t *settings, const char *const *allowed)
{
	int i, n, bad = 0;

	if (settings == NULL)
		return 0;
	n = config_setting_length(settings);
	for (i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(settings, (unsigned)i);
		const char *name = config_setting_name(s);
		const char *const *a;
		int known = name == NULL || strcmp(name, "plugin") == 0 || strcmp(name, "name") == 0;

		for (a = allowed; !known && a != NULL && *a != NULL; a++)
			known = strcmp(*a, name) == 0;
		if (!known) {
			mm_ctx_error(ctx, s, "unknown setting '%s'", name);
			bad = 1;
		}
	}
	return bad ? -1 : 0;
}

int
mm_ctx_has_stage(const mm_ctx *ctx, const char *stage)
{
	int before = 0;

	if (stage == NULL)
		return 0;
	for (size_t i = 0; i < ctx->n_stages; i++) {
		if (ctx->stage_names[i] == NULL || strcmp(ctx->stage_names[i], stage) != 0)
			continue;
		if (i > ctx->index)
			return 1;
		before = 1;
	}
	return before ? -1 : 0;
}

void
mm_msg_goto(mm_msg *msg, const char *stage)
{
	g_free(msg->goto_stage);
	msg->goto_stage = g_strdup(stage);
}

/*
 * Parsed on the first call: a pipeline that only stores the raw bytes (an
 * archive) never pays for the MIME tree, which is most of the CPU per
 * message, nor for the scan of every line that checks the tree's caps.
 */
GMimeMessage *
mm_msg_mime(mm_msg *msg)
{
	if (msg->mime == NULL) {
		const char *note = NULL;

		msg->mime = message_parse(msg->raw, msg->len, &note);
		if (note != NULL)
			log_warn("%s: uid %s: %s: plugins see its top-level header only",
				 msg->account, msg->uid, note);
	}
	return msg->mime;
}

const char *
mm_msg_raw(mm_msg *msg, size_t *len_r)
{
	if (len_r != NULL)
		*len_r = msg->len;
	return msg->raw;
}

const char *
mm_msg_uid(mm_msg *msg)
{
	return msg->uid;
}

const char *
mm_msg_account(mm_msg *msg)
{
	return msg->account;
}

size_t
mm_msg_size(mm_msg *msg)
{
	return msg->len;
}

long long
mm_msg_date(mm_msg *msg)
{
	return msg->date;
}

static int
api_field_keep(const char *name, const char *value, void *arg)
{
	GString *f = arg;

	g_string_append(f, name);
	g_string_append_c(f, '\0');
	g_string_append(f, value);
	g_string_append_c(f, '\0');
	return 0;
}

/* The raw header is read once per message, however many stages (or calls of
 * one stage) walk it: a responder walks it four times. */
int
mm_msg_headers(mm_msg *msg, mm_header_fn fn, void *arg)
{
	if (msg->mime != NULL)
		return message_headers_mime(msg->mime, fn, arg);
	if (msg->fields == NULL) {
		msg->fields = g_string_sized_new(1024);
		message_headers(msg->raw, msg->len, api_field_keep, msg->fields);
	}
	for (const char *p = msg->fields->str, *end = p + msg->fields->len; p < end;) {
		const char *name = p, *value = name + strlen(name) + 1;
		int rc;

		p = value + strlen(value) + 1;
		if ((rc = fn(name, value, arg)) != 0)
			return rc;
	}
	return 0;
}

void
api_msg_init(mm_msg *msg, api_batch *b, const char *raw, size_t len, const char *uid,
	     const char *account, long long date)
{
	*msg = (mm_msg){ .raw = raw, .len = len, .uid = uid, .account = account, .date = date,
			 .batch = b };
}

void
api_msg_release(mm_msg *msg)
{
	if (msg->fields != NULL)
		g_string_free(msg->fields, TRUE);
	msg->fields = NULL;
}

struct api_find {
	const char *name;
	char *value;
};

static int
api_find_field(const char *name, const char *value, void *arg)
{
	struct api_find *f = arg;

	if (g_ascii_strcasecmp(name, f->name) != 0)
		return 0;
	f->value = g_strdup(value);
	return 1;
}

char *
mm_msg_header(mm_msg *msg, const char *name)
{
	struct api_find f = { name, NULL };

	if (name != NULL)
		mm_msg_headers(msg, api_find_field, &f);
	return f.value;
}

/* ------------------------------------------------------------ staging */

char *
api_kv_index_key(const char *account, const char *stage, const char *ns, const char *key)
{
	if (ns != NULL)
		return g_strconcat("\x1e", ns, "\x1f", key, NULL);
	return g_strconcat(account, "\x1f", stage, "\x1f", key, NULL);
}

api_batch *
api_batch_new(store *st)
{
	api_batch *b = g_new0(api_batch, 1);

	b->st = st;
	b->pending = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	return b;
}

void
api_batch_free(api_batch **b)
{
	if (*b == NULL)
		return;
	g_hash_table_destroy((*b)->pending);
	g_free(*b);
	*b = NULL;
}

void
api_batch_notes(api_batch *b, api_note_fn *fn, void *arg)
{
	b->note = fn;
	b->note_arg = arg;
}

api_batch *
api_batch_of(const mm_ctx *ctx)
{
	return ctx->msg != NULL ? ctx->msg->batch : NULL;
}

static api_note_fn *
api_note_of(const mm_ctx *ctx, void **arg_r)
{
	const api_batch *b = api_batch_of(ctx);

	if (b == NULL)
		return NULL;
	*arg_r = b->note_arg;
	return b->note;
}

store *
api_store_of(const mm_ctx *ctx)
{
	const api_batch *b = api_batch_of(ctx);

	return b != NULL ? b->st : NULL;
}

void
api_batch_add(api_batch *b, GPtrArray *effects)
{
	if (effects == NULL)
		return;
	for (guint i = 0; i < effects->len; i++) {
		api_effect *e = g_ptr_array_index(effects, i);

		if (e->is_kv)
			g_hash_table_replace(b->pending,
					     api_kv_index_key(e->account, e->stage, e->ns, e->key), e);
	}
}

size_t
api_effects_size(const GPtrArray *effects)
{
	size_t n = 0;

	for (guint i = 0; effects != NULL && i < effects->len; i++) {
		const api_effect *e = g_ptr_array_index(effects, i);

		/* the struct, its strings and the allocator's overhead, roughly */
		n += sizeof(*e) + 128 + e->len + (e->value != NULL ? strlen(e->value) : 0) +
		     (e->key != NULL ? strlen(e->key) : 0);
	}
	return n;
}

void
api_batch_clear(api_batch *b)
{
	g_hash_table_remove_all(b->pending);
}

static void
api_effect_free(gpointer p)
{
	api_effect *e = p;

	g_free(e->account);
	g_free(e->stage);
	g_free(e->uid);
	g_free(e->env_from);
	g_free(e->rcpts);
	g_free(e->data);
	g_free(e->message_id);
	g_free(e->key);
	g_free(e->value);
	g_free(e->ns);
	g_free(e);
}

void
api_effects_free(GPtrArray **effects)
{
	if (*effects != NULL)
		g_ptr_array_unref(*effects);
	*effects = NULL;
}

int
api_batch_commit(api_batch *b, GPtrArray *effects, char **err_r)
{
	store *st = b->st;
	long long now = (long long)time(NULL);
	guint i;

	for (i = 0; effects != NULL && i < effects->len; i++) {
		const api_effect *e = g_ptr_array_index(effects, i);
		int rc;

		/* A key put again later in the batch (a responder's counter, put
		 * by every message) is written once: the batch is one transaction,
		 * so only its last value is ever seen. */
		if (e->is_kv) {
			char *k = api_kv_index_key(e->account, e->stage, e->ns, e->key);
			const api_effect *last = g_hash_table_lookup(b->pending, k);

			g_free(k);
			if (last != NULL && last != e)
				continue;
		}
		if (e->is_kv) {
			store_kv_scope sc = { e->account, e->stage, e->ns };

			rc = store_kv_put(st, &sc, e->key, e->value, e->expires_at, now, err_r);
		} else {
			store_outbox_row row = {
				.account = e->account, .uid = e->uid, .stage = e->stage,
				.env_from = e->env_from, .rcpts = e->rcpts, .message = e->data,
				.len = e->len, .message_id = e->message_id, .flags = e->flags,
			};
			rc = store_outbox_add(st, &row, now, err_r);
		}
		if (rc < 0)
			return -1;
	}
	return 0;
}

void
api_stage(mm_msg *msg, api_effect *e)
{
	if (msg->effects == NULL)
		msg->effects = g_ptr_array_new_with_free_func(api_effect_free);
	g_ptr_array_add(msg->effects, e);
}

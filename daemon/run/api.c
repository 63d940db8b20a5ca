/* mailmill - ISC licence, see LICENSE */
/*
 * The functions a plugin may call (include/mailmill/plugin.h).  Part of the
 * core library; mailmilld (and the tests that load plugins) link all of it
 * and export it (-export-dynamic, Makefile.am), so that dlopen'd plugins
 * resolve these against the running program.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "daemon/run/api.h"
#include "daemon/core/log.h"
#include "daemon/run/message.h"
#include "daemon/run/reply.h"

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

/* ------------------------------------------------------------ staging */

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
static char *
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

/* The batch of the message the stage has in hand, or NULL (init, sync). */
static api_batch *
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

/* The store the stage reads and claims in: its batch's, or NULL. */
static store *
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

static void
api_stage(mm_msg *msg, api_effect *e)
{
	if (msg->effects == NULL)
		msg->effects = g_ptr_array_new_with_free_func(api_effect_free);
	g_ptr_array_add(msg->effects, e);
}

/* An envelope address: what proto/smtp will accept, checked now so that a
 * plugin's mistake is its own log line and not a dead letter later. */
static int
api_addr_ok(const char *a, int may_be_empty)
{
	size_t n;

	if (a == NULL)
		return may_be_empty;
	n = strlen(a);
	if (n == 0)
		return may_be_empty;
	if (n > API_MAX_ADDR || strchr(a, '@') == NULL)
		return 0;
	for (const unsigned char *p = (const unsigned char *)a; *p; p++)
		if (*p <= ' ' || *p == 0x7f || *p == '<' || *p == '>')
			return 0;
	return 1;
}

/* The value of header `name` in the top-level header of data, trimmed, or NULL. */
static char *
api_header(const char *data, size_t len, const char *name)
{
	size_t nl = strlen(name), i = 0;

	while (i < len) {
		const char *line = data + i, *eol = memchr(line, '\n', len - i);
		size_t ll = eol != NULL ? (size_t)(eol - line) : len - i;

		if (ll == 0 || (ll == 1 && line[0] == '\r'))
			break;
		if (ll > nl && line[nl] == ':' && g_ascii_strncasecmp(line, name, nl) == 0) {
			char *v = g_strndup(line + nl + 1, ll - nl - 1);

			return g_strstrip(v);
		}
		i += ll + 1;
	}
	return NULL;
}

static int
api_queue(mm_ctx *ctx, mm_msg *msg, char *data, size_t len, const char *env_from,
	  const char *const *rcpts, size_t n_rcpts, unsigned flags)
{
	GString *rs;
	api_effect *e;
	size_t i;

	if (msg == NULL || (n_rcpts > 0 && rcpts == NULL) || n_rcpts == 0 ||
	    n_rcpts > API_MAX_RCPTS) {
		mm_log(ctx, MM_LOG_ERROR, "mm_queue: needs a message and 1 to %d recipients",
		       API_MAX_RCPTS);
		g_free(data);
		return -1;
	}
	if (len > API_MAX_MAIL) {
		mm_log(ctx, MM_LOG_ERROR, "mm_queue: mail of %zu bytes is over the %u byte limit",
		       len, API_MAX_MAIL);
		g_free(data);
		return -1;
	}
	if (!api_addr_ok(env_from, 1)) {
		mm_log(ctx, MM_LOG_ERROR, "mm_queue: invalid envelope sender \"%s\"", env_from);
		g_free(data);
		return -1;
	}
	rs = g_string_new(NULL);
	for (i = 0; i < n_rcpts; i++) {
		if (!api_addr_ok(rcpts[i], 0)) {
			mm_log(ctx, MM_LOG_ERROR, "mm_queue: invalid recipient \"%s\"",
			       rcpts[i] != NULL ? rcpts[i] : "(null)");
			g_string_free(rs, TRUE);
			g_free(data);
			return -1;
		}
		g_string_append_printf(rs, "%s%s", i > 0 ? "\n" : "", rcpts[i]);
	}
	e = g_new0(api_effect, 1);
	e->account = g_strdup(ctx->account);
	e->stage = g_strdup(ctx->stage);
	e->uid = g_strdup(msg->uid);
	e->env_from = g_strdup(env_from != NULL ? env_from : "");
	e->rcpts = g_string_free(rs, FALSE);
	e->data = data;
	e->len = len;
	e->message_id = api_header(data, len, "Resent-Message-ID");
	if (e->message_id == NULL)
		e->message_id = api_header(data, len, "Message-ID");
	if (e->message_id != NULL) {
		size_t n = strlen(e->message_id);

		if (n >= 2 && e->message_id[0] == '<' && e->message_id[n - 1] == '>') {
			memmove(e->message_id, e->message_id + 1, n - 2);
			e->message_id[n - 2] = '\0';
		}
	}
	e->flags = flags;
	api_stage(msg, e);
	/* Staged in a dry run too, for --test to show; a dry run commits nothing. */
	if (ctx->dry_run)
		mm_log(ctx, MM_LOG_INFO, "dry run: would queue %zu bytes <%s> from <%s> to %s", len,
		       e->message_id != NULL ? e->message_id : "", e->env_from, e->rcpts);
	else
		mm_log(ctx, MM_LOG_DEBUG, "staged %zu bytes %s to %s", len,
		       e->message_id != NULL ? e->message_id : "", e->rcpts);
	return 0;
}

int
mm_queue(mm_ctx *ctx, mm_msg *msg, GMimeMessage *mail, const char *env_from,
	 const char *const *rcpts, size_t n_rcpts, unsigned flags)
{
	char *text;

	if (mail == NULL) {
		mm_log(ctx, MM_LOG_ERROR, "mm_queue: no mail");
		return -1;
	}
	/* Mail without a Message-ID could not be told apart when retried. */
	if (g_mime_message_get_message_id(mail) == NULL) {
		char *id = reply_message_id(env_from);

		g_mime_message_set_message_id(mail, id);
		g_free(id);
	}
	if (g_mime_message_get_date(mail) == NULL) {
		GDateTime *now = g_date_time_new_now_local();

		g_mime_message_set_date(mail, now);
		g_date_time_unref(now);
	}
	text = g_mime_object_to_string(GMIME_OBJECT(mail), NULL);
	if (text == NULL) {
		mm_log(ctx, MM_LOG_ERROR, "mm_queue: cannot serialise the mail");
		return -1;
	}
	return api_queue(ctx, msg, text, strlen(text), env_from, rcpts, n_rcpts, flags);
}

int
mm_queue_raw(mm_ctx *ctx, mm_msg *msg, const char *data, size_t len, const char *env_from,
	     const char *const *rcpts, size_t n_rcpts, unsigned flags)
{
	if (data == NULL || len == 0 || len > API_MAX_MAIL) {
		mm_log(ctx, MM_LOG_ERROR, "mm_queue_raw: no data, or over %u bytes", API_MAX_MAIL);
		return -1;
	}
	return api_queue(ctx, msg, g_memdup2(data, len), len, env_from, rcpts, n_rcpts, flags);
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

GMimeMessage *
mm_reply_new(mm_ctx *ctx, mm_msg *msg, const char *from, char **rcpt_r, const char **why_r)
{
	reply_orig o = { 0 };
	GMimeMessage *r;

	(void)ctx;
	mm_msg_headers(msg, reply_orig_field, &o);
	r = reply_new(&o, from, rcpt_r, why_r);
	reply_orig_clear(&o);
	return r;
}

char *
mm_reply_rcpt(mm_ctx *ctx, mm_msg *msg, const char **why_r)
{
	reply_orig o = { 0 };
	char *r;

	(void)ctx;
	mm_msg_headers(msg, reply_orig_field, &o);
	r = reply_recipient(&o, why_r);
	reply_orig_clear(&o);
	return r;
}

int
mm_reply_queue(mm_ctx *ctx, mm_msg *msg, const char *from, const char *rcpt,
	       const char *subject, const char *const *extra, const char *body, unsigned flags)
{
	reply_orig o = { 0 };
	const char *why = NULL, *rcpts[1] = { rcpt };
	size_t len;
	char *text;

	mm_msg_headers(msg, reply_orig_field, &o);
	text = reply_format(&o, from, rcpt, subject, extra, body, &len, &why);
	reply_orig_clear(&o);
	if (text == NULL) {
		mm_log(ctx, MM_LOG_ERROR, "mm_reply_queue: %s", why);
		return -1;
	}
	return api_queue(ctx, msg, text, len, "", rcpts, 1, flags);
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

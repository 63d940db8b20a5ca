/* mailmill - ISC licence, see LICENSE */
/*
 * Exporting ticket events: one JSON document per event, into json_dir and/or
 * POSTed to webhook_url.
 *
 * Files are written under a temporary name while the message is processed
 * and made durable by sync() (fsync each, rename, one fsync of the
 * directory), i.e. once per batch, before the core commits the batch's
 * verdicts.  A file's name comes from the ticket number, the event and a
 * digest of account and uid, so a message processed again (deferred, or
 * lost in a crash before the commit) rewrites the same files.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include "ticket.h"

#define TICKET_BODY_MAX (1024 * 1024)          /* decoded text in the document */
#define TICKET_ATTACH_MAX 100                  /* attachments listed per message */
#define TICKET_RESPONSE_MAX 4096               /* webhook answer kept for the log */

typedef struct ticket_file {
	char *tmp, *final;
} ticket_file;

static void
ticket_file_free(gpointer p)
{
	ticket_file *f = p;

	g_free(f->tmp);
	g_free(f->final);
	g_free(f);
}

char *
ticket_safe_name(const char *name)
{
	GString *s = g_string_new(NULL);
	const char *base = name != NULL ? strrchr(name, '/') : NULL;

	base = base != NULL ? base + 1 : name != NULL ? name : "";
	for (const char *p = base; *p && s->len < 80; p++) {
		char c = *p;

		if (g_ascii_isalnum(c) || c == '.' || c == '-' || c == '_')
			g_string_append_c(s, c);
		else if (s->len > 0 && s->str[s->len - 1] != '_')
			g_string_append_c(s, '_');
	}
	while (s->len > 0 && s->str[0] == '.')
		g_string_erase(s, 0, 1);
	if (s->len == 0)
		g_string_assign(s, "attachment");
	return g_string_free(s, FALSE);
}

/* Write data to dir/.name.tmp (no fsync yet) and remember it for sync(). */
static int
ticket_write_tmp(struct ticket *t, mm_ctx *ctx, const char *name, const void *data, size_t len)
{
	ticket_file *f = g_new0(ticket_file, 1);
	const char *p = data;
	char *err = NULL;
	int fd;

	f->tmp = g_strdup_printf("%s/.%s.tmp", t->json_dir, name);
	f->final = g_strdup_printf("%s/%s", t->json_dir, name);
	fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, t->perms.mode);
	if (fd < 0) {
		mm_log(ctx, MM_LOG_ERROR, "%s: %s", f->tmp, strerror(errno));
		ticket_file_free(f);
		return -1;
	}
	if (perms_apply_fd(fd, &t->perms, 0, f->tmp, &err) < 0) {
		mm_log(ctx, MM_LOG_ERROR, "%s", err != NULL ? err : "out of memory");
		free(err);
		close(fd);
		unlink(f->tmp);
		ticket_file_free(f);
		return -1;
	}
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			mm_log(ctx, MM_LOG_ERROR, "%s: write: %s", f->tmp,
			       n < 0 ? strerror(errno) : "no progress");
			close(fd);
			unlink(f->tmp);
			ticket_file_free(f);
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	if (close(fd) < 0) {
		mm_log(ctx, MM_LOG_ERROR, "%s: close: %s", f->tmp, strerror(errno));
		unlink(f->tmp);
		ticket_file_free(f);
		return -1;
	}
	if (t->pending == NULL)
		t->pending = g_ptr_array_new_with_free_func(ticket_file_free);
	g_ptr_array_add(t->pending, f);
	return 0;
}

int
ticket_export_file(struct ticket *t, mm_ctx *ctx, const char *base, const char *json)
{
	char *name = g_strdup_printf("%s.json", base);
	int rc = ticket_write_tmp(t, ctx, name, json, strlen(json));

	g_free(name);
	return rc;
}

void
ticket_export_drop(struct ticket *t)
{
	for (guint i = 0; t->pending != NULL && i < t->pending->len; i++)
		unlink(((ticket_file *)g_ptr_array_index(t->pending, i))->tmp);
	if (t->pending != NULL)
		g_ptr_array_set_size(t->pending, 0);
}

guint
ticket_export_mark(const struct ticket *t)
{
	return t->pending != NULL ? t->pending->len : 0;
}

void
ticket_export_undo(struct ticket *t, guint mark)
{
	while (t->pending != NULL && t->pending->len > mark) {
		unlink(((ticket_file *)g_ptr_array_index(t->pending, t->pending->len - 1))->tmp);
		g_ptr_array_set_size(t->pending, t->pending->len - 1);
	}
}

static int
ticket_fsync_path(mm_ctx *ctx, const char *path, int dir)
{
	int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_WRONLY) | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0 || fsync(fd) < 0) {
		mm_log(ctx, MM_LOG_ERROR, "%s: fsync: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
ticket_sync(void *state, mm_ctx *ctx)
{
	struct ticket *t = state;
	guint i, n = t->pending != NULL ? t->pending->len : 0;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		ticket_file *f = g_ptr_array_index(t->pending, i);

		if (ticket_fsync_path(ctx, f->tmp, 0) < 0)
			goto fail;
	}
	/* Renamed only once all are durable: a reader of json_dir never sees a
	 * document whose attachments are missing. */
	for (i = 0; i < n; i++) {
		ticket_file *f = g_ptr_array_index(t->pending, i);

		if (rename(f->tmp, f->final) < 0) {
			mm_log(ctx, MM_LOG_ERROR, "rename %s: %s", f->tmp, strerror(errno));
			goto fail;
		}
	}
	g_ptr_array_set_size(t->pending, 0);
	return ticket_fsync_path(ctx, t->json_dir, 1);
fail:
	ticket_export_drop(t);
	return -1;
}

static void
ticket_iso_time(GString *out, long long when)
{
	GDateTime *d = g_date_time_new_from_unix_utc((gint64)when);
	char *s = d != NULL ? g_date_time_format(d, "%Y-%m-%dT%H:%M:%SZ") : NULL;

	tj_str(out, s != NULL ? s : "");
	g_free(s);
	if (d != NULL)
		g_date_time_unref(d);
}

typedef struct ticket_walk {
	struct ticket *t;
	mm_ctx *ctx;
	GString *out;
	const char *base;
	int count, failed;
} ticket_walk;

/* One attachment: listed, and with json_dir saved as base-<i>-<safe name>. */
static void
ticket_attachment(GMimeObject *parent, GMimeObject *part, gpointer data)
{
	ticket_walk *w = data;
	GMimePart *mp;
	GMimeDataWrapper *dw;
	GMimeStream *mem;
	GByteArray *bytes;
	const char *fname;
	char *ctype, *safe, *saved = NULL;
	int first = 1;

	(void)parent;
	if (!GMIME_IS_PART(part) || w->failed)
		return;
	mp = GMIME_PART(part);
	fname = g_mime_part_get_filename(mp);
	if (!g_mime_part_is_attachment(mp) && fname == NULL)
		return;
	if (w->count >= TICKET_ATTACH_MAX) {
		w->count++;
		return;
	}
	mem = g_mime_stream_mem_new();
	dw = g_mime_part_get_content(mp);
	if (dw != NULL && g_mime_data_wrapper_write_to_stream(dw, mem) < 0) {
		mm_log(w->ctx, MM_LOG_WARNING, "an attachment could not be decoded; listed empty");
		g_mime_stream_reset(mem);
		g_byte_array_set_size(g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem)), 0);
	}
	bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	ctype = g_mime_content_type_get_mime_type(g_mime_object_get_content_type(part));
	safe = ticket_safe_name(fname);
	w->count++;
	if (w->t->json_dir != NULL && !mm_ctx_dry_run(w->ctx)) {
		saved = g_strdup_printf("%s-%d-%s", w->base, w->count, safe);
		if (ticket_write_tmp(w->t, w->ctx, saved, bytes->data, bytes->len) < 0)
			w->failed = 1;
	}
	if (w->count > 1)
		g_string_append_c(w->out, ',');
	g_string_append_c(w->out, '{');
	tj_key(w->out, "filename", &first);
	if (fname != NULL)
		tj_str(w->out, fname);
	else
		g_string_append(w->out, "null");
	tj_key(w->out, "content_type", &first);
	tj_str(w->out, ctype);
	tj_key(w->out, "size", &first);
	g_string_append_printf(w->out, "%u", bytes->len);
	tj_key(w->out, "file", &first);
	if (saved != NULL)
		tj_str(w->out, saved);
	else
		g_string_append(w->out, "null");
	g_string_append_c(w->out, '}');
	g_free(saved);
	g_free(safe);
	g_free(ctype);
	g_object_unref(mem);
}

/* The decoded text body (UTF-8), or NULL. */
static char *
ticket_body_text(GMimeMessage *m)
{
	GMimeObject *b = g_mime_message_get_body(m);

	if (b == NULL || !GMIME_IS_TEXT_PART(b))
		return NULL;
	return g_mime_text_part_get_text(GMIME_TEXT_PART(b));
}

char *
ticket_export_build(struct ticket *t, mm_ctx *ctx, GMimeMessage *m, const ticket_event *ev,
		    const char *base)
{
	GString *o = g_string_new("{");
	GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(m));
	int first = 1, i, count = g_mime_header_list_get_count(hl);
	char *body = ticket_body_text(m);
	int truncated = 0;
	ticket_walk w = { .t = t, .ctx = ctx, .base = base };

	tj_key(o, "ticket", &first);
	g_string_append_printf(o, "%lld", ev->number);
	tj_key(o, "tag", &first);
	tj_str(o, ev->tag);
	tj_key(o, "queue", &first);
	tj_str(o, t->queue);
	tj_key(o, "event", &first);
	tj_str(o, ev->event);
	tj_key(o, "threaded_by", &first);
	tj_str(o, ev->threaded_by);
	tj_key(o, "account", &first);
	tj_str(o, ev->account);
	tj_key(o, "uid", &first);
	tj_str(o, ev->uid);
	tj_key(o, "message_id", &first);
	if (ev->message_id != NULL)
		tj_str(o, ev->message_id);
	else
		g_string_append(o, "null");
	tj_key(o, "from", &first);
	tj_str(o, ev->from);
	tj_key(o, "subject", &first);
	tj_str(o, ev->subject);
	tj_key(o, "received", &first);
	ticket_iso_time(o, ev->received);
	tj_key(o, "date", &first);
	ticket_iso_time(o, ev->date);
	tj_key(o, "headers", &first);
	g_string_append_c(o, '[');
	for (i = 0; i < count; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		int hf = 1;

		g_string_append(o, i > 0 ? ",{" : "{");
		tj_key(o, "name", &hf);
		tj_str(o, g_mime_header_get_name(h));
		tj_key(o, "value", &hf);
		tj_str(o, g_mime_header_get_value(h));
		g_string_append_c(o, '}');
	}
	g_string_append_c(o, ']');
	if (body != NULL && strlen(body) > TICKET_BODY_MAX) {
		/* Cut on a character boundary: make_valid in tj_str would
		 * otherwise add a U+FFFD for half a character. */
		const char *end = g_utf8_find_prev_char(body, body + TICKET_BODY_MAX + 1);

		body[end != NULL ? end - body : TICKET_BODY_MAX] = '\0';
		truncated = 1;
	}
	tj_key(o, "body", &first);
	tj_str(o, body != NULL ? body : "");
	tj_key(o, "body_truncated", &first);
	g_string_append(o, truncated ? "true" : "false");
	tj_key(o, "attachments", &first);
	g_string_append_c(o, '[');
	w.out = o;
	g_mime_message_foreach(m, ticket_attachment, &w);
	g_string_append_c(o, ']');
	if (w.count > TICKET_ATTACH_MAX) {
		tj_key(o, "attachments_omitted", &first);
		g_string_append_printf(o, "%d", w.count - TICKET_ATTACH_MAX);
	}
	g_string_append(o, "}\n");
	g_free(body);
	if (w.failed) {
		g_string_free(o, TRUE);
		return NULL;
	}
	return g_string_free(o, FALSE);
}

/* ------------------------------------------------------------- webhook */

static int ticket_curl_users;

int
ticket_curl_init(struct ticket *t, mm_ctx *ctx)
{
	if (ticket_curl_users == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		mm_ctx_error(ctx, NULL, "libcurl could not be initialised");
		return -1;
	}
	ticket_curl_users++;
	t->curl_ready = 1;
	return 0;
}

void
ticket_curl_fini(struct ticket *t)
{
	if (!t->curl_ready)
		return;
	t->curl_ready = 0;
	if (--ticket_curl_users == 0)
		curl_global_cleanup();
}

static size_t
ticket_curl_sink(char *data, size_t size, size_t n, void *arg)
{
	GString *s = arg;
	size_t len = size * n;

	if (s->len < TICKET_RESPONSE_MAX)
		g_string_append_len(s, data, (gssize)MIN(len, TICKET_RESPONSE_MAX - s->len));
	return len;
}

int
ticket_export_post(struct ticket *t, mm_ctx *ctx, const char *json, const char *idem_key)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	GString *answer = g_string_new(NULL);
	char errbuf[CURL_ERROR_SIZE] = "", *idem = g_strdup_printf("Idempotency-Key: %s", idem_key);
	long status = 0;
	CURLcode rc;
	int ok = c != NULL;

	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, idem);
	hdrs = curl_slist_append(hdrs, "Expect:");
	ok = ok && hdrs != NULL;
	/* TLS verification is libcurl's default; set anyway so that nobody
	 * relaxes it by accident elsewhere.  No redirects: a POST that moves is
	 * a configuration error the log should show. */
	ok = ok && curl_easy_setopt(c, CURLOPT_URL, t->webhook_url) == CURLE_OK &&
	     curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
	     curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
	     curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
	     curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
	     curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
	     curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)t->webhook_timeout) == CURLE_OK &&
	     curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs) == CURLE_OK &&
	     curl_easy_setopt(c, CURLOPT_POSTFIELDS, json) == CURLE_OK &&
	     curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(json)) == CURLE_OK &&
	     curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ticket_curl_sink) == CURLE_OK &&
	     curl_easy_setopt(c, CURLOPT_WRITEDATA, answer) == CURLE_OK &&
	     curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf) == CURLE_OK &&
	     curl_easy_setopt(c, CURLOPT_USERAGENT, "mailmill-ticket/1.0") == CURLE_OK &&
	     (t->webhook_ca_file == NULL ||
	      curl_easy_setopt(c, CURLOPT_CAINFO, t->webhook_ca_file) == CURLE_OK);
	if (!ok) {
		mm_log(ctx, MM_LOG_ERROR, "webhook: cannot set up libcurl");
		goto out;
	}
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		mm_log(ctx, MM_LOG_WARNING, "webhook %s: %s", t->webhook_url,
		       errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
		ok = 0;
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		char *shown = g_strescape(answer->str, NULL);

		mm_log(ctx, MM_LOG_WARNING, "webhook %s: HTTP %ld: %.200s", t->webhook_url, status,
		       shown);
		g_free(shown);
		ok = 0;
	}
out:
	curl_slist_free_all(hdrs);
	if (c != NULL)
		curl_easy_cleanup(c);
	g_string_free(answer, TRUE);
	g_free(idem);
	return ok ? 0 : -1;
}

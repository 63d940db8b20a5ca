/* mailmill - ISC licence, see LICENSE */
/*
 * Outgoing mail: mm_queue, mm_queue_raw and the reply helpers stage a mail
 * on the message, checked now; it reaches the outbox with the message's
 * verdict (api.c, api_batch_commit).
 */
#include <string.h>
#include "daemon/run/api.h"
#include "daemon/run/api_int.h"
#include "daemon/run/reply.h"

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

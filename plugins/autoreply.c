/* mailmill - ISC licence, see LICENSE */
/*
 * The `autoreply` plugin: a vacation responder by RFC 3834 and RFC 5230.
 *
 *   { plugin = "autoreply";
 *     addresses = [ "help@example.org" ];   # reply only to mail addressed to these
 *     from = "Help Desk <help@example.org>";
 *     subject = "Out of office: {subject}"; # optional; default "Re: <subject>"
 *     body = "...";  or  body_file = "/etc/mailmill/away.txt";
 *     days = 7;              # one reply per sender (and handle) per this many days
 *     handle = "away-2024";  # optional: a new handle answers everybody again
 *     max_per_hour = 30;     # global cap
 *     spam_header = "X-Spam-Flag"; spam_value = "YES";   # optional
 *     loop_marker = "...";   # X-Loop value; default "mailmill autoreply <from address>"
 *     verdict = "pass"; }    # or "done" / "keep"
 *
 * The reply is staged with the message (mm_reply_queue) and the per-sender and
 * per-hour records with it (mm_kv_put), so both commit with the verdict: a
 * message fetched again after a crash is never answered twice.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <mailmill/plugin.h>
#include "common/autoreply_rules.h"

#define AUTOREPLY_BODY_MAX (64 * 1024)
#define AUTOREPLY_MAX_ADDRESSES 100

struct autoreply {
	autoreply_rules rules;
	char *from, *from_addr, *subject, *body, *handle, *marker;
	char *spam_header, *spam_value;
	long long days;
	long long max_per_hour;
	mm_verdict verdict;
};

static const char *const autoreply_keys[] = {
	"addresses", "from", "subject", "body", "body_file", "days", "handle", "max_per_hour",
	"spam_header", "spam_value", "loop_marker", "verdict", NULL
};

static void
autoreply_free(void *p)
{
	struct autoreply *a = p;

	if (a == NULL)
		return;
	g_strfreev(a->rules.addresses);
	g_free(a->from);
	g_free(a->from_addr);
	g_free(a->subject);
	g_free(a->body);
	g_free(a->handle);
	g_free(a->marker);
	g_free(a->spam_header);
	g_free(a->spam_value);
	g_free(a);
}

static int
autoreply_read_file(mm_ctx *ctx, const config_setting_t *s, const char *path, char **out)
{
	gchar *text = NULL;
	gsize len = 0;
	GError *ge = NULL;

	if (!g_file_get_contents(path, &text, &len, &ge)) {
		mm_ctx_error(ctx, s, "`body_file` %s: %s", path, ge->message);
		g_error_free(ge);
		return -1;
	}
	if (len > AUTOREPLY_BODY_MAX || !g_utf8_validate(text, (gssize)len, NULL) ||
	    strlen(text) != len) {
		mm_ctx_error(ctx, s, "`body_file` %s: must be UTF-8 text of at most %d bytes", path,
			     AUTOREPLY_BODY_MAX);
		g_free(text);
		return -1;
	}
	*out = text;
	return 0;
}

/* The bare address of a From setting, or NULL. */
static char *
autoreply_addr_of(const char *from)
{
	InternetAddressList *l = internet_address_list_parse(NULL, from);
	char *a = NULL;

	if (l != NULL && internet_address_list_length(l) == 1) {
		InternetAddress *ia = internet_address_list_get_address(l, 0);

		if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
			const char *s = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));

			if (s != NULL && strchr(s, '@') != NULL)
				a = g_ascii_strdown(s, -1);
		}
	}
	if (l != NULL)
		g_object_unref(l);
	return a;
}

static int
autoreply_init(mm_ctx *ctx, const config_setting_t *g, void **state)
{
	struct autoreply *a = g_new0(struct autoreply, 1);
	char *body_file = NULL;
	int bad = mm_settings_check(ctx, g, autoreply_keys) < 0, n;

	a->days = 7;
	a->max_per_hour = 30;
	a->verdict = MM_PASS;
	n = mm_setting_addresses(ctx, g, "addresses", AUTOREPLY_MAX_ADDRESSES, &a->rules.addresses);
	if (n == 0)
		mm_ctx_error(ctx, g, "`addresses` is required: a list of the addresses"
			     " this responder answers for, e.g. [ \"help@example.org\" ]");
	if (n <= 0)
		bad = 1;
	if (mm_setting_string(ctx, g, "from", &a->from) <= 0) {
		if (a->from == NULL)
			mm_ctx_error(ctx, g, "`from` is required, e.g. \"Help Desk <help@example.org>\"");
		bad = 1;
	} else if ((a->from_addr = autoreply_addr_of(a->from)) == NULL) {
		mm_ctx_error(ctx, config_setting_get_member(g, "from"),
			     "`from` \"%s\" is not one address", a->from);
		bad = 1;
	}
	if (mm_setting_string(ctx, g, "subject", &a->subject) < 0)
		bad = 1;
	n = mm_setting_string(ctx, g, "body", &a->body);
	if (n < 0 || mm_setting_string(ctx, g, "body_file", &body_file) < 0) {
		bad = 1;
	} else if ((a->body != NULL) == (body_file != NULL)) {
		mm_ctx_error(ctx, g, "set exactly one of `body` and `body_file`");
		bad = 1;
	} else if (body_file != NULL &&
		   autoreply_read_file(ctx, config_setting_get_member(g, "body_file"), body_file,
				       &a->body) < 0) {
		bad = 1;
	}
	g_free(body_file);
	if (mm_setting_int(ctx, g, "days", 1, 365, &a->days) < 0 ||
	    mm_setting_int(ctx, g, "max_per_hour", 1, 100000, &a->max_per_hour) < 0)
		bad = 1;
	if (mm_setting_string(ctx, g, "handle", &a->handle) < 0 ||
	    mm_setting_string(ctx, g, "spam_header", &a->spam_header) < 0 ||
	    mm_setting_string(ctx, g, "spam_value", &a->spam_value) < 0 ||
	    mm_setting_string(ctx, g, "loop_marker", &a->marker) < 0)
		bad = 1;
	if (a->marker != NULL && (*a->marker == '\0' || strpbrk(a->marker, "\r\n") != NULL)) {
		mm_ctx_error(ctx, config_setting_get_member(g, "loop_marker"),
			     "`loop_marker` must be one line of text");
		bad = 1;
	}
	if (a->spam_value != NULL && a->spam_header == NULL) {
		mm_ctx_error(ctx, g, "`spam_value` needs `spam_header`");
		bad = 1;
	}
	if (mm_setting_verdict(ctx, g, "verdict", MM_VERDICT_BIT(MM_PASS) | MM_VERDICT_BIT(MM_DONE) |
			       MM_VERDICT_BIT(MM_KEEP), &a->verdict) < 0)
		bad = 1;
	if (bad) {
		autoreply_free(a);
		return -1;
	}
	if (a->handle == NULL)
		a->handle = g_strdup("default");
	if (a->marker == NULL)
		a->marker = g_strdup_printf("mailmill autoreply %s", a->from_addr);
	a->rules.loop_marker = a->marker;
	a->rules.spam_header = a->spam_header;
	a->rules.spam_value = a->spam_value;
	*state = a;
	return 0;
}

/* autoreply_walk_fn over the daemon's header fields. */
static int
autoreply_walk(void *msg, autoreply_field_fn fn, void *arg)
{
	return mm_msg_headers(msg, fn, arg);
}

/* The original's subject, decoded (g_free), for {subject}. */
static char *
autoreply_orig_subject(mm_msg *msg)
{
	char *raw = mm_msg_header(msg, "Subject"), *s;

	if (raw == NULL)
		return NULL;
	s = g_mime_utils_header_decode_text(NULL, raw);
	g_free(raw);
	return s;
}

/*
 * The whole decision reads header fields only (mm_msg_header, not
 * mm_msg_mime) and the reply is queued as text (mm_reply_queue): the MIME
 * tree of every message answered cost more than the rest of this stage.
 */
static mm_verdict
autoreply_process(void *state, mm_msg *msg, mm_ctx *ctx)
{
	struct autoreply *a = state;
	const char *why = NULL, *extra[2];
	char buf[400], *rcpt = NULL, *lrcpt = NULL, *key = NULL, *hkey = NULL, *v, *t;
	char *osubj = NULL, *subj = NULL, *body = NULL, *loop = NULL;
	long long now = (long long)time(NULL), count = 0;
	mm_verdict verdict = a->verdict;

	rcpt = mm_reply_rcpt(ctx, msg, &why);
	if (rcpt == NULL) {
		/* Nobody to answer, but the other rules may say more about why. */
		const char *why2 = autoreply_skip(&a->rules, autoreply_walk, msg, NULL, buf,
						  sizeof(buf));

		mm_log(ctx, MM_LOG_INFO, "uid %s: no reply: %s", mm_msg_uid(msg),
		       why2 != NULL && strcmp(why2, "no sender to reply to") != 0 ? why2 : why);
		return a->verdict;
	}
	lrcpt = g_ascii_strdown(rcpt, -1);
	if ((why = autoreply_skip(&a->rules, autoreply_walk, msg, lrcpt, buf, sizeof(buf))) != NULL)
		goto skip;
	key = g_strdup_printf("sent/%s/%s", a->handle, lrcpt);
	if ((v = mm_kv_get(ctx, key)) != NULL) {
		snprintf(buf, sizeof(buf), "already answered <%s> within %lld day(s)", lrcpt, a->days);
		g_free(v);
		why = buf;
		goto skip;
	}
	hkey = g_strdup_printf("hour/%lld", now / 3600);
	if ((v = mm_kv_get(ctx, hkey)) != NULL) {
		count = strtoll(v, NULL, 10);
		g_free(v);
	}
	if (count >= a->max_per_hour) {
		snprintf(buf, sizeof(buf), "the cap of %lld replies per hour is reached", a->max_per_hour);
		why = buf;
		goto skip;
	}
	osubj = autoreply_orig_subject(msg);
	if (a->subject != NULL)
		subj = autoreply_expand(a->subject, osubj, rcpt);
	body = autoreply_expand(a->body, osubj, rcpt);
	loop = g_strdup_printf("X-Loop: %s", a->marker);
	extra[0] = loop;
	extra[1] = NULL;
	if (mm_reply_queue(ctx, msg, a->from, rcpt, subj, extra, body, MM_QUEUE_DSN_NEVER) < 0) {
		/* Our own mistake (a bad address): answering later would not help. */
		why = "the reply could not be queued";
		goto skip;
	}
	snprintf(buf, sizeof(buf), "%lld", now);
	t = g_strdup_printf("%lld", count + 1);
	if (mm_kv_put(ctx, msg, key, buf, now + a->days * 86400) < 0 ||
	    mm_kv_put(ctx, msg, hkey, t, (now / 3600 + 2) * 3600) < 0) {
		mm_log(ctx, MM_LOG_ERROR, "uid %s: cannot record the reply: deferring", mm_msg_uid(msg));
		verdict = MM_DEFER;
	} else {
		mm_log(ctx, MM_LOG_INFO, "uid %s: replying to <%s>%s", mm_msg_uid(msg), rcpt,
		       mm_ctx_dry_run(ctx) ? " (dry run: not queued)" : "");
	}
	g_free(t);
	goto out;
skip:
	mm_log(ctx, MM_LOG_INFO, "uid %s: no reply to <%s>: %s", mm_msg_uid(msg), rcpt, why);
out:
	g_free(rcpt);
	g_free(lrcpt);
	g_free(key);
	g_free(hkey);
	g_free(osubj);
	g_free(subj);
	g_free(body);
	g_free(loop);
	return verdict;
}

const struct mailmill_plugin mailmill_plugin = {
	.abi = MAILMILL_PLUGIN_ABI,
	.name = "autoreply",
	.version = "1.0",
	.init = autoreply_init,
	.process = autoreply_process,
	.sync = NULL,
	.fini = autoreply_free,
};

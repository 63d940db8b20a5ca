/* mailmill - ISC licence, see LICENSE */
/*
 * The `ticket` plugin: a support mailbox whose mail becomes tickets.
 *
 *   { plugin = "ticket";
 *     queue = "default";                  # stages with one queue share tickets
 *     prefix = "Ticket";                  # {prefix} in subject_tag
 *     subject_tag = "[{prefix}#%06d]";
 *     from = "Support <support@example.org>";
 *     acknowledge = true; ack_subject = "{tag} {subject}"; ack_body = "...";
 *     notify = [ "staff@example.org" ];
 *     json_dir = "/var/lib/mailmill/tickets";
 *     mode = "0600"; group = "helpdesk";    # json_dir files
 *     webhook_url = "https://helpdesk.example.org/hook"; webhook_timeout = "30s";
 *     open_for_robots = false;            # bounces, lists, auto-replies
 *     verdict = "pass"; }
 *
 * Robots (ticket_robot): a bounce, an automatic reply, list or bulk mail
 * opens no ticket unless open_for_robots is set: it passes on (one log line
 * says why) with no ticket, acknowledgement or notification.  One that
 * threads into an existing ticket (In-Reply-To, References, or the tag of a
 * ticket its sender takes part in) is still recorded as a follow-up, so
 * staff see an out-of-office answer or a bounce of their reply; follow-ups
 * are never acknowledged.
 *
 * State, in the namespace "ticket:<queue>" (mm_kv_*_ns), staged with the
 * message and committed with its verdict:
 *   mid:<Message-ID>      ticket number: messages taken in, acknowledgements
 *                         and notifications sent (threading, de-duplication)
 *   t:<n>                 the ticket exists: "<opened> <account> <requester>"
 *   p:<n>:<address>       "requester" or "participant"
 * and, committed at once:
 *   seq "number"          ticket numbers (mm_seq_next)
 *   claim:<Message-ID>    "<account>\t<uid>\t<n>\t<event>": who is taking
 *                         the message in (mm_kv_claim_ns)
 *
 * Never two tickets for one message, the decision: the claim, not a UNIQUE
 * constraint at commit time.  Two workers that fetch the same Message-ID
 * from two mailboxes at once both find no mid: key; the first to claim
 * wins, the other defers (its copy stays on the server and the next run
 * finds the committed mid: key: not taken in twice).  A constraint checked
 * at commit would catch the race too, but only after both had exported
 * (JSON, webhook): the claim stops the loser before it exports anything.
 * A message that claimed and is then deferred (webhook down) or lost in a
 * crash finds its own claim on the next run and takes the same number
 * again: a retry never burns a second number, its files and webhook call
 * repeat with the same names and Idempotency-Key.  A number is burnt only
 * by the loser of a race (gaps are fine; repeats never happen).  Claims
 * expire after TICKET_CLAIM_TTL, so a message that never comes back does
 * not hold its Message-ID for ever.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "ticket.h"

#define TICKET_CLAIM_TTL (7LL * 86400)
#define TICKET_MAX_NOTIFY 50
#define TICKET_NOTIFY_BODY_MAX (64 * 1024)

static const char *const ticket_keys[] = {
	"queue", "prefix", "subject_tag", "from", "acknowledge", "ack_subject", "ack_body",
	"notify", "addresses", "loop_marker", "spam_header", "spam_value", "json_dir",
	"webhook_url", "webhook_ca_file", "webhook_timeout", "verdict", "mode", "group",
	"open_for_robots", NULL
};

static const char ticket_default_body[] =
	"Hello,\n\nyour message has been received and given the number {ticket}.\n"
	"Please keep {tag} in the subject of any reply about it.\n";

static void
ticket_free(void *p)
{
	struct ticket *t = p;

	if (t == NULL)
		return;
	ticket_export_drop(t);
	if (t->pending != NULL)
		g_ptr_array_unref(t->pending);
	ticket_curl_fini(t);
	g_free(t->queue);
	g_free(t->ns);
	g_free(t->tag_pre);
	g_free(t->tag_post);
	g_free(t->tag_fmt);
	g_free(t->from);
	g_free(t->from_addr);
	g_free(t->marker);
	g_free(t->ack_subject);
	g_free(t->ack_body);
	g_strfreev(t->notify);
	g_strfreev(t->rules.addresses);
	g_free((char *)t->rules.spam_header);
	g_free((char *)t->rules.spam_value);
	g_free(t->json_dir);
	g_free(t->webhook_url);
	g_free(t->webhook_ca_file);
	g_free(t);
}

/* The bare address (lower case) of the first mailbox in a list, or NULL. */
static char *
ticket_first_addr(InternetAddressList *l)
{
	int n = l != NULL ? internet_address_list_length(l) : 0;

	for (int i = 0; i < n; i++) {
		InternetAddress *ia = internet_address_list_get_address(l, i);

		if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
			const char *a = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));

			if (a != NULL && strchr(a, '@') != NULL)
				return g_ascii_strdown(a, -1);
		}
	}
	return NULL;
}

static char *
ticket_addr_of(const char *from)
{
	InternetAddressList *l = internet_address_list_parse(NULL, from);
	char *a = ticket_first_addr(l);

	if (l != NULL)
		g_object_unref(l);
	return a;
}

/*
 * Split the tag format around its one %d (flags 0 and a width allowed):
 * pre and post are the literal text with %% undone.  -1 if not exactly one.
 */
static int
ticket_tag_parse(const char *fmt, char **pre, char **post)
{
	GString *p = g_string_new(NULL), *q = g_string_new(NULL), *cur = p;
	int conv = 0;

	for (const char *s = fmt; *s; s++) {
		if (*s != '%') {
			g_string_append_c(cur, *s);
			continue;
		}
		if (s[1] == '%') {
			g_string_append_c(cur, '%');
			s++;
			continue;
		}
		s++;
		if (*s == '0')
			s++;
		for (int w = 0; g_ascii_isdigit(*s) && w < 2; w++)
			s++;
		if (*s != 'd' || conv++ > 0)
			goto bad;
		cur = q;
	}
	if (conv != 1 || p->len == 0)
		goto bad;
	*pre = g_string_free(p, FALSE);
	*post = g_string_free(q, FALSE);
	return 0;
bad:
	g_string_free(p, TRUE);
	g_string_free(q, TRUE);
	return -1;
}

static int
ticket_init(mm_ctx *ctx, const config_setting_t *g, void **state)
{
	struct ticket *t = g_new0(struct ticket, 1);
	const config_setting_t *s;
	char *prefix = NULL, *tag = NULL, *sh = NULL, *sv = NULL;
	int bad = mm_settings_check(ctx, g, ticket_keys) < 0;
	GString *fmt;

	t->acknowledge = 1;
	t->webhook_timeout = 30;
	t->verdict = MM_PASS;
	if (mm_setting_string(ctx, g, "queue", &t->queue) < 0 || mm_setting_string(ctx, g, "prefix", &prefix) < 0 ||
	    mm_setting_string(ctx, g, "subject_tag", &tag) < 0)
		bad = 1;
	if (t->queue == NULL)
		t->queue = g_strdup("default");
	if (prefix == NULL)
		prefix = g_strdup("Ticket");
	if (strpbrk(prefix, "%{}\r\n") != NULL) {
		mm_ctx_error(ctx, config_setting_get_member(g, "prefix"),
			     "`prefix` must not contain %%, braces or line breaks");
		bad = 1;
	}
	/* {prefix} replaced first, so that the prefix is literal text. */
	fmt = g_string_new(NULL);
	for (const char *p = tag != NULL ? tag : "[{prefix}#%06d]"; *p; p++) {
		if (strncmp(p, "{prefix}", 8) == 0) {
			g_string_append(fmt, prefix);
			p += 7;
		} else
			g_string_append_c(fmt, *p);
	}
	t->tag_fmt = g_string_free(fmt, FALSE);
	if (ticket_tag_parse(t->tag_fmt, &t->tag_pre, &t->tag_post) < 0 ||
	    strpbrk(t->tag_fmt, "\r\n") != NULL) {
		mm_ctx_error(ctx, s = config_setting_get_member(g, "subject_tag"),
			     "`subject_tag` must hold exactly one %%d (e.g. %%06d) after some text,"
			     " e.g. \"[{prefix}#%%06d]\"");
		bad = 1;
	}
	t->ns = g_strdup_printf("ticket:%s", t->queue);
	if (mm_setting_string(ctx, g, "from", &t->from) <= 0) {
		if (t->from == NULL)
			mm_ctx_error(ctx, g, "`from` is required, e.g. \"Support <support@example.org>\"");
		bad = 1;
	} else if ((t->from_addr = ticket_addr_of(t->from)) == NULL) {
		mm_ctx_error(ctx, config_setting_get_member(g, "from"), "`from` \"%s\" is not an address",
			     t->from);
		bad = 1;
	}
	if (mm_setting_bool(ctx, g, "acknowledge", &t->acknowledge) < 0 ||
	    mm_setting_bool(ctx, g, "open_for_robots", &t->open_for_robots) < 0 ||
	    perms_settings(ctx, g, 0, &t->perms) < 0)
		bad = 1;
	if (mm_setting_string(ctx, g, "ack_subject", &t->ack_subject) < 0 ||
	    mm_setting_string(ctx, g, "ack_body", &t->ack_body) < 0 ||
	    mm_setting_string(ctx, g, "loop_marker", &t->marker) < 0 ||
	    mm_setting_string(ctx, g, "spam_header", &sh) < 0 || mm_setting_string(ctx, g, "spam_value", &sv) < 0 ||
	    mm_setting_addresses(ctx, g, "notify", TICKET_MAX_NOTIFY, &t->notify) < 0 ||
	    mm_setting_addresses(ctx, g, "addresses", TICKET_MAX_NOTIFY, &t->rules.addresses) < 0)
		bad = 1;
	if (sv != NULL && sh == NULL) {
		mm_ctx_error(ctx, g, "`spam_value` needs `spam_header`");
		bad = 1;
	}
	if (mm_setting_string(ctx, g, "json_dir", &t->json_dir) < 0 ||
	    mm_setting_string(ctx, g, "webhook_url", &t->webhook_url) < 0 ||
	    mm_setting_string(ctx, g, "webhook_ca_file", &t->webhook_ca_file) < 0)
		bad = 1;
	if (t->json_dir != NULL && (t->json_dir[0] != '/' ||
				    !g_file_test(t->json_dir, G_FILE_TEST_IS_DIR))) {
		mm_ctx_error(ctx, config_setting_get_member(g, "json_dir"),
			     "`json_dir` %s must be an absolute path to an existing directory",
			     t->json_dir);
		bad = 1;
	}
	if (t->webhook_url != NULL && g_ascii_strncasecmp(t->webhook_url, "https://", 8) != 0 &&
	    g_ascii_strncasecmp(t->webhook_url, "http://", 7) != 0) {
		mm_ctx_error(ctx, config_setting_get_member(g, "webhook_url"),
			     "`webhook_url` must be an http:// or https:// URL");
		bad = 1;
	}
	/* A duration ("30s", "2m"); a plain number is seconds, as before. */
	if (mm_setting_duration(ctx, g, "webhook_timeout", 1, 600, &t->webhook_timeout) < 0 ||
	    mm_setting_verdict(ctx, g, "verdict", MM_VERDICT_BIT(MM_PASS) | MM_VERDICT_BIT(MM_DONE) |
			       MM_VERDICT_BIT(MM_KEEP), &t->verdict) < 0)
		bad = 1;
	g_free(prefix);
	g_free(tag);
	t->rules.spam_header = sh;
	t->rules.spam_value = sv;
	t->rules.any_recipient = t->rules.addresses == NULL;
	if (!bad && t->webhook_url != NULL && ticket_curl_init(t, ctx) < 0)
		bad = 1;
	if (bad) {
		ticket_free(t);
		return -1;
	}
	if (t->marker == NULL)
		t->marker = g_strdup_printf("mailmill ticket %s", t->from_addr);
	t->rules.loop_marker = t->marker;
	if (t->ack_subject == NULL)
		t->ack_subject = g_strdup("{tag} {subject}");
	if (t->ack_body == NULL)
		t->ack_body = g_strdup(ticket_default_body);
	*state = t;
	return 0;
}

/* The ticket number in the subject's tag (ours: this prefix), or 0. */
static long long
ticket_tag_find(const struct ticket *t, const char *subject)
{
	size_t np = strlen(t->tag_pre), nq = strlen(t->tag_post);

	for (const char *p = subject; p != NULL && *p; p++) {
		const char *d = p + np, *e;
		long long n = 0;

		if (g_ascii_strncasecmp(p, t->tag_pre, np) != 0)
			continue;
		while (*d == ' ')
			d++;
		for (e = d; g_ascii_isdigit(*e) && e - d < 18; e++)
			n = n * 10 + (*e - '0');
		if (e > d && n > 0 && g_ascii_strncasecmp(e, t->tag_post, nq) == 0)
			return n;
	}
	return 0;
}

static char *
ticket_tag(const struct ticket *t, long long n)
{
	/* tag_fmt was checked in init to hold one %d and nothing else. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	return g_strdup_printf(t->tag_fmt, (int)n);
#pragma GCC diagnostic pop
}

/* {ticket} and {tag}, then autoreply's {subject} and {sender}.  g_free. */
static char *
ticket_expand(const char *tmpl, long long n, const char *tag, const char *subject,
	      const char *sender)
{
	GString *s = g_string_new(NULL);
	char *out;

	for (const char *p = tmpl; *p; p++) {
		if (strncmp(p, "{ticket}", 8) == 0) {
			g_string_append_printf(s, "%lld", n);
			p += 7;
		} else if (strncmp(p, "{tag}", 5) == 0) {
			g_string_append(s, tag);
			p += 4;
		} else
			g_string_append_c(s, *p);
	}
	out = autoreply_expand(s->str, subject, sender);
	g_string_free(s, TRUE);
	return out;
}

static GMimeObject *
ticket_text_part(const char *text)
{
	GMimeTextPart *p = g_mime_text_part_new_with_subtype("plain");

	g_mime_text_part_set_text(p, text);
	g_mime_object_encode(GMIME_OBJECT(p), GMIME_ENCODING_CONSTRAINT_7BIT);
	return GMIME_OBJECT(p);
}

/* A new Message-ID in our domain, set on mail; returns it (borrowed from mail). */
static const char *
ticket_set_id(const struct ticket *t, GMimeMessage *mail)
{
	const char *at = strrchr(t->from_addr, '@');
	char *id = g_mime_utils_generate_message_id(at != NULL ? at + 1 : "localhost");

	g_mime_message_set_message_id(mail, id);
	g_free(id);
	return g_mime_message_get_message_id(mail);
}

/* autoreply_walk_fn over the daemon's header fields. */
static int
ticket_walk(void *msg, autoreply_field_fn fn, void *arg)
{
	return mm_msg_headers(msg, fn, arg);
}

/* Acknowledge a new ticket (RFC 3834 rules).  The ack's Message-ID is
 * recorded so that a reply to it threads into the ticket. */
static void
ticket_ack(struct ticket *t, mm_ctx *ctx, mm_msg *msg, long long n, const char *tag)
{
	GMimeMessage *orig = mm_msg_mime(msg), *ack;
	const char *why = NULL, *osubj = g_mime_message_get_subject(orig), *rcpts[1], *id;
	char buf[400], *rcpt = NULL, *lrcpt = NULL, *txt;

	ack = mm_reply_new(ctx, msg, t->from, &rcpt, &why);
	if (ack == NULL) {
		mm_log(ctx, MM_LOG_INFO, "uid %s: ticket %lld: no acknowledgement: %s",
		       mm_msg_uid(msg), n, why);
		return;
	}
	lrcpt = g_ascii_strdown(rcpt, -1);
	if ((why = autoreply_skip(&t->rules, ticket_walk, msg, lrcpt, buf, sizeof(buf))) != NULL) {
		mm_log(ctx, MM_LOG_INFO, "uid %s: ticket %lld: no acknowledgement to <%s>: %s",
		       mm_msg_uid(msg), n, rcpt, why);
		goto out;
	}
	g_mime_object_set_header(GMIME_OBJECT(ack), "X-Loop", t->marker, NULL);
	txt = ticket_expand(t->ack_subject, n, tag, osubj, rcpt);
	g_mime_message_set_subject(ack, txt, "utf-8");
	g_free(txt);
	txt = ticket_expand(t->ack_body, n, tag, osubj, rcpt);
	{
		GMimeObject *body = ticket_text_part(txt);

		g_mime_message_set_mime_part(ack, body);
		g_object_unref(body);
	}
	g_free(txt);
	id = ticket_set_id(t, ack);
	rcpts[0] = rcpt;
	if (mm_queue(ctx, msg, ack, "", rcpts, 1, MM_QUEUE_DSN_NEVER) < 0)
		goto out;
	if (id != NULL) {
		char *key = g_strdup_printf("mid:%s", id), *nstr = g_strdup_printf("%lld", n);

		(void)mm_kv_put_ns(ctx, msg, t->ns, key, nstr, 0);
		g_free(key);
		g_free(nstr);
	}
	mm_log(ctx, MM_LOG_INFO, "uid %s: ticket %lld: acknowledging to <%s>", mm_msg_uid(msg), n,
	       rcpt);
out:
	g_object_unref(ack);
	g_free(rcpt);
	g_free(lrcpt);
}

/* Tell the staff (except the sender); their replies thread by References. */
static void
ticket_notify(struct ticket *t, mm_ctx *ctx, mm_msg *msg, const ticket_event *ev)
{
	GMimeMessage *orig = mm_msg_mime(msg), *mail;
	const char *rcpts[TICKET_MAX_NOTIFY], *id, *oid = g_mime_message_get_message_id(orig);
	size_t n = 0;
	GString *body;
	char *text, *subj;

	for (char **a = t->notify; a != NULL && *a != NULL && n < TICKET_MAX_NOTIFY; a++)
		if (ev->from == NULL || strcmp(*a, ev->from) != 0)
			rcpts[n++] = *a;
	if (n == 0)
		return;
	mail = g_mime_message_new(TRUE);
	g_mime_message_add_mailbox(mail, GMIME_ADDRESS_TYPE_FROM, NULL, t->from_addr);
	g_mime_message_add_mailbox(mail, GMIME_ADDRESS_TYPE_REPLY_TO, NULL, t->from_addr);
	for (size_t i = 0; i < n; i++)
		g_mime_message_add_mailbox(mail, GMIME_ADDRESS_TYPE_TO, NULL, rcpts[i]);
	subj = g_strdup_printf("%s %s: %s", ev->tag, ev->event, ev->subject != NULL ? ev->subject : "");
	g_mime_message_set_subject(mail, subj, "utf-8");
	g_free(subj);
	g_mime_object_set_header(GMIME_OBJECT(mail), "Auto-Submitted", "auto-generated", NULL);
	g_mime_object_set_header(GMIME_OBJECT(mail), "X-Loop", t->marker, NULL);
	if (oid != NULL) {
		char *ref = g_strdup_printf("<%s>", oid);

		g_mime_object_set_header(GMIME_OBJECT(mail), "References", ref, NULL);
		g_free(ref);
	}
	body = g_string_new(NULL);
	g_string_append_printf(body, "Ticket %lld (%s) %s by %s via %s.\nSubject: %s\n\n",
			       ev->number, ev->tag, ev->event, ev->from != NULL ? ev->from : "?",
			       ev->account, ev->subject != NULL ? ev->subject : "");
	{
		GMimeObject *b = g_mime_message_get_body(orig);

		text = b != NULL && GMIME_IS_TEXT_PART(b) ? g_mime_text_part_get_text(GMIME_TEXT_PART(b))
							 : NULL;
	}
	if (text != NULL) {
		char *valid = g_utf8_make_valid(text, (gssize)MIN(strlen(text), TICKET_NOTIFY_BODY_MAX));

		g_string_append(body, valid);
		g_free(valid);
		g_free(text);
	}
	{
		GMimeObject *part = ticket_text_part(body->str);

		g_mime_message_set_mime_part(mail, part);
		g_object_unref(part);
	}
	g_string_free(body, TRUE);
	id = ticket_set_id(t, mail);
	if (mm_queue(ctx, msg, mail, "", rcpts, n, MM_QUEUE_DSN_NEVER) == 0 && id != NULL) {
		char *key = g_strdup_printf("mid:%s", id), *nstr = g_strdup_printf("%lld", ev->number);

		(void)mm_kv_put_ns(ctx, msg, t->ns, key, nstr, 0);
		g_free(key);
		g_free(nstr);
	}
	g_object_unref(mail);
}

/* 1 if the message carries our X-Loop marker. */
static int
ticket_ours(const struct ticket *t, GMimeMessage *m)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(m));
	int count = g_mime_header_list_get_count(hl);

	for (int i = 0; i < count; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		char *v;
		int hit;

		if (g_ascii_strcasecmp(g_mime_header_get_name(h), "X-Loop") != 0)
			continue;
		v = g_strstrip(g_strdup(g_mime_header_get_value(h) != NULL ? g_mime_header_get_value(h) : ""));
		hit = g_ascii_strcasecmp(v, t->marker) == 0;
		g_free(v);
		if (hit)
			return 1;
	}
	return 0;
}

/* The ticket a Message-ID belongs to, or 0. */
static long long
ticket_by_id(struct ticket *t, mm_ctx *ctx, const char *id)
{
	char *key = g_strdup_printf("mid:%s", id), *v = mm_kv_get_ns(ctx, t->ns, key);
	long long n = v != NULL ? strtoll(v, NULL, 10) : 0;

	g_free(key);
	g_free(v);
	return n > 0 ? n : 0;
}

/* Threading by In-Reply-To, then References rightmost first. */
static long long
ticket_by_refs(struct ticket *t, mm_ctx *ctx, GMimeMessage *m, const char **how)
{
	static const char *const hdrs[] = { "In-Reply-To", "References" };
	long long n = 0;

	for (size_t h = 0; h < 2 && n == 0; h++) {
		const char *v = g_mime_object_get_header(GMIME_OBJECT(m), hdrs[h]);
		GMimeReferences *refs = v != NULL ? g_mime_references_parse(NULL, v) : NULL;
		int cnt = refs != NULL ? g_mime_references_length(refs) : 0;

		for (int i = cnt - 1; i >= 0 && i >= cnt - 100 && n == 0; i--)
			n = ticket_by_id(t, ctx, g_mime_references_get_message_id(refs, i));
		if (n > 0)
			*how = h == 0 ? "in-reply-to" : "references";
		if (refs != NULL)
			g_mime_references_free(refs);
	}
	return n;
}

/* 1 if addr is the requester or a participant of ticket n. */
static int
ticket_member(struct ticket *t, mm_ctx *ctx, long long n, const char *addr)
{
	char *key = g_strdup_printf("p:%lld:%s", n, addr), *v = mm_kv_get_ns(ctx, t->ns, key);
	int ok = v != NULL;

	g_free(key);
	g_free(v);
	return ok;
}

static int
ticket_put(struct ticket *t, mm_ctx *ctx, mm_msg *msg, const char *value, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int
ticket_put(struct ticket *t, mm_ctx *ctx, mm_msg *msg, const char *value, const char *fmt, ...)
{
	va_list ap;
	char *key;
	int rc;

	va_start(ap, fmt);
	key = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	rc = mm_kv_put_ns(ctx, msg, t->ns, key, value, 0);
	g_free(key);
	return rc;
}

/* Participants of a new ticket: the requester, and whoever is in Cc. */
static int
ticket_record_open(struct ticket *t, mm_ctx *ctx, mm_msg *msg, long long n, const char *sender)
{
	InternetAddressList *cc = g_mime_message_get_cc(mm_msg_mime(msg));
	int len = cc != NULL ? internet_address_list_length(cc) : 0, rc = 0;
	char *info = g_strdup_printf("%lld %s %s", (long long)time(NULL), mm_msg_account(msg),
				     sender != NULL ? sender : "");

	rc |= ticket_put(t, ctx, msg, info, "t:%lld", n);
	g_free(info);
	if (sender != NULL)
		rc |= ticket_put(t, ctx, msg, "requester", "p:%lld:%s", n, sender);
	for (int i = 0; i < len && i < 50; i++) {
		InternetAddress *ia = internet_address_list_get_address(cc, i);

		if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
			char *a = g_ascii_strdown(internet_address_mailbox_get_addr(
							  INTERNET_ADDRESS_MAILBOX(ia)), -1);

			if (strchr(a, '@') != NULL && g_ascii_strcasecmp(a, t->from_addr) != 0 &&
			    (sender == NULL || strcmp(a, sender) != 0))
				rc |= ticket_put(t, ctx, msg, "participant", "p:%lld:%s", n, a);
			g_free(a);
		}
	}
	return rc;
}

/*
 * Who is taking this message in: our own earlier claim (a retry: same
 * number), a fresh one, or somebody else's (-1: defer).  *n_io: the number
 * threading chose (0: a new ticket); replaced by the claim's.
 */
static int
ticket_claim(struct ticket *t, mm_ctx *ctx, mm_msg *msg, const char *ckey, long long *n_io,
	     int *opened_io)
{
	char *me = g_strdup_printf("%s\t%s\t", mm_msg_account(msg), mm_msg_uid(msg));
	char *holder = mm_kv_get_ns(ctx, t->ns, ckey), *value;
	int rc = 0;

	if (holder == NULL) {
		if (*n_io == 0 && mm_seq_next(ctx, t->ns, "number", n_io) < 0) {
			g_free(me);
			return -2;
		}
		value = g_strdup_printf("%s%lld\t%s", me, *n_io, *opened_io ? "opened" : "followup");
		rc = mm_kv_claim_ns(ctx, t->ns, ckey, value, (long long)time(NULL) + TICKET_CLAIM_TTL,
				    &holder);
		g_free(value);
		if (rc < 0) {
			g_free(me);
			return -2;
		}
	}
	if (holder != NULL) {
		if (strncmp(holder, me, strlen(me)) == 0) {
			char *end = NULL;
			long long n = strtoll(holder + strlen(me), &end, 10);

			if (n > 0 && end != NULL && *end == '\t') {
				*n_io = n;
				*opened_io = strcmp(end + 1, "opened") == 0;
			} else
				rc = -2;
		} else {
			mm_log(ctx, MM_LOG_INFO, "uid %s: being taken in by %s: deferred until that"
			       " commits", mm_msg_uid(msg), holder);
			rc = -1;
		}
		g_free(holder);
	}
	g_free(me);
	return rc;
}

static mm_verdict
ticket_process(void *state, mm_msg *msg, mm_ctx *ctx)
{
	struct ticket *t = state;
	GMimeMessage *m = mm_msg_mime(msg);
	const char *mid = g_mime_message_get_message_id(m), *how = "new";
	const char *subject = g_mime_message_get_subject(m);
	char *sender = ticket_first_addr(g_mime_message_get_from(m));
	char *ckey = NULL, *tag = NULL, *json = NULL, *base = NULL, *digest, *nstr;
	long long n = 0, tn;
	int opened, rc;
	guint mark;
	mm_verdict v = t->verdict;
	ticket_event ev;

	if (ticket_ours(t, m)) {
		mm_log(ctx, MM_LOG_INFO, "uid %s: carries our X-Loop marker: not taken in",
		       mm_msg_uid(msg));
		goto out;
	}
	if (mid != NULL && (n = ticket_by_id(t, ctx, mid)) > 0) {
		mm_log(ctx, MM_LOG_INFO, "uid %s: <%s> was already taken in (ticket %lld): not again",
		       mm_msg_uid(msg), mid, n);
		goto out;
	}
	n = ticket_by_refs(t, ctx, m, &how);
	if (n == 0 && (tn = ticket_tag_find(t, subject)) > 0) {
		char *key = g_strdup_printf("t:%lld", tn), *known = mm_kv_get_ns(ctx, t->ns, key);

		if (known == NULL)
			mm_log(ctx, MM_LOG_INFO, "uid %s: subject names ticket %lld, which does not"
			       " exist: a new ticket", mm_msg_uid(msg), tn);
		else if (sender == NULL || !ticket_member(t, ctx, tn, sender))
			mm_log(ctx, MM_LOG_INFO, "uid %s: <%s> is not a participant of ticket %lld"
			       " named in the subject: a new ticket", mm_msg_uid(msg),
			       sender != NULL ? sender : "", tn);
		else {
			n = tn;
			how = "subject";
		}
		g_free(key);
		g_free(known);
	}
	opened = n == 0;
	if (opened && !t->open_for_robots) {
		char why_buf[200];
		const char *why = autoreply_robot_mail(ticket_walk, msg, g_mime_message_get_mime_part(m),
							   why_buf, sizeof why_buf);

		if (why != NULL) {
			mm_log(ctx, MM_LOG_INFO, "uid %s: no ticket opened: %s (open_for_robots ="
			       " true would open one)", mm_msg_uid(msg), why);
			v = MM_PASS;
			goto out;
		}
	}
	ckey = mid != NULL ? g_strdup_printf("claim:%s", mid)
			   : g_strdup_printf("claim-uid:%s\t%s", mm_msg_account(msg), mm_msg_uid(msg));
	rc = ticket_claim(t, ctx, msg, ckey, &n, &opened);
	if (rc < 0) {
		v = MM_DEFER;
		goto out;
	}
	tag = ticket_tag(t, n);
	digest = g_compute_checksum_for_string(G_CHECKSUM_SHA256,
					       (nstr = g_strdup_printf("%s\n%s", mm_msg_account(msg),
								       mm_msg_uid(msg))), -1);
	g_free(nstr);
	base = g_strdup_printf("ticket-%lld-%s-%.16s", n, opened ? "opened" : "followup", digest);
	memset(&ev, 0, sizeof ev);
	ev.number = n;
	ev.tag = tag;
	ev.event = opened ? "opened" : "followup";
	ev.threaded_by = how;
	ev.account = mm_msg_account(msg);
	ev.uid = mm_msg_uid(msg);
	ev.message_id = mid;
	ev.from = sender;
	ev.subject = subject;
	ev.received = (long long)time(NULL);
	ev.date = mm_msg_date(msg);
	mark = ticket_export_mark(t);
	if (t->json_dir != NULL || t->webhook_url != NULL) {
		json = ticket_export_build(t, ctx, m, &ev, base);
		if (json == NULL) {
			g_free(digest);
			ticket_export_undo(t, mark);
			v = MM_DEFER;
			goto out;
		}
	}
	if (t->webhook_url != NULL) {
		if (mm_ctx_dry_run(ctx)) {
			mm_log(ctx, MM_LOG_INFO, "dry run: would POST ticket %lld to %s", n, t->webhook_url);
		} else if (ticket_export_post(t, ctx, json, digest) < 0) {
			mm_log(ctx, MM_LOG_WARNING, "uid %s: ticket %lld: webhook failed: deferred",
			       mm_msg_uid(msg), n);
			g_free(digest);
			ticket_export_undo(t, mark);
			v = MM_DEFER;
			goto out;
		}
	}
	g_free(digest);
	if (t->json_dir != NULL && !mm_ctx_dry_run(ctx) && ticket_export_file(t, ctx, base, json) < 0) {
		ticket_export_undo(t, mark);
		v = MM_DEFER;
		goto out;
	}
	nstr = g_strdup_printf("%lld", n);
	rc = mid != NULL ? ticket_put(t, ctx, msg, nstr, "mid:%s", mid) : 0;
	g_free(nstr);
	if (opened)
		rc |= ticket_record_open(t, ctx, msg, n, sender);
	else if (sender != NULL && !ticket_member(t, ctx, n, sender))
		rc |= ticket_put(t, ctx, msg, "participant", "p:%lld:%s", n, sender);
	if (rc != 0) {
		v = MM_DEFER;
		goto out;
	}
	mm_log(ctx, MM_LOG_INFO, "uid %s: %s ticket %lld %s%s%s", mm_msg_uid(msg),
	       opened ? "opened" : "follow-up to", n, tag, opened ? "" : " by ", opened ? "" : how);
	if (opened && t->acknowledge)
		ticket_ack(t, ctx, msg, n, tag);
	if (t->notify != NULL)
		ticket_notify(t, ctx, msg, &ev);
out:
	g_free(sender);
	g_free(ckey);
	g_free(tag);
	g_free(json);
	g_free(base);
	return v;
}

const struct mailmill_plugin mailmill_plugin = {
	.abi = MAILMILL_PLUGIN_ABI,
	.name = "ticket",
	.version = "1.0",
	.init = ticket_init,
	.process = ticket_process,
	.sync = ticket_sync,
	.fini = ticket_free,
};

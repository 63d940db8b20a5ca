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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "ticket.h"

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
		const char *why = autoreply_robot_mail(ticket_walk_headers, msg,
							   g_mime_message_get_mime_part(m),
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

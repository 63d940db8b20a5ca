/* mailmill - ISC licence, see LICENSE */
/*
 * The `forward` plugin: pass every message on to other addresses.
 *
 *   { plugin = "forward";
 *     to = [ "alice@example.org", "bob@example.net" ];
 *     from = "Forwarder <fwd@example.org>";  # Resent-From / From of the new message
 *     mode = "redirect";     # original unchanged + Resent-* headers; or "attach":
 *                            # a new message with the original as message/rfc822
 *     sender = "fwd@example.org";  # envelope sender; default: the address of `from`;
 *                                  # "" is the null sender <>
 *     loop_marker = "...";   # X-Loop value; default "mailmill forward <from address>"
 *     verdict = "pass"; }    # or "done" / "keep"
 *
 * Mail carrying our loop marker, or with more than 30 Received headers (RFC
 * 5321 section 6.3: a loop), is not forwarded, and the refusal is logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <mailmill/plugin.h>

#define FORWARD_MAX_RECEIVED 30
#define FORWARD_MAX_TO 50

enum forward_mode { FORWARD_REDIRECT, FORWARD_ATTACH };

struct forward {
	char **to;
	size_t n_to;
	char *from, *from_addr, *sender, *marker;
	enum forward_mode mode;
	mm_verdict verdict;
};

static const char *const forward_keys[] = {
	"to", "from", "mode", "sender", "loop_marker", "verdict", NULL
};

static void
forward_free(void *p)
{
	struct forward *f = p;

	if (f == NULL)
		return;
	g_strfreev(f->to);
	g_free(f->from);
	g_free(f->from_addr);
	g_free(f->sender);
	g_free(f->marker);
	g_free(f);
}

static int
forward_addr_ok(const char *v)
{
	return v != NULL && strchr(v, '@') != NULL && strpbrk(v, " <>\t\r\n\"") == NULL &&
	       strlen(v) <= 254;
}

static char *
forward_addr_of(const char *from)
{
	InternetAddressList *l = internet_address_list_parse(NULL, from);
	char *a = NULL;

	if (l != NULL && internet_address_list_length(l) == 1 &&
	    INTERNET_ADDRESS_IS_MAILBOX(internet_address_list_get_address(l, 0))) {
		const char *s = internet_address_mailbox_get_addr(
			INTERNET_ADDRESS_MAILBOX(internet_address_list_get_address(l, 0)));

		if (forward_addr_ok(s))
			a = g_strdup(s);
	}
	if (l != NULL)
		g_object_unref(l);
	return a;
}

static int
forward_init(mm_ctx *ctx, const config_setting_t *g, void **state)
{
	struct forward *f = g_new0(struct forward, 1);
	const config_setting_t *s = config_setting_get_member(g, "to");
	char *mode = NULL;
	const char *sender = NULL;
	int bad = mm_settings_check(ctx, g, forward_keys) < 0, n;

	f->verdict = MM_PASS;
	/* Strings, not mm_setting_addresses: a recipient's local part keeps its case. */
	n = mm_setting_strings(ctx, g, "to", FORWARD_MAX_TO, &f->to);
	if (n == 0)
		mm_ctx_error(ctx, g, "`to` is required: a list of 1 to %d addresses", FORWARD_MAX_TO);
	if (n <= 0)
		bad = 1;
	for (f->n_to = 0; f->to != NULL && f->to[f->n_to] != NULL; f->n_to++) {
		if (!forward_addr_ok(f->to[f->n_to])) {
			mm_ctx_error(ctx, s, "`to` element %zu must be a bare address", f->n_to + 1);
			bad = 1;
		}
	}
	if (mm_setting_string(ctx, g, "from", &f->from) <= 0) {
		if (f->from == NULL)
			mm_ctx_error(ctx, g, "`from` is required, e.g. \"Forwarder <fwd@example.org>\"");
		bad = 1;
	} else if ((f->from_addr = forward_addr_of(f->from)) == NULL) {
		mm_ctx_error(ctx, config_setting_get_member(g, "from"), "`from` \"%s\" is not one address",
			     f->from);
		bad = 1;
	}
	/* "" is allowed here (the null sender): read by hand. */
	if ((s = config_setting_get_member(g, "sender")) != NULL &&
	    (sender = config_setting_get_string(s)) == NULL) {
		mm_ctx_error(ctx, s, "`sender` must be a string");
		bad = 1;
	} else if (sender != NULL && *sender != '\0' && !forward_addr_ok(sender)) {
		mm_ctx_error(ctx, config_setting_get_member(g, "sender"),
			     "`sender` must be a bare address or \"\"");
		bad = 1;
	}
	f->sender = g_strdup(sender);
	if (mm_setting_string(ctx, g, "mode", &mode) < 0 ||
	    mm_setting_verdict(ctx, g, "verdict", MM_VERDICT_BIT(MM_PASS) | MM_VERDICT_BIT(MM_DONE) |
			       MM_VERDICT_BIT(MM_KEEP), &f->verdict) < 0 ||
	    mm_setting_string(ctx, g, "loop_marker", &f->marker) < 0)
		bad = 1;
	if (mode != NULL && strcmp(mode, "redirect") != 0 && strcmp(mode, "attach") != 0) {
		mm_ctx_error(ctx, config_setting_get_member(g, "mode"),
			     "`mode` must be \"redirect\" or \"attach\"");
		bad = 1;
	}
	f->mode = mode != NULL && strcmp(mode, "attach") == 0 ? FORWARD_ATTACH : FORWARD_REDIRECT;
	g_free(mode);
	if (bad) {
		forward_free(f);
		return -1;
	}
	if (f->sender == NULL)
		f->sender = g_strdup(f->from_addr);
	if (f->marker == NULL)
		f->marker = g_strdup_printf("mailmill forward %s", f->from_addr);
	*state = f;
	return 0;
}

/* Why not to forward m, or NULL. */
static const char *
forward_refuse(struct forward *f, GMimeMessage *m, char *buf, size_t n)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(m));
	int i, count = g_mime_header_list_get_count(hl), received = 0;

	for (i = 0; i < count; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		const char *name = g_mime_header_get_name(h);

		if (g_ascii_strcasecmp(name, "Received") == 0 && ++received > FORWARD_MAX_RECEIVED) {
			snprintf(buf, n, "more than %d Received headers (a mail loop)",
				 FORWARD_MAX_RECEIVED);
			return buf;
		}
		if (g_ascii_strcasecmp(name, "X-Loop") == 0) {
			char *v = g_strstrip(g_strdup(g_mime_header_get_value(h) ?
						      g_mime_header_get_value(h) : ""));
			int ours = g_ascii_strcasecmp(v, f->marker) == 0;

			g_free(v);
			if (ours)
				return "it carries our X-Loop marker (a loop)";
		}
	}
	return NULL;
}

static char *
forward_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return g_strdup(at != NULL && at[1] != '\0' ? at + 1 : "localhost");
}

/* The original bytes with our trace fields in front (RFC 5322 3.6.6). */
static int
forward_redirect(struct forward *f, mm_msg *msg, mm_ctx *ctx)
{
	GDateTime *now = g_date_time_new_now_local();
	char *date = g_mime_utils_header_format_date(now), *dom = forward_domain(f->from_addr);
	char *id = g_mime_utils_generate_message_id(dom), *to = g_strjoinv(", ", f->to);
	GString *out = g_string_new(NULL);
	size_t len;
	const char *raw = mm_msg_raw(msg, &len);
	int rc;

	g_string_append_printf(out, "X-Loop: %s\nResent-From: %s\nResent-To: %s\nResent-Date: %s\n"
			       "Resent-Message-ID: <%s>\n", f->marker, f->from, to, date, id);
	g_string_append_len(out, raw, (gssize)len);
	rc = mm_queue_raw(ctx, msg, out->str, out->len, f->sender, (const char *const *)f->to,
			  f->n_to, 0);
	g_string_free(out, TRUE);
	g_date_time_unref(now);
	g_free(date);
	g_free(dom);
	g_free(id);
	g_free(to);
	return rc;
}

static int
forward_attach(struct forward *f, mm_msg *msg, mm_ctx *ctx)
{
	GMimeMessage *orig = mm_msg_mime(msg), *m = g_mime_message_new(TRUE);
	GMimeMultipart *mixed = g_mime_multipart_new_with_subtype("mixed");
	GMimeTextPart *note = g_mime_text_part_new_with_subtype("plain");
	GMimeMessagePart *part = g_mime_message_part_new_with_message("rfc822", orig);
	const char *subj = g_mime_message_get_subject(orig);
	char *s = g_strdup_printf("Fwd: %s", subj != NULL ? subj : "(no subject)");
	int rc;

	internet_address_list_append(g_mime_message_get_from(m),
				     internet_address_list_parse(NULL, f->from));
	for (size_t i = 0; i < f->n_to; i++)
		internet_address_list_add(g_mime_message_get_addresses(m, GMIME_ADDRESS_TYPE_TO),
					  internet_address_mailbox_new(NULL, f->to[i]));
	g_mime_message_set_subject(m, s, "utf-8");
	g_mime_object_set_header(GMIME_OBJECT(m), "X-Loop", f->marker, NULL);
	g_mime_text_part_set_text(note, "The forwarded message is attached.\n");
	g_mime_multipart_add(mixed, GMIME_OBJECT(note));
	g_mime_object_set_disposition(GMIME_OBJECT(part), "inline");
	g_mime_multipart_add(mixed, GMIME_OBJECT(part));
	g_mime_message_set_mime_part(m, GMIME_OBJECT(mixed));
	rc = mm_queue(ctx, msg, m, f->sender, (const char *const *)f->to, f->n_to, 0);
	g_object_unref(note);
	g_object_unref(part);
	g_object_unref(mixed);
	g_object_unref(m);
	g_free(s);
	return rc;
}

static mm_verdict
forward_process(void *state, mm_msg *msg, mm_ctx *ctx)
{
	struct forward *f = state;
	char buf[128];
	const char *why = forward_refuse(f, mm_msg_mime(msg), buf, sizeof(buf));

	if (why != NULL) {
		mm_log(ctx, MM_LOG_WARNING, "uid %s: not forwarded: %s", mm_msg_uid(msg), why);
		return f->verdict;
	}
	if ((f->mode == FORWARD_REDIRECT ? forward_redirect(f, msg, ctx) :
	     forward_attach(f, msg, ctx)) < 0) {
		mm_log(ctx, MM_LOG_ERROR, "uid %s: could not queue the forward: deferring",
		       mm_msg_uid(msg));
		return MM_DEFER;
	}
	mm_log(ctx, MM_LOG_INFO, "uid %s: forwarded (%s) to %zu address(es)", mm_msg_uid(msg),
	       f->mode == FORWARD_REDIRECT ? "redirect" : "attach", f->n_to);
	return f->verdict;
}

const struct mailmill_plugin mailmill_plugin = {
	.abi = MAILMILL_PLUGIN_ABI,
	.name = "forward",
	.version = "1.0",
	.init = forward_init,
	.process = forward_process,
	.sync = NULL,
	.fini = forward_free,
};

/* mailmill - ISC licence, see LICENSE */
/*
 * subjecttag: an example mailmill plugin, built outside the mailmill tree
 * against the installed SDK (see README and the Makefile next to this file).
 *
 * It adds a header field to every message whose Subject matches a regular
 * expression, and passes every message on.  A later stage acts on the field:
 * the filter plugin can route by it, a pipe command can read it.
 *
 *   { plugin = "subjecttag";          # subjecttag.so in plugin_dir, or a path
 *     match = "invoice|receipt";      # required: POSIX extended regex, searched
 *                                     #   in the decoded Subject
 *     nocase = true;                  # optional, default false
 *     header = "X-Mailmill-Tag";      # optional, this default
 *     value = "invoice"; }            # optional, default: the stage's name
 *
 * What it shows: validating settings in init() with file:line errors,
 * per-stage state, reading a header without parsing the message, changing
 * the parsed message only when needed, logging, and cleaning up in fini().
 */
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <mailmill/plugin.h>

/* One per pipeline stage that names this plugin: init() makes it, process()
 * reads it, fini() frees it.  The core never looks inside. */
struct subjecttag {
	regex_t re;
	char *header; /* g_strdup'd: the field name */
	char *value;  /* g_strdup'd: its value */
};

/* The settings this plugin knows; mm_settings_check() reports any other key
 * (a typo) with file:line.  "plugin" and "name" are always allowed. */
static const char *const subjecttag_keys[] = { "match", "nocase", "header", "value", NULL };

static void
subjecttag_fini(void *state)
{
	struct subjecttag *st = state;

	if (st == NULL)
		return;
	regfree(&st->re);
	g_free(st->header);
	g_free(st->value);
	g_free(st);
}

/* An optional string setting: its value, `def` when absent; NULL after
 * reporting a setting that is not a non-empty string. */
static const char *
subjecttag_string(mm_ctx *ctx, const config_setting_t *settings, const char *key, const char *def)
{
	const config_setting_t *s = config_setting_get_member(settings, key);

	if (s == NULL)
		return def;
	if (config_setting_type(s) != CONFIG_TYPE_STRING || *config_setting_get_string(s) == '\0') {
		mm_ctx_error(ctx, s, "`%s` must be a non-empty string", key);
		return NULL;
	}
	return config_setting_get_string(s);
}

/* A header field name: printable ASCII without ':' (RFC 5322 section 2.2). */
static int
subjecttag_field_name_ok(const char *name)
{
	for (; *name != '\0'; name++)
		if (*name < 33 || *name > 126 || *name == ':')
			return 0;
	return 1;
}

static int
subjecttag_init(mm_ctx *ctx, const config_setting_t *settings, void **state)
{
	const config_setting_t *s;
	const char *match, *header, *value;
	int flags = REG_EXTENDED | REG_NOSUB, rc, nocase = 0;
	struct subjecttag *st;
	char buf[256];

	/* Each problem is reported with mm_ctx_error(), which names the file
	 * and line of the setting, before returning -1: the daemon then refuses
	 * to start, and --check-config exits 78. */
	if (mm_settings_check(ctx, settings, subjecttag_keys) < 0)
		return -1;
	if (config_setting_get_member(settings, "match") == NULL) {
		mm_ctx_error(ctx, settings, "`match` is required");
		return -1;
	}
	if ((s = config_setting_get_member(settings, "nocase")) != NULL) {
		if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
			mm_ctx_error(ctx, s, "`nocase` must be true or false");
			return -1;
		}
		nocase = config_setting_get_bool(s);
	}
	match = subjecttag_string(ctx, settings, "match", NULL);
	header = subjecttag_string(ctx, settings, "header", "X-Mailmill-Tag");
	/* The stage's name is its `name` setting, or the plugin's name. */
	value = subjecttag_string(ctx, settings, "value", mm_ctx_stage(ctx));
	if (match == NULL || header == NULL || value == NULL)
		return -1;
	if (!subjecttag_field_name_ok(header)) {
		mm_ctx_error(ctx, config_setting_get_member(settings, "header"),
			     "`header` is not a header field name: %s", header);
		return -1;
	}
	if (strpbrk(value, "\r\n") != NULL) {
		mm_ctx_error(ctx, config_setting_get_member(settings, "value"),
			     "`value` must be one line");
		return -1;
	}

	st = g_new0(struct subjecttag, 1);
	if (nocase)
		flags |= REG_ICASE;
	if ((rc = regcomp(&st->re, match, flags)) != 0) {
		regerror(rc, &st->re, buf, sizeof(buf));
		mm_ctx_error(ctx, config_setting_get_member(settings, "match"),
			     "`match`: %s", buf);
		g_free(st); /* regfree() only after a successful regcomp() */
		return -1;
	}
	st->header = g_strdup(header);
	st->value = g_strdup(value);
	*state = st;
	return 0;
}

static mm_verdict
subjecttag_process(void *state, mm_msg *msg, mm_ctx *ctx)
{
	struct subjecttag *st = state;
	char *subject, *decoded;
	int hit;

	/* mm_msg_header() reads the raw header: no MIME parse for the messages
	 * that do not match.  It returns an allocated copy (g_free) with
	 * RFC 2047 words still encoded; GMime decodes them. */
	if ((subject = mm_msg_header(msg, "Subject")) == NULL)
		return MM_PASS;
	decoded = g_mime_utils_header_decode_text(NULL, subject);
	hit = regexec(&st->re, decoded, 0, NULL, 0) == 0;
	g_free(subject);
	if (!hit) {
		g_free(decoded);
		return MM_PASS;
	}

	/* Changing the parsed message is in memory only: later stages see the
	 * field (mm_msg_header, mm_msg_mime), the raw bytes stay as fetched, so
	 * an archive stage stores the message without it.  Nothing changes
	 * outside the process, so a dry run may do it too. */
	g_mime_object_append_header(GMIME_OBJECT(mm_msg_mime(msg)), st->header, st->value, NULL);
	mm_log(ctx, MM_LOG_INFO, "%s: \"%s\" matches: %s: %s", mm_msg_uid(msg), decoded,
	       st->header, st->value);
	g_free(decoded);
	/* PASS: not handled here; the next stage decides.  (DONE would delete
	 * the message from the server unless the account keeps mail.) */
	return MM_PASS;
}

/* The one symbol mailmilld looks up.  `abi` must be MAILMILL_PLUGIN_ABI as
 * this file was compiled: a plugin built for another ABI is refused. */
const struct mailmill_plugin mailmill_plugin = {
	.abi = MAILMILL_PLUGIN_ABI,
	.name = "subjecttag",
	.version = "1.0",
	.init = subjecttag_init,
	.process = subjecttag_process,
	.sync = NULL, /* nothing written, so nothing to make durable */
	.fini = subjecttag_fini,
};

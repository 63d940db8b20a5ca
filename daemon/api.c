/* mailmill - ISC licence, see LICENSE */
/*
 * The functions a plugin may call (include/mailmill/plugin.h).  Linked into
 * mailmilld directly and exported with -export-dynamic, so that dlopen'd
 * plugins resolve them against the running daemon.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "daemon/api.h"
#include "daemon/log.h"

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

void
mm_log(mm_ctx *ctx, mm_log_level level, const char *fmt, ...)
{
	char text[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
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

GMimeMessage *
mm_msg_mime(mm_msg *msg)
{
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

/* mailmill - ISC licence, see LICENSE */
/*
 * The `archive` plugin: every message it sees goes into a Maildir or an
 * mbox, byte for byte, and gets the verdict DONE.
 *
 *   { plugin = "archive"; path = "/srv/mail/support";
 *     format = "maildir";     # or "mbox"; default "maildir"
 *     folder = "%Y/%m";       # optional: strftime on the message date
 *     mode = "0600"; dir_mode = "0700"; group = "mail"; }  # optional
 *
 * Maildir: `path` (or path/<folder>) is the Maildir.  mbox: `path` is the
 * mbox file, or with `folder` the directory holding one mbox per folder
 * name.  process() stages a message (Maildir: a file in tmp/; mbox: appended
 * under the lock, unsynced); sync() makes the whole batch durable at once
 * (group commit).  The format is a table of operations (archive.h:
 * struct archive_format), chosen once in init.
 * Idempotent by (account, uid): see archive.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <mailmill/plugin.h>

#include "archive.h"

struct archive {
	char *path;
	char *folder;            /* NULL: no folders */
	const struct archive_format *fmt;
	perms perms;             /* modes and group of what it creates */
	char host[HOST_NAME_MAX + 1];
	GHashTable *targets;     /* target path -> struct maildir * or struct mbox * */
	GHashTable *refused;     /* target paths that could not be opened (said once) */
};

/* The formats the `format` setting names; the first is the default. */
static const struct archive_format *const archive_formats[] = {
	&archive_format_maildir, &archive_format_mbox, NULL
};

static const char *const archive_keys[] = { "path", "format", "folder", "mode", "dir_mode",
					     "group", NULL };

static void
archive_free(struct archive *a)
{
	if (a == NULL)
		return;
	if (a->targets != NULL) {
		GHashTableIter it;
		void *t;

		g_hash_table_iter_init(&it, a->targets);
		while (g_hash_table_iter_next(&it, NULL, &t))
			a->fmt->close(t);
		g_hash_table_destroy(a->targets);
	}
	if (a->refused != NULL)
		g_hash_table_destroy(a->refused);
	g_free(a->path);
	g_free(a->folder);
	g_free(a);
}

/*
 * Whether this process can ever archive at the stage's path: at start and
 * on --check-config (which runs it as the worker user), so that a path
 * below a file, or one the workers cannot create, is a configuration error
 * now rather than every message deferred later.  What only the run can
 * judge (a directory that is not a Maildir yet: it may be emptied) is a
 * warning here; archive_target refuses it then.
 */
static int
archive_check_path(struct archive *a, mm_ctx *ctx, const config_setting_t *settings)
{
	enum archive_kind kind = a->folder != NULL ? ARCHIVE_KIND_FOLDERS : a->fmt->kind;
	char *err = NULL;
	int r = archive_target_check(a->path, kind, &err);

	if (r < 0)
		mm_ctx_error(ctx, config_setting_get_member(settings, "path"), "%s",
			     err != NULL ? err : "out of memory");
	else if (r > 0)
		mm_log(ctx, MM_LOG_WARNING, "%s; its messages will be deferred",
		       err != NULL ? err : "out of memory");
	free(err);
	return r < 0 ? -1 : 0;
}

static int
archive_init(mm_ctx *ctx, const config_setting_t *settings, void **state)
{
	const config_setting_t *s;
	struct archive *a = g_new0(struct archive, 1);
	char *format = NULL, *err = NULL;
	/* Report every problem, not only the first: check the known keys too. */
	int bad = mm_settings_check(ctx, settings, archive_keys) < 0;

	a->fmt = archive_formats[0];
	if (perms_settings(ctx, settings, 1, &a->perms) < 0)
		bad = 1;
	s = config_setting_get_member(settings, "path");
	if (mm_setting_string(ctx, settings, "path", &a->path) < 0)
		goto fail;
	if (a->path == NULL) {
		mm_ctx_error(ctx, settings, "`path` is required");
		goto fail;
	}
	if (a->path[0] != '/' || strlen(a->path) > PATH_MAX / 2) {
		mm_ctx_error(ctx, s, "`path` must be an absolute path, not \"%s\"", a->path);
		goto fail;
	}
	/* "/srv/mail/" and "/srv/mail" are the same place; keep "/" as is. */
	for (size_t n = strlen(a->path); n > 1 && a->path[n - 1] == '/'; n--)
		a->path[n - 1] = '\0';
	if (mm_setting_string(ctx, settings, "format", &format) < 0)
		goto fail;
	if (format != NULL) {
		const struct archive_format *const *f;

		for (f = archive_formats; *f != NULL && strcmp((*f)->name, format) != 0; f++)
			;
		if (*f == NULL) {
			mm_ctx_error(ctx, config_setting_get_member(settings, "format"),
				     "`format` must be \"maildir\" or \"mbox\", not \"%s\"", format);
			goto fail;
		}
		a->fmt = *f;
	}
	if (mm_setting_string(ctx, settings, "folder", &a->folder) < 0)
		goto fail;
	if (a->folder != NULL && archive_folder_check(a->folder, &err) < 0) {
		mm_ctx_error(ctx, config_setting_get_member(settings, "folder"), "%s",
			     err != NULL ? err : "out of memory");
		free(err);
		goto fail;
	}
	if (a->fmt->kind == ARCHIVE_KIND_MBOX && a->folder == NULL && strcmp(a->path, "/") == 0) {
		mm_ctx_error(ctx, settings, "`path` must name the mbox file");
		goto fail;
	}
	if (gethostname(a->host, sizeof(a->host) - 1) < 0 || a->host[0] == '\0')
		strcpy(a->host, "localhost");
	if (bad)
		goto fail;
	if (archive_check_path(a, ctx, settings) < 0)
		goto fail;
	a->targets = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	a->refused = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_free(format);
	*state = a;
	return 0;
fail:
	g_free(format);
	archive_free(a);
	return -1;
}

/* Where `msg` goes: path or path/<folder>, g_malloc'd. */
static char *
archive_target_path(struct archive *a, mm_msg *msg, mm_ctx *ctx)
{
	long long when = mm_msg_date(msg);
	char *sub = NULL, *err = NULL, *target;

	if (a->folder == NULL)
		return g_strdup(a->path);
	if (archive_folder_expand(a->folder, when, &sub, &err) < 0) {
		/* A date localtime() cannot take; the pattern itself was checked. */
		mm_log(ctx, MM_LOG_WARNING, "uid %s: %s; using the current date", mm_msg_uid(msg),
		       err != NULL ? err : "out of memory");
		free(err);
		err = NULL;
		if (archive_folder_expand(a->folder, (long long)time(NULL), &sub, &err) < 0) {
			mm_log(ctx, MM_LOG_ERROR, "%s", err != NULL ? err : "out of memory");
			free(err);
			return NULL;
		}
	}
	target = g_build_filename(a->path, sub, NULL);
	free(sub);
	return target;
}

/* The open target for `path`, opening (and creating) it on first use. */
static void *
archive_target(struct archive *a, const char *path, mm_ctx *ctx)
{
	void *t = g_hash_table_lookup(a->targets, path);
	char *err = NULL;

	if (t != NULL)
		return t;
	if (a->fmt->open(path, a->host, &a->perms, &t, &err) < 0) {
		/* Once per run and target: every message after it is deferred too. */
		if (!g_hash_table_contains(a->refused, path)) {
			mm_log(ctx, MM_LOG_ERROR, "%s; deferring its messages",
			       err != NULL ? err : "out of memory");
			g_hash_table_add(a->refused, g_strdup(path));
		}
		free(err);
		return NULL;
	}
	if (a->fmt->recovered(t) > 0)
		mm_log(ctx, MM_LOG_WARNING, "%s: %zu file(s) an interrupted run left incomplete"
		       " moved to tmp/; their messages are fetched again", path, a->fmt->recovered(t));
	g_hash_table_insert(a->targets, g_strdup(path), t);
	return t;
}

/*
 * The envelope sender for a From_ line: Return-Path, else From, else "".
 * Read with mm_msg_header: mm_msg_mime would parse the whole MIME tree,
 * which costs more than the rest of archiving a message.  A plain From is
 * read here; only the others go to GMime's address parser, which opens an
 * iconv converter (a dlopen) for every encoded display name: that was the
 * largest cost of archiving the mixed benchmark mail into an mbox.
 */
static const char *
archive_sender(mm_msg *msg, char *buf, size_t size)
{
	size_t n = 0;
	const char *addr = NULL;
	char *v;
	InternetAddressList *from = NULL;

	buf[0] = '\0';
	if ((v = mm_msg_header(msg, "Return-Path")) != NULL) {
		addr = v + strspn(v, " \t<");
		n = strcspn(addr, " \t>");
	} else if ((v = mm_msg_header(msg, "From")) != NULL) {
		if (archive_sender_plain(v, buf, size)) {
			g_free(v);
			return buf;
		}
		if ((from = internet_address_list_parse(NULL, v)) != NULL &&
		    internet_address_list_length(from) > 0) {
			InternetAddress *ia = internet_address_list_get_address(from, 0);

			if (INTERNET_ADDRESS_IS_MAILBOX(ia) &&
			    (addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia))) != NULL)
				n = strlen(addr);
		}
	}
	if (addr != NULL && n < size) {
		memcpy(buf, addr, n);
		buf[n] = '\0';
	}
	if (from != NULL)
		g_object_unref(from);
	g_free(v);
	return buf;
}

static mm_verdict
archive_process(void *state, mm_msg *msg, mm_ctx *ctx)
{
	struct archive *a = state;
	char digest[ARCHIVE_DIGEST_LEN + 1], sender[256], *target, *err = NULL;
	const char *uid = mm_msg_uid(msg), *raw;
	size_t len;
	void *t;
	int r;

	raw = mm_msg_raw(msg, &len);
	archive_digest(mm_msg_account(msg), uid, digest);
	if ((target = archive_target_path(a, msg, ctx)) == NULL)
		return MM_DEFER;
	if (mm_ctx_dry_run(ctx)) {
		mm_log(ctx, MM_LOG_INFO, "uid %s: would archive to %s", uid, target);
		g_free(target);
		return MM_DONE;
	}
	if ((t = archive_target(a, target, ctx)) == NULL) {
		g_free(target);
		return MM_DEFER;
	}
	/* Only a format that writes a From_ line pays for reading the sender. */
	r = a->fmt->stage(t, digest, a->fmt->needs_sender ? archive_sender(msg, sender, sizeof(sender))
							  : NULL,
			  mm_msg_date(msg), raw, len, &err);
	if (r < 0) {
		mm_log(ctx, MM_LOG_ERROR, "uid %s not archived: %s", uid,
		       err != NULL ? err : "out of memory");
		free(err);
		g_free(target);
		return MM_DEFER;
	}
	if (r == 1)
		mm_log(ctx, MM_LOG_INFO, "uid %s is already in %s", uid, target);
	else
		mm_log(ctx, MM_LOG_DEBUG, "uid %s staged for %s (%zu bytes)", uid, target, len);
	g_free(target);
	return MM_DONE;
}

static int
archive_sync(void *state, mm_ctx *ctx)
{
	struct archive *a = state;
	GHashTableIter it;
	void *key, *t;
	int ret = 0;

	/* Commit every target even after a failure: what succeeds is found
	 * (and not written again) by the rerun of the deferred batch. */
	g_hash_table_iter_init(&it, a->targets);
	while (g_hash_table_iter_next(&it, &key, &t)) {
		size_t n = a->fmt->pending(t);
		char *err = NULL;
		int r;

		if (n == 0)
			continue;
		r = a->fmt->commit(t, &err);
		if (r < 0) {
			mm_log(ctx, MM_LOG_ERROR, "%zu message(s) not archived: %s", n,
			       err != NULL ? err : "out of memory");
			free(err);
			ret = -1;
		} else {
			mm_log(ctx, MM_LOG_DEBUG, "%zu message(s) archived to %s", n,
			       (const char *)key);
		}
	}
	return ret;
}

static void
archive_fini(void *state)
{
	archive_free(state);
}

const struct mailmill_plugin mailmill_plugin = {
	.abi = MAILMILL_PLUGIN_ABI,
	.name = "archive",
	.version = "1.0",
	.init = archive_init,
	.process = archive_process,
	.sync = archive_sync,
	.fini = archive_fini,
};

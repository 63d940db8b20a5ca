/* mailmill - ISC licence, see LICENSE */
/*
 * The server groups of the configuration: an account (POP3 and its
 * pipeline) and the `smtp` relay.  Their plain keys are read by the walker
 * from their tables (cfg_schema.c); here are the hooks for the special ones
 * (port, the password keys, OAuth, helo, the pipeline) and the rules that
 * need the whole group (one password, no password in the clear, OAuth's
 * needs).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/core/cfg_int.h"
#include "daemon/core/cfg_schedule.h"

/* ------------------------------------------------------------ hooks */

int
cfg_hook_port(cfg_walk *w, const cfg_key *k, const config_setting_t *s, void *field)
{
	cfg_errs *e = w->e;
	const char *ctx = w->ctx;
	char **out = field;
	char tmp[16];

	if (cfg_is_int(s)) {
		long long p = config_setting_get_int64(s);
		if (p < 1 || p > 65535) {
			cfg_err(e, s, ctx, "'port' must be between 1 and 65535, not %lld", p);
			return -1;
		}
		snprintf(tmp, sizeof(tmp), "%lld", p);
		free(*out);
		if ((*out = strdup(tmp)) == NULL) {
			cfg_err(e, s, ctx, "out of memory");
			return -1;
		}
		return 0;
	}
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		cfg_err(e, s, ctx, "'port' must be a number or a service name");
		return -1;
	}
	if (cfg_get_str(e, s, ctx, out) < 0)
		return -1;
	const char *p = *out;
	size_t digits = strspn(p, "0123456789");
	if (p[digits] == '\0') {
		if (digits > 5 || atoi(p) < 1 || atoi(p) > 65535) {
			cfg_err(e, s, ctx, "'port' must be between 1 and 65535, not %s", p);
			return -1;
		}
	} else if (strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(p)) {
		cfg_err(e, s, ctx, "'port' \"%s\" is neither a number nor a service name", p);
		return -1;
	}
	return 0;
}

static int
cfg_password_command(cfg_errs *e, const config_setting_t *s, const char *ctx, secret *sec)
{
	int n, type = config_setting_type(s);

	if (type != CONFIG_TYPE_LIST && type != CONFIG_TYPE_ARRAY) {
		cfg_err(e, s, ctx, "'password_command' must be a list of strings (the argv, "
			"run without a shell), like [\"/usr/bin/pass\", \"show\", \"pop\"]");
		return -1;
	}
	n = config_setting_length(s);
	if (n < 1) {
		cfg_err(e, s, ctx, "'password_command' must not be empty");
		return -1;
	}
	sec->argv = calloc((size_t)n + 1, sizeof(char *));
	if (sec->argv == NULL) {
		cfg_err(e, s, ctx, "out of memory");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *a = config_setting_get_elem(s, (unsigned)i);
		const char *v;
		if (config_setting_type(a) != CONFIG_TYPE_STRING) {
			cfg_err(e, s, ctx, "'password_command' element %d must be a string", i + 1);
			return -1;
		}
		v = config_setting_get_string(a);
		if (i == 0 && *v == '\0') {
			cfg_err(e, s, ctx, "'password_command' program name is empty");
			return -1;
		}
		if ((sec->argv[i] = strdup(v)) == NULL) {
			cfg_err(e, s, ctx, "out of memory");
			return -1;
		}
	}
	sec->kind = SECRET_COMMAND;
	return 0;
}

/* An inline password is only as secret as the file it sits in. */
static void
cfg_check_inline_file(cfg_errs *e, const config_setting_t *s, const char *ctx)
{
	const char *file = cfg_file_of(e, s);
	char full[PATH_MAX];
	struct stat sb;
	int fd;

	/* libconfig names an @include file as written, relative to incdir. */
	if (file[0] != '/' && strcmp(file, e->path) != 0 && e->incdir != NULL) {
		snprintf(full, sizeof(full), "%s/%s", e->incdir, file);
		file = full;
	}
	fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		cfg_err(e, s, ctx, "cannot check the mode of %s: %s", file, strerror(errno));
		return;
	}
	if (fstat(fd, &sb) < 0) {
		cfg_err(e, s, ctx, "cannot check the mode of %s: %s", file, strerror(errno));
	} else if (sb.st_mode & (S_IRGRP | S_IROTH)) {
		cfg_err(e, s, ctx, "inline '%s' in %s, which group or others can read "
			"(mode %04o); run: chmod 600 %s, or use %s_file", config_setting_name(s),
			file, (unsigned)(sb.st_mode & 07777), file, config_setting_name(s));
	}
	close(fd);
}

/* The first of the password keys is read; more than one is reported once
 * the group is read (cfg_secret_finish). */
int
cfg_hook_password(cfg_walk *w, const cfg_key *k, const config_setting_t *s, void *field)
{
	secret *sec = field;

	(void)k;
	if (++w->n_secret > 1 || cfg_get_str(w->e, s, w->ctx, &sec->value) < 0)
		return -1;
	sec->kind = SECRET_INLINE;
	return 0;
}

int
cfg_hook_password_file(cfg_walk *w, const cfg_key *k, const config_setting_t *s, void *field)
{
	secret *sec = field;
	char *why = NULL;

	(void)k;
	if (++w->n_secret > 1 || cfg_get_path(w->e, s, w->ctx, &sec->value) < 0)
		return -1;
	sec->kind = SECRET_FILE;
	if (secret_check_file(sec->value, &why) < 0) {
		cfg_err(w->e, s, w->ctx, "%s", why ? why : "out of memory");
		free(why);
		return -1;
	}
	return 0;
}

int
cfg_hook_password_command(cfg_walk *w, const cfg_key *k, const config_setting_t *s, void *field)
{
	(void)k;
	if (++w->n_secret > 1)
		return -1;
	return cfg_password_command(w->e, s, w->ctx, field);
}

/* The OAuth settings live in oauth_config.c; their problems come back here. */
typedef struct cfg_oauth_ctx {
	cfg_errs *e;
	const char *ctx;
} cfg_oauth_ctx;

static void
cfg_oauth_err(void *arg, const config_setting_t *s, const char *msg)
{
	cfg_oauth_ctx *oc = arg;

	cfg_err(oc->e, s, oc->ctx, "%s", msg);
}

/* `oauth2` and `token_command`: oauth_config.c reads them. */
int
cfg_hook_oauth(cfg_walk *w, const cfg_key *k, const config_setting_t *s, void *field)
{
	cfg_oauth_ctx oc = { w->e, w->ctx };

	(void)k;
	return oauth_cfg_setting(s, field, cfg_oauth_err, &oc) ? 0 : -1;
}

/* `at` and `delete_after`: cfg_schedule.c reads them (it looks at their
 * siblings `interval` and `keep` too). */
int
cfg_hook_schedule(cfg_walk *w, const cfg_key *k, const config_setting_t *s, void *field)
{
	cfg_oauth_ctx oc = { w->e, w->ctx };

	(void)k;
	(void)field;
	return cfg_schedule_setting(s, w->obj, cfg_oauth_err, &oc) ? 0 : -1;
}

/* After the group: what OAuth needs (oauth_config.c) and what it rules out
 * here: a password mechanism, a link without TLS. */
static void
cfg_oauth_finish(cfg_errs *e, const config_setting_t *g, const char *ctx, oauth_cfg *o,
		 oauth_for what, int n_secret, int password_auth, cfg_tls tls)
{
	cfg_oauth_ctx oc = { e, ctx };
	const config_setting_t *og = config_setting_get_member(g, "oauth2");
	const config_setting_t *cs = og != NULL ? config_setting_get_member(og, "client_secret") : NULL;

	oauth_cfg_finish(g, o, what, n_secret > 0, cfg_oauth_err, &oc);
	if (password_auth)
		cfg_err(e, config_setting_get_member(g, "auth"), ctx, "'auth' names a password "
			"mechanism, but the sign-in is OAuth: use \"auto\", \"xoauth2\" or "
			"\"oauthbearer\"");
	if (tls == CFG_TLS_NONE)
		cfg_err(e, config_setting_get_member(g, "tls"), ctx, "OAuth is never sent without "
			"TLS: use tls = \"tls\" or \"starttls\"");
	if (cs != NULL && o->client_secret.kind == SECRET_INLINE)
		cfg_check_inline_file(e, cs, ctx);
}

int
cfg_hook_helo(cfg_walk *w, const cfg_key *k, const config_setting_t *s, void *field)
{
	char **helo = field;

	(void)k;
	if (cfg_get_str(w->e, s, w->ctx, helo) < 0)
		return -1;
	if (strspn(*helo, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-[]:") !=
	    strlen(*helo)) {
		cfg_err(w->e, s, w->ctx, "'helo' \"%s\" is not a host name or address literal",
			*helo);
		return -1;
	}
	return 0;
}

/* No password in the clear unless allowed; an inline one only in a private file. */
static void
cfg_secret_finish(cfg_errs *e, const config_setting_t *g, const char *ctx, int n_secret,
		  const oauth_cfg *oauth, cfg_tls tls, int allow_plaintext)
{
	const config_setting_t *pw = config_setting_get_member(g, "password");

	if (tls == CFG_TLS_NONE && n_secret > 0 && oauth == NULL && !allow_plaintext) {
		cfg_err(e, g, ctx, "tls = \"none\" would send the password unencrypted; use "
			"\"tls\" or \"starttls\", or set allow_plaintext_password = true");
	}
	if (pw != NULL)
		cfg_check_inline_file(e, pw, ctx);
}

int
cfg_hook_pipeline(cfg_walk *w, const cfg_key *k, const config_setting_t *s, void *field)
{
	cfg_errs *e = w->e;
	const char *ctx = w->ctx;
	cfg_account *a = w->obj;
	int n;

	(void)k;
	(void)field;

	if (config_setting_type(s) != CONFIG_TYPE_LIST) {
		cfg_err(e, s, ctx, "'pipeline' must be a list of groups: ( { plugin = \"...\"; } )");
		return -1;
	}
	n = config_setting_length(s);
	if (n < 1) {
		cfg_err(e, s, ctx, "'pipeline' must have at least one stage");
		return -1;
	}
	a->stages = calloc((size_t)n, sizeof(*a->stages));
	if (a->stages == NULL) {
		cfg_err(e, s, ctx, "out of memory");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *g = config_setting_get_elem(s, (unsigned)i);
		const config_setting_t *p, *nm;
		cfg_stage *st = &a->stages[a->n_stages];

		if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
			cfg_err(e, g, ctx, "pipeline stage %d must be a group { plugin = ...; }", i + 1);
			continue;
		}
		a->n_stages++;
		st->settings = g;
		st->file = cfg_file_of(e, g);
		st->line = config_setting_source_line(g);
		p = config_setting_get_member(g, "plugin");
		if (p == NULL) {
			cfg_err(e, g, ctx, "pipeline stage %d: missing 'plugin'", i + 1);
		} else if (cfg_get_str(e, p, ctx, &st->plugin) == 0 &&
			   strchr(st->plugin, '/') == NULL && !cfg_name_ok(st->plugin)) {
			cfg_err(e, p, ctx, "'plugin' \"%s\": a plugin name ([A-Za-z0-9._-]) or a "
				"path containing '/'", st->plugin);
		}
		nm = config_setting_get_member(g, "name");
		if (nm != NULL && cfg_get_str(e, nm, ctx, &st->name) == 0) {
			if (!cfg_name_ok(st->name)) {
				cfg_err(e, nm, ctx, "stage name \"%s\": use letters, digits, '.', "
					"'_', '-' (at most %d)", st->name, CFG_NAME_MAX);
			}
			for (size_t j = 0; j + 1 < a->n_stages; j++) {
				if (a->stages[j].name != NULL && strcmp(a->stages[j].name, st->name) == 0)
					cfg_err(e, nm, ctx, "stage name \"%s\" already used at %s:%d",
						st->name, a->stages[j].file, a->stages[j].line);
			}
		}
		if (st->name == NULL && st->plugin != NULL && (st->name = strdup(st->plugin)) == NULL)
			cfg_err(e, g, ctx, "out of memory");
	}
	return 0;
}

/* ------------------------------------------------------------ an account */

/* The IMAP keys: refused for POP3, which can only delete or keep; `keep` and
 * `after` agree; the folder list gets its default. */
static void
cfg_account_source(cfg_errs *e, const config_setting_t *g, const char *ctx, cfg_account *a)
{
	static const char *const imap_only[] = { "folders", "after", "move_to", "flag", "idle",
						 NULL };
	const config_setting_t *after = config_setting_get_member(g, "after");

	if (a->protocol == CFG_PROTO_POP3) {
		for (size_t i = 0; imap_only[i] != NULL; i++) {
			const config_setting_t *s = config_setting_get_member(g, imap_only[i]);

			if (s != NULL)
				cfg_err(e, s, ctx, "'%s' needs protocol = \"imap\" (POP3 can only"
					" delete or keep: see 'keep')", imap_only[i]);
		}
		return;
	}
	/* APOP and USER/PASS are POP3 commands; IMAP has LOGIN and AUTHENTICATE. */
	if (a->auth == CFG_AUTH_APOP || a->auth == CFG_AUTH_USER)
		cfg_err(e, config_setting_get_member(g, "auth"), ctx, "'auth' = \"%s\" is POP3's;"
			" with protocol = \"imap\" use \"plain\" (AUTHENTICATE PLAIN), \"login\""
			" (the LOGIN command) or leave it out", cfg_auth_names[a->auth]);
	if (a->keep && after != NULL && a->after != CFG_AFTER_KEEP)
		cfg_err(e, after, ctx, "'after' = \"%s\" contradicts keep = true",
			config_setting_get_string(after));
	if (a->keep)
		a->after = CFG_AFTER_KEEP;
	else if (a->after == CFG_AFTER_KEEP)
		a->keep = 1;
	if (a->after != CFG_AFTER_MOVE && config_setting_get_member(g, "move_to") != NULL)
		cfg_err(e, config_setting_get_member(g, "move_to"), ctx,
			"'move_to' needs after = \"move\"");
	if (a->after != CFG_AFTER_FLAG && config_setting_get_member(g, "flag") != NULL)
		cfg_err(e, config_setting_get_member(g, "flag"), ctx, "'flag' needs after = \"flag\"");
	if (a->folders == NULL) {
		if ((a->folders = calloc(2, sizeof(*a->folders))) == NULL ||
		    (a->folders[0] = strdup("INBOX")) == NULL)
			cfg_err(e, g, ctx, "out of memory");
	}
	a->n_folders = 0;
	while (a->folders != NULL && a->folders[a->n_folders] != NULL)
		a->n_folders++;
	if (a->n_folders == 0)
		cfg_err(e, config_setting_get_member(g, "folders"), ctx, "'folders' is empty");
	for (size_t i = 0; i < a->n_folders; i++) {
		for (size_t j = 0; j < i; j++) {
			if (strcmp(a->folders[i], a->folders[j]) == 0)
				cfg_err(e, config_setting_get_member(g, "folders"), ctx,
					"folder \"%s\" is listed twice", a->folders[i]);
		}
		if (a->after == CFG_AFTER_MOVE && strcmp(a->folders[i], a->move_to) == 0)
			cfg_err(e, config_setting_get_member(g, "folders"), ctx, "folder \"%s\" is"
				" also move_to: done mail would be read again", a->folders[i]);
		if (strpbrk(a->folders[i], "\r\n\"\\") != NULL)
			cfg_err(e, config_setting_get_member(g, "folders"), ctx,
				"folder \"%s\": quotes, backslashes and line ends are refused",
				a->folders[i]);
	}
	if (a->flag != NULL && (strpbrk(a->flag, " ()[]{%*\"\r\n") != NULL ||
				(a->flag[0] == '\\' && strchr(a->flag + 1, '\\') != NULL)))
		cfg_err(e, config_setting_get_member(g, "flag"), ctx,
			"'flag' \"%s\" is not an IMAP flag or keyword", a->flag);
}

static void
cfg_account_parse(cfg_errs *e, const config_setting_t *g, int idx, cfg_account *a)
{
	char ctx[CFG_NAME_MAX + 32];
	cfg_walk w = { .e = e, .ctx = ctx, .obj = a };
	const config_setting_t *s;

	a->file = cfg_file_of(e, g);
	a->line = config_setting_source_line(g);
	/* The name first, so every other message can say which account. */
	snprintf(ctx, sizeof(ctx), "account #%d: ", idx + 1);
	if (cfg_walk_defaults(cfg_keys_account, a) < 0)
		cfg_err(e, g, ctx, "out of memory");
	s = config_setting_get_member(g, "name");
	if (s == NULL) {
		cfg_err(e, g, ctx, "missing required setting 'name'");
	} else if (cfg_walk_key(&w, cfg_key_find(cfg_keys_account, "name"), s) == 0) {
		if (!cfg_name_ok(a->name)) {
			cfg_err(e, s, ctx, "name \"%s\": use letters, digits, '.', '_', '-', not "
				"starting with '.' or '-', at most %d", a->name, CFG_NAME_MAX);
		} else {
			snprintf(ctx, sizeof(ctx), "account \"%s\": ", a->name);
		}
	}
	cfg_walk_group(&w, g, cfg_keys_account);

	if (a->oauth != NULL) {
		/* Exchange Online's IMAP and POP3 scopes differ. */
		cfg_oauth_finish(e, g, ctx, a->oauth, a->protocol == CFG_PROTO_IMAP ?
				 OAUTH_FOR_IMAP : OAUTH_FOR_POP3, w.n_secret,
				 a->auth != CFG_AUTH_AUTO && a->auth != CFG_AUTH_XOAUTH2 &&
				 a->auth != CFG_AUTH_OAUTHBEARER, a->tls);
	} else if (a->auth == CFG_AUTH_XOAUTH2 || a->auth == CFG_AUTH_OAUTHBEARER) {
		cfg_err(e, config_setting_get_member(g, "auth"), ctx, "'auth' = \"%s\" needs an "
			"'oauth2' group or a 'token_command'", cfg_auth_names[a->auth]);
	} else if (w.n_secret == 0) {
		cfg_err(e, g, ctx, "no password: set one of 'password', 'password_file', "
			"'password_command'");
	} else if (w.n_secret > 1) {
		cfg_err(e, g, ctx, "set only one of 'password', 'password_file', "
			"'password_command'");
	}
	if (config_setting_get_member(g, "port") == NULL &&
	    (a->port = strdup(a->protocol == CFG_PROTO_IMAP ?
			      (a->tls == CFG_TLS_IMPLICIT ? "993" : "143") :
			      (a->tls == CFG_TLS_IMPLICIT ? "995" : "110"))) == NULL)
		cfg_err(e, g, ctx, "out of memory");
	cfg_account_source(e, g, ctx, a);
	cfg_secret_finish(e, g, ctx, w.n_secret, a->oauth, a->tls, a->allow_plaintext_password);
}

int
cfg_hook_accounts(cfg_walk *w, const cfg_key *k, const config_setting_t *s, void *field)
{
	cfg_errs *e = w->e;
	cfg *c = w->obj;
	int n;

	(void)k;
	(void)field;

	if (config_setting_type(s) != CONFIG_TYPE_LIST) {
		cfg_err(e, s, "", "'accounts' must be a list of groups: ( { name = ...; }, ... )");
		return -1;
	}
	n = config_setting_length(s);
	if (n < 1) {
		cfg_err(e, s, "", "'accounts' is empty: nothing to do");
		return -1;
	}
	c->accounts = calloc((size_t)n, sizeof(*c->accounts));
	if (c->accounts == NULL) {
		cfg_err(e, s, "", "out of memory");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *g = config_setting_get_elem(s, (unsigned)i);
		cfg_account *a;

		if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
			cfg_err(e, g, "", "account #%d must be a group { name = ...; }", i + 1);
			continue;
		}
		a = &c->accounts[c->n_accounts++];
		cfg_account_parse(e, g, i, a);
		if (a->name == NULL)
			continue;
		for (size_t j = 0; j + 1 < c->n_accounts; j++) {
			const cfg_account *b = &c->accounts[j];
			if (b->name != NULL && strcmp(b->name, a->name) == 0) {
				const config_setting_t *nm = config_setting_get_member(g, "name");
				cfg_err(e, nm, "", "duplicate account name \"%s\" (first defined at %s:%d)",
					a->name, b->file, b->line);
				break;
			}
		}
	}
	return 0;
}

/* ------------------------------------------------------------ the relay */

int
cfg_hook_smtp(cfg_walk *w, const cfg_key *k, const config_setting_t *g, void *field)
{
	const char *ctx = "smtp: ";
	cfg_errs *e = w->e;
	cfg_walk sw = { .e = e, .ctx = ctx };
	cfg_smtp *m;

	(void)k;
	if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
		cfg_err(e, g, "", "'smtp' must be a group: { host = \"...\"; port = 587; ... }");
		return -1;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		cfg_err(e, g, ctx, "out of memory");
		return -1;
	}
	*(cfg_smtp **)field = m;
	m->file = cfg_file_of(e, g);
	m->line = config_setting_source_line(g);
	if (cfg_walk_defaults(cfg_keys_smtp, m) < 0)
		cfg_err(e, g, ctx, "out of memory");
	sw.obj = m;
	cfg_walk_group(&sw, g, cfg_keys_smtp);

	if (sw.n_secret > 1)
		cfg_err(e, g, ctx, "set only one of 'password', 'password_file', 'password_command'");
	if (sw.n_secret > 0 && m->user == NULL && config_setting_get_member(g, "user") == NULL)
		cfg_err(e, g, ctx, "a password without 'user': set the user to log in as");
	if (m->oauth != NULL) {
		cfg_oauth_finish(e, g, ctx, m->oauth, OAUTH_FOR_SMTP, sw.n_secret,
				 m->auth == CFG_SMTP_AUTH_PLAIN || m->auth == CFG_SMTP_AUTH_LOGIN,
				 m->tls);
		if (m->user == NULL && config_setting_get_member(g, "user") == NULL)
			cfg_err(e, g, ctx, "OAuth without 'user': set the mailbox address to sign "
				"in as");
	} else if (m->auth == CFG_SMTP_AUTH_XOAUTH2 || m->auth == CFG_SMTP_AUTH_OAUTHBEARER) {
		cfg_err(e, config_setting_get_member(g, "auth"), ctx, "'auth' = \"%s\" needs an "
			"'oauth2' group or a 'token_command'", cfg_smtp_auth_names[m->auth]);
	} else if (sw.n_secret == 0 && m->user != NULL)
		cfg_err(e, g, ctx, "'user' without a password: set one of 'password', "
			"'password_file', 'password_command'");
	if (config_setting_get_member(g, "port") == NULL &&
	    (m->port = strdup(m->tls == CFG_TLS_IMPLICIT ? "465" :
			      m->tls == CFG_TLS_STARTTLS ? "587" : "25")) == NULL)
		cfg_err(e, g, ctx, "out of memory");
	cfg_secret_finish(e, g, ctx, sw.n_secret, m->oauth, m->tls, m->allow_plaintext_password);
	return 0;
}

/* ------------------------------------------------------------ freeing */

void
cfg_account_free(cfg_account *a)
{
	for (size_t j = 0; j < a->n_stages; j++) {
		free(a->stages[j].plugin);
		free(a->stages[j].name);
	}
	free(a->stages);
	cfg_walk_free(cfg_keys_account, a);
	free(a->port);
	secret_clear(&a->secret);
	oauth_cfg_free(&a->oauth);
}

void
cfg_smtp_free(cfg_smtp **mp)
{
	cfg_smtp *m = *mp;

	if (m == NULL)
		return;
	cfg_walk_free(cfg_keys_smtp, m);
	free(m->port);
	free(m->helo);
	secret_clear(&m->secret);
	oauth_cfg_free(&m->oauth);
	free(m);
	*mp = NULL;
}

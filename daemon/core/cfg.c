/* mailmill - ISC licence, see LICENSE */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>

#include "daemon/core/cfg_include.h"
#include "daemon/core/cfg.h"
#include "daemon/core/cfg_schedule.h"
#include "daemon/core/log.h"
#include "daemon/core/trust.h"
#include "daemon/core/units.h"

#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR "/var"
#endif
#ifndef PKGLIBDIR
#define PKGLIBDIR "/usr/local/lib/mailmill"
#endif

/* Upper bounds that keep later arithmetic (deadlines in ms, now + interval)
 * far from overflow; none is a limit a real setup comes near. */
#define CFG_INTERVAL_MAX (366LL * 86400)
#define CFG_TIMEOUT_MAX  86400LL
#define CFG_MAX_SIZE_MAX (2ULL << 30)
#define CFG_NAME_MAX 64
#define CFG_WORKER_MEMORY_MAX (1ULL << 40)

/* Every problem found, one "file:line: message" per line. */
typedef struct cfg_errs {
	char *buf;
	size_t len, cap;
	unsigned n;
	const char *path;  /* for problems with no setting to point at */
	const char *incdir;  /* where libconfig resolves @include names */
} cfg_errs;

static void cfg_errs_vadd(cfg_errs *e, const char *file, int line, const char *ctx,
			  const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

static void
cfg_errs_vadd(cfg_errs *e, const char *file, int line, const char *ctx, const char *fmt,
	      va_list ap)
{
	char msg[1024], full[1400];
	int n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (file == NULL)  /* the message names its file itself */
		n = snprintf(full, sizeof(full), "%s%s\n", ctx, msg);
	else if (line > 0)
		n = snprintf(full, sizeof(full), "%s:%d: %s%s\n", file, line, ctx, msg);
	else
		n = snprintf(full, sizeof(full), "%s: %s%s\n", file, ctx, msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(full))
		n = sizeof(full) - 1;
	e->n++;
	if (e->len + (size_t)n + 1 > e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 1024;
		while (cap < e->len + (size_t)n + 1)
			cap *= 2;
		char *nb = realloc(e->buf, cap);
		if (nb == NULL)
			return;  /* e->n still counts it: the load fails anyway */
		e->buf = nb;
		e->cap = cap;
	}
	memcpy(e->buf + e->len, full, (size_t)n + 1);
	e->len += (size_t)n;
}

static void cfg_err(cfg_errs *e, const config_setting_t *s, const char *ctx, const char *fmt,
		    ...) __attribute__((format(printf, 4, 5)));
static void cfg_err_at(cfg_errs *e, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
cfg_err_at(cfg_errs *e, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cfg_errs_vadd(e, file, line, "", fmt, ap);
	va_end(ap);
}

/* Point at setting s (or at the file when s is NULL). */
static void
cfg_err(cfg_errs *e, const config_setting_t *s, const char *ctx, const char *fmt, ...)
{
	const char *file = e->path;
	int line = 0;
	va_list ap;

	if (s != NULL) {
		if (config_setting_source_file(s) != NULL)
			file = config_setting_source_file(s);
		line = config_setting_source_line(s);
	}
	va_start(ap, fmt);
	cfg_errs_vadd(e, file, line, ctx, fmt, ap);
	va_end(ap);
}

static const char *
cfg_file_of(const cfg_errs *e, const config_setting_t *s)
{
	return config_setting_source_file(s) != NULL ? config_setting_source_file(s) : e->path;
}

/* ------------------------------------------------------------ typed getters */

static int
cfg_is_int(const config_setting_t *s)
{
	return config_setting_type(s) == CONFIG_TYPE_INT || config_setting_type(s) == CONFIG_TYPE_INT64;
}

/* A non-empty string, copied into *out (replacing what was there). */
static int
cfg_get_str(cfg_errs *e, const config_setting_t *s, const char *ctx, char **out)
{
	const char *v;
	char *copy;

	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		cfg_err(e, s, ctx, "'%s' must be a string", config_setting_name(s));
		return -1;
	}
	v = config_setting_get_string(s);
	if (v == NULL || *v == '\0') {
		cfg_err(e, s, ctx, "'%s' must not be empty", config_setting_name(s));
		return -1;
	}
	if ((copy = strdup(v)) == NULL) {
		cfg_err(e, s, ctx, "out of memory");
		return -1;
	}
	free(*out);
	*out = copy;
	return 0;
}

static int
cfg_get_path(cfg_errs *e, const config_setting_t *s, const char *ctx, char **out)
{
	if (cfg_get_str(e, s, ctx, out) < 0)
		return -1;
	if ((*out)[0] != '/') {
		cfg_err(e, s, ctx, "'%s' must be an absolute path, not \"%s\"",
			config_setting_name(s), *out);
		return -1;
	}
	return 0;
}

static int
cfg_get_bool(cfg_errs *e, const config_setting_t *s, const char *ctx, int *out)
{
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		cfg_err(e, s, ctx, "'%s' must be true or false", config_setting_name(s));
		return -1;
	}
	*out = config_setting_get_bool(s) != 0;
	return 0;
}

/* One of names[] (NULL-terminated); *out is its index. */
static int
cfg_get_enum(cfg_errs *e, const config_setting_t *s, const char *ctx,
	     const char *const *names, int *out)
{
	const char *v;
	char list[256];
	size_t used = 0;

	if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		v = config_setting_get_string(s);
		for (int i = 0; names[i] != NULL; i++) {
			if (strcmp(v, names[i]) == 0) {
				*out = i;
				return 0;
			}
		}
	}
	list[0] = '\0';
	for (int i = 0; names[i] != NULL && used < sizeof(list); i++) {
		int n = snprintf(list + used, sizeof(list) - used, "%s\"%s\"",
				 i ? ", " : "", names[i]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	cfg_err(e, s, ctx, "'%s' must be one of %s", config_setting_name(s), list);
	return -1;
}

static int
cfg_get_duration(cfg_errs *e, const config_setting_t *s, const char *ctx, long long min,
		 long long max, long long *out)
{
	long long v;

	if (cfg_is_int(s)) {
		v = config_setting_get_int64(s);
	} else if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		if (units_duration(config_setting_get_string(s), &v) < 0) {
			cfg_err(e, s, ctx, "'%s': \"%s\" is not a duration (like \"90s\", "
				"\"5m\", \"2h\", \"7d\")", config_setting_name(s),
				config_setting_get_string(s));
			return -1;
		}
	} else {
		cfg_err(e, s, ctx, "'%s' must be a duration (a string like \"5m\" or seconds)",
			config_setting_name(s));
		return -1;
	}
	if (v < min || v > max) {
		cfg_err(e, s, ctx, "'%s' must be between %llds and %llds, not %llds",
			config_setting_name(s), min, max, v);
		return -1;
	}
	*out = v;
	return 0;
}

/* max as a size is written (units_size: "2G", "1024G"), for messages. */
static const char *
cfg_size_name(unsigned long long max, char *buf, size_t len)
{
	static const char suffix[] = "KMG";
	int i = -1;

	while (i < 2 && max >= 1024 && max % 1024 == 0) {
		max /= 1024;
		i++;
	}
	if (i < 0)
		snprintf(buf, len, "%llu", max);
	else
		snprintf(buf, len, "%llu%c", max, suffix[i]);
	return buf;
}

static int
cfg_get_size(cfg_errs *e, const config_setting_t *s, const char *ctx, unsigned long long max,
	     unsigned long long *out)
{
	unsigned long long v;
	char unit[24];

	if (cfg_is_int(s)) {
		long long i = config_setting_get_int64(s);
		if (i < 0) {
			cfg_err(e, s, ctx, "'%s' must not be negative", config_setting_name(s));
			return -1;
		}
		v = (unsigned long long)i;
	} else if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		if (units_size(config_setting_get_string(s), &v) < 0) {
			cfg_err(e, s, ctx, "'%s': \"%s\" is not a size (like \"512K\", \"50M\", "
				"\"2G\")", config_setting_name(s), config_setting_get_string(s));
			return -1;
		}
	} else {
		cfg_err(e, s, ctx, "'%s' must be a size (a string like \"50M\" or bytes)",
			config_setting_name(s));
		return -1;
	}
	if (v > max) {
		cfg_err(e, s, ctx, "'%s' must be at most %llu bytes (%s), not %llu",
			config_setting_name(s), max, cfg_size_name(max, unit, sizeof unit), v);
		return -1;
	}
	*out = v;
	return 0;
}

/* A whole number between min and max. */
static int
cfg_get_count(cfg_errs *e, const config_setting_t *s, const char *ctx, int min, int max,
	      int *out)
{
	long long v;

	if (!cfg_is_int(s)) {
		cfg_err(e, s, ctx, "'%s' must be a whole number", config_setting_name(s));
		return -1;
	}
	v = config_setting_get_int64(s);
	if (v < min || v > max) {
		cfg_err(e, s, ctx, "'%s' must be between %d and %d, not %lld",
			config_setting_name(s), min, max, v);
		return -1;
	}
	*out = (int)v;
	return 0;
}

/* Account and stage names end up in logs, command lines and file names. */
static int
cfg_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CFG_NAME_MAX || s[0] == '.' || s[0] == '-')
		return 0;
	for (; *s; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
			return 0;
	}
	return 1;
}

/* ------------------------------------------------------------------ accounts */

static const char *const cfg_tls_names[] = { "tls", "starttls", "none", NULL };
static const char *const cfg_auth_names[] = { "auto", "user", "apop", "plain", "login",
					       "xoauth2", "oauthbearer", NULL };
static const char *const cfg_end_names[] = { "keep", "done", "defer", NULL };

static int
cfg_port(cfg_errs *e, const config_setting_t *s, const char *ctx, char **out)
{
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

static void
cfg_stages(cfg_errs *e, const config_setting_t *s, const char *ctx, cfg_account *a)
{
	int n;

	if (config_setting_type(s) != CONFIG_TYPE_LIST) {
		cfg_err(e, s, ctx, "'pipeline' must be a list of groups: ( { plugin = \"...\"; } )");
		return;
	}
	n = config_setting_length(s);
	if (n < 1) {
		cfg_err(e, s, ctx, "'pipeline' must have at least one stage");
		return;
	}
	a->stages = calloc((size_t)n, sizeof(*a->stages));
	if (a->stages == NULL) {
		cfg_err(e, s, ctx, "out of memory");
		return;
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
}

static void
cfg_account_parse(cfg_errs *e, const config_setting_t *g, int idx, cfg_account *a)
{
	char ctx[CFG_NAME_MAX + 32];
	const config_setting_t *s, *pw = NULL, *port = NULL;
	int n_secret = 0, have_pipeline = 0, v;

	a->file = cfg_file_of(e, g);
	a->line = config_setting_source_line(g);
	a->tls = CFG_TLS_IMPLICIT;
	a->auth = CFG_AUTH_AUTO;
	a->interval_s = 300;
	a->max_size = 50ULL << 20;
	a->timeout_s = 60;
	a->connect_timeout_s = 30;
	a->end = CFG_END_KEEP;
	a->max_attempts = 3;

	/* The name first, so every other message can say which account. */
	snprintf(ctx, sizeof(ctx), "account #%d: ", idx + 1);
	s = config_setting_get_member(g, "name");
	if (s == NULL) {
		cfg_err(e, g, ctx, "missing required setting 'name'");
	} else if (cfg_get_str(e, s, ctx, &a->name) == 0) {
		if (!cfg_name_ok(a->name)) {
			cfg_err(e, s, ctx, "name \"%s\": use letters, digits, '.', '_', '-', not "
				"starting with '.' or '-', at most %d", a->name, CFG_NAME_MAX);
		} else {
			snprintf(ctx, sizeof(ctx), "account \"%s\": ", a->name);
		}
	}

	for (int i = 0; i < config_setting_length(g); i++) {
		const char *k;

		s = config_setting_get_elem(g, (unsigned)i);
		k = config_setting_name(s);
		if (strcmp(k, "name") == 0) {
			continue;
		} else if (strcmp(k, "host") == 0) {
			cfg_get_str(e, s, ctx, &a->host);
		} else if (strcmp(k, "port") == 0) {
			port = s;
			cfg_port(e, s, ctx, &a->port);
		} else if (strcmp(k, "tls") == 0) {
			if (cfg_get_enum(e, s, ctx, cfg_tls_names, &v) == 0)
				a->tls = (cfg_tls)v;
		} else if (strcmp(k, "ca_file") == 0) {
			cfg_get_path(e, s, ctx, &a->ca_file);
		} else if (strcmp(k, "user") == 0) {
			cfg_get_str(e, s, ctx, &a->user);
		} else if (strcmp(k, "password") == 0) {
			n_secret++;
			pw = s;
			if (n_secret == 1 && cfg_get_str(e, s, ctx, &a->secret.value) == 0)
				a->secret.kind = SECRET_INLINE;
		} else if (strcmp(k, "password_file") == 0) {
			n_secret++;
			if (n_secret == 1 && cfg_get_path(e, s, ctx, &a->secret.value) == 0) {
				char *why = NULL;
				a->secret.kind = SECRET_FILE;
				if (secret_check_file(a->secret.value, &why) < 0) {
					cfg_err(e, s, ctx, "%s", why ? why : "out of memory");
					free(why);
				}
			}
		} else if (strcmp(k, "password_command") == 0) {
			n_secret++;
			if (n_secret == 1)
				cfg_password_command(e, s, ctx, &a->secret);
		} else if (strcmp(k, "auth") == 0) {
			if (cfg_get_enum(e, s, ctx, cfg_auth_names, &v) == 0)
				a->auth = (cfg_auth)v;
		} else if (strcmp(k, "allow_plaintext_password") == 0) {
			cfg_get_bool(e, s, ctx, &a->allow_plaintext_password);
		} else if (strcmp(k, "interval") == 0) {
			cfg_get_duration(e, s, ctx, 1, CFG_INTERVAL_MAX, &a->interval_s);
		} else if (strcmp(k, "keep") == 0) {
			cfg_get_bool(e, s, ctx, &a->keep);
		} else if (strcmp(k, "max_size") == 0) {
			cfg_get_size(e, s, ctx, CFG_MAX_SIZE_MAX, &a->max_size);
		} else if (strcmp(k, "timeout") == 0) {
			cfg_get_duration(e, s, ctx, 1, CFG_TIMEOUT_MAX, &a->timeout_s);
		} else if (strcmp(k, "connect_timeout") == 0) {
			cfg_get_duration(e, s, ctx, 1, CFG_TIMEOUT_MAX, &a->connect_timeout_s);
		} else if (strcmp(k, "pipeline_end") == 0) {
			if (cfg_get_enum(e, s, ctx, cfg_end_names, &v) == 0)
				a->end = (cfg_end)v;
		} else if (strcmp(k, "pipeline") == 0) {
			have_pipeline = 1;
			cfg_stages(e, s, ctx, a);
		} else if (strcmp(k, "max_attempts") == 0) {
			cfg_get_count(e, s, ctx, 1, 100, &a->max_attempts);
		} else if (oauth_cfg_setting(s, &a->oauth, cfg_oauth_err,
					     &(cfg_oauth_ctx){ e, ctx })) {
			continue;
		} else if (cfg_schedule_setting(s, a, cfg_oauth_err, &(cfg_oauth_ctx){ e, ctx })) {
			continue;
		} else {
			cfg_err(e, s, ctx, "unknown setting '%s'", k);
		}
	}

	if (a->host == NULL && config_setting_get_member(g, "host") == NULL)
		cfg_err(e, g, ctx, "missing required setting 'host'");
	if (a->user == NULL && config_setting_get_member(g, "user") == NULL)
		cfg_err(e, g, ctx, "missing required setting 'user'");
	if (!have_pipeline)
		cfg_err(e, g, ctx, "missing required setting 'pipeline'");
	if (a->oauth != NULL) {
		cfg_oauth_finish(e, g, ctx, a->oauth, OAUTH_FOR_POP3, n_secret,
				 a->auth != CFG_AUTH_AUTO && a->auth != CFG_AUTH_XOAUTH2 &&
				 a->auth != CFG_AUTH_OAUTHBEARER, a->tls);
	} else if (a->auth == CFG_AUTH_XOAUTH2 || a->auth == CFG_AUTH_OAUTHBEARER) {
		cfg_err(e, config_setting_get_member(g, "auth"), ctx, "'auth' = \"%s\" needs an "
			"'oauth2' group or a 'token_command'", cfg_auth_names[a->auth]);
	} else if (n_secret == 0) {
		cfg_err(e, g, ctx, "no password: set one of 'password', 'password_file', "
			"'password_command'");
	} else if (n_secret > 1) {
		cfg_err(e, g, ctx, "set only one of 'password', 'password_file', "
			"'password_command'");
	}
	if (port == NULL && (a->port = strdup(a->tls == CFG_TLS_IMPLICIT ? "995" : "110")) == NULL)
		cfg_err(e, g, ctx, "out of memory");
	if (a->tls == CFG_TLS_NONE && n_secret > 0 && a->oauth == NULL &&
	    !a->allow_plaintext_password) {
		cfg_err(e, g, ctx, "tls = \"none\" would send the password unencrypted; use "
			"\"tls\" or \"starttls\", or set allow_plaintext_password = true");
	}
	if (pw != NULL)
		cfg_check_inline_file(e, pw, ctx);
}

static void
cfg_accounts(cfg_errs *e, const config_setting_t *s, cfg *c)
{
	int n;

	if (config_setting_type(s) != CONFIG_TYPE_LIST) {
		cfg_err(e, s, "", "'accounts' must be a list of groups: ( { name = ...; }, ... )");
		return;
	}
	n = config_setting_length(s);
	if (n < 1) {
		cfg_err(e, s, "", "'accounts' is empty: nothing to do");
		return;
	}
	c->accounts = calloc((size_t)n, sizeof(*c->accounts));
	if (c->accounts == NULL) {
		cfg_err(e, s, "", "out of memory");
		return;
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
}

/* ------------------------------------------------------------------ smtp */

#define CFG_QUEUE_TIME_MAX (60LL * 86400)

static void
cfg_smtp_parse(cfg_errs *e, const config_setting_t *g, cfg *c)
{
	static const char *const smtp_auth_names[] = { "auto", "plain", "login", "xoauth2",
							"oauthbearer", NULL };
	const char *ctx = "smtp: ";
	const config_setting_t *s, *pw = NULL, *port = NULL;
	int n_secret = 0, v;
	cfg_smtp *m;

	if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
		cfg_err(e, g, "", "'smtp' must be a group: { host = \"...\"; port = 587; ... }");
		return;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		cfg_err(e, g, ctx, "out of memory");
		return;
	}
	c->smtp = m;
	m->file = cfg_file_of(e, g);
	m->line = config_setting_source_line(g);
	m->tls = CFG_TLS_STARTTLS;
	m->max_queue_time_s = 5 * 86400;
	m->timeout_s = 300;
	m->connect_timeout_s = 30;
	for (int i = 0; i < config_setting_length(g); i++) {
		const char *k;

		s = config_setting_get_elem(g, (unsigned)i);
		k = config_setting_name(s);
		if (strcmp(k, "host") == 0) {
			cfg_get_str(e, s, ctx, &m->host);
		} else if (strcmp(k, "port") == 0) {
			port = s;
			cfg_port(e, s, ctx, &m->port);
		} else if (strcmp(k, "tls") == 0) {
			if (cfg_get_enum(e, s, ctx, cfg_tls_names, &v) == 0)
				m->tls = (cfg_tls)v;
		} else if (strcmp(k, "ca_file") == 0) {
			cfg_get_path(e, s, ctx, &m->ca_file);
		} else if (strcmp(k, "user") == 0) {
			cfg_get_str(e, s, ctx, &m->user);
		} else if (strcmp(k, "password") == 0) {
			n_secret++;
			pw = s;
			if (n_secret == 1 && cfg_get_str(e, s, ctx, &m->secret.value) == 0)
				m->secret.kind = SECRET_INLINE;
		} else if (strcmp(k, "password_file") == 0) {
			n_secret++;
			if (n_secret == 1 && cfg_get_path(e, s, ctx, &m->secret.value) == 0) {
				char *why = NULL;
				m->secret.kind = SECRET_FILE;
				if (secret_check_file(m->secret.value, &why) < 0) {
					cfg_err(e, s, ctx, "%s", why ? why : "out of memory");
					free(why);
				}
			}
		} else if (strcmp(k, "password_command") == 0) {
			n_secret++;
			if (n_secret == 1)
				cfg_password_command(e, s, ctx, &m->secret);
		} else if (strcmp(k, "auth") == 0) {
			if (cfg_get_enum(e, s, ctx, smtp_auth_names, &v) == 0)
				m->auth = (cfg_smtp_auth)v;
		} else if (strcmp(k, "helo") == 0) {
			if (cfg_get_str(e, s, ctx, &m->helo) == 0 &&
			    strspn(m->helo, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				   "0123456789.-[]:") != strlen(m->helo))
				cfg_err(e, s, ctx, "'helo' \"%s\" is not a host name or address literal",
					m->helo);
		} else if (strcmp(k, "allow_plaintext_password") == 0) {
			cfg_get_bool(e, s, ctx, &m->allow_plaintext_password);
		} else if (strcmp(k, "max_queue_time") == 0) {
			cfg_get_duration(e, s, ctx, 60, CFG_QUEUE_TIME_MAX, &m->max_queue_time_s);
		} else if (strcmp(k, "timeout") == 0) {
			cfg_get_duration(e, s, ctx, 1, CFG_TIMEOUT_MAX, &m->timeout_s);
		} else if (strcmp(k, "connect_timeout") == 0) {
			cfg_get_duration(e, s, ctx, 1, CFG_TIMEOUT_MAX, &m->connect_timeout_s);
		} else if (oauth_cfg_setting(s, &m->oauth, cfg_oauth_err,
					     &(cfg_oauth_ctx){ e, ctx })) {
			continue;
		} else {
			cfg_err(e, s, ctx, "unknown setting '%s'", k);
		}
	}
	if (m->host == NULL && config_setting_get_member(g, "host") == NULL)
		cfg_err(e, g, ctx, "missing required setting 'host'");
	if (n_secret > 1)
		cfg_err(e, g, ctx, "set only one of 'password', 'password_file', 'password_command'");
	if (n_secret > 0 && m->user == NULL && config_setting_get_member(g, "user") == NULL)
		cfg_err(e, g, ctx, "a password without 'user': set the user to log in as");
	if (m->oauth != NULL) {
		cfg_oauth_finish(e, g, ctx, m->oauth, OAUTH_FOR_SMTP, n_secret,
				 m->auth == CFG_SMTP_AUTH_PLAIN || m->auth == CFG_SMTP_AUTH_LOGIN,
				 m->tls);
		if (m->user == NULL && config_setting_get_member(g, "user") == NULL)
			cfg_err(e, g, ctx, "OAuth without 'user': set the mailbox address to sign "
				"in as");
	} else if (m->auth == CFG_SMTP_AUTH_XOAUTH2 || m->auth == CFG_SMTP_AUTH_OAUTHBEARER) {
		cfg_err(e, config_setting_get_member(g, "auth"), ctx, "'auth' = \"%s\" needs an "
			"'oauth2' group or a 'token_command'", smtp_auth_names[m->auth]);
	} else if (n_secret == 0 && m->user != NULL)
		cfg_err(e, g, ctx, "'user' without a password: set one of 'password', "
			"'password_file', 'password_command'");
	if (port == NULL && (m->port = strdup(m->tls == CFG_TLS_IMPLICIT ? "465" :
					      m->tls == CFG_TLS_STARTTLS ? "587" : "25")) == NULL)
		cfg_err(e, g, ctx, "out of memory");
	if (m->tls == CFG_TLS_NONE && n_secret > 0 && m->oauth == NULL &&
	    !m->allow_plaintext_password) {
		cfg_err(e, g, ctx, "tls = \"none\" would send the password unencrypted; use "
			"\"tls\" or \"starttls\", or set allow_plaintext_password = true");
	}
	if (pw != NULL)
		cfg_check_inline_file(e, pw, ctx);
}

/* ------------------------------------------------------------------ top level */

/* The long-running daemon's settings; 1 if k is none of them. */
static int
cfg_daemon_setting(cfg_errs *e, const config_setting_t *s, cfg *c)
{
	const char *k = config_setting_name(s);

	if (strcmp(k, "workers") == 0) {
		cfg_get_count(e, s, "", 1, 256, &c->workers);
	} else if (strcmp(k, "user") == 0) {
		cfg_get_str(e, s, "", &c->user);
	} else if (strcmp(k, "pid_file") == 0) {
		cfg_get_path(e, s, "", &c->pid_file);
	} else if (strcmp(k, "run_timeout") == 0) {
		cfg_get_duration(e, s, "", 1, CFG_TIMEOUT_MAX, &c->run_timeout_s);
	} else if (strcmp(k, "message_timeout") == 0) {
		cfg_get_duration(e, s, "", 1, CFG_TIMEOUT_MAX, &c->message_timeout_s);
	} else if (strcmp(k, "max_backoff") == 0) {
		cfg_get_duration(e, s, "", 1, CFG_INTERVAL_MAX, &c->max_backoff_s);
	} else if (strcmp(k, "outbox_interval") == 0) {
		cfg_get_duration(e, s, "", 1, CFG_INTERVAL_MAX, &c->outbox_interval_s);
	} else if (strcmp(k, "worker_memory") == 0) {
		cfg_get_size(e, s, "", CFG_WORKER_MEMORY_MAX, &c->worker_memory);
		if (c->worker_memory != 0 && c->worker_memory < (64ULL << 20))
			cfg_err(e, s, "", "'worker_memory' must be at least 64M (or 0: no limit)");
	} else {
		return 1;
	}
	return 0;
}

static void
cfg_log(cfg_errs *e, const config_setting_t *g, cfg *c)
{
	static const char *const levels[] = { "error", "warning", "info", "debug", NULL };
	static const char *const targets[] = { "stderr", "syslog", NULL };
	int v;

	if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
		cfg_err(e, g, "", "'log' must be a group: { level = \"info\"; target = \"stderr\"; }");
		return;
	}
	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
		const char *k = config_setting_name(s);

		if (strcmp(k, "level") == 0) {
			if (cfg_get_enum(e, s, "log: ", levels, &v) == 0)
				c->log_level = LOG_LVL_ERROR + v;
		} else if (strcmp(k, "target") == 0) {
			if (cfg_get_enum(e, s, "log: ", targets, &v) == 0) {
				free(c->log_target);
				if ((c->log_target = strdup(targets[v])) == NULL)
					cfg_err(e, s, "", "out of memory");
			}
		} else {
			cfg_err(e, s, "", "unknown setting '%s' in log", k);
		}
	}
}

static void
cfg_top(cfg_errs *e, cfg *c)
{
	const config_setting_t *root = config_root_setting(&c->lc);
	int have_accounts = 0;

	for (int i = 0; i < config_setting_length(root); i++) {
		const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
		const char *k = config_setting_name(s);

		if (strcmp(k, "state_dir") == 0) {
			cfg_get_path(e, s, "", &c->state_dir);
		} else if (strcmp(k, "plugin_dir") == 0) {
			cfg_get_path(e, s, "", &c->plugin_dir);
		} else if (strcmp(k, "log") == 0) {
			cfg_log(e, s, c);
		} else if (strcmp(k, "accounts") == 0) {
			have_accounts = 1;
			cfg_accounts(e, s, c);
		} else if (strcmp(k, "smtp") == 0) {
			cfg_smtp_parse(e, s, c);
		} else if (cfg_daemon_setting(e, s, c) == 0) {
			continue;
		} else {
			cfg_err(e, s, "", "unknown setting '%s'", k);
		}
	}
	if (!have_accounts)
		cfg_err(e, NULL, "", "no 'accounts' defined: nothing to do");
}

static int
cfg_defaults(cfg *c)
{
	if (c->state_dir == NULL && (c->state_dir = strdup(LOCALSTATEDIR "/lib/mailmill")) == NULL)
		return -1;
	if (c->plugin_dir == NULL && (c->plugin_dir = strdup(PKGLIBDIR)) == NULL)
		return -1;
	if (c->log_target == NULL && (c->log_target = strdup("stderr")) == NULL)
		return -1;
	if (c->pid_file == NULL &&
	    (c->pid_file = g_strdup_printf("%s/mailmilld.pid", c->state_dir)) == NULL)
		return -1;
	return 0;
}

/* @include "x" in the file is relative to the file's directory, not the cwd. */
static int
cfg_set_include_dir(cfg *c)
{
	const char *slash = strrchr(c->path, '/');
	char *dir;

	if (slash == NULL)
		return 0;
	dir = strndup(c->path, slash == c->path ? 1 : (size_t)(slash - c->path));
	if (dir == NULL)
		return -1;
	config_set_include_dir(&c->lc, dir);
	free(dir);
	return 0;
}

int
cfg_load(const char *path, cfg **cfg_r, char **err_r)
{
	cfg_errs e = { .path = path };
	char *why = NULL;
	struct stat sb;
	FILE *fp;
	cfg *c;

	*cfg_r = NULL;
	*err_r = NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL || (c->path = strdup(path)) == NULL) {
		free(c);
		*err_r = strdup("out of memory");
		return -1;
	}
	config_init(&c->lc);
	c->log_level = LOG_LVL_INFO;
	c->workers = 4;
	c->run_timeout_s = 1800;
	c->message_timeout_s = 300;
	c->max_backoff_s = 3600;
	c->outbox_interval_s = 60;
	if (cfg_set_include_dir(c) < 0) {
		cfg_free(&c);
		*err_r = strdup("out of memory");
		return -1;
	}

	/* Nobody else's files, and only a regular one (before opening: a FIFO
	 * would block, a directory ends libconfig's scanner with exit()). */
	if (stat(path, &sb) < 0) {
		cfg_err(&e, NULL, "", "cannot read: %s", strerror(errno));
		goto fail;
	}
	if (trust_check_path(path, "configuration file", &why) < 0) {
		cfg_err_at(&e, NULL, 0, "%s", why != NULL ? why : "out of memory");
		free(why);
		goto fail;
	}
	/* libconfig reports an unreadable file without the reason: say it here. */
	fp = fopen(path, "r");
	if (fp == NULL) {
		cfg_err(&e, NULL, "", "cannot read: %s", strerror(errno));
		goto fail;
	}
	fclose(fp);
	/* No @include that libconfig's scanner would exit() on: it never sees
	 * one that is not a readable regular file. */
	if (cfginclude_check(path, config_get_include_dir(&c->lc), &why) < 0) {
		cfg_err_at(&e, NULL, 0, "%s", why != NULL ? why : "out of memory");
		free(why);
		goto fail;
	}
	if (config_read_file(&c->lc, path) != CONFIG_TRUE) {
		const char *file = config_error_file(&c->lc);
		cfg_err_at(&e, file ? file : path, config_error_line(&c->lc), "%s",
			   config_error_text(&c->lc) ? config_error_text(&c->lc) : "cannot read");
		goto fail;
	}
	e.incdir = config_get_include_dir(&c->lc);
	cfg_top(&e, c);
	if (e.n == 0 && cfg_defaults(c) < 0)
		cfg_err(&e, NULL, "", "out of memory");
	if (e.n > 0)
		goto fail;
	*cfg_r = c;
	return 0;
fail:
	cfg_free(&c);
	if (e.buf != NULL && e.len > 0 && e.buf[e.len - 1] == '\n')
		e.buf[--e.len] = '\0';
	*err_r = e.buf != NULL ? e.buf : strdup("out of memory");
	return -1;
}

void
cfg_free(cfg **cp)
{
	cfg *c;

	if (cp == NULL || (c = *cp) == NULL)
		return;
	for (size_t i = 0; i < c->n_accounts; i++) {
		cfg_account *a = &c->accounts[i];
		for (size_t j = 0; j < a->n_stages; j++) {
			free(a->stages[j].plugin);
			free(a->stages[j].name);
		}
		free(a->stages);
		free(a->name);
		free(a->host);
		free(a->port);
		free(a->ca_file);
		free(a->user);
		secret_clear(&a->secret);
		oauth_cfg_free(&a->oauth);
	}
	free(c->accounts);
	if (c->smtp != NULL) {
		free(c->smtp->host);
		free(c->smtp->port);
		free(c->smtp->ca_file);
		free(c->smtp->user);
		free(c->smtp->helo);
		secret_clear(&c->smtp->secret);
		oauth_cfg_free(&c->smtp->oauth);
		free(c->smtp);
	}
	free(c->path);
	free(c->state_dir);
	free(c->plugin_dir);
	free(c->log_target);
	free(c->user);
	g_free(c->pid_file);
	config_destroy(&c->lc);
	free(c);
	*cp = NULL;
}

const cfg_account *
cfg_find_account(const cfg *c, const char *name)
{
	for (size_t i = 0; i < c->n_accounts; i++) {
		if (c->accounts[i].name != NULL && strcmp(c->accounts[i].name, name) == 0)
			return &c->accounts[i];
	}
	return NULL;
}

/* mailmill - ISC licence, see LICENSE */
/*
 * The configuration parser's values: the problems found, the typed getters,
 * and the walker that reads a group against its schema table
 * (cfg_schema.h) into a struct.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>  /* GString only: every value is malloc'd, freed with free() */

#include "daemon/core/cfg_int.h"
#include "daemon/core/units.h"

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

void
cfg_err_at(cfg_errs *e, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cfg_errs_vadd(e, file, line, "", fmt, ap);
	va_end(ap);
}

void
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

const char *
cfg_file_of(const cfg_errs *e, const config_setting_t *s)
{
	return config_setting_source_file(s) != NULL ? config_setting_source_file(s) : e->path;
}

/* ------------------------------------------------------------ typed getters */

int
cfg_is_int(const config_setting_t *s)
{
	return config_setting_type(s) == CONFIG_TYPE_INT || config_setting_type(s) == CONFIG_TYPE_INT64;
}

/* A non-empty string, copied into *out (replacing what was there). */
int
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

int
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
int
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

/* 0, or min to max bytes. */
static int
cfg_get_size(cfg_errs *e, const config_setting_t *s, const char *ctx, unsigned long long min,
	     unsigned long long max, unsigned long long *out)
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
	if (v != 0 && v < min) {
		cfg_err(e, s, ctx, "'%s' must be at least %s (or 0: no limit)",
			config_setting_name(s), cfg_size_name(min, unit, sizeof unit));
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
int
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


static void
cfg_strv_free(char **v)
{
	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

/* A list or array of non-empty strings, NULL-terminated into *out. */
static int
cfg_get_strlist(cfg_errs *e, const config_setting_t *s, const char *ctx, char ***out)
{
	int n, type = config_setting_type(s);
	char **v;

	if (type != CONFIG_TYPE_LIST && type != CONFIG_TYPE_ARRAY) {
		cfg_err(e, s, ctx, "'%s' must be a list of strings, like [ \"a\", \"b\" ]",
			config_setting_name(s));
		return -1;
	}
	n = config_setting_length(s);
	if ((v = calloc((size_t)n + 1, sizeof(*v))) == NULL) {
		cfg_err(e, s, ctx, "out of memory");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *a = config_setting_get_elem(s, (unsigned)i);
		const char *str = config_setting_type(a) == CONFIG_TYPE_STRING ?
				  config_setting_get_string(a) : NULL;

		if (str == NULL || *str == '\0' || (v[i] = strdup(str)) == NULL) {
			if (str == NULL || *str == '\0')
				cfg_err(e, s, ctx, "'%s' element %d must be a non-empty string",
					config_setting_name(s), i + 1);
			else
				cfg_err(e, s, ctx, "out of memory");
			cfg_strv_free(v);
			return -1;
		}
	}
	cfg_strv_free(*out);
	*out = v;
	return 0;
}

/* ------------------------------------------------------------ the walker */

const cfg_key *
cfg_key_find(const cfg_key *keys, const char *name)
{
	for (; keys->name != NULL; keys++)
		if (strcmp(keys->name, name) == 0)
			return keys;
	return NULL;
}

static int
cfg_def_index(const cfg_key *k)
{
	for (int i = 0; k->names[i] != NULL; i++)
		if (strcmp(k->names[i], k->def) == 0)
			return i;
	return -1;
}

int
cfg_walk_defaults(const cfg_key *keys, void *obj)
{
	for (const cfg_key *k = keys; k->name != NULL; k++) {
		void *field = (char *)obj + k->off;
		long long ll;
		unsigned long long ull;

		if (k->type == CFG_GROUP && k->sub != NULL && k->hook == NULL &&
		    cfg_walk_defaults(k->sub, obj) < 0)
			return -1;
		if (k->def == NULL)
			continue;
		switch (k->type) {
		case CFG_STR:
		case CFG_PATH:
			free(*(char **)field);
			if ((*(char **)field = strdup(k->def)) == NULL)
				return -1;
			break;
		case CFG_BOOL:
			*(int *)field = strcmp(k->def, "true") == 0;
			break;
		case CFG_INT:
			*(int *)field = atoi(k->def);
			break;
		case CFG_DURATION:
			if (units_duration(k->def, &ll) < 0)
				return -1;
			*(long long *)field = ll;
			break;
		case CFG_SIZE:
			if (units_size(k->def, &ull) < 0)
				return -1;
			*(unsigned long long *)field = ull;
			break;
		case CFG_ENUM:
			if (cfg_def_index(k) < 0)
				return -1;
			if (k->flags & CFG_NAMED) {
				free(*(char **)field);
				if ((*(char **)field = strdup(k->def)) == NULL)
					return -1;
			} else {
				*(int *)field = cfg_def_index(k);
			}
			break;
		default:
			break;
		}
	}
	return 0;
}

/* "'log' must be a group: { level = "info"; target = "stderr"; }", from its table. */
static void
cfg_walk_not_group(cfg_walk *w, const cfg_key *k, const config_setting_t *s)
{
	GString *shape = g_string_new("{");

	for (const cfg_key *sk = k->sub; sk != NULL && sk->name != NULL; sk++) {
		int quote = sk->type != CFG_INT && sk->type != CFG_BOOL;

		g_string_append_printf(shape, " %s = %s%s%s;", sk->name, quote ? "\"" : "",
				       sk->def != NULL ? sk->def : "...", quote ? "\"" : "");
	}
	cfg_err(w->e, s, w->ctx, "'%s' must be a group: %s }", k->name, shape->str);
	g_string_free(shape, TRUE);
}

int
cfg_walk_key(cfg_walk *w, const cfg_key *k, const config_setting_t *s)
{
	void *field = (char *)w->obj + k->off;
	int v;

	if (k->hook != NULL)
		return k->hook(w, k, s, field);
	switch (k->type) {
	case CFG_STR:
		return cfg_get_str(w->e, s, w->ctx, field);
	case CFG_PATH:
		return cfg_get_path(w->e, s, w->ctx, field);
	case CFG_BOOL:
		return cfg_get_bool(w->e, s, w->ctx, field);
	case CFG_INT:
		return cfg_get_count(w->e, s, w->ctx, (int)k->min, (int)k->max, field);
	case CFG_DURATION:
		return cfg_get_duration(w->e, s, w->ctx, k->min, k->max, field);
	case CFG_SIZE:
		return cfg_get_size(w->e, s, w->ctx, (unsigned long long)k->min,
				    (unsigned long long)k->max, field);
	case CFG_STRLIST:
		return cfg_get_strlist(w->e, s, w->ctx, field);
	case CFG_ENUM:
		if (cfg_get_enum(w->e, s, w->ctx, k->names, &v) < 0)
			return -1;
		if (!(k->flags & CFG_NAMED)) {
			*(int *)field = v;
			return 0;
		}
		free(*(char **)field);
		if ((*(char **)field = strdup(k->names[v])) == NULL) {
			cfg_err(w->e, s, "", "out of memory");
			return -1;
		}
		return 0;
	case CFG_GROUP: {
		char ctx[2 * CFG_NAME_MAX + 64];
		cfg_walk in = *w;

		if (config_setting_type(s) != CONFIG_TYPE_GROUP || k->sub == NULL) {
			cfg_walk_not_group(w, k, s);
			return -1;
		}
		snprintf(ctx, sizeof ctx, "%s%s: ", w->ctx, k->name);
		in.ctx = ctx;
		in.in = k->name;
		in.outer_ctx = w->ctx;
		cfg_walk_group(&in, s, k->sub);
		return 0;
	}
	case CFG_LIST:
		break;
	}
	cfg_err(w->e, s, w->ctx, "'%s' has no parser (a bug)", k->name);
	return -1;
}

void
cfg_walk_group(cfg_walk *w, const config_setting_t *g, const cfg_key *keys)
{
	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
		const char *name = config_setting_name(s);
		const cfg_key *k = cfg_key_find(keys, name);

		if (k == NULL && w->in != NULL)
			cfg_err(w->e, s, w->outer_ctx, "unknown setting '%s' in %s", name, w->in);
		else if (k == NULL)
			cfg_err(w->e, s, w->ctx, "unknown setting '%s'", name);
		else if (!(k->flags & CFG_FIRST))
			cfg_walk_key(w, k, s);
	}
	for (const cfg_key *k = keys; k->name != NULL; k++) {
		if ((k->flags & (CFG_REQUIRED | CFG_FIRST)) == CFG_REQUIRED &&
		    config_setting_get_member(g, k->name) == NULL)
			cfg_err(w->e, g, w->ctx, "missing required setting '%s'", k->name);
	}
}

void
cfg_walk_free(const cfg_key *keys, void *obj)
{
	for (const cfg_key *k = keys; k->name != NULL; k++) {
		void *field = (char *)obj + k->off;

		if (k->type == CFG_GROUP && k->sub != NULL && k->hook == NULL)
			cfg_walk_free(k->sub, obj);
		if (k->hook != NULL)
			continue;  /* its owner frees what a hook made */
		if (k->type == CFG_STR || k->type == CFG_PATH ||
		    (k->type == CFG_ENUM && (k->flags & CFG_NAMED))) {
			free(*(char **)field);
			*(char **)field = NULL;
		} else if (k->type == CFG_STRLIST) {
			cfg_strv_free(*(char ***)field);
			*(char ***)field = NULL;
		}
	}
}

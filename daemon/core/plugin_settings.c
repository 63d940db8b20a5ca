/* mailmill - ISC licence, see LICENSE */
/*
 * The typed setting readers of the public plugin API (mm_setting_*, see
 * include/mailmill/plugin.h).  Built on units.c's parsers, so a plugin's
 * "5m" means what the core's does; errors go through mm_ctx_error, which
 * puts the setting's file:line in front.  Nothing here knows the daemon
 * beyond that one call, so a unit test can link this file with its own
 * mm_ctx_error.
 *
 * Export: mailmilld is linked with -Wl,--undefined=mm_setting_string (see
 * Makefile.am), which pulls this object out of libmmcore into the binary,
 * where -export-dynamic makes every mm_setting_* visible to dlopen'd
 * plugins (nm -D mailmilld).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>
#include <mailmill/plugin.h>
#include "daemon/core/units.h"

static const config_setting_t *
ps_member(const config_setting_t *g, const char *key)
{
	return g != NULL && key != NULL ? config_setting_get_member(g, key) : NULL;
}

static int
ps_is_int(const config_setting_t *s)
{
	return config_setting_type(s) == CONFIG_TYPE_INT || config_setting_type(s) == CONFIG_TYPE_INT64;
}

static int
ps_is_list(const config_setting_t *s)
{
	return config_setting_type(s) == CONFIG_TYPE_ARRAY || config_setting_type(s) == CONFIG_TYPE_LIST;
}

int
mm_setting_string(mm_ctx *ctx, const config_setting_t *g, const char *key, char **out)
{
	const config_setting_t *s = ps_member(g, key);
	const char *v;

	if (s == NULL)
		return 0;
	v = config_setting_type(s) == CONFIG_TYPE_STRING ? config_setting_get_string(s) : NULL;
	if (v == NULL || *v == '\0') {
		mm_ctx_error(ctx, s, "`%s` must be a non-empty string", key);
		return -1;
	}
	g_free(*out);
	*out = g_strdup(v);
	return 1;
}

int
mm_setting_bool(mm_ctx *ctx, const config_setting_t *g, const char *key, int *out)
{
	const config_setting_t *s = ps_member(g, key);

	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		mm_ctx_error(ctx, s, "`%s` must be true or false", key);
		return -1;
	}
	*out = config_setting_get_bool(s) != 0;
	return 1;
}

int
mm_setting_int(mm_ctx *ctx, const config_setting_t *g, const char *key, long long min,
	       long long max, long long *out)
{
	const config_setting_t *s = ps_member(g, key);
	long long v;

	if (s == NULL)
		return 0;
	if (!ps_is_int(s)) {
		mm_ctx_error(ctx, s, "`%s` must be a whole number between %lld and %lld", key, min,
			     max);
		return -1;
	}
	v = config_setting_get_int64(s);
	if (v < min || v > max) {
		mm_ctx_error(ctx, s, "`%s` must be between %lld and %lld, not %lld", key, min, max, v);
		return -1;
	}
	*out = v;
	return 1;
}

int
mm_setting_duration(mm_ctx *ctx, const config_setting_t *g, const char *key, long long min,
		    long long max, long long *seconds_r)
{
	const config_setting_t *s = ps_member(g, key);
	long long v;

	if (s == NULL)
		return 0;
	if (ps_is_int(s)) {
		v = config_setting_get_int64(s);
	} else if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		if (units_duration(config_setting_get_string(s), &v) < 0) {
			mm_ctx_error(ctx, s, "`%s`: \"%s\" is not a duration (like \"90s\", \"5m\","
				     " \"2h\", \"7d\")", key, config_setting_get_string(s));
			return -1;
		}
	} else {
		mm_ctx_error(ctx, s, "`%s` must be a duration (a string like \"5m\" or seconds)", key);
		return -1;
	}
	if (v < min || v > max) {
		mm_ctx_error(ctx, s, "`%s` must be between %llds and %llds, not %llds", key, min, max,
			     v);
		return -1;
	}
	*seconds_r = v;
	return 1;
}

int
mm_setting_size(mm_ctx *ctx, const config_setting_t *g, const char *key, unsigned long long max,
		unsigned long long *bytes_r)
{
	const config_setting_t *s = ps_member(g, key);
	unsigned long long v;

	if (s == NULL)
		return 0;
	if (ps_is_int(s)) {
		if (config_setting_get_int64(s) < 0) {
			mm_ctx_error(ctx, s, "`%s` must not be negative", key);
			return -1;
		}
		v = (unsigned long long)config_setting_get_int64(s);
	} else if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		if (units_size(config_setting_get_string(s), &v) < 0) {
			mm_ctx_error(ctx, s, "`%s`: \"%s\" is not a size (like \"512K\", \"50M\","
				     " \"2G\")", key, config_setting_get_string(s));
			return -1;
		}
	} else {
		mm_ctx_error(ctx, s, "`%s` must be a size (a string like \"50M\" or bytes)", key);
		return -1;
	}
	if (v > max) {
		mm_ctx_error(ctx, s, "`%s` must be at most %llu bytes, not %llu", key, max, v);
		return -1;
	}
	*bytes_r = v;
	return 1;
}

/* The list at s as strings, each checked by ok (NULL: non-empty is enough). */
static int
ps_list(mm_ctx *ctx, const config_setting_t *s, const char *key, size_t max, const char *what,
	int (*ok)(const char *), int lower, char ***out)
{
	char **v;
	int n;

	if (!ps_is_list(s) || (n = config_setting_length(s)) < 1 || (size_t)n > max) {
		mm_ctx_error(ctx, s, "`%s` must be a list of 1 to %zu %s", key, max, what);
		return -1;
	}
	v = g_new0(char *, (size_t)n + 1);
	for (int i = 0; i < n; i++) {
		const char *e = config_setting_get_string(config_setting_get_elem(s, (unsigned)i));

		if (e == NULL || *e == '\0' || (ok != NULL && !ok(e))) {
			mm_ctx_error(ctx, s, "`%s` element %d must be %s", key, i + 1,
				     ok != NULL ? "a bare address (like \"a@b.example\")"
						: "a non-empty string");
			g_strfreev(v);
			return -1;
		}
		v[i] = lower ? g_ascii_strdown(e, -1) : g_strdup(e);
	}
	g_strfreev(*out);
	*out = v;
	return 1;
}

int
mm_setting_strings(mm_ctx *ctx, const config_setting_t *g, const char *key, size_t max,
		   char ***out)
{
	const config_setting_t *s = ps_member(g, key);

	return s == NULL ? 0 : ps_list(ctx, s, key, max, "strings", NULL, 0, out);
}

static int
ps_bare_address(const char *a)
{
	const char *at = strchr(a, '@');

	return at != NULL && at != a && at[1] != '\0' && strchr(at + 1, '@') == NULL &&
	       strpbrk(a, " <>\t\r\n,;\"") == NULL;
}

int
mm_setting_addresses(mm_ctx *ctx, const config_setting_t *g, const char *key, size_t max,
		     char ***out)
{
	const config_setting_t *s = ps_member(g, key);

	return s == NULL ? 0 : ps_list(ctx, s, key, max, "addresses", ps_bare_address, 1, out);
}

int
mm_setting_verdict(mm_ctx *ctx, const config_setting_t *g, const char *key, unsigned allowed,
		   mm_verdict *out)
{
	static const struct { const char *name; mm_verdict v; } names[] = {
		{ "pass", MM_PASS }, { "done", MM_DONE }, { "keep", MM_KEEP },
		{ "defer", MM_DEFER }, { "fail", MM_FAIL },
	};
	const config_setting_t *s = ps_member(g, key);
	const char *v;
	GString *list;

	if (s == NULL)
		return 0;
	v = config_setting_type(s) == CONFIG_TYPE_STRING ? config_setting_get_string(s) : "";
	for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
		if ((allowed & MM_VERDICT_BIT(names[i].v)) && g_ascii_strcasecmp(v, names[i].name) == 0) {
			*out = names[i].v;
			return 1;
		}
	}
	list = g_string_new(NULL);
	for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
		if (allowed & MM_VERDICT_BIT(names[i].v))
			g_string_append_printf(list, "%s\"%s\"", list->len ? ", " : "", names[i].name);
	mm_ctx_error(ctx, s, "`%s` must be one of %s", key, list->str);
	g_string_free(list, TRUE);
	return -1;
}

int
mm_setting_mode(mm_ctx *ctx, const config_setting_t *g, const char *key, unsigned allowed_bits,
		unsigned *mode_r)
{
	const config_setting_t *s = ps_member(g, key);
	long long v = -1;

	if (s == NULL)
		return 0;
	/*
	 * libconfig 1.5 reads `mode = 0640;` as the decimal 640 (it has no
	 * octal numbers), so a number is taken as the octal digits it is
	 * written with, as chmod(1) does: 0640 and 640 both mean rw-r-----.
	 */
	if (ps_is_int(s) && config_setting_get_int64(s) >= 0 && config_setting_get_int64(s) <= 77777) {
		char digits[8];

		snprintf(digits, sizeof digits, "%lld", config_setting_get_int64(s));
		if (strspn(digits, "01234567") == strlen(digits))
			v = (long long)strtoul(digits, NULL, 8);
	} else if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		const char *p = config_setting_get_string(s);

		/* Octal digits only: "0640" or "640"; no sign, no blanks, no "0o". */
		if (*p != '\0' && strspn(p, "01234567") == strlen(p) && strlen(p) <= 5)
			v = (long long)strtoul(p, NULL, 8);
	}
	if (v < 0 || v > 07777 || ((unsigned)v & ~allowed_bits) != 0) {
		mm_ctx_error(ctx, s, "`%s` must be a file mode like \"0640\" (octal) within %04o",
			     key, allowed_bits);
		return -1;
	}
	*mode_r = (unsigned)v;
	return 1;
}

/* mailmill - ISC licence, see LICENSE */
/*
 * The configuration's schema tables against themselves and against the
 * manual (issue 15, item 7): every key the parser accepts has its entry in
 * docs/mailmill.conf.5 (a .TP whose head, .B or .BR, names it) in its
 * section, nested in its group's entry for `log` and `smtp`; that entry
 * states the key's default, its range and every value of an enum; and every
 * entry of those sections names a key the parser accepts.  On a failure the
 * entry to write is printed from the table's doc line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "daemon/core/cfg_int.h"
#include "daemon/oauth/oauth_config.h"

#ifndef MM_TEST_SRCDIR
#define MM_TEST_SRCDIR "."
#endif

/* ------------------------------------------------------------ the tables */

static void
test_defaults_parse(void **state)
{
	(void)state;
	for (const cfg_schema_group *g = cfg_schema_groups; g->name != NULL; g++) {
		/* Big enough for any group's struct; the offsets are checked below. */
		union { cfg c; cfg_account a; cfg_smtp m; } obj;

		memset(&obj, 0, sizeof obj);
		if (cfg_walk_defaults(g->keys, &obj) < 0)
			fail_msg("%s: a default does not parse as its type", g->name);
		cfg_walk_free(g->keys, &obj);
	}
}

static void
test_rows_sane(void **state)
{
	(void)state;
	for (const cfg_schema_group *g = cfg_schema_groups; g->name != NULL; g++) {
		for (const cfg_key *k = g->keys; k->name != NULL; k++) {
			if (cfg_key_find(g->keys, k->name) != k)
				fail_msg("%s: '%s' has two rows", g->name, k->name);
			if (k->doc == NULL || k->doc[0] == '\0')
				fail_msg("%s: '%s' has no doc line", g->name, k->name);
			if ((k->type == CFG_ENUM) != (k->names != NULL))
				fail_msg("%s: '%s': names go with CFG_ENUM", g->name, k->name);
			if (k->type == CFG_LIST && k->hook == NULL)
				fail_msg("%s: '%s': a list of groups needs a hook", g->name, k->name);
			if ((k->type == CFG_INT || k->type == CFG_DURATION) && k->min > k->max)
				fail_msg("%s: '%s': min > max", g->name, k->name);
		}
	}
}

/* ------------------------------------------------------------ the walker */

/* Every type of row, on a struct of this test's own. */
typedef struct t_obj {
	char *s, **l, *named;
	unsigned long long size;
	long long dur;
	int e, b, n;
} t_obj;

static const char *const t_names[] = { "one", "two", NULL };
static const cfg_key t_sub[] = {
	CFG_KINT("n", t_obj, n, "2", 1, 9, "a number in a group"),
	CFG_END
};
static const cfg_key t_keys[] = {
	CFG_KSTR("s", t_obj, s, CFG_REQUIRED, "a string"),
	CFG_KLIST("l", t_obj, l, "a list of strings"),
	CFG_KSIZE("size", t_obj, size, "0", 1024, 1 << 20, "a size"),
	CFG_KDUR("dur", t_obj, dur, "5m", 1, 3600, "a duration"),
	CFG_KENUM("e", t_obj, e, "two", t_names, 0, "an enum"),
	CFG_KENUM("named", t_obj, named, "one", t_names, CFG_NAMED, "an enum kept as its name"),
	CFG_KBOOL("b", t_obj, b, "true", "a bool"),
	CFG_K_("g", CFG_GROUP, t_obj, n, .sub = t_sub, .doc = "a group"),
	CFG_END
};

/* Walk text against t_keys into *o; the problems found (malloc'd) or NULL. */
static char *
t_walk(const char *text, t_obj *o)
{
	cfg_errs e = { .path = "t.conf" };
	cfg_walk w = { .e = &e, .ctx = "t: ", .obj = o };
	config_t lc;

	memset(o, 0, sizeof *o);
	config_init(&lc);
	assert_int_equal(config_read_string(&lc, text), CONFIG_TRUE);
	assert_int_equal(cfg_walk_defaults(t_keys, o), 0);
	cfg_walk_group(&w, config_root_setting(&lc), t_keys);
	config_destroy(&lc);
	return e.buf;
}

static void
test_walker(void **state)
{
	t_obj o;
	char *err;

	(void)state;
	err = t_walk("s = \"x\";\n", &o);
	assert_null(err);
	assert_string_equal(o.s, "x");
	assert_null(o.l);
	assert_int_equal(o.size, 0);
	assert_int_equal(o.dur, 300);
	assert_int_equal(o.e, 1);
	assert_string_equal(o.named, "one");
	assert_true(o.b);
	assert_int_equal(o.n, 2);
	cfg_walk_free(t_keys, &o);
	assert_null(o.s);

	err = t_walk("s = \"y\"; l = [ \"a\", \"b\" ]; size = \"2K\"; dur = \"1h\";\n"
		     "e = \"one\"; named = \"two\"; b = false; g = { n = 9; };\n", &o);
	assert_null(err);
	assert_string_equal(o.l[0], "a");
	assert_string_equal(o.l[1], "b");
	assert_null(o.l[2]);
	assert_int_equal(o.size, 2048);
	assert_int_equal(o.dur, 3600);
	assert_int_equal(o.e, 0);
	assert_string_equal(o.named, "two");
	assert_false(o.b);
	assert_int_equal(o.n, 9);
	cfg_walk_free(t_keys, &o);

	err = t_walk("l = [ \"a\", \"\" ];\n"
		     "size = \"512\";\n"
		     "dur = \"2h\";\n"
		     "e = \"three\";\n"
		     "g = { n = 10; m = 2; };\n"
		     "g2 = 5;\n", &o);
	assert_non_null(err);
	assert_string_equal(err,
		"t.conf:1: t: 'l' element 2 must be a non-empty string\n"
		"t.conf:2: t: 'size' must be at least 1K (or 0: no limit)\n"
		"t.conf:3: t: 'dur' must be between 1s and 3600s, not 7200s\n"
		"t.conf:4: t: 'e' must be one of \"one\", \"two\"\n"
		"t.conf:5: t: g: 'n' must be between 1 and 9, not 10\n"
		"t.conf:5: t: unknown setting 'm' in g\n"
		"t.conf:6: t: unknown setting 'g2'\n"
		"t.conf: t: missing required setting 's'\n");
	/* Invalid values leave the defaults. */
	assert_null(o.l);
	assert_int_equal(o.size, 0);
	assert_int_equal(o.dur, 300);
	assert_int_equal(o.e, 1);
	free(err);
	cfg_walk_free(t_keys, &o);

	err = t_walk("s = \"x\"; g = 1;\n", &o);
	assert_string_equal(err, "t.conf:1: t: 'g' must be a group: { n = 2; }\n");
	free(err);
	cfg_walk_free(t_keys, &o);
}

/* ------------------------------------------------------------ the manual */

typedef struct man {
	char **lines;
	int n;
} man;

/* An entry: the .TP at line tp, its head at tp + 1, its text up to end. */
typedef struct man_entry {
	int head, end;
} man_entry;

static man M;

static int
man_setup(void **state)
{
	char *text = NULL;
	GError *err = NULL;

	(void)state;
	if (!g_file_get_contents(MM_TEST_SRCDIR "/docs/mailmill.conf.5", &text, NULL, &err)) {
		fprintf(stderr, "cannot read the manual: %s\n", err->message);
		g_error_free(err);
		return -1;
	}
	M.lines = g_strsplit(text, "\n", -1);
	M.n = (int)g_strv_length(M.lines);
	g_free(text);
	return 0;
}

static int
man_teardown(void **state)
{
	(void)state;
	g_strfreev(M.lines);
	return 0;
}

/* The keys a head line (".B k", ".BR a \", \" b") names: the bold words. */
static char **
man_head_keys(const char *line)
{
	int bold_all = strncmp(line, ".B ", 3) == 0;
	char **argv = NULL, **keys;
	int argc = 0, n = 0;

	if (!bold_all && strncmp(line, ".BR ", 4) != 0)
		return g_new0(char *, 1);
	if (!g_shell_parse_argv(line + (bold_all ? 3 : 4), &argc, &argv, NULL))
		return g_new0(char *, 1);
	keys = g_new0(char *, argc + 1);
	for (int i = 0; i < argc; i += bold_all ? 1 : 2)
		keys[n++] = g_strdup(argv[i]);
	g_strfreev(argv);
	return keys;
}

/* The lines [*from, *to) of section name. */
static int
man_section(const char *name, int *from, int *to)
{
	char want[128];

	snprintf(want, sizeof want, ".SH %s", name);
	for (int i = 0; i < M.n; i++) {
		if (strcmp(M.lines[i], want) != 0)
			continue;
		*from = i + 1;
		for (*to = *from; *to < M.n && strncmp(M.lines[*to], ".SH", 3) != 0; (*to)++)
			;
		return 0;
	}
	return -1;
}

/* Every entry at the outermost .RS depth of lines [from, to), in order;
 * the callback returns 1 to stop. */
static int
man_entries(int from, int to, int (*fn)(man_entry *e, void *arg), void *arg)
{
	int depth = 0, open = -1;
	man_entry e;

	for (int i = from; i <= to; i++) {
		const char *l = i < to ? M.lines[i] : ".TP";

		if (strncmp(l, ".RS", 3) == 0)
			depth++;
		else if (strncmp(l, ".RE", 3) == 0)
			depth--;
		if (depth != 0 || strncmp(l, ".TP", 3) != 0)
			continue;
		if (open >= 0) {
			e.head = open;
			e.end = i;
			if (fn(&e, arg))
				return 1;
		}
		open = i + 1 < to ? i + 1 : -1;
	}
	return 0;
}

typedef struct find_arg {
	const char *key;
	man_entry found;
	int hit;
} find_arg;

static int
man_find_cb(man_entry *e, void *arg)
{
	find_arg *f = arg;
	char **keys = man_head_keys(M.lines[e->head]);

	for (char **k = keys; *k != NULL && !f->hit; k++) {
		if (strcmp(*k, f->key) == 0) {
			f->found = *e;
			f->hit = 1;
		}
	}
	g_strfreev(keys);
	return f->hit;
}

static int
man_find(int from, int to, const char *key, man_entry *e)
{
	find_arg f = { .key = key };

	man_entries(from, to, man_find_cb, &f);
	*e = f.found;
	return f.hit ? 0 : -1;
}

/* The lines [*from, *to) of the .RS ... .RE inside entry parent (name). */
static void
man_nested_range(const man_entry *parent, const char *name, int *from, int *to)
{
	for (*from = parent->head + 1; *from < parent->end && strncmp(M.lines[*from], ".RS", 3) != 0;
	     (*from)++)
		;
	if (*from == parent->end)
		fail_msg("mailmill.conf.5: the entry '%s' lists no keys (.RS .TP ... .RE)", name);
	(*from)++;
	for (*to = *from; *to < parent->end && strncmp(M.lines[*to], ".RE", 3) != 0; (*to)++)
		;
}

/* Where group g's entries are: its section, or inside its parent's .RS. */
static void
man_group_range(const cfg_schema_group *g, int *from, int *to)
{
	man_entry parent;

	if (man_section(g->section, from, to) < 0)
		fail_msg("mailmill.conf.5 has no section %s", g->section);
	if (g->parent == NULL)
		return;
	if (man_find(*from, *to, g->parent, &parent) < 0)
		fail_msg("mailmill.conf.5, %s: no entry '%s'", g->section, g->parent);
	man_nested_range(&parent, g->parent, from, to);
}

static char *
man_text(const man_entry *e)
{
	GString *t = g_string_new(NULL);

	for (int i = e->head; i < e->end; i++)
		g_string_append_printf(t, "%s\n", M.lines[i]);
	return g_string_free(t, FALSE);
}

static const char *
type_word(cfg_type t)
{
	static const char *const w[] = { "a string", "an absolute path", "true or false",
					 "a number", "a duration", "a size", "one of", "a list",
					 "a group", "a list of groups" };
	return w[t];
}

static int problems;

static void problem(const cfg_schema_group *g, const cfg_key *k, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
problem(const cfg_schema_group *g, const cfg_key *k, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mailmill.conf.5, %s%s%s: '%s': ", g->section, g->parent ? ", " : "",
		g->parent ? g->parent : "", k->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n  the table says (cfg_schema.c): %s (%s%s%s%s)\n", k->doc,
		type_word(k->type), k->def ? ", default \"" : "", k->def ? k->def : "",
		k->def ? "\"" : "");
	problems++;
}

static void
test_every_key_documented(void **state)
{
	(void)state;
	problems = 0;
	for (const cfg_schema_group *g = cfg_schema_groups; g->name != NULL; g++) {
		int from, to;

		man_group_range(g, &from, &to);
		for (const cfg_key *k = g->keys; k->name != NULL; k++) {
			man_entry e;
			char *text, want[64];

			if (man_find(from, to, k->name, &e) < 0) {
				problem(g, k, "no entry (.TP, then .B %s)", k->name);
				continue;
			}
			text = man_text(&e);
			if (k->def != NULL && !(k->flags & CFG_BUILD_DEF) && strstr(text, k->def) == NULL)
				problem(g, k, "the entry does not give the default %s", k->def);
			for (int i = 0; k->names != NULL && k->names[i] != NULL; i++) {
				snprintf(want, sizeof want, "\"%s\"", k->names[i]);
				if (strstr(text, want) == NULL)
					problem(g, k, "the entry does not list the value %s", want);
			}
			if (k->type == CFG_INT) {
				snprintf(want, sizeof want, "%lld..%lld", k->min, k->max);
				if (strstr(text, want) == NULL)
					problem(g, k, "the entry does not give the range %s", want);
			}
			g_free(text);
		}
	}
	if (problems > 0)
		fail_msg("%d problem(s) between the manual and the parser's tables", problems);
}

typedef struct stale_arg {
	const cfg_schema_group *g;
	int bad;
} stale_arg;

static int
stale_cb(man_entry *e, void *arg)
{
	stale_arg *s = arg;
	char **keys = man_head_keys(M.lines[e->head]);

	if (keys[0] == NULL) {
		fprintf(stderr, "mailmill.conf.5, %s: an entry with no key: %s\n", s->g->section,
			M.lines[e->head]);
		s->bad++;
	}
	for (char **k = keys; *k != NULL; k++) {
		if (cfg_key_find(s->g->keys, *k) == NULL) {
			fprintf(stderr, "mailmill.conf.5, %s%s%s: '%s' is documented, but the parser "
				"does not know it\n", s->g->section, s->g->parent ? ", " : "",
				s->g->parent ? s->g->parent : "", *k);
			s->bad++;
		}
	}
	g_strfreev(keys);
	return 0;
}

static void
test_no_stale_entry(void **state)
{
	stale_arg s = { 0 };

	(void)state;
	for (const cfg_schema_group *g = cfg_schema_groups; g->name != NULL; g++) {
		int from, to;

		s.g = g;
		man_group_range(g, &from, &to);
		man_entries(from, to, stale_cb, &s);
	}
	if (s.bad > 0)
		fail_msg("%d entries of the manual the parser does not accept", s.bad);
}

/* ------------------------------------------------- the oauth2 group's keys */

static int oauth_unknown;

static void
oauth_err_cb(void *arg, const config_setting_t *set, const char *msg)
{
	(void)arg;
	(void)set;
	if (strstr(msg, "unknown setting") != NULL || strstr(msg, "not read") != NULL) {
		fprintf(stderr, "oauth2: %s\n", msg);
		oauth_unknown++;
	}
}

/* The parser takes key (whatever it says of the value) and refuses
 * another name: oauth_cfg_keys is the group's whole vocabulary. */
static int
oauth_accepts(const char *key)
{
	char text[200];
	config_t cf;
	oauth_cfg *o = NULL;
	int before = oauth_unknown;

	config_init(&cf);
	snprintf(text, sizeof text, "oauth2 = { %s = \"x\"; };", key);
	assert_int_equal(config_read_string(&cf, text), CONFIG_TRUE);
	assert_int_equal(oauth_cfg_setting(config_lookup(&cf, "oauth2"), &o, oauth_err_cb, NULL),
			 1);
	oauth_cfg_free(&o);
	config_destroy(&cf);
	return oauth_unknown == before;
}

/* Every key of an oauth2 group (oauth_config.c is not table-driven like
 * cfg_schema.c, its table is oauth_cfg_keys) has its entry in the
 * account's oauth2 entry of the manual, and every entry there is a key. */
static void
test_oauth2_keys_documented(void **state)
{
	man_entry parent, e;
	int from, to, bad = 0;

	(void)state;
	oauth_unknown = 0;
	assert_false(oauth_accepts("no_such_key"));
	oauth_unknown = 0;
	if (man_section("ACCOUNT SETTINGS", &from, &to) < 0 || man_find(from, to, "oauth2", &parent) < 0)
		fail_msg("mailmill.conf.5, ACCOUNT SETTINGS: no entry 'oauth2'");
	man_nested_range(&parent, "oauth2", &from, &to);
	for (const char *const *k = oauth_cfg_keys; *k != NULL; k++) {
		if (!oauth_accepts(*k)) {
			fprintf(stderr, "oauth2: '%s' is in oauth_cfg_keys but refused\n", *k);
			bad++;
		}
		if (man_find(from, to, *k, &e) < 0) {
			fprintf(stderr, "mailmill.conf.5, ACCOUNT SETTINGS, oauth2: '%s': no entry "
				"(.TP, then .B %s)\n", *k, *k);
			bad++;
		}
	}
	for (int i = from; i < to; i++) {
		char **keys;

		if (strncmp(M.lines[i], ".TP", 3) != 0 || i + 1 >= to)
			continue;
		keys = man_head_keys(M.lines[i + 1]);
		for (char **k = keys; *k != NULL; k++) {
			if (!oauth_accepts(*k)) {
				fprintf(stderr, "mailmill.conf.5, oauth2: '%s' is documented, but the "
					"parser does not know it\n", *k);
				bad++;
			}
		}
		g_strfreev(keys);
	}
	if (bad > 0)
		fail_msg("%d problem(s) between the manual and the oauth2 group's keys", bad);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_parse),
		cmocka_unit_test(test_rows_sane),
		cmocka_unit_test(test_walker),
		cmocka_unit_test(test_every_key_documented),
		cmocka_unit_test(test_no_stale_entry),
		cmocka_unit_test(test_oauth2_keys_documented),
	};

	return cmocka_run_group_tests(tests, man_setup, man_teardown);
}

/* mailmill - ISC licence, see LICENSE */
/*
 * The public setting helpers (mm_setting_*, daemon/core/plugin_settings.c)
 * on real libconfig settings: what each accepts, returns and refuses, and
 * that every refusal names the key at its file:line.  mm_ctx_error is this
 * file's own: it records the message and the line instead of logging.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <mailmill/plugin.h>

static char last_err[512];
static int last_line, n_errs;

void
mm_ctx_error(mm_ctx *ctx, const config_setting_t *setting, const char *fmt, ...)
{
	va_list ap;

	(void)ctx;
	va_start(ap, fmt);
	vsnprintf(last_err, sizeof last_err, fmt, ap);
	va_end(ap);
	last_line = setting != NULL ? (int)config_setting_source_line(setting) : 0;
	n_errs++;
}

static config_t cfg;
static const config_setting_t *g;

static const char conf[] =
	"stage = {\n"
	"  s = \"text\";\n"          /* 2 */
	"  empty = \"\";\n"          /* 3 */
	"  n = 42;\n"                /* 4 */
	"  b = true;\n"              /* 5 */
	"  d_str = \"5m\";\n"        /* 6 */
	"  d_num = 90;\n"            /* 7 */
	"  d_bad = \"5 minutes\";\n" /* 8 */
	"  z = \"50M\";\n"           /* 9 */
	"  z_neg = -1;\n"            /* 10 */
	"  addrs = [ \"A@Example.org\", \"b@example.net\" ];\n" /* 11 */
	"  addrs_bad = [ \"Name <a@example.org>\" ];\n"         /* 12 */
	"  strs = [ \"x\", \"y\", \"z\" ];\n"                   /* 13 */
	"  v = \"keep\";\n"          /* 14 */
	"  v_bad = \"defer\";\n"     /* 15 */
	"  m_str = \"0640\";\n"      /* 16 */
	"  m_num = 0750;\n"          /* 17 */
	"  m_bad = \"0648\";\n"      /* 18 */
	"  m_big = \"4755\";\n"      /* 19 */
	"  empty_list = [];\n"       /* 20 */
	"};\n";

static int
setup(void **state)
{
	(void)state;
	config_init(&cfg);
	if (config_read_string(&cfg, conf) != CONFIG_TRUE)
		return -1;
	g = config_lookup(&cfg, "stage");
	n_errs = 0;
	last_err[0] = '\0';
	return g != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	config_destroy(&cfg);
	return 0;
}

static void
expect_error(int rc, const char *key, int line)
{
	assert_int_equal(rc, -1);
	assert_int_equal(n_errs, 1);
	assert_int_equal(last_line, line);
	assert_non_null(strstr(last_err, key));
	n_errs = 0;
}

static void
test_string(void **state)
{
	char *v = NULL;

	(void)state;
	assert_int_equal(mm_setting_string(NULL, g, "s", &v), 1);
	assert_string_equal(v, "text");
	assert_int_equal(mm_setting_string(NULL, g, "absent", &v), 0);
	assert_string_equal(v, "text"); /* untouched */
	expect_error(mm_setting_string(NULL, g, "empty", &v), "`empty`", 3);
	expect_error(mm_setting_string(NULL, g, "n", &v), "`n` must be a non-empty string", 4);
	g_free(v);
}

static void
test_bool_int(void **state)
{
	int b = 0;
	long long n = 7;

	(void)state;
	assert_int_equal(mm_setting_bool(NULL, g, "b", &b), 1);
	assert_int_equal(b, 1);
	expect_error(mm_setting_bool(NULL, g, "s", &b), "true or false", 2);
	assert_int_equal(mm_setting_int(NULL, g, "n", 1, 100, &n), 1);
	assert_int_equal(n, 42);
	expect_error(mm_setting_int(NULL, g, "n", 1, 10, &n), "between 1 and 10, not 42", 4);
	assert_int_equal(n, 42);
	expect_error(mm_setting_int(NULL, g, "s", 1, 10, &n), "whole number", 2);
	assert_int_equal(mm_setting_int(NULL, g, "absent", 1, 10, &n), 0);
}

static void
test_duration(void **state)
{
	long long d = 0;

	(void)state;
	assert_int_equal(mm_setting_duration(NULL, g, "d_str", 1, 3600, &d), 1);
	assert_int_equal(d, 300);
	/* A plain number stays seconds (what the plugins took before). */
	assert_int_equal(mm_setting_duration(NULL, g, "d_num", 1, 3600, &d), 1);
	assert_int_equal(d, 90);
	expect_error(mm_setting_duration(NULL, g, "d_bad", 1, 3600, &d), "is not a duration", 8);
	expect_error(mm_setting_duration(NULL, g, "d_str", 1, 60, &d), "between 1s and 60s, not 300s",
		     6);
	expect_error(mm_setting_duration(NULL, g, "b", 1, 60, &d), "must be a duration", 5);
	assert_int_equal(d, 90);
}

static void
test_size(void **state)
{
	unsigned long long z = 0;

	(void)state;
	assert_int_equal(mm_setting_size(NULL, g, "z", 1ULL << 30, &z), 1);
	assert_int_equal(z, 50ULL << 20);
	assert_int_equal(mm_setting_size(NULL, g, "n", 100, &z), 1);
	assert_int_equal(z, 42);
	expect_error(mm_setting_size(NULL, g, "z", 1024, &z), "at most 1024 bytes", 9);
	expect_error(mm_setting_size(NULL, g, "z_neg", 1024, &z), "negative", 10);
	expect_error(mm_setting_size(NULL, g, "s", 1024, &z), "is not a size", 2);
}

static void
test_lists(void **state)
{
	char **a = NULL;

	(void)state;
	assert_int_equal(mm_setting_addresses(NULL, g, "addrs", 10, &a), 1);
	assert_string_equal(a[0], "a@example.org"); /* lower-cased */
	assert_string_equal(a[1], "b@example.net");
	assert_null(a[2]);
	expect_error(mm_setting_addresses(NULL, g, "addrs_bad", 10, &a), "bare address", 12);
	expect_error(mm_setting_addresses(NULL, g, "addrs", 1, &a), "1 to 1 addresses", 11);
	expect_error(mm_setting_addresses(NULL, g, "empty_list", 5, &a), "list of 1 to 5", 20);
	assert_string_equal(a[0], "a@example.org"); /* untouched by the failures */
	g_strfreev(a);
	a = NULL;
	assert_int_equal(mm_setting_strings(NULL, g, "strs", 3, &a), 1);
	assert_string_equal(a[2], "z");
	assert_null(a[3]);
	expect_error(mm_setting_strings(NULL, g, "s", 3, &a), "must be a list", 2);
	g_strfreev(a);
}

static void
test_verdict(void **state)
{
	mm_verdict v = MM_PASS;
	unsigned ok = MM_VERDICT_BIT(MM_PASS) | MM_VERDICT_BIT(MM_DONE) | MM_VERDICT_BIT(MM_KEEP);

	(void)state;
	assert_int_equal(mm_setting_verdict(NULL, g, "v", ok, &v), 1);
	assert_int_equal(v, MM_KEEP);
	expect_error(mm_setting_verdict(NULL, g, "v_bad", ok, &v),
		     "`v_bad` must be one of \"pass\", \"done\", \"keep\"", 15);
	assert_int_equal(v, MM_KEEP);
	assert_int_equal(mm_setting_verdict(NULL, g, "v_bad", ok | MM_VERDICT_BIT(MM_DEFER), &v), 1);
	assert_int_equal(v, MM_DEFER);
}

static void
test_mode(void **state)
{
	unsigned m = 0;

	(void)state;
	assert_int_equal(mm_setting_mode(NULL, g, "m_str", 0777, &m), 1);
	assert_int_equal(m, 0640);
	/* libconfig reads 0750 as 750: taken as the octal digits written. */
	assert_int_equal(mm_setting_mode(NULL, g, "m_num", 0777, &m), 1);
	assert_int_equal(m, 0750);
	expect_error(mm_setting_mode(NULL, g, "m_bad", 0777, &m), "file mode", 18);
	expect_error(mm_setting_mode(NULL, g, "m_big", 0777, &m), "within 0777", 19);
	assert_int_equal(mm_setting_mode(NULL, g, "m_big", 07777, &m), 1);
	assert_int_equal(m, 04755);
	expect_error(mm_setting_mode(NULL, g, "z_neg", 0777, &m), "file mode", 10);
	expect_error(mm_setting_mode(NULL, g, "v", 0777, &m), "file mode", 14);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_string, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bool_int, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duration, setup, teardown),
		cmocka_unit_test_setup_teardown(test_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lists, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verdict, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mode, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

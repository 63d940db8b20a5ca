/* mailmill - ISC licence, see LICENSE */
/*
 * The account keys `at` and `delete_after` (daemon/core/cfg_schedule.c):
 * what each becomes, how `at` and `interval` decide together, and what is
 * refused, each problem pointing at its line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <libconfig.h>

#include "daemon/core/cfg_schedule.h"

typedef struct errs {
	int n;
	int line[16];
	char text[1024];
} errs;

static void
collect(void *arg, const config_setting_t *s, const char *msg)
{
	errs *e = arg;
	size_t used = strlen(e->text);

	if (e->n < 16)
		e->line[e->n] = config_setting_source_line(s);
	e->n++;
	snprintf(e->text + used, sizeof e->text - used, "%s\n", msg);
}

/* Parse one account group (text) through cfg_schedule_setting; *taken_r
 * counts the settings it took. */
static void
parse(const char *text, cfg_account *a, errs *e, int *taken_r)
{
	config_t lc;
	config_setting_t *g;

	memset(a, 0, sizeof *a);
	memset(e, 0, sizeof *e);
	*taken_r = 0;
	config_init(&lc);
	if (config_read_string(&lc, text) != CONFIG_TRUE)
		fail_msg("libconfig: %s at line %d", config_error_text(&lc), config_error_line(&lc));
	g = config_lookup(&lc, "a");
	assert_non_null(g);
	for (int i = 0; i < config_setting_length(g); i++)
		*taken_r += cfg_schedule_setting(config_setting_get_elem(g, (unsigned)i), a,
						 collect, e);
	config_destroy(&lc);
}

static void
test_at(void **state)
{
	cfg_account a;
	errs e;
	int taken;

	(void)state;
	parse("a = { at = [ \"14:00\", \"02:00\", \"00:00\", \"23:59\" ]; keep = false; };",
	      &a, &e, &taken);
	assert_int_equal(e.n, 0);
	assert_int_equal(taken, 1);   /* keep is cfg.c's */
	assert_int_equal(a.n_at, 4);
	assert_int_equal(a.at[0], 0);
	assert_int_equal(a.at[1], 120);
	assert_int_equal(a.at[2], 840);
	assert_int_equal(a.at[3], 1439);
	assert_true(a.at_only);       /* no interval: only at those times */

	parse("a = { interval = \"1h\"; at = ( \"06:30\" ); };", &a, &e, &taken);
	assert_int_equal(e.n, 0);
	assert_int_equal(a.n_at, 1);
	assert_int_equal(a.at[0], 390);
	assert_false(a.at_only);      /* both */

	parse("a = { at = \"06:30\"; };", &a, &e, &taken);
	assert_int_equal(e.n, 0);
	assert_int_equal(a.n_at, 1);
	assert_true(a.at_only);
}

static void
test_at_refused(void **state)
{
	cfg_account a;
	errs e;
	int taken;

	(void)state;
	parse("a = {\n at = [ \"02:00\",\n \"24:00\",\n \"2:00\",\n \"12:60\",\n \"ab:cd\",\n"
	      " \"02:00\",\n \"02:00 \" ];\n};", &a, &e, &taken);
	assert_int_equal(taken, 1);
	assert_int_equal(e.n, 6);
	/* Each problem points at its element's line. */
	for (int i = 0; i < 6; i++)
		assert_int_equal(e.line[i], i + 3);
	assert_non_null(strstr(e.text, "\"24:00\" is not a time of day"));
	assert_non_null(strstr(e.text, "\"02:00\" is given twice"));
	assert_int_equal(a.n_at, 1);  /* what was good */

	parse("a = { at = [ ]; };", &a, &e, &taken);
	assert_int_equal(e.n, 1);
	assert_non_null(strstr(e.text, "'at' is empty"));
	parse("a = { at = 5; };", &a, &e, &taken);
	assert_int_equal(e.n, 1);
	assert_non_null(strstr(e.text, "'at' must be a list"));
	parse("a = { at = ( 5 ); };", &a, &e, &taken);
	assert_int_equal(e.n, 1);

	{
		char text[1024] = "a = { at = [ ";
		for (int i = 0; i <= CFG_AT_MAX; i++)
			snprintf(text + strlen(text), sizeof text - strlen(text), "%s\"%02d:%02d\"",
				 i ? ", " : "", i / 2, i % 2 * 30);
		strcat(text, " ]; };");
		parse(text, &a, &e, &taken);
		assert_int_equal(e.n, 1);
		assert_non_null(strstr(e.text, "at most 48"));
	}
}

static void
test_delete_after(void **state)
{
	cfg_account a;
	errs e;
	int taken;

	(void)state;
	parse("a = { delete_after = \"30d\"; interval = \"5m\"; };", &a, &e, &taken);
	assert_int_equal(e.n, 0);
	assert_int_equal(taken, 1);
	assert_int_equal(a.delete_after_s, 30LL * 86400);
	assert_int_equal(a.n_at, 0);
	parse("a = { delete_after = 3600; keep = false; };", &a, &e, &taken);
	assert_int_equal(e.n, 0);
	assert_int_equal(a.delete_after_s, 3600);

	parse("a = { delete_after = \"soon\"; };", &a, &e, &taken);
	assert_int_equal(e.n, 1);
	assert_non_null(strstr(e.text, "\"soon\" is not a duration"));
	parse("a = { delete_after = \"0s\"; };", &a, &e, &taken);
	assert_int_equal(e.n, 1);
	parse("a = { delete_after = \"3651d\"; };", &a, &e, &taken);
	assert_int_equal(e.n, 1);
	parse("a = { delete_after = true; };", &a, &e, &taken);
	assert_int_equal(e.n, 1);
	/* keep = true never deletes: the two together are a mistake. */
	parse("a = { keep = true;\n delete_after = \"30d\"; };", &a, &e, &taken);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.line[0], 2);
	assert_non_null(strstr(e.text, "keep never deletes"));
	assert_int_equal(a.delete_after_s, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_at),
		cmocka_unit_test(test_at_refused),
		cmocka_unit_test(test_delete_after),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

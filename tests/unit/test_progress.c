/* mailmill - ISC licence, see LICENSE */
/* The worker's progress lines: what the writer sends the parser reads back,
 * and what a broken worker might send is refused, never overruns a field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/sched/progress.h"

static void
test_start(void **state)
{
	progress_event ev;

	(void)state;
	assert_int_equal(progress_parse("S 00000001abc 1234", &ev), 0);
	assert_int_equal(ev.kind, PROGRESS_START);
	assert_string_equal(ev.uid, "00000001abc");
	assert_int_equal(ev.size, 1234);
	assert_int_equal(progress_parse("S u 18446744073709551615", &ev), 0);
	assert_true(ev.size == 18446744073709551615ULL);
}

static void
test_done(void **state)
{
	progress_event ev;

	(void)state;
	assert_int_equal(progress_parse("D u1 99 done archive", &ev), 0);
	assert_int_equal(ev.kind, PROGRESS_DONE);
	assert_string_equal(ev.uid, "u1");
	assert_int_equal(ev.size, 99);
	assert_string_equal(ev.verdict, "done");
	assert_string_equal(ev.stage, "archive");
	/* "-": decided by the end of the pipeline, no stage. */
	assert_int_equal(progress_parse("D u1 99 pass -", &ev), 0);
	assert_string_equal(ev.stage, "");
}

static void
test_error_and_result(void **state)
{
	progress_event ev;

	(void)state;
	assert_int_equal(progress_parse("E acct: cannot connect: refused", &ev), 0);
	assert_int_equal(ev.kind, PROGRESS_ERROR);
	assert_string_equal(ev.error, "acct: cannot connect: refused");
	assert_int_equal(progress_parse("R 5 3 1 1 0 10000 6000 0 1 1", &ev), 0);
	assert_int_equal(ev.kind, PROGRESS_RESULT);
	assert_int_equal(ev.stats.fetched, 5);
	assert_int_equal(ev.stats.deleted, 3);
	assert_int_equal(ev.stats.kept, 1);
	assert_int_equal(ev.stats.deferred, 1);
	assert_int_equal(ev.stats.skipped, 0);
	assert_int_equal(ev.stats.bytes, 10000);
	assert_int_equal(ev.stats.deleted_bytes, 6000);
	assert_int_equal(ev.stats.fail, RUN_FAIL_NONE);
	assert_int_equal(ev.stats.stopped, 1);
	assert_int_equal(ev.stats.journal_empty, 1);
	assert_int_equal(progress_parse("R 0 0 0 0 0 0 0 2 0 0", &ev), 0);
	assert_int_equal(ev.stats.fail, RUN_FAIL_AUTH);
	assert_int_equal(ev.stats.journal_empty, 0);
}

static void
test_malformed(void **state)
{
	static const char *const bad[] = {
		"", "S", "S ", "X u 1", "Su 1", "S  1",
		"S u", "S u 1 extra", "S u -1", "S u +1", "S u 1x", "S u 0x10",
		"S u 18446744073709551616",                       /* overflows */
		"S u 99999999999999999999999",
		"D u 1 done", "D u 1 done archive extra", "D u one done archive",
		"R 1 2 3 4 5 6 7 0 0", "R 1 2 3 4 5 6 7 0 0 0 0", /* 9 and 11 fields */
		"R 1 2 3 4 5 6 7 3 0 0",                          /* fail out of range */
		"R 1 2 3 4 5 6 7 0 2 0",                          /* stopped out of range */
		"R 1 2 3 4 5 6 7 0 0 2",                          /* journal_empty out of range */
		"R a 2 3 4 5 6 7 0 0 0",
	};
	progress_event ev;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (progress_parse(bad[i], &ev) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
}

static void
test_field_bounds(void **state)
{
	char line[300], uid[PROGRESS_UID_MAX + 1], stage[PROGRESS_STAGE_MAX + 1];
	char big[PROGRESS_ERROR_MAX * 2];
	progress_event ev;

	(void)state;
	/* The longest uid that fits is accepted whole, one more is refused. */
	memset(uid, 'u', PROGRESS_UID_MAX - 1);
	uid[PROGRESS_UID_MAX - 1] = '\0';
	snprintf(line, sizeof line, "S %s 1", uid);
	assert_int_equal(progress_parse(line, &ev), 0);
	assert_string_equal(ev.uid, uid);
	memset(uid, 'u', PROGRESS_UID_MAX);
	uid[PROGRESS_UID_MAX] = '\0';
	snprintf(line, sizeof line, "S %s 1", uid);
	assert_int_equal(progress_parse(line, &ev), -1);
	memset(stage, 's', PROGRESS_STAGE_MAX);
	stage[PROGRESS_STAGE_MAX] = '\0';
	snprintf(line, sizeof line, "D u 1 done %s", stage);
	assert_int_equal(progress_parse(line, &ev), -1);
	snprintf(line, sizeof line, "D u 1 abcdefghijklmnopq archive");     /* 17-byte verdict */
	assert_int_equal(progress_parse(line, &ev), -1);
	/* An error text longer than the field is cut, not overrun. */
	big[0] = 'E';
	big[1] = ' ';
	memset(big + 2, 'e', sizeof big - 3);
	big[sizeof big - 1] = '\0';
	assert_int_equal(progress_parse(big, &ev), 0);
	assert_int_equal(strlen(ev.error), PROGRESS_ERROR_MAX - 1);
}

/* What progress_format_* writes, progress_parse reads back. */
static void
test_round_trip(void **state)
{
	char line[PROGRESS_LINE_MAX];
	progress_event ev;
	run_stats s;
	int n;

	(void)state;
	n = progress_format_message(line, sizeof line, "abc", 42, NULL, NULL);
	assert_int_equal(n, (int)strlen("S abc 42\n"));
	assert_string_equal(line, "S abc 42\n");
	line[n - 1] = '\0';
	assert_int_equal(progress_parse(line, &ev), 0);
	assert_int_equal(ev.kind, PROGRESS_START);

	n = progress_format_message(line, sizeof line, "abc", 42, "keep", NULL);
	assert_string_equal(line, "D abc 42 keep -\n");
	line[n - 1] = '\0';
	assert_int_equal(progress_parse(line, &ev), 0);
	assert_string_equal(ev.stage, "");
	assert_string_equal(ev.verdict, "keep");

	/* Line breaks in an error would split it into two lines: spaces. */
	n = progress_format_error(line, sizeof line, "first\nsecond\r\nthird");
	assert_string_equal(line, "E first second  third\n");
	line[n - 1] = '\0';
	assert_int_equal(progress_parse(line, &ev), 0);
	assert_string_equal(ev.error, "first second  third");

	memset(&s, 0, sizeof s);
	s.fetched = 7;
	s.deleted = 6;
	s.bytes = 18446744073709551615ULL;
	s.fail = RUN_FAIL_TEMP;
	n = progress_format_result(line, sizeof line, &s);
	line[n - 1] = '\0';
	assert_int_equal(progress_parse(line, &ev), 0);
	assert_int_equal(ev.stats.fetched, 7);
	assert_int_equal(ev.stats.deleted, 6);
	assert_true(ev.stats.bytes == 18446744073709551615ULL);
	assert_int_equal(ev.stats.fail, RUN_FAIL_TEMP);

	/* Too small a buffer: -1, nothing half-sent. */
	assert_int_equal(progress_format_message(line, 8, "abcdef", 42, NULL, NULL), -1);
}

/* The T line carries the counts --once needs for its exit status. */
static void
test_totals(void **state)
{
	progress_event ev;
	run_stats s;
	char line[PROGRESS_LINE_MAX];
	int n;

	(void)state;
	memset(&s, 0, sizeof s);
	s.listed = 10;
	s.failed = 2;
	s.unsettled = 1;
	s.moved = 4;
	s.flagged = 5;
	n = progress_format_totals(line, sizeof line, &s);
	assert_true(n > 0);
	line[n - 1] = '\0';
	assert_int_equal(progress_parse(line, &ev), 0);
	assert_int_equal(ev.kind, PROGRESS_TOTALS);
	assert_int_equal(ev.stats.listed, 10);
	assert_int_equal(ev.stats.failed, 2);
	assert_int_equal(ev.stats.unsettled, 1);
	assert_int_equal(ev.stats.moved, 4);
	assert_int_equal(ev.stats.flagged, 5);
	assert_int_equal(progress_parse("T 1 2", &ev), -1);
	assert_int_equal(progress_parse("T 1 2 3 4 5 6", &ev), -1);
	assert_int_equal(progress_parse("T 1 2 3 4", &ev), -1);
	assert_int_equal(progress_parse("T 1 x 3", &ev), -1);
	assert_int_equal(progress_parse("T 1 2 99999999999999999999999", &ev), -1);
}

static void
test_meter(void **state)
{
	char line[256];

	(void)state;
	progress_format_meter(line, sizeof line, "acct", 0, 5000, 0);
	assert_string_equal(line, "acct: 0/5000 messages");
	/* 100 in 2 s: 50 msg/s, 4900 left: 98 s. */
	progress_format_meter(line, sizeof line, "acct", 100, 5000, 2.0);
	assert_string_equal(line, "acct: 100/5000 messages, 50.0 msg/s, ETA 1:38");
	progress_format_meter(line, sizeof line, "acct", 1, 10000, 1.0);
	assert_string_equal(line, "acct: 1/10000 messages, 1.0 msg/s, ETA 2:46:39");
	progress_format_meter(line, sizeof line, "acct", 7, 7, 1.0);
	assert_string_equal(line, "acct: 7/7 messages, 7.0 msg/s, ETA 0:00");
	/* Cut to fit, always terminated. */
	assert_int_equal(progress_format_meter(line, 8, "account", 1, 2, 1.0), 7);
	assert_string_equal(line, "account");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_start),
		cmocka_unit_test(test_done),
		cmocka_unit_test(test_error_and_result),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_field_bounds),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_totals),
		cmocka_unit_test(test_meter),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

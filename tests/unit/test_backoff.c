/* mailmill - ISC licence, see LICENSE */
/* When an account runs next: after a good run, at the start, after failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon/sched/backoff.h"

#define EPS 1e-6

static void
assert_near(double got, double want, const char *what)
{
	if (got < want - EPS || got > want + EPS)
		fail_msg("%s: got %.6f, want %.6f", what, got, want);
}

static void
test_next(void **state)
{
	(void)state;
	assert_near(backoff_next(600, 0), 600, "no jitter");
	assert_near(backoff_next(600, 1), 660, "+10%");
	assert_near(backoff_next(600, -1), 540, "-10%");
	assert_near(backoff_next(600, 0.5), 630, "+5%");
	/* r outside [-1, 1] is clamped: never more than 10% away. */
	assert_near(backoff_next(600, 7), 660, "r clamped above");
	assert_near(backoff_next(600, -7), 540, "r clamped below");
}

static void
test_first(void **state)
{
	(void)state;
	assert_near(backoff_first(60, 0), 0, "at once");
	assert_near(backoff_first(60, 1), 6, "10% of a minute");
	assert_near(backoff_first(60, 0.5), 3, "half of that");
	/* Long intervals: the first runs are spread over 30 s at most. */
	assert_near(backoff_first(3600, 1), BACKOFF_FIRST_MAX_S, "capped");
	assert_near(backoff_first(3600, 0.5), BACKOFF_FIRST_MAX_S / 2, "half the cap");
	assert_near(backoff_first(60, -3), 0, "r clamped: never negative");
}

static void
test_failed_doubles(void **state)
{
	(void)state;
	/* interval 60, cap 3600: 120, 240, 480, 960, 1920, then the cap. */
	assert_near(backoff_failed(60, 1, 0, 3600, 0), 120, "1 failure");
	assert_near(backoff_failed(60, 2, 0, 3600, 0), 240, "2 failures");
	assert_near(backoff_failed(60, 5, 0, 3600, 0), 1920, "5 failures");
	assert_near(backoff_failed(60, 6, 0, 3600, 0), 3600, "6 failures: capped");
	assert_near(backoff_failed(60, 1000000, 0, 3600, 0), 3600, "a million: capped");
	assert_near(backoff_failed(60, 0, 0, 3600, 0), 60, "no failure: the interval");
	/* Jitter goes on top, up to 10%, never below. */
	assert_near(backoff_failed(60, 6, 0, 3600, 1), 3960, "cap + 10%");
	assert_near(backoff_failed(60, 1, 0, 3600, -1), 120, "r clamped: no earlier");
}

static void
test_failed_auth(void **state)
{
	(void)state;
	/* Refused logins: x4 per failure, up to 4 times the cap. */
	assert_near(backoff_failed(60, 1, 1, 3600, 0), 240, "auth, 1 failure");
	assert_near(backoff_failed(60, 2, 1, 3600, 0), 960, "auth, 2 failures");
	assert_near(backoff_failed(60, 3, 1, 3600, 0), 3840, "auth, 3 failures");
	assert_near(backoff_failed(60, 4, 1, 3600, 0), 14400, "auth, 4: capped at 4x");
	assert_near(backoff_failed(60, 9, 1, 3600, 0), 14400, "auth stays capped");
	if (backoff_failed(60, 2, 1, 3600, 0) <= backoff_failed(60, 2, 0, 3600, 0))
		fail_msg("a refused login must back off harder than a failed run");
}

static void
test_failed_never_below_interval(void **state)
{
	(void)state;
	/* A cap below the interval does not make the account run more often. */
	assert_near(backoff_failed(7200, 3, 0, 3600, 0), 7200, "interval above the cap");
	assert_near(backoff_failed(7200, 3, 1, 3600, 0), 14400, "auth: 4x the cap");
	assert_near(backoff_failed(100000, 1, 1, 3600, 0), 100000, "auth: interval above 4x cap");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_next),
		cmocka_unit_test(test_first),
		cmocka_unit_test(test_failed_doubles),
		cmocka_unit_test(test_failed_auth),
		cmocka_unit_test(test_failed_never_below_interval),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

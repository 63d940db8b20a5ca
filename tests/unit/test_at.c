/* mailmill - ISC licence, see LICENSE */
/*
 * The `at` slots (daemon/sched/at.h) on a fake clock: TZ set per test, "now"
 * any instant, so DST days and missed slots are checked without waiting.
 * Expected instants are written in UTC and were checked against tzdata.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include "daemon/sched/at.h"

#define HM(h, m) ((h) * 60 + (m))

/* Unix time of a UTC civil time (no timegm: not POSIX). */
static time_t
utc(int y, int mo, int d, int h, int mi)
{
	long long yy = y - (mo <= 2), era = (yy >= 0 ? yy : yy - 399) / 400;
	long long yoe = yy - era * 400, mp = (mo + 9) % 12;
	long long doy = (153 * mp + 2) / 5 + d - 1, doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	long long days = era * 146097 + doe - 719468;

	return (time_t)(days * 86400 + h * 3600 + mi * 60);
}

static void
zone(const char *tz)
{
	assert_int_equal(setenv("TZ", tz, 1), 0);
	tzset();
}

static void
assert_time(time_t got, time_t want, const char *what)
{
	if (got != want) {
		char g[64], w[64];
		struct tm tg, tw;

		strftime(g, sizeof g, "%F %T %Z", localtime_r(&got, &tg));
		strftime(w, sizeof w, "%F %T %Z", localtime_r(&want, &tw));
		fail_msg("%s: got %lld (%s), want %lld (%s)", what, (long long)got, g,
			 (long long)want, w);
	}
}

static void
test_plain_day(void **state)
{
	const int slots[] = { HM(14, 0), HM(2, 0) };   /* any order */

	(void)state;
	zone("Europe/Berlin");
	/* 2026-06-10 12:00 CEST: the next is 14:00 CEST the same day. */
	assert_time(at_next(slots, 2, utc(2026, 6, 10, 10, 0)), utc(2026, 6, 10, 12, 0), "14:00");
	/* Strictly after: at 14:00 itself the next is 02:00 tomorrow. */
	assert_time(at_next(slots, 2, utc(2026, 6, 10, 12, 0)), utc(2026, 6, 11, 0, 0),
		    "02:00 tomorrow");
	assert_time(at_next(slots, 2, utc(2026, 6, 10, 11, 59)), utc(2026, 6, 10, 12, 0),
		    "a minute before");
	/* Winter: CET, one hour from UTC. */
	assert_time(at_next(slots, 2, utc(2026, 1, 15, 20, 0)), utc(2026, 1, 16, 1, 0), "winter");
	/* Over the end of a year. */
	assert_time(at_next(slots, 2, utc(2026, 12, 31, 13, 30)), utc(2027, 1, 1, 1, 0),
		    "new year");
	zone("UTC");
	assert_time(at_next(slots, 2, utc(2026, 6, 10, 10, 0)), utc(2026, 6, 10, 14, 0), "UTC");
}

/* 2026-03-29, Europe/Berlin: 02:00 CET becomes 03:00 CEST (01:00 UTC). */
static void
test_spring_forward(void **state)
{
	const int half = HM(2, 30), two = HM(2, 0), three = HM(3, 0), before = HM(1, 59);

	(void)state;
	zone("Europe/Berlin");
	/* 02:30 does not exist that day: it runs at the first instant after it. */
	assert_time(at_next(&half, 1, utc(2026, 3, 28, 12, 0)), utc(2026, 3, 29, 1, 0),
		    "02:30 in the gap");
	/* and once: the next is the day after, 02:30 CEST. */
	assert_time(at_next(&half, 1, utc(2026, 3, 29, 1, 0)), utc(2026, 3, 30, 0, 30),
		    "then the next day");
	assert_time(at_next(&two, 1, utc(2026, 3, 28, 12, 0)), utc(2026, 3, 29, 1, 0), "02:00");
	assert_time(at_next(&three, 1, utc(2026, 3, 28, 12, 0)), utc(2026, 3, 29, 1, 0), "03:00");
	assert_time(at_next(&before, 1, utc(2026, 3, 28, 12, 0)), utc(2026, 3, 29, 0, 59),
		    "01:59");

	/* 2026-03-08, America/New_York: 02:00 EST becomes 03:00 EDT (07:00 UTC). */
	zone("America/New_York");
	{
		const int slot = HM(2, 15);

		assert_time(at_next(&slot, 1, utc(2026, 3, 7, 12, 0)), utc(2026, 3, 8, 7, 0),
			    "New York 02:15 in the gap");
		assert_time(at_next(&slot, 1, utc(2026, 3, 8, 7, 0)), utc(2026, 3, 9, 6, 15),
			    "New York next day, EDT");
	}
	/* Lord Howe moves by half an hour: 02:00 becomes 02:30 (15:30 UTC the day before). */
	zone("Australia/Lord_Howe");
	{
		const int slot = HM(2, 10);

		assert_time(at_next(&slot, 1, utc(2026, 10, 3, 0, 0)), utc(2026, 10, 3, 15, 30),
			    "Lord Howe 02:10 in a half-hour gap");
	}
}

/* 2026-10-25, Europe/Berlin: 03:00 CEST becomes 02:00 CET (01:00 UTC); 02:30 occurs twice. */
static void
test_fall_back(void **state)
{
	const int half = HM(2, 30);
	time_t t;

	(void)state;
	zone("Europe/Berlin");
	t = at_next(&half, 1, utc(2026, 10, 24, 12, 0));
	assert_time(t, utc(2026, 10, 25, 0, 30), "first 02:30 (CEST)");
	/* Not the second 02:30 (CET, 01:30 UTC): the day after. */
	assert_time(at_next(&half, 1, t), utc(2026, 10, 26, 1, 30), "once, then tomorrow");
	/* A daemon started between the two occurrences: the slot has passed. */
	assert_time(at_next(&half, 1, utc(2026, 10, 25, 1, 0)), utc(2026, 10, 26, 1, 30),
		    "started between them");
	assert_time(at_prev(&half, 1, utc(2026, 10, 25, 1, 45)), utc(2026, 10, 25, 0, 30),
		    "prev is the first one");

	/* 2026-11-01, America/New_York: 02:00 EDT becomes 01:00 EST; 01:30 twice. */
	zone("America/New_York");
	{
		const int slot = HM(1, 30);

		t = at_next(&slot, 1, utc(2026, 10, 31, 12, 0));
		assert_time(t, utc(2026, 11, 1, 5, 30), "New York first 01:30 (EDT)");
		assert_time(at_next(&slot, 1, t), utc(2026, 11, 2, 6, 30), "New York then tomorrow");
	}
}

/* A year of slots, step by step: two a day, every day, always increasing. */
static void
test_year(void **state)
{
	static const char *const zones[] = { "Europe/Berlin", "America/New_York",
					      "Australia/Lord_Howe", "UTC" };
	const int slots[] = { HM(2, 0), HM(14, 0) };

	(void)state;
	for (size_t z = 0; z < sizeof zones / sizeof zones[0]; z++) {
		time_t t = utc(2026, 1, 1, 12, 0), end = utc(2027, 1, 1, 12, 0);
		int n = 0;

		zone(zones[z]);
		for (;;) {
			time_t next = at_next(slots, 2, t);
			struct tm lt;

			if (next <= t)
				fail_msg("%s: slot %d not after the last", zones[z], n);
			if (next > end)
				break;
			localtime_r(&next, &lt);
			/* 02:00 is in the gap in Berlin and New York once a year: 03:00. */
			if (!(lt.tm_min == 0 && (lt.tm_hour == 2 || lt.tm_hour == 14 ||
						 lt.tm_hour == 3)) &&
			    !(lt.tm_hour == 2 && lt.tm_min == 30))
				fail_msg("%s: slot at %02d:%02d", zones[z], lt.tm_hour, lt.tm_min);
			t = next;
			n++;
		}
		if (n != 730)
			fail_msg("%s: %d slots in 2026, want 730", zones[z], n);
	}
}

/* A daemon started after a slot: runs once at start when no run covered the
 * slot, never again for a slot a run already covered. */
static void
test_missed(void **state)
{
	const int slots[] = { HM(2, 0), HM(14, 0) };
	const time_t now = utc(2026, 6, 10, 1, 0);   /* 03:00 CEST */

	(void)state;
	zone("Europe/Berlin");
	assert_time(at_prev(slots, 2, now), utc(2026, 6, 10, 0, 0), "prev: 02:00 today");
	assert_true(at_missed(slots, 2, 0, now));                         /* never ran */
	assert_true(at_missed(slots, 2, utc(2026, 6, 9, 12, 0), now));    /* yesterday's 14:00 */
	assert_true(at_missed(slots, 2, utc(2026, 6, 2, 0, 0), now));     /* down for a week */
	assert_false(at_missed(slots, 2, utc(2026, 6, 10, 0, 0), now));   /* ran at 02:00 */
	assert_false(at_missed(slots, 2, utc(2026, 6, 10, 0, 5), now));   /* restarted at 02:05 */
	/* Before today's first slot, the last one is yesterday's 14:00. */
	assert_time(at_prev(slots, 2, utc(2026, 6, 9, 23, 0)), utc(2026, 6, 9, 12, 0),
		    "prev: 14:00 yesterday");
	assert_false(at_missed(slots, 2, utc(2026, 6, 9, 12, 30), utc(2026, 6, 9, 23, 0)));
	/* A slot at the instant the daemon starts is the last one, not missed by it. */
	assert_time(at_prev(slots, 2, utc(2026, 6, 10, 0, 0)), utc(2026, 6, 10, 0, 0), "at now");
	/* Missed across the spring gap: 02:30 was due at 03:00 CEST. */
	{
		const int half = HM(2, 30);

		assert_time(at_prev(&half, 1, utc(2026, 3, 29, 1, 30)), utc(2026, 3, 29, 1, 0),
			    "prev in the gap");
		assert_true(at_missed(&half, 1, utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30)));
		assert_false(at_missed(&half, 1, utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 1, 30)));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_day),
		cmocka_unit_test(test_spring_forward),
		cmocka_unit_test(test_fall_back),
		cmocka_unit_test(test_year),
		cmocka_unit_test(test_missed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* mailmill - ISC licence, see LICENSE */
/*
 * The `at` slots of an account in local time (see at.h).  mktime alone does
 * not say which instant a wall-clock time is on a day the clocks change (a
 * time in the gap is moved by an amount the C library picks; a time that
 * occurs twice is either), so each candidate is checked by converting it
 * back, and a time in the gap is found by bisection.
 */
#include <stddef.h>
#include <time.h>
#include "daemon/sched/at.h"

#define AT_BRACKET_S (4 * 3600)   /* wider than any clock change */

/* The local day k days after the day of t: *day_r normalised, at noon. */
static int
at_day(time_t t, int k, struct tm *day_r)
{
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL)
		return -1;
	tm.tm_mday += k;
	tm.tm_hour = 12;
	tm.tm_min = 0;
	tm.tm_sec = 0;
	tm.tm_isdst = -1;
	if (mktime(&tm) == (time_t)-1)
		return -1;
	*day_r = tm;
	return 0;
}

/* The local time of t against (day, minute:00): <0, 0 or >0. */
static int
at_cmp(time_t t, const struct tm *day, int minute)
{
	struct tm lt;
	long have, want;

	if (localtime_r(&t, &lt) == NULL)
		return 1;
	if (lt.tm_year != day->tm_year)
		return lt.tm_year < day->tm_year ? -1 : 1;
	if (lt.tm_mon != day->tm_mon)
		return lt.tm_mon < day->tm_mon ? -1 : 1;
	if (lt.tm_mday != day->tm_mday)
		return lt.tm_mday < day->tm_mday ? -1 : 1;
	have = (lt.tm_hour * 60L + lt.tm_min) * 60 + lt.tm_sec;
	want = minute * 60L;
	return have < want ? -1 : have > want;
}

/* The instant of the slot `minute` on `day` (rules in at.h); -1 if none. */
static time_t
at_instant(const struct tm *day, int minute)
{
	time_t best = -1, lo = -1, hi = -1;

	for (int dst = -1; dst <= 1; dst++) {
		struct tm tm = *day;
		time_t t;

		tm.tm_hour = minute / 60;
		tm.tm_min = minute % 60;
		tm.tm_sec = 0;
		tm.tm_isdst = dst;
		if ((t = mktime(&tm)) == (time_t)-1)
			continue;
		if (at_cmp(t, day, minute) == 0 && (best == -1 || t < best))
			best = t;   /* the first of two occurrences */
		if (lo == -1 || t < lo)
			lo = t;
		if (hi == -1 || t > hi)
			hi = t;
	}
	if (best != -1 || lo == -1)
		return best;
	/* No reading exists: the slot is in the gap.  Its instant is the first
	 * one whose local time is past it, found between two instants on
	 * either side (no clock goes back near a gap: monotonic there). */
	lo -= AT_BRACKET_S;
	hi += AT_BRACKET_S;
	if (at_cmp(lo, day, minute) >= 0 || at_cmp(hi, day, minute) <= 0)
		return hi - AT_BRACKET_S;
	while (hi - lo > 1) {
		time_t mid = lo + (hi - lo) / 2;

		if (at_cmp(mid, day, minute) < 0)
			lo = mid;
		else
			hi = mid;
	}
	return hi;
}

/* The nearest slot instant strictly after t (later = 1) or at or before t
 * (later = 0).  Two days either way: a slot of one day cannot land beyond
 * its neighbours, but looking costs little next to being wrong on a strange
 * zone. */
static time_t
at_nearest(const int *slots, size_t n, time_t t, int later)
{
	time_t best = -1;

	tzset();
	for (int k = -2; k <= 2; k++) {
		struct tm day;

		if (at_day(t, k, &day) < 0)
			continue;
		for (size_t i = 0; i < n; i++) {
			time_t c = at_instant(&day, slots[i]);

			if (c == -1 || (later ? c <= t : c > t))
				continue;
			if (best == -1 || (later ? c < best : c > best))
				best = c;
		}
	}
	if (best == -1)
		return later ? t + 86400 : t - 86400;
	return best;
}

time_t
at_next(const int *slots, size_t n, time_t after)
{
	return at_nearest(slots, n, after, 1);
}

time_t
at_prev(const int *slots, size_t n, time_t now)
{
	return at_nearest(slots, n, now, 0);
}

int
at_missed(const int *slots, size_t n, time_t last_run, time_t now)
{
	return at_prev(slots, n, now) > last_run;
}

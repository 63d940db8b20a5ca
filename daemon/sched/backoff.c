/* mailmill - ISC licence, see LICENSE */
#include "daemon/sched/backoff.h"

static double
backoff_clamp_r(double r, double lo)
{
	return r < lo ? lo : r > 1.0 ? 1.0 : r;
}

double
backoff_next(long long interval_s, double r)
{
	return (double)interval_s * (1.0 + BACKOFF_JITTER * backoff_clamp_r(r, -1.0));
}

double
backoff_first(long long interval_s, double r)
{
	double span = (double)interval_s * BACKOFF_JITTER;

	if (span > BACKOFF_FIRST_MAX_S)
		span = BACKOFF_FIRST_MAX_S;
	return span * backoff_clamp_r(r, 0.0);
}

double
backoff_failed(long long interval_s, int failures, int auth, long long max_backoff_s, double r)
{
	double factor = auth ? BACKOFF_AUTH_FACTOR : 2;
	double cap = (double)max_backoff_s * (auth ? BACKOFF_AUTH_FACTOR : 1);
	double d = (double)interval_s;
	int i;

	/* The loop stops at the cap: a count of a million failures is cheap. */
	for (i = 0; i < failures && d < cap; i++)
		d *= factor;
	if (d > cap)
		d = cap;
	if (d < (double)interval_s)
		d = (double)interval_s;
	return d * (1.0 + BACKOFF_JITTER * backoff_clamp_r(r, 0.0));
}

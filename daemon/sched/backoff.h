/* mailmill - ISC licence, see LICENSE */
#ifndef MM_BACKOFF_H
#define MM_BACKOFF_H
/*
 * When an account runs next: pure arithmetic on seconds, so that it can be
 * tested without a clock or a random generator.  The caller draws the
 * random numbers (r) and passes them in.
 */

#define BACKOFF_JITTER 0.1          /* +-10% of the interval */
#define BACKOFF_FIRST_MAX_S 30.0    /* first runs spread over at most this */
#define BACKOFF_AUTH_FACTOR 4       /* refused logins back off this much faster */

/* After a good run: the interval, moved by up to +-BACKOFF_JITTER of it
 * (r in [-1, 1]) so that accounts started together drift apart. */
double backoff_next(long long interval_s, double r);

/* The delay of an account's first run after the start (or a reload): r in
 * [0, 1] of BACKOFF_JITTER of the interval, at most BACKOFF_FIRST_MAX_S. */
double backoff_first(long long interval_s, double r);

/*
 * After `failures` failed runs in a row (>= 1): the interval doubled per
 * failure (multiplied by BACKOFF_AUTH_FACTOR when the login was refused:
 * hammering a server with a wrong password gets the account locked), never
 * above max_backoff_s (BACKOFF_AUTH_FACTOR times that for auth), never
 * below the interval; then up to BACKOFF_JITTER later (r in [0, 1]).
 */
double backoff_failed(long long interval_s, int failures, int auth, long long max_backoff_s,
		      double r);
#endif

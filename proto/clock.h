/* mailmill - ISC licence, see LICENSE */
#ifndef MM_CLOCK_H
#define MM_CLOCK_H
/*
 * The one monotonic clock for deadlines, in proto/ and daemon/ alike
 * (plugins cannot link proto/ and use GLib's g_get_monotonic_time).
 */

/* CLOCK_MONOTONIC in milliseconds: for differences and deadlines only. */
long long clock_now_ms(void);
#endif

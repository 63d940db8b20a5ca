/* mailmill - ISC licence, see LICENSE */
#ifndef MM_AT_H
#define MM_AT_H
/*
 * An account's `at` times: when the slots fall, in local time (the TZ of
 * the process), as unix seconds.  Pure arithmetic on a clock the caller
 * passes in, so that tests can set TZ and any "now" without sleeping.
 *
 * A slot is a time of day, minutes after local midnight (0..1439).  Its
 * instant on a given day is:
 *   - the local time itself, when it exists once;
 *   - its first occurrence, when the clocks go back and it occurs twice
 *     (so it runs once that day, not twice);
 *   - the first instant after the gap, when the clocks go forward over it
 *     (02:30 on a day that jumps from 02:00 to 03:00 runs at 03:00).
 *
 * slots: n >= 1 minutes, in any order.  No function here fails: a time_t
 * that mktime cannot represent gives the nearest day that it can.
 */
#include <stddef.h>
#include <time.h>

/* The first slot instant strictly after `after`. */
time_t at_next(const int *slots, size_t n, time_t after);

/* The last slot instant at or before `now`. */
time_t at_prev(const int *slots, size_t n, time_t now);

/*
 * On start: 1 if a slot has passed that no run covered, i.e. the latest
 * slot at or before now is after last_run (when the account's last run
 * started; 0: it never ran).  However many slots were missed, the caller
 * runs the account once.
 */
int at_missed(const int *slots, size_t n, time_t last_run, time_t now);
#endif

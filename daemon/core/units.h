/* mailmill - ISC licence, see LICENSE */
#ifndef MM_UNITS_H
#define MM_UNITS_H
/*
 * Durations ("90s", "5m", "2h", "7d"; a bare number is seconds) and sizes
 * ("512", "512K", "50M", "2G"; powers of 1024).  Strict: no spaces, no
 * signs, no fractions, overflow-checked.  0 on success, -1 on bad input.
 */
int units_duration(const char *s, long long *seconds_r);
int units_size(const char *s, unsigned long long *bytes_r);
#endif

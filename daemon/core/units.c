/* mailmill - ISC licence, see LICENSE */
#include <limits.h>
#include <stddef.h>

#include "daemon/core/units.h"

/*
 * Both parsers share one rule: one or more ASCII digits, then at most one
 * suffix letter, then the end.  strtoll() is avoided on purpose: it accepts
 * leading blanks, signs and "0x", all of which a configuration should refuse.
 */
static int units_digits(const char **sp, unsigned long long max, unsigned long long *v_r)
{
	const char *s = *sp;
	unsigned long long v = 0;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*sp = s;
	*v_r = v;
	return 0;
}

int units_duration(const char *s, long long *seconds_r)
{
	unsigned long long v, mul;

	if (s == NULL || units_digits(&s, LLONG_MAX, &v) < 0)
		return -1;
	switch (*s) {
	case '\0': mul = 1; break;
	case 's': mul = 1; s++; break;
	case 'm': mul = 60; s++; break;
	case 'h': mul = 3600; s++; break;
	case 'd': mul = 86400; s++; break;
	default: return -1;
	}
	if (*s != '\0' || v > LLONG_MAX / mul)
		return -1;
	*seconds_r = (long long)(v * mul);
	return 0;
}

int units_size(const char *s, unsigned long long *bytes_r)
{
	unsigned long long v, mul;

	if (s == NULL || units_digits(&s, ULLONG_MAX, &v) < 0)
		return -1;
	switch (*s) {
	case '\0': mul = 1; break;
	case 'K': case 'k': mul = 1ULL << 10; s++; break;
	case 'M': case 'm': mul = 1ULL << 20; s++; break;
	case 'G': case 'g': mul = 1ULL << 30; s++; break;
	default: return -1;
	}
	if (*s != '\0' || v > ULLONG_MAX / mul)
		return -1;
	*bytes_r = v * mul;
	return 0;
}

/* mailmill - ISC licence, see LICENSE */
#include <config.h>

#include <time.h>

#include "proto/clock.h"

long long
clock_now_ms(void)
{
	struct timespec ts;

	/* Cannot fail for CLOCK_MONOTONIC on a system that has it (POSIX). */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

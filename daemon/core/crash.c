/* mailmill - ISC licence, see LICENSE */
#include <config.h>
#include "daemon/core/crash.h"
#ifdef MM_CRASHPOINTS
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
crash_point(const char *name)
{
	static long hits;
	const char *spec = getenv("MAILMILL_CRASH");
	size_t n = strlen(name);
	long want;
	char *end;

	if (spec == NULL || strncmp(spec, name, n) != 0 || spec[n] != ':')
		return;
	want = strtol(spec + n + 1, &end, 10);
	if (*end != '\0' || want < 1)
		return;
	if (++hits == want) {
		static const char msg[] = "mailmilld: crash point reached, SIGKILL\n";
		(void)!write(2, msg, sizeof msg - 1);
		kill(getpid(), SIGKILL);
	}
}
#endif

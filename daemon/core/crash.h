/* mailmill - ISC licence, see LICENSE */
#ifndef MM_CRASH_H
#define MM_CRASH_H
/*
 * Crash points for the test build (configure --enable-crashpoints): with
 * MAILMILL_CRASH=name:N in the environment, the Nth call of crash_point(name)
 * kills the process with SIGKILL, as a power cut or an OOM kill would.
 * Without the option crash_point() compiles to nothing.
 */
/* The option is in config.h (configure --enable-crashpoints): here, so that
 * no user of crash_point can miss it. */
#include <config.h>
#ifdef MM_CRASHPOINTS
void crash_point(const char *name);
#else
#define crash_point(name) ((void)0)
#endif
#endif

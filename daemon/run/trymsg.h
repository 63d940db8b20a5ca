/* mailmill - ISC licence, see LICENSE */
#ifndef MM_TRYMSG_H
#define MM_TRYMSG_H
/*
 * mailmilld --test FILE|- [--account NAME] [--commit]: one account's
 * pipeline on a local message, no server.  Without commit nothing changes:
 * the plugins run as in a dry run (mm_ctx_dry_run), the store is opened
 * read-only (a ticket's number is the one it would get), and what would be
 * queued is printed in full instead.  With commit it is a real run of that
 * one message: side effects made durable, the verdict, its outgoing mail and
 * the plugins' state committed in one transaction under the message's
 * digest ("sha256:..."), so feeding the same message again does nothing;
 * started as root with `user` set, the commit runs as that user (as
 * --once's workers do), so what the stages create is the user's.
 * The report goes to out (stdout); plugins' log lines go to the log too.
 */
#include <stdio.h>
#include "daemon/core/cfg.h"

/* only/n_only: the --account names given (0 or 1 of them).  Returns the
 * exit status (sysexits.h): 0 done or kept; 75 deferred, failed, or the
 * store could not be used; 64 usage (no single account); 66 the message
 * cannot be read; 78 a stage refused its settings.  Errors are logged. */
int trymsg_main(const cfg *c, char **only, int n_only, const char *path, int commit,
		FILE *out);
#endif

/* mailmill - ISC licence, see LICENSE */
#ifndef MM_IDLEWATCH_H
#define MM_IDLEWATCH_H
/*
 * The IDLE watcher: one process, forked by the daemon (daemon/sched/idle.c),
 * that keeps one IMAP connection per folder of every account with
 * `idle = true` in IDLE (RFC 2177) and tells the daemon "new mail for
 * account X" when an untagged EXISTS grows a folder's count (or, after a
 * reconnection, when UIDNEXT moved while it was away).  It fetches,
 * changes and deletes nothing: the folder is opened with EXAMINE.
 *
 * All sessions share one poll() loop (a few connector threads open them).
 * A session that fails (refused, dropped, BYE, timed out) is opened again
 * with back-off (daemon/sched/backoff.h), each on its own; IDLE is ended with DONE and
 * issued again every IDLEWATCH_RENEW_S seconds (a little earlier, spread),
 * before the 30 minutes after which servers may drop it.  For tests,
 * MAILMILL_TEST_IDLE_RENEW (seconds, >= 1) replaces that period.
 *
 * Secrets are resolved first, as a worker does it (they may be readable by
 * root only), then privileges are dropped to `user`.  SIGTERM/SIGINT end
 * it; so does the daemon's end (its control pipe closes).
 */
#include "daemon/core/cfg.h"

#define IDLEWATCH_RENEW_S (25 * 60)

/*
 * The watcher's body, in the forked child: watch the selected accounts
 * (only/n_only as --account; none given: all) of c that have protocol imap
 * and idle set.  Reports go to out_fd as lines "N <account>\n"; ctl_fd is
 * read for its end only.  Returns the exit status (0 after a stop).
 */
int idlewatch_main(const cfg *c, char *const *only, int n_only, int out_fd, int ctl_fd);
#endif

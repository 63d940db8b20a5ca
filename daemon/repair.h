/* mailmill - ISC licence, see LICENSE */
#ifndef MM_REPAIR_H
#define MM_REPAIR_H
/*
 * mailmilld --release, --retry, --drop: the administrator's repairs,
 * through the store's functions (no SQL), each logged.  They work while the
 * daemon runs: each is one short write, and the daemon reads the store
 * again at its next run or flush.
 *
 * Each returns the exit status: 0 done, 65 (EX_DATAERR) no such quarantined
 * message or outbox row, 64 (EX_USAGE) an id that is not a number,
 * 75 (EX_TEMPFAIL) the store cannot be opened or written.
 */
#include "daemon/core/cfg.h"

/* Take the account's message uid out of quarantine: the next run processes it. */
int repair_release(const cfg *c, const char *account, const char *uid);
/* Make outbox row `what` (a number, or "all": every queued and dead row)
 * due now; a dead row is queued again. */
int repair_retry(const cfg *c, const char *what);
/* Remove outbox row `id`, logged with its recipients. */
int repair_drop(const cfg *c, const char *id);
#endif

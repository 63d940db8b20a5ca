/* mailmill - ISC licence, see LICENSE */
#ifndef MM_IDLECOUNT_H
#define MM_IDLECOUNT_H
/*
 * What an IDLE folder's untagged responses mean (daemon/sched/idlewatch.c):
 * pure arithmetic on the counters proto/imap keeps (imap_counters), so that
 * it can be tested without a server.  New mail is an EXISTS that grows the
 * folder's count; EXPUNGEs shrink it.  The counters say how many of each
 * came, not in which order: when both come in one read, the count is taken
 * as if the EXISTS came first, which may say "new mail" once too often and
 * never misses any.
 */
#include <stdint.h>

typedef struct idlecount {
	uint32_t count;               /* messages in the folder, as far as known */
	uint32_t uidnext;             /* never above the folder's UIDNEXT; 0: unknown */
	unsigned long seen_exists;    /* the session's EXISTS responses, read */
	unsigned long seen_expunge;   /* and EXPUNGE responses */
} idlecount;

/* After SELECT/EXAMINE: the folder's EXISTS and UIDNEXT (0: none), and
 * the session's counters as they are now. */
void idlecount_open(idlecount *c, uint32_t exists, uint32_t uidnext, unsigned long n_exists,
		    unsigned long n_expunge);
/* After reading: the last EXISTS value and the counters.  1 if new mail
 * came since the last call, else 0. */
int idlecount_update(idlecount *c, uint32_t exists, unsigned long n_exists,
		     unsigned long n_expunge);
/* Opened again after a break: 1 if mail may have come meanwhile (UIDNEXT
 * moved past what was seen, or is unknown either side). */
int idlecount_missed(const idlecount *c, uint32_t uidnext);
#endif

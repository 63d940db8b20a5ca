/* mailmill - ISC licence, see LICENSE */
#include "daemon/sched/idlecount.h"

void
idlecount_open(idlecount *c, uint32_t exists, uint32_t uidnext, unsigned long n_exists,
	       unsigned long n_expunge)
{
	c->count = exists;
	c->uidnext = uidnext;
	c->seen_exists = n_exists;
	c->seen_expunge = n_expunge;
}

int
idlecount_update(idlecount *c, uint32_t exists, unsigned long n_exists, unsigned long n_expunge)
{
	unsigned long gone = n_expunge - c->seen_expunge;
	uint32_t after = c->count > gone ? c->count - (uint32_t)gone : 0;
	int fresh = 0;

	if (n_exists != c->seen_exists) {
		if (exists > after) {
			fresh = 1;
			/* UIDNEXT grew at least as much: a reconnection then
			 * reports only mail that came while it was away. */
			if (c->uidnext != 0) {
				uint32_t more = exists - after;

				c->uidnext = c->uidnext > UINT32_MAX - more ? 0 : c->uidnext + more;
			}
		}
		after = exists > gone ? exists - (uint32_t)gone : 0;
	}
	c->count = after;
	c->seen_exists = n_exists;
	c->seen_expunge = n_expunge;
	return fresh;
}

int
idlecount_missed(const idlecount *c, uint32_t uidnext)
{
	return c->uidnext == 0 || uidnext == 0 || uidnext > c->uidnext;
}

/* mailmill - ISC licence, see LICENSE */
/*
 * Leases on the SQLite store (store.h).  One SQLite file is used by one
 * daemon at a time (the state lock, daemon/core/statelock.c), so there is
 * nobody to share accounts with: every claim succeeds and no commit can be
 * fenced out.  The PostgreSQL backend is where leases do their work
 * (pg_lease.c).
 */
#include <stddef.h>
#include "daemon/store/store_int.h"

int
store_lease_claim(store *st, const char *account, const char *owner, long long ttl_s,
		  long long *fence_r, char **err_r)
{
	if (st->pg != NULL)
		return pgs_lease_claim(st, account, owner, ttl_s, fence_r, err_r);
	(void)account; (void)owner; (void)ttl_s; (void)err_r;
	*fence_r = 1;
	return 1;
}

int
store_lease_renew(store *st, const char *account, const char *owner, long long fence,
		  long long ttl_s, char **err_r)
{
	if (st->pg != NULL)
		return pgs_lease_renew(st, account, owner, fence, ttl_s, err_r);
	(void)account; (void)owner; (void)fence; (void)ttl_s; (void)err_r;
	return 0;
}

int
store_lease_release(store *st, const char *account, const char *owner, long long fence,
		    char **err_r)
{
	if (st->pg != NULL)
		return pgs_lease_release(st, account, owner, fence, err_r);
	(void)account; (void)owner; (void)fence; (void)err_r;
	return 0;
}

int
store_fence_set(store *st, const char *account, const char *owner, long long fence,
		char **err_r)
{
	if (st->pg != NULL)
		return pgs_fence_set(st, account, owner, fence, err_r);
	(void)account; (void)owner; (void)fence; (void)err_r;
	return 0;
}

int
store_lease_list(store *st, store_lease_fn *fn, void *arg, char **err_r)
{
	if (st->pg != NULL)
		return pgs_lease_list(st, fn, arg, err_r);
	(void)fn; (void)arg; (void)err_r;
	return 0;
}

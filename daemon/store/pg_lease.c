/* mailmill - ISC licence, see LICENSE */
/*
 * Leases on PostgreSQL (store.h): several daemons share the accounts of one
 * database.  Times are the database server's clock (PGS_NOW), the one clock
 * every host agrees on.  A lease row is never deleted: its fence only grows,
 * so a daemon that lost its lease can never hold the same fence again.
 * A lease whose expiry has passed is lost even if nobody took it yet: a
 * paused daemon that wakes up past its expiry renews nothing and commits
 * nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon/store/pg_int.h"
#include "proto/err.h"

static int
pgs_lease_args_ok(store *st, const char *account, const char *owner, long long ttl_s,
		  char **err_r)
{
	if (account == NULL || owner == NULL || owner[0] == '\0' || ttl_s < 1) {
		err_set(err_r, "%s: a lease needs an account, an owner and a duration", st->path);
		return 0;
	}
	return 1;
}

int
pgs_lease_claim(store *st, const char *account, const char *owner, long long ttl_s,
		long long *fence_r, char **err_r)
{
	pgs_args a = { 0 };
	PGresult *r;
	int got;

	*fence_r = 0;
	if (!pgs_lease_args_ok(st, account, owner, ttl_s, err_r))
		return -1;
	if (st->in_tx) {
		err_set(err_r, "%s: a lease is claimed on its own, not inside a transaction",
			st->path);
		return -1;
	}
	if (st->readonly)
		return 1;
	pgs_s(&a, account);
	pgs_s(&a, owner);
	pgs_i(&a, ttl_s);
	/* One statement: a free lease is inserted, an expired one or our own
	 * is taken over; either way the fence grows.  A live lease of another
	 * owner matches nothing and returns no row. */
	r = pgs_exec(st, "INSERT INTO leases AS l (account, owner, fence, expires)"
		     " VALUES ($1, $2, 1, " PGS_NOW " + $3) ON CONFLICT (account) DO UPDATE"
		     " SET owner = excluded.owner, fence = l.fence + 1, expires = excluded.expires"
		     " WHERE l.expires <= " PGS_NOW " OR l.owner = excluded.owner"
		     " RETURNING fence", &a, "lease claim", err_r);
	if (r == NULL)
		return -1;
	got = PQntuples(r) == 1;
	if (got)
		*fence_r = pgs_ll(r, 0, 0);
	PQclear(r);
	return got;
}

int
pgs_lease_renew(store *st, const char *account, const char *owner, long long fence,
		long long ttl_s, char **err_r)
{
	pgs_args a = { 0 };
	long long n = 0;

	if (!pgs_lease_args_ok(st, account, owner, ttl_s, err_r))
		return -1;
	if (st->readonly)
		return 0;
	pgs_s(&a, account);
	pgs_s(&a, owner);
	pgs_i(&a, fence);
	pgs_i(&a, ttl_s);
	if (pgs_cmd(st, "UPDATE leases SET expires = " PGS_NOW " + $4 WHERE account = $1"
		    " AND owner = $2 AND fence = $3 AND expires > " PGS_NOW, &a, "lease renew",
		    &n, err_r) < 0)
		return -1;
	if (n != 1) {
		err_set(err_r, "%s: lease of account %s lost (owner %s, fence %lld): expired or "
			"taken over", st->path, account, owner, fence);
		return -1;
	}
	return 0;
}

int
pgs_lease_release(store *st, const char *account, const char *owner, long long fence,
		  char **err_r)
{
	pgs_args a = { 0 };

	if (!pgs_lease_args_ok(st, account, owner, 1, err_r))
		return -1;
	if (st->readonly)
		return 0;
	pgs_s(&a, account);
	pgs_s(&a, owner);
	pgs_i(&a, fence);
	/* Not ours any more: nothing to give up, and nothing to complain of. */
	return pgs_cmd(st, "UPDATE leases SET expires = 0 WHERE account = $1 AND owner = $2"
		       " AND fence = $3", &a, "lease release", NULL, err_r);
}

int
pgs_lease_list(store *st, store_lease_fn *fn, void *arg, char **err_r)
{
	PGresult *r;

	if (st->pg->empty)
		return 0;
	r = pgs_exec(st, "SELECT account, owner, fence, expires FROM leases WHERE expires > "
		     PGS_NOW " ORDER BY account", NULL, "leases", err_r);
	if (r == NULL)
		return -1;
	for (int i = 0; i < PQntuples(r); i++)
		fn(arg, pgs_str(r, i, 0), pgs_str(r, i, 1), pgs_ll(r, i, 2), pgs_ll(r, i, 3));
	PQclear(r);
	return 0;
}

int
pgs_fence_set(store *st, const char *account, const char *owner, long long fence,
	      char **err_r)
{
	struct pgs *pg = st->pg;
	char *a = NULL, *o = NULL;

	if (account != NULL && (owner == NULL || (a = strdup(account)) == NULL ||
				(o = strdup(owner)) == NULL)) {
		free(a);
		err_set(err_r, owner == NULL ? "%s: a fence needs an owner" : "%s: out of memory",
			st->path);
		return -1;
	}
	free(pg->fence_account);
	free(pg->fence_owner);
	pg->fence_account = a;
	pg->fence_owner = o;
	pg->fence = fence;
	return 0;
}

int
pgs_fence_check(store *st, char **err_r)
{
	struct pgs *pg = st->pg;
	pgs_args a = { 0 };
	PGresult *r;
	int ok;

	pgs_s(&a, pg->fence_account);
	pgs_s(&a, pg->fence_owner);
	pgs_i(&a, pg->fence);
	/* FOR SHARE: a claim that would take the lease over waits for this
	 * commit, so it cannot slip between the check and the commit. */
	r = pgs_exec(st, "SELECT 1 FROM leases WHERE account = $1 AND owner = $2 AND fence = $3"
		     " AND expires > " PGS_NOW " FOR SHARE", &a, "lease check", err_r);
	if (r == NULL)
		return -1;
	ok = PQntuples(r) == 1;
	PQclear(r);
	if (!ok) {
		err_set(err_r, "%s: lease of account %s lost (owner %s, fence %lld): commit "
			"refused, nothing of this transaction was written", st->path,
			pg->fence_account, pg->fence_owner, pg->fence);
		return -1;
	}
	return 0;
}

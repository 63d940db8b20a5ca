/* mailmill - ISC licence, see LICENSE */
/*
 * OAuth tokens on PostgreSQL (tokens.c's contract).  A rotated refresh token
 * is stored in the same transaction as the access token it came with; a
 * refused one is forgotten only if it is still the stored one (another
 * daemon may have rotated it meanwhile).
 */
#include <stdlib.h>
#include <string.h>

#include "daemon/store/pg_int.h"
#include "proto/err.h"

int
pgs_token_get(store *st, const char *rkey, const char *akey, store_token *t, char **err_r)
{
	PGresult *r;
	int oom = 0;

	if (st->pg->empty)
		return 0;
	if (rkey != NULL) {
		pgs_args a = { 0 };

		pgs_s(&a, rkey);
		r = pgs_exec(st, "SELECT refresh_token, needs_signin, reason FROM oauth_refresh"
			     " WHERE key = $1", &a, "token get", err_r);
		if (r == NULL)
			return -1;
		if (PQntuples(r) == 1) {
			t->refresh_token = pgs_dup(r, 0, 0, &oom);
			t->needs_signin = pgs_ll(r, 0, 1) != 0;
			t->reason = pgs_dup(r, 0, 2, &oom);
		}
		/* The result held a secret: wipe libpq's copy too. */
		if (PQntuples(r) == 1 && pgs_str(r, 0, 0) != NULL)
			explicit_bzero(PQgetvalue(r, 0, 0), strlen(PQgetvalue(r, 0, 0)));
		PQclear(r);
	}
	if (akey != NULL && !oom) {
		pgs_args a = { 0 };

		pgs_s(&a, akey);
		r = pgs_exec(st, "SELECT access_token, obtained, expires FROM oauth_access"
			     " WHERE key = $1", &a, "token get", err_r);
		if (r == NULL) {
			store_token_clear(t);
			return -1;
		}
		if (PQntuples(r) == 1) {
			t->access_token = pgs_dup(r, 0, 0, &oom);
			t->obtained = pgs_ll(r, 0, 1);
			t->expires = pgs_ll(r, 0, 2);
			explicit_bzero(PQgetvalue(r, 0, 0), strlen(PQgetvalue(r, 0, 0)));
		}
		PQclear(r);
	}
	if (oom) {
		store_token_clear(t);
		err_set(err_r, "out of memory");
		return -1;
	}
	return 0;
}

int
pgs_token_put(store *st, const char *rkey, const char *akey, const char *access,
	      long long obtained, long long expires, const char *new_refresh, char **err_r)
{
	pgs_args a = { 0 }, f = { 0 };
	int own, ok;

	pgs_s(&a, akey);
	pgs_s(&a, rkey);
	pgs_s(&a, access);
	pgs_i(&a, obtained);
	pgs_i(&a, expires);
	pgs_s(&f, rkey);
	pgs_s(&f, new_refresh);
	pgs_i(&f, obtained);
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	ok = pgs_cmd(st, "INSERT INTO oauth_access (key, rkey, access_token, obtained, expires)"
		     " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO UPDATE SET"
		     " rkey = excluded.rkey, access_token = excluded.access_token,"
		     " obtained = excluded.obtained, expires = excluded.expires", &a, "token put",
		     NULL, err_r) == 0;
	/* Never one without the other. */
	if (ok && new_refresh != NULL)
		ok = pgs_cmd(st, "INSERT INTO oauth_refresh (key, refresh_token, needs_signin,"
			     " reason, updated) VALUES ($1, $2, 0, NULL, $3) ON CONFLICT (key)"
			     " DO UPDATE SET refresh_token = excluded.refresh_token,"
			     " needs_signin = 0, reason = NULL, updated = excluded.updated", &f,
			     "refresh token put", NULL, err_r) == 0;
	return store_tx_end(st, own, ok, err_r);
}

int
pgs_token_drop_access(store *st, const char *akey, char **err_r)
{
	pgs_args a = { 0 };

	pgs_s(&a, akey);
	return pgs_write(st, "DELETE FROM oauth_access WHERE key = $1", &a, "token drop", NULL,
			 err_r);
}

/* Forget the access tokens a sign-in gave (in the caller's transaction). */
static int
pgs_token_drop_signin(store *st, const char *rkey, char **err_r)
{
	pgs_args a = { 0 };

	pgs_s(&a, rkey);
	return pgs_cmd(st, "DELETE FROM oauth_access WHERE rkey = $1", &a, "sign-in drop", NULL,
		       err_r);
}

int
pgs_token_refresh_set(store *st, const char *rkey, const char *refresh, int needs,
		      const char *reason, long long now, char **err_r)
{
	pgs_args a = { 0 };
	int own, ok;

	pgs_s(&a, rkey);
	pgs_s(&a, refresh);
	pgs_i(&a, needs);
	pgs_s(&a, reason);
	pgs_i(&a, now);
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	ok = pgs_cmd(st, "INSERT INTO oauth_refresh (key, refresh_token, needs_signin, reason,"
		     " updated) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO UPDATE SET"
		     " refresh_token = excluded.refresh_token, needs_signin = excluded.needs_signin,"
		     " reason = excluded.reason, updated = excluded.updated", &a, "sign-in put",
		     NULL, err_r) == 0 &&
	     pgs_token_drop_signin(st, rkey, err_r) == 0;
	return store_tx_end(st, own, ok, err_r);
}

int
pgs_token_needs_signin(store *st, const char *rkey, const char *refused, const char *reason,
		       long long now, char **err_r)
{
	pgs_args a = { 0 };
	long long n = 0;
	int own, ok;

	pgs_s(&a, rkey);
	pgs_s(&a, refused);
	pgs_s(&a, reason);
	pgs_i(&a, now);
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	ok = pgs_cmd(st, "UPDATE oauth_refresh SET refresh_token = NULL, needs_signin = 1,"
		     " reason = $3, updated = $4 WHERE key = $1 AND refresh_token = $2", &a,
		     "sign-in refused", &n, err_r) == 0;
	if (ok && n > 0)
		ok = pgs_token_drop_signin(st, rkey, err_r) == 0;
	if (store_tx_end(st, own, ok, err_r) < 0)
		return -1;
	return n > 0 ? 0 : 1;
}

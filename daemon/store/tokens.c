/* mailmill - ISC licence, see LICENSE */
/* OAuth tokens (daemon/oauth/oauth.c). */
#include <string.h>
#include <stdlib.h>

#include "daemon/store/store_int.h"
#include "proto/err.h"

static char *
store_dup_col(sqlite3_stmt *q, int i)
{
	const char *v = store_col(q, i);

	return v != NULL ? strdup(v) : NULL;
}

static void
store_wipe(char **s)
{
	if (*s != NULL) {
		explicit_bzero(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

void
store_token_clear(store_token *t)
{
	store_wipe(&t->access_token);
	store_wipe(&t->refresh_token);
	free(t->reason);
	memset(t, 0, sizeof *t);
}

int
store_token_get(store *st, const char *rkey, const char *akey, store_token *t, char **err_r)
{
	sqlite3_stmt *q;
	int rc = SQLITE_DONE;

	memset(t, 0, sizeof *t);
	if (st->pg != NULL)
		return pgs_token_get(st, rkey, akey, t, err_r);
	if (st->db == NULL)
		return 0;
	if (rkey != NULL) {
		q = store_prep(st, "SELECT refresh_token, needs_signin, reason FROM oauth_refresh"
			       " WHERE key = ?1", err_r);
		if (q == NULL)
			return -1;
		rc = sqlite3_bind_text(q, 1, rkey, -1, SQLITE_STATIC) == SQLITE_OK ?
		     sqlite3_step(q) : SQLITE_MISUSE;
		if (rc == SQLITE_ROW) {
			t->refresh_token = store_dup_col(q, 0);
			t->needs_signin = sqlite3_column_int(q, 1) != 0;
			t->reason = store_dup_col(q, 2);
			rc = SQLITE_DONE;
		}
		store_release(st, q);
		if (rc != SQLITE_DONE)
			goto fail;
	}
	if (akey != NULL) {
		q = store_prep(st, "SELECT access_token, obtained, expires FROM oauth_access"
			       " WHERE key = ?1", err_r);
		if (q == NULL) {
			store_token_clear(t);
			return -1;
		}
		rc = sqlite3_bind_text(q, 1, akey, -1, SQLITE_STATIC) == SQLITE_OK ?
		     sqlite3_step(q) : SQLITE_MISUSE;
		if (rc == SQLITE_ROW) {
			t->access_token = store_dup_col(q, 0);
			t->obtained = sqlite3_column_int64(q, 1);
			t->expires = sqlite3_column_int64(q, 2);
			rc = SQLITE_DONE;
		}
		store_release(st, q);
		if (rc != SQLITE_DONE)
			goto fail;
	}
	return 0;
fail:
	store_token_clear(t);
	return store_fail(st, err_r, "token get");
}

int
store_token_put(store *st, const char *rkey, const char *akey, const char *access,
		long long obtained, long long expires, const char *new_refresh, char **err_r)
{
	sqlite3_stmt *q;
	int own, ok;

	if (akey == NULL || access == NULL || (new_refresh != NULL && rkey == NULL)) {
		err_set(err_r, "%s: invalid token", st->path);
		return -1;
	}
	if (st->readonly)
		return 0;
	if (st->pg != NULL)
		return pgs_token_put(st, rkey, akey, access, obtained, expires, new_refresh, err_r);
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	q = store_prep(st, "INSERT OR REPLACE INTO oauth_access (key, rkey, access_token,"
		       " obtained, expires) VALUES (?1, ?2, ?3, ?4, ?5)", err_r);
	ok = q != NULL &&
	     store_run(st, q,
		       sqlite3_bind_text(q, 1, akey, -1, SQLITE_STATIC) == SQLITE_OK &&
		       sqlite3_bind_text(q, 2, rkey, -1, SQLITE_STATIC) == SQLITE_OK &&
		       sqlite3_bind_text(q, 3, access, -1, SQLITE_STATIC) == SQLITE_OK &&
		       sqlite3_bind_int64(q, 4, (sqlite3_int64)obtained) == SQLITE_OK &&
		       sqlite3_bind_int64(q, 5, (sqlite3_int64)expires) == SQLITE_OK,
		       err_r, "token put") == 0;
	/* A rotated refresh token replaces the old one in the same transaction
	 * as the access token it came with: never one without the other. */
	if (ok && new_refresh != NULL) {
		q = store_prep(st, "INSERT INTO oauth_refresh (key, refresh_token, needs_signin,"
			       " reason, updated) VALUES (?1, ?2, 0, NULL, ?3) ON CONFLICT (key)"
			       " DO UPDATE SET refresh_token = excluded.refresh_token,"
			       " needs_signin = 0, reason = NULL, updated = excluded.updated", err_r);
		ok = q != NULL &&
		     store_run(st, q,
			       sqlite3_bind_text(q, 1, rkey, -1, SQLITE_STATIC) == SQLITE_OK &&
			       sqlite3_bind_text(q, 2, new_refresh, -1, SQLITE_STATIC) == SQLITE_OK &&
			       sqlite3_bind_int64(q, 3, (sqlite3_int64)obtained) == SQLITE_OK,
			       err_r, "refresh token put") == 0;
	}
	return store_tx_end(st, own, ok, err_r);
}

int
store_token_drop_access(store *st, const char *akey, char **err_r)
{
	sqlite3_stmt *q;

	if (st->readonly)
		return 0;
	if (st->pg != NULL)
		return pgs_token_drop_access(st, akey, err_r);
	q = store_prep(st, "DELETE FROM oauth_access WHERE key = ?1", err_r);
	return q == NULL ? -1 :
	       store_run(st, q, sqlite3_bind_text(q, 1, akey, -1, SQLITE_STATIC) == SQLITE_OK,
			 err_r, "token drop");
}

/* Forget the access tokens a sign-in gave (in the caller's transaction). */
static int
store_token_drop_signin(store *st, const char *rkey, char **err_r)
{
	sqlite3_stmt *q = store_prep(st, "DELETE FROM oauth_access WHERE rkey = ?1", err_r);

	return q == NULL ? -1 :
	       store_run(st, q, sqlite3_bind_text(q, 1, rkey, -1, SQLITE_STATIC) == SQLITE_OK,
			 err_r, "sign-in drop");
}

/* Set the sign-in's row and drop the access tokens it gave. */
static int
store_token_refresh_set(store *st, const char *rkey, const char *refresh, int needs,
			const char *reason, long long now, char **err_r)
{
	sqlite3_stmt *q;
	int own, ok;

	if (rkey == NULL) {
		err_set(err_r, "%s: invalid sign-in", st->path);
		return -1;
	}
	if (st->readonly)
		return 0;
	if (st->pg != NULL)
		return pgs_token_refresh_set(st, rkey, refresh, needs, reason, now, err_r);
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	q = store_prep(st, "INSERT OR REPLACE INTO oauth_refresh (key, refresh_token,"
		       " needs_signin, reason, updated) VALUES (?1, ?2, ?3, ?4, ?5)", err_r);
	ok = q != NULL &&
	     store_run(st, q,
		       sqlite3_bind_text(q, 1, rkey, -1, SQLITE_STATIC) == SQLITE_OK &&
		       sqlite3_bind_text(q, 2, refresh, -1, SQLITE_STATIC) == SQLITE_OK &&
		       sqlite3_bind_int(q, 3, needs) == SQLITE_OK &&
		       sqlite3_bind_text(q, 4, reason, -1, SQLITE_STATIC) == SQLITE_OK &&
		       sqlite3_bind_int64(q, 5, (sqlite3_int64)now) == SQLITE_OK,
		       err_r, "sign-in put") == 0;
	ok = ok && store_token_drop_signin(st, rkey, err_r) == 0;
	return store_tx_end(st, own, ok, err_r);
}

int
store_token_signed_in(store *st, const char *rkey, const char *refresh, long long now,
		      char **err_r)
{
	if (refresh == NULL) {
		err_set(err_r, "%s: no refresh token", st->path);
		return -1;
	}
	return store_token_refresh_set(st, rkey, refresh, 0, NULL, now, err_r);
}

int
store_token_needs_signin(store *st, const char *rkey, const char *refused, const char *reason,
			 long long now, char **err_r)
{
	sqlite3_stmt *q;
	int own, ok, changed = 0;

	if (reason == NULL)
		reason = "sign-in needed";
	if (refused == NULL)
		return store_token_refresh_set(st, rkey, NULL, 1, reason, now, err_r);
	if (rkey == NULL) {
		err_set(err_r, "%s: invalid sign-in", st->path);
		return -1;
	}
	if (st->readonly)
		return 0;
	if (st->pg != NULL)
		return pgs_token_needs_signin(st, rkey, refused, reason, now, err_r);
	/* Only the refresh token that was refused: another process (POP3 and
	 * SMTP share a sign-in) may have rotated it meanwhile, and the new one
	 * must not be thrown away. */
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	q = store_prep(st, "UPDATE oauth_refresh SET refresh_token = NULL, needs_signin = 1,"
		       " reason = ?3, updated = ?4 WHERE key = ?1 AND refresh_token = ?2", err_r);
	ok = q != NULL &&
	     store_run(st, q,
		       sqlite3_bind_text(q, 1, rkey, -1, SQLITE_STATIC) == SQLITE_OK &&
		       sqlite3_bind_text(q, 2, refused, -1, SQLITE_STATIC) == SQLITE_OK &&
		       sqlite3_bind_text(q, 3, reason, -1, SQLITE_STATIC) == SQLITE_OK &&
		       sqlite3_bind_int64(q, 4, (sqlite3_int64)now) == SQLITE_OK,
		       err_r, "sign-in refused") == 0;
	if (ok && (changed = sqlite3_changes(st->db) > 0))
		ok = store_token_drop_signin(st, rkey, err_r) == 0;
	if (store_tx_end(st, own, ok, err_r) < 0)
		return -1;
	return changed ? 0 : 1;
}

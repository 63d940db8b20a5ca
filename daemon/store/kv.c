/* mailmill - ISC licence, see LICENSE */
/*
 * The plugins' scoped key-value store and named sequences.  A scope of an
 * account's stage lives in table kv, a namespace in table kv_ns; every
 * statement comes in those two forms, with the same parameter numbers
 * (?1 account or namespace, ?2 stage, ?3 key, ?4 value, ?5 expires_at,
 * ?6 now; a number a statement does not use is a gap SQLite allows), so
 * one function binds both.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon/store/store_int.h"
#include "proto/err.h"

enum { KV_STAGE, KV_NS };

static const char *const kv_sql_get[] = {
	[KV_STAGE] = "SELECT value FROM kv WHERE account = ?1 AND stage = ?2 AND key = ?3"
		     " AND (expires_at = 0 OR expires_at > ?6)",
	[KV_NS] = "SELECT value FROM kv_ns WHERE ns = ?1 AND key = ?3"
		  " AND (expires_at = 0 OR expires_at > ?6)",
};
static const char *const kv_sql_put[] = {
	[KV_STAGE] = "INSERT OR REPLACE INTO kv (account, stage, key, value, expires_at, updated)"
		     " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[KV_NS] = "INSERT OR REPLACE INTO kv_ns (ns, key, value, expires_at, updated)"
		  " VALUES (?1, ?3, ?4, ?5, ?6)",
};
static const char *const kv_sql_expire[] = {
	[KV_STAGE] = "DELETE FROM kv WHERE account = ?1 AND stage = ?2"
		     " AND expires_at > 0 AND expires_at <= ?6",
	[KV_NS] = "DELETE FROM kv_ns WHERE ns = ?1 AND expires_at > 0 AND expires_at <= ?6"
		  "",
};
/* Insert if absent or expired; a live key stays whoever's it is. */
static const char *const kv_sql_claim[] = {
	[KV_STAGE] = "INSERT INTO kv (account, stage, key, value, expires_at, updated)"
		     " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (account, stage, key)"
		     " DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at,"
		     " updated = excluded.updated"
		     " WHERE kv.expires_at > 0 AND kv.expires_at <= excluded.updated",
	[KV_NS] = "INSERT INTO kv_ns (ns, key, value, expires_at, updated)"
		  " VALUES (?1, ?3, ?4, ?5, ?6) ON CONFLICT (ns, key)"
		  " DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at,"
		  " updated = excluded.updated"
		  " WHERE kv_ns.expires_at > 0 AND kv_ns.expires_at <= excluded.updated",
};

/* KV_STAGE or KV_NS; -1 and *err_r if the scope names neither. */
static int
kv_kind(store *st, const store_kv_scope *sc, char **err_r)
{
	if (sc != NULL && sc->ns != NULL)
		return KV_NS;
	if (sc != NULL && sc->account != NULL && sc->stage != NULL)
		return KV_STAGE;
	err_set(err_r, "%s: a key-value scope needs an account and a stage, or a namespace",
		st->path);
	return -1;
}

/* One of the statements above, prepared, with the scope, key, value and
 * times bound (value NULL for a read): NULL and *err_r on error. */
static sqlite3_stmt *
kv_prep(store *st, const char *const sql[], int kind, const store_kv_scope *sc,
	const char *key, const char *value, long long expires_at, long long now, char **err_r)
{
	sqlite3_stmt *q = store_prep(st, sql[kind], err_r);

	if (q == NULL)
		return NULL;
	if (sqlite3_bind_text(q, 1, kind == KV_NS ? sc->ns : sc->account, -1,
			      SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(q, 2, kind == KV_NS ? NULL : sc->stage, -1, SQLITE_STATIC) !=
	    SQLITE_OK ||
	    (key != NULL && sqlite3_bind_text(q, 3, key, -1, SQLITE_STATIC) != SQLITE_OK) ||
	    (value != NULL && sqlite3_bind_text(q, 4, value, -1, SQLITE_STATIC) != SQLITE_OK) ||
	    (value != NULL && sqlite3_bind_int64(q, 5, (sqlite3_int64)expires_at) != SQLITE_OK) ||
	    sqlite3_bind_int64(q, 6, (sqlite3_int64)now) != SQLITE_OK) {
		store_fail(st, err_r, "key-value");
		store_release(st, q);
		return NULL;
	}
	return q;
}

int
store_kv_get(store *st, const store_kv_scope *scope, const char *key, long long now,
	     char **value_r, char **err_r)
{
	sqlite3_stmt *q;
	int kind, rc;

	*value_r = NULL;
	if ((kind = kv_kind(st, scope, err_r)) < 0)
		return -1;
	if (st->pg != NULL)
		return pgs_kv_get(st, scope, key, now, value_r, err_r);
	if (st->db == NULL)
		return 0;
	if ((q = kv_prep(st, kv_sql_get, kind, scope, key, NULL, 0, now, err_r)) == NULL)
		return -1;
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		const char *v = store_col(q, 0);

		*value_r = strdup(v != NULL ? v : "");
		store_release(st, q);
		if (*value_r == NULL) {
			err_set(err_r, "out of memory");
			return -1;
		}
		return 1;
	}
	if (rc != SQLITE_DONE)
		store_fail(st, err_r, "kv get");
	store_release(st, q);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* 1 if the scope (account, stage; "\x1e", ns for a namespace) was expired at `now`
 * already; else remembers that it is being done now (a failed allocation
 * only means expiring again). */
static int
store_kv_expired_now(store *st, const char *account, const char *stage, long long now)
{
	size_t na = strlen(account), ns = strlen(stage);

	if (st->kv_expired_at == now && st->kv_expired_scope != NULL &&
	    strcmp(st->kv_expired_scope, account) == 0 &&
	    strcmp(st->kv_expired_scope + na + 1, stage) == 0)
		return 1;
	free(st->kv_expired_scope);
	/* account NUL stage NUL */
	if ((st->kv_expired_scope = malloc(na + ns + 2)) != NULL) {
		memcpy(st->kv_expired_scope, account, na + 1);
		memcpy(st->kv_expired_scope + na + 1, stage, ns + 1);
	}
	st->kv_expired_at = now;
	return 0;
}


/* Check what a write would store. */
static int
kv_args_ok(store *st, const char *key, const char *value, long long expires_at, char **err_r)
{
	if (key == NULL || value == NULL || expires_at < 0) {
		err_set(err_r, "%s: invalid key-value pair", st->path);
		return 0;
	}
	return 1;
}

int
store_kv_put(store *st, const store_kv_scope *scope, const char *key, const char *value,
	     long long expires_at, long long now, char **err_r)
{
	sqlite3_stmt *q;
	int kind, own, ok;

	if ((kind = kv_kind(st, scope, err_r)) < 0 || !kv_args_ok(st, key, value, expires_at, err_r))
		return -1;
	if (st->readonly)
		return 0;
	if (st->pg != NULL)
		return pgs_kv_put(st, scope, key, value, expires_at, now, err_r);
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	q = kv_prep(st, kv_sql_put, kind, scope, key, value, expires_at, now, err_r);
	ok = q != NULL && store_run(st, q, 1, err_r, "kv put") == 0;
	/* Expiring the scope once per second is enough: a batch's puts share
	 * their `now`, and each would otherwise scan the expiry index again. */
	if (ok && !store_kv_expired_now(st, kind == KV_NS ? "\x1e" : scope->account,
					kind == KV_NS ? scope->ns : scope->stage, now)) {
		q = kv_prep(st, kv_sql_expire, kind, scope, NULL, NULL, 0, now, err_r);
		ok = q != NULL && store_run(st, q, 1, err_r, "kv expire") == 0;
	}
	return store_tx_end(st, own, ok, err_r);
}

int
store_kv_claim(store *st, const store_kv_scope *scope, const char *key, const char *value,
	       long long expires_at, long long now, char **holder_r, char **err_r)
{
	sqlite3_stmt *q;
	int kind, ok, got = 0;

	*holder_r = NULL;
	if ((kind = kv_kind(st, scope, err_r)) < 0 || !kv_args_ok(st, key, value, expires_at, err_r))
		return -1;
	if (st->in_tx) {
		err_set(err_r, "%s: a claim commits on its own, not inside a transaction",
			st->path);
		return -1;
	}
	if (st->readonly) {
		/* A dry run claims nothing, but says what a real run would find. */
		int rc = store_kv_get(st, scope, key, now, holder_r, err_r);

		return rc < 0 ? -1 : rc == 0;
	}
	if (st->pg != NULL)
		return pgs_kv_claim(st, scope, key, value, expires_at, now, holder_r, err_r);
	/* Insert-if-absent (an expired claim counts as absent), then read who
	 * holds it, in one IMMEDIATE transaction: of two processes, one wins. */
	if (store_begin(st, err_r) < 0)
		return -1;
	q = kv_prep(st, kv_sql_claim, kind, scope, key, value, expires_at, now, err_r);
	ok = q != NULL && store_run(st, q, 1, err_r, "kv claim") == 0;
	if (ok) {
		got = sqlite3_changes(st->db) == 1;
		if (!got)
			ok = store_kv_get(st, scope, key, now, holder_r, err_r) >= 0;
	}
	if (store_tx_end(st, 1, ok, err_r) < 0) {
		free(*holder_r);
		*holder_r = NULL;
		return -1;
	}
	return got;
}

int
store_seq_next(store *st, const char *ns, const char *name, long long *value_r, char **err_r)
{
	sqlite3_stmt *q;
	int rc, ok;

	*value_r = 0;
	if (ns == NULL || name == NULL) {
		err_set(err_r, "%s: a sequence needs a namespace and a name", st->path);
		return -1;
	}
	if (st->in_tx) {
		err_set(err_r, "%s: a sequence commits on its own, not inside a transaction",
			st->path);
		return -1;
	}
	if (st->pg != NULL)
		return pgs_seq_next(st, ns, name, value_r, err_r);
	if (st->db == NULL) {
		*value_r = 1;
		return 0;
	}
	if (st->readonly) {
		q = store_prep(st, "SELECT coalesce((SELECT value FROM seq WHERE ns = ?1"
			       " AND name = ?2), 0) + 1", err_r);
	} else {
		if (store_begin(st, err_r) < 0)
			return -1;
		q = store_prep(st, "INSERT INTO seq (ns, name, value) VALUES (?1, ?2, 1)"
			       " ON CONFLICT (ns, name) DO UPDATE SET value = value + 1"
			       " RETURNING value", err_r);
	}
	ok = q != NULL;
	if (ok) {
		if (sqlite3_bind_text(q, 1, ns, -1, SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_bind_text(q, 2, name, -1, SQLITE_STATIC) != SQLITE_OK)
			rc = SQLITE_MISUSE;
		else
			rc = sqlite3_step(q);
		if (rc == SQLITE_ROW) {
			*value_r = sqlite3_column_int64(q, 0);
			rc = sqlite3_step(q);
		}
		if (rc != SQLITE_DONE || *value_r <= 0) {
			store_fail(st, err_r, "sequence");
			ok = 0;
		}
		store_release(st, q);
	}
	if (st->readonly)
		return ok ? 0 : -1;
	/* Committed now, before the number is used: it is never handed out twice,
	 * and a crash before the message's verdict commits only leaves a gap. */
	return store_tx_end(st, 1, ok, err_r);
}

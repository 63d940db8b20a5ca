/* mailmill - ISC licence, see LICENSE */
/*
 * The plugins' key-value scopes and the sequences on PostgreSQL (kv.c's
 * contract).  A stage's scope is table kv (account, stage), a namespace
 * kv_ns (ns); every statement's parameters are the scope's ($1, or $1 and
 * $2), then the statement's own in a fixed order.  Claims and sequence
 * numbers are single statements that PostgreSQL serialises on the row, so
 * of several daemons on several hosts exactly one gets a key, and no
 * ticket number is handed out twice.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon/store/pg_int.h"
#include "proto/err.h"

enum { KV_STAGE, KV_NS };

/* Scope, key, now */
static const char *const pgs_kv_get_sql[] = {
	[KV_STAGE] = "SELECT value FROM kv WHERE account = $1 AND stage = $2 AND key = $3"
		     " AND (expires_at = 0 OR expires_at > $4)",
	[KV_NS] = "SELECT value FROM kv_ns WHERE ns = $1 AND key = $2"
		  " AND (expires_at = 0 OR expires_at > $3)",
};
/* Scope, key, value, expires_at, now */
static const char *const pgs_kv_put_sql[] = {
	[KV_STAGE] = "INSERT INTO kv (account, stage, key, value, expires_at, updated)"
		     " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account, stage, key)"
		     " DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at,"
		     " updated = excluded.updated",
	[KV_NS] = "INSERT INTO kv_ns (ns, key, value, expires_at, updated)"
		  " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (ns, key)"
		  " DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at,"
		  " updated = excluded.updated",
};
/* Scope, now */
static const char *const pgs_kv_expire_sql[] = {
	[KV_STAGE] = "DELETE FROM kv WHERE account = $1 AND stage = $2"
		     " AND expires_at > 0 AND expires_at <= $3",
	[KV_NS] = "DELETE FROM kv_ns WHERE ns = $1 AND expires_at > 0 AND expires_at <= $2",
};
/* Scope, key, value, expires_at, now: a row only if this call took the key. */
static const char *const pgs_kv_claim_sql[] = {
	[KV_STAGE] = "INSERT INTO kv AS k (account, stage, key, value, expires_at, updated)"
		     " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account, stage, key)"
		     " DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at,"
		     " updated = excluded.updated"
		     " WHERE k.expires_at > 0 AND k.expires_at <= excluded.updated RETURNING 1",
	[KV_NS] = "INSERT INTO kv_ns AS k (ns, key, value, expires_at, updated)"
		  " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (ns, key)"
		  " DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at,"
		  " updated = excluded.updated"
		  " WHERE k.expires_at > 0 AND k.expires_at <= excluded.updated RETURNING 1",
};

/* The scope's parameters; the kind (kv.c checked that the scope is valid). */
static int
pgs_kv_scope(const store_kv_scope *sc, pgs_args *a)
{
	if (sc->ns != NULL) {
		pgs_s(a, sc->ns);
		return KV_NS;
	}
	pgs_s(a, sc->account);
	pgs_s(a, sc->stage);
	return KV_STAGE;
}

int
pgs_kv_get(store *st, const store_kv_scope *sc, const char *key, long long now,
	   char **value_r, char **err_r)
{
	pgs_args a = { 0 };
	PGresult *r;
	int kind;

	if (st->pg->empty)
		return 0;
	kind = pgs_kv_scope(sc, &a);
	pgs_s(&a, key);
	pgs_i(&a, now);
	r = pgs_exec(st, pgs_kv_get_sql[kind], &a, "kv get", err_r);
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return 0;
	}
	*value_r = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (*value_r == NULL) {
		err_set(err_r, "out of memory");
		return -1;
	}
	return 1;
}

int
pgs_kv_put(store *st, const store_kv_scope *sc, const char *key, const char *value,
	   long long expires_at, long long now, char **err_r)
{
	pgs_args a = { 0 }, e = { 0 };
	int kind, own, ok;

	kind = pgs_kv_scope(sc, &a);
	pgs_kv_scope(sc, &e);
	pgs_s(&a, key);
	pgs_s(&a, value);
	pgs_i(&a, expires_at);
	pgs_i(&a, now);
	pgs_i(&e, now);
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	ok = pgs_cmd(st, pgs_kv_put_sql[kind], &a, "kv put", NULL, err_r) == 0 &&
	     pgs_cmd(st, pgs_kv_expire_sql[kind], &e, "kv expire", NULL, err_r) == 0;
	return store_tx_end(st, own, ok, err_r);
}

int
pgs_kv_claim(store *st, const store_kv_scope *sc, const char *key, const char *value,
	     long long expires_at, long long now, char **holder_r, char **err_r)
{
	pgs_args a = { 0 };
	PGresult *r;
	int kind, ok, got = 0;

	kind = pgs_kv_scope(sc, &a);
	pgs_s(&a, key);
	pgs_s(&a, value);
	pgs_i(&a, expires_at);
	pgs_i(&a, now);
	if (store_begin(st, err_r) < 0)
		return -1;
	r = pgs_exec(st, pgs_kv_claim_sql[kind], &a, "kv claim", err_r);
	ok = r != NULL;
	if (ok) {
		got = PQntuples(r) == 1;
		PQclear(r);
		if (!got)
			ok = pgs_kv_get(st, sc, key, now, holder_r, err_r) >= 0;
	}
	if (store_tx_end(st, 1, ok, err_r) < 0) {
		free(*holder_r);
		*holder_r = NULL;
		return -1;
	}
	return got;
}

int
pgs_seq_next(store *st, const char *ns, const char *name, long long *value_r, char **err_r)
{
	pgs_args a = { 0 };
	PGresult *r;
	int ok;

	if (st->pg->empty) {
		*value_r = 1;
		return 0;
	}
	pgs_s(&a, ns);
	pgs_s(&a, name);
	if (st->readonly) {
		r = pgs_exec(st, "SELECT coalesce((SELECT value FROM seq WHERE ns = $1"
			     " AND name = $2), 0) + 1", &a, "sequence", err_r);
		ok = r != NULL && PQntuples(r) == 1;
		if (ok)
			*value_r = pgs_ll(r, 0, 0);
		PQclear(r);
		return ok ? 0 : -1;
	}
	/* One statement, committed before the number is used: the row lock of
	 * the upsert serialises daemons on every host. */
	if (store_begin(st, err_r) < 0)
		return -1;
	r = pgs_exec(st, "INSERT INTO seq AS s (ns, name, value) VALUES ($1, $2, 1)"
		     " ON CONFLICT (ns, name) DO UPDATE SET value = s.value + 1 RETURNING value",
		     &a, "sequence", err_r);
	ok = r != NULL && PQntuples(r) == 1 && (*value_r = pgs_ll(r, 0, 0)) > 0;
	if (r != NULL && !ok)
		err_set(err_r, "%s: sequence %s/%s: no number", st->path, ns, name);
	PQclear(r);
	return store_tx_end(st, 1, ok, err_r);
}

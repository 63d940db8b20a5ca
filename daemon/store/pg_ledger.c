/* mailmill - ISC licence, see LICENSE */
/* The ledger on PostgreSQL: ledger.c's functions, quarantine and ageing. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/store/pg_int.h"
#include "proto/err.h"

static int
pgs_state_ok(long long v)
{
	return v >= LEDGER_NEW && v <= LEDGER_QUARANTINE;
}

int
pgs_ledger_load(store *st, const char *account, store_ledger_fn *fn, void *arg, char **err_r)
{
	pgs_args a = { 0 };
	PGresult *r;

	if (st->pg->empty)
		return 0;
	pgs_s(&a, account);
	r = pgs_exec(st, "SELECT uid, state, attempts FROM ledger WHERE account = $1", &a, "load",
		     err_r);
	if (r == NULL)
		return -1;
	for (int i = 0; i < PQntuples(r); i++) {
		long long state = pgs_ll(r, i, 1);

		if (!pgs_state_ok(state)) {
			err_set(err_r, "%s: ledger row of account %s has an invalid state %lld",
				st->path, account, state);
			PQclear(r);
			return -1;
		}
		fn(arg, pgs_str(r, i, 0), (ledger_state)state, (int)pgs_ll(r, i, 2));
	}
	PQclear(r);
	return 0;
}

int
pgs_ledger_get(store *st, const char *account, const char *uid, ledger_state *state_r,
	       int *attempts_r, char **err_r)
{
	pgs_args a = { 0 };
	PGresult *r;
	long long state;

	if (st->pg->empty)
		return 0;
	pgs_s(&a, account);
	pgs_s(&a, uid);
	r = pgs_exec(st, "SELECT state, attempts FROM ledger WHERE account = $1 AND uid = $2", &a,
		     "get", err_r);
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return 0;
	}
	state = pgs_ll(r, 0, 0);
	if (!pgs_state_ok(state)) {
		err_set(err_r, "%s: ledger row %s/%s has an invalid state %lld", st->path, account,
			uid, state);
		PQclear(r);
		return -1;
	}
	if (state_r != NULL)
		*state_r = (ledger_state)state;
	if (attempts_r != NULL)
		*attempts_r = (int)pgs_ll(r, 0, 1);
	PQclear(r);
	return 1;
}

int
pgs_ledger_put(store *st, const store_record *rec, char **err_r)
{
	pgs_args a = { 0 };

	pgs_s(&a, rec->account);
	pgs_s(&a, rec->uid);
	pgs_i(&a, rec->state);
	pgs_s(&a, rec->verdict);
	pgs_s(&a, rec->stage);
	pgs_s(&a, rec->message_id);
	pgs_i(&a, (long long)rec->size);
	pgs_i(&a, (long long)time(NULL));
	pgs_s(&a, rec->digest);
	/* An upsert: attempts and created survive a new verdict; a digest once
	 * known stays when a later write does not know it. */
	return pgs_write(st, "INSERT INTO ledger (account, uid, state, verdict, stage, message_id,"
			 " size, created, updated, digest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
			 " $8, $9) ON CONFLICT (account, uid) DO UPDATE SET state = excluded.state,"
			 " verdict = excluded.verdict, stage = excluded.stage,"
			 " message_id = excluded.message_id, size = excluded.size,"
			 " updated = excluded.updated,"
			 " digest = coalesce(excluded.digest, ledger.digest)",
			 &a, "put", NULL, err_r);
}

/* One statement per uid of the list, in one transaction; with_now adds
 * the time ($3) and, when 1, LEDGER_DELETED ($4). */
static int
pgs_ledger_each(store *st, const char *sql, const char *account, const char *const *uids,
		size_t n, int with_now, const char *what, char **err_r)
{
	int own, ok = 1;

	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	for (size_t i = 0; i < n && ok; i++) {
		pgs_args a = { 0 };

		pgs_s(&a, account);
		pgs_s(&a, uids[i]);
		if (with_now)
			pgs_i(&a, (long long)time(NULL));
		if (with_now == 1)
			pgs_i(&a, LEDGER_DELETED);
		ok = pgs_cmd(st, sql, &a, what, NULL, err_r) == 0;
	}
	return store_tx_end(st, own, ok, err_r);
}

int
pgs_ledger_mark_deleted(store *st, const char *account, const char *const *uids, size_t n,
			char **err_r)
{
	return pgs_ledger_each(st, "UPDATE ledger SET state = $4, updated = $3"
			       " WHERE account = $1 AND uid = $2", account, uids, n, 1,
			       "mark deleted", err_r);
}

int
pgs_ledger_forget(store *st, const char *account, const char *const *uids, size_t n,
		  char **err_r)
{
	/* The digest stays (store.h), in ledger_gone: one statement a key. */
	return pgs_ledger_each(st, "WITH g AS (DELETE FROM ledger WHERE account = $1 AND uid = $2"
			       " RETURNING account, uid, digest, message_id, state)"
			       " INSERT INTO ledger_gone (account, uid, digest, message_id, state,"
			       " forgotten) SELECT account, uid, digest, message_id, state, $3 FROM g"
			       " WHERE digest IS NOT NULL ON CONFLICT (account, uid) DO UPDATE SET"
			       " digest = excluded.digest, message_id = excluded.message_id,"
			       " state = excluded.state, forgotten = excluded.forgotten",
			       account, uids, n, 2, "forget", err_r);
}

int
pgs_ledger_prune_gone(store *st, const char *account, long long before, char **err_r)
{
	pgs_args a = { 0 };

	pgs_s(&a, account);
	pgs_i(&a, before);
	return pgs_write(st, "DELETE FROM ledger_gone WHERE account = $1 AND forgotten <= $2", &a,
			 "prune forgotten digests", NULL, err_r);
}

int
pgs_ledger_has_gone(store *st, const char *account, char **err_r)
{
	pgs_args a = { 0 };
	PGresult *r;
	int n;

	if (st->pg->empty)
		return 0;
	pgs_s(&a, account);
	r = pgs_exec(st, "SELECT 1 FROM ledger_gone WHERE account = $1 LIMIT 1", &a,
		     "forgotten digests", err_r);
	if (r == NULL)
		return -1;
	n = PQntuples(r) > 0;
	PQclear(r);
	return n;
}

int
pgs_ledger_mark_all_deleted(store *st, const char *account, char **err_r)
{
	pgs_args a = { 0 };

	pgs_s(&a, account);
	pgs_i(&a, (long long)time(NULL));
	pgs_i(&a, LEDGER_DELETED);
	pgs_i(&a, LEDGER_DELETE);
	return pgs_write(st, "UPDATE ledger SET state = $3, updated = $2"
			 " WHERE account = $1 AND state = $4", &a, "mark deleted", NULL, err_r);
}

int
pgs_ledger_fail(store *st, const char *account, const char *uid, const char *error,
		int *attempts_r, char **err_r)
{
	char short_err[STORE_ERROR_MAX + 1];
	pgs_args a = { 0 };
	PGresult *r;
	int own, ok;

	snprintf(short_err, sizeof(short_err), "%s", error != NULL ? error : "");
	pgs_s(&a, account);
	pgs_s(&a, uid);
	pgs_s(&a, short_err);
	pgs_i(&a, (long long)time(NULL));
	pgs_i(&a, LEDGER_NEW);
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	r = pgs_exec(st, "INSERT INTO ledger (account, uid, state, attempts, last_error, created,"
		     " updated) VALUES ($1, $2, $5, 1, $3, $4, $4)"
		     " ON CONFLICT (account, uid) DO UPDATE SET attempts = ledger.attempts + 1,"
		     " last_error = excluded.last_error, updated = excluded.updated"
		     " RETURNING attempts", &a, "count a failure", err_r);
	ok = r != NULL && PQntuples(r) == 1;
	if (ok)
		*attempts_r = (int)pgs_ll(r, 0, 0);
	PQclear(r);
	return store_tx_end(st, own, ok, err_r);
}

int
pgs_ledger_note(store *st, const char *account, const char *uid, const char *message_id,
		char **err_r)
{
	pgs_args a = { 0 };

	pgs_s(&a, account);
	pgs_s(&a, uid);
	pgs_s(&a, message_id);
	pgs_i(&a, LEDGER_NEW);
	pgs_i(&a, (long long)time(NULL));
	return pgs_write(st, "INSERT INTO ledger (account, uid, state, message_id, created, updated)"
			 " VALUES ($1, $2, $4, $3, $5, $5) ON CONFLICT (account, uid)"
			 " DO UPDATE SET message_id = excluded.message_id", &a, "note", NULL,
			 err_r);
}

int
pgs_ledger_quarantine(store *st, const char *account, const char *uid, char **err_r)
{
	pgs_args a = { 0 };

	pgs_s(&a, account);
	pgs_s(&a, uid);
	pgs_i(&a, (long long)time(NULL));
	pgs_i(&a, LEDGER_QUARANTINE);
	pgs_s(&a, ledger_state_name(LEDGER_QUARANTINE));
	return pgs_write(st, "UPDATE ledger SET state = $4, verdict = $5, updated = $3"
			 " WHERE account = $1 AND uid = $2", &a, "quarantine", NULL, err_r);
}

int
pgs_quarantine_release(store *st, const char *account, const char *uid, char **err_r)
{
	pgs_args a = { 0 };
	long long n = 0;

	if (st->pg->empty)
		return 0;
	pgs_s(&a, account);
	pgs_s(&a, uid);
	pgs_i(&a, LEDGER_NEW);
	pgs_i(&a, LEDGER_QUARANTINE);
	pgs_i(&a, (long long)time(NULL));
	if (pgs_write(st, "UPDATE ledger SET state = $3, verdict = NULL, attempts = 0,"
		      " last_error = NULL, updated = $5"
		      " WHERE account = $1 AND uid = $2 AND state = $4", &a, "release", &n,
		      err_r) < 0)
		return -1;
	return n > 0;
}

int
pgs_quarantine_list(store *st, const char *account, store_quarantine_fn *fn, void *arg,
		    char **err_r)
{
	pgs_args a = { 0 };
	PGresult *r;

	if (st->pg->empty)
		return 0;
	pgs_s(&a, account);
	pgs_i(&a, LEDGER_QUARANTINE);
	r = pgs_exec(st, "SELECT account, uid, message_id, attempts, last_error, updated FROM ledger"
		     " WHERE state = $2 AND ($1::text IS NULL OR account = $1)"
		     " ORDER BY account, updated", &a, "quarantine", err_r);
	if (r == NULL)
		return -1;
	for (int i = 0; i < PQntuples(r); i++) {
		store_quarantine_row row = {
			.account = pgs_str(r, i, 0), .uid = pgs_str(r, i, 1),
			.message_id = pgs_str(r, i, 2), .attempts = (int)pgs_ll(r, i, 3),
			.last_error = pgs_str(r, i, 4), .updated = pgs_ll(r, i, 5),
		};
		fn(arg, &row);
	}
	PQclear(r);
	return 0;
}

int
pgs_ledger_find_digest(store *st, const char *account, const char *message_id,
		       const char *digest, char **uid_r, ledger_state *state_r, char **err_r)
{
	pgs_args a = { 0 };
	PGresult *r;
	long long state;

	if (uid_r != NULL)
		*uid_r = NULL;
	if (st->pg->empty)
		return 0;
	pgs_s(&a, account);
	pgs_s(&a, digest);
	pgs_s(&a, message_id);
	pgs_i(&a, LEDGER_NEW);
	/* A decided row first (one that failed only is state NEW), a live one
	 * before a forgotten one (a key written again after it was forgotten
	 * is in both tables). */
	r = pgs_exec(st, "SELECT uid, state FROM (SELECT uid, state, 1 AS live, updated AS t"
		     " FROM ledger WHERE account = $1 AND digest = $2"
		     " AND message_id IS NOT DISTINCT FROM $3::text UNION ALL"
		     " SELECT uid, state, 0, forgotten FROM ledger_gone WHERE account = $1"
		     " AND digest = $2 AND message_id IS NOT DISTINCT FROM $3::text) d"
		     " ORDER BY state = $4, live DESC, t DESC LIMIT 1", &a, "digest", err_r);
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return 0;
	}
	state = pgs_ll(r, 0, 1);
	if (!pgs_state_ok(state)) {
		err_set(err_r, "%s: ledger row of account %s has an invalid state %lld", st->path,
			account, state);
		PQclear(r);
		return -1;
	}
	if (state_r != NULL)
		*state_r = (ledger_state)state;
	if (uid_r != NULL && (*uid_r = strdup(pgs_str(r, 0, 0))) == NULL) {
		err_set(err_r, "out of memory");
		PQclear(r);
		return -1;
	}
	PQclear(r);
	return 1;
}

int
pgs_aging_promote(store *st, const char *account, long long before, int apply, size_t *n_r,
		  char **err_r)
{
	pgs_args a = { 0 };
	long long n = 0;
	PGresult *r;

	if (st->pg->empty)
		return 0;
	pgs_s(&a, account);
	pgs_i(&a, LEDGER_KEEP);
	pgs_i(&a, before);
	if (!apply || st->readonly) {
		r = pgs_exec(st, "SELECT count(*) FROM ledger WHERE account = $1 AND state = $2"
			     " AND verdict = 'done' AND created <= $3", &a, "delete_after", err_r);
		if (r == NULL)
			return -1;
		*n_r = (size_t)pgs_ll(r, 0, 0);
		PQclear(r);
		return 0;
	}
	pgs_i(&a, LEDGER_DELETE);
	pgs_i(&a, (long long)time(NULL));
	if (pgs_write(st, "UPDATE ledger SET state = $4, updated = $5 WHERE account = $1"
		      " AND state = $2 AND verdict = 'done' AND created <= $3", &a, "delete_after",
		      &n, err_r) < 0)
		return -1;
	*n_r = (size_t)n;
	return 0;
}

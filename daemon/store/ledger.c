/* mailmill - ISC licence, see LICENSE */
/* The ledger: one row per (account, uid) decided, and quarantine. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "daemon/store/store_int.h"
#include "proto/err.h"

const char *
ledger_state_name(ledger_state s)
{
	switch (s) {
	case LEDGER_NEW: return "new";
	case LEDGER_DELETE: return "delete";
	case LEDGER_KEEP: return "keep";
	case LEDGER_DELETED: return "deleted";
	case LEDGER_QUARANTINE: return "quarantine";
	}
	return "invalid";
}

static int
store_state_ok(int v)
{
	return v >= LEDGER_NEW && v <= LEDGER_QUARANTINE;
}

/* Bind account (?1) and uid (?2): 1 if both bound. */
static int
store_bind_key(sqlite3_stmt *q, const char *account, const char *uid)
{
	return sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC) == SQLITE_OK &&
	       sqlite3_bind_text(q, 2, uid, -1, SQLITE_STATIC) == SQLITE_OK;
}

int
store_ledger_load(store *st, const char *account, store_ledger_fn *fn, void *arg, char **err_r)
{
	sqlite3_stmt *q;
	int rc;

	if (st->pg != NULL)
		return pgs_ledger_load(st, account, fn, arg, err_r);
	if (st->db == NULL)
		return 0;
	q = store_prep(st, "SELECT uid, state, attempts FROM ledger WHERE account = ?1", err_r);
	if (q == NULL)
		return -1;
	rc = sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC) == SQLITE_OK ? SQLITE_ROW :
	     SQLITE_MISUSE;
	while (rc == SQLITE_ROW && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *uid = store_col(q, 0);
		int state = sqlite3_column_int(q, 1);

		if (uid == NULL || !store_state_ok(state)) {
			err_set(err_r, "%s: ledger row of account %s has an invalid state %d",
				st->path, account, state);
			store_release(st, q);
			return -1;
		}
		fn(arg, uid, (ledger_state)state, sqlite3_column_int(q, 2));
	}
	if (rc != SQLITE_DONE) {
		store_fail(st, err_r, "load");
		store_release(st, q);
		return -1;
	}
	store_release(st, q);
	return 0;
}

int
store_ledger_get(store *st, const char *account, const char *uid, ledger_state *state_r,
		 int *attempts_r, char **err_r)
{
	sqlite3_stmt *q;
	int rc, state;

	if (st->pg != NULL)
		return pgs_ledger_get(st, account, uid, state_r, attempts_r, err_r);
	if (st->db == NULL)
		return 0;
	q = store_prep(st, "SELECT state, attempts FROM ledger WHERE account = ?1 AND uid = ?2",
		       err_r);
	if (q == NULL)
		return -1;
	rc = store_bind_key(q, account, uid) ? sqlite3_step(q) : SQLITE_MISUSE;
	if (rc == SQLITE_DONE) {
		store_release(st, q);
		return 0;
	}
	if (rc != SQLITE_ROW) {
		store_fail(st, err_r, "get");
		store_release(st, q);
		return -1;
	}
	state = sqlite3_column_int(q, 0);
	if (!store_state_ok(state)) {
		err_set(err_r, "%s: ledger row %s/%s has an invalid state %d", st->path,
			account, uid, state);
		store_release(st, q);
		return -1;
	}
	if (state_r != NULL)
		*state_r = (ledger_state)state;
	if (attempts_r != NULL)
		*attempts_r = sqlite3_column_int(q, 1);
	store_release(st, q);
	return 1;
}

int
store_ledger_put(store *st, const store_record *rec, char **err_r)
{
	sqlite3_stmt *q;

	if (!store_state_ok((int)rec->state) || rec->size > (unsigned long long)LLONG_MAX) {
		err_set(err_r, "%s: invalid ledger record for %s/%s", st->path, rec->account,
			rec->uid);
		return -1;
	}
	if (st->readonly)
		return 0;
	if (st->pg != NULL)
		return pgs_ledger_put(st, rec, err_r);
	/* An upsert, not REPLACE: attempts and created survive a new verdict.
	 * A record without a digest (POP3) leaves the row's as it is, with the
	 * statement that does not name it: a POP3 write costs what it did. */
	q = rec->digest == NULL ?
	    store_prep(st, "INSERT INTO ledger (account, uid, state, verdict, stage, message_id,"
		       " size, created, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)"
		       " ON CONFLICT (account, uid) DO UPDATE SET state = excluded.state,"
		       " verdict = excluded.verdict, stage = excluded.stage,"
		       " message_id = excluded.message_id, size = excluded.size,"
		       " updated = excluded.updated", err_r) :
	    store_prep(st, "INSERT INTO ledger (account, uid, state, verdict, stage, message_id,"
		       " size, created, updated, digest) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8,"
		       " ?9) ON CONFLICT (account, uid) DO UPDATE SET state = excluded.state,"
		       " verdict = excluded.verdict, stage = excluded.stage,"
		       " message_id = excluded.message_id, size = excluded.size,"
		       " updated = excluded.updated, digest = excluded.digest", err_r);
	if (q == NULL)
		return -1;
	return store_run(st, q,
			 store_bind_key(q, rec->account, rec->uid) &&
			 sqlite3_bind_int(q, 3, (int)rec->state) == SQLITE_OK &&
			 sqlite3_bind_text(q, 4, rec->verdict, -1, SQLITE_STATIC) == SQLITE_OK &&
			 sqlite3_bind_text(q, 5, rec->stage, -1, SQLITE_STATIC) == SQLITE_OK &&
			 sqlite3_bind_text(q, 6, rec->message_id, -1, SQLITE_STATIC) == SQLITE_OK &&
			 sqlite3_bind_int64(q, 7, (sqlite3_int64)rec->size) == SQLITE_OK &&
			 sqlite3_bind_int64(q, 8, (sqlite3_int64)time(NULL)) == SQLITE_OK &&
			 (rec->digest == NULL ||
			  sqlite3_bind_text(q, 9, rec->digest, -1, SQLITE_STATIC) == SQLITE_OK),
			 err_r, "put");
}

int
store_ledger_find_digest(store *st, const char *account, const char *message_id,
			 const char *digest, char **uid_r, ledger_state *state_r, char **err_r)
{
	sqlite3_stmt *q;
	int rc, state;

	if (uid_r != NULL)
		*uid_r = NULL;
	if (st->pg != NULL)
		return digest == NULL ? 0 : pgs_ledger_find_digest(st, account, message_id, digest,
								  uid_r, state_r, err_r);
	if (st->db == NULL || digest == NULL)
		return 0;
	/* A decided row first (state 0 is a row of failed attempts only), the
	 * newest first; a forgotten key's digest row carries its row's
	 * message_id and state (a key journalled again since has its row). */
	q = store_prep(st, "SELECT uid, s FROM (SELECT uid, state AS s, updated AS t FROM ledger"
		       " WHERE account = ?1 AND digest = ?2 AND message_id IS ?3"
		       " UNION ALL SELECT d.uid, d.state, d.forgotten FROM ledger_digest d"
		       " WHERE d.account = ?1 AND d.digest = ?2 AND d.message_id IS ?3"
		       " AND d.state IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ledger l"
		       " WHERE l.account = d.account AND l.uid = d.uid))"
		       " ORDER BY s = 0, t DESC LIMIT 1", err_r);
	if (q == NULL)
		return -1;
	rc = sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC) == SQLITE_OK &&
	     sqlite3_bind_text(q, 2, digest, -1, SQLITE_STATIC) == SQLITE_OK &&
	     sqlite3_bind_text(q, 3, message_id, -1, SQLITE_STATIC) == SQLITE_OK ?
	     sqlite3_step(q) : SQLITE_MISUSE;
	if (rc == SQLITE_DONE) {
		store_release(st, q);
		return 0;
	}
	if (rc != SQLITE_ROW) {
		store_fail(st, err_r, "find by digest");
		store_release(st, q);
		return -1;
	}
	state = sqlite3_column_int(q, 1);
	if (!store_state_ok(state)) {
		err_set(err_r, "%s: ledger row of %s has an invalid state %d", st->path, account,
			state);
		store_release(st, q);
		return -1;
	}
	if (state_r != NULL)
		*state_r = (ledger_state)state;
	if (uid_r != NULL && (*uid_r = strdup((const char *)sqlite3_column_text(q, 0))) == NULL) {
		store_release(st, q);
		err_set(err_r, "out of memory");
		return -1;
	}
	store_release(st, q);
	return 1;
}

int
store_ledger_mark_deleted(store *st, const char *account, const char *const *uids, size_t n,
			  char **err_r)
{
	sqlite3_int64 now = (sqlite3_int64)time(NULL);
	int own, ok = 1;

	if (st->readonly || n == 0)
		return 0;
	if (st->pg != NULL)
		return pgs_ledger_mark_deleted(st, account, uids, n, err_r);
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	for (size_t i = 0; i < n && ok; i++) {
		sqlite3_stmt *q = store_prep(st, "UPDATE ledger SET state = ?4, updated = ?3"
					     " WHERE account = ?1 AND uid = ?2", err_r);

		ok = q != NULL &&
		     store_run(st, q,
			       store_bind_key(q, account, uids[i]) &&
			       sqlite3_bind_int64(q, 3, now) == SQLITE_OK &&
			       sqlite3_bind_int(q, 4, LEDGER_DELETED) == SQLITE_OK,
			       err_r, "mark deleted") == 0;
	}
	return store_tx_end(st, own, ok, err_r);
}

int
store_ledger_mark_all_deleted(store *st, const char *account, char **err_r)
{
	sqlite3_stmt *q;

	if (st->readonly)
		return 0;
	if (st->pg != NULL)
		return pgs_ledger_mark_all_deleted(st, account, err_r);
	q = store_prep(st, "UPDATE ledger SET state = ?3, updated = ?2"
		       " WHERE account = ?1 AND state = ?4", err_r);
	if (q == NULL)
		return -1;
	return store_run(st, q,
			 sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC) == SQLITE_OK &&
			 sqlite3_bind_int64(q, 2, (sqlite3_int64)time(NULL)) == SQLITE_OK &&
			 sqlite3_bind_int(q, 3, LEDGER_DELETED) == SQLITE_OK &&
			 sqlite3_bind_int(q, 4, LEDGER_DELETE) == SQLITE_OK,
			 err_r, "mark deleted");
}

int
store_ledger_fail(store *st, const char *account, const char *uid, const char *error,
		  int *attempts_r, char **err_r)
{
	char short_err[STORE_ERROR_MAX + 1];
	sqlite3_stmt *q;
	int own, ok;

	if (st->readonly) {
		/* Say what the count would become, write nothing. */
		int attempts = 0;
		if (store_ledger_get(st, account, uid, NULL, &attempts, err_r) < 0)
			return -1;
		*attempts_r = attempts + 1;
		return 0;
	}
	if (st->pg != NULL)
		return pgs_ledger_fail(st, account, uid, error, attempts_r, err_r);
	snprintf(short_err, sizeof(short_err), "%s", error != NULL ? error : "");
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	q = store_prep(st, "INSERT INTO ledger (account, uid, state, attempts, last_error, created,"
		       " updated) VALUES (?1, ?2, ?5, 1, ?3, ?4, ?4)"
		       " ON CONFLICT (account, uid) DO UPDATE SET attempts = attempts + 1,"
		       " last_error = excluded.last_error, updated = excluded.updated"
		       " RETURNING attempts", err_r);
	ok = q != NULL;
	if (ok) {
		if (!store_bind_key(q, account, uid) ||
		    sqlite3_bind_text(q, 3, short_err, -1, SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_bind_int64(q, 4, (sqlite3_int64)time(NULL)) != SQLITE_OK ||
		    sqlite3_bind_int(q, 5, LEDGER_NEW) != SQLITE_OK ||
		    sqlite3_step(q) != SQLITE_ROW) {
			ok = store_fail(st, err_r, "count a failure") == 0;
		} else {
			*attempts_r = sqlite3_column_int(q, 0);
			ok = store_run(st, q, 1, err_r, "count a failure") == 0;
			q = NULL;
		}
		if (q != NULL)
			store_release(st, q);
	}
	return store_tx_end(st, own, ok, err_r);
}

int
store_ledger_forget(store *st, const char *account, const char *const *uids, size_t n,
		    char **err_r)
{
	sqlite3_int64 now = (sqlite3_int64)time(NULL);
	int own, ok = 1;

	if (st->readonly || n == 0)
		return 0;
	if (st->pg != NULL)
		return pgs_ledger_forget(st, account, uids, n, err_r);
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	for (size_t i = 0; i < n && ok; i++) {
		/* The digest stays (store.h): a digest row takes the row's
		 * message_id and state, and when it was forgotten, before the
		 * row goes. */
		sqlite3_stmt *q = store_prep(st, "INSERT OR REPLACE INTO ledger_digest (account, uid,"
					     " digest, message_id, state, forgotten) SELECT account, uid,"
					     " digest, message_id, state, ?3 FROM ledger WHERE"
					     " account = ?1 AND uid = ?2 AND digest IS NOT NULL", err_r);

		ok = q != NULL &&
		     store_run(st, q, store_bind_key(q, account, uids[i]) &&
			       sqlite3_bind_int64(q, 3, now) == SQLITE_OK, err_r, "forget") == 0;
		q = ok ? store_prep(st, "DELETE FROM ledger WHERE account = ?1 AND uid = ?2",
				    err_r) : NULL;
		ok = q != NULL &&
		     store_run(st, q, store_bind_key(q, account, uids[i]), err_r, "forget") == 0;
	}
	return store_tx_end(st, own, ok, err_r);
}

int
store_ledger_note(store *st, const char *account, const char *uid, const char *message_id,
		  char **err_r)
{
	sqlite3_stmt *q;

	if (st->readonly || message_id == NULL)
		return 0;
	if (st->pg != NULL)
		return pgs_ledger_note(st, account, uid, message_id, err_r);
	q = store_prep(st, "INSERT INTO ledger (account, uid, state, message_id, created, updated)"
		       " VALUES (?1, ?2, ?4, ?3, ?5, ?5) ON CONFLICT (account, uid)"
		       " DO UPDATE SET message_id = excluded.message_id", err_r);
	if (q == NULL)
		return -1;
	return store_run(st, q,
			 store_bind_key(q, account, uid) &&
			 sqlite3_bind_text(q, 3, message_id, -1, SQLITE_STATIC) == SQLITE_OK &&
			 sqlite3_bind_int(q, 4, LEDGER_NEW) == SQLITE_OK &&
			 sqlite3_bind_int64(q, 5, (sqlite3_int64)time(NULL)) == SQLITE_OK,
			 err_r, "note");
}

int
store_ledger_quarantine(store *st, const char *account, const char *uid, char **err_r)
{
	sqlite3_stmt *q;

	if (st->readonly)
		return 0;
	if (st->pg != NULL)
		return pgs_ledger_quarantine(st, account, uid, err_r);
	q = store_prep(st, "UPDATE ledger SET state = ?4, verdict = ?5, updated = ?3"
		       " WHERE account = ?1 AND uid = ?2", err_r);
	if (q == NULL)
		return -1;
	return store_run(st, q,
			 store_bind_key(q, account, uid) &&
			 sqlite3_bind_int64(q, 3, (sqlite3_int64)time(NULL)) == SQLITE_OK &&
			 sqlite3_bind_int(q, 4, LEDGER_QUARANTINE) == SQLITE_OK &&
			 sqlite3_bind_text(q, 5, ledger_state_name(LEDGER_QUARANTINE), -1,
					   SQLITE_STATIC) == SQLITE_OK,
			 err_r, "quarantine");
}

int
store_quarantine_release(store *st, const char *account, const char *uid, char **err_r)
{
	sqlite3_stmt *q;

	if (account == NULL || uid == NULL) {
		err_set(err_r, "%s: release needs an account and a uid", st->path);
		return -1;
	}
	if (st->pg != NULL && !st->readonly)
		return pgs_quarantine_release(st, account, uid, err_r);
	if (st->readonly || st->db == NULL)
		return 0;
	/* Back to "new" with no attempts counted: the next run processes it
	 * as if it had never failed.  created stays (when it was first seen). */
	q = store_prep(st, "UPDATE ledger SET state = ?3, verdict = NULL, attempts = 0,"
		       " last_error = NULL, updated = ?5"
		       " WHERE account = ?1 AND uid = ?2 AND state = ?4", err_r);
	if (q == NULL)
		return -1;
	if (store_run(st, q,
		      store_bind_key(q, account, uid) &&
		      sqlite3_bind_int(q, 3, LEDGER_NEW) == SQLITE_OK &&
		      sqlite3_bind_int(q, 4, LEDGER_QUARANTINE) == SQLITE_OK &&
		      sqlite3_bind_int64(q, 5, (sqlite3_int64)time(NULL)) == SQLITE_OK,
		      err_r, "release") < 0)
		return -1;
	return sqlite3_changes(st->db) > 0;
}

int
store_quarantine_list(store *st, const char *account, store_quarantine_fn *fn, void *arg,
		      char **err_r)
{
	sqlite3_stmt *q;
	int rc;

	if (st->pg != NULL)
		return pgs_quarantine_list(st, account, fn, arg, err_r);
	if (st->db == NULL)
		return 0;
	q = store_prep(st, "SELECT account, uid, message_id, attempts, last_error, updated FROM ledger"
		       " WHERE state = ?2 AND (?1 IS NULL OR account = ?1) ORDER BY account, updated",
		       err_r);
	if (q == NULL)
		return -1;
	if (sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int(q, 2, LEDGER_QUARANTINE) != SQLITE_OK) {
		store_fail(st, err_r, "quarantine");
		store_release(st, q);
		return -1;
	}
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		store_quarantine_row row = {
			.account = store_col(q, 0), .uid = store_col(q, 1),
			.message_id = store_col(q, 2), .attempts = sqlite3_column_int(q, 3),
			.last_error = store_col(q, 4), .updated = sqlite3_column_int64(q, 5),
		};
		if (row.account == NULL || row.uid == NULL)
			continue;
		fn(arg, &row);
	}
	if (rc != SQLITE_DONE) {
		store_fail(st, err_r, "quarantine");
		store_release(st, q);
		return -1;
	}
	store_release(st, q);
	return 0;
}

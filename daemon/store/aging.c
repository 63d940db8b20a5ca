/* mailmill - ISC licence, see LICENSE */
/*
 * The ledger's ageing: for delete_after (store.h, store_aging_promote), and
 * of forgotten keys' digests (store_ledger_prune_gone).  One statement on the
 * store's own connection, in the caller's transaction or one of its own.
 */
#include <time.h>
#include "daemon/store/store_int.h"

int
store_aging_promote(store *st, const char *account, long long before, int apply, size_t *n_r,
		    char **err_r)
{
	sqlite3_stmt *q;
	int own = 0, ok;

	*n_r = 0;
	if (st->pg != NULL)
		return pgs_aging_promote(st, account, before, apply, n_r, err_r);
	if (st->db == NULL)  /* a dry run before the first real run: nothing due */
		return 0;
	if (!apply || st->readonly) {
		q = store_prep(st, "SELECT count(*) FROM ledger WHERE account = ?1 AND state = ?2"
			       " AND verdict = 'done' AND created <= ?3", err_r);
		if (q == NULL)
			return -1;
		ok = sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC) == SQLITE_OK &&
		     sqlite3_bind_int(q, 2, LEDGER_KEEP) == SQLITE_OK &&
		     sqlite3_bind_int64(q, 3, (sqlite3_int64)before) == SQLITE_OK &&
		     sqlite3_step(q) == SQLITE_ROW;
		if (ok)
			*n_r = (size_t)sqlite3_column_int64(q, 0);
		store_release(st, q);
		return ok ? 0 : store_fail(st, err_r, "delete_after");
	}
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	q = store_prep(st, "UPDATE ledger SET state = ?4, updated = ?5 WHERE account = ?1"
		       " AND state = ?2 AND verdict = 'done' AND created <= ?3", err_r);
	ok = q != NULL &&
	     store_run(st, q,
		       sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC) == SQLITE_OK &&
		       sqlite3_bind_int(q, 2, LEDGER_KEEP) == SQLITE_OK &&
		       sqlite3_bind_int64(q, 3, (sqlite3_int64)before) == SQLITE_OK &&
		       sqlite3_bind_int(q, 4, LEDGER_DELETE) == SQLITE_OK &&
		       sqlite3_bind_int64(q, 5, (sqlite3_int64)time(NULL)) == SQLITE_OK,
		       err_r, "delete_after") == 0;
	if (ok)
		*n_r = (size_t)sqlite3_changes(st->db);
	return store_tx_end(st, own, ok, err_r) < 0 || !ok ? -1 : 0;
}

int
store_ledger_prune_gone(store *st, const char *account, long long before, char **err_r)
{
	sqlite3_stmt *q;

	if (st->readonly)
		return 0;
	if (st->pg != NULL)
		return pgs_ledger_prune_gone(st, account, before, err_r);
	q = store_prep(st, "DELETE FROM ledger_digest WHERE account = ?1 AND forgotten IS NOT NULL"
		       " AND forgotten <= ?2", err_r);
	if (q == NULL)
		return -1;
	return store_run(st, q,
			 sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC) == SQLITE_OK &&
			 sqlite3_bind_int64(q, 2, (sqlite3_int64)before) == SQLITE_OK,
			 err_r, "prune forgotten digests");
}

int
store_ledger_has_gone(store *st, const char *account, char **err_r)
{
	sqlite3_stmt *q;
	int rc;

	if (st->pg != NULL)
		return pgs_ledger_has_gone(st, account, err_r);
	if (st->db == NULL)
		return 0;
	q = store_prep(st, "SELECT 1 FROM ledger_digest WHERE account = ?1 AND forgotten IS NOT NULL"
		       " LIMIT 1", err_r);
	if (q == NULL)
		return -1;
	rc = sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC) == SQLITE_OK ? sqlite3_step(q) :
	     SQLITE_MISUSE;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		store_fail(st, err_r, "forgotten digests");
	store_release(st, q);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

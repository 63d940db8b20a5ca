/* mailmill - ISC licence, see LICENSE */
/*
 * The ledger's ageing for delete_after (aging.h).  One statement over the
 * store's database file through a connection of its own, so that it needs
 * nothing of store.c's internals; it runs before the account run reads the
 * ledger, when the store's connection holds no transaction (WAL: the two
 * connections see each other's commits).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sqlite3.h>
#include "daemon/store/aging.h"

#define AGING_BUSY_MS 10000

static int
aging_fail(sqlite3 *db, const char *path, const char *what, char **err_r)
{
	char tmp[1024];

	snprintf(tmp, sizeof tmp, "%s: %s: %s", path, what,
		 db != NULL ? sqlite3_errmsg(db) : "out of memory");
	if (err_r != NULL)
		*err_r = strdup(tmp);
	return -1;
}

int
store_aging_promote(store *st, const char *account, long long before, int apply, size_t *n_r,
		    char **err_r)
{
	/* state 2 = LEDGER_KEEP, 1 = LEDGER_DELETE (store.h). */
	static const char count_sql[] =
		"SELECT count(*) FROM ledger WHERE account = ?1 AND state = 2"
		" AND verdict = 'done' AND created <= ?2";
	static const char promote_sql[] =
		"UPDATE ledger SET state = 1, updated = ?3 WHERE account = ?1 AND state = 2"
		" AND verdict = 'done' AND created <= ?2";
	const char *path = store_path(st);
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	int rc = -1, step;

	*n_r = 0;
	if (sqlite3_open_v2(path, &db, (apply ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY) |
			    SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		/* A dry run before the first real run: no journal, nothing due. */
		if (!apply && sqlite3_errcode(db) == SQLITE_CANTOPEN) {
			sqlite3_close(db);
			return 0;
		}
		aging_fail(db, path, "opening for delete_after", err_r);
		goto out;
	}
	sqlite3_busy_timeout(db, AGING_BUSY_MS);
	if (sqlite3_prepare_v2(db, apply ? promote_sql : count_sql, -1, &q, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(q, 2, (sqlite3_int64)before) != SQLITE_OK ||
	    (apply && sqlite3_bind_int64(q, 3, (sqlite3_int64)time(NULL)) != SQLITE_OK)) {
		aging_fail(db, path, "delete_after", err_r);
		goto out;
	}
	step = sqlite3_step(q);
	if (apply ? step != SQLITE_DONE : step != SQLITE_ROW) {
		aging_fail(db, path, "delete_after", err_r);
		goto out;
	}
	*n_r = apply ? (size_t)sqlite3_changes(db) : (size_t)sqlite3_column_int64(q, 0);
	rc = 0;
out:
	sqlite3_finalize(q);
	sqlite3_close(db);
	return rc;
}

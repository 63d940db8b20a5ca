/* mailmill - ISC licence, see LICENSE */
/* The daemon's record of account runs and its schedule. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "daemon/store/store_int.h"

/* Rows kept per account: enough history for --status and a post-mortem. */
#define STORE_RUNS_KEEP 100

int
store_run_add(store *st, const store_run_row *row, char **err_r)
{
	char short_err[STORE_ERROR_MAX + 1];
	sqlite3_stmt *q;
	int own, ok;

	if (st->readonly)
		return 0;
	if (st->pg != NULL)
		return pgs_run_add(st, row, err_r);
	snprintf(short_err, sizeof(short_err), "%s", row->error != NULL ? row->error : "");
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	q = store_prep(st, "INSERT INTO runs (account, started, finished, result, error, fetched,"
		       " deleted, kept, deferred, skipped, bytes, moved, flagged) VALUES (?1, ?2,"
		       " ?3, ?4, nullif(?5, ''), ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)", err_r);
	ok = q != NULL &&
	     store_run(st, q,
		       sqlite3_bind_text(q, 1, row->account, -1, SQLITE_STATIC) == SQLITE_OK &&
		       sqlite3_bind_int64(q, 2, (sqlite3_int64)row->started) == SQLITE_OK &&
		       sqlite3_bind_int64(q, 3, (sqlite3_int64)row->finished) == SQLITE_OK &&
		       sqlite3_bind_text(q, 4, row->result, -1, SQLITE_STATIC) == SQLITE_OK &&
		       sqlite3_bind_text(q, 5, short_err, -1, SQLITE_STATIC) == SQLITE_OK &&
		       sqlite3_bind_int64(q, 6, (sqlite3_int64)row->fetched) == SQLITE_OK &&
		       sqlite3_bind_int64(q, 7, (sqlite3_int64)row->deleted) == SQLITE_OK &&
		       sqlite3_bind_int64(q, 8, (sqlite3_int64)row->kept) == SQLITE_OK &&
		       sqlite3_bind_int64(q, 9, (sqlite3_int64)row->deferred) == SQLITE_OK &&
		       sqlite3_bind_int64(q, 10, (sqlite3_int64)row->skipped) == SQLITE_OK &&
		       sqlite3_bind_int64(q, 11, (sqlite3_int64)(row->bytes > (unsigned long long)LLONG_MAX ?
							(unsigned long long)LLONG_MAX : row->bytes)) == SQLITE_OK &&
		       sqlite3_bind_int64(q, 12, (sqlite3_int64)row->moved) == SQLITE_OK &&
		       sqlite3_bind_int64(q, 13, (sqlite3_int64)row->flagged) == SQLITE_OK,
		       err_r, "record a run") == 0;
	if (ok) {
		q = store_prep(st, "DELETE FROM runs WHERE account = ?1 AND id <= (SELECT id FROM runs"
			       " WHERE account = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)", err_r);
		ok = q != NULL &&
		     store_run(st, q,
			       sqlite3_bind_text(q, 1, row->account, -1, SQLITE_STATIC) == SQLITE_OK &&
			       sqlite3_bind_int(q, 2, STORE_RUNS_KEEP) == SQLITE_OK,
			       err_r, "prune runs") == 0;
	}
	return store_tx_end(st, own, ok, err_r);
}

int
store_schedule_put(store *st, const char *account, long long next_run, int failures,
		   char **err_r)
{
	sqlite3_stmt *q;

	if (st->readonly)
		return 0;
	if (st->pg != NULL)
		return pgs_schedule_put(st, account, next_run, failures, err_r);
	q = store_prep(st, "INSERT INTO schedule (account, next_run, failures, updated)"
		       " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (account) DO UPDATE SET"
		       " next_run = excluded.next_run, failures = excluded.failures,"
		       " updated = excluded.updated", err_r);
	if (q == NULL)
		return -1;
	return store_run(st, q,
			 sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC) == SQLITE_OK &&
			 sqlite3_bind_int64(q, 2, (sqlite3_int64)next_run) == SQLITE_OK &&
			 sqlite3_bind_int(q, 3, failures) == SQLITE_OK &&
			 sqlite3_bind_int64(q, 4, (sqlite3_int64)time(NULL)) == SQLITE_OK,
			 err_r, "schedule");
}

int
store_run_last(store *st, const char *account, store_run_fn *fn, void *arg, char **err_r)
{
	store_run_row row;
	sqlite3_stmt *q;
	int rc;

	if (st->pg != NULL)
		return pgs_run_last(st, account, fn, arg, err_r);
	if (st->db == NULL)
		return 0;
	q = store_prep(st, "SELECT r.started, r.finished, r.result, r.error, r.fetched, r.deleted,"
		       " r.kept, r.deferred, r.skipped, r.bytes, s.next_run, s.failures, r.moved,"
		       " r.flagged"
		       " FROM (SELECT ?1 AS account) a"
		       " LEFT JOIN (SELECT * FROM runs WHERE account = ?1 ORDER BY id DESC LIMIT 1) r"
		       " ON 1 LEFT JOIN schedule s ON s.account = a.account", err_r);
	if (q == NULL)
		return -1;
	if (sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC) != SQLITE_OK) {
		store_fail(st, err_r, "runs");
		store_release(st, q);
		return -1;
	}
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		memset(&row, 0, sizeof row);
		row.account = account;
		row.started = sqlite3_column_int64(q, 0);
		row.finished = sqlite3_column_int64(q, 1);
		row.result = store_col(q, 2);
		row.error = store_col(q, 3);
		row.fetched = (unsigned long)sqlite3_column_int64(q, 4);
		row.deleted = (unsigned long)sqlite3_column_int64(q, 5);
		row.kept = (unsigned long)sqlite3_column_int64(q, 6);
		row.deferred = (unsigned long)sqlite3_column_int64(q, 7);
		row.skipped = (unsigned long)sqlite3_column_int64(q, 8);
		row.bytes = (unsigned long long)sqlite3_column_int64(q, 9);
		row.next_run = sqlite3_column_type(q, 10) == SQLITE_NULL ? -1 : sqlite3_column_int64(q, 10);
		row.failures = sqlite3_column_int(q, 11);
		row.moved = (unsigned long)sqlite3_column_int64(q, 12);
		row.flagged = (unsigned long)sqlite3_column_int64(q, 13);
		fn(arg, &row);
		rc = SQLITE_DONE;
	}
	if (rc != SQLITE_DONE) {
		store_fail(st, err_r, "runs");
		store_release(st, q);
		return -1;
	}
	store_release(st, q);
	return 0;
}

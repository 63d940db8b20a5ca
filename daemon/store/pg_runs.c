/* mailmill - ISC licence, see LICENSE */
/* The daemon's record of account runs and its schedule, on PostgreSQL. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "daemon/store/pg_int.h"

/* Rows kept per account, as runs.c keeps. */
#define PGS_RUNS_KEEP 100

int
pgs_run_add(store *st, const store_run_row *row, char **err_r)
{
	char short_err[STORE_ERROR_MAX + 1];
	pgs_args a = { 0 };

	snprintf(short_err, sizeof(short_err), "%s", row->error != NULL ? row->error : "");
	pgs_s(&a, row->account);
	pgs_i(&a, row->started);
	pgs_i(&a, row->finished);
	pgs_s(&a, row->result);
	pgs_s(&a, short_err);
	pgs_i(&a, (long long)row->fetched);
	pgs_i(&a, (long long)row->deleted);
	pgs_i(&a, (long long)row->kept);
	pgs_i(&a, (long long)row->deferred);
	pgs_i(&a, (long long)row->skipped);
	pgs_i(&a, row->bytes > (unsigned long long)LLONG_MAX ? LLONG_MAX : (long long)row->bytes);
	pgs_i(&a, (long long)row->moved);
	pgs_i(&a, (long long)row->flagged);
	/* One statement, atomic on its own: no transaction, one round trip a
	 * poll.  The DELETE sees the rows before the INSERT: it keeps one
	 * fewer of them. */
	pgs_i(&a, PGS_RUNS_KEEP - 1);
	return pgs_write(st, "WITH new AS (INSERT INTO runs (account, started, finished, result,"
			 " error, fetched, deleted, kept, deferred, skipped, bytes, moved, flagged)"
			 " VALUES ($1, $2, $3, $4, nullif($5, ''), $6, $7, $8, $9, $10, $11, $12, $13)"
			 " RETURNING id) DELETE FROM runs WHERE account = $1 AND id <= (SELECT id FROM"
			 " runs WHERE account = $1 ORDER BY id DESC LIMIT 1 OFFSET $14)", &a,
			 "record a run", NULL, err_r);
}

int
pgs_schedule_put(store *st, const char *account, long long next_run, int failures,
		 char **err_r)
{
	pgs_args a = { 0 };

	pgs_s(&a, account);
	pgs_i(&a, next_run);
	pgs_i(&a, failures);
	pgs_i(&a, (long long)time(NULL));
	return pgs_write(st, "INSERT INTO schedule (account, next_run, failures, updated)"
			 " VALUES ($1, $2, $3, $4) ON CONFLICT (account) DO UPDATE SET"
			 " next_run = excluded.next_run, failures = excluded.failures,"
			 " updated = excluded.updated", &a, "schedule", NULL, err_r);
}

int
pgs_run_last(store *st, const char *account, store_run_fn *fn, void *arg, char **err_r)
{
	store_run_row row;
	pgs_args a = { 0 };
	PGresult *r;

	if (st->pg->empty)
		return 0;
	pgs_s(&a, account);
	r = pgs_exec(st, "SELECT r.started, r.finished, r.result, r.error, r.fetched, r.deleted,"
		     " r.kept, r.deferred, r.skipped, r.bytes, s.next_run, s.failures, r.moved,"
		     " r.flagged"
		     " FROM (SELECT $1::text AS account) a"
		     " LEFT JOIN (SELECT * FROM runs WHERE account = $1 ORDER BY id DESC LIMIT 1) r"
		     " ON true LEFT JOIN schedule s ON s.account = a.account", &a, "runs", err_r);
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 1) {
		memset(&row, 0, sizeof row);
		row.account = account;
		row.started = pgs_ll(r, 0, 0);
		row.finished = pgs_ll(r, 0, 1);
		row.result = pgs_str(r, 0, 2);
		row.error = pgs_str(r, 0, 3);
		row.fetched = (unsigned long)pgs_ll(r, 0, 4);
		row.deleted = (unsigned long)pgs_ll(r, 0, 5);
		row.kept = (unsigned long)pgs_ll(r, 0, 6);
		row.deferred = (unsigned long)pgs_ll(r, 0, 7);
		row.skipped = (unsigned long)pgs_ll(r, 0, 8);
		row.bytes = (unsigned long long)pgs_ll(r, 0, 9);
		row.next_run = pgs_str(r, 0, 10) == NULL ? -1 : pgs_ll(r, 0, 10);
		row.failures = (int)pgs_ll(r, 0, 11);
		row.moved = (unsigned long)pgs_ll(r, 0, 12);
		row.flagged = (unsigned long)pgs_ll(r, 0, 13);
		fn(arg, &row);
	}
	PQclear(r);
	return 0;
}

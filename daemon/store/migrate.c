/* mailmill - ISC licence, see LICENSE */
/*
 * store_copy: a SQLite store into an empty PostgreSQL one (mailmilld
 * --migrate-store).  Table by table, every row, in one transaction of the
 * target: all or nothing.  Leases and outbox claims do not exist on SQLite
 * and start empty.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/store/pg_int.h"
#include "proto/err.h"

/* One table: what to read from SQLite and how to write it, column for
 * column (blob_col: the one bytea column, -1 none). */
struct store_copy_table {
	const char *name, *select, *insert;
	int n_cols, blob_col;
	const char *serial;   /* its id sequence, set past the copied ids */
};

static const struct store_copy_table store_copy_tables[] = {
	{ "ledger", "SELECT account, uid, state, verdict, stage, message_id, size, attempts,"
	  " last_error, created, updated, digest FROM ledger",
	  "INSERT INTO ledger (account, uid, state, verdict, stage, message_id, size, attempts,"
	  " last_error, created, updated, digest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
	  " $10, $11, $12)", 12, -1, NULL },
	/* The digests of forgotten keys. */
	{ "ledger_gone", "SELECT account, uid, digest, message_id, state, forgotten"
	  " FROM ledger_digest WHERE forgotten IS NOT NULL AND state IS NOT NULL",
	  "INSERT INTO ledger_gone (account, uid, digest, message_id, state, forgotten)"
	  " VALUES ($1, $2, $3, $4, $5, $6)", 6, -1, NULL },
	{ "outbox", "SELECT id, account, uid, stage, env_from, rcpts, message, message_id, flags,"
	  " state, attempts, next_attempt, created, updated, last_error, outcomes,"
	  " unknown_outcomes FROM outbox",
	  "INSERT INTO outbox (id, account, uid, stage, env_from, rcpts, message, message_id,"
	  " flags, state, attempts, next_attempt, created, updated, last_error, outcomes,"
	  " unknown_outcomes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,"
	  " $14, $15, $16, $17)", 17, 6, "outbox" },
	{ "kv", "SELECT account, stage, key, value, expires_at, updated FROM kv",
	  "INSERT INTO kv (account, stage, key, value, expires_at, updated)"
	  " VALUES ($1, $2, $3, $4, $5, $6)", 6, -1, NULL },
	{ "kv_ns", "SELECT ns, key, value, expires_at, updated FROM kv_ns",
	  "INSERT INTO kv_ns (ns, key, value, expires_at, updated) VALUES ($1, $2, $3, $4, $5)",
	  5, -1, NULL },
	{ "seq", "SELECT ns, name, value FROM seq",
	  "INSERT INTO seq (ns, name, value) VALUES ($1, $2, $3)", 3, -1, NULL },
	{ "runs", "SELECT id, account, started, finished, result, error, fetched, deleted, kept,"
	  " deferred, skipped, bytes, moved, flagged FROM runs",
	  "INSERT INTO runs (id, account, started, finished, result, error, fetched, deleted,"
	  " kept, deferred, skipped, bytes, moved, flagged) VALUES ($1, $2, $3, $4, $5, $6, $7,"
	  " $8, $9, $10, $11, $12, $13, $14)", 14, -1, "runs" },
	{ "schedule", "SELECT account, next_run, failures, updated FROM schedule",
	  "INSERT INTO schedule (account, next_run, failures, updated) VALUES ($1, $2, $3, $4)",
	  4, -1, NULL },
	{ "counters", "SELECT name, value FROM counters",
	  "INSERT INTO counters (name, value) VALUES ($1, $2)", 2, -1, NULL },
	{ "oauth_refresh", "SELECT key, refresh_token, needs_signin, reason, updated"
	  " FROM oauth_refresh",
	  "INSERT INTO oauth_refresh (key, refresh_token, needs_signin, reason, updated)"
	  " VALUES ($1, $2, $3, $4, $5)", 5, -1, NULL },
	{ "oauth_access", "SELECT key, rkey, access_token, obtained, expires FROM oauth_access",
	  "INSERT INTO oauth_access (key, rkey, access_token, obtained, expires)"
	  " VALUES ($1, $2, $3, $4, $5)", 5, -1, NULL },
};
#define STORE_COPY_N (sizeof(store_copy_tables) / sizeof(store_copy_tables[0]))

/* The target's rows, all tables: a copy goes into an empty store only. */
static int
store_copy_target_empty(store *to, char **err_r)
{
	PGresult *r = pgs_exec(to, "SELECT (SELECT count(*) FROM ledger) + (SELECT count(*)"
			       " FROM outbox) + (SELECT count(*) FROM kv) + (SELECT count(*)"
			       " FROM kv_ns) + (SELECT count(*) FROM seq) + (SELECT count(*)"
			       " FROM runs) + (SELECT count(*) FROM schedule) + (SELECT count(*)"
			       " FROM counters) + (SELECT count(*) FROM oauth_refresh) +"
			       " (SELECT count(*) FROM oauth_access) + (SELECT count(*) FROM leases)"
			       " + (SELECT count(*) FROM ledger_gone)",
			       NULL, "counting the target's rows", err_r);
	long long n;

	if (r == NULL)
		return -1;
	n = pgs_ll(r, 0, 0);
	PQclear(r);
	if (n != 0) {
		err_set(err_r, "%s already holds %lld row(s): a store is copied into an empty "
			"database only (nothing was written)", to->path, n);
		return -1;
	}
	return 0;
}

static int
store_copy_table(store *from, store *to, const struct store_copy_table *t,
		 unsigned long long *rows, char **err_r)
{
	sqlite3_stmt *q = store_prep(from, t->select, err_r);
	int rc, ok = 1;

	if (q == NULL)
		return -1;
	while (ok && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		pgs_args a = { 0 };

		for (int i = 0; i < t->n_cols; i++) {
			if (i == t->blob_col) {
				const void *b = sqlite3_column_blob(q, i);

				pgs_b(&a, b != NULL ? b : "", (size_t)sqlite3_column_bytes(q, i));
			} else {
				pgs_s(&a, store_col(q, i));
			}
		}
		ok = pgs_cmd(to, t->insert, &a, t->name, NULL, err_r) == 0;
		(*rows)++;
	}
	if (ok && rc != SQLITE_DONE)
		ok = store_fail(from, err_r, t->name) == 0;
	store_release(from, q);
	if (ok && t->serial != NULL) {
		pgs_args a = { 0 };

		pgs_s(&a, t->serial);
		ok = pgs_cmd(to, "SELECT setval(pg_get_serial_sequence($1::text, 'id'),"
			     " greatest((SELECT max(id) FROM outbox WHERE $1::text = 'outbox'),"
			     " (SELECT max(id) FROM runs WHERE $1::text = 'runs'), 1))", &a,
			     "sequence", NULL, err_r) == 0;
	}
	return ok ? 0 : -1;
}

int
store_copy(store *from, store *to, unsigned long long *rows_r, char **err_r)
{
	int ok = 1;

	*rows_r = 0;
	if (from->pg != NULL || from->db == NULL || to->pg == NULL || to->readonly) {
		err_set(err_r, "a copy goes from a SQLite store into a writable PostgreSQL one");
		return -1;
	}
	if (store_begin(to, err_r) < 0)
		return -1;
	/* Nobody else writes the target meanwhile: an empty store stays ours. */
	ok = pgs_cmd(to, "LOCK TABLE ledger, outbox, kv, kv_ns, seq, runs, schedule, counters,"
		     " oauth_refresh, oauth_access, leases, ledger_gone IN EXCLUSIVE MODE", NULL, "lock", NULL,
		     err_r) == 0 &&
	     store_copy_target_empty(to, err_r) == 0;
	for (size_t i = 0; ok && i < STORE_COPY_N; i++)
		ok = store_copy_table(from, to, &store_copy_tables[i], rows_r, err_r) == 0;
	if (!ok) {
		store_rollback(to);
		*rows_r = 0;
		return -1;
	}
	return store_commit(to, err_r);
}

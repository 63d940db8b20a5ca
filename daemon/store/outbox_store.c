/* mailmill - ISC licence, see LICENSE */
/* The outbox tables (the sender is daemon/run/outbox.c) and the counters. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/store/store_int.h"
#include "proto/err.h"

const char *
outbox_state_name(outbox_state s)
{
	switch (s) {
	case OUTBOX_QUEUED: return "queued";
	case OUTBOX_SENT: return "sent";
	case OUTBOX_DEAD: return "dead";
	}
	return "invalid";
}

int
store_outbox_add(store *st, const store_outbox_row *row, long long now, char **err_r)
{
	sqlite3_stmt *q;
	int own, ok;

	if (row->account == NULL || row->env_from == NULL || row->rcpts == NULL ||
	    row->rcpts[0] == '\0' || row->message == NULL || row->len > (size_t)INT_MAX) {
		err_set(err_r, "%s: invalid outbox row", st->path);
		return -1;
	}
	if (st->readonly)
		return 0;
	if (st->pg != NULL)
		return pgs_outbox_add(st, row, now, err_r);
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	q = store_prep(st, "INSERT INTO outbox (account, uid, stage, env_from, rcpts, message,"
		       " message_id, flags, state, attempts, next_attempt, created, updated)"
		       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?10, 0, ?9, ?9, ?9)", err_r);
	ok = q != NULL;
	if (ok)
		ok = store_run(st, q,
			       sqlite3_bind_text(q, 1, row->account, -1, SQLITE_STATIC) == SQLITE_OK &&
			       sqlite3_bind_text(q, 2, row->uid, -1, SQLITE_STATIC) == SQLITE_OK &&
			       sqlite3_bind_text(q, 3, row->stage, -1, SQLITE_STATIC) == SQLITE_OK &&
			       sqlite3_bind_text(q, 4, row->env_from, -1, SQLITE_STATIC) == SQLITE_OK &&
			       sqlite3_bind_text(q, 5, row->rcpts, -1, SQLITE_STATIC) == SQLITE_OK &&
			       sqlite3_bind_blob(q, 6, row->message, (int)row->len, SQLITE_STATIC) == SQLITE_OK &&
			       sqlite3_bind_text(q, 7, row->message_id, -1, SQLITE_STATIC) == SQLITE_OK &&
			       sqlite3_bind_int64(q, 8, (sqlite3_int64)row->flags) == SQLITE_OK &&
			       sqlite3_bind_int64(q, 9, (sqlite3_int64)now) == SQLITE_OK &&
			       sqlite3_bind_int(q, 10, OUTBOX_QUEUED) == SQLITE_OK,
			       err_r, "queue") == 0;
	return store_tx_end(st, own, ok, err_r);
}

int
store_outbox_due(store *st, long long due, size_t max, long long **ids_r, size_t *n_r,
		 char **err_r)
{
	sqlite3_stmt *q;
	long long *ids;
	size_t n = 0;
	int rc;

	*ids_r = NULL;
	*n_r = 0;
	if (st->pg != NULL)
		return max == 0 ? 0 : pgs_outbox_due(st, due, max, ids_r, n_r, err_r);
	if (st->db == NULL || max == 0)
		return 0;
	if (max > 100000)
		max = 100000;
	if ((ids = calloc(max, sizeof(*ids))) == NULL) {
		err_set(err_r, "out of memory");
		return -1;
	}
	q = store_prep(st, "SELECT id FROM outbox WHERE state = ?3 AND (?1 < 0 OR next_attempt <= ?1)"
		       " ORDER BY id LIMIT ?2", err_r);
	if (q == NULL) {
		free(ids);
		return -1;
	}
	if (sqlite3_bind_int64(q, 1, (sqlite3_int64)due) != SQLITE_OK ||
	    sqlite3_bind_int64(q, 2, (sqlite3_int64)max) != SQLITE_OK ||
	    sqlite3_bind_int(q, 3, OUTBOX_QUEUED) != SQLITE_OK)
		rc = SQLITE_MISUSE;
	else
		while ((rc = sqlite3_step(q)) == SQLITE_ROW && n < max)
			ids[n++] = sqlite3_column_int64(q, 0);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		store_fail(st, err_r, "outbox");
		store_release(st, q);
		free(ids);
		return -1;
	}
	store_release(st, q);
	if (n == 0)
		free(ids);
	else
		*ids_r = ids;
	*n_r = n;
	return 0;
}

#define STORE_OUTBOX_COLS "id, account, uid, stage, env_from, rcpts, message_id, flags, state," \
	" attempts, next_attempt, created, updated, last_error, outcomes, unknown_outcomes"

/* Fill row from columns 0..15 of STORE_OUTBOX_COLS; -1 if the state is bad. */
static int
store_outbox_fill(sqlite3_stmt *q, store_outbox_row *row)
{
	int state = sqlite3_column_int(q, 8);

	memset(row, 0, sizeof(*row));
	if (state < OUTBOX_QUEUED || state > OUTBOX_DEAD)
		return -1;
	row->id = sqlite3_column_int64(q, 0);
	row->account = store_col(q, 1);
	row->uid = store_col(q, 2);
	row->stage = store_col(q, 3);
	row->env_from = store_col(q, 4) != NULL ? store_col(q, 4) : "";
	row->rcpts = store_col(q, 5) != NULL ? store_col(q, 5) : "";
	row->message_id = store_col(q, 6);
	row->flags = (unsigned)sqlite3_column_int64(q, 7);
	row->state = (outbox_state)state;
	row->attempts = sqlite3_column_int(q, 9);
	row->next_attempt = sqlite3_column_int64(q, 10);
	row->created = sqlite3_column_int64(q, 11);
	row->updated = sqlite3_column_int64(q, 12);
	row->last_error = store_col(q, 13);
	row->outcomes = store_col(q, 14);
	row->unknown_outcomes = sqlite3_column_int(q, 15);
	return row->account != NULL ? 0 : -1;
}

int
store_outbox_get(store *st, long long id, store_outbox_fn *fn, void *arg, char **err_r)
{
	store_outbox_row row;
	sqlite3_stmt *q;
	int rc;

	if (st->pg != NULL)
		return pgs_outbox_get(st, id, fn, arg, err_r);
	if (st->db == NULL)
		return 0;
	q = store_prep(st, "SELECT " STORE_OUTBOX_COLS ", message FROM outbox WHERE id = ?1", err_r);
	if (q == NULL)
		return -1;
	rc = sqlite3_bind_int64(q, 1, (sqlite3_int64)id) == SQLITE_OK ? sqlite3_step(q) : SQLITE_MISUSE;
	if (rc == SQLITE_DONE) {
		store_release(st, q);
		return 0;
	}
	if (rc != SQLITE_ROW) {
		store_fail(st, err_r, "outbox");
		store_release(st, q);
		return -1;
	}
	if (store_outbox_fill(q, &row) < 0) {
		err_set(err_r, "%s: outbox row %lld is invalid", st->path, id);
		store_release(st, q);
		return -1;
	}
	/* A zero-length blob is NULL to SQLite: an empty message, not a missing one. */
	row.message = sqlite3_column_blob(q, 16);
	row.len = (size_t)sqlite3_column_bytes(q, 16);
	if (row.message == NULL)
		row.message = "";
	fn(arg, &row);
	store_release(st, q);
	return 1;
}

int
store_outbox_list(store *st, unsigned mask, store_outbox_fn *fn, void *arg, char **err_r)
{
	store_outbox_row row;
	sqlite3_stmt *q;
	int rc;

	if (st->pg != NULL)
		return pgs_outbox_list(st, mask, fn, arg, err_r);
	if (st->db == NULL)
		return 0;
	q = store_prep(st, "SELECT " STORE_OUTBOX_COLS ", length(message) FROM outbox ORDER BY id",
		       err_r);
	if (q == NULL)
		return -1;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (store_outbox_fill(q, &row) < 0) {
			err_set(err_r, "%s: an outbox row is invalid", st->path);
			store_release(st, q);
			return -1;
		}
		if (!(mask & (1U << row.state)))
			continue;
		row.len = (size_t)sqlite3_column_int64(q, 16);
		if (fn(arg, &row) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE) {
		store_fail(st, err_r, "outbox");
		store_release(st, q);
		return -1;
	}
	store_release(st, q);
	return 0;
}

int
store_outbox_counts(store *st, unsigned long long n_r[3], unsigned long long *retried_r,
		    char **err_r)
{
	sqlite3_stmt *q;
	int rc;

	n_r[0] = n_r[1] = n_r[2] = 0;
	*retried_r = 0;
	if (st->pg != NULL)
		return pgs_outbox_counts(st, n_r, retried_r, err_r);
	if (st->db == NULL)
		return 0;
	q = store_prep(st, "SELECT state, count(*), sum((state = ?1 AND attempts > 0)"
		       " OR attempts > 1) FROM outbox GROUP BY state", err_r);
	if (q == NULL)
		return -1;
	if (sqlite3_bind_int(q, 1, OUTBOX_QUEUED) != SQLITE_OK) {
		store_release(st, q);
		return store_fail(st, err_r, "outbox");
	}
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		int state = sqlite3_column_int(q, 0);
		sqlite3_int64 n = sqlite3_column_int64(q, 1), r = sqlite3_column_int64(q, 2);

		if (state >= 0 && state < 3 && n >= 0)
			n_r[state] = (unsigned long long)n;
		if (r > 0)
			*retried_r += (unsigned long long)r;
	}
	if (rc != SQLITE_DONE) {
		store_fail(st, err_r, "outbox");
		store_release(st, q);
		return -1;
	}
	store_release(st, q);
	return 0;
}

/* One UPDATE of a row's state with the common bindings. */
static int
store_outbox_update(store *st, long long id, int state, const char *rcpts, long long next,
		    const char *error, const char *outcomes, long long now, int count,
		    char **err_r)
{
	char short_err[STORE_ERROR_MAX + 1];
	sqlite3_stmt *q;
	int own, ok;

	if (st->readonly)
		return 0;
	if (st->pg != NULL)
		return pgs_outbox_update(st, id, state, rcpts, next, error, outcomes, now, err_r);
	snprintf(short_err, sizeof(short_err), "%s", error != NULL ? error : "");
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	q = store_prep(st, "UPDATE outbox SET state = ?2, rcpts = coalesce(?3, rcpts),"
		       " next_attempt = ?4, last_error = CASE WHEN ?5 = '' THEN last_error ELSE ?5 END,"
		       " outcomes = coalesce(outcomes, '') || coalesce(?6, ''),"
		       " attempts = attempts + ?8, updated = ?7 WHERE id = ?1", err_r);
	ok = q != NULL;
	if (ok)
		ok = store_run(st, q,
			       sqlite3_bind_int64(q, 1, (sqlite3_int64)id) == SQLITE_OK &&
			       sqlite3_bind_int(q, 2, state) == SQLITE_OK &&
			       sqlite3_bind_text(q, 3, rcpts, -1, SQLITE_STATIC) == SQLITE_OK &&
			       sqlite3_bind_int64(q, 4, (sqlite3_int64)next) == SQLITE_OK &&
			       sqlite3_bind_text(q, 5, short_err, -1, SQLITE_STATIC) == SQLITE_OK &&
			       sqlite3_bind_text(q, 6, outcomes, -1, SQLITE_STATIC) == SQLITE_OK &&
			       sqlite3_bind_int64(q, 7, (sqlite3_int64)now) == SQLITE_OK &&
			       sqlite3_bind_int(q, 8, count) == SQLITE_OK,
			       err_r, "outbox update") == 0;
	if (ok && sqlite3_changes(st->db) != 1) {
		err_set(err_r, "%s: no outbox row %lld", st->path, id);
		ok = 0;
	}
	return store_tx_end(st, own, ok, err_r);
}

int
store_outbox_sent(store *st, long long id, const char *outcomes, long long now, char **err_r)
{
	return store_outbox_update(st, id, OUTBOX_SENT, NULL, now, NULL, outcomes, now, 1, err_r);
}

int
store_outbox_retry(store *st, long long id, const char *rcpts, long long next_attempt,
		   const char *error, const char *outcomes, long long now, char **err_r)
{
	if (rcpts != NULL && rcpts[0] == '\0') {
		err_set(err_r, "%s: outbox row %lld: a retry needs recipients", st->path, id);
		return -1;
	}
	return store_outbox_update(st, id, OUTBOX_QUEUED, rcpts, next_attempt, error, outcomes,
				   now, 1, err_r);
}

int
store_outbox_dead(store *st, long long id, const char *error, const char *outcomes, long long now,
		  char **err_r)
{
	return store_outbox_update(st, id, OUTBOX_DEAD, NULL, now, error, outcomes, now, 1, err_r);
}

int
store_outbox_unknown(store *st, long long id, char **err_r)
{
	sqlite3_stmt *q;
	int own, ok;

	if (st->readonly)
		return 0;
	if (st->pg != NULL)
		return pgs_outbox_unknown(st, id, err_r);
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	q = store_prep(st, "UPDATE outbox SET unknown_outcomes = unknown_outcomes + 1"
		       " WHERE id = ?1", err_r);
	ok = q != NULL && store_run(st, q, sqlite3_bind_int64(q, 1, (sqlite3_int64)id) == SQLITE_OK,
				    err_r, "outbox unknown") == 0;
	if (ok && sqlite3_changes(st->db) != 1) {
		err_set(err_r, "%s: no outbox row %lld", st->path, id);
		ok = 0;
	}
	if (ok) {
		q = store_prep(st, "INSERT INTO counters (name, value) VALUES (?1, 1)"
			       " ON CONFLICT (name) DO UPDATE SET value = value + 1", err_r);
		ok = q != NULL && store_run(st, q, sqlite3_bind_text(q, 1, STORE_COUNTER_UNKNOWN, -1,
								     SQLITE_STATIC) == SQLITE_OK,
					    err_r, "counter") == 0;
	}
	return store_tx_end(st, own, ok, err_r);
}

int
store_counter_get(store *st, const char *name, long long *value_r, char **err_r)
{
	sqlite3_stmt *q;
	int rc;

	*value_r = 0;
	if (st->pg != NULL)
		return pgs_counter_get(st, name, value_r, err_r);
	if (st->db == NULL)
		return 0;
	q = store_prep(st, "SELECT value FROM counters WHERE name = ?1", err_r);
	if (q == NULL)
		return -1;
	rc = sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC) == SQLITE_OK ? sqlite3_step(q) :
	     SQLITE_MISUSE;
	if (rc == SQLITE_ROW)
		*value_r = sqlite3_column_int64(q, 0);
	else if (rc != SQLITE_DONE)
		store_fail(st, err_r, "counter");
	store_release(st, q);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int
store_outbox_prune(store *st, long long before, char **err_r)
{
	sqlite3_stmt *q;

	if (st->readonly)
		return 0;
	if (st->pg != NULL)
		return pgs_outbox_prune(st, before, err_r);
	q = store_prep(st, "DELETE FROM outbox WHERE state = ?2 AND updated < ?1", err_r);
	if (q == NULL)
		return -1;
	return store_run(st, q,
			 sqlite3_bind_int64(q, 1, (sqlite3_int64)before) == SQLITE_OK &&
			 sqlite3_bind_int(q, 2, OUTBOX_SENT) == SQLITE_OK,
			 err_r, "outbox prune");
}

int
store_outbox_wake(store *st, long long id, long long now, long long *n_r, char **err_r)
{
	sqlite3_stmt *q;
	int own, ok;

	*n_r = 0;
	if (st->pg != NULL && !st->readonly)
		return pgs_outbox_wake(st, id, now, n_r, err_r);
	if (st->readonly || st->db == NULL)
		return 0;
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	/* A dead row goes back to the queue with the recipients it still had;
	 * its attempts stay counted (the back-off starts again from the next
	 * failure). */
	q = store_prep(st, "UPDATE outbox SET state = ?2, next_attempt = ?3, updated = ?3"
		       " WHERE (?1 < 0 OR id = ?1) AND state IN (?2, ?4)", err_r);
	ok = q != NULL &&
	     store_run(st, q,
		       sqlite3_bind_int64(q, 1, (sqlite3_int64)id) == SQLITE_OK &&
		       sqlite3_bind_int(q, 2, OUTBOX_QUEUED) == SQLITE_OK &&
		       sqlite3_bind_int64(q, 3, (sqlite3_int64)now) == SQLITE_OK &&
		       sqlite3_bind_int(q, 4, OUTBOX_DEAD) == SQLITE_OK,
		       err_r, "outbox retry") == 0;
	if (ok)
		*n_r = (long long)sqlite3_changes(st->db);
	return store_tx_end(st, own, ok, err_r);
}

int
store_outbox_drop(store *st, long long id, char **err_r)
{
	sqlite3_stmt *q;

	if (st->pg != NULL && !st->readonly)
		return pgs_outbox_drop(st, id, err_r);
	if (st->readonly || st->db == NULL)
		return 0;
	q = store_prep(st, "DELETE FROM outbox WHERE id = ?1", err_r);
	if (q == NULL ||
	    store_run(st, q, sqlite3_bind_int64(q, 1, (sqlite3_int64)id) == SQLITE_OK, err_r,
		      "outbox drop") < 0)
		return -1;
	return sqlite3_changes(st->db) > 0;
}

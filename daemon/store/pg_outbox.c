/* mailmill - ISC licence, see LICENSE */
/*
 * The outbox and the counters on PostgreSQL.  Several daemons may flush one
 * outbox: store_outbox_due claims the rows it hands out (claim_owner, a
 * token of this handle, until claim_until on the server's clock), skipping
 * rows another flush holds (FOR UPDATE SKIP LOCKED: two flushes never wait
 * for each other nor claim the same row).  Marking a row sent, retried or
 * dead ends its claim; store_close gives back the claims it did not use;
 * a flush that died leaves its rows to the others when the claim expires.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/store/pg_int.h"
#include "proto/err.h"

/* How long a claimed row waits for the flush that claimed it: longer than
 * any flush of OUTBOX_MAX_PER_FLUSH rows takes, short enough that the mail
 * of a daemon that died goes out the same hour. */
#define PGS_CLAIM_S 3600

#define PGS_OUTBOX_COLS "id, account, uid, stage, env_from, rcpts, message_id, flags, state," \
	" attempts, next_attempt, created, updated, last_error, outcomes, unknown_outcomes"

int
pgs_outbox_add(store *st, const store_outbox_row *row, long long now, char **err_r)
{
	pgs_args a = { 0 };

	pgs_s(&a, row->account);
	pgs_s(&a, row->uid);
	pgs_s(&a, row->stage);
	pgs_s(&a, row->env_from);
	pgs_s(&a, row->rcpts);
	pgs_b(&a, row->message, row->len);
	pgs_s(&a, row->message_id);
	pgs_i(&a, (long long)row->flags);
	pgs_i(&a, now);
	pgs_i(&a, OUTBOX_QUEUED);
	return pgs_write(st, "INSERT INTO outbox (account, uid, stage, env_from, rcpts, message,"
			 " message_id, flags, state, attempts, next_attempt, created, updated)"
			 " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $10, 0, $9, $9, $9)", &a,
			 "queue", NULL, err_r);
}

/* This handle's claim token: host, pid and a counter, made once. */
static const char *
pgs_claim_owner(store *st)
{
	static unsigned long seq;
	char host[256] = "";
	char buf[400];

	if (st->pg->claim_owner == NULL) {
		gethostname(host, sizeof(host) - 1);
		snprintf(buf, sizeof(buf), "%s:%ld:%lld:%lu", host, (long)getpid(),
			 (long long)time(NULL), ++seq);
		st->pg->claim_owner = strdup(buf);
	}
	return st->pg->claim_owner;
}

static int
pgs_cmp_id(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

int
pgs_outbox_due(store *st, long long due, size_t max, long long **ids_r, size_t *n_r,
	       char **err_r)
{
	pgs_args a = { 0 };
	long long *ids;
	PGresult *r;
	size_t n;

	if (st->pg->empty)
		return 0;
	if (max > 100000)
		max = 100000;
	pgs_i(&a, due);
	pgs_i(&a, (long long)max);
	pgs_i(&a, OUTBOX_QUEUED);
	if (st->readonly) {
		r = pgs_exec(st, "SELECT id FROM outbox WHERE state = $3 AND ($1 < 0 OR"
			     " next_attempt <= $1) ORDER BY id LIMIT $2", &a, "outbox", err_r);
	} else {
		const char *owner = pgs_claim_owner(st);

		if (owner == NULL) {
			err_set(err_r, "out of memory");
			return -1;
		}
		pgs_s(&a, owner);
		pgs_i(&a, PGS_CLAIM_S);
		/* Under the outbox's lease (store_fence_set) this is the only
		 * flush: another owner's claims are those of a flush that died
		 * or lost the lease, and its rows go out now, not in an hour. */
		pgs_i(&a, st->pg->fence_account != NULL &&
		      strcmp(st->pg->fence_account, STORE_LEASE_OUTBOX) == 0);
		r = pgs_exec(st, "WITH c AS (SELECT id FROM outbox WHERE state = $3"
			     " AND ($1 < 0 OR next_attempt <= $1) AND (claim_owner IS NULL"
			     " OR claim_owner = $4 OR claim_until <= " PGS_NOW " OR $6 = 1)"
			     " ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)"
			     " UPDATE outbox o SET claim_owner = $4, claim_until = " PGS_NOW " + $5"
			     " FROM c WHERE o.id = c.id RETURNING o.id", &a, "outbox claim", err_r);
	}
	if (r == NULL)
		return -1;
	n = (size_t)PQntuples(r);
	if (n == 0) {
		PQclear(r);
		return 0;
	}
	if ((ids = calloc(n, sizeof(*ids))) == NULL) {
		PQclear(r);
		err_set(err_r, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		ids[i] = pgs_ll(r, (int)i, 0);
	PQclear(r);
	qsort(ids, n, sizeof(*ids), pgs_cmp_id);
	*ids_r = ids;
	*n_r = n;
	return 0;
}

/* Fill row from row i's columns 0..15 of PGS_OUTBOX_COLS; -1 if invalid. */
static int
pgs_outbox_fill(const PGresult *r, int i, store_outbox_row *row)
{
	long long state = pgs_ll(r, i, 8);

	memset(row, 0, sizeof(*row));
	if (state < OUTBOX_QUEUED || state > OUTBOX_DEAD)
		return -1;
	row->id = pgs_ll(r, i, 0);
	row->account = pgs_str(r, i, 1);
	row->uid = pgs_str(r, i, 2);
	row->stage = pgs_str(r, i, 3);
	row->env_from = pgs_str(r, i, 4) != NULL ? pgs_str(r, i, 4) : "";
	row->rcpts = pgs_str(r, i, 5) != NULL ? pgs_str(r, i, 5) : "";
	row->message_id = pgs_str(r, i, 6);
	row->flags = (unsigned)pgs_ll(r, i, 7);
	row->state = (outbox_state)state;
	row->attempts = (int)pgs_ll(r, i, 9);
	row->next_attempt = pgs_ll(r, i, 10);
	row->created = pgs_ll(r, i, 11);
	row->updated = pgs_ll(r, i, 12);
	row->last_error = pgs_str(r, i, 13);
	row->outcomes = pgs_str(r, i, 14);
	row->unknown_outcomes = (int)pgs_ll(r, i, 15);
	return row->account != NULL ? 0 : -1;
}

int
pgs_outbox_get(store *st, long long id, store_outbox_fn *fn, void *arg, char **err_r)
{
	store_outbox_row row;
	unsigned char *bytes;
	pgs_args a = { 0 };
	PGresult *r;
	size_t len = 0;

	if (st->pg->empty)
		return 0;
	pgs_i(&a, id);
	r = pgs_exec(st, "SELECT " PGS_OUTBOX_COLS ", message FROM outbox WHERE id = $1", &a,
		     "outbox", err_r);
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return 0;
	}
	if (pgs_outbox_fill(r, 0, &row) < 0) {
		err_set(err_r, "%s: outbox row %lld is invalid", st->path, id);
		PQclear(r);
		return -1;
	}
	bytes = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 16), &len);
	if (bytes == NULL) {
		err_set(err_r, "out of memory");
		PQclear(r);
		return -1;
	}
	row.message = (const char *)bytes;
	row.len = len;
	fn(arg, &row);
	PQfreemem(bytes);
	PQclear(r);
	return 1;
}

int
pgs_outbox_list(store *st, unsigned mask, store_outbox_fn *fn, void *arg, char **err_r)
{
	store_outbox_row row;
	PGresult *r;

	if (st->pg->empty)
		return 0;
	r = pgs_exec(st, "SELECT " PGS_OUTBOX_COLS ", length(message) FROM outbox ORDER BY id",
		     NULL, "outbox", err_r);
	if (r == NULL)
		return -1;
	for (int i = 0; i < PQntuples(r); i++) {
		if (pgs_outbox_fill(r, i, &row) < 0) {
			err_set(err_r, "%s: an outbox row is invalid", st->path);
			PQclear(r);
			return -1;
		}
		if (!(mask & (1U << row.state)))
			continue;
		row.len = (size_t)pgs_ll(r, i, 16);
		if (fn(arg, &row) != 0)
			break;
	}
	PQclear(r);
	return 0;
}

int
pgs_outbox_counts(store *st, unsigned long long n_r[3], unsigned long long *retried_r,
		  char **err_r)
{
	pgs_args a = { 0 };
	PGresult *r;

	if (st->pg->empty)
		return 0;
	pgs_i(&a, OUTBOX_QUEUED);
	r = pgs_exec(st, "SELECT state, count(*), count(*) FILTER (WHERE (state = $1 AND"
		     " attempts > 0) OR attempts > 1) FROM outbox GROUP BY state", &a, "outbox",
		     err_r);
	if (r == NULL)
		return -1;
	for (int i = 0; i < PQntuples(r); i++) {
		long long state = pgs_ll(r, i, 0), n = pgs_ll(r, i, 1), re = pgs_ll(r, i, 2);

		if (state >= 0 && state < 3 && n >= 0)
			n_r[state] = (unsigned long long)n;
		if (re > 0)
			*retried_r += (unsigned long long)re;
	}
	PQclear(r);
	return 0;
}

int
pgs_outbox_update(store *st, long long id, int state, const char *rcpts, long long next,
		  const char *error, const char *outcomes, long long now, char **err_r)
{
	char short_err[STORE_ERROR_MAX + 1];
	pgs_args a = { 0 };
	long long n = 0;

	snprintf(short_err, sizeof(short_err), "%s", error != NULL ? error : "");
	pgs_i(&a, id);
	pgs_i(&a, state);
	pgs_s(&a, rcpts);
	pgs_i(&a, next);
	pgs_s(&a, short_err);
	pgs_s(&a, outcomes);
	pgs_i(&a, now);
	/* The row's fate is decided: its claim ends with it. */
	if (pgs_write(st, "UPDATE outbox SET state = $2, rcpts = coalesce($3, rcpts),"
		      " next_attempt = $4, last_error = CASE WHEN $5 = '' THEN last_error ELSE $5"
		      " END, outcomes = coalesce(outcomes, '') || coalesce($6, ''),"
		      " attempts = attempts + 1, updated = $7, claim_owner = NULL, claim_until = 0"
		      " WHERE id = $1", &a, "outbox update", &n, err_r) < 0)
		return -1;
	if (n != 1) {
		err_set(err_r, "%s: no outbox row %lld", st->path, id);
		return -1;
	}
	return 0;
}

int
pgs_outbox_unknown(store *st, long long id, char **err_r)
{
	pgs_args a = { 0 }, c = { 0 };
	long long n = 0;
	int own, ok;

	pgs_i(&a, id);
	pgs_s(&c, STORE_COUNTER_UNKNOWN);
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	ok = pgs_cmd(st, "UPDATE outbox SET unknown_outcomes = unknown_outcomes + 1 WHERE id = $1",
		     &a, "outbox unknown", &n, err_r) == 0;
	if (ok && n != 1) {
		err_set(err_r, "%s: no outbox row %lld", st->path, id);
		ok = 0;
	}
	ok = ok && pgs_cmd(st, "INSERT INTO counters (name, value) VALUES ($1, 1)"
			   " ON CONFLICT (name) DO UPDATE SET value = counters.value + 1", &c,
			   "counter", NULL, err_r) == 0;
	return store_tx_end(st, own, ok, err_r);
}

int
pgs_counter_get(store *st, const char *name, long long *value_r, char **err_r)
{
	pgs_args a = { 0 };
	PGresult *r;

	if (st->pg->empty)
		return 0;
	pgs_s(&a, name);
	r = pgs_exec(st, "SELECT value FROM counters WHERE name = $1", &a, "counter", err_r);
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 1)
		*value_r = pgs_ll(r, 0, 0);
	PQclear(r);
	return 0;
}

int
pgs_outbox_prune(store *st, long long before, char **err_r)
{
	pgs_args a = { 0 };

	pgs_i(&a, before);
	pgs_i(&a, OUTBOX_SENT);
	return pgs_write(st, "DELETE FROM outbox WHERE state = $2 AND updated < $1", &a,
			 "outbox prune", NULL, err_r);
}

int
pgs_outbox_wake(store *st, long long id, long long now, long long *n_r, char **err_r)
{
	pgs_args a = { 0 };

	pgs_i(&a, id);
	pgs_i(&a, OUTBOX_QUEUED);
	pgs_i(&a, now);
	pgs_i(&a, OUTBOX_DEAD);
	return pgs_write(st, "UPDATE outbox SET state = $2, next_attempt = $3, updated = $3"
			 " WHERE ($1 < 0 OR id = $1) AND state IN ($2, $4)", &a, "outbox retry",
			 n_r, err_r);
}

int
pgs_outbox_drop(store *st, long long id, char **err_r)
{
	pgs_args a = { 0 };
	long long n = 0;

	pgs_i(&a, id);
	if (pgs_write(st, "DELETE FROM outbox WHERE id = $1", &a, "outbox drop", &n, err_r) < 0)
		return -1;
	return n > 0;
}

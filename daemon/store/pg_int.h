/* mailmill - ISC licence, see LICENSE */
#ifndef MM_PG_INT_H
#define MM_PG_INT_H
/*
 * Private to the PostgreSQL backend (daemon/store/pg*.c): its connection
 * and the helpers its files share.  The public functions of store.h reach
 * it through one line at their top (store_int.h's pgs_* declarations), so
 * nothing outside daemon/store/ knows which backend it talks to.
 *
 * Every statement runs through pgs_exec: prepared on its second run on a
 * connection (keyed by the address of the SQL literal, like store_prep), text results,
 * parameters as text (bytea as binary).  A statement that fails returns -1
 * and an error naming the database; when the connection is gone, the next
 * call outside a transaction connects again.
 */
#include <libpq-fe.h>

#include "daemon/store/store_int.h"

#define PGS_ARGS_MAX 16
#define PGS_CACHE_MAX 96

struct pgs {
	PGconn *conn;
	char *conninfo;          /* as configured: never holds a password (refused) */
	char *password;          /* from password_file, wiped at close; NULL: none */
	char *sslmode, *sslrootcert;
	int empty;               /* read-only over a database without our schema */
	/* SQL literals seen on this connection; prepared from their second run
	 * (a worker's connection lives for one run: preparing what runs once
	 * would cost a round trip for nothing). */
	struct pgs_cached { const char *sql; int prepared; } cache[PGS_CACHE_MAX];
	char *fence_account, *fence_owner; /* store_fence_set; NULL: no check */
	long long fence;
	char *claim_owner;       /* who claims outbox rows through this handle */
	int sync_off;            /* synchronous_commit is off on this connection */
};

/* Parameters of one statement; NULL strings are SQL NULL. */
typedef struct pgs_args {
	int n;
	const char *v[PGS_ARGS_MAX];
	int len[PGS_ARGS_MAX], fmt[PGS_ARGS_MAX];
	char num[PGS_ARGS_MAX][24];
} pgs_args;

void pgs_s(pgs_args *a, const char *s);
void pgs_i(pgs_args *a, long long v);
void pgs_b(pgs_args *a, const void *p, size_t n);

/* Run sql (a string literal) with a: the result (PQclear it) when it
 * succeeded, NULL and *err_r ("label: what: the server's words") if not. */
PGresult *pgs_exec(store *st, const char *sql, const pgs_args *a, const char *what,
		   char **err_r);
/* A statement without rows wanted: 0 and *changed_r (may be NULL, the rows
 * it changed), -1 on error. */
int pgs_cmd(store *st, const char *sql, const pgs_args *a, const char *what,
	    long long *changed_r, char **err_r);
/* A write that joins the caller's transaction, or commits in one of its own
 * (so that a fenced handle checks its lease first): as pgs_cmd. */
int pgs_write(store *st, const char *sql, const pgs_args *a, const char *what,
	      long long *changed_r, char **err_r);
/* Before every public call: the connection, made again if it was lost
 * outside a transaction.  0 or -1 and *err_r. */
int pgs_ready(store *st, char **err_r);

/* Column values of row i: NULL for SQL NULL; 0 for NULL numbers. */
const char *pgs_str(const PGresult *r, int i, int col);
long long pgs_ll(const PGresult *r, int i, int col);
/* A copy of a column (NULL stays NULL); *oom set on failure. */
char *pgs_dup(const PGresult *r, int i, int col, int *oom);

/* The database server's clock, in unix seconds, as SQL: leases and claims
 * of several hosts compare times on one clock. */
#define PGS_NOW "floor(extract(epoch from clock_timestamp()))::bigint"

/* pg_schema.c: create or check the schema (read-only: may find none). */
int pgs_migrate(store *st, char **err_r);
#endif

/* mailmill - ISC licence, see LICENSE */
#ifndef MM_STORE_INT_H
#define MM_STORE_INT_H
/*
 * Private to daemon/store/: the SQLite backend's handle and the helpers its
 * files share.  Nothing outside daemon/store/ includes this.
 */
#include <sqlite3.h>

#include "daemon/store/store.h"

/* last_error is for a human; a plugin's whole stderr does not belong there. */
#define STORE_ERROR_MAX 1000

/* Statements of store_prep, kept prepared across calls: most run a few
 * times per message, and preparing one costs more than running it (a third
 * of an auto-responder's instructions went to SQLite's parser).  Keyed by
 * the address of the SQL literal at the call site; room for every statement
 * of daemon/store/, a statement beyond it is prepared for one use. */
#define STORE_CACHE_MAX 64
struct store_cached {
	const char *sql;
	sqlite3_stmt *q;
	int busy; /* handed out and not yet released */
};

struct store {
	sqlite3 *db;          /* NULL: read-only over a missing database */
	int readonly;
	int in_tx;
	char *path;
	struct store_cached cache[STORE_CACHE_MAX];
	char *kv_expired_scope;  /* kv.c's: the scope last expired, "a\0b\0" */
	long long kv_expired_at;
};

/* "path: what: SQLite's message"; returns -1. */
int store_fail(store *st, char **err_r, const char *what);
/* Run SQL text without parameters (migrations, pragmas). */
int store_exec(store *st, const char *sql, char **err_r);

/* A statement for sql, a string literal: the cached one when it is free,
 * else prepared now (cached if there is room).  NULL and *err_r on error.
 * Give it back with store_release, never sqlite3_finalize. */
sqlite3_stmt *store_prep(store *st, const char *sql, char **err_r);
/* Reset for its next use, or finalized if it was a one-off. */
void store_release(store *st, sqlite3_stmt *q);
/* Step a prepared write (bind_ok: its binds worked) to the end and release it. */
int store_run(store *st, sqlite3_stmt *q, int bind_ok, char **err_r, const char *what);
/* Column i as text; borrowed until the next step. */
const char *store_col(sqlite3_stmt *q, int i);

/* A write joins the caller's transaction or runs in one of its own (*own):
 * store_tx_end commits or rolls back what store_tx_begin opened. */
int store_tx_begin(store *st, int *own, char **err_r);
int store_tx_end(store *st, int own, int ok, char **err_r);

/* schema.c: bring the database to store_schema_version(); the version of
 * the file. */
int store_migrate(store *st, char **err_r);
int store_user_version(store *st, int *v_r, char **err_r);

#endif

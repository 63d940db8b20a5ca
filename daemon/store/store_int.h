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
	struct pgs *pg;       /* the PostgreSQL backend (pg*.c); NULL: SQLite */
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


/*
 * The PostgreSQL backend (pg*.c, pg_int.h): each public function of
 * store.h starts with `if (st->pg != NULL) return pgs_...(st, ...)`, after
 * the argument checks and read-only early returns it shares with SQLite.
 * Same arguments, same contract.
 */
int pgs_open(store *st, const char *conninfo, const char *password, const char *sslmode,
	     const char *sslrootcert, char **err_r);
void pgs_close(store *st);
int pgs_begin(store *st, char **err_r);
int pgs_commit(store *st, char **err_r);
void pgs_rollback(store *st);
int pgs_durability(store *st, int full, char **err_r);
/* pg_ledger.c */
int pgs_ledger_load(store *st, const char *account, store_ledger_fn *fn, void *arg, char **err_r);
int pgs_ledger_get(store *st, const char *account, const char *uid, ledger_state *state_r,
		   int *attempts_r, char **err_r);
int pgs_ledger_put(store *st, const store_record *rec, char **err_r);
int pgs_ledger_mark_deleted(store *st, const char *account, const char *const *uids, size_t n,
			    char **err_r);
int pgs_ledger_mark_all_deleted(store *st, const char *account, char **err_r);
int pgs_ledger_fail(store *st, const char *account, const char *uid, const char *error,
		    int *attempts_r, char **err_r);
int pgs_ledger_forget(store *st, const char *account, const char *const *uids, size_t n,
		      char **err_r);
int pgs_ledger_note(store *st, const char *account, const char *uid, const char *message_id,
		    char **err_r);
int pgs_ledger_quarantine(store *st, const char *account, const char *uid, char **err_r);
int pgs_quarantine_release(store *st, const char *account, const char *uid, char **err_r);
int pgs_quarantine_list(store *st, const char *account, store_quarantine_fn *fn, void *arg,
			char **err_r);
int pgs_ledger_find_digest(store *st, const char *account, const char *message_id,
			   const char *digest, char **uid_r, ledger_state *state_r, char **err_r);
int pgs_aging_promote(store *st, const char *account, long long before, int apply, size_t *n_r,
		      char **err_r);
int pgs_ledger_prune_gone(store *st, const char *account, long long before, char **err_r);
int pgs_ledger_has_gone(store *st, const char *account, char **err_r);
/* pg_outbox.c */
int pgs_outbox_add(store *st, const store_outbox_row *row, long long now, char **err_r);
int pgs_outbox_due(store *st, long long due, size_t max, long long **ids_r, size_t *n_r,
		   char **err_r);
int pgs_outbox_get(store *st, long long id, store_outbox_fn *fn, void *arg, char **err_r);
int pgs_outbox_list(store *st, unsigned mask, store_outbox_fn *fn, void *arg, char **err_r);
int pgs_outbox_counts(store *st, unsigned long long n_r[3], unsigned long long *retried_r,
		      char **err_r);
int pgs_outbox_update(store *st, long long id, int state, const char *rcpts, long long next,
		      const char *error, const char *outcomes, long long now, char **err_r);
int pgs_outbox_unknown(store *st, long long id, char **err_r);
int pgs_counter_get(store *st, const char *name, long long *value_r, char **err_r);
int pgs_outbox_prune(store *st, long long before, char **err_r);
int pgs_outbox_wake(store *st, long long id, long long now, long long *n_r, char **err_r);
int pgs_outbox_drop(store *st, long long id, char **err_r);
/* pg_kv.c */
int pgs_kv_get(store *st, const store_kv_scope *sc, const char *key, long long now,
	       char **value_r, char **err_r);
int pgs_kv_put(store *st, const store_kv_scope *sc, const char *key, const char *value,
	       long long expires_at, long long now, char **err_r);
int pgs_kv_claim(store *st, const store_kv_scope *sc, const char *key, const char *value,
		 long long expires_at, long long now, char **holder_r, char **err_r);
int pgs_seq_next(store *st, const char *ns, const char *name, long long *value_r, char **err_r);
/* pg_runs.c */
int pgs_run_add(store *st, const store_run_row *row, char **err_r);
int pgs_run_last(store *st, const char *account, store_run_fn *fn, void *arg, char **err_r);
int pgs_schedule_put(store *st, const char *account, long long next_run, int failures,
		     char **err_r);
/* pg_tokens.c */
int pgs_token_get(store *st, const char *rkey, const char *akey, store_token *t, char **err_r);
int pgs_token_put(store *st, const char *rkey, const char *akey, const char *access,
		  long long obtained, long long expires, const char *new_refresh, char **err_r);
int pgs_token_drop_access(store *st, const char *akey, char **err_r);
int pgs_token_refresh_set(store *st, const char *rkey, const char *refresh, int needs,
			  const char *reason, long long now, char **err_r);
int pgs_token_needs_signin(store *st, const char *rkey, const char *refused, const char *reason,
			   long long now, char **err_r);
/* pg_lease.c */
int pgs_lease_claim(store *st, const char *account, const char *owner, long long ttl_s,
		    long long *fence_r, char **err_r);
int pgs_lease_renew(store *st, const char *account, const char *owner, long long fence,
		    long long ttl_s, char **err_r);
int pgs_lease_release(store *st, const char *account, const char *owner, long long fence,
		      char **err_r);
int pgs_lease_list(store *st, store_lease_fn *fn, void *arg, char **err_r);
int pgs_fence_set(store *st, const char *account, const char *owner, long long fence,
		  char **err_r);
/* The fence check of pgs_commit, inside the open transaction. */
int pgs_fence_check(store *st, char **err_r);
#endif

/* mailmill - ISC licence, see LICENSE */
#ifndef MM_STORE_H
#define MM_STORE_H
/*
 * The store: one SQLite file, state_dir/mailmill.db (WAL, schema versioned
 * with migrations).  Every write the daemon makes goes through here, so that
 * another backend could live behind the same functions.
 *
 * The ledger holds one row per (account, uid) the pipeline has decided:
 *   DELETE     processed; delete from the server (DELE not yet confirmed)
 *   KEEP       processed; stays on the server, never processed again
 *   DELETED    DELE confirmed by the server's +OK to QUIT
 *   QUARANTINE failed too often; left on the server, skipped
 * A uid without a row is new.  DEFER writes no row.
 *
 * Errors: 0 / -1 with *err_r allocated (caller frees).
 */
#include <stddef.h>

typedef struct store store;

typedef enum {
	LEDGER_NEW = 0,
	LEDGER_DELETE = 1,
	LEDGER_KEEP = 2,
	LEDGER_DELETED = 3,
	LEDGER_QUARANTINE = 4
} ledger_state;

const char *ledger_state_name(ledger_state st);

/* Creates state_dir (0700) and the database (0600) if missing.  readonly:
 * for --dry-run; a missing database then gives an empty store, not an error,
 * and the write functions below check their arguments, then write nothing
 * and return 0, so a dry run takes the same code path as a real one. */
int store_open(const char *state_dir, int readonly, store **st_r, char **err_r);
void store_close(store **st);

/* All rows of an account: fn called once per row. */
typedef void store_ledger_fn(void *arg, const char *uid, ledger_state st, int attempts);
int store_ledger_load(store *st, const char *account, store_ledger_fn *fn, void *arg,
		      char **err_r);

/* Transactions: all ledger writes of a batch between begin and commit. */
int store_begin(store *st, char **err_r);
int store_commit(store *st, char **err_r);
void store_rollback(store *st);

typedef struct store_record {
	const char *account;
	const char *uid;
	ledger_state state;
	const char *message_id;   /* may be NULL */
	unsigned long long size;
	const char *stage;        /* the stage that decided, NULL for the pipeline end */
	const char *verdict;      /* "done", "keep", ... */
} store_record;

/* Insert or replace the row (inside a transaction). */
int store_ledger_put(store *st, const store_record *rec, char **err_r);
/* Set state DELETED for these uids of the account (one transaction). */
int store_ledger_mark_deleted(store *st, const char *account, const char *const *uids,
			      size_t n, char **err_r);
/* Count a failed attempt on a message; *attempts_r the new count. */
int store_ledger_fail(store *st, const char *account, const char *uid, const char *error,
		      int *attempts_r, char **err_r);
/* Forget rows of the account whose uid the server no longer lists (they can
 * never come back); `present` are the uids the server listed this run.
 * n == 0 means the mailbox is empty and forgets every row of the account:
 * call it only with a complete UIDL listing, never after a failed one.
 * mark_deleted, fail and forget_missing join the caller's transaction when
 * one is open, else run in one of their own. */
int store_ledger_forget_missing(store *st, const char *account, const char *const *present,
				size_t n, char **err_r);

/* One row: 1 and *state_r / *attempts_r (either may be NULL) if there is
 * one, 0 if the uid is new, -1 and *err_r on error.  A row written by
 * store_ledger_fail alone has state LEDGER_NEW and attempts > 0. */
int store_ledger_get(store *st, const char *account, const char *uid, ledger_state *state_r,
		     int *attempts_r, char **err_r);

const char *store_path(const store *st);   /* state_dir/mailmill.db; borrowed */
int store_schema_version(void);            /* what store_open migrates to */
#endif

/* mailmill - ISC licence, see LICENSE */
#ifndef MM_STORE_H
#define MM_STORE_H
/*
 * The store: one SQLite file, state_dir/mailmill.db (WAL, schema versioned
 * with migrations).  Every write the daemon makes goes through here, so that
 * another backend could live behind the same functions: no function below
 * takes a SQLite type, a table name or SQL text.  The SQLite backend is
 * the files of daemon/store/: store.c (the handle, transactions), schema.c,
 * ledger.c (with quarantine), outbox_store.c, kv.c, runs.c, tokens.c;
 * store_int.h is theirs alone.  The PostgreSQL backend (several daemons on
 * one database, sharing accounts by leases) is pg.c, pg_schema.c, pg_ledger.c,
 * pg_outbox.c, pg_kv.c, pg_runs.c, pg_tokens.c, pg_lease.c (pg_int.h): each
 * function below starts with one line that hands a PostgreSQL handle there.
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

/* The backend the configuration names (store_open.c): its `store` group, or
 * SQLite in state_dir without one.  What callers outside daemon/store use. */
struct cfg;
int store_open_cfg(const struct cfg *c, int readonly, store **st_r, char **err_r);

/* PostgreSQL (libpq).  conninfo: libpq's, without a password (refused);
 * password_file, sslmode, sslrootcert: NULL for none / libpq's default.
 * The schema is created or migrated (read-only: a database without it is an
 * empty store).  A statement that fails, the connection lost among them,
 * returns -1 and says so; the next call outside a transaction connects again. */
typedef struct store_pg_conf {
	const char *conninfo, *password_file, *sslmode, *sslrootcert;
} store_pg_conf;
int store_open_pg(const store_pg_conf *pc, int readonly, store **st_r, char **err_r);
/* "sqlite" or "postgresql" */
const char *store_driver(const store *st);
/* Every row of the SQLite store `from` into the PostgreSQL store `to`, which
 * must hold none (refused otherwise), in one transaction of `to`: all or
 * nothing (migrate.c).  *rows_r the rows copied. */
int store_copy(store *from, store *to, unsigned long long *rows_r, char **err_r);
void store_close(store **st);

/* All rows of an account: fn called once per row. */
typedef void store_ledger_fn(void *arg, const char *uid, ledger_state st, int attempts);
int store_ledger_load(store *st, const char *account, store_ledger_fn *fn, void *arg,
		      char **err_r);

/* Transactions: all ledger writes of a batch between begin and commit. */
int store_begin(store *st, char **err_r);
int store_commit(store *st, char **err_r);
/*
 * full = 1 (the default): every commit is flushed to disk before it returns.
 * full = 0: commits survive a crash of the process but may be lost with the
 * last moments before a power failure (SQLite WAL, synchronous=NORMAL).  For
 * the outbox's "sent" marks only: a flush per sent mail would bound a relay
 * flush to the disk's flush rate, and what a power cut can cost there is a
 * duplicate of a reply, never a lost message.
 */
int store_durability(store *st, int full, char **err_r);
void store_rollback(store *st);

typedef struct store_record {
	const char *account;
	const char *uid;
	ledger_state state;
	const char *message_id;   /* may be NULL */
	unsigned long long size;
	const char *stage;        /* the stage that decided, NULL for the pipeline end */
	const char *verdict;      /* "done", "keep", ... */
	const char *digest;       /* IMAP: hex SHA-256 of the message as fetched; NULL */
} store_record;

/* Insert or replace the row (inside a transaction). */
int store_ledger_put(store *st, const store_record *rec, char **err_r);
/* Set state DELETED for these uids of the account (one transaction). */
int store_ledger_mark_deleted(store *st, const char *account, const char *const *uids,
			      size_t n, char **err_r);
/* The same for every row of the account in state DELETE, in one statement:
 * for a caller that knows those rows are exactly the messages whose
 * deletion the server has just confirmed. */
int store_ledger_mark_all_deleted(store *st, const char *account, char **err_r);
/* Count a failed attempt on a message; *attempts_r the new count. */
int store_ledger_fail(store *st, const char *account, const char *uid, const char *error,
		      int *attempts_r, char **err_r);
/* Forget these rows of the account (the caller found that the server no
 * longer lists them, from a complete UIDL listing: they can never come
 * back).  A row's digest (IMAP) is not forgotten with it: it stays, with the
 * row's message_id and state, for store_ledger_find_digest, until
 * store_ledger_prune_gone (a message a person moves back under a new UID is
 * recognised).  mark_deleted, fail and forget join the caller's transaction
 * when one is open, else run in one of their own. */
int store_ledger_forget(store *st, const char *account, const char *const *uids, size_t n,
			char **err_r);
/* How long the digests of forgotten keys are kept (see above). */
#define STORE_GONE_KEEP (180LL * 86400)
/* Drop the account's digests of keys forgotten at or before `before` (unix
 * time); joins the caller's transaction.  0 or -1 and *err_r. */
int store_ledger_prune_gone(store *st, const char *account, long long before, char **err_r);
/* Whether the account has digests of forgotten keys: 1, 0, -1 and *err_r. */
int store_ledger_has_gone(store *st, const char *account, char **err_r);

/*
 * IMAP: a row of the account for the same message under another key (a
 * Gmail label shows one message in several folders; a new UIDVALIDITY
 * renumbers a folder; a person moved it back), or the digest of a forgotten
 * key: same digest, and same message_id (NULL matches a row without one).  1 and *uid_r (allocated, caller frees; may be NULL) and
 * *state_r (may be NULL) of one such row, preferring a decided one; 0 if
 * none; -1 and *err_r.  The key of an IMAP row is "FOLDER;UIDVALIDITY=V/;UID=N"
 * (RFC 5092's form), so (account, folder, uidvalidity, uid) is its key.
 */
int store_ledger_find_digest(store *st, const char *account, const char *message_id,
			     const char *digest, char **uid_r, ledger_state *state_r,
			     char **err_r);

/* One row: 1 and *state_r / *attempts_r (either may be NULL) if there is
 * one, 0 if the uid is new, -1 and *err_r on error.  A row written by
 * store_ledger_fail alone has state LEDGER_NEW and attempts > 0. */
int store_ledger_get(store *st, const char *account, const char *uid, ledger_state *state_r,
		     int *attempts_r, char **err_r);

/*
 * delete_after: mail the pipeline finished (verdict "done") on an account
 * that leaves it on the server for a while.  Such a message's ledger row is
 * KEEP with verdict "done"; its `created` is when the journal first saw it
 * (the first commit of a verdict for the uid; later writes keep it).  Once
 * that is at or before `before`, the row becomes DELETE, and the run DELEs
 * it like any message journalled for deletion (crash-safe the same way:
 * a row that says DELETE is deleted by a later run if not by this one).
 * A KEEP verdict (a stage's, or pipeline_end = "keep") is never aged.
 *
 * apply = 0 (a dry run, a read-only store): count only, write nothing.
 * 0 and *n_r (the rows due), or -1 and *err_r (allocated). 
 */
int store_aging_promote(store *st, const char *account, long long before, int apply,
			size_t *n_r, char **err_r);

/* ----------------------------------------------------------------- outbox
 * Mail queued by plugins, one row per message: the exact bytes and the
 * envelope.  A row is added inside the transaction that commits the verdict
 * of the message that caused it, so a message processed again never queues
 * twice and a committed verdict never loses its mail.  `rcpts` holds the
 * recipients still to deliver, one per line; `outcomes` accumulates one line
 * per recipient decided ("rcpt code text").  Times are unix seconds.
 */
typedef enum { OUTBOX_QUEUED = 0, OUTBOX_SENT = 1, OUTBOX_DEAD = 2 } outbox_state;
const char *outbox_state_name(outbox_state s);

typedef struct store_outbox_row {
	long long id;
	const char *account, *uid, *stage;   /* uid, stage may be NULL */
	const char *env_from;                /* "" is the null reverse-path */
	const char *rcpts;                   /* "\n"-separated */
	const char *message;                 /* NULL when listed without the bytes */
	size_t len;
	const char *message_id;              /* may be NULL */
	unsigned flags;                      /* MM_QUEUE_* */
	outbox_state state;
	int attempts;
	long long next_attempt, created, updated;
	const char *last_error, *outcomes;   /* may be NULL */
	int unknown_outcomes;                /* attempts whose end of data went unanswered */
} store_outbox_row;

/* Every pointer in row is borrowed for the call; return non-zero to stop. */
typedef int store_outbox_fn(void *arg, const store_outbox_row *row);

/* Add a queued row (id, state, attempts, times and outcomes of row are
 * ignored; due at once).  Joins the caller's transaction. */
int store_outbox_add(store *st, const store_outbox_row *row, long long now, char **err_r);
/* Ids of queued rows with next_attempt <= due (due < 0: every queued row),
 * oldest first, at most max.  *ids_r allocated (free), may be NULL if *n_r is 0. */
int store_outbox_due(store *st, long long due, size_t max, long long **ids_r, size_t *n_r,
		     char **err_r);
/* One row with its bytes: 1 and fn called, 0 if there is no such row. */
int store_outbox_get(store *st, long long id, store_outbox_fn *fn, void *arg, char **err_r);
/* Rows whose state is in mask (1 << OUTBOX_*), oldest first, without the bytes. */
int store_outbox_list(store *st, unsigned mask, store_outbox_fn *fn, void *arg, char **err_r);
/* How many rows are in each state (n_r[OUTBOX_QUEUED..OUTBOX_DEAD]) and how
 * many needed more than one attempt (a queued row: any attempt), counted by
 * the store, not row by row: the metrics ask after every run. */
int store_outbox_counts(store *st, unsigned long long n_r[3], unsigned long long *retried_r,
			char **err_r);
/* Outcomes: appended to the row's (NULL: nothing to add).  Each writes in a
 * transaction of its own unless one is open. */
int store_outbox_sent(store *st, long long id, const char *outcomes, long long now, char **err_r);
/* Still queued for `rcpts` (the recipients left), next try at next_attempt;
 * counts an attempt. */
int store_outbox_retry(store *st, long long id, const char *rcpts, long long next_attempt,
		       const char *error, const char *outcomes, long long now, char **err_r);
int store_outbox_dead(store *st, long long id, const char *error, const char *outcomes,
		      long long now, char **err_r);
/* The connection was lost or timed out after the final dot of row id (RFC
 * 1047: the relay may deliver it twice): counts it on the row and in the
 * counter STORE_COUNTER_UNKNOWN.  Joins the caller's transaction. */
#define STORE_COUNTER_UNKNOWN "outbox_unknown_outcome"
int store_outbox_unknown(store *st, long long id, char **err_r);
/* A counter's value (0 if it never counted); -1 on error. */
int store_counter_get(store *st, const char *name, long long *value_r, char **err_r);
/* Forget sent rows last updated before `before`. */
int store_outbox_prune(store *st, long long before, char **err_r);
/* Make row id (id < 0: every row) due at `now` if it is queued or dead; a
 * dead row is queued again with the recipients it had left.  *n_r the
 * number of rows changed (0: no such queued or dead row). */
int store_outbox_wake(store *st, long long id, long long now, long long *n_r, char **err_r);
/* Remove row id, whatever its state: 1 removed, 0 no such row, -1 error. */
int store_outbox_drop(store *st, long long id, char **err_r);

/* --------------------------------------------------------------------- kv
 * The plugins' small key-value store.  A scope is either a stage of an
 * account (ns NULL; account and stage set) or a namespace shared by the
 * stages of several accounts (ns set, e.g. "ticket:<queue>"; account and
 * stage ignored); keys of two scopes never meet.  A key whose expires_at
 * (not 0) is <= now reads as missing.  Pointers are borrowed for the call.
 */
typedef struct store_kv_scope {
	const char *account, *stage;
	const char *ns;
} store_kv_scope;

/* 1 and *value_r (allocated, free) if present, 0 if missing, -1 on error. */
int store_kv_get(store *st, const store_kv_scope *scope, const char *key, long long now,
		 char **value_r, char **err_r);
/* Insert or replace (joins the caller's transaction); also forgets the
 * scope's expired keys. */
int store_kv_put(store *st, const store_kv_scope *scope, const char *key, const char *value,
		 long long expires_at, long long now, char **err_r);
/* Insert key only if absent or expired, committed at once in a transaction
 * of its own (never inside one): 1 if this call inserted it, 0 and
 * *holder_r (allocated, free) the value of whoever holds it, -1 on error.
 * Read-only store: writes nothing; 1 if the key is free. */
int store_kv_claim(store *st, const store_kv_scope *scope, const char *key, const char *value,
		   long long expires_at, long long now, char **holder_r, char **err_r);

/* ------------------------------------------------------------------- runs
 * The daemon's record of account runs and its schedule, read by --status.
 * Only the last runs of each account are kept.
 */
typedef struct store_run_row {
	const char *account;
	long long started, finished;   /* unix seconds; 0 in store_run_last: never ran */
	const char *result;            /* "ok", "failed", "auth", "crashed", "timeout"; NULL: never ran */
	const char *error;             /* NULL when none */
	unsigned long fetched, deleted, kept, deferred, skipped;
	unsigned long moved, flagged;  /* IMAP: done mail moved, flagged (not deleted) */
	unsigned long long bytes;
	long long next_run;            /* store_run_last only: unix time, 0 running, -1 unknown */
	int failures;                  /* store_run_last only: failed runs in a row */
} store_run_row;
typedef void store_run_fn(void *arg, const store_run_row *row);

/* Record a finished run (own transaction unless one is open). */
int store_run_add(store *st, const store_run_row *row, char **err_r);
/* The account's latest run and schedule: fn called once (pointers borrowed
 * for the call), with result NULL if it never ran. */
int store_run_last(store *st, const char *account, store_run_fn *fn, void *arg, char **err_r);
int store_schedule_put(store *st, const char *account, long long next_run, int failures,
		       char **err_r);

/* Put a message in quarantine: left on the server, skipped by later runs. */
int store_ledger_quarantine(store *st, const char *account, const char *uid, char **err_r);
/* Remember the Message-ID of a message not yet decided (one that failed),
 * so that --status names it if it ends in quarantine; the row's state and
 * attempts are left as they are.  message_id NULL: nothing to do. */
int store_ledger_note(store *st, const char *account, const char *uid, const char *message_id,
		      char **err_r);
/* Take a message out of quarantine: new again, no attempts counted, so the
 * next run processes it.  1 released, 0 it was not quarantined, -1 error. */
int store_quarantine_release(store *st, const char *account, const char *uid, char **err_r);
typedef struct store_quarantine_row {
	const char *account, *uid, *message_id, *last_error;   /* last two may be NULL */
	int attempts;
	long long updated;
} store_quarantine_row;
typedef void store_quarantine_fn(void *arg, const store_quarantine_row *row);
/* Quarantined messages of the account (NULL: of all). */
int store_quarantine_list(store *st, const char *account, store_quarantine_fn *fn, void *arg,
			  char **err_r);

/* -------------------------------------------------------------------- seq */
/* The next number of the sequence (1, 2, ...), committed at once in a
 * transaction of its own (never inside one): never handed out twice, even
 * to another process; a crash after it leaves a gap.  Read-only store: the
 * number a real run would get, nothing written. */
int store_seq_next(store *st, const char *ns, const char *name, long long *value_r,
		   char **err_r);

/* ----------------------------------------------------------------- tokens
 * OAuth tokens (daemon/oauth/oauth.c).  rkey names a sign-in (token endpoint,
 * client, user): its refresh token and whether it needs a new sign-in;
 * akey an access token (the same and a scope).  Keys are opaque here.
 * Tokens are secrets: never logged, wiped when freed.
 */
typedef struct store_token {
	char *access_token;            /* NULL: none cached */
	long long obtained, expires;   /* unix seconds */
	char *refresh_token;           /* NULL: none */
	int needs_signin;              /* refused for good: someone must sign in */
	char *reason;                  /* why (the server's words), or NULL */
} store_token;
/* Either key may be NULL (not looked up).  0 and *t (clear with
 * store_token_clear), -1 on error. */
int store_token_get(store *st, const char *rkey, const char *akey, store_token *t,
		    char **err_r);
void store_token_clear(store_token *t);
/* A new access token; with new_refresh (needs rkey), the sign-in's refresh
 * token is replaced in the same transaction and its needs-sign-in cleared. */
int store_token_put(store *st, const char *rkey, const char *akey, const char *access,
		    long long obtained, long long expires, const char *new_refresh,
		    char **err_r);
/* Forget a cached access token (the server refused it). */
int store_token_drop_access(store *st, const char *akey, char **err_r);
/* A sign-in succeeded: its refresh token stored, needs-sign-in cleared, the
 * access tokens it gave before forgotten.  One transaction. */
int store_token_signed_in(store *st, const char *rkey, const char *refresh, long long now,
			  char **err_r);
/* The refresh token was refused for good: forgotten, with the reason, and
 * no token request is made for the sign-in until store_token_signed_in.
 * refused: the refresh token the endpoint refused; when the stored one is
 * no longer it (rotated meanwhile by another process), nothing changes and
 * the result is 1.  NULL: whatever is stored.  0 marked, -1 error. */
int store_token_needs_signin(store *st, const char *rkey, const char *refused,
			     const char *reason, long long now, char **err_r);

/* ----------------------------------------------------------------- leases
 * Several daemons on one database share the accounts: a run of an account is
 * claimed with a lease (owner, expiry, and a fencing counter that grows with
 * every claim).  On a store only one daemon can use (SQLite, held by the
 * state lock) a claim always succeeds.  owner: "host:pid" or the like.
 */
/* 1 and *fence_r: claimed (free, expired, or already ours); 0: another
 * owner holds a live lease; -1 and *err_r. */
int store_lease_claim(store *st, const char *account, const char *owner, long long ttl_s,
		      long long *fence_r, char **err_r);
/* Extend our lease by ttl_s from now: 0; -1 and *err_r if it is no longer
 * ours with this fence (lost: stop, commit nothing) or on error. */
int store_lease_renew(store *st, const char *account, const char *owner, long long fence,
		      long long ttl_s, char **err_r);
/* Give it up (the run ended): 0 or -1. */
int store_lease_release(store *st, const char *account, const char *owner, long long fence,
			char **err_r);
/* Every live lease, for --status and the metrics: fn once per lease (strings
 * borrowed for the call).  SQLite: none.  0 or -1. */
typedef void store_lease_fn(void *arg, const char *account, const char *owner, long long fence,
			    long long expires);
int store_lease_list(store *st, store_lease_fn *fn, void *arg, char **err_r);
/* From now on every store_commit of this handle first checks, in the same
 * transaction, that (account, owner, fence) still holds the lease, and fails
 * (rolled back, -1) if not: a daemon that lost its lease commits nothing.
 * account NULL: no check (the default).  Fenced with STORE_LEASE_OUTBOX, the
 * outbox's lease, the handle is the one flush of the store: store_outbox_due
 * also takes the rows an earlier flush claimed and never finished (it died
 * or lost the lease), instead of waiting for their claims to expire. */
#define STORE_LEASE_OUTBOX "@outbox"   /* not an account name ([A-Za-z0-9._-]) */
int store_fence_set(store *st, const char *account, const char *owner, long long fence,
		    char **err_r);

const char *store_path(const store *st);   /* state_dir/mailmill.db; borrowed */
int store_schema_version(void);            /* what store_open migrates to */
#endif

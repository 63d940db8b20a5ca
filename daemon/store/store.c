/* mailmill - ISC licence, see LICENSE */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "daemon/store/store.h"

#define STORE_FILE "mailmill.db"
#define STORE_BUSY_MS 10000
/* last_error is for a human; a plugin's whole stderr does not belong there. */
#define STORE_ERROR_MAX 1000

/*
 * Schema migrations, in order.  Migration i brings the database from
 * user_version i to i + 1; never edit one that has shipped, append.
 */
static const char *const store_migrations[] = {
	/* 0 -> 1: the ledger */
	"CREATE TABLE ledger ("
	"  account    TEXT NOT NULL,"
	"  uid        TEXT NOT NULL,"
	"  state      INTEGER NOT NULL,"
	"  verdict    TEXT,"
	"  stage      TEXT,"
	"  message_id TEXT,"
	"  size       INTEGER NOT NULL DEFAULT 0,"
	"  attempts   INTEGER NOT NULL DEFAULT 0,"
	"  last_error TEXT,"
	"  created    INTEGER NOT NULL,"   /* unix time the row was first written */
	"  updated    INTEGER NOT NULL,"
	"  PRIMARY KEY (account, uid)"
	") WITHOUT ROWID;",
	/* 1 -> 2: the outbox (mail plugins queued, committed with the verdict
	 * of the message that caused it) and the plugins' key-value store */
	"CREATE TABLE outbox ("
	"  id           INTEGER PRIMARY KEY,"
	"  account      TEXT NOT NULL,"
	"  uid          TEXT,"               /* the message that caused it */
	"  stage        TEXT,"
	"  env_from     TEXT NOT NULL,"      /* '' is the null reverse-path */
	"  rcpts        TEXT NOT NULL,"      /* still to deliver, one per line */
	"  message      BLOB NOT NULL,"      /* the exact bytes, '\n' line ends */
	"  message_id   TEXT,"
	"  flags        INTEGER NOT NULL DEFAULT 0,"
	"  state        INTEGER NOT NULL DEFAULT 0,"  /* 0 queued, 1 sent, 2 dead */
	"  attempts     INTEGER NOT NULL DEFAULT 0,"
	"  next_attempt INTEGER NOT NULL,"
	"  created      INTEGER NOT NULL,"
	"  updated      INTEGER NOT NULL,"
	"  last_error   TEXT,"               /* the last reply or failure */
	"  outcomes     TEXT"                /* per recipient, one line each */
	");"
	"CREATE INDEX outbox_due ON outbox (state, next_attempt);"
	"CREATE TABLE kv ("
	"  account    TEXT NOT NULL,"
	"  stage      TEXT NOT NULL,"
	"  key        TEXT NOT NULL,"
	"  value      TEXT NOT NULL,"
	"  expires_at INTEGER NOT NULL DEFAULT 0,"   /* 0: never */
	"  updated    INTEGER NOT NULL,"
	"  PRIMARY KEY (account, stage, key)"
	") WITHOUT ROWID;",
	/* 2 -> 3: the daemon's account runs and schedule, for --status */
	"CREATE TABLE runs ("
	"  id       INTEGER PRIMARY KEY,"
	"  account  TEXT NOT NULL,"
	"  started  INTEGER NOT NULL,"
	"  finished INTEGER NOT NULL,"
	"  result   TEXT NOT NULL,"          /* ok, failed, auth, crashed, timeout */
	"  error    TEXT,"
	"  fetched  INTEGER NOT NULL DEFAULT 0,"
	"  deleted  INTEGER NOT NULL DEFAULT 0,"
	"  kept     INTEGER NOT NULL DEFAULT 0,"
	"  deferred INTEGER NOT NULL DEFAULT 0,"
	"  skipped  INTEGER NOT NULL DEFAULT 0,"
	"  bytes    INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE INDEX runs_account ON runs (account, id);"
	"CREATE TABLE schedule ("
	"  account  TEXT PRIMARY KEY,"
	"  next_run INTEGER NOT NULL,"       /* unix time; 0: running now */
	"  failures INTEGER NOT NULL DEFAULT 0,"
	"  updated  INTEGER NOT NULL"
	") WITHOUT ROWID;",
	/* 3 -> 4: plugin state shared across accounts (kv_ns, e.g. a ticket
	 * queue fed by two mailboxes) and sequences that never repeat */
	"CREATE TABLE kv_ns ("
	"  ns         TEXT NOT NULL,"
	"  key        TEXT NOT NULL,"
	"  value      TEXT NOT NULL,"
	"  expires_at INTEGER NOT NULL DEFAULT 0,"   /* 0: never */
	"  updated    INTEGER NOT NULL,"
	"  PRIMARY KEY (ns, key)"
	") WITHOUT ROWID;"
	"CREATE TABLE seq ("
	"  ns    TEXT NOT NULL,"
	"  name  TEXT NOT NULL,"
	"  value INTEGER NOT NULL,"          /* the last number handed out */
	"  PRIMARY KEY (ns, name)"
	") WITHOUT ROWID;",
	/* 4 -> 5: a put expires the scope's old keys; without these indexes
	 * that scanned every key of the scope, once per put (an auto-responder
	 * answering 10 000 senders spent a third of its time there). */
	"CREATE INDEX kv_expiry ON kv (account, stage, expires_at);"
	"CREATE INDEX kv_ns_expiry ON kv_ns (ns, expires_at);",
	/* 5 -> 6: outcomes unknown after the end of data (RFC 1047: the relay
	 * may have the message and deliver it twice), per row and in total;
	 * the total is a counter that outlives pruned rows */
	"ALTER TABLE outbox ADD COLUMN unknown_outcomes INTEGER NOT NULL DEFAULT 0;"
	"CREATE TABLE counters ("
	"  name  TEXT PRIMARY KEY,"
	"  value INTEGER NOT NULL"
	") WITHOUT ROWID;",
	/* 6 -> 7: OAuth tokens.  A refresh token belongs to a sign-in (token
	 * endpoint, client, user); access tokens also to a scope, so POP3 and
	 * SMTP share one when their scopes agree. */
	"CREATE TABLE oauth_refresh ("
	"  key           TEXT PRIMARY KEY,"
	"  refresh_token TEXT,"                /* NULL: none (never signed in, revoked) */
	"  needs_signin  INTEGER NOT NULL DEFAULT 0,"
	"  reason        TEXT,"                /* why it needs a sign-in */
	"  updated       INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE oauth_access ("
	"  key          TEXT PRIMARY KEY,"
	"  rkey         TEXT,"                 /* the sign-in it came from; NULL app-only */
	"  access_token TEXT NOT NULL,"
	"  obtained     INTEGER NOT NULL,"     /* unix seconds */
	"  expires      INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE INDEX oauth_access_rkey ON oauth_access (rkey);",
};
#define STORE_SCHEMA_VERSION ((int)(sizeof(store_migrations) / sizeof(store_migrations[0])))

enum {
	Q_BEGIN, Q_COMMIT, Q_ROLLBACK,
	Q_LOAD, Q_GET, Q_PUT, Q_DELETED, Q_ALL_DELETED, Q_FAIL, Q_ATTEMPTS,
	Q_FORGET,
	Q_COUNT
};

static const char *const store_sql[Q_COUNT] = {
	[Q_BEGIN] = "BEGIN IMMEDIATE",
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
	[Q_LOAD] = "SELECT uid, state, attempts FROM ledger WHERE account = ?1",
	[Q_GET] = "SELECT state, attempts FROM ledger WHERE account = ?1 AND uid = ?2",
	/* An upsert, not REPLACE: attempts and created survive a new verdict. */
	[Q_PUT] = "INSERT INTO ledger (account, uid, state, verdict, stage, message_id, size,"
		  " created, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)"
		  " ON CONFLICT (account, uid) DO UPDATE SET state = excluded.state,"
		  " verdict = excluded.verdict, stage = excluded.stage,"
		  " message_id = excluded.message_id, size = excluded.size,"
		  " updated = excluded.updated",
	[Q_DELETED] = "UPDATE ledger SET state = 3, updated = ?3"
		      " WHERE account = ?1 AND uid = ?2",
	[Q_ALL_DELETED] = "UPDATE ledger SET state = 3, updated = ?2 WHERE account = ?1 AND state = 1",
	[Q_FAIL] = "INSERT INTO ledger (account, uid, state, attempts, last_error, created, updated)"
		   " VALUES (?1, ?2, 0, 1, ?3, ?4, ?4)"
		   " ON CONFLICT (account, uid) DO UPDATE SET attempts = attempts + 1,"
		   " last_error = excluded.last_error, updated = excluded.updated",
	[Q_ATTEMPTS] = "SELECT attempts FROM ledger WHERE account = ?1 AND uid = ?2",
	[Q_FORGET] = "DELETE FROM ledger WHERE account = ?1 AND uid = ?2",
};

/* Statements of store_prep, kept prepared across calls: the outbox and kv
 * statements run a few times per message, and preparing one costs more than
 * running it (a third of an auto-responder's instructions went to SQLite's
 * parser).  Keyed by the address of the SQL literal at the call site. */
#define STORE_CACHE_MAX 32
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
	sqlite3_stmt *q[Q_COUNT];
	struct store_cached cache[STORE_CACHE_MAX];
	char *kv_expired_scope;  /* store_kv_expired_now's: "account\0stage\0" */
	long long kv_expired_at;
};

static void store_errf(char **err_r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
store_errf(char **err_r, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (err_r != NULL)
		*err_r = strdup(tmp);
}

static int
store_fail(store *st, char **err_r, const char *what)
{
	store_errf(err_r, "%s: %s: %s", st->path, what,
		   st->db != NULL ? sqlite3_errmsg(st->db) : "no database");
	return -1;
}

const char *
ledger_state_name(ledger_state s)
{
	switch (s) {
	case LEDGER_NEW: return "new";
	case LEDGER_DELETE: return "delete";
	case LEDGER_KEEP: return "keep";
	case LEDGER_DELETED: return "deleted";
	case LEDGER_QUARANTINE: return "quarantine";
	}
	return "invalid";
}

static int
store_exec(store *st, const char *sql, char **err_r)
{
	char *msg = NULL;

	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		store_errf(err_r, "%s: %s", st->path, msg != NULL ? msg : sqlite3_errmsg(st->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

int
store_durability(store *st, int full, char **err_r)
{
	if (st->readonly)
		return 0;
	return store_exec(st, full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
			  err_r);
}

/* Reset and clear bindings, so a cached statement is ready for next time. */
static sqlite3_stmt *
store_q(store *st, int which)
{
	sqlite3_stmt *q = st->q[which];

	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	return q;
}

/* One step of a statement that returns no rows. */
static int
store_step_done(store *st, sqlite3_stmt *q, char **err_r, const char *what)
{
	int rc = sqlite3_step(q);

	if (rc != SQLITE_DONE) {
		store_fail(st, err_r, what);
		sqlite3_reset(q);
		return -1;
	}
	sqlite3_reset(q);
	return 0;
}

static int
store_user_version(store *st, int *v_r, char **err_r)
{
	sqlite3_stmt *q;
	int rc;

	if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &q, NULL) != SQLITE_OK)
		return store_fail(st, err_r, "reading the schema version");
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		*v_r = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	if (rc != SQLITE_ROW)
		return store_fail(st, err_r, "reading the schema version");
	return 0;
}

static int
store_migrate(store *st, char **err_r)
{
	char sql[64];
	int v;

	/* IMMEDIATE: two processes opening a new database do not both migrate. */
	if (store_exec(st, "BEGIN IMMEDIATE", err_r) < 0)
		return -1;
	if (store_user_version(st, &v, err_r) < 0)
		goto fail;
	if (v > STORE_SCHEMA_VERSION) {
		store_errf(err_r, "%s: schema version %d is newer than this mailmill knows (%d); "
			   "was it written by a later release?", st->path, v, STORE_SCHEMA_VERSION);
		goto fail;
	}
	for (; v < STORE_SCHEMA_VERSION; v++) {
		if (store_exec(st, store_migrations[v], err_r) < 0)
			goto fail;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if (store_exec(st, sql, err_r) < 0)
			goto fail;
	}
	return store_exec(st, "COMMIT", err_r);
fail:
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* mkdir -p: parents 0755 (e.g. $(localstatedir)/lib on a fresh install),
 * the state directory itself 0700. */
static int
store_mkdirs(const char *dir)
{
	char tmp[PATH_MAX];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(tmp, dir, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* The state directory, and the database file with mode 0600 before SQLite
 * creates it with the umask's idea of a mode (its -wal/-shm copy this one). */
static int
store_create_files(const char *state_dir, const char *path, char **err_r)
{
	struct stat sb;
	int fd;

	if (store_mkdirs(state_dir) < 0) {
		store_errf(err_r, "state_dir %s: cannot create: %s", state_dir, strerror(errno));
		return -1;
	}
	if (stat(state_dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		store_errf(err_r, "state_dir %s: not a directory", state_dir);
		return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		store_errf(err_r, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) == 0 && sb.st_size == 0 && fchmod(fd, 0600) < 0) {
		store_errf(err_r, "%s: chmod: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int
store_pragmas(store *st, char **err_r)
{
	sqlite3_stmt *q;
	int ok;

	if (sqlite3_busy_timeout(st->db, STORE_BUSY_MS) != SQLITE_OK)
		return store_fail(st, err_r, "busy_timeout");
	if (st->readonly)
		return 0;
	/* journal_mode answers with the mode it got: WAL can be refused. */
	if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &q, NULL) != SQLITE_OK)
		return store_fail(st, err_r, "journal_mode");
	ok = sqlite3_step(q) == SQLITE_ROW &&
	     sqlite3_stricmp((const char *)sqlite3_column_text(q, 0), "wal") == 0;
	sqlite3_finalize(q);
	if (!ok) {
		store_errf(err_r, "%s: cannot switch to WAL journal mode", st->path);
		return -1;
	}
	/*
	 * The WAL is durable (synchronous FULL): copying it into the database
	 * when the last connection closes is not needed for safety, and cost a
	 * --once run 10-16 ms of writes and a flush after its work was done.
	 * The automatic checkpoint of later commits still bounds the WAL.
	 */
	if (sqlite3_db_config(st->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL) != SQLITE_OK)
		return store_fail(st, err_r, "no checkpoint on close");
	/* The ledger commit is the durability point of a run: FULL, not NORMAL. */
	return store_exec(st, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;", err_r);
}

static int
store_prepare(store *st, char **err_r)
{
	for (int i = 0; i < Q_COUNT; i++) {
		if (st->readonly && i != Q_LOAD && i != Q_GET && i != Q_ATTEMPTS)
			continue;
		if (sqlite3_prepare_v3(st->db, store_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &st->q[i], NULL) != SQLITE_OK)
			return store_fail(st, err_r, "preparing a statement");
	}
	return 0;
}

int
store_open(const char *state_dir, int readonly, store **st_r, char **err_r)
{
	store *st;
	int flags, v;

	*st_r = NULL;
	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		store_errf(err_r, "out of memory");
		return -1;
	}
	st->readonly = readonly;
	size_t n = strlen(state_dir) + sizeof("/" STORE_FILE);
	if ((st->path = malloc(n)) == NULL) {
		free(st);
		store_errf(err_r, "out of memory");
		return -1;
	}
	snprintf(st->path, n, "%s/%s", state_dir, STORE_FILE);

	if (readonly) {
		/* A dry run before the first real run: nothing decided yet. */
		if (access(st->path, F_OK) < 0 && errno == ENOENT) {
			*st_r = st;
			return 0;
		}
		flags = SQLITE_OPEN_READONLY;
	} else {
		if (store_create_files(state_dir, st->path, err_r) < 0)
			goto fail;
		flags = SQLITE_OPEN_READWRITE;
	}
	/* NOMUTEX: one thread uses a handle (the mm_* API is for the thread
	 * that calls a plugin), and SQLite's own locking cost 20 mutex round
	 * trips per archived message. */
	if (sqlite3_open_v2(st->path, &st->db, flags | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		store_fail(st, err_r, "cannot open");
		goto fail;
	}
	sqlite3_extended_result_codes(st->db, 1);
	if (store_pragmas(st, err_r) < 0)
		goto fail;
	if (readonly) {
		if (store_user_version(st, &v, err_r) < 0)
			goto fail;
		if (v != STORE_SCHEMA_VERSION) {
			if (v == 0) {  /* created but never migrated: empty */
				sqlite3_close(st->db);
				st->db = NULL;
				*st_r = st;
				return 0;
			}
			store_errf(err_r, "%s: schema version %d, this mailmill needs %d; a dry run "
				   "does not upgrade it, a normal run does", st->path, v,
				   STORE_SCHEMA_VERSION);
			goto fail;
		}
	} else if (store_migrate(st, err_r) < 0) {
		goto fail;
	}
	if (store_prepare(st, err_r) < 0)
		goto fail;
	*st_r = st;
	return 0;
fail:
	store_close(&st);
	return -1;
}

void
store_close(store **stp)
{
	store *st;

	if (stp == NULL || (st = *stp) == NULL)
		return;
	if (st->in_tx && st->db != NULL)
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	for (int i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(st->q[i]);
	for (int i = 0; i < STORE_CACHE_MAX; i++)
		sqlite3_finalize(st->cache[i].q);
	free(st->kv_expired_scope);
	if (st->db != NULL)
		sqlite3_close(st->db);
	free(st->path);
	free(st);
	*stp = NULL;
}

/* ----------------------------------------------------------- transactions */

int
store_begin(store *st, char **err_r)
{
	if (st->in_tx) {
		store_errf(err_r, "%s: a transaction is already open", st->path);
		return -1;
	}
	if (!st->readonly && store_step_done(st, store_q(st, Q_BEGIN), err_r, "begin") < 0)
		return -1;
	st->in_tx = 1;
	return 0;
}

int
store_commit(store *st, char **err_r)
{
	if (!st->in_tx) {
		store_errf(err_r, "%s: commit without a transaction", st->path);
		return -1;
	}
	if (!st->readonly && store_step_done(st, store_q(st, Q_COMMIT), err_r, "commit") < 0) {
		/* SQLite may have rolled back on its own (disk full, I/O error). */
		if (sqlite3_get_autocommit(st->db))
			st->in_tx = 0;
		return -1;
	}
	st->in_tx = 0;
	return 0;
}

void
store_rollback(store *st)
{
	if (!st->in_tx)
		return;
	if (!st->readonly && !sqlite3_get_autocommit(st->db))
		store_step_done(st, store_q(st, Q_ROLLBACK), NULL, "rollback");
	st->in_tx = 0;
}

/* Run fn inside the caller's transaction, or in one of its own. */
static int
store_tx_begin(store *st, int *own, char **err_r)
{
	*own = !st->in_tx;
	return *own ? store_begin(st, err_r) : 0;
}

static int
store_tx_end(store *st, int own, int ok, char **err_r)
{
	if (!own)
		return ok ? 0 : -1;
	if (!ok) {
		store_rollback(st);
		return -1;
	}
	return store_commit(st, err_r);
}

/* ----------------------------------------------------------------- ledger */

static int
store_state_ok(int v)
{
	return v >= LEDGER_NEW && v <= LEDGER_QUARANTINE;
}

int
store_ledger_load(store *st, const char *account, store_ledger_fn *fn, void *arg, char **err_r)
{
	sqlite3_stmt *q;
	int rc;

	if (st->db == NULL)
		return 0;
	q = store_q(st, Q_LOAD);
	if (sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC) != SQLITE_OK)
		return store_fail(st, err_r, "load");
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *uid = (const char *)sqlite3_column_text(q, 0);
		int state = sqlite3_column_int(q, 1);
		if (uid == NULL || !store_state_ok(state)) {
			store_errf(err_r, "%s: ledger row of account %s has an invalid state %d",
				   st->path, account, state);
			sqlite3_reset(q);
			return -1;
		}
		fn(arg, uid, (ledger_state)state, sqlite3_column_int(q, 2));
	}
	if (rc != SQLITE_DONE) {
		store_fail(st, err_r, "load");
		sqlite3_reset(q);
		return -1;
	}
	sqlite3_reset(q);
	return 0;
}

int
store_ledger_get(store *st, const char *account, const char *uid, ledger_state *state_r,
		 int *attempts_r, char **err_r)
{
	sqlite3_stmt *q;
	int rc, state;

	if (st->db == NULL)
		return 0;
	q = store_q(st, Q_GET);
	if (sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(q, 2, uid, -1, SQLITE_STATIC) != SQLITE_OK)
		return store_fail(st, err_r, "get");
	rc = sqlite3_step(q);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(q);
		return 0;
	}
	if (rc != SQLITE_ROW) {
		store_fail(st, err_r, "get");
		sqlite3_reset(q);
		return -1;
	}
	state = sqlite3_column_int(q, 0);
	if (!store_state_ok(state)) {
		store_errf(err_r, "%s: ledger row %s/%s has an invalid state %d", st->path,
			   account, uid, state);
		sqlite3_reset(q);
		return -1;
	}
	if (state_r != NULL)
		*state_r = (ledger_state)state;
	if (attempts_r != NULL)
		*attempts_r = sqlite3_column_int(q, 1);
	sqlite3_reset(q);
	return 1;
}

int
store_ledger_put(store *st, const store_record *rec, char **err_r)
{
	sqlite3_stmt *q;

	if (!store_state_ok((int)rec->state) || rec->size > (unsigned long long)LLONG_MAX) {
		store_errf(err_r, "%s: invalid ledger record for %s/%s", st->path, rec->account,
			   rec->uid);
		return -1;
	}
	if (st->readonly)
		return 0;
	q = store_q(st, Q_PUT);
	if (sqlite3_bind_text(q, 1, rec->account, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(q, 2, rec->uid, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int(q, 3, (int)rec->state) != SQLITE_OK ||
	    sqlite3_bind_text(q, 4, rec->verdict, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(q, 5, rec->stage, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(q, 6, rec->message_id, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(q, 7, (sqlite3_int64)rec->size) != SQLITE_OK ||
	    sqlite3_bind_int64(q, 8, (sqlite3_int64)time(NULL)) != SQLITE_OK)
		return store_fail(st, err_r, "put");
	return store_step_done(st, q, err_r, "put");
}

int
store_ledger_mark_deleted(store *st, const char *account, const char *const *uids, size_t n,
			  char **err_r)
{
	sqlite3_int64 now = (sqlite3_int64)time(NULL);
	int own, ok = 1;

	if (st->readonly || n == 0)
		return 0;
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	for (size_t i = 0; i < n && ok; i++) {
		sqlite3_stmt *q = store_q(st, Q_DELETED);
		if (sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_bind_text(q, 2, uids[i], -1, SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_bind_int64(q, 3, now) != SQLITE_OK)
			ok = store_fail(st, err_r, "mark deleted") == 0;
		else
			ok = store_step_done(st, q, err_r, "mark deleted") == 0;
	}
	return store_tx_end(st, own, ok, err_r);
}

int
store_ledger_mark_all_deleted(store *st, const char *account, char **err_r)
{
	sqlite3_stmt *q;

	if (st->readonly)
		return 0;
	q = store_q(st, Q_ALL_DELETED);
	if (sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(q, 2, (sqlite3_int64)time(NULL)) != SQLITE_OK)
		return store_fail(st, err_r, "mark deleted");
	return store_step_done(st, q, err_r, "mark deleted");
}

int
store_ledger_fail(store *st, const char *account, const char *uid, const char *error,
		  int *attempts_r, char **err_r)
{
	char short_err[STORE_ERROR_MAX + 1];
	sqlite3_stmt *q;
	int own, ok;

	if (st->readonly) {
		/* Say what the count would become, write nothing. */
		int attempts = 0;
		if (store_ledger_get(st, account, uid, NULL, &attempts, err_r) < 0)
			return -1;
		*attempts_r = attempts + 1;
		return 0;
	}
	snprintf(short_err, sizeof(short_err), "%s", error != NULL ? error : "");
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	q = store_q(st, Q_FAIL);
	if (sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(q, 2, uid, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(q, 3, short_err, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(q, 4, (sqlite3_int64)time(NULL)) != SQLITE_OK)
		ok = store_fail(st, err_r, "count a failure") == 0;
	else
		ok = store_step_done(st, q, err_r, "count a failure") == 0;
	if (ok) {
		q = store_q(st, Q_ATTEMPTS);
		if (sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_bind_text(q, 2, uid, -1, SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_step(q) != SQLITE_ROW) {
			ok = store_fail(st, err_r, "count a failure") == 0;
		} else {
			*attempts_r = sqlite3_column_int(q, 0);
		}
		sqlite3_reset(q);
	}
	return store_tx_end(st, own, ok, err_r);
}

int
store_ledger_forget(store *st, const char *account, const char *const *uids, size_t n,
		    char **err_r)
{
	int own, ok = 1;

	if (st->readonly || n == 0)
		return 0;
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	for (size_t i = 0; i < n && ok; i++) {
		sqlite3_stmt *q = store_q(st, Q_FORGET);

		if (sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_bind_text(q, 2, uids[i], -1, SQLITE_STATIC) != SQLITE_OK)
			ok = store_fail(st, err_r, "forget") == 0;
		else
			ok = store_step_done(st, q, err_r, "forget") == 0;
	}
	return store_tx_end(st, own, ok, err_r);
}

/* ----------------------------------------------------------------- outbox */

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

/*
 * A statement for sql, a string literal: the cached one when it is free, else
 * prepared now (and cached if there is room).  Give it back with
 * store_release, never sqlite3_finalize.
 */
static sqlite3_stmt *
store_prep(store *st, const char *sql, char **err_r)
{
	struct store_cached *free_slot = NULL;
	sqlite3_stmt *q = NULL;

	for (int i = 0; i < STORE_CACHE_MAX; i++) {
		struct store_cached *c = &st->cache[i];

		if (c->sql == sql && !c->busy) {
			c->busy = 1;
			return c->q;
		}
		if (c->sql == NULL && free_slot == NULL)
			free_slot = c;
	}
	if (sqlite3_prepare_v3(st->db, sql, -1, free_slot != NULL ? SQLITE_PREPARE_PERSISTENT : 0,
			       &q, NULL) != SQLITE_OK) {
		store_fail(st, err_r, "preparing a statement");
		return NULL;
	}
	if (free_slot != NULL)
		*free_slot = (struct store_cached){ .sql = sql, .q = q, .busy = 1 };
	return q;
}

/* Give back a statement of store_prep: reset for its next use, or finalized
 * if it was a one-off. */
static void
store_release(store *st, sqlite3_stmt *q)
{
	for (int i = 0; i < STORE_CACHE_MAX; i++) {
		struct store_cached *c = &st->cache[i];

		if (c->q == q && c->q != NULL) {
			sqlite3_reset(q);
			sqlite3_clear_bindings(q);
			c->busy = 0;
			return;
		}
	}
	sqlite3_finalize(q);
}

/* Step a prepared write to the end and release it. */
static int
store_run(store *st, sqlite3_stmt *q, int bind_ok, char **err_r, const char *what)
{
	int rc = bind_ok ? sqlite3_step(q) : SQLITE_MISUSE;

	if (rc != SQLITE_DONE) {
		store_fail(st, err_r, what);
		store_release(st, q);
		return -1;
	}
	store_release(st, q);
	return 0;
}

static const char *
store_col(sqlite3_stmt *q, int i)
{
	return (const char *)sqlite3_column_text(q, i);
}

int
store_outbox_add(store *st, const store_outbox_row *row, long long now, char **err_r)
{
	sqlite3_stmt *q;
	int own, ok;

	if (row->account == NULL || row->env_from == NULL || row->rcpts == NULL ||
	    row->rcpts[0] == '\0' || row->message == NULL || row->len > (size_t)INT_MAX) {
		store_errf(err_r, "%s: invalid outbox row", st->path);
		return -1;
	}
	if (st->readonly)
		return 0;
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	q = store_prep(st, "INSERT INTO outbox (account, uid, stage, env_from, rcpts, message,"
		       " message_id, flags, state, attempts, next_attempt, created, updated)"
		       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, 0, ?9, ?9, ?9)", err_r);
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
			       sqlite3_bind_int64(q, 9, (sqlite3_int64)now) == SQLITE_OK,
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
	if (st->db == NULL || max == 0)
		return 0;
	if (max > 100000)
		max = 100000;
	if ((ids = calloc(max, sizeof(*ids))) == NULL) {
		store_errf(err_r, "out of memory");
		return -1;
	}
	q = store_prep(st, "SELECT id FROM outbox WHERE state = 0 AND (?1 < 0 OR next_attempt <= ?1)"
		       " ORDER BY id LIMIT ?2", err_r);
	if (q == NULL) {
		free(ids);
		return -1;
	}
	if (sqlite3_bind_int64(q, 1, (sqlite3_int64)due) != SQLITE_OK ||
	    sqlite3_bind_int64(q, 2, (sqlite3_int64)max) != SQLITE_OK)
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
		store_errf(err_r, "%s: outbox row %lld is invalid", st->path, id);
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

	if (st->db == NULL)
		return 0;
	q = store_prep(st, "SELECT " STORE_OUTBOX_COLS ", length(message) FROM outbox ORDER BY id",
		       err_r);
	if (q == NULL)
		return -1;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (store_outbox_fill(q, &row) < 0) {
			store_errf(err_r, "%s: an outbox row is invalid", st->path);
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
		store_errf(err_r, "%s: no outbox row %lld", st->path, id);
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
		store_errf(err_r, "%s: outbox row %lld: a retry needs recipients", st->path, id);
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
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	q = store_prep(st, "UPDATE outbox SET unknown_outcomes = unknown_outcomes + 1"
		       " WHERE id = ?1", err_r);
	ok = q != NULL && store_run(st, q, sqlite3_bind_int64(q, 1, (sqlite3_int64)id) == SQLITE_OK,
				    err_r, "outbox unknown") == 0;
	if (ok && sqlite3_changes(st->db) != 1) {
		store_errf(err_r, "%s: no outbox row %lld", st->path, id);
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
	q = store_prep(st, "DELETE FROM outbox WHERE state = 1 AND updated < ?1", err_r);
	if (q == NULL)
		return -1;
	return store_run(st, q, sqlite3_bind_int64(q, 1, (sqlite3_int64)before) == SQLITE_OK,
			 err_r, "outbox prune");
}

/* --------------------------------------------------------------------- kv */

/*
 * Step q, a SELECT of one value whose scope and key are bound (`bound` says
 * the binds worked) and whose ?now_idx is the current time: 1 and *value_r
 * (allocated), 0 if missing or expired, -1.  Releases q.
 */
static int
store_kv_value(store *st, sqlite3_stmt *q, int bound, int now_idx, long long now,
	       const char *what, char **value_r, char **err_r)
{
	int rc = bound && sqlite3_bind_int64(q, now_idx, (sqlite3_int64)now) == SQLITE_OK ?
		 sqlite3_step(q) : SQLITE_MISUSE;

	if (rc == SQLITE_ROW) {
		const char *v = store_col(q, 0);

		*value_r = strdup(v != NULL ? v : "");
		store_release(st, q);
		if (*value_r == NULL) {
			store_errf(err_r, "out of memory");
			return -1;
		}
		return 1;
	}
	if (rc != SQLITE_DONE)
		store_fail(st, err_r, what);
	store_release(st, q);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
store_kv_get(store *st, const char *account, const char *stage, const char *key, long long now,
	     char **value_r, char **err_r)
{
	sqlite3_stmt *q;

	*value_r = NULL;
	if (st->db == NULL)
		return 0;
	q = store_prep(st, "SELECT value FROM kv WHERE account = ?1 AND stage = ?2 AND key = ?3"
		       " AND (expires_at = 0 OR expires_at > ?4)", err_r);
	if (q == NULL)
		return -1;
	return store_kv_value(st, q,
			      sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC) == SQLITE_OK &&
			      sqlite3_bind_text(q, 2, stage, -1, SQLITE_STATIC) == SQLITE_OK &&
			      sqlite3_bind_text(q, 3, key, -1, SQLITE_STATIC) == SQLITE_OK,
			      4, now, "kv get", value_r, err_r);
}

/* 1 if the scope (account, stage; "\x1e", ns for kv_ns) was expired at `now`
 * already; else remembers that it is being done now (a failed allocation
 * only means expiring again). */
static int
store_kv_expired_now(store *st, const char *account, const char *stage, long long now)
{
	size_t na = strlen(account), ns = strlen(stage);

	if (st->kv_expired_at == now && st->kv_expired_scope != NULL &&
	    strcmp(st->kv_expired_scope, account) == 0 &&
	    strcmp(st->kv_expired_scope + na + 1, stage) == 0)
		return 1;
	free(st->kv_expired_scope);
	/* account NUL stage NUL */
	if ((st->kv_expired_scope = malloc(na + ns + 2)) != NULL) {
		memcpy(st->kv_expired_scope, account, na + 1);
		memcpy(st->kv_expired_scope + na + 1, stage, ns + 1);
	}
	st->kv_expired_at = now;
	return 0;
}

int
store_kv_put(store *st, const char *account, const char *stage, const char *key,
	     const char *value, long long expires_at, long long now, char **err_r)
{
	sqlite3_stmt *q;
	int own, ok;

	if (account == NULL || stage == NULL || key == NULL || value == NULL || expires_at < 0) {
		store_errf(err_r, "%s: invalid key-value pair", st->path);
		return -1;
	}
	if (st->readonly)
		return 0;
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	q = store_prep(st, "INSERT OR REPLACE INTO kv (account, stage, key, value, expires_at, updated)"
		       " VALUES (?1, ?2, ?3, ?4, ?5, ?6)", err_r);
	ok = q != NULL;
	if (ok)
		ok = store_run(st, q,
			       sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC) == SQLITE_OK &&
			       sqlite3_bind_text(q, 2, stage, -1, SQLITE_STATIC) == SQLITE_OK &&
			       sqlite3_bind_text(q, 3, key, -1, SQLITE_STATIC) == SQLITE_OK &&
			       sqlite3_bind_text(q, 4, value, -1, SQLITE_STATIC) == SQLITE_OK &&
			       sqlite3_bind_int64(q, 5, (sqlite3_int64)expires_at) == SQLITE_OK &&
			       sqlite3_bind_int64(q, 6, (sqlite3_int64)now) == SQLITE_OK,
			       err_r, "kv put") == 0;
	/* Expiring the scope once per second is enough: a batch's puts share
	 * their `now`, and each would otherwise scan the expiry index again. */
	if (ok && !store_kv_expired_now(st, account, stage, now)) {
		q = store_prep(st, "DELETE FROM kv WHERE account = ?1 AND stage = ?2"
			       " AND expires_at > 0 AND expires_at <= ?3", err_r);
		ok = q != NULL &&
		     store_run(st, q,
			       sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC) == SQLITE_OK &&
			       sqlite3_bind_text(q, 2, stage, -1, SQLITE_STATIC) == SQLITE_OK &&
			       sqlite3_bind_int64(q, 3, (sqlite3_int64)now) == SQLITE_OK,
			       err_r, "kv expire") == 0;
	}
	return store_tx_end(st, own, ok, err_r);
}

const char *
store_path(const store *st)
{
	return st->path;
}

int
store_schema_version(void)
{
	return STORE_SCHEMA_VERSION;
}

/* ------------------------------------------------------------------- runs */

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
	snprintf(short_err, sizeof(short_err), "%s", row->error != NULL ? row->error : "");
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	q = store_prep(st, "INSERT INTO runs (account, started, finished, result, error, fetched,"
		       " deleted, kept, deferred, skipped, bytes) VALUES (?1, ?2, ?3, ?4,"
		       " nullif(?5, ''), ?6, ?7, ?8, ?9, ?10, ?11)", err_r);
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
							(unsigned long long)LLONG_MAX : row->bytes)) == SQLITE_OK,
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

	if (st->db == NULL)
		return 0;
	q = store_prep(st, "SELECT r.started, r.finished, r.result, r.error, r.fetched, r.deleted,"
		       " r.kept, r.deferred, r.skipped, r.bytes, s.next_run, s.failures"
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

int
store_ledger_quarantine(store *st, const char *account, const char *uid, char **err_r)
{
	sqlite3_stmt *q;

	if (st->readonly)
		return 0;
	q = store_prep(st, "UPDATE ledger SET state = 4, verdict = 'quarantine', updated = ?3"
		       " WHERE account = ?1 AND uid = ?2", err_r);
	if (q == NULL)
		return -1;
	return store_run(st, q,
			 sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC) == SQLITE_OK &&
			 sqlite3_bind_text(q, 2, uid, -1, SQLITE_STATIC) == SQLITE_OK &&
			 sqlite3_bind_int64(q, 3, (sqlite3_int64)time(NULL)) == SQLITE_OK,
			 err_r, "quarantine");
}

int
store_quarantine_list(store *st, const char *account, store_quarantine_fn *fn, void *arg,
		      char **err_r)
{
	sqlite3_stmt *q;
	int rc;

	if (st->db == NULL)
		return 0;
	q = store_prep(st, "SELECT account, uid, message_id, attempts, last_error, updated FROM ledger"
		       " WHERE state = 4 AND (?1 IS NULL OR account = ?1) ORDER BY account, updated",
		       err_r);
	if (q == NULL)
		return -1;
	if (sqlite3_bind_text(q, 1, account, -1, SQLITE_STATIC) != SQLITE_OK) {
		store_fail(st, err_r, "quarantine");
		store_release(st, q);
		return -1;
	}
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		store_quarantine_row row = {
			.account = store_col(q, 0), .uid = store_col(q, 1),
			.message_id = store_col(q, 2), .attempts = sqlite3_column_int(q, 3),
			.last_error = store_col(q, 4), .updated = sqlite3_column_int64(q, 5),
		};
		if (row.account == NULL || row.uid == NULL)
			continue;
		fn(arg, &row);
	}
	if (rc != SQLITE_DONE) {
		store_fail(st, err_r, "quarantine");
		store_release(st, q);
		return -1;
	}
	store_release(st, q);
	return 0;
}

/* ------------------------------------------------------------ kv_ns, seq */

int
store_kv_ns_get(store *st, const char *ns, const char *key, long long now, char **value_r,
		char **err_r)
{
	sqlite3_stmt *q;

	*value_r = NULL;
	if (st->db == NULL)
		return 0;
	q = store_prep(st, "SELECT value FROM kv_ns WHERE ns = ?1 AND key = ?2"
		       " AND (expires_at = 0 OR expires_at > ?3)", err_r);
	if (q == NULL)
		return -1;
	return store_kv_value(st, q,
			      sqlite3_bind_text(q, 1, ns, -1, SQLITE_STATIC) == SQLITE_OK &&
			      sqlite3_bind_text(q, 2, key, -1, SQLITE_STATIC) == SQLITE_OK,
			      3, now, "kv_ns get", value_r, err_r);
}

int
store_kv_ns_put(store *st, const char *ns, const char *key, const char *value,
		long long expires_at, long long now, char **err_r)
{
	sqlite3_stmt *q;
	int own, ok;

	if (ns == NULL || key == NULL || value == NULL || expires_at < 0) {
		store_errf(err_r, "%s: invalid key-value pair", st->path);
		return -1;
	}
	if (st->readonly)
		return 0;
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	q = store_prep(st, "INSERT OR REPLACE INTO kv_ns (ns, key, value, expires_at, updated)"
		       " VALUES (?1, ?2, ?3, ?4, ?5)", err_r);
	ok = q != NULL &&
	     store_run(st, q,
		       sqlite3_bind_text(q, 1, ns, -1, SQLITE_STATIC) == SQLITE_OK &&
		       sqlite3_bind_text(q, 2, key, -1, SQLITE_STATIC) == SQLITE_OK &&
		       sqlite3_bind_text(q, 3, value, -1, SQLITE_STATIC) == SQLITE_OK &&
		       sqlite3_bind_int64(q, 4, (sqlite3_int64)expires_at) == SQLITE_OK &&
		       sqlite3_bind_int64(q, 5, (sqlite3_int64)now) == SQLITE_OK,
		       err_r, "kv_ns put") == 0;
	if (ok && !store_kv_expired_now(st, "\x1e", ns, now)) {
		q = store_prep(st, "DELETE FROM kv_ns WHERE ns = ?1 AND expires_at > 0"
			       " AND expires_at <= ?2", err_r);
		ok = q != NULL &&
		     store_run(st, q,
			       sqlite3_bind_text(q, 1, ns, -1, SQLITE_STATIC) == SQLITE_OK &&
			       sqlite3_bind_int64(q, 2, (sqlite3_int64)now) == SQLITE_OK,
			       err_r, "kv_ns expire") == 0;
	}
	return store_tx_end(st, own, ok, err_r);
}

int
store_kv_ns_claim(store *st, const char *ns, const char *key, const char *value,
		  long long expires_at, long long now, char **holder_r, char **err_r)
{
	sqlite3_stmt *q;
	int ok, got = 0;

	*holder_r = NULL;
	if (ns == NULL || key == NULL || value == NULL || expires_at < 0) {
		store_errf(err_r, "%s: invalid key-value pair", st->path);
		return -1;
	}
	if (st->in_tx) {
		store_errf(err_r, "%s: a claim commits on its own, not inside a transaction",
			   st->path);
		return -1;
	}
	if (st->readonly) {
		/* A dry run claims nothing, but says what a real run would find. */
		int rc = store_kv_ns_get(st, ns, key, now, holder_r, err_r);

		return rc < 0 ? -1 : rc == 0;
	}
	/* Insert-if-absent (an expired claim counts as absent), then read who
	 * holds it, in one IMMEDIATE transaction: of two processes, one wins. */
	if (store_begin(st, err_r) < 0)
		return -1;
	q = store_prep(st, "INSERT INTO kv_ns (ns, key, value, expires_at, updated)"
		       " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (ns, key) DO UPDATE SET"
		       " value = excluded.value, expires_at = excluded.expires_at,"
		       " updated = excluded.updated"
		       " WHERE kv_ns.expires_at > 0 AND kv_ns.expires_at <= excluded.updated", err_r);
	ok = q != NULL &&
	     store_run(st, q,
		       sqlite3_bind_text(q, 1, ns, -1, SQLITE_STATIC) == SQLITE_OK &&
		       sqlite3_bind_text(q, 2, key, -1, SQLITE_STATIC) == SQLITE_OK &&
		       sqlite3_bind_text(q, 3, value, -1, SQLITE_STATIC) == SQLITE_OK &&
		       sqlite3_bind_int64(q, 4, (sqlite3_int64)expires_at) == SQLITE_OK &&
		       sqlite3_bind_int64(q, 5, (sqlite3_int64)now) == SQLITE_OK,
		       err_r, "kv_ns claim") == 0;
	if (ok) {
		got = sqlite3_changes(st->db) == 1;
		if (!got)
			ok = store_kv_ns_get(st, ns, key, now, holder_r, err_r) >= 0;
	}
	if (store_tx_end(st, 1, ok, err_r) < 0) {
		free(*holder_r);
		*holder_r = NULL;
		return -1;
	}
	return got;
}

int
store_seq_next(store *st, const char *ns, const char *name, long long *value_r, char **err_r)
{
	sqlite3_stmt *q;
	int rc, ok;

	*value_r = 0;
	if (ns == NULL || name == NULL) {
		store_errf(err_r, "%s: a sequence needs a namespace and a name", st->path);
		return -1;
	}
	if (st->in_tx) {
		store_errf(err_r, "%s: a sequence commits on its own, not inside a transaction",
			   st->path);
		return -1;
	}
	if (st->db == NULL) {
		*value_r = 1;
		return 0;
	}
	if (st->readonly) {
		q = store_prep(st, "SELECT coalesce((SELECT value FROM seq WHERE ns = ?1"
			       " AND name = ?2), 0) + 1", err_r);
	} else {
		if (store_begin(st, err_r) < 0)
			return -1;
		q = store_prep(st, "INSERT INTO seq (ns, name, value) VALUES (?1, ?2, 1)"
			       " ON CONFLICT (ns, name) DO UPDATE SET value = value + 1"
			       " RETURNING value", err_r);
	}
	ok = q != NULL;
	if (ok) {
		if (sqlite3_bind_text(q, 1, ns, -1, SQLITE_STATIC) != SQLITE_OK ||
		    sqlite3_bind_text(q, 2, name, -1, SQLITE_STATIC) != SQLITE_OK)
			rc = SQLITE_MISUSE;
		else
			rc = sqlite3_step(q);
		if (rc == SQLITE_ROW) {
			*value_r = sqlite3_column_int64(q, 0);
			rc = sqlite3_step(q);
		}
		if (rc != SQLITE_DONE || *value_r <= 0) {
			store_fail(st, err_r, "sequence");
			ok = 0;
		}
		store_release(st, q);
	}
	if (st->readonly)
		return ok ? 0 : -1;
	/* Committed now, before the number is used: it is never handed out twice,
	 * and a crash before the message's verdict commits only leaves a gap. */
	return store_tx_end(st, 1, ok, err_r);
}

/* ----------------------------------------------------------------- tokens */

static char *
store_dup_col(sqlite3_stmt *q, int i)
{
	const char *v = store_col(q, i);

	return v != NULL ? strdup(v) : NULL;
}

static void
store_wipe(char **s)
{
	if (*s != NULL) {
		explicit_bzero(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

void
store_token_clear(store_token *t)
{
	store_wipe(&t->access_token);
	store_wipe(&t->refresh_token);
	free(t->reason);
	memset(t, 0, sizeof *t);
}

int
store_token_get(store *st, const char *rkey, const char *akey, store_token *t, char **err_r)
{
	sqlite3_stmt *q;
	int rc = SQLITE_DONE;

	memset(t, 0, sizeof *t);
	if (st->db == NULL)
		return 0;
	if (rkey != NULL) {
		q = store_prep(st, "SELECT refresh_token, needs_signin, reason FROM oauth_refresh"
			       " WHERE key = ?1", err_r);
		if (q == NULL)
			return -1;
		rc = sqlite3_bind_text(q, 1, rkey, -1, SQLITE_STATIC) == SQLITE_OK ?
		     sqlite3_step(q) : SQLITE_MISUSE;
		if (rc == SQLITE_ROW) {
			t->refresh_token = store_dup_col(q, 0);
			t->needs_signin = sqlite3_column_int(q, 1) != 0;
			t->reason = store_dup_col(q, 2);
			rc = SQLITE_DONE;
		}
		store_release(st, q);
		if (rc != SQLITE_DONE)
			goto fail;
	}
	if (akey != NULL) {
		q = store_prep(st, "SELECT access_token, obtained, expires FROM oauth_access"
			       " WHERE key = ?1", err_r);
		if (q == NULL) {
			store_token_clear(t);
			return -1;
		}
		rc = sqlite3_bind_text(q, 1, akey, -1, SQLITE_STATIC) == SQLITE_OK ?
		     sqlite3_step(q) : SQLITE_MISUSE;
		if (rc == SQLITE_ROW) {
			t->access_token = store_dup_col(q, 0);
			t->obtained = sqlite3_column_int64(q, 1);
			t->expires = sqlite3_column_int64(q, 2);
			rc = SQLITE_DONE;
		}
		store_release(st, q);
		if (rc != SQLITE_DONE)
			goto fail;
	}
	return 0;
fail:
	store_token_clear(t);
	return store_fail(st, err_r, "token get");
}

int
store_token_put(store *st, const char *rkey, const char *akey, const char *access,
		long long obtained, long long expires, const char *new_refresh, char **err_r)
{
	sqlite3_stmt *q;
	int own, ok;

	if (akey == NULL || access == NULL || (new_refresh != NULL && rkey == NULL)) {
		store_errf(err_r, "%s: invalid token", st->path);
		return -1;
	}
	if (st->readonly)
		return 0;
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	q = store_prep(st, "INSERT OR REPLACE INTO oauth_access (key, rkey, access_token,"
		       " obtained, expires) VALUES (?1, ?2, ?3, ?4, ?5)", err_r);
	ok = q != NULL &&
	     store_run(st, q,
		       sqlite3_bind_text(q, 1, akey, -1, SQLITE_STATIC) == SQLITE_OK &&
		       sqlite3_bind_text(q, 2, rkey, -1, SQLITE_STATIC) == SQLITE_OK &&
		       sqlite3_bind_text(q, 3, access, -1, SQLITE_STATIC) == SQLITE_OK &&
		       sqlite3_bind_int64(q, 4, (sqlite3_int64)obtained) == SQLITE_OK &&
		       sqlite3_bind_int64(q, 5, (sqlite3_int64)expires) == SQLITE_OK,
		       err_r, "token put") == 0;
	/* A rotated refresh token replaces the old one in the same transaction
	 * as the access token it came with: never one without the other. */
	if (ok && new_refresh != NULL) {
		q = store_prep(st, "INSERT INTO oauth_refresh (key, refresh_token, needs_signin,"
			       " reason, updated) VALUES (?1, ?2, 0, NULL, ?3) ON CONFLICT (key)"
			       " DO UPDATE SET refresh_token = excluded.refresh_token,"
			       " needs_signin = 0, reason = NULL, updated = excluded.updated", err_r);
		ok = q != NULL &&
		     store_run(st, q,
			       sqlite3_bind_text(q, 1, rkey, -1, SQLITE_STATIC) == SQLITE_OK &&
			       sqlite3_bind_text(q, 2, new_refresh, -1, SQLITE_STATIC) == SQLITE_OK &&
			       sqlite3_bind_int64(q, 3, (sqlite3_int64)obtained) == SQLITE_OK,
			       err_r, "refresh token put") == 0;
	}
	return store_tx_end(st, own, ok, err_r);
}

int
store_token_drop_access(store *st, const char *akey, char **err_r)
{
	sqlite3_stmt *q;

	if (st->readonly)
		return 0;
	q = store_prep(st, "DELETE FROM oauth_access WHERE key = ?1", err_r);
	return q == NULL ? -1 :
	       store_run(st, q, sqlite3_bind_text(q, 1, akey, -1, SQLITE_STATIC) == SQLITE_OK,
			 err_r, "token drop");
}

/* Forget the access tokens a sign-in gave (in the caller's transaction). */
static int
store_token_drop_signin(store *st, const char *rkey, char **err_r)
{
	sqlite3_stmt *q = store_prep(st, "DELETE FROM oauth_access WHERE rkey = ?1", err_r);

	return q == NULL ? -1 :
	       store_run(st, q, sqlite3_bind_text(q, 1, rkey, -1, SQLITE_STATIC) == SQLITE_OK,
			 err_r, "sign-in drop");
}

/* Set the sign-in's row and drop the access tokens it gave. */
static int
store_token_refresh_set(store *st, const char *rkey, const char *refresh, int needs,
			const char *reason, long long now, char **err_r)
{
	sqlite3_stmt *q;
	int own, ok;

	if (rkey == NULL) {
		store_errf(err_r, "%s: invalid sign-in", st->path);
		return -1;
	}
	if (st->readonly)
		return 0;
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	q = store_prep(st, "INSERT OR REPLACE INTO oauth_refresh (key, refresh_token,"
		       " needs_signin, reason, updated) VALUES (?1, ?2, ?3, ?4, ?5)", err_r);
	ok = q != NULL &&
	     store_run(st, q,
		       sqlite3_bind_text(q, 1, rkey, -1, SQLITE_STATIC) == SQLITE_OK &&
		       sqlite3_bind_text(q, 2, refresh, -1, SQLITE_STATIC) == SQLITE_OK &&
		       sqlite3_bind_int(q, 3, needs) == SQLITE_OK &&
		       sqlite3_bind_text(q, 4, reason, -1, SQLITE_STATIC) == SQLITE_OK &&
		       sqlite3_bind_int64(q, 5, (sqlite3_int64)now) == SQLITE_OK,
		       err_r, "sign-in put") == 0;
	ok = ok && store_token_drop_signin(st, rkey, err_r) == 0;
	return store_tx_end(st, own, ok, err_r);
}

int
store_token_signed_in(store *st, const char *rkey, const char *refresh, long long now,
		      char **err_r)
{
	if (refresh == NULL) {
		store_errf(err_r, "%s: no refresh token", st->path);
		return -1;
	}
	return store_token_refresh_set(st, rkey, refresh, 0, NULL, now, err_r);
}

int
store_token_needs_signin(store *st, const char *rkey, const char *refused, const char *reason,
			 long long now, char **err_r)
{
	sqlite3_stmt *q;
	int own, ok, changed = 0;

	if (reason == NULL)
		reason = "sign-in needed";
	if (refused == NULL)
		return store_token_refresh_set(st, rkey, NULL, 1, reason, now, err_r);
	if (rkey == NULL) {
		store_errf(err_r, "%s: invalid sign-in", st->path);
		return -1;
	}
	if (st->readonly)
		return 0;
	/* Only the refresh token that was refused: another process (POP3 and
	 * SMTP share a sign-in) may have rotated it meanwhile, and the new one
	 * must not be thrown away. */
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	q = store_prep(st, "UPDATE oauth_refresh SET refresh_token = NULL, needs_signin = 1,"
		       " reason = ?3, updated = ?4 WHERE key = ?1 AND refresh_token = ?2", err_r);
	ok = q != NULL &&
	     store_run(st, q,
		       sqlite3_bind_text(q, 1, rkey, -1, SQLITE_STATIC) == SQLITE_OK &&
		       sqlite3_bind_text(q, 2, refused, -1, SQLITE_STATIC) == SQLITE_OK &&
		       sqlite3_bind_text(q, 3, reason, -1, SQLITE_STATIC) == SQLITE_OK &&
		       sqlite3_bind_int64(q, 4, (sqlite3_int64)now) == SQLITE_OK,
		       err_r, "sign-in refused") == 0;
	if (ok && (changed = sqlite3_changes(st->db) > 0))
		ok = store_token_drop_signin(st, rkey, err_r) == 0;
	if (store_tx_end(st, own, ok, err_r) < 0)
		return -1;
	return changed ? 0 : 1;
}

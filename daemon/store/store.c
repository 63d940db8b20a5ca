/* mailmill - ISC licence, see LICENSE */
/*
 * The store's core: opening and closing, transactions, and the one cache of
 * prepared statements every other file of daemon/store/ uses.
 */
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

#include "daemon/store/store_int.h"
#include "proto/err.h"

#define STORE_FILE "mailmill.db"
#define STORE_BUSY_MS 10000

int
store_fail(store *st, char **err_r, const char *what)
{
	err_set(err_r, "%s: %s: %s", st->path, what,
		st->db != NULL ? sqlite3_errmsg(st->db) : "no database");
	return -1;
}

int
store_exec(store *st, const char *sql, char **err_r)
{
	char *msg = NULL;

	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		err_set(err_r, "%s: %s", st->path, msg != NULL ? msg : sqlite3_errmsg(st->db));
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
	if (st->pg != NULL)
		return pgs_durability(st, full, err_r);
	return store_exec(st, full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
			  err_r);
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
		err_set(err_r, "state_dir %s: cannot create: %s", state_dir, strerror(errno));
		return -1;
	}
	if (stat(state_dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		err_set(err_r, "state_dir %s: not a directory", state_dir);
		return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		err_set(err_r, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) == 0 && sb.st_size == 0 && fchmod(fd, 0600) < 0) {
		err_set(err_r, "%s: chmod: %s", path, strerror(errno));
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
		err_set(err_r, "%s: cannot switch to WAL journal mode", st->path);
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

int
store_open(const char *state_dir, int readonly, store **st_r, char **err_r)
{
	store *st;
	int flags, v;

	*st_r = NULL;
	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		err_set(err_r, "out of memory");
		return -1;
	}
	st->readonly = readonly;
	size_t n = strlen(state_dir) + sizeof("/" STORE_FILE);
	if ((st->path = malloc(n)) == NULL) {
		free(st);
		err_set(err_r, "out of memory");
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
		if (v != store_schema_version()) {
			if (v == 0) {  /* created but never migrated: empty */
				sqlite3_close(st->db);
				st->db = NULL;
				*st_r = st;
				return 0;
			}
			err_set(err_r, "%s: schema version %d, this mailmill needs %d; a dry run "
				"does not upgrade it, a normal run does", st->path, v,
				store_schema_version());
			goto fail;
		}
	} else if (store_migrate(st, err_r) < 0) {
		goto fail;
	}
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
	pgs_close(st);
	if (st->in_tx && st->db != NULL)
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
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

/* Run sql, a literal statement without parameters or rows. */
static int
store_step(store *st, const char *sql, char **err_r, const char *what)
{
	sqlite3_stmt *q = store_prep(st, sql, err_r);

	return q == NULL ? -1 : store_run(st, q, 1, err_r, what);
}

int
store_begin(store *st, char **err_r)
{
	if (st->in_tx) {
		err_set(err_r, "%s: a transaction is already open", st->path);
		return -1;
	}
	/* IMMEDIATE: the write lock now, not at the first write, so that a
	 * busy database waits here (busy_timeout) instead of failing later. */
	if (!st->readonly && (st->pg != NULL ? pgs_begin(st, err_r) :
			      store_step(st, "BEGIN IMMEDIATE", err_r, "begin")) < 0)
		return -1;
	st->in_tx = 1;
	return 0;
}

int
store_commit(store *st, char **err_r)
{
	if (!st->in_tx) {
		err_set(err_r, "%s: commit without a transaction", st->path);
		return -1;
	}
	if (!st->readonly && st->pg != NULL) {
		int rc = pgs_commit(st, err_r);

		st->in_tx = 0;   /* committed or rolled back: over either way */
		return rc;
	}
	if (!st->readonly && store_step(st, "COMMIT", err_r, "commit") < 0) {
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
	if (!st->readonly && st->pg != NULL)
		pgs_rollback(st);
	else if (!st->readonly && !sqlite3_get_autocommit(st->db))
		store_step(st, "ROLLBACK", NULL, "rollback");
	st->in_tx = 0;
}

/* Run a write inside the caller's transaction, or in one of its own. */
int
store_tx_begin(store *st, int *own, char **err_r)
{
	*own = !st->in_tx;
	return *own ? store_begin(st, err_r) : 0;
}

int
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

/*
 * A statement for sql, a string literal: the cached one when it is free, else
 * prepared now (and cached if there is room).  Give it back with
 * store_release, never sqlite3_finalize.
 */
sqlite3_stmt *
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
void
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
int
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

const char *
store_col(sqlite3_stmt *q, int i)
{
	return (const char *)sqlite3_column_text(q, i);
}

const char *
store_path(const store *st)
{
	return st->path;
}

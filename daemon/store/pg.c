/* mailmill - ISC licence, see LICENSE */
/*
 * The PostgreSQL backend's connection: connecting (libpq, the password from
 * password_file, TLS as libpq's sslmode/sslrootcert say), statements,
 * transactions, durability, and connecting again after a loss.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/store/pg_int.h"
#include "proto/err.h"

void
pgs_s(pgs_args *a, const char *s)
{
	if (a->n >= PGS_ARGS_MAX)
		return;
	a->v[a->n] = s;
	a->len[a->n] = 0;
	a->fmt[a->n++] = 0;
}

void
pgs_i(pgs_args *a, long long v)
{
	if (a->n >= PGS_ARGS_MAX)
		return;
	snprintf(a->num[a->n], sizeof(a->num[a->n]), "%lld", v);
	pgs_s(a, a->num[a->n]);
}

void
pgs_b(pgs_args *a, const void *p, size_t n)
{
	if (a->n >= PGS_ARGS_MAX || n > INT32_MAX)
		return;
	a->v[a->n] = p;
	a->len[a->n] = (int)n;
	a->fmt[a->n++] = 1;
}

const char *
pgs_str(const PGresult *r, int i, int col)
{
	return PQgetisnull(r, i, col) ? NULL : PQgetvalue(r, i, col);
}

long long
pgs_ll(const PGresult *r, int i, int col)
{
	const char *v = pgs_str(r, i, col);

	return v != NULL ? strtoll(v, NULL, 10) : 0;
}

char *
pgs_dup(const PGresult *r, int i, int col, int *oom)
{
	const char *v = pgs_str(r, i, col);
	char *d;

	if (v == NULL)
		return NULL;
	if ((d = strdup(v)) == NULL)
		*oom = 1;
	return d;
}

/* The server's words without libpq's trailing newline. */
static void
pgs_fail(store *st, char **err_r, const char *what, const char *msg)
{
	size_t n = msg != NULL ? strlen(msg) : 0;

	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		n--;
	err_set(err_r, "%s: %s: %s%.*s", st->path, what,
		st->pg->conn != NULL && PQstatus(st->pg->conn) == CONNECTION_BAD ?
		"connection lost: " : "", (int)n, msg != NULL ? msg : "");
}

/* The server's notices ("relation already exists, skipping") are not ours
 * to print on stderr. */
static void
pgs_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static void
pgs_cache_clear(struct pgs *pg)
{
	memset(pg->cache, 0, sizeof(pg->cache));
}

/*
 * The startup packet's options: every commit waits for the WAL flush (the
 * journal is the durability point of a run), whatever the server's default
 * says, on every connection including one made again after a loss, and
 * without a statement of its own.  The conninfo's own options follow ours.
 * NULL: out of memory.
 */
static char *
pgs_options(const char *conninfo)
{
	static const char ours[] = "-c synchronous_commit=on";
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	const char *theirs = NULL;
	char *o;

	for (PQconninfoOption *c = opts; c != NULL && c->keyword != NULL; c++)
		if (strcmp(c->keyword, "options") == 0 && c->val != NULL && c->val[0] != '\0')
			theirs = c->val;
	o = theirs != NULL ? err_fmt("%s %s", ours, theirs) : strdup(ours);
	PQconninfoFree(opts);
	return o;
}

static int
pgs_connect(store *st, char **err_r)
{
	struct pgs *pg = st->pg;
	const char *kw[16], *val[16];
	char *options;
	int n = 0;

	/* Defaults the conninfo may override (it comes after them): a server
	 * that vanished without closing the connection (a partition, a host
	 * gone) is noticed in about a minute, not when the run's deadline
	 * kills the worker. */
	kw[n] = "application_name"; val[n++] = "mailmill";
	kw[n] = "connect_timeout"; val[n++] = "10";
	kw[n] = "keepalives_idle"; val[n++] = "30";
	kw[n] = "keepalives_interval"; val[n++] = "10";
	kw[n] = "keepalives_count"; val[n++] = "3";
	kw[n] = "tcp_user_timeout"; val[n++] = "60000";
	kw[n] = "dbname"; val[n++] = pg->conninfo;      /* expanded: the whole conninfo */
	/* What the configuration says in keys of their own comes last. */
	if (pg->password != NULL) {
		kw[n] = "password"; val[n++] = pg->password;
	}
	if (pg->sslmode != NULL) {
		kw[n] = "sslmode"; val[n++] = pg->sslmode;
	}
	if (pg->sslrootcert != NULL) {
		kw[n] = "sslrootcert"; val[n++] = pg->sslrootcert;
	}
	if ((options = pgs_options(pg->conninfo)) == NULL) {
		err_set(err_r, "%s: out of memory", st->path);
		return -1;
	}
	kw[n] = "options"; val[n++] = options;
	kw[n] = NULL; val[n] = NULL;
	if (pg->conn != NULL)
		PQfinish(pg->conn);
	pgs_cache_clear(pg);
	pg->sync_off = 0;
	pg->conn = PQconnectdbParams(kw, val, 1);
	free(options);
	if (pg->conn == NULL) {
		err_set(err_r, "%s: out of memory", st->path);
		return -1;
	}
	if (PQstatus(pg->conn) != CONNECTION_OK) {
		pgs_fail(st, err_r, "cannot connect", PQerrorMessage(pg->conn));
		return -1;
	}
	PQsetNoticeProcessor(pg->conn, pgs_notice, NULL);
	return 0;
}

int
pgs_ready(store *st, char **err_r)
{
	struct pgs *pg = st->pg;

	if (pg->conn != NULL && PQstatus(pg->conn) == CONNECTION_OK)
		return 0;
	if (st->in_tx) {
		err_set(err_r, "%s: connection lost inside a transaction: nothing of it was "
			"committed", st->path);
		return -1;
	}
	return pgs_connect(st, err_r);
}

/* The statement name of sql on this connection, prepared on its second
 * run; NULL: run it unprepared (its first run, no room, or it failed). */
static const char *
pgs_prepared(store *st, const char *sql, const pgs_args *a, char *name, size_t size)
{
	struct pgs *pg = st->pg;
	struct pgs_cached *c = NULL;
	PGresult *r;
	int ok;

	for (int i = 0; i < PGS_CACHE_MAX && c == NULL; i++) {
		if (pg->cache[i].sql == sql || pg->cache[i].sql == NULL)
			c = &pg->cache[i];
	}
	if (c == NULL)
		return NULL;
	snprintf(name, size, "mm%d", (int)(c - pg->cache));
	if (c->prepared)
		return name;
	if (c->sql == NULL) {
		c->sql = sql;   /* seen once */
		return NULL;
	}
	r = PQprepare(pg->conn, name, sql, a != NULL ? a->n : 0, NULL);
	ok = r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (!ok)
		return NULL;   /* the plain run says why */
	c->prepared = 1;
	return name;
}

PGresult *
pgs_exec(store *st, const char *sql, const pgs_args *a, const char *what, char **err_r)
{
	static const pgs_args none;
	char name[16];
	const char *stmt;
	PGresult *r;

	if (pgs_ready(st, err_r) < 0)
		return NULL;
	if (a == NULL)
		a = &none;
	stmt = pgs_prepared(st, sql, a, name, sizeof(name));
	if (stmt != NULL)
		r = PQexecPrepared(st->pg->conn, stmt, a->n, a->v, a->len, a->fmt, 0);
	else
		r = PQexecParams(st->pg->conn, sql, a->n, NULL, a->v, a->len, a->fmt, 0);
	if (r == NULL || (PQresultStatus(r) != PGRES_COMMAND_OK &&
			  PQresultStatus(r) != PGRES_TUPLES_OK)) {
		pgs_fail(st, err_r, what, r != NULL ? PQresultErrorMessage(r) :
			 PQerrorMessage(st->pg->conn));
		PQclear(r);
		return NULL;
	}
	return r;
}

int
pgs_cmd(store *st, const char *sql, const pgs_args *a, const char *what, long long *changed_r,
	char **err_r)
{
	PGresult *r = pgs_exec(st, sql, a, what, err_r);

	if (r == NULL)
		return -1;
	if (changed_r != NULL)
		*changed_r = strtoll(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return 0;
}

int
pgs_write(store *st, const char *sql, const pgs_args *a, const char *what, long long *changed_r,
	  char **err_r)
{
	int own, ok;

	/* One statement commits on its own; a fenced handle still goes
	 * through store_commit, which checks the lease first. */
	if (st->pg->fence_account == NULL && !st->in_tx)
		return pgs_cmd(st, sql, a, what, changed_r, err_r);
	if (store_tx_begin(st, &own, err_r) < 0)
		return -1;
	ok = pgs_cmd(st, sql, a, what, changed_r, err_r) == 0;
	return store_tx_end(st, own, ok, err_r);
}

/* -------------------------------------------------------------- open/close */

/* The conninfo must not carry a password: it shows in errors and logs. */
static int
pgs_conninfo_ok(const char *conninfo, char **err_r)
{
	char *why = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &why);
	int ok = opts != NULL;

	if (opts == NULL)
		err_set(err_r, "store conninfo: %s", why != NULL ? why : "out of memory");
	for (PQconninfoOption *o = opts; ok && o->keyword != NULL; o++) {
		if (strcmp(o->keyword, "password") == 0 && o->val != NULL) {
			err_set(err_r, "store conninfo: holds a password; put it in "
				"store.password_file instead");
			ok = 0;
		}
	}
	PQconninfoFree(opts);
	PQfreemem(why);
	return ok ? 0 : -1;
}

/* "postgresql://user@host:port/dbname", for messages. */
static char *
pgs_label(const char *conninfo)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	const char *host = NULL, *port = NULL, *db = NULL, *user = NULL;
	char *label = NULL;

	for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++) {
		if (strcmp(o->keyword, "host") == 0) host = o->val;
		else if (strcmp(o->keyword, "port") == 0) port = o->val;
		else if (strcmp(o->keyword, "dbname") == 0) db = o->val;
		else if (strcmp(o->keyword, "user") == 0) user = o->val;
	}
	size_t n = sizeof("postgresql://@:/") + (user != NULL ? strlen(user) : 0) +
		   (host != NULL ? strlen(host) : 0) + (port != NULL ? strlen(port) : 0) +
		   (db != NULL ? strlen(db) : 0);

	if ((label = malloc(n)) != NULL)
		snprintf(label, n, "postgresql://%s%s%s%s%s/%s", user != NULL ? user : "",
			 user != NULL ? "@" : "", host != NULL ? host : "",
			 port != NULL ? ":" : "", port != NULL ? port : "", db != NULL ? db : "");
	PQconninfoFree(opts);
	return label;
}

static char *
pgs_strdup_or_null(const char *s, int *oom)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		*oom = 1;
	return d;
}

int
pgs_open(store *st, const char *conninfo, const char *password, const char *sslmode,
	 const char *sslrootcert, char **err_r)
{
	struct pgs *pg;
	int oom = 0;

	if (conninfo == NULL || pgs_conninfo_ok(conninfo, err_r) < 0) {
		if (conninfo == NULL)
			err_set(err_r, "store: driver \"postgresql\" needs a conninfo");
		return -1;
	}
	if ((pg = calloc(1, sizeof(*pg))) == NULL) {
		err_set(err_r, "out of memory");
		return -1;
	}
	st->pg = pg;
	pg->conninfo = pgs_strdup_or_null(conninfo, &oom);
	pg->password = pgs_strdup_or_null(password, &oom);
	pg->sslmode = pgs_strdup_or_null(sslmode, &oom);
	pg->sslrootcert = pgs_strdup_or_null(sslrootcert, &oom);
	st->path = pgs_label(conninfo);
	if (oom || st->path == NULL) {
		err_set(err_r, "out of memory");
		return -1;
	}
	if (pgs_connect(st, err_r) < 0)
		return -1;
	return pgs_migrate(st, err_r);
}

void
pgs_close(store *st)
{
	struct pgs *pg = st->pg;

	if (pg == NULL)
		return;
	if (pg->conn != NULL && PQstatus(pg->conn) == CONNECTION_OK) {
		if (st->in_tx)
			PQclear(PQexec(pg->conn, "ROLLBACK"));
		/* Outbox rows this handle claimed and did not finish: free for
		 * the next flush now rather than when the claim expires. */
		if (pg->claim_owner != NULL && !st->readonly) {
			pgs_args a = { 0 };

			pgs_s(&a, pg->claim_owner);
			PQclear(PQexecParams(pg->conn, "UPDATE outbox SET claim_owner = NULL,"
					     " claim_until = 0 WHERE claim_owner = $1", 1, NULL,
					     a.v, a.len, a.fmt, 0));
		}
	}
	if (pg->conn != NULL)
		PQfinish(pg->conn);
	if (pg->password != NULL) {
		explicit_bzero(pg->password, strlen(pg->password));
		free(pg->password);
	}
	free(pg->conninfo);
	free(pg->sslmode);
	free(pg->sslrootcert);
	free(pg->fence_account);
	free(pg->fence_owner);
	free(pg->claim_owner);
	free(pg);
	st->pg = NULL;
}

/* ----------------------------------------------------------- transactions */

int
pgs_begin(store *st, char **err_r)
{
	return pgs_cmd(st, "BEGIN", NULL, "begin", NULL, err_r);
}

int
pgs_commit(store *st, char **err_r)
{
	if (st->pg->fence_account != NULL && pgs_fence_check(st, err_r) < 0) {
		pgs_rollback(st);
		return -1;
	}
	if (pgs_cmd(st, "COMMIT", NULL, "commit", NULL, err_r) < 0) {
		/* A failed COMMIT ended the transaction (or the connection). */
		pgs_rollback(st);
		return -1;
	}
	return 0;
}

void
pgs_rollback(store *st)
{
	struct pgs *pg = st->pg;

	if (pg->conn != NULL && PQstatus(pg->conn) == CONNECTION_OK)
		PQclear(PQexec(pg->conn, "ROLLBACK"));
}

/*
 * full = 0: commits return before the server flushed them (synchronous_commit
 * off): a crash of the database server may lose the last moments of marks,
 * never corrupt anything.  The same reasoning as SQLite's NORMAL: for the
 * outbox's sent marks, where that costs a duplicate reply at worst.
 */
int
pgs_durability(store *st, int full, char **err_r)
{
	struct pgs *pg = st->pg;

	/* A connection made again after a loss starts "on" (pgs_options). */
	if (pg->conn != NULL && PQstatus(pg->conn) == CONNECTION_OK && pg->sync_off == !full)
		return 0;
	if (pgs_cmd(st, full ? "SET synchronous_commit = on" : "SET synchronous_commit = off",
		    NULL, "synchronous_commit", NULL, err_r) < 0)
		return -1;
	pg->sync_off = !full;
	return 0;
}

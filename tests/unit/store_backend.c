/* mailmill - ISC licence, see LICENSE */
/* The store tests' backend: SQLite files, or PostgreSQL (store_backend.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "tests/unit/store_backend.h"

static const char *
tsb_conninfo(void)
{
	const char *c = getenv("MM_TEST_PG_CONNINFO");

	return c != NULL && c[0] != '\0' ? c : NULL;
}

int
tsb_pg(void)
{
	return tsb_conninfo() != NULL;
}

static void
tsb_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* A libpq connection as the test's user (the password from the file). */
static PGconn *
tsb_connect(void)
{
	const char *kw[] = { "dbname", "password", "sslmode", NULL };
	const char *pf = getenv("MM_TEST_PG_PASSFILE");
	char pw[256] = "";
	const char *val[] = { tsb_conninfo(), pw, "disable", NULL };
	PGconn *c;

	if (pf != NULL) {
		FILE *fp = fopen(pf, "r");

		if (fp == NULL || fgets(pw, sizeof(pw), fp) == NULL)
			fail_msg("MM_TEST_PG_PASSFILE %s: cannot read", pf);
		fclose(fp);
		pw[strcspn(pw, "\r\n")] = '\0';
	}
	c = PQconnectdbParams(kw, val, 1);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("PostgreSQL: %s", PQerrorMessage(c));
	PQsetNoticeProcessor(c, tsb_notice, NULL);
	return c;
}

void
tsb_sql_exec(const char *dbpath, const char *sql)
{
	if (tsb_pg()) {
		PGconn *c = tsb_connect();
		PGresult *r = PQexec(c, sql);

		if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
			fail_msg("%s: %s", sql, PQresultErrorMessage(r));
		PQclear(r);
		PQfinish(c);
		return;
	}
	sqlite3 *db;
	char *msg = NULL;

	assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(db);
}

void
tsb_reset(void)
{
	if (tsb_pg())
		tsb_sql_exec(NULL, "DROP SCHEMA public CASCADE; CREATE SCHEMA public;");
}

int
tsb_open(const char *state_dir, int readonly, store **st_r, char **err_r)
{
	store_pg_conf pc = {
		.conninfo = tsb_conninfo(), .password_file = getenv("MM_TEST_PG_PASSFILE"),
		.sslmode = "disable",
	};

	if (tsb_pg())
		return store_open_pg(&pc, readonly, st_r, err_r);
	return store_open(state_dir, readonly, st_r, err_r);
}

long long
tsb_sql_int(const char *dbpath, const char *sql)
{
	long long v = -1;

	if (tsb_pg()) {
		PGconn *c = tsb_connect();
		PGresult *r = PQexec(c, sql);

		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			fail_msg("%s: %s", sql, PQresultErrorMessage(r));
		if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
			v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		PQclear(r);
		PQfinish(c);
		return v;
	}
	sqlite3 *db;
	sqlite3_stmt *q;

	assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(q) == SQLITE_ROW)
		v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return v;
}

/* mailmill - ISC licence, see LICENSE */
#ifndef MM_TEST_STORE_BACKEND_H
#define MM_TEST_STORE_BACKEND_H
/*
 * The backend the store's unit tests run on: SQLite files in the test's
 * state directory, or PostgreSQL when MM_TEST_PG_CONNINFO names a database
 * (tests/integration/t-store-pg.sh starts a private server and runs the
 * same test programs again with it; MM_TEST_PG_PASSFILE the password file).
 * Every test that opens a store through tsb_open runs on both.
 */
#include "daemon/store/store.h"

/* 1 when the tests run on PostgreSQL. */
int tsb_pg(void);
/* PostgreSQL: an empty database (every table of ours dropped), for a test
 * that wants a fresh store.  SQLite: nothing (a new state_dir is fresh). */
void tsb_reset(void);
/* store_open(state_dir) or the PostgreSQL store. */
int tsb_open(const char *state_dir, int readonly, store **st_r, char **err_r);
/* One integer from plain SQL on what the store wrote (dbpath: the SQLite
 * file); -1 when there is no row. */
long long tsb_sql_int(const char *dbpath, const char *sql);
/* Run SQL without rows (fails the test on an error). */
void tsb_sql_exec(const char *dbpath, const char *sql);
#endif

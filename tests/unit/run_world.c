/* mailmill - ISC licence, see LICENSE */
/*
 * One account-run test's world (run_world.h).
 */
#define _GNU_SOURCE
#include <config.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <glib.h>
#include <sqlite3.h>

#include "tests/unit/run_world.h"

static int world_n;

/* A configuration whose one account runs stages; world_run sets its port. */
void
world_open(world *w, const char *top, const char *account_extra, const char *stages)
{
	char path[300], *err = NULL;
	FILE *f;

	memset(w, 0, sizeof *w);
	snprintf(w->dir, sizeof w->dir, "%s/w%d", top, ++world_n);
	assert_int_equal(mkdir(w->dir, 0700), 0);
	snprintf(path, sizeof path, "%s/mailmill.conf", w->dir);
	assert_non_null(f = fopen(path, "w"));
	fprintf(f, "state_dir = \"%s/state\";\n"
		"accounts = ( { name = \"acct\"; host = \"127.0.0.1\"; port = 110; tls = \"none\";\n"
		"  user = \"u\"; password = \"p\"; allow_plaintext_password = true; %s\n"
		"  pipeline = ( %s ); } );\n", w->dir, account_extra, stages);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, 0600), 0);
	if (cfg_load(path, &w->c, &err) < 0)
		fail_msg("cfg_load: %s", err);
	if (pipeline_build(w->c, &w->c->accounts[0], 0, &w->pl, &err) < 0)
		fail_msg("pipeline_build: %s", err);
	if (store_open(w->c->state_dir, 0, &w->st, &err) < 0)
		fail_msg("store_open: %s", err);
}

void
world_close(world *w)
{
	pipeline_free(&w->pl);
	store_close(&w->st);
	cfg_free(&w->c);
}

ledger_state
ledger_of(world *w, const char *uid)
{
	ledger_state s = LEDGER_NEW;
	char *err = NULL;

	if (store_ledger_get(w->st, "acct", uid, &s, NULL, &err) < 0)
		fail_msg("store_ledger_get: %s", err);
	return s;
}

static int
outbox_row(void *arg, const store_outbox_row *row)
{
	GString *to = arg;

	g_string_append_printf(to, "%s%s", to->len > 0 ? "," : "", row->rcpts);
	return 0;
}

/* The recipients of every queued row, oldest first, comma-separated, are want. */
void
outbox_is(world *w, const char *want)
{
	GString *to = g_string_new(NULL);
	char *err = NULL;

	if (store_outbox_list(w->st, 1U << OUTBOX_QUEUED, outbox_row, to, &err) < 0)
		fail_msg("store_outbox_list: %s", err);
	assert_string_equal(to->str, want);
	g_string_free(to, TRUE);
}

/* SQL on the store file itself, outside the store's interface: what a
 * second process would see. */
long long
sql_count(world *w, const char *sql)
{
	char path[300];
	sqlite3 *db;
	sqlite3_stmt *q;
	long long n;

	snprintf(path, sizeof path, "%s/state/mailmill.db", w->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	n = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return n;
}

void
sql_exec(world *w, const char *sql)
{
	char path[300];
	sqlite3 *db;

	snprintf(path, sizeof path, "%s/state/mailmill.db", w->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

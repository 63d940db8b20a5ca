/* mailmill - ISC licence, see LICENSE */
#ifndef MM_TEST_RUN_WORLD_H
#define MM_TEST_RUN_WORLD_H
/*
 * One account-run test's world (test_run.c, test_run_imap.c): a state
 * directory under the group's temporary directory, a configuration whose
 * one account runs the given stages, the pipeline built from it with real
 * dlopen'd plugins, and the real SQLite store; and ways to look at the
 * store afterwards, through its interface and as a second process would.
 */
#include "daemon/core/cfg.h"
#include "daemon/run/pipeline.h"
#include "daemon/run/run.h"
#include "daemon/store/store.h"

#define VERDICT_SO MM_TEST_BUILDDIR "/tests/plugins/.libs/verdict.so"
#define AUTOREPLY_SO MM_TEST_BUILDDIR "/plugins/.libs/autoreply.so"

typedef struct world {
	char dir[256];
	cfg *c;
	pipeline *pl;
	store *st;
	run_stats stats;
} world;

/* A configuration under top whose one account "acct" runs stages. */
void world_open(world *w, const char *top, const char *account_extra, const char *stages);
void world_close(world *w);
/* The journal's state of uid of "acct". */
ledger_state ledger_of(world *w, const char *uid);
/* The recipients of every queued row, oldest first, comma-separated, are want. */
void outbox_is(world *w, const char *want);
/* SQL on the store file itself: the first column of the first row. */
long long sql_count(world *w, const char *sql);
void sql_exec(world *w, const char *sql);
#endif

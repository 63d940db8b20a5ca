/* mailmill - ISC licence, see LICENSE */
/*
 * The account run and the pipeline (daemon/run/run.c, pipeline.c, api.c):
 * run_account against a scripted POP3 server (script_server.h) on loopback,
 * with real plugins (tests/plugins/verdict, plugins/autoreply) dlopen'd and
 * the real SQLite store in a temporary directory.  Each test checks what the
 * server was told (the script fails on any other command) and what the store
 * holds afterwards: verdicts and their effects commit together or not at all.
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
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>
#include <gmime/gmime.h>

#include "daemon/core/cfg.h"
#include "daemon/core/log.h"
#include "daemon/core/plugin.h"
#include "daemon/run/pipeline.h"
#include "daemon/run/run.h"
#include "daemon/store/store.h"
#include "tests/unit/script_server.h"

static char topdir[] = "/tmp/mm-test-run-XXXXXX";
#include "tests/unit/tmpdir.h"

#include "tests/unit/run_world.h"

/* One account run against the script; returns run_account's result. */
static int
world_run(world *w, const char *const *script)
{
	run_opts o = { .dry_run = 0 };
	int rc;
	script_server sv = script_server_listen(script);

	free(w->c->accounts[0].port);   /* cfg_free frees it with free() */
	w->c->accounts[0].port = strdup(sv.port);
	assert_non_null(w->c->accounts[0].port);
	rc = run_account(&w->c->accounts[0], w->pl, w->st, &o, NULL, &w->stats);
	script_server_finish(&sv);
	return rc;
}

/* ------------------------------------------------------------ the dialogue */

#define GREET ">+OK ready\r\n", "<CAPA", ">+OK\r\nUSER\r\nUIDL\r\n.\r\n", \
	"<USER u", ">+OK\r\n", "<PASS p", ">+OK logged in\r\n"

#define MSG(id, from, subject) \
	">+OK\r\nFrom: " from "\r\nTo: help@example.org\r\nSubject: " subject "\r\n" \
	"Message-ID: <" id "@example.net>\r\nDate: Fri, 04 Dec 2026 10:00:00 +0000\r\n\r\n" \
	"body of " id "\r\n.\r\n"

/* A mailbox of one message, uid u; the end of a run. */
#define LIST1(u) "<LIST", ">+OK\r\n1 200\r\n.\r\n", "<UIDL", ">+OK\r\n1 " u "\r\n.\r\n"
#define BYE "<QUIT", ">+OK bye\r\n"
/* A mailbox of three messages, uids p1, p2, p3. */
#define LIST3(p) "<LIST", ">+OK\r\n1 200\r\n2 200\r\n3 200\r\n.\r\n", \
	"<UIDL", ">+OK\r\n1 " p "1\r\n2 " p "2\r\n3 " p "3\r\n.\r\n"

/* An autoreply stage, then the stages given. */
#define REPLY_STAGE "{ plugin = \"" AUTOREPLY_SO "\"; addresses = [ \"help@example.org\" ];" \
	" from = \"help@example.org\"; body = \"Away.\"; }, "

/* Commit: verdicts and their replies in one transaction; the replies staged
 * by one message are seen by the next one in the same batch (alice writes
 * twice and is answered once); DELE only after the commit. */
static void
test_commit(void **state)
{
	static const char *const script[] = {
		GREET,
		LIST3("u"),
		"<RETR 1", MSG("m1", "alice@example.net", "one"),
		"<RETR 2", MSG("m2", "alice@example.net", "two"),
		"<RETR 3", MSG("m3", "bob@example.net", "three"),
		"<DELE 1", ">+OK\r\n", "<DELE 2", ">+OK\r\n", "<DELE 3", ">+OK\r\n",
		BYE, NULL
	};
	world w;

	(void)state;
	world_open(&w, topdir, "", REPLY_STAGE "{ plugin = \"" VERDICT_SO "\"; verdict = \"done\"; }");
	assert_int_equal(world_run(&w, script), 0);
	assert_true(run_settled(&w.stats));
	assert_int_equal(w.stats.fetched, 3);
	assert_int_equal(w.stats.deleted, 3);
	assert_int_equal(ledger_of(&w, "u1"), LEDGER_DELETED);
	assert_int_equal(ledger_of(&w, "u3"), LEDGER_DELETED);
	outbox_is(&w, "alice@example.net,bob@example.net");
	/* autoreply's per-sender record committed with the verdicts */
	assert_true(sql_count(&w, "SELECT count(*) FROM kv WHERE key LIKE '%alice@example.net%'") >= 1);
	world_close(&w);
}

/* DEFER: the message stays on the server, and what the stages before the
 * deferring one staged (a reply, a record) is dropped with it. */
static void
test_defer(void **state)
{
	static const char *const script[] = {
		GREET,
		"<LIST", ">+OK\r\n1 200\r\n2 200\r\n.\r\n",
		"<UIDL", ">+OK\r\n1 d1\r\n2 d2\r\n.\r\n",
		"<RETR 1", MSG("d1", "carol@example.net", "[hold] me"),
		"<RETR 2", MSG("d2", "dave@example.net", "fine"),
		"<DELE 2", ">+OK\r\n",
		BYE, NULL
	};
	world w;

	(void)state;
	world_open(&w, topdir, "", REPLY_STAGE
		   "{ plugin = \"" VERDICT_SO "\"; verdict = \"defer\"; subject_contains = \"[hold]\"; },"
		   "{ plugin = \"" VERDICT_SO "\"; verdict = \"done\"; }");
	assert_int_equal(world_run(&w, script), 0);
	assert_false(run_settled(&w.stats));
	assert_int_equal(w.stats.deferred, 1);
	assert_int_equal(w.stats.deleted, 1);
	assert_int_equal(ledger_of(&w, "d1"), LEDGER_NEW);
	assert_int_equal(ledger_of(&w, "d2"), LEDGER_DELETED);
	outbox_is(&w, "dave@example.net");
	assert_int_equal(sql_count(&w, "SELECT count(*) FROM kv WHERE key LIKE '%carol%'"), 0);
	world_close(&w);
}

/* FAIL: counted against the message; at max_attempts it is quarantined,
 * left on the server and not fetched again. */
static void
test_fail_quarantine(void **state)
{
	static const char *const run1[] = {
		GREET,
		LIST1("f1"),
		"<RETR 1", MSG("f1", "erin@example.net", "[bad] one"),
		BYE, NULL
	};
	static const char *const run2[] = {
		GREET,
		LIST1("f1"),
		BYE, NULL
	};
	world w;

	(void)state;
	world_open(&w, topdir, "max_attempts = 1;", REPLY_STAGE
		   "{ plugin = \"" VERDICT_SO "\"; verdict = \"fail\"; subject_contains = \"[bad]\"; }");
	assert_int_equal(world_run(&w, run1), 0);
	assert_int_equal(w.stats.failed, 1);
	assert_false(run_settled(&w.stats));
	assert_int_equal(ledger_of(&w, "f1"), LEDGER_QUARANTINE);
	outbox_is(&w, "");
	/* the second run lists it and leaves it alone (the script has no RETR) */
	assert_int_equal(world_run(&w, run2), 0);
	assert_int_equal(w.stats.fetched, 0);
	assert_int_equal(ledger_of(&w, "f1"), LEDGER_QUARANTINE);
	world_close(&w);
}

/* A commit that fails part-way (the outbox refuses the reply) rolls back
 * the verdict too: nothing recorded, nothing deleted; the next run
 * processes the message again and queues its reply once. */
static void
test_rollback(void **state)
{
	static const char *const run1[] = {
		GREET,
		LIST1("r1"),
		"<RETR 1", MSG("r1", "frank@example.net", "hello"),
		"E", NULL
	};
	static const char *const run2[] = {
		GREET,
		LIST1("r1"),
		"<RETR 1", MSG("r1", "frank@example.net", "hello"),
		"<DELE 1", ">+OK\r\n", BYE, NULL
	};
	world w;

	(void)state;
	world_open(&w, topdir, "", REPLY_STAGE "{ plugin = \"" VERDICT_SO "\"; verdict = \"done\"; }");
	sql_exec(&w, "CREATE TRIGGER t_refuse BEFORE INSERT ON outbox"
		 " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
	assert_int_equal(world_run(&w, run1), -1);
	assert_int_equal(ledger_of(&w, "r1"), LEDGER_NEW);
	assert_int_equal(sql_count(&w, "SELECT count(*) FROM outbox"), 0);
	assert_int_equal(sql_count(&w, "SELECT count(*) FROM kv"), 0);
	sql_exec(&w, "DROP TRIGGER t_refuse");
	assert_int_equal(world_run(&w, run2), 0);
	assert_int_equal(ledger_of(&w, "r1"), LEDGER_DELETED);
	outbox_is(&w, "frank@example.net");
	world_close(&w);
}

/* The server rolls the deletions back when QUIT is not answered: the next
 * run finds the message journalled and only deletes it, it does not
 * process it (nor reply) again. */
static void
test_quit_lost(void **state)
{
	static const char *const run1[] = {
		GREET,
		LIST1("q1"),
		"<RETR 1", MSG("q1", "grace@example.net", "hello"),
		"<DELE 1", ">+OK\r\n", "<QUIT", "X", NULL
	};
	static const char *const run2[] = {
		GREET,
		LIST1("q1"),
		"<DELE 1", ">+OK\r\n", BYE, NULL
	};
	world w;

	(void)state;
	world_open(&w, topdir, "", REPLY_STAGE "{ plugin = \"" VERDICT_SO "\"; verdict = \"done\"; }");
	assert_int_equal(world_run(&w, run1), -1);
	assert_int_equal(ledger_of(&w, "q1"), LEDGER_DELETE);
	assert_int_equal(world_run(&w, run2), 0);
	assert_int_equal(w.stats.fetched, 0);
	assert_int_equal(ledger_of(&w, "q1"), LEDGER_DELETED);
	outbox_is(&w, "grace@example.net");
	world_close(&w);
}

/* KEEP: journalled, left on the server, never fetched again; its reply is
 * committed with it. */
static void
test_keep(void **state)
{
	static const char *const run1[] = {
		GREET,
		LIST1("k1"),
		"<RETR 1", MSG("k1", "heidi@example.net", "keep me"),
		BYE, NULL
	};
	static const char *const run2[] = {
		GREET,
		LIST1("k1"),
		BYE, NULL
	};
	world w;

	(void)state;
	world_open(&w, topdir, "", REPLY_STAGE "{ plugin = \"" VERDICT_SO "\"; verdict = \"keep\"; }");
	assert_int_equal(world_run(&w, run1), 0);
	assert_int_equal(w.stats.kept, 1);
	assert_int_equal(ledger_of(&w, "k1"), LEDGER_KEEP);
	assert_int_equal(world_run(&w, run2), 0);
	assert_int_equal(w.stats.fetched, 0);
	outbox_is(&w, "heidi@example.net");
	world_close(&w);
}

#define FILTER_SO MM_TEST_BUILDDIR "/plugins/.libs/filter.so"

/* The pipeline: a stage's goto skips the stages between (the deferring one),
 * a header a stage adds is seen by the later ones, and a message no stage
 * decides gets the account's pipeline_end. */
static void
test_pipeline_goto(void **state)
{
	static const char *const script[] = {
		GREET,
		LIST3("g"),
		"<RETR 1", MSG("g1", "ivan@example.net", "skip [hold]"),
		"<RETR 2", MSG("g2", "judy@example.net", "stay [hold]"),
		"<RETR 3", MSG("g3", "ken@example.net", "plain"),
		"<DELE 1", ">+OK\r\n", BYE, NULL
	};
	world w;

	(void)state;
	world_open(&w, topdir, "pipeline_end = \"keep\";",
		   "{ plugin = \"" FILTER_SO "\"; rules = ("
		   "  { header = \"Subject\"; match = \"skip\"; add_header = \"X-Skip: [last]\"; },"
		   "  { header = \"Subject\"; match = \"skip\"; goto = \"last\"; } ); },"
		   "{ plugin = \"" VERDICT_SO "\"; name = \"hold\"; verdict = \"defer\";"
		   "  subject_contains = \"[hold]\"; },"
		   "{ plugin = \"" FILTER_SO "\"; name = \"last\"; rules = ("
		   "  { header = \"X-Skip\"; match = \"last\"; verdict = \"done\"; } ); }");
	assert_int_equal(world_run(&w, script), 0);
	assert_int_equal(ledger_of(&w, "g1"), LEDGER_DELETED);   /* jumped over hold, then done */
	assert_int_equal(ledger_of(&w, "g2"), LEDGER_NEW);       /* deferred */
	assert_int_equal(ledger_of(&w, "g3"), LEDGER_KEEP);      /* pipeline_end */
	assert_int_equal(w.stats.deferred, 1);
	assert_int_equal(w.stats.kept, 1);
	world_close(&w);
}

/* ----------------------------------------------------- the store on demand */

/* run_opts.open_store: the world's store, counted. */
static int lazy_opens;

static int
lazy_open(void *arg, store **st_r, char **err_r)
{
	(void)err_r;
	lazy_opens++;
	*st_r = ((world *)arg)->st;
	return 0;
}

/* One run with no store given: opened through lazy_open if the run needs
 * it; journal_empty as the daemon's lease says. */
static int
lazy_run(world *w, const char *const *script, int journal_empty)
{
	struct run_lease lease = { .owner = "test:1", .fence = 1, .ttl_s = 60,
				  .journal_empty = journal_empty };
	run_opts o = { .open_store = lazy_open, .open_store_arg = w, .lease = &lease };
	script_server sv = script_server_listen(script);
	int rc;

	free(w->c->accounts[0].port);
	w->c->accounts[0].port = strdup(sv.port);
	assert_non_null(w->c->accounts[0].port);
	lazy_opens = 0;
	rc = run_account(&w->c->accounts[0], w->pl, NULL, &o, NULL, &w->stats);
	script_server_finish(&sv);
	return rc;
}

/*
 * The store is opened only when the run needs it.  Mail: opened, the
 * verdicts committed, then DELE.  The next run's empty listing opens it once
 * more to forget those rows, and says the journal is empty; a run whose
 * daemon knows that opens nothing.  Mail again: opened, whatever the hint.
 */
static void
test_lazy_store(void **state)
{
	static const char *const mail[] = {
		GREET, LIST1("z1"), "<RETR 1", MSG("z1", "zoe@example.net", "one"),
		"<DELE 1", ">+OK\r\n", BYE, NULL
	};
	static const char *const none[] = {
		GREET, "<LIST", ">+OK\r\n.\r\n", BYE, NULL
	};
	static const char *const again[] = {
		GREET, LIST1("z2"), "<RETR 1", MSG("z2", "zoe@example.net", "two"),
		"<DELE 1", ">+OK\r\n", BYE, NULL
	};
	world w;

	(void)state;
	world_open(&w, topdir, "", "{ plugin = \"" VERDICT_SO "\"; verdict = \"done\"; }");
	assert_int_equal(lazy_run(&w, mail, 0), 0);
	assert_int_equal(lazy_opens, 1);
	assert_int_equal(w.stats.deleted, 1);
	assert_int_equal(w.stats.journal_empty, 0);
	assert_int_equal(ledger_of(&w, "z1"), LEDGER_DELETED);
	/* empty, no hint: the row of the deleted message is forgotten */
	assert_int_equal(lazy_run(&w, none, 0), 0);
	assert_int_equal(lazy_opens, 1);
	assert_int_equal(w.stats.journal_empty, 1);
	assert_int_equal(sql_count(&w, "SELECT count(*) FROM ledger"), 0);
	/* empty, known empty: no store at all */
	assert_int_equal(lazy_run(&w, none, 1), 0);
	assert_int_equal(lazy_opens, 0);
	assert_int_equal(w.stats.journal_empty, 1);
	assert_true(run_settled(&w.stats));
	/* mail: the hint does not matter */
	assert_int_equal(lazy_run(&w, again, 1), 0);
	assert_int_equal(lazy_opens, 1);
	assert_int_equal(w.stats.fetched, 1);
	assert_int_equal(w.stats.journal_empty, 0);
	assert_int_equal(ledger_of(&w, "z2"), LEDGER_DELETED);
	world_close(&w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commit),
		cmocka_unit_test(test_defer),
		cmocka_unit_test(test_fail_quarantine),
		cmocka_unit_test(test_rollback),
		cmocka_unit_test(test_quit_lost),
		cmocka_unit_test(test_keep),
		cmocka_unit_test(test_pipeline_goto),
		cmocka_unit_test(test_lazy_store),
	};
	int rc;

	g_mime_init();
	log_open("stderr", getenv("MM_TEST_VERBOSE") != NULL ? LOG_LVL_DEBUG : LOG_LVL_ERROR);
	rc = cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
	plugin_unload_all();
	g_mime_shutdown();
	return rc;
}

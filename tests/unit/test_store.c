/* mailmill - ISC licence, see LICENSE */
/*
 * The store against real SQLite files in a temporary directory, or a real
 * PostgreSQL database (tests/unit/store_backend.h); what it wrote is checked
 * both through its own functions and with plain SQL.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "daemon/store/store.h"
#include "tests/unit/store_backend.h"

static char tmpdir[256];
static char statedir[512];
static char dbpath[600];
static int case_no;

/* A fresh state directory (not yet created) for every test. */
static int
setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/mm-test-store.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static int
each_setup(void **state)
{
	case_no++;
	/* Two levels: store_open creates missing parents too. */
	snprintf(statedir, sizeof(statedir), "%s/var%d/mailmill", tmpdir, case_no);
	snprintf(dbpath, sizeof(dbpath), "%s/mailmill.db", statedir);
	tsb_reset();
	return 0;
}

static store *
open_rw(void)
{
	store *st = NULL;
	char *err = NULL;

	if (tsb_open(statedir, 0, &st, &err) < 0)
		fail_msg("store_open: %s", err);
	assert_non_null(st);
	return st;
}

/* One integer from plain SQL on the file, outside the store. */
static long long
sql_int(const char *sql)
{
	return tsb_sql_int(dbpath, sql);
}

static void
put(store *st, const char *account, const char *uid, ledger_state s)
{
	store_record r = { .account = account, .uid = uid, .state = s, .size = 1234,
			   .message_id = "<m@x>", .stage = "archive", .verdict = "done" };
	char *err = NULL;

	if (store_ledger_put(st, &r, &err) < 0)
		fail_msg("put %s/%s: %s", account, uid, err);
}

/* What store_ledger_load reported, as "uid=state/attempts" sorted. */
struct rows { char line[64][48]; int n; };

static void
collect(void *arg, const char *uid, ledger_state s, int attempts)
{
	struct rows *r = arg;

	assert_true(r->n < 64);
	snprintf(r->line[r->n++], sizeof(r->line[0]), "%s=%s/%d", uid, ledger_state_name(s),
		 attempts);
}

static int
cmp_line(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Load the account and compare with the expected lines (any order). */
static void
expect_rows(store *st, const char *account, const char *const *want, int n)
{
	struct rows r = { .n = 0 };
	char *err = NULL;

	if (store_ledger_load(st, account, collect, &r, &err) < 0)
		fail_msg("load: %s", err);
	qsort(r.line, (size_t)r.n, sizeof(r.line[0]), cmp_line);
	if (r.n != n)
		fail_msg("%s: %d rows, want %d (first: %s)", account, r.n, n, r.n ? r.line[0] : "-");
	for (int i = 0; i < n; i++)
		assert_string_equal(r.line[i], want[i]);
}

static void
test_create(void **state)
{
	struct stat sb;
	store *st = open_rw();

	if (tsb_pg()) {
		assert_string_equal(store_driver(st), "postgresql");
		assert_int_equal(sql_int("SELECT count(*) FROM ledger"), 0);
		assert_true(sql_int("SELECT version FROM mailmill_schema") >= 1);
		expect_rows(st, "a", NULL, 0);
		store_close(&st);
		st = open_rw();   /* a second open finds the schema made */
		store_close(&st);
		return;
	}
	assert_string_equal(store_driver(st), "sqlite");
	assert_int_equal(stat(statedir, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	assert_int_equal(sb.st_mode & 0777, 0700);
	/* The directory already there is fine too. */
	store_close(&st);
	st = open_rw();
	assert_int_equal(stat(dbpath, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_string_equal(store_path(st), dbpath);
	assert_true(store_schema_version() >= 1);
	assert_int_equal(sql_int("PRAGMA user_version"), store_schema_version());
	assert_int_equal(sql_int("SELECT count(*) FROM ledger"), 0);
	/* WAL is a property of the file: any connection sees it. */
	sqlite3 *db;
	sqlite3_stmt *q;
	assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
	sqlite3_finalize(q);
	sqlite3_close(db);
	expect_rows(st, "a", NULL, 0);
	store_close(&st);
	assert_null(st);
}

static void
test_put_load(void **state)
{
	static const char *const want_a[] = { "u1=delete/0", "u2=keep/0", "u3=quarantine/0" };
	static const char *const want_b[] = { "u1=keep/0" };
	char *err = NULL;
	store *st = open_rw();

	assert_int_equal(store_begin(st, &err), 0);
	put(st, "a", "u1", LEDGER_DELETE);
	put(st, "a", "u2", LEDGER_KEEP);
	put(st, "a", "u3", LEDGER_QUARANTINE);
	put(st, "b", "u1", LEDGER_KEEP);
	assert_int_equal(store_commit(st, &err), 0);
	expect_rows(st, "a", want_a, 3);
	expect_rows(st, "b", want_b, 1);
	expect_rows(st, "c", NULL, 0);
	assert_int_equal(sql_int("SELECT size FROM ledger WHERE account='a' AND uid='u1'"), 1234);
	assert_int_equal(sql_int("SELECT count(*) FROM ledger WHERE message_id='<m@x>' AND "
				 "stage='archive' AND verdict='done' AND created > 0 AND "
				 "updated >= created"), 4);

	/* A second verdict replaces the first (still one row). */
	put(st, "a", "u2", LEDGER_DELETE);
	assert_int_equal(sql_int("SELECT state FROM ledger WHERE account='a' AND uid='u2'"),
			 LEDGER_DELETE);
	assert_int_equal(sql_int("SELECT count(*) FROM ledger"), 4);

	/* Bad input is refused, not stored. */
	store_record bad = { .account = "a", .uid = "u9", .state = (ledger_state)7 };
	assert_int_equal(store_ledger_put(st, &bad, &err), -1);
	assert_non_null(strstr(err, "invalid ledger record"));
	free(err);
	store_close(&st);
}

static void
test_transactions(void **state)
{
	char *err = NULL;
	store *st = open_rw();

	assert_int_equal(store_begin(st, &err), 0);
	put(st, "a", "gone", LEDGER_DELETE);
	store_rollback(st);
	expect_rows(st, "a", NULL, 0);

	assert_int_equal(store_commit(st, &err), -1);
	assert_non_null(strstr(err, "without a transaction"));
	free(err);
	assert_int_equal(store_begin(st, &err), 0);
	assert_int_equal(store_begin(st, &err), -1);
	assert_non_null(strstr(err, "already open"));
	free(err);
	put(st, "a", "kept", LEDGER_KEEP);
	assert_int_equal(store_commit(st, &err), 0);
	assert_int_equal(sql_int("SELECT count(*) FROM ledger"), 1);
	store_close(&st);
}

static void
test_mark_deleted(void **state)
{
	static const char *const want[] = { "u1=deleted/0", "u2=keep/0", "u3=deleted/0" };
	const char *uids[] = { "u1", "u3", "never-seen" };
	char *err = NULL;
	store *st = open_rw();

	put(st, "a", "u1", LEDGER_DELETE);
	put(st, "a", "u2", LEDGER_KEEP);
	put(st, "a", "u3", LEDGER_DELETE);
	put(st, "b", "u1", LEDGER_DELETE);
	assert_int_equal(store_ledger_mark_deleted(st, "a", uids, 3, &err), 0);
	expect_rows(st, "a", want, 3);
	assert_int_equal(sql_int("SELECT state FROM ledger WHERE account='b'"), LEDGER_DELETE);
	/* Inside the caller's transaction it joins it: a rollback undoes it. */
	assert_int_equal(store_begin(st, &err), 0);
	assert_int_equal(store_ledger_mark_deleted(st, "b", uids, 1, &err), 0);
	store_rollback(st);
	assert_int_equal(sql_int("SELECT state FROM ledger WHERE account='b'"), LEDGER_DELETE);
	store_close(&st);
}

static void
test_mark_all_deleted(void **state)
{
	static const char *const want[] = { "u1=deleted/0", "u2=keep/0", "u3=deleted/0",
					    "u4=deleted/0", "u5=quarantine/0" };
	char *err = NULL;
	store *st = open_rw();

	(void)state;
	put(st, "a", "u1", LEDGER_DELETE);
	put(st, "a", "u2", LEDGER_KEEP);
	put(st, "a", "u3", LEDGER_DELETE);
	put(st, "a", "u4", LEDGER_DELETED);
	put(st, "a", "u5", LEDGER_QUARANTINE);
	put(st, "b", "u1", LEDGER_DELETE);
	assert_int_equal(store_ledger_mark_all_deleted(st, "a", &err), 0);
	expect_rows(st, "a", want, 5);
	/* Another account's rows waiting for deletion stay so. */
	assert_int_equal(sql_int("SELECT state FROM ledger WHERE account='b'"), LEDGER_DELETE);
	store_close(&st);
}

static void
test_fail(void **state)
{
	char *err = NULL, longerr[3000];
	ledger_state s = LEDGER_KEEP;
	int attempts = 0;
	store *st = open_rw();

	assert_int_equal(store_ledger_get(st, "a", "u1", &s, &attempts, &err), 0);
	assert_int_equal(store_ledger_fail(st, "a", "u1", "plugin crashed", &attempts, &err), 0);
	assert_int_equal(attempts, 1);
	memset(longerr, 'e', sizeof(longerr) - 1);
	longerr[sizeof(longerr) - 1] = '\0';
	assert_int_equal(store_ledger_fail(st, "a", "u1", longerr, &attempts, &err), 0);
	assert_int_equal(attempts, 2);
	assert_int_equal(store_ledger_get(st, "a", "u1", &s, &attempts, &err), 1);
	assert_int_equal(s, LEDGER_NEW);
	assert_int_equal(attempts, 2);
	assert_int_equal(sql_int("SELECT length(last_error) FROM ledger"), 1000);

	/* A verdict later keeps the count; the count goes on from there. */
	put(st, "a", "u1", LEDGER_QUARANTINE);
	static const char *const want[] = { "u1=quarantine/2" };
	expect_rows(st, "a", want, 1);
	assert_int_equal(store_ledger_fail(st, "a", "u1", NULL, &attempts, &err), 0);
	assert_int_equal(attempts, 3);
	assert_int_equal(store_ledger_fail(st, "b", "u1", "x", &attempts, &err), 0);
	assert_int_equal(attempts, 1);
	store_close(&st);
}

/* What store_quarantine_list reported: "account/uid <message-id> attempts". */
static void
collect_quarantine(void *arg, const store_quarantine_row *q)
{
	struct rows *r = arg;

	assert_true(r->n < 64);
	snprintf(r->line[r->n++], sizeof(r->line[0]), "%s/%s <%s> %d", q->account, q->uid,
		 q->message_id != NULL ? q->message_id : "", q->attempts);
}

/* A failed message's Message-ID is kept for --status; --release makes it
 * new again with no attempts, and only a quarantined message is released. */
static void
test_quarantine_release(void **state)
{
	struct rows r = { .n = 0 };
	char *err = NULL;
	int attempts = 0;
	store *st = open_rw();

	assert_int_equal(store_ledger_note(st, "a", "u1", "stuck@x", &err), 0);
	assert_int_equal(store_ledger_fail(st, "a", "u1", "stage failed", &attempts, &err), 0);
	assert_int_equal(attempts, 1);
	assert_int_equal(store_ledger_note(st, "a", "u1", "stuck@x", &err), 0);
	assert_int_equal(store_ledger_fail(st, "a", "u1", "stage failed", &attempts, &err), 0);
	assert_int_equal(attempts, 2);
	assert_int_equal(store_ledger_quarantine(st, "a", "u1", &err), 0);
	put(st, "a", "u2", LEDGER_KEEP);
	assert_int_equal(store_quarantine_list(st, NULL, collect_quarantine, &r, &err), 0);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.line[0], "a/u1 <stuck@x> 2");
	assert_int_equal(sql_int("SELECT count(*) FROM ledger WHERE verdict = 'quarantine'"), 1);

	assert_int_equal(store_quarantine_release(st, "a", "u2", &err), 0);  /* kept, not quarantined */
	assert_int_equal(store_quarantine_release(st, "b", "u1", &err), 0);  /* another account */
	assert_int_equal(store_quarantine_release(st, "a", "u1", &err), 1);
	assert_int_equal(store_quarantine_release(st, "a", "u1", &err), 0);  /* once */
	static const char *const want[] = { "u1=new/0", "u2=keep/0" };
	expect_rows(st, "a", want, 2);
	assert_int_equal(sql_int("SELECT count(*) FROM ledger WHERE uid = 'u1' AND"
				 " last_error IS NULL AND verdict IS NULL"), 1);
	/* A note on a decided row changes only its Message-ID. */
	assert_int_equal(store_ledger_note(st, "a", "u2", "other@x", &err), 0);
	static const char *const want2[] = { "u1=new/0", "u2=keep/0" };
	expect_rows(st, "a", want2, 2);
	store_close(&st);
}

static void
test_forget(void **state)
{
	static const char *const want_a[] = { "u2=keep/0", "u4=new/1" };
	static const char *const want_b[] = { "u1=keep/0", "u3=keep/0" };
	const char *gone[] = { "u1", "u3", "u9" };
	char *err = NULL;
	int attempts;
	store *st = open_rw();

	put(st, "a", "u1", LEDGER_DELETED);
	put(st, "a", "u2", LEDGER_KEEP);
	put(st, "a", "u3", LEDGER_DELETE);
	assert_int_equal(store_ledger_fail(st, "a", "u4", "x", &attempts, &err), 0);
	put(st, "b", "u1", LEDGER_KEEP);
	put(st, "b", "u3", LEDGER_KEEP);
	/* Only the account's own rows go; an unknown uid is no error. */
	assert_int_equal(store_ledger_forget(st, "a", gone, 3, &err), 0);
	expect_rows(st, "a", want_a, 2);
	expect_rows(st, "b", want_b, 2);
	assert_int_equal(store_ledger_forget(st, "b", gone, 0, &err), 0);
	expect_rows(st, "b", want_b, 2);
	store_close(&st);
}

static void
test_reopen(void **state)
{
	static const char *const want[] = { "u1=delete/0", "u2=keep/1" };
	char *err = NULL;
	int attempts;
	store *st = open_rw();

	put(st, "a", "u1", LEDGER_DELETE);
	put(st, "a", "u2", LEDGER_KEEP);
	assert_int_equal(store_ledger_fail(st, "a", "u2", "x", &attempts, &err), 0);
	store_close(&st);
	st = open_rw();
	expect_rows(st, "a", want, 2);
	store_close(&st);
	if (!tsb_pg())
		assert_int_equal(sql_int("PRAGMA user_version"), store_schema_version());
}

static void
test_readonly_missing(void **state)
{
	struct rows r = { .n = 0 };
	store_record rec = { .account = "a", .uid = "u1", .state = LEDGER_DELETE };
	const char *uids[] = { "u1" };
	char *err = NULL;
	int attempts = 0;
	store *st = NULL;

	if (tsb_open(statedir, 1, &st, &err) < 0)
		fail_msg("readonly open of a missing database: %s", err);
	if (!tsb_pg())
		assert_int_equal(access(statedir, F_OK), -1);  /* nothing created */
	assert_int_equal(store_ledger_load(st, "a", collect, &r, &err), 0);
	assert_int_equal(r.n, 0);
	assert_int_equal(store_ledger_get(st, "a", "u1", NULL, NULL, &err), 0);
	/* Writes go through the motions and write nothing. */
	assert_int_equal(store_begin(st, &err), 0);
	assert_int_equal(store_ledger_put(st, &rec, &err), 0);
	assert_int_equal(store_commit(st, &err), 0);
	assert_int_equal(store_ledger_mark_deleted(st, "a", uids, 1, &err), 0);
	assert_int_equal(store_ledger_fail(st, "a", "u1", "x", &attempts, &err), 0);
	assert_int_equal(attempts, 1);
	assert_int_equal(store_ledger_forget(st, "a", uids, 1, &err), 0);
	store_close(&st);
	if (tsb_pg())   /* nothing created: not even the schema */
		assert_int_equal(sql_int("SELECT count(*) FROM pg_tables WHERE tablename = 'ledger'"), 0);
	else
		assert_int_equal(access(statedir, F_OK), -1);
}

static void
test_readonly_existing(void **state)
{
	static const char *const want[] = { "u1=delete/0" };
	char *err = NULL;
	int attempts = 0;
	store *st = open_rw();

	put(st, "a", "u1", LEDGER_DELETE);
	store_close(&st);
	if (tsb_open(statedir, 1, &st, &err) < 0)
		fail_msg("readonly open: %s", err);
	expect_rows(st, "a", want, 1);
	put(st, "a", "u2", LEDGER_KEEP);
	assert_int_equal(store_ledger_fail(st, "a", "u1", "x", &attempts, &err), 0);
	assert_int_equal(attempts, 1);
	store_close(&st);
	assert_int_equal(sql_int("SELECT count(*) FROM ledger"), 1);
	assert_int_equal(sql_int("SELECT attempts FROM ledger"), 0);
}

static void
test_newer_schema(void **state)
{
	char sql[64], *err = NULL;
	sqlite3 *db;
	store *st = open_rw();

	store_close(&st);
	if (tsb_pg()) {
		tsb_sql_exec(NULL, "UPDATE mailmill_schema SET version = 1000");
	} else {
		assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", store_schema_version() + 1);
		assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
	}
	assert_int_equal(tsb_open(statedir, 0, &st, &err), -1);
	assert_null(st);
	assert_non_null(strstr(err, "is newer than this mailmill knows"));
	free(err);
	assert_int_equal(tsb_open(statedir, 1, &st, &err), -1);
	assert_non_null(strstr(err, "a dry run does not upgrade it"));
	free(err);
}

/* The same message under another key (IMAP): found by digest and
 * Message-ID, a decided row before one that only failed. */
static void
test_find_digest(void **state)
{
	store_record r1 = { .account = "a", .uid = "INBOX;UIDVALIDITY=1/;UID=5",
			    .state = LEDGER_DELETE, .message_id = "<m@x>", .verdict = "done",
			    .digest = "abc" };
	store_record r2 = { .account = "a", .uid = "Other;UIDVALIDITY=7/;UID=9",
			    .state = LEDGER_NEW, .message_id = "<m@x>", .digest = "abc" };
	ledger_state s = LEDGER_NEW;
	char *uid = NULL, *err = NULL;
	store *st = open_rw();

	assert_int_equal(store_ledger_find_digest(st, "a", "<m@x>", "abc", &uid, &s, &err), 0);
	assert_null(uid);
	assert_int_equal(store_begin(st, &err), 0);
	assert_int_equal(store_ledger_put(st, &r2, &err), 0);
	assert_int_equal(store_ledger_put(st, &r1, &err), 0);
	/* A later write that does not know the digest keeps it. */
	r1.digest = NULL;
	assert_int_equal(store_ledger_put(st, &r1, &err), 0);
	assert_int_equal(store_commit(st, &err), 0);
	assert_int_equal(store_ledger_find_digest(st, "a", "<m@x>", "abc", &uid, &s, &err), 1);
	assert_string_equal(uid, "INBOX;UIDVALIDITY=1/;UID=5");
	assert_int_equal(s, LEDGER_DELETE);
	free(uid);
	/* Another Message-ID, another account, no digest: none. */
	assert_int_equal(store_ledger_find_digest(st, "a", "<n@x>", "abc", &uid, &s, &err), 0);
	assert_int_equal(store_ledger_find_digest(st, "a", NULL, "abc", &uid, &s, &err), 0);
	assert_int_equal(store_ledger_find_digest(st, "b", "<m@x>", "abc", &uid, &s, &err), 0);
	assert_int_equal(store_ledger_find_digest(st, "a", "<m@x>", NULL, &uid, &s, &err), 0);
	store_close(&st);
}

/* A forgotten key's digest outlives its row (a message a person moves back
 * under a new UID is recognised) until it is pruned; a key written again
 * is live again. */
static void
test_forgotten_digest(void **state)
{
	store_record r1 = { .account = "a", .uid = "INBOX;UIDVALIDITY=1/;UID=5",
			    .state = LEDGER_DELETE, .message_id = "<m@x>", .verdict = "done",
			    .digest = "abc" };
	store_record r2 = { .account = "a", .uid = "INBOX;UIDVALIDITY=1/;UID=6",
			    .state = LEDGER_KEEP, .message_id = NULL, .verdict = "keep",
			    .digest = "def" };
	const char *gone[] = { r1.uid, r2.uid };
	const char *mark[] = { r1.uid };
	ledger_state s = LEDGER_NEW;
	char *uid = NULL, *err = NULL;
	store *st = open_rw();

	assert_int_equal(store_ledger_has_gone(st, "a", &err), 0);
	assert_int_equal(store_begin(st, &err), 0);
	assert_int_equal(store_ledger_put(st, &r1, &err), 0);
	assert_int_equal(store_ledger_put(st, &r2, &err), 0);
	assert_int_equal(store_commit(st, &err), 0);
	assert_int_equal(store_ledger_mark_deleted(st, "a", mark, 1, &err), 0);
	assert_int_equal(store_ledger_forget(st, "a", gone, 2, &err), 0);
	expect_rows(st, "a", NULL, 0);
	assert_int_equal(store_ledger_has_gone(st, "a", &err), 1);
	assert_int_equal(store_ledger_has_gone(st, "b", &err), 0);
	/* Found with the state the row had when it was forgotten. */
	assert_int_equal(store_ledger_find_digest(st, "a", "<m@x>", "abc", &uid, &s, &err), 1);
	assert_string_equal(uid, "INBOX;UIDVALIDITY=1/;UID=5");
	assert_int_equal(s, LEDGER_DELETED);
	free(uid);
	assert_int_equal(store_ledger_find_digest(st, "a", NULL, "def", &uid, &s, &err), 1);
	assert_int_equal(s, LEDGER_KEEP);
	free(uid);
	assert_int_equal(store_ledger_find_digest(st, "a", "<n@x>", "abc", &uid, &s, &err), 0);
	assert_int_equal(store_ledger_find_digest(st, "b", "<m@x>", "abc", &uid, &s, &err), 0);
	/* Pruning another account's, or before they were forgotten: kept. */
	assert_int_equal(store_ledger_prune_gone(st, "b", time(NULL) + 10, &err), 0);
	assert_int_equal(store_ledger_prune_gone(st, "a", time(NULL) - 3600, &err), 0);
	assert_int_equal(store_ledger_find_digest(st, "a", "<m@x>", "abc", &uid, &s, &err), 1);
	free(uid);
	/* The same key journalled again (a new verdict) is a live row again. */
	r2.state = LEDGER_DELETE;
	assert_int_equal(store_ledger_put(st, &r2, &err), 0);
	assert_int_equal(store_ledger_find_digest(st, "a", NULL, "def", &uid, &s, &err), 1);
	assert_int_equal(s, LEDGER_DELETE);
	free(uid);
	/* Past the retention: gone; the live row's digest stays. */
	assert_int_equal(store_ledger_prune_gone(st, "a", time(NULL) + 10, &err), 0);
	assert_int_equal(store_ledger_find_digest(st, "a", "<m@x>", "abc", &uid, &s, &err), 0);
	assert_int_equal(store_ledger_has_gone(st, "a", &err), 0);
	assert_int_equal(store_ledger_find_digest(st, "a", NULL, "def", &uid, &s, &err), 1);
	free(uid);
	store_close(&st);
}

/* Schema 10 kept live keys' digests in ledger_digest; 11 moves them into
 * the ledger row and keeps forgotten keys' digests where they were. */
static void
test_digest_migration(void **state)
{
	store_record r1 = { .account = "a", .uid = "INBOX;UIDVALIDITY=1/;UID=5",
			    .state = LEDGER_DELETE, .message_id = "<m@x>", .verdict = "done",
			    .digest = "abc" };
	store_record r2 = { .account = "a", .uid = "INBOX;UIDVALIDITY=1/;UID=6",
			    .state = LEDGER_KEEP, .message_id = "<n@x>", .verdict = "keep",
			    .digest = "def" };
	const char *gone[] = { r2.uid };
	ledger_state s = LEDGER_NEW;
	char *uid = NULL, *err = NULL;
	sqlite3 *db;
	store *st;

	if (tsb_pg())
		return;   /* SQLite's schema alone; t-store-pg reads a skip as a failure */
	st = open_rw();
	assert_int_equal(store_begin(st, &err), 0);
	assert_int_equal(store_ledger_put(st, &r1, &err), 0);
	assert_int_equal(store_ledger_put(st, &r2, &err), 0);
	assert_int_equal(store_commit(st, &err), 0);
	assert_int_equal(store_ledger_forget(st, "a", gone, 1, &err), 0);
	store_close(&st);
	/* back to schema 10's layout */
	assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP INDEX ledger_by_digest;"
		"INSERT INTO ledger_digest (account, uid, digest) SELECT account, uid, digest"
		" FROM ledger WHERE digest IS NOT NULL;"
		"ALTER TABLE ledger DROP COLUMN digest; PRAGMA user_version = 10;",
		NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(sql_int("SELECT count(*) FROM ledger_digest"), 2);
	st = open_rw();
	assert_int_equal(sql_int("PRAGMA user_version"), store_schema_version());
	assert_int_equal(sql_int("SELECT count(*) FROM ledger WHERE digest = 'abc'"), 1);
	assert_int_equal(sql_int("SELECT count(*) FROM ledger_digest WHERE forgotten IS NOT NULL"), 1);
	assert_int_equal(sql_int("SELECT count(*) FROM ledger_digest"), 1);
	assert_int_equal(store_ledger_find_digest(st, "a", "<m@x>", "abc", &uid, &s, &err), 1);
	assert_string_equal(uid, r1.uid);
	assert_int_equal(s, LEDGER_DELETE);
	free(uid);
	assert_int_equal(store_ledger_find_digest(st, "a", "<n@x>", "def", &uid, &s, &err), 1);
	assert_string_equal(uid, r2.uid);
	assert_int_equal(s, LEDGER_KEEP);
	free(uid);
	store_close(&st);
}

static void
test_state_dir_is_a_file(void **state)
{
	char *err = NULL, parent[600];
	store *st = NULL;
	FILE *fp;

	if (tsb_pg()) {
		/* PostgreSQL's own ways to fail: a password in the conninfo (it
		 * would show in messages), a server that is not there. */
		store_pg_conf pc = { .conninfo = "host=127.0.0.1 port=1 password=secret",
				     .sslmode = "disable" };

		assert_int_equal(store_open_pg(&pc, 0, &st, &err), -1);
		assert_non_null(strstr(err, "password_file"));
		assert_null(strstr(err, "secret"));
		free(err);
		pc.conninfo = "host=127.0.0.1 port=1 dbname=x user=y connect_timeout=2";
		assert_int_equal(store_open_pg(&pc, 0, &st, &err), -1);
		assert_non_null(strstr(err, "postgresql://y@127.0.0.1:1/x: cannot connect"));
		free(err);
		return;
	}
	snprintf(parent, sizeof(parent), "%s/var%d", tmpdir, case_no);
	assert_int_equal(mkdir(parent, 0700), 0);
	fp = fopen(statedir, "w");
	assert_non_null(fp);
	fclose(fp);
	assert_int_equal(store_open(statedir, 0, &st, &err), -1);
	assert_non_null(strstr(err, "not a directory"));
	free(err);
}

/* Thousands of rows in one transaction, as a group commit would write them. */
static void
test_many(void **state)
{
	enum { N = 5000 };
	struct timespec a, b;
	char uid[32], *err = NULL;
	const char **gone;
	store *st = open_rw();

	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(store_begin(st, &err), 0);
	for (int i = 0; i < N; i++) {
		snprintf(uid, sizeof(uid), "uid-%06d", i);
		put(st, "bulk", uid, LEDGER_DELETE);
	}
	assert_int_equal(store_commit(st, &err), 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	print_message("# %d rows in %.3f s\n", N,
		      (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
	assert_int_equal(sql_int("SELECT count(*) FROM ledger WHERE account='bulk'"), N);

	gone = calloc(N / 2, sizeof(*gone));
	assert_non_null(gone);
	for (int i = 0; i < N / 2; i++) {
		char *u = malloc(32);
		assert_non_null(u);
		snprintf(u, 32, "uid-%06d", i * 2 + 1);
		gone[i] = u;
	}
	/* the odd ones are gone from the server */
	assert_int_equal(store_ledger_forget(st, "bulk", gone, N / 2, &err), 0);
	assert_int_equal(sql_int("SELECT count(*) FROM ledger WHERE account='bulk'"), N / 2);
	assert_int_equal(sql_int("SELECT count(*) FROM ledger WHERE uid='uid-000001'"), 0);
	assert_int_equal(sql_int("SELECT count(*) FROM ledger WHERE uid='uid-004998'"), 1);
	for (int i = 0; i < N / 2; i++)
		free((char *)gone[i]);
	free(gone);
	store_close(&st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_create, each_setup),
		cmocka_unit_test_setup(test_put_load, each_setup),
		cmocka_unit_test_setup(test_transactions, each_setup),
		cmocka_unit_test_setup(test_mark_deleted, each_setup),
		cmocka_unit_test_setup(test_quarantine_release, each_setup),
		cmocka_unit_test_setup(test_mark_all_deleted, each_setup),
		cmocka_unit_test_setup(test_fail, each_setup),
		cmocka_unit_test_setup(test_forget, each_setup),
		cmocka_unit_test_setup(test_reopen, each_setup),
		cmocka_unit_test_setup(test_readonly_missing, each_setup),
		cmocka_unit_test_setup(test_readonly_existing, each_setup),
		cmocka_unit_test_setup(test_newer_schema, each_setup),
		cmocka_unit_test_setup(test_state_dir_is_a_file, each_setup),
		cmocka_unit_test_setup(test_find_digest, each_setup),
		cmocka_unit_test_setup(test_forgotten_digest, each_setup),
		cmocka_unit_test_setup(test_digest_migration, each_setup),
		cmocka_unit_test_setup(test_many, each_setup),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

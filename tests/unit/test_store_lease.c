/* mailmill - ISC licence, see LICENSE */
/*
 * What several daemons on one store rely on, on the backend store_backend.h
 * selects.  Leases and fencing: on SQLite (one daemon holds the file) every
 * claim succeeds; on PostgreSQL two owners contend for an account, the fence
 * grows with every claim, and a commit under a lost lease is refused and
 * leaves nothing.  Outbox claims (two flushes never get the same row) and
 * sequence numbers taken by several processes at once (never one twice).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "tests/unit/store_backend.h"

static char tmpdir[256], statedir[512];
static int case_no;
static store *st;

static int
setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "%s/mm-test-lease.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static int
each_setup(void **state)
{
	char *err = NULL;

	(void)state;
	snprintf(statedir, sizeof(statedir), "%s/s%d", tmpdir, ++case_no);
	tsb_reset();
	if (tsb_open(statedir, 0, &st, &err) < 0) {
		fprintf(stderr, "open: %s\n", err);
		return -1;
	}
	return 0;
}

static int
each_teardown(void **state)
{
	(void)state;
	store_close(&st);
	return 0;
}

static void
put_row(store *s, const char *uid, int want)
{
	store_record r = { .account = "a", .uid = uid, .state = LEDGER_DELETE, .verdict = "done" };
	char *err = NULL;

	assert_int_equal(store_begin(s, &err), 0);
	assert_int_equal(store_ledger_put(s, &r, &err), 0);
	if (store_commit(s, &err) != want)
		fail_msg("commit of %s: want %d (%s)", uid, want, err ? err : "-");
	if (want < 0) {
		assert_non_null(strstr(err, "lease"));
		free(err);
	}
}

struct seen { int n; char owner[64]; long long fence; };

static void
list_fn(void *arg, const char *account, const char *owner, long long fence, long long expires)
{
	struct seen *s = arg;

	(void)expires;
	if (strcmp(account, "a") == 0) {
		snprintf(s->owner, sizeof(s->owner), "%s", owner);
		s->fence = fence;
	}
	s->n++;
}

static void
test_claim_and_fence(void **state)
{
	long long f1 = 0, f2 = 0, f3 = 0;
	char *err = NULL;
	store *other = NULL;

	(void)state;
	assert_int_equal(store_lease_claim(st, "a", "host1:1", 60, &f1, &err), 1);
	assert_true(f1 >= 1);
	assert_int_equal(store_fence_set(st, "a", "host1:1", f1, &err), 0);
	put_row(st, "u1", 0);
	if (!tsb_pg())
		return;   /* one daemon per SQLite file: nothing contends */
	assert_int_equal(tsb_open(statedir, 0, &other, &err), 0);
	/* A live lease of another owner: not claimed. */
	assert_int_equal(store_lease_claim(other, "a", "host2:2", 60, &f2, &err), 0);
	struct seen s = { 0 };
	assert_int_equal(store_lease_list(other, list_fn, &s, &err), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.owner, "host1:1");
	assert_int_equal(s.fence, f1);
	assert_int_equal(store_lease_renew(st, "a", "host1:1", f1, 60, &err), 0);
	/* Renewing with a fence that is not the lease's fails. */
	assert_int_equal(store_lease_renew(st, "a", "host1:1", f1 + 7, 60, &err), -1);
	free(err);
	err = NULL;
	/* Given up: the other owner takes it, and the fence grows. */
	assert_int_equal(store_lease_release(st, "a", "host1:1", f1, &err), 0);
	assert_int_equal(store_lease_claim(other, "a", "host2:2", 60, &f2, &err), 1);
	assert_true(f2 > f1);
	/* The first owner's commits are refused now, and leave nothing. */
	put_row(st, "u2", -1);
	assert_int_equal(store_ledger_get(other, "a", "u2", NULL, NULL, &err), 0);
	assert_int_equal(store_ledger_get(other, "a", "u1", NULL, NULL, &err), 1);
	/* ...as do its writes outside a transaction. */
	assert_int_equal(store_ledger_mark_all_deleted(st, "a", &err), -1);
	free(err);
	err = NULL;
	assert_int_equal(store_lease_renew(st, "a", "host1:1", f1, 60, &err), -1);
	free(err);
	err = NULL;
	/* Our own claim again: renewed with a new fence. */
	assert_int_equal(store_lease_claim(other, "a", "host2:2", 60, &f3, &err), 1);
	assert_true(f3 > f2);
	assert_int_equal(store_fence_set(other, "a", "host2:2", f3, &err), 0);
	put_row(other, "u3", 0);
	store_close(&other);
}

static void
test_expiry(void **state)
{
	long long f1 = 0, f2 = 0;
	char *err = NULL;
	store *other = NULL;

	(void)state;
	assert_int_equal(store_lease_claim(st, "a", "host1:1", 1, &f1, &err), 1);
	assert_int_equal(store_fence_set(st, "a", "host1:1", f1, &err), 0);
	if (!tsb_pg()) {
		/* SQLite: the one daemon's leases never run out. */
		put_row(st, "u1", 0);
		return;
	}
	assert_int_equal(tsb_open(statedir, 0, &other, &err), 0);
	sleep(2);
	/* Expired: lost even before anyone takes it over. */
	put_row(st, "u1", -1);
	assert_int_equal(store_lease_renew(st, "a", "host1:1", f1, 60, &err), -1);
	free(err);
	err = NULL;
	assert_int_equal(store_lease_claim(other, "a", "host2:2", 60, &f2, &err), 1);
	assert_true(f2 > f1);
	/* No fence: commits are not checked. */
	assert_int_equal(store_fence_set(st, NULL, NULL, 0, &err), 0);
	put_row(st, "u4", 0);
	store_close(&other);
}

static void
queue(store *s, int n)
{
	store_outbox_row row = { .account = "a", .env_from = "", .rcpts = "x@y", .message = "m\n",
				 .len = 2 };
	char *err = NULL;

	for (int i = 0; i < n; i++)
		if (store_outbox_add(s, &row, 100, &err) < 0)
			fail_msg("queue: %s", err);
}

static void
test_outbox_claims(void **state)
{
	long long *a = NULL, *b = NULL, *c = NULL;
	size_t na = 0, nb = 0, nc = 0;
	char *err = NULL;
	store *other = NULL;

	(void)state;
	queue(st, 6);
	assert_int_equal(store_outbox_due(st, 200, 4, &a, &na, &err), 0);
	assert_int_equal(na, 4);
	assert_true(a[0] < a[1] && a[1] < a[2] && a[2] < a[3]);   /* oldest first */
	if (!tsb_pg()) {
		free(a);
		return;   /* one daemon per SQLite file: nobody else flushes */
	}
	assert_int_equal(tsb_open(statedir, 0, &other, &err), 0);
	/* Another flush gets only the rows nobody holds... */
	assert_int_equal(store_outbox_due(other, 200, 10, &b, &nb, &err), 0);
	assert_int_equal(nb, 2);
	for (size_t i = 0; i < na; i++)
		for (size_t j = 0; j < nb; j++)
			assert_true(a[i] != b[j]);
	/* ...a row marked sent is nobody's, and its claim ends with it. */
	assert_int_equal(store_outbox_sent(st, a[0], NULL, 200, &err), 0);
	/* Closing a handle gives back what it claimed and did not finish. */
	store_close(&st);
	assert_int_equal(store_outbox_due(other, 200, 10, &c, &nc, &err), 0);
	assert_int_equal(nc, 5);   /* b's two, again, and a's three unfinished */
	assert_int_equal(tsb_open(statedir, 0, &st, &err), 0);
	free(a);
	free(b);
	free(c);
	store_close(&other);
}

/* Sequence numbers taken by several processes at once, on their own
 * handles: each number once. */
static void
test_seq_processes(void **state)
{
	enum { PROCS = 4, EACH = 50 };
	char path[600], line[64];
	int seen[PROCS * EACH + 1] = { 0 }, n = 0;
	FILE *fp;

	(void)state;
	snprintf(path, sizeof(path), "%s/seq.out", tmpdir);
	unlink(path);
	for (int p = 0; p < PROCS; p++) {
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0) {
			store *mine = NULL;
			char *err = NULL;
			FILE *out;

			if (tsb_open(statedir, 0, &mine, &err) < 0 || (out = fopen(path, "a")) == NULL) {
				fprintf(stderr, "open: %s\n", err != NULL ? err : "fopen");
				_exit(1);
			}
			for (int i = 0; i < EACH; i++) {
				long long v;

				if (store_seq_next(mine, "ticket:q", "number", &v, &err) < 0) {
					fprintf(stderr, "seq: %s\n", err);
					_exit(2);
				}
				fprintf(out, "%lld\n", v);
				fflush(out);
			}
			_exit(0);
		}
	}
	for (int p = 0; p < PROCS; p++) {
		int status = -1;

		assert_true(wait(&status) > 0);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	assert_non_null(fp = fopen(path, "r"));
	while (fgets(line, sizeof(line), fp) != NULL) {
		long long v = strtoll(line, NULL, 10);

		assert_true(v >= 1 && v <= PROCS * EACH);
		assert_int_equal(seen[v], 0);
		seen[v] = 1;
		n++;
	}
	fclose(fp);
	assert_int_equal(n, PROCS * EACH);
}

/* PostgreSQL: a connection lost fails the call in hand (and a transaction
 * with everything in it), and the next call connects again. */
static void
test_reconnect(void **state)
{
	static const char kill_sql[] = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
				       " WHERE application_name = 'mailmill'";
	store_record r = { .account = "a", .uid = "u1", .state = LEDGER_DELETE };
	char *err = NULL;

	(void)state;
	assert_int_equal(store_ledger_get(st, "a", "u1", NULL, NULL, &err), 0);
	if (!tsb_pg())
		return;
	tsb_sql_exec(NULL, kill_sql);
	assert_int_equal(store_ledger_get(st, "a", "u1", NULL, NULL, &err), -1);
	assert_non_null(strstr(err, "postgresql://"));
	free(err);
	err = NULL;
	assert_int_equal(store_ledger_get(st, "a", "u1", NULL, NULL, &err), 0);
	/* Inside a transaction: the commit fails, nothing of it is there. */
	assert_int_equal(store_begin(st, &err), 0);
	assert_int_equal(store_ledger_put(st, &r, &err), 0);
	tsb_sql_exec(NULL, kill_sql);
	r.uid = "u2";
	assert_int_equal(store_ledger_put(st, &r, &err), -1);
	free(err);
	err = NULL;
	assert_int_equal(store_commit(st, &err), -1);
	assert_non_null(strstr(err, "transaction"));
	free(err);
	err = NULL;
	store_rollback(st);
	assert_int_equal(store_ledger_get(st, "a", "u1", NULL, NULL, &err), 0);
	assert_int_equal(tsb_sql_int(NULL, "SELECT count(*) FROM ledger"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_claim_and_fence, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_expiry, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_outbox_claims, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_seq_processes, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_reconnect, each_setup, each_teardown),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

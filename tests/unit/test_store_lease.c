/* mailmill - ISC licence, see LICENSE */
/*
 * Leases and fencing (store.h), on the backend store_backend.h selects: on
 * SQLite (one daemon holds the file) every claim succeeds; on PostgreSQL two
 * owners contend for an account, the fence grows with every claim, and a
 * commit under a lost lease is refused and leaves nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_claim_and_fence, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_expiry, each_setup, each_teardown),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

/* mailmill - ISC licence, see LICENSE */
/*
 * The scheduler's leases (daemon/sched/claim.c) on the backend
 * store_backend.h selects: on SQLite every claim succeeds and nothing else
 * happens; on PostgreSQL (tests/integration/t-store-pg.sh) a second daemon
 * is refused, a renewal moves the local deadline, a lost lease is retried
 * until that deadline and then given up, a lease kept until the next run
 * keeps the others out, and a released one lets them in.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/sched/claim.h"
#include "tests/unit/store_backend.h"

static char topdir[] = "/tmp/mm-test-claim.XXXXXX";
#include "tests/unit/tmpdir.h"

static char statedir[512];
static int case_no;
static store *st, *st2;

/* Two handles on one store: two daemons (on SQLite the second is only
 * used where a test stops early). */
static int
each_setup(void **state)
{
	char *err = NULL;

	(void)state;
	snprintf(statedir, sizeof(statedir), "%s/s%d", topdir, ++case_no);
	tsb_reset();
	if (tsb_open(statedir, 0, &st, &err) < 0 || tsb_open(statedir, 0, &st2, &err) < 0) {
		fprintf(stderr, "open: %s\n", err);
		return -1;
	}
	return 0;
}

static int
each_teardown(void **state)
{
	(void)state;
	store_close(&st2);
	store_close(&st);
	return 0;
}

static void
test_owner(void **state)
{
	char a[CLAIM_OWNER_MAX], b[CLAIM_OWNER_MAX], host[256], want[300];

	(void)state;
	claim_owner(a, sizeof a);
	claim_owner(b, sizeof b);
	assert_int_equal(gethostname(host, sizeof host), 0);
	snprintf(want, sizeof want, "%s:%ld:", host, (long)getpid());
	assert_memory_equal(a, want, strlen(want));
	assert_int_equal(strlen(a), strlen(want) + 8);
	/* Another start of the same pid is another owner. */
	assert_string_not_equal(a, b);
}

static void
test_take_and_refuse(void **state)
{
	claim c1 = { 0 }, c2 = { 0 };
	struct run_lease rl;

	(void)state;
	assert_int_equal(claim_take(&c1, st, "h1:1:00000001", "acct", 30), 1);
	assert_true(c1.held);
	assert_true(c1.fence >= 1);
	claim_lease(&c1, &rl);
	assert_string_equal(rl.owner, "h1:1:00000001");
	assert_int_equal(rl.fence, c1.fence);
	assert_int_equal(rl.ttl_s, 30);
	/* The renewal is due after a third of the ttl, the lease ends with it. */
	assert_true(c1.renew_at - (c1.until - 30 * G_USEC_PER_SEC) == 10 * G_USEC_PER_SEC);
	if (!tsb_pg()) {
		/* SQLite: one daemon, every claim is its own. */
		assert_int_equal(claim_take(&c2, st2, "h2:2:00000002", "acct", 30), 1);
		return;
	}
	assert_int_equal(claim_take(&c2, st2, "h2:2:00000002", "acct", 30), 0);
	assert_false(c2.held);
	/* Our own again: a new fence. */
	long long f = c1.fence;

	assert_int_equal(claim_take(&c1, st, "h1:1:00000001", "acct", 30), 1);
	assert_true(c1.fence > f);
	claim_release(&c1, st);
	assert_false(c1.held);
	assert_int_equal(claim_take(&c2, st2, "h2:2:00000002", "acct", 30), 1);
	assert_true(c2.fence > c1.fence);
	claim_release(&c2, st2);
	claim_release(&c2, st2);   /* not held any more: nothing */
}

static void
test_tick(void **state)
{
	claim c1 = { 0 }, c2 = { 0 };
	gint64 until;

	(void)state;
	assert_int_equal(claim_take(&c1, st, "h1:1:00000001", "acct", 30), 1);
	until = c1.until;
	/* Not due: nothing sent. */
	assert_int_equal(claim_tick(&c1, st, c1.renew_at - 1), 0);
	assert_int_equal(c1.until, until);
	/* Due: renewed, the deadline moves with it. */
	assert_int_equal(claim_tick(&c1, st, c1.renew_at), 0);
	assert_true(c1.until > until);
	if (!tsb_pg())
		return;
	/* Lost (it expired and another daemon took it): retried until the
	 * local deadline, then given up. */
	tsb_sql_exec(NULL, "UPDATE leases SET expires = 0 WHERE account = 'acct'");
	assert_int_equal(claim_take(&c2, st2, "h2:2:00000002", "acct", 30), 1);
	assert_int_equal(claim_tick(&c1, st, c1.renew_at), 0);
	assert_true(c1.held);
	assert_true(c1.lost_said);
	assert_int_equal(claim_tick(&c1, st, c1.until), -1);
	assert_false(c1.held);
	assert_int_equal(claim_tick(&c1, st, c1.until + 1), -1);
}

static void
test_hold(void **state)
{
	claim c1 = { 0 }, c2 = { 0 };

	(void)state;
	assert_int_equal(claim_take(&c1, st, "h1:1:00000001", "acct", 3), 1);
	/* Kept until the next run, 60 s from now, past its own ttl. */
	claim_hold(&c1, st, 60);
	assert_true(c1.held);
	assert_true(c1.until - g_get_monotonic_time() > 60 * G_USEC_PER_SEC);
	assert_true(c1.renew_at == G_MAXINT64);
	if (!tsb_pg())
		return;
	sleep(4);
	assert_int_equal(claim_take(&c2, st2, "h2:2:00000002", "acct", 3), 0);
	/* Stopping: given back, the other daemon may take it at once. */
	claim_release(&c1, st);
	assert_int_equal(claim_take(&c2, st2, "h2:2:00000002", "acct", 3), 1);
	/* A hold of a lease that is lost is no hold. */
	tsb_sql_exec(NULL, "UPDATE leases SET expires = 0 WHERE account = 'acct'");
	claim_hold(&c2, st2, 60);
	assert_false(c2.held);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_owner),
		cmocka_unit_test_setup_teardown(test_take_and_refuse, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_tick, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_hold, each_setup, each_teardown),
	};
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}

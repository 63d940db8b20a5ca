/* mailmill - ISC licence, see LICENSE */
/* What an IDLE folder's EXISTS and EXPUNGE responses mean: new mail or not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon/sched/idlecount.h"

/* One read: the session's last EXISTS value and how many EXISTS and
 * EXPUNGE responses it has counted since it connected. */
typedef struct step {
	uint32_t exists;
	unsigned long n_exists, n_expunge;
	int fresh;          /* new mail, as it must be said */
	uint32_t count;     /* the count after it */
} step;

static void
run(const char *what, uint32_t exists, uint32_t uidnext, const step *st, size_t n)
{
	idlecount c;
	size_t i;

	idlecount_open(&c, exists, uidnext, 0, 0);
	for (i = 0; i < n; i++) {
		int got = idlecount_update(&c, st[i].exists, st[i].n_exists, st[i].n_expunge);

		if (got != st[i].fresh)
			fail_msg("%s, step %zu: new mail %d, want %d", what, i, got, st[i].fresh);
		if (c.count != st[i].count)
			fail_msg("%s, step %zu: count %u, want %u", what, i, c.count, st[i].count);
	}
}

static void
test_exists(void **state)
{
	static const step grow[] = {
		{ 3, 1, 0, 1, 3 },      /* 0 -> 3 */
		{ 3, 2, 0, 0, 3 },      /* the same EXISTS again: nothing new */
		{ 4, 3, 0, 1, 4 },
		{ 4, 3, 0, 0, 4 },      /* nothing came (a FETCH, an OK) */
	};
	static const step expunged[] = {
		{ 5, 0, 2, 0, 3 },      /* two EXPUNGEs: 5 -> 3, no EXISTS */
		{ 4, 1, 2, 1, 4 },      /* then one new: EXISTS 4 grows 3 */
		{ 4, 1, 6, 0, 0 },      /* four more gone: never below 0 */
		{ 1, 2, 6, 1, 1 },
	};

	(void)state;
	run("growing", 0, 1, grow, sizeof grow / sizeof grow[0]);
	run("expunged, then new", 5, 10, expunged, sizeof expunged / sizeof expunged[0]);
}

/* EXPUNGE and EXISTS in one read: whatever their order, new mail is never
 * missed; a redundant EXISTS may count as new once. */
static void
test_both_in_one_read(void **state)
{
	/* 5 messages; one expunged, then one new (EXISTS 5 after the EXPUNGE). */
	static const step after[] = { { 5, 1, 1, 1, 4 } };
	/* 5 messages; one new (EXISTS 6), then one expunged: 5 in truth. */
	static const step before[] = { { 6, 1, 1, 1, 5 } };
	/* 5; EXISTS 5 repeated, then one expunged: taken for new mail (the one
	 * run too many); an EXISTS 5 after that is a new message indeed. */
	static const step redundant[] = { { 5, 1, 1, 1, 4 }, { 5, 2, 1, 1, 5 } };

	(void)state;
	run("EXPUNGE then EXISTS", 5, 6, after, 1);
	run("EXISTS then EXPUNGE", 5, 6, before, 1);
	run("a repeated EXISTS with an EXPUNGE", 5, 6, redundant, 2);
}

static void
test_missed(void **state)
{
	idlecount c;

	(void)state;
	idlecount_open(&c, 2, 10, 0, 0);
	assert_false(idlecount_missed(&c, 10));    /* nothing came while away */
	assert_true(idlecount_missed(&c, 11));
	assert_true(idlecount_missed(&c, 0));      /* the server sends no UIDNEXT */
	/* Three seen arriving while connected: UIDNEXT is at least 13 now. */
	assert_int_equal(idlecount_update(&c, 5, 1, 0), 1);
	assert_int_equal(c.uidnext, 13);
	assert_false(idlecount_missed(&c, 13));
	assert_true(idlecount_missed(&c, 14));
	/* No UIDNEXT at the start: any reconnection may have missed mail. */
	idlecount_open(&c, 2, 0, 0, 0);
	assert_int_equal(idlecount_update(&c, 3, 1, 0), 1);
	assert_true(idlecount_missed(&c, 50));
	/* A server's number at the top of the range does not wrap around. */
	idlecount_open(&c, 0, UINT32_MAX - 1, 0, 0);
	assert_int_equal(idlecount_update(&c, 5, 1, 0), 1);
	assert_true(idlecount_missed(&c, UINT32_MAX));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exists),
		cmocka_unit_test(test_both_in_one_read),
		cmocka_unit_test(test_missed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* mailmill - ISC licence, see LICENSE */
/* The scheduler's timer heap: order, moves and cancels against a plain
 * reference, and the heap shape after every operation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "daemon/sched/timerq.h"

#define N 2000

static void
check_heap(const timerq *q)
{
	for (size_t i = 1; i <= q->len; i++) {
		assert_int_equal(q->heap[i]->pos, i);
		if (i > 1)
			assert_true(q->heap[i / 2]->due <= q->heap[i]->due);
	}
}

/* The earliest due among the queued reference nodes, or -1. */
static int64_t
ref_min(const timerq_node *nodes, size_t n)
{
	int64_t m = -1;

	for (size_t i = 0; i < n; i++)
		if (nodes[i].pos != 0 && (m < 0 || nodes[i].due < m))
			m = nodes[i].due;
	return m;
}

static void
test_order(void **state)
{
	static timerq_node nodes[N];
	timerq q;
	int64_t last = -1;
	timerq_node *n;

	(void)state;
	timerq_init(&q);
	assert_null(timerq_peek(&q));
	srand(7);
	for (size_t i = 0; i < N; i++) {
		nodes[i].pos = 0;
		timerq_set(&q, &nodes[i], rand() % 100000);
	}
	check_heap(&q);
	assert_int_equal(q.len, N);
	while ((n = timerq_peek(&q)) != NULL) {
		assert_true(n->due >= last);
		last = n->due;
		timerq_cancel(&q, n);
		assert_false(timerq_queued(n));
	}
	timerq_clear(&q);
}

/* Random sets (new and moves, earlier and later) and cancels, as the
 * scheduler makes them: the head is always the reference's minimum. */
static void
test_random_ops(void **state)
{
	static timerq_node nodes[N];
	timerq q;

	(void)state;
	timerq_init(&q);
	for (size_t i = 0; i < N; i++)
		nodes[i].pos = 0;
	srand(11);
	for (int op = 0; op < 50000; op++) {
		timerq_node *n = &nodes[rand() % N];

		if (rand() % 3 == 0)
			timerq_cancel(&q, n);
		else
			timerq_set(&q, n, rand() % 1000000);
		if (op % 997 == 0)
			check_heap(&q);
		assert_int_equal(timerq_peek(&q) != NULL ? timerq_peek(&q)->due : -1,
				 ref_min(nodes, N));
	}
	check_heap(&q);
	timerq_clear(&q);
	for (size_t i = 0; i < N; i++)
		assert_false(timerq_queued(&nodes[i]));
}

static void
test_cancel_unqueued_and_last(void **state)
{
	timerq_node a = { 0, 0 }, b = { 0, 0 };
	timerq q;

	(void)state;
	timerq_init(&q);
	timerq_cancel(&q, &a);               /* not queued: nothing */
	timerq_set(&q, &a, 5);
	timerq_set(&q, &b, 9);
	timerq_cancel(&q, &b);               /* the last slot */
	assert_ptr_equal(timerq_peek(&q), &a);
	timerq_set(&q, &a, 50);              /* moved later, alone */
	timerq_set(&q, &b, 10);
	assert_ptr_equal(timerq_peek(&q), &b);
	timerq_set(&q, &a, 1);               /* moved earlier past b */
	assert_ptr_equal(timerq_peek(&q), &a);
	assert_int_equal(q.len, 2);
	timerq_clear(&q);
	assert_false(timerq_queued(&a));
	assert_false(timerq_queued(&b));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_random_ops),
		cmocka_unit_test(test_cancel_unqueued_and_last),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* mailmill - ISC licence, see LICENSE */
#include <config.h>
#include <stdlib.h>
#include <glib.h>
#include "daemon/sched/timerq.h"

void
timerq_init(timerq *q)
{
	q->heap = NULL;
	q->len = q->cap = 0;
}

void
timerq_clear(timerq *q)
{
	for (size_t i = 1; i <= q->len; i++)
		q->heap[i]->pos = 0;
	g_free(q->heap);
	timerq_init(q);
}

static void
timerq_put(timerq *q, size_t i, timerq_node *n)
{
	q->heap[i] = n;
	n->pos = i;
}

static void
timerq_up(timerq *q, size_t i)
{
	timerq_node *n = q->heap[i];

	while (i > 1 && q->heap[i / 2]->due > n->due) {
		timerq_put(q, i, q->heap[i / 2]);
		i /= 2;
	}
	timerq_put(q, i, n);
}

static void
timerq_down(timerq *q, size_t i)
{
	timerq_node *n = q->heap[i];

	for (;;) {
		size_t c = 2 * i;

		if (c > q->len)
			break;
		if (c + 1 <= q->len && q->heap[c + 1]->due < q->heap[c]->due)
			c++;
		if (q->heap[c]->due >= n->due)
			break;
		timerq_put(q, i, q->heap[c]);
		i = c;
	}
	timerq_put(q, i, n);
}

void
timerq_set(timerq *q, timerq_node *n, int64_t due)
{
	if (n->pos != 0) {
		int64_t old = n->due;

		n->due = due;
		if (due < old)
			timerq_up(q, n->pos);
		else
			timerq_down(q, n->pos);
		return;
	}
	if (q->len + 1 >= q->cap) {
		/* g_renew aborts when memory runs out, as all GLib allocation does. */
		q->cap = q->cap < 16 ? 16 : q->cap * 2;
		q->heap = g_renew(timerq_node *, q->heap, q->cap);
	}
	n->due = due;
	q->len++;
	q->heap[q->len] = n;
	timerq_up(q, q->len);
}

void
timerq_cancel(timerq *q, timerq_node *n)
{
	size_t i = n->pos;
	timerq_node *last;

	if (i == 0)
		return;
	n->pos = 0;
	last = q->heap[q->len--];
	if (last == n)
		return;
	timerq_put(q, i, last);
	if (i > 1 && q->heap[i / 2]->due > last->due)
		timerq_up(q, i);
	else
		timerq_down(q, i);
}

timerq_node *
timerq_peek(const timerq *q)
{
	return q->len > 0 ? q->heap[1] : NULL;
}

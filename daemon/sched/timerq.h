/* mailmill - ISC licence, see LICENSE */
#ifndef MM_TIMERQ_H
#define MM_TIMERQ_H
/*
 * The scheduler's timers: one binary min-heap of due times instead of one
 * GLib timeout per account, because GLib's main loop looks at every source
 * on every wake-up (prepare and check), so ten thousand account timers make
 * each worker's progress line, exit and the 200 ms watchdog cost O(N).
 * Here setting, moving or cancelling a timer is O(log N) and finding the
 * next one O(1); the scheduler keeps one GLib timeout for the head.
 *
 * A node lives inside its owner (sched_acct holds two: its run and its `at`
 * slot); the queue holds borrowed pointers to nodes and never frees them.
 * Pure: no clock, no GLib loop; the caller passes times in (any unit).
 */
#include <stddef.h>
#include <stdint.h>

typedef struct timerq_node {
	int64_t due;
	size_t pos;          /* 1-based index in the heap; 0: not queued */
} timerq_node;

typedef struct timerq {
	timerq_node **heap;  /* heap[0] unused, so that pos 0 means "not queued" */
	size_t len, cap;
} timerq;

void timerq_init(timerq *q);
/* Frees the heap, not the nodes. */
void timerq_clear(timerq *q);
/* Queue the node at due, or move it there if queued already. */
void timerq_set(timerq *q, timerq_node *n, int64_t due);
/* Take the node out; nothing if it is not queued. */
void timerq_cancel(timerq *q, timerq_node *n);
/* The node due first, or NULL when empty (stays queued). */
timerq_node *timerq_peek(const timerq *q);
static inline int
timerq_queued(const timerq_node *n)
{
	return n->pos != 0;
}
#endif

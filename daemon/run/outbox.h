/* mailmill - ISC licence, see LICENSE */
#ifndef MM_OUTBOX_H
#define MM_OUTBOX_H
/*
 * The outbox flusher: queued mail (store.h, "outbox") goes to the `smtp`
 * relay over one connection per flush.  Per row and per recipient:
 *   2xx                      sent (the refused ones recorded)
 *   4xx, timeout, lost conn. retried with back-off until max_queue_time,
 *                            then dead; after a loss past the final dot
 *                            (outcome unknown: the relay may or may not have
 *                            it, RFC 1047) every recipient it took stays
 *                            queued, counted, and the same stored bytes (the
 *                            same Message-ID) go again
 *   5xx                      dead at once with the server's reply
 * A relay that cannot be reached, refuses TLS or the login sends nothing;
 * the rows wait (an attempt counted) for the next flush.
 */
#include <stdio.h>
#include "daemon/core/cfg.h"
#include "daemon/store/store.h"

typedef struct outbox_stats {
	unsigned long due, sent, retried, dead, refused_rcpts;
	unsigned long unknown;  /* rows whose end of data went unanswered (RFC 1047) */
} outbox_stats;

/*
 * Flush queued rows due now (all: every queued row, e.g. `--flush`).  0 when
 * the relay took its decisions on the rows it saw (or nothing was due), -1
 * when it could not be reached or the store failed (logged either way).
 */
struct run_lease;
/* The outbox's lease name (store.h). */
#define OUTBOX_LEASE STORE_LEASE_OUTBOX
/*
 * lease: NULL, or the outbox's lease (daemon/sched/claim.h) when several
 * daemons share the store: renewed before each message is sent, and the
 * flush stops (-1) when it is lost, so that the daemon that took it over
 * is the only one sending.
 */
int outbox_flush(const cfg *c, store *st, int all, int trace, const struct run_lease *lease,
		 outbox_stats *stats);
/*
 * 1 when the flush delivered every row it tried to every recipient: none
 * deferred, dead or refused by the relay (--once and --flush exit 75
 * otherwise).  Rows waiting on a back-off they were told about earlier are
 * not tried, so they do not count.
 */
int outbox_settled(const outbox_stats *s);
/* Print the queued and dead rows with their reasons; the number shown or -1. */
int outbox_show(store *st, FILE *f, char **err_r);
/* --check-login for the relay: connect, TLS, EHLO, AUTH, QUIT; sends no
 * mail; prints what it found on out.  0, or -1 (logged). */
int outbox_check_login(const cfg *c, store *st, int trace, FILE *out);
/* Seconds to wait after the n-th failed attempt (n >= 1). */
long long outbox_backoff(int n);
#endif

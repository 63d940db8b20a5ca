/* mailmill - ISC licence, see LICENSE */
/*
 * The outbox is flushed on its own timer (outbox_interval), in a process of
 * its own like an account run (worker_spawn_outbox), one flush at a time,
 * killed past run_timeout, under the outbox's lease (claim.h) so that
 * daemons sharing a store never flush at once.
 */
#include <config.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <glib.h>
#include "daemon/sched/sched_int.h"
#include "daemon/core/log.h"
#include "daemon/sched/worker.h"

static void
flushtimer_on_exit(GPid pid, gint status, gpointer arg)
{
	sched *s = arg;

	g_spawn_close_pid(pid);
	s->outbox_pid = 0;
	claim_release(&s->outbox_lease, s->st);
	if (WIFSIGNALED(status))
		log_error("outbox: the flush process died (signal %d)", WTERMSIG(status));
	sched_metrics_changed(s);   /* the outbox gauges */
	sched_maybe_quit(s);
}

static gboolean
flushtimer_on_due(gpointer arg)
{
	sched *s = arg;
	struct run_lease rl;
	char *err = NULL;
	pid_t pid;

	if (s->stopping || s->outbox_pid > 0 || s->c->smtp == NULL)
		return G_SOURCE_CONTINUE;
	/* One flush at a time among the daemons sharing the store: another
	 * one's is no failure, this one tries at its next interval. */
	if (claim_take(&s->outbox_lease, s->st, s->owner, CLAIM_OUTBOX, s->c->lease_ttl_s) <= 0)
		return G_SOURCE_CONTINUE;
	claim_lease(&s->outbox_lease, &rl);
	if (worker_spawn_outbox(s->c, s->o->ro.trace, &rl, &pid, &err) < 0) {
		log_error("outbox: cannot start a flush: %s", err);
		free(err);
		claim_release(&s->outbox_lease, s->st);
		return G_SOURCE_CONTINUE;
	}
	s->outbox_pid = pid;
	s->outbox_deadline = g_get_monotonic_time() + s->c->run_timeout_s * G_USEC_PER_SEC;
	g_child_watch_add(pid, flushtimer_on_exit, s);
	return G_SOURCE_CONTINUE;
}

/* (Re)start the timer with the current configuration's interval. */
void
flushtimer_start(sched *s)
{
	flushtimer_stop(s);
	s->outbox_timer = g_timeout_add_seconds((guint)s->c->outbox_interval_s, flushtimer_on_due, s);
}

void
flushtimer_check_deadline(sched *s, gint64 now)
{
	/* The flush renews the lease before each message; this keeps it while
	 * one message takes long.  A lost one stops the flush by itself. */
	if (s->outbox_pid > 0 && s->outbox_lease.held)
		(void)claim_tick(&s->outbox_lease, s->st, now);
	if (s->outbox_pid > 0 && now > s->outbox_deadline) {
		log_error("outbox: the flush passed its deadline (run_timeout): killed");
		kill(s->outbox_pid, SIGKILL);
		s->outbox_deadline = G_MAXINT64;
	}
}

void
flushtimer_stop(sched *s)
{
	if (s->outbox_timer != 0)
		g_source_remove(s->outbox_timer);
	s->outbox_timer = 0;
}

/* mailmill - ISC licence, see LICENSE */
/*
 * Timing: every account on its own timer; a due account waits in the ready
 * queue until one of the `workers` slots is free; after its run it is
 * armed again, later after failures (daemon/sched/backoff.h).  An account
 * with `at` times has a second timer for those (daemon/sched/at.h); with
 * `at` and no `interval` it has only that one, and a run after a failure.
 * Also the daemon's start and stop.  See daemon/sched/sched_int.h for the
 * other modules.
 */
#include <config.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>
#include <glib.h>
#include "daemon/sched/sched_int.h"
#include "daemon/sched/backoff.h"
#include "daemon/sched/at.h"
#include "daemon/core/detach.h"
#include "daemon/core/log.h"
#include "daemon/core/privs.h"
#include "daemon/core/statelock.h"

#define SCHED_WATCHDOG_MS 200

int
sched_selected(const sched *s, const char *name)
{
	return cfg_selected(name, s->o->only, s->o->n_only);
}

/* ------------------------------------------------------------ the timer heap */

static void sched_tq_rearm(sched *s);
static void sched_on_at(sched *s, sched_acct *a);

static void
sched_timer_set(sched *s, sched_timer *t, gint64 due)
{
	timerq_set(&s->tq, &t->node, due);
	sched_tq_rearm(s);
}

static void
sched_timer_cancel(sched *s, sched_timer *t)
{
	if (!timerq_queued(&t->node))
		return;
	timerq_cancel(&s->tq, &t->node);
	sched_tq_rearm(s);
}

/* Queue the account for a worker unless it waits or runs already. */
static void
sched_due_now(sched *s, sched_acct *a)
{
	if (!a->queued && !a->running && !a->gone && !s->stopping) {
		a->queued = 1;
		g_queue_push_tail(&s->ready, a);
		sched_try_start(s);
	}
}

/* The head of the heap is due: every node due by now, then the next. */
static gboolean
sched_on_tq(gpointer arg)
{
	sched *s = arg;
	gint64 now = g_get_monotonic_time();
	timerq_node *n;

	s->tq_source = 0;
	s->tq_dispatching = 1;
	while ((n = timerq_peek(&s->tq)) != NULL && n->due <= now) {
		sched_timer *t = (sched_timer *)n;

		timerq_cancel(&s->tq, n);
		if (t->at)
			sched_on_at(s, t->a);
		else
			sched_due_now(s, t->a);
	}
	s->tq_dispatching = 0;
	sched_tq_rearm(s);
	return G_SOURCE_REMOVE;
}

/* One GLib timeout, for the head of the heap, moved only when the head
 * changes. */
static void
sched_tq_rearm(sched *s)
{
	timerq_node *n = timerq_peek(&s->tq);
	gint64 wait;

	if (s->tq_dispatching)
		return;
	if (s->tq_source != 0 && (n == NULL || n->due != s->tq_due)) {
		g_source_remove(s->tq_source);
		s->tq_source = 0;
	}
	if (n == NULL || s->tq_source != 0)
		return;
	wait = n->due - g_get_monotonic_time();
	wait = wait <= 0 ? 0 : (wait + 999) / 1000;
	s->tq_due = n->due;
	s->tq_source = g_timeout_add((guint)MIN(wait, (gint64)G_MAXUINT), sched_on_tq, s);
}

static void
sched_record(sched *s, const char *name, long long next, int failures)
{
	char *err = NULL;

	if (store_schedule_put(s->st, name, next, failures, &err) < 0) {
		log_warn("cannot record the schedule of %s: %s", name, err);
		free(err);
	}
}

/* The account's lease in the metrics: held by this daemon or not.  None
 * on SQLite, where this daemon is the only one. */
static void
sched_lease_gauge(sched *s, sched_acct *a)
{
	if (strcmp(store_driver(s->st), "sqlite") != 0)
		metrics_lease(s->m, a->name, s->owner, a->lease.held);
}

/* Run the account after delay_s seconds (fractions count); not recorded:
 * the next run of an account another daemon holds is that daemon's to say. */
static void
sched_arm_timer(sched *s, sched_acct *a, double delay_s)
{
	if (delay_s < 0)
		delay_s = 0;
	if (delay_s > 86400.0 * 366)
		delay_s = 86400.0 * 366;
	sched_timer_set(s, &a->timer, g_get_monotonic_time() + (gint64)(delay_s * 1e6));
}

static void
sched_arm(sched *s, sched_acct *a, double delay_s)
{
	sched_arm_timer(s, a, delay_s);
	sched_record(s, a->name, (long long)time(NULL) + (long long)(delay_s + 0.5), a->failures);
}

/* ------------------------------------------------------------ `at` slots */

/* The timer waits at most this long before it reads the wall clock again:
 * GLib's timers follow the monotonic clock, which a suspended host or a
 * clock set by hand leaves behind. */
#define SCHED_AT_RECHECK_S 3600

/* The wall clock of the `at` times.  The test build (configure
 * --enable-crashpoints) starts it at MAILMILL_TEST_NOW (unix seconds) when
 * set, so that a test can put the daemon seconds before a slot on a DST
 * day; a release build has no such variable. */
static time_t
sched_now(void)
{
#ifdef MM_CRASHPOINTS
	static int init;
	static long long offset;

	if (!init) {
		const char *v = getenv("MAILMILL_TEST_NOW");

		init = 1;
		if (v != NULL && *v != '\0')
			offset = strtoll(v, NULL, 10) - (long long)time(NULL);
	}
	return (time_t)((long long)time(NULL) + offset);
#else
	return time(NULL);
#endif
}

/* The account's next slot, for the log. */
static const char *
sched_at_when(const sched_acct *a, char *buf, size_t len)
{
	time_t due = (time_t)a->at_due;
	struct tm lt;

	if (localtime_r(&due, &lt) == NULL || strftime(buf, len, "%Y-%m-%d %H:%M %Z", &lt) == 0)
		snprintf(buf, len, "%lld", a->at_due);
	return buf;
}

/* The account's next slot after now, and its timer (none without `at`). */
static void
sched_at_arm(sched *s, sched_acct *a, const cfg_account *ca, time_t now)
{
	long long wait;

	sched_timer_cancel(s, &a->at_timer);
	if (ca->n_at == 0) {
		a->at_due = 0;
		return;
	}
	a->at_due = (long long)at_next(ca->at, ca->n_at, now);
	wait = a->at_due - (long long)now;
	if (wait > SCHED_AT_RECHECK_S)
		wait = SCHED_AT_RECHECK_S;
	if (wait < 0)
		wait = 0;
	sched_timer_set(s, &a->at_timer, g_get_monotonic_time() + wait * G_USEC_PER_SEC);
}

static void
sched_on_at(sched *s, sched_acct *a)
{
	const cfg_account *ca = a->ca;
	time_t now = sched_now();
	char when[64];

	if (ca == NULL || a->gone || s->stopping)
		return;
	if ((long long)now < a->at_due) {
		sched_at_arm(s, a, ca, now);  /* woken early: the same slot again */
		return;
	}
	/* Once per slot, however late the timer (several slots slept through
	 * are one run); a run in progress began before the slot, so it runs
	 * again after. */
	if (a->running)
		a->at_pending = 1;
	else
		sched_due_now(s, a);
	sched_at_arm(s, a, ca, now);
	log_info("%s: scheduled run; next at %s", a->name, sched_at_when(a, when, sizeof when));
}

static void
sched_last_started(void *arg, const store_run_row *row)
{
	*(long long *)arg = row->result != NULL ? row->started : 0;
}

/* A daemon (re)started: has a slot passed since the account's last run
 * began (or did it never run)?  Then it runs once now, for all of them. */
static int
sched_at_missed(sched *s, const cfg_account *ca)
{
	long long started = 0;
	char *err = NULL;

	if (store_run_last(s->st, ca->name, sched_last_started, &started, &err) < 0) {
		log_warn("%s: cannot read its last run: %s: running it now", ca->name, err);
		free(err);
		return 1;
	}
	return at_missed(ca->at, ca->n_at, (time_t)started, sched_now());
}

/* Start or reload: the `at` timer, and the first run of an account that
 * runs only at those times. */
static void
sched_at_start(sched *s, sched_acct *a, const cfg_account *ca)
{
	char when[64];

	sched_at_arm(s, a, ca, sched_now());
	if (ca->n_at == 0)
		return;
	sched_at_when(a, when, sizeof when);
	if (ca->at_only && sched_at_missed(s, ca)) {
		log_info("%s: a scheduled time passed since its last run: running it now; next at %s",
			 a->name, when);
		sched_arm(s, a, 0);
	} else {
		log_info("%s: next scheduled run at %s", a->name, when);
		if (ca->at_only)
			sched_record(s, a->name, a->at_due, a->failures);
	}
}

static void
sched_cancel(sched *s, sched_acct *a)
{
	sched_timer_cancel(s, &a->timer);
	sched_timer_cancel(s, &a->at_timer);
	a->at_pending = 0;
	a->again = 0;
	if (a->queued) {
		g_queue_remove(&s->ready, a);
		a->queued = 0;
	}
	/* A running one gives its lease back when its run is done. */
	if (!a->running && a->lease.held) {
		claim_release(&a->lease, s->st);
		sched_lease_gauge(s, a);
	}
}

/* Accounts of the (new) configuration: keep the state of known ones. */
void
sched_sync_accounts(sched *s)
{
	guint i;
	size_t k;

	for (i = 0; i < s->accts->len; i++) {
		sched_acct *a = s->accts->pdata[i];

		a->gone = 1;
		a->ca = NULL;   /* the old configuration is freed already */
	}
	for (k = 0; k < s->c->n_accounts; k++) {
		const cfg_account *ca = &s->c->accounts[k];
		sched_acct *a;

		if (!sched_selected(s, ca->name))
			continue;
		a = g_hash_table_lookup(s->by_name, ca->name);
		if (a != NULL) {
			int was_gone = a->gone;

			a->gone = 0;
			a->ca = ca;
			/* The gauge is there from the start, not only after a first run. */
			supervise_signin(s, a);
			if (!was_gone || a->running || a->queued || timerq_queued(&a->timer.node)) {
				sched_at_arm(s, a, ca, sched_now());  /* the times may have changed */
				continue;
			}
		} else {
			a = g_new0(sched_acct, 1);
			a->name = g_strdup(ca->name);
			a->ca = ca;
			a->timer.a = a->at_timer.a = a;
			a->at_timer.at = 1;
			g_ptr_array_add(s->accts, a);
			g_hash_table_insert(s->by_name, a->name, a);
			supervise_signin(s, a);
		}
		/* Spread the first runs so that many accounts do not start at once. */
		if (!ca->at_only)
			sched_arm(s, a, backoff_first(ca->interval_s, g_random_double()));
		sched_at_start(s, a, ca);
	}
	for (i = 0; i < s->accts->len; i++) {
		sched_acct *a = s->accts->pdata[i];

		if (a->gone)
			sched_cancel(s, a);
	}
	idle_sync(s);
}

/* The account's lease before its run: 1 ours.  Another daemon's: not a
 * failure, the account is due again after its interval.  An account that
 * runs only at its `at` slots tries once more when a lease could have
 * expired: the holder keeps it until its next slot, and if the holder died
 * meanwhile, that slot is this daemon's to serve.  The store failing is a
 * failure: back off as after a run that failed. */
static int
sched_claim(sched *s, sched_acct *a, const cfg_account *ca)
{
	int r = claim_take(&a->lease, s->st, s->owner, a->name, s->c->lease_ttl_s);

	sched_lease_gauge(s, a);
	if (r == 1) {
		a->claim_retry = 0;
		return 1;
	}
	if (r == 0) {
		if (!ca->at_only)
			sched_arm_timer(s, a, backoff_next(ca->interval_s,
							   g_random_double_range(-1, 1)));
		else if ((a->claim_retry = !a->claim_retry))
			sched_arm_timer(s, a, (double)s->c->lease_ttl_s + 1);
		return 0;
	}
	a->failures++;
	sched_arm_timer(s, a, backoff_failed(ca->interval_s, a->failures, 0, s->c->max_backoff_s,
					     g_random_double()));
	return 0;
}

void
sched_try_start(sched *s)
{
	while (!s->stopping && s->workers->len < (guint)s->c->workers &&
	       !g_queue_is_empty(&s->ready)) {
		sched_acct *a = g_queue_pop_head(&s->ready);
		const cfg_account *ca = a->ca;
		char *err = NULL;

		a->queued = 0;
		if (a->running || a->gone || ca == NULL)
			continue;
		if (!sched_claim(s, a, ca))
			continue;
		if (supervise_start(s, a, &err) < 0) {
			log_error("%s: cannot start a worker: %s", a->name, err);
			free(err);
			claim_release(&a->lease, s->st);
			a->failures++;
			sched_arm(s, a, backoff_failed(ca->interval_s, a->failures, 0,
						       s->c->max_backoff_s, g_random_double()));
			continue;
		}
		a->running = 1;
		sched_record(s, a->name, 0, a->failures);
	}
}

void
sched_run_done(sched *s, sched_acct *a, sched_run_end how)
{
	const cfg_account *ca = a->ca;
	int auth = how == SCHED_RUN_AUTH, at_pending = a->at_pending || a->again;
	int ok = how == SCHED_RUN_OK || how == SCHED_RUN_CHARGED;

	a->running = 0;
	a->at_pending = 0;
	a->again = 0;
	if (how == SCHED_RUN_OK)
		a->failures = 0;
	else if (how != SCHED_RUN_CHARGED)
		a->failures++;
	if (!s->stopping && !a->gone && ca != NULL) {
		double next;   /* seconds to its next run here, which keeps the lease */

		if (ok && at_pending) {
			sched_arm(s, a, next = 0);  /* after a failure the retry serves the slot */
		} else if (ok && ca->at_only) {
			/* a retry armed before a slot ran it */
			sched_timer_cancel(s, &a->timer);
			sched_record(s, a->name, a->at_due, a->failures);  /* the `at` timer's */
			next = (double)(a->at_due - (long long)sched_now());
		} else if (ok) {
			next = backoff_next(ca->interval_s, g_random_double_range(-1, 1));
			sched_arm(s, a, next);
		} else {
			next = backoff_failed(ca->interval_s, a->failures, auth,
					      s->c->max_backoff_s, g_random_double());
			log_warn("%s: %d failed run(s) in a row%s: next try in %.0fs", a->name,
				 a->failures, auth ? " (authentication refused: backing off harder)" : "",
				 next);
			sched_arm(s, a, next);
		}
		claim_hold(&a->lease, s->st, next);
	} else {
		claim_release(&a->lease, s->st);
	}
	sched_lease_gauge(s, a);
	if (!sched_maybe_quit(s))
		sched_try_start(s);
}

/* SIGUSR1: every account that is not running now is due now. */
void
sched_poll_all(sched *s)
{
	guint i;

	for (i = 0; i < s->accts->len; i++) {
		sched_acct *a = s->accts->pdata[i];

		if (a->gone || a->running || a->queued)
			continue;
		sched_timer_cancel(s, &a->timer);
		a->queued = 1;
		g_queue_push_tail(&s->ready, a);
	}
	sched_try_start(s);
}

void
sched_run_now(sched *s, const char *name)
{
	sched_acct *a = g_hash_table_lookup(s->by_name, name);

	if (a == NULL || a->gone || s->stopping)
		return;
	log_debug("%s: new mail (IDLE)", a->name);
	if (a->running)
		a->again = 1;
	else
		sched_due_now(s, a);
}

/* SIGTERM: nothing new starts; the workers finish the message in hand. */
void
sched_stop(sched *s)
{
	guint i;

	s->stopping = 1;
	for (i = 0; i < s->accts->len; i++)
		sched_cancel(s, s->accts->pdata[i]);
	supervise_signal_all(s, SIGTERM);
	idle_signal(s, SIGTERM);
	sched_maybe_quit(s);
}

int
sched_maybe_quit(sched *s)
{
	if (!s->stopping || s->workers->len > 0 || s->outbox_pid != 0 || idle_alive(s))
		return 0;
	g_main_loop_quit(s->loop);
	return 1;
}

/* ------------------------------------------------------------ metrics */

/* Render once; the file and the HTTP server get the same text. */
static void
sched_metrics_flush(sched *s)
{
	size_t len;
	char *err = NULL;
	char *text = metrics_render(s->m, s->st, &len, &s->store_ok);

	s->metrics_last = g_get_monotonic_time();
	if (metrics_write_text(s->c->state_dir, text, len, &err) < 0) {
		log_warn("%s", err);
		free(err);
	}
	if (s->http != NULL) {
		metrics_http_publish(s->http, text, len);   /* taken over */
		metrics_http_beat(s->http, s->store_ok);
	} else {
		g_free(text);
	}
}

static gboolean
sched_on_metrics(gpointer arg)
{
	sched *s = arg;

	s->metrics_timer = 0;
	if (metrics_dirty(s->m))
		sched_metrics_flush(s);
	return G_SOURCE_REMOVE;
}

void
sched_metrics_changed(sched *s)
{
	gint64 next = s->metrics_last + METRICS_PERIOD_S * G_USEC_PER_SEC;
	gint64 now = g_get_monotonic_time();

	if (s->metrics_timer != 0)
		return;   /* a write is due already: it takes this change too */
	if (s->metrics_last == 0 || now >= next)
		sched_metrics_flush(s);
	else
		s->metrics_timer = g_timeout_add((guint)((next - now + 999) / 1000), sched_on_metrics, s);
}

/* /healthz: is the store still there?  One row read, whatever the number of
 * accounts; between metrics writes, which check it too. */
static gboolean
sched_on_health(gpointer arg)
{
	sched *s = arg;
	long long v;
	char *err = NULL;

	if (g_get_monotonic_time() - s->metrics_last >= METRICS_PERIOD_S * G_USEC_PER_SEC) {
		int ok = store_counter_get(s->st, STORE_COUNTER_UNKNOWN, &v, &err) == 0;

		if (!ok && s->store_ok)
			log_warn("the store does not answer: %s", err);
		s->store_ok = ok;
		free(err);
	}
	metrics_http_beat(s->http, s->store_ok);
	return G_SOURCE_CONTINUE;
}

static gboolean
sched_on_watchdog(gpointer arg)
{
	sched *s = arg;
	gint64 now = g_get_monotonic_time();

	supervise_check_deadlines(s, now);
	flushtimer_check_deadline(s, now);
	if (s->http != NULL)
		metrics_http_beat(s->http, s->store_ok);
	return G_SOURCE_CONTINUE;
}

/* The lock, the store, the state directory's owner, and detaching: the
 * part of the start that can fail.  Returns an exit status; -1: go on. */
static int
sched_setup(sched *s, int *detached)
{
	char *err = NULL;
	int rc = -1;

	if (statelock_take(s->c->state_dir, &s->lock_fd, &err) < 0) {
		log_error("cannot start: %s", err);
		rc = EX_TEMPFAIL;
	} else if (store_open_cfg(s->c, 0, &s->st, &err) < 0) {
		log_error("cannot open the store: %s", err);
		rc = EX_TEMPFAIL;
	} else if (privs_chown_state(s->c, &err) < 0 || privs_check_access(s->c, &err) < 0) {
		log_error("%s", err);
		rc = EX_CONFIG;
	} else if (s->c->metrics_listen != NULL && s->o->foreground &&
		   metrics_http_start(s->c->metrics_listen, &s->http, &err) < 0) {
		log_error("%s", err);
		rc = EX_UNAVAILABLE;
	} else if (!s->o->foreground) {
		int r = detach_fork(s->c->log_target != NULL &&
				    strcmp(s->c->log_target, "syslog") == 0, &err);

		if (r == 1) {
			rc = EX_OK;     /* the parent: the daemon goes on in the child */
		} else if (r == 2) {
			log_error("the detached daemon stopped while starting (its log says why)");
			rc = EX_OSERR;
		} else if (r < 0 || statelock_set_pid(s->lock_fd, getpid()) < 0 ||
			   detach_write_pidfile(s->c->pid_file, &err) < 0) {
			log_error("cannot detach: %s", err != NULL ? err : strerror(errno));
			rc = EX_OSERR;
		} else if (s->c->metrics_listen != NULL &&
			   metrics_http_start(s->c->metrics_listen, &s->http, &err) < 0) {
			/* After the fork: its thread would not survive one. */
			log_error("%s", err);
			rc = EX_UNAVAILABLE;
		} else {
			*detached = 1;
			detach_ready();
		}
	}
	free(err);
	return rc;
}

int
sched_main(cfg *c, const sched_opts *o)
{
	sched s;
	char *err = NULL;
	int rc, detached = 0;
	guint i;

	memset(&s, 0, sizeof s);
	s.c = c;
	s.o = o;
	s.lock_fd = -1;
	if ((rc = sched_setup(&s, &detached)) >= 0)
		goto out;
	rc = EX_OK;
	s.loop = g_main_loop_new(NULL, FALSE);
	s.m = metrics_new();
	s.accts = g_ptr_array_new();
	s.by_name = g_hash_table_new(g_str_hash, g_str_equal);
	s.store_ok = 1;
	timerq_init(&s.tq);
	s.workers = g_ptr_array_new();
	g_queue_init(&s.ready);
	signals_install(&s);
	claim_owner(s.owner, sizeof s.owner);
	if (spawnctl_init(&s, &err) < 0) {
		log_error("cannot start: %s", err);
		free(err);
		rc = EX_OSERR;
		s.stopping = 1;
	}
	s.watchdog = g_timeout_add(SCHED_WATCHDOG_MS, sched_on_watchdog, &s);
	sched_sync_accounts(&s);
	flushtimer_start(&s);
	sched_metrics_flush(&s);
	if (s.http != NULL) {
		s.health_timer = g_timeout_add_seconds(METRICS_PERIOD_S, sched_on_health, &s);
		log_info("metrics served on http://%s/metrics", c->metrics_listen);
	}
	log_info("mailmilld %s started (pid %ld, lease owner %s): %u account(s), %d worker(s) at"
		 " most, state in %s", PACKAGE_VERSION, (long)getpid(), s.owner, s.accts->len,
		 c->workers, c->state_dir);
	if (!s.stopping)
		g_main_loop_run(s.loop);
	spawnctl_free(&s);
	log_info("mailmilld stopped");

	signals_remove(&s);
	g_source_remove(s.watchdog);
	flushtimer_stop(&s);
	if (s.metrics_timer != 0)
		g_source_remove(s.metrics_timer);
	if (s.health_timer != 0)
		g_source_remove(s.health_timer);
	if (s.tq_source != 0)
		g_source_remove(s.tq_source);
	sched_metrics_flush(&s);   /* the last counts, whatever the rate */
	timerq_clear(&s.tq);
	for (i = 0; i < s.accts->len; i++) {
		sched_acct *a = s.accts->pdata[i];

		/* Given back: the other daemons take the account at its next due
		 * time there, not after the lease ran out. */
		claim_release(&a->lease, s.st);
		g_free(a->name);
		g_free(a);
	}
	idle_free(&s);
	g_hash_table_destroy(s.by_name);
	g_ptr_array_free(s.accts, TRUE);
	g_ptr_array_free(s.workers, TRUE);
	g_queue_clear(&s.ready);
	metrics_free(&s.m);
	g_main_loop_unref(s.loop);
	if (detached)
		detach_remove_pidfile(s.c->pid_file);
out:
	metrics_http_stop(&s.http);
	store_close(&s.st);
	if (s.lock_fd >= 0)
		close(s.lock_fd);
	cfg_free(&s.c);
	return rc;
}

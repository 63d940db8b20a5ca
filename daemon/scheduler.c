/* mailmill - ISC licence, see LICENSE */
#include <config.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <pwd.h>
#include <glib.h>
#include <glib-unix.h>
#include "daemon/scheduler.h"
#include "daemon/detach.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/pipeline.h"
#include "daemon/plugin.h"
#include "daemon/statelock.h"
#include "daemon/store.h"
#include "daemon/worker.h"

#define SCHED_WATCHDOG_MS 200
#define SCHED_JITTER 0.1            /* +-10% of the interval */
#define SCHED_FIRST_MAX_S 30.0      /* first runs spread over at most this */
#define SCHED_AUTH_FACTOR 4         /* refused logins back off this much faster */
#define SCHED_LINE_MAX 1024         /* a longer progress line is a broken worker */

typedef struct sched sched;

typedef struct sched_acct {
	char *name;
	guint timer;          /* until the next run; 0: none */
	int queued;           /* waiting for a free worker */
	int running;
	int gone;             /* removed by a reload */
	int failures;         /* failed runs in a row */
} sched_acct;

typedef struct sched_worker {
	sched *s;
	sched_acct *acct;
	pid_t pid;
	int fd;
	guint fd_watch;
	GString *in;
	char uid[72];                 /* message in hand, "" none */
	unsigned long long uid_size;
	gint64 msg_deadline, run_deadline;  /* monotonic us */
	gint64 t0;
	long long started;            /* unix */
	const char *killed;           /* why we killed it, NULL if we did not */
	char error[512];
	run_stats stats;
	int have_stats;
	int exited, status, eof;
} sched_worker;

struct sched {
	cfg *c;
	const sched_opts *o;
	GMainLoop *loop;
	store *st;
	metrics *m;
	int lock_fd;
	GPtrArray *accts;             /* sched_acct * */
	GQueue ready;                 /* sched_acct * waiting for a worker */
	GPtrArray *workers;           /* sched_worker * */
	int stopping;
	guint watchdog;
	guint outbox_timer;
	pid_t outbox_pid;             /* a flush running, 0 none */
	gint64 outbox_deadline;
};

static void sched_try_start(sched *s);

static const cfg_account *
sched_cfg_account(const sched *s, const char *name)
{
	return cfg_find_account(s->c, name);
}

static int
sched_selected(const sched *s, const char *name)
{
	int i;

	if (s->o->n_only == 0)
		return 1;
	for (i = 0; i < s->o->n_only; i++)
		if (strcmp(s->o->only[i], name) == 0)
			return 1;
	return 0;
}

/* The timer callbacks need both the account and the scheduler. */
typedef struct sched_due_arg {
	sched *s;
	sched_acct *a;
} sched_due_arg;

static gboolean
sched_on_due(gpointer arg)
{
	sched_due_arg *d = arg;

	d->a->timer = 0;
	if (!d->a->queued && !d->a->running && !d->a->gone && !d->s->stopping) {
		d->a->queued = 1;
		g_queue_push_tail(&d->s->ready, d->a);
		sched_try_start(d->s);
	}
	return G_SOURCE_REMOVE;
}

/* Run the account after delay_s seconds (fractions count). */
static void
sched_arm(sched *s, sched_acct *a, double delay_s, int failures)
{
	sched_due_arg *d = g_new(sched_due_arg, 1);
	char *err = NULL;
	guint ms;

	if (a->timer != 0)
		g_source_remove(a->timer);
	if (delay_s < 0)
		delay_s = 0;
	ms = delay_s > 86400.0 * 366 ? 86400u * 366 * 1000 : (guint)(delay_s * 1000.0);
	d->s = s;
	d->a = a;
	a->timer = g_timeout_add_full(G_PRIORITY_DEFAULT, ms, sched_on_due, d, g_free);
	if (store_schedule_put(s->st, a->name, (long long)time(NULL) + (long long)(delay_s + 0.5),
			       failures, &err) < 0) {
		log_warn("cannot record the schedule of %s: %s", a->name, err);
		free(err);
	}
}

static double
sched_jitter(long long interval_s)
{
	return (double)interval_s * (1.0 + g_random_double_range(-SCHED_JITTER, SCHED_JITTER));
}

/* Never sooner than the interval; doubling (or faster after a refused
 * login) up to the cap. */
static double
sched_backoff(const sched *s, long long interval_s, int failures, int auth)
{
	double cap = (double)s->c->max_backoff_s * (auth ? SCHED_AUTH_FACTOR : 1);
	double d = (double)interval_s;
	int i;

	for (i = 0; i < failures && d < cap; i++)
		d *= auth ? SCHED_AUTH_FACTOR : 2;
	if (d > cap)
		d = cap;
	if (d < (double)interval_s)
		d = (double)interval_s;
	return d * (1.0 + g_random_double_range(0, SCHED_JITTER));
}

static sched_acct *
sched_find(sched *s, const char *name)
{
	guint i;

	for (i = 0; i < s->accts->len; i++) {
		sched_acct *a = s->accts->pdata[i];

		if (strcmp(a->name, name) == 0)
			return a;
	}
	return NULL;
}

/* Accounts of the (new) configuration: keep the state of known ones. */
static void
sched_sync_accounts(sched *s)
{
	guint i;
	size_t k;

	for (i = 0; i < s->accts->len; i++)
		((sched_acct *)s->accts->pdata[i])->gone = 1;
	for (k = 0; k < s->c->n_accounts; k++) {
		const cfg_account *ca = &s->c->accounts[k];
		sched_acct *a;
		double first;

		if (!sched_selected(s, ca->name))
			continue;
		a = sched_find(s, ca->name);
		if (a != NULL) {
			int was_gone = a->gone;

			a->gone = 0;
			if (!was_gone || a->running || a->queued || a->timer != 0)
				continue;
		} else {
			a = g_new0(sched_acct, 1);
			a->name = g_strdup(ca->name);
			g_ptr_array_add(s->accts, a);
		}
		/* Spread the first runs so that many accounts do not start at once. */
		first = (double)ca->interval_s * SCHED_JITTER;
		if (first > SCHED_FIRST_MAX_S)
			first = SCHED_FIRST_MAX_S;
		sched_arm(s, a, g_random_double_range(0, first), 0);
	}
	for (i = 0; i < s->accts->len; i++) {
		sched_acct *a = s->accts->pdata[i];

		if (!a->gone)
			continue;
		if (a->timer != 0) {
			g_source_remove(a->timer);
			a->timer = 0;
		}
		if (a->queued) {
			g_queue_remove(&s->ready, a);
			a->queued = 0;
		}
	}
}

/* ---------------------------------------------------------------- workers */

static void
sched_charge(sched *s, sched_worker *w, const char *why)
{
	const cfg_account *ca = sched_cfg_account(s, w->acct->name);
	int max = ca != NULL ? ca->max_attempts : 3, attempts = 0;
	char *err = NULL;

	if (store_ledger_fail(s->st, w->acct->name, w->uid, why, &attempts, &err) < 0) {
		log_error("%s: uid %s: cannot record the failure (%s): %s", w->acct->name, w->uid,
			  why, err);
		free(err);
		return;
	}
	if (attempts < max) {
		log_error("%s: uid %s: %s (attempt %d of %d; tried again on the next run)",
			  w->acct->name, w->uid, why, attempts, max);
		return;
	}
	if (store_ledger_quarantine(s->st, w->acct->name, w->uid, &err) < 0) {
		log_error("%s: uid %s: cannot quarantine: %s", w->acct->name, w->uid, err);
		free(err);
		return;
	}
	metrics_quarantined(s->m, w->acct->name, w->uid_size);
	log_error("%s: uid %s: QUARANTINED after %d failed attempts (last: %s): left on the server"
		  " and skipped from now on; see mailmilld --status", w->acct->name, w->uid,
		  attempts, why);
}

static void
sched_on_line(sched_worker *w, const char *line)
{
	worker_event ev;
	gint64 now = g_get_monotonic_time();

	if (worker_parse(line, &ev) < 0) {
		log_warn("%s: worker %ld sent a malformed progress line", w->acct->name, (long)w->pid);
		return;
	}
	switch (ev.kind) {
	case WORKER_EV_START:
		snprintf(w->uid, sizeof w->uid, "%s", ev.uid);
		w->uid_size = ev.size;
		w->msg_deadline = now + w->s->c->message_timeout_s * G_USEC_PER_SEC;
		break;
	case WORKER_EV_DONE:
		metrics_verdict(w->s->m, w->acct->name, ev.stage, ev.verdict, ev.size);
		w->uid[0] = '\0';
		w->msg_deadline = 0;
		break;
	case WORKER_EV_ERROR:
		snprintf(w->error, sizeof w->error, "%s", ev.error);
		break;
	case WORKER_EV_RESULT:
		w->stats = ev.stats;
		w->have_stats = 1;
		break;
	}
}

/* Read what the worker wrote; 1 at end of file. */
static int
sched_drain(sched_worker *w)
{
	char buf[4096];

	for (;;) {
		ssize_t n = read(w->fd, buf, sizeof buf);
		char *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : 1;
		if (n == 0)
			return 1;
		g_string_append_len(w->in, buf, n);
		while ((nl = memchr(w->in->str, '\n', w->in->len)) != NULL) {
			*nl = '\0';
			sched_on_line(w, w->in->str);
			g_string_erase(w->in, 0, nl - w->in->str + 1);
		}
		if (w->in->len > SCHED_LINE_MAX)
			g_string_truncate(w->in, 0);
	}
}

static const char *
sched_result(const sched_worker *w, char *why, size_t len)
{
	if (w->killed != NULL) {
		snprintf(why, len, "%s", w->killed);
		return "timeout";
	}
	if (WIFSIGNALED(w->status)) {
		snprintf(why, len, "the worker crashed (signal %d, %s)", WTERMSIG(w->status),
			 strsignal(WTERMSIG(w->status)));
		return "crashed";
	}
	if (WIFEXITED(w->status) && WEXITSTATUS(w->status) == 0) {
		why[0] = '\0';
		return "ok";
	}
	if (WIFEXITED(w->status) && WEXITSTATUS(w->status) == WORKER_EXIT_AUTH) {
		snprintf(why, len, "%s", w->error[0] ? w->error : "authentication failed");
		return "auth";
	}
	if (WIFEXITED(w->status) && w->error[0] == '\0' && !w->have_stats) {
		snprintf(why, len, "the worker exited with status %d before reporting",
			 WEXITSTATUS(w->status));
		return "crashed";
	}
	snprintf(why, len, "%s", w->error[0] ? w->error : "the run failed");
	return "failed";
}

/* Both the exit and the end of the pipe are in: account for the run. */
static void
sched_finish(sched_worker *w)
{
	sched *s = w->s;
	sched_acct *a = w->acct;
	const cfg_account *ca = sched_cfg_account(s, a->name);
	char why[600], *err = NULL;
	const char *result = sched_result(w, why, sizeof why);
	long long now = (long long)time(NULL);
	double secs = (double)(g_get_monotonic_time() - w->t0) / 1e6;
	int ok = strcmp(result, "ok") == 0, charged = 0;
	store_run_row row;

	if (w->uid[0] != '\0' && (strcmp(result, "timeout") == 0 || strcmp(result, "crashed") == 0)) {
		sched_charge(s, w, why);
		charged = 1;
	} else if (!ok) {
		log_error("%s: run %s: %s", a->name, strcmp(result, "auth") == 0 ?
			  "failed: AUTHENTICATION refused" : result, why);
	}
	memset(&row, 0, sizeof row);
	row.account = a->name;
	row.started = w->started;
	row.finished = now;
	row.result = result;
	row.error = why[0] ? why : NULL;
	row.fetched = w->stats.fetched;
	row.deleted = w->stats.deleted;
	row.kept = w->stats.kept;
	row.deferred = w->stats.deferred;
	row.skipped = w->stats.skipped;
	row.bytes = w->stats.bytes;
	if (store_run_add(s->st, &row, &err) < 0) {
		log_warn("%s: cannot record the run: %s", a->name, err);
		free(err);
		err = NULL;
	}
	metrics_run(s->m, a->name, w->have_stats ? &w->stats : NULL, ok, now, secs);

	a->running = 0;
	if (ok || charged) {
		/* A charged message is bounded by max_attempts, not by back-off. */
		a->failures = ok ? 0 : a->failures;
		if (!s->stopping && !a->gone && ca != NULL)
			sched_arm(s, a, sched_jitter(ca->interval_s), a->failures);
	} else {
		int auth = strcmp(result, "auth") == 0;

		a->failures++;
		if (!s->stopping && !a->gone && ca != NULL) {
			double d = sched_backoff(s, ca->interval_s, a->failures, auth);

			log_warn("%s: %d failed run(s) in a row%s: next try in %.0fs", a->name,
				 a->failures, auth ? " (authentication refused: backing off harder)" : "",
				 d);
			sched_arm(s, a, d, a->failures);
		}
	}
	if (metrics_write(s->m, s->c->state_dir, s->st, &err) < 0) {
		log_warn("%s", err);
		free(err);
	}
	g_ptr_array_remove(s->workers, w);
	if (w->fd_watch != 0)
		g_source_remove(w->fd_watch);
	if (w->fd >= 0)
		close(w->fd);
	g_string_free(w->in, TRUE);
	g_free(w);
	if (s->stopping && s->workers->len == 0 && s->outbox_pid == 0)
		g_main_loop_quit(s->loop);
	else
		sched_try_start(s);
}

static gboolean
sched_on_fd(gint fd, GIOCondition cond, gpointer arg)
{
	sched_worker *w = arg;

	(void)fd;
	(void)cond;
	if (!sched_drain(w))
		return G_SOURCE_CONTINUE;
	w->eof = 1;
	w->fd_watch = 0;
	if (w->exited)
		sched_finish(w);
	return G_SOURCE_REMOVE;
}

static void
sched_on_exit(GPid pid, gint status, gpointer arg)
{
	sched_worker *w = arg;

	(void)pid;
	w->exited = 1;
	w->status = status;
	g_spawn_close_pid(pid);
	if (!w->eof) {
		/* Dead: whatever it wrote is in the pipe now. */
		sched_drain(w);
		w->eof = 1;
		if (w->fd_watch != 0) {
			g_source_remove(w->fd_watch);
			w->fd_watch = 0;
		}
	}
	sched_finish(w);
}

static void
sched_start(sched *s, sched_acct *a)
{
	const cfg_account *ca = sched_cfg_account(s, a->name);
	sched_worker *w;
	char *err = NULL;
	pid_t pid;
	int fd;

	if (ca == NULL)
		return;
	if (worker_spawn(s->c, ca, &s->o->ro, &pid, &fd, &err) < 0) {
		log_error("%s: cannot start a worker: %s", a->name, err);
		free(err);
		a->failures++;
		sched_arm(s, a, sched_backoff(s, ca->interval_s, a->failures, 0), a->failures);
		return;
	}
	w = g_new0(sched_worker, 1);
	w->s = s;
	w->acct = a;
	w->pid = pid;
	w->fd = fd;
	w->in = g_string_new(NULL);
	w->t0 = g_get_monotonic_time();
	w->started = (long long)time(NULL);
	w->run_deadline = w->t0 + s->c->run_timeout_s * G_USEC_PER_SEC;
	a->running = 1;
	g_ptr_array_add(s->workers, w);
	w->fd_watch = g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR, sched_on_fd, w);
	g_child_watch_add(pid, sched_on_exit, w);
	if (store_schedule_put(s->st, a->name, 0, a->failures, &err) < 0) {
		log_warn("cannot record the schedule of %s: %s", a->name, err);
		free(err);
	}
	log_debug("%s: worker %ld started", a->name, (long)pid);
}

static void
sched_try_start(sched *s)
{
	while (!s->stopping && s->workers->len < (guint)s->c->workers &&
	       !g_queue_is_empty(&s->ready)) {
		sched_acct *a = g_queue_pop_head(&s->ready);

		a->queued = 0;
		if (a->running || a->gone)
			continue;
		sched_start(s, a);
	}
}

static gboolean
sched_on_watchdog(gpointer arg)
{
	sched *s = arg;
	gint64 now = g_get_monotonic_time();
	guint i;

	for (i = 0; i < s->workers->len; i++) {
		sched_worker *w = s->workers->pdata[i];

		if (w->killed != NULL || w->exited)
			continue;
		if (now > w->run_deadline)
			w->killed = "killed: the run passed its deadline (run_timeout)";
		else if (w->uid[0] != '\0' && w->msg_deadline != 0 && now > w->msg_deadline)
			w->killed = "killed: the message passed its deadline (message_timeout)";
		else
			continue;
		log_error("%s: worker %ld %s%s%s", w->acct->name, (long)w->pid, w->killed,
			  w->uid[0] ? " with uid " : "", w->uid);
		kill(w->pid, SIGKILL);
	}
	if (s->outbox_pid > 0 && now > s->outbox_deadline) {
		log_error("outbox: the flush passed its deadline (run_timeout): killed");
		kill(s->outbox_pid, SIGKILL);
		s->outbox_deadline = G_MAXINT64;
	}
	return G_SOURCE_CONTINUE;
}

/* ---------------------------------------------------------------- outbox */

/* The outbox is flushed on its own timer (outbox_interval), in a process of
 * its own like an account run, one flush at a time. */
static void
sched_outbox_exit(GPid pid, gint status, gpointer arg)
{
	sched *s = arg;
	char *err = NULL;

	g_spawn_close_pid(pid);
	s->outbox_pid = 0;
	if (WIFSIGNALED(status))
		log_error("outbox: the flush process died (signal %d)", WTERMSIG(status));
	if (metrics_write(s->m, s->c->state_dir, s->st, &err) < 0) {
		log_warn("%s", err);
		free(err);
	}
	if (s->stopping && s->workers->len == 0 && s->outbox_pid == 0)
		g_main_loop_quit(s->loop);
}

static gboolean
sched_on_outbox(gpointer arg)
{
	sched *s = arg;
	char *err = NULL;
	pid_t pid;

	if (s->stopping || s->outbox_pid > 0 || s->c->smtp == NULL)
		return G_SOURCE_CONTINUE;
	if (worker_spawn_outbox(s->c, s->o->ro.trace, &pid, &err) < 0) {
		log_error("outbox: cannot start a flush: %s", err);
		free(err);
		return G_SOURCE_CONTINUE;
	}
	s->outbox_pid = pid;
	s->outbox_deadline = g_get_monotonic_time() + s->c->run_timeout_s * G_USEC_PER_SEC;
	g_child_watch_add(pid, sched_outbox_exit, s);
	return G_SOURCE_CONTINUE;
}

static void
sched_outbox_start(sched *s)
{
	if (s->outbox_timer != 0)
		g_source_remove(s->outbox_timer);
	s->outbox_timer = g_timeout_add_seconds((guint)s->c->outbox_interval_s, sched_on_outbox, s);
}

/* ---------------------------------------------------------------- signals */

static gboolean
sched_on_stop(gpointer arg)
{
	sched *s = arg;
	guint i;

	if (s->stopping) {
		log_warn("stopping now: killing %u worker(s); what they had committed is safe",
			 s->workers->len);
		for (i = 0; i < s->workers->len; i++)
			kill(((sched_worker *)s->workers->pdata[i])->pid, SIGKILL);
		return G_SOURCE_CONTINUE;
	}
	s->stopping = 1;
	log_info("stopping: %u worker(s) finish the message in hand and QUIT", s->workers->len);
	for (i = 0; i < s->accts->len; i++) {
		sched_acct *a = s->accts->pdata[i];

		if (a->timer != 0) {
			g_source_remove(a->timer);
			a->timer = 0;
		}
		a->queued = 0;
	}
	g_queue_clear(&s->ready);
	for (i = 0; i < s->workers->len; i++)
		kill(((sched_worker *)s->workers->pdata[i])->pid, SIGTERM);
	if (s->workers->len == 0 && s->outbox_pid == 0)
		g_main_loop_quit(s->loop);
	return G_SOURCE_CONTINUE;
}

static gboolean
sched_on_usr1(gpointer arg)
{
	sched *s = arg;
	guint i;

	if (s->stopping)
		return G_SOURCE_CONTINUE;
	log_info("SIGUSR1: polling every account now");
	for (i = 0; i < s->accts->len; i++) {
		sched_acct *a = s->accts->pdata[i];

		if (a->gone || a->running || a->queued)
			continue;
		if (a->timer != 0) {
			g_source_remove(a->timer);
			a->timer = 0;
		}
		a->queued = 1;
		g_queue_push_tail(&s->ready, a);
	}
	sched_try_start(s);
	return G_SOURCE_CONTINUE;
}

/* Load and check every selected account's pipeline, then let them go. */
static int
sched_check_pipelines(const sched *s, const cfg *c, char **err_r)
{
	size_t k;
	int rc = 0;

	for (k = 0; k < c->n_accounts && rc == 0; k++) {
		pipeline *pl = NULL;

		if (!sched_selected(s, c->accounts[k].name))
			continue;
		if (pipeline_build(c, &c->accounts[k], 0, &pl, err_r) < 0)
			rc = -1;
		pipeline_free(&pl);
	}
	/* Workers load their plugins themselves: a rebuilt plugin takes effect. */
	plugin_unload_all();
	return rc;
}

static void
sched_apply_log(const sched *s, const cfg *c)
{
	log_open(c->log_target, s->o->log_level >= 0 ? s->o->log_level : c->log_level);
}

static gboolean
sched_on_hup(gpointer arg)
{
	sched *s = arg;
	cfg *n = NULL;
	char *err = NULL;
	int i;

	if (s->stopping)
		return G_SOURCE_CONTINUE;
	log_info("SIGHUP: reloading %s", s->o->config_path);
	if (cfg_load(s->o->config_path, &n, &err) < 0) {
		log_error("reload failed, still running the previous configuration:\n%s", err);
		free(err);
		return G_SOURCE_CONTINUE;
	}
	if (strcmp(n->state_dir, s->c->state_dir) != 0) {
		log_error("reload failed, still running the previous configuration: %s: state_dir"
			  " changed (%s -> %s); that needs a restart", s->o->config_path,
			  s->c->state_dir, n->state_dir);
		cfg_free(&n);
		return G_SOURCE_CONTINUE;
	}
	for (i = 0; i < s->o->n_only; i++) {
		if (cfg_find_account(n, s->o->only[i]) == NULL)
			log_warn("reload: %s no longer has account '%s'", s->o->config_path,
				 s->o->only[i]);
	}
	if (sched_check_pipelines(s, n, &err) < 0) {
		log_error("reload failed, still running the previous configuration:\n%s", err);
		free(err);
		cfg_free(&n);
		return G_SOURCE_CONTINUE;
	}
	/* Running workers have their own copy of the old configuration. */
	cfg_free(&s->c);
	s->c = n;
	sched_apply_log(s, n);
	sched_sync_accounts(s);
	sched_outbox_start(s);
	log_info("reloaded %s: %zu account(s), %d worker(s) at most", s->o->config_path,
		 n->n_accounts, n->workers);
	sched_try_start(s);
	return G_SOURCE_CONTINUE;
}

/* ---------------------------------------------------------------- setup */

/* Workers run as `user`: the state they write must be theirs. */
static int
sched_chown_state(const cfg *c, char **err_r)
{
	static const char *const files[] = { "", "/mailmill.db", "/mailmill.db-wal",
					     "/mailmill.db-shm" };
	struct passwd *pw;
	size_t i;

	if (c->user == NULL || geteuid() != 0)
		return 0;
	if ((pw = getpwnam(c->user)) == NULL) {
		*err_r = g_strdup_printf("user \"%s\": no such user", c->user);
		return -1;
	}
	for (i = 0; i < sizeof files / sizeof files[0]; i++) {
		char *p = g_strdup_printf("%s%s", c->state_dir, files[i]);

		if (lchown(p, pw->pw_uid, pw->pw_gid) < 0 && errno != ENOENT) {
			*err_r = g_strdup_printf("cannot chown %s to %s: %s", p, c->user,
						 strerror(errno));
			g_free(p);
			return -1;
		}
		g_free(p);
	}
	return 0;
}

int
sched_main(cfg *c, const sched_opts *o)
{
	sched s;
	char *err = NULL;
	int rc = EX_OK, detached = 0;
	guint sig[4], i;

	memset(&s, 0, sizeof s);
	s.c = c;
	s.o = o;
	s.lock_fd = -1;
	if (statelock_take(c->state_dir, &s.lock_fd, &err) < 0) {
		log_error("cannot start: %s", err);
		rc = EX_TEMPFAIL;
		goto out;
	}
	if (store_open(c->state_dir, 0, &s.st, &err) < 0) {
		log_error("cannot open the store in %s: %s", c->state_dir, err);
		rc = EX_TEMPFAIL;
		goto out;
	}
	if (sched_chown_state(c, &err) < 0) {
		log_error("%s", err);
		rc = EX_CONFIG;
		goto out;
	}
	if (!o->foreground) {
		int r = detach_fork(&err);

		if (r == 1) {
			/* The parent: the daemon goes on in the child. */
			store_close(&s.st);
			close(s.lock_fd);
			cfg_free(&s.c);
			return EX_OK;
		}
		if (r < 0 || statelock_set_pid(s.lock_fd, getpid()) < 0 ||
		    detach_write_pidfile(c->pid_file, &err) < 0) {
			log_error("cannot detach: %s", err != NULL ? err : strerror(errno));
			rc = EX_OSERR;
			goto out;
		}
		detached = 1;
	}
	s.loop = g_main_loop_new(NULL, FALSE);
	s.m = metrics_new();
	s.accts = g_ptr_array_new();
	s.workers = g_ptr_array_new();
	g_queue_init(&s.ready);
	sig[0] = g_unix_signal_add(SIGTERM, sched_on_stop, &s);
	sig[1] = g_unix_signal_add(SIGINT, sched_on_stop, &s);
	sig[2] = g_unix_signal_add(SIGHUP, sched_on_hup, &s);
	sig[3] = g_unix_signal_add(SIGUSR1, sched_on_usr1, &s);
	s.watchdog = g_timeout_add(SCHED_WATCHDOG_MS, sched_on_watchdog, &s);
	sched_sync_accounts(&s);
	sched_outbox_start(&s);
	if (metrics_write(s.m, c->state_dir, s.st, &err) < 0) {
		log_warn("%s", err);
		free(err);
		err = NULL;
	}
	log_info("mailmilld %s started (pid %ld): %u account(s), %d worker(s) at most, state in %s",
		 PACKAGE_VERSION, (long)getpid(), s.accts->len, c->workers, c->state_dir);
	g_main_loop_run(s.loop);
	log_info("mailmilld stopped");

	for (i = 0; i < 4; i++)
		g_source_remove(sig[i]);
	g_source_remove(s.watchdog);
	g_source_remove(s.outbox_timer);
	for (i = 0; i < s.accts->len; i++) {
		sched_acct *a = s.accts->pdata[i];

		if (a->timer != 0)
			g_source_remove(a->timer);
		g_free(a->name);
		g_free(a);
	}
	g_ptr_array_free(s.accts, TRUE);
	g_ptr_array_free(s.workers, TRUE);
	g_queue_clear(&s.ready);
	metrics_free(&s.m);
	g_main_loop_unref(s.loop);
	if (detached)
		detach_remove_pidfile(s.c->pid_file);
out:
	free(err);
	store_close(&s.st);
	if (s.lock_fd >= 0)
		close(s.lock_fd);
	cfg_free(&s.c);
	return rc;
}

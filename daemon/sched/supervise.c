/* mailmill - ISC licence, see LICENSE */
/*
 * The daemon's side of a worker (daemon/sched/worker.h), forked by the
 * spawner (daemon/sched/spawner.h, spawnctl.c): reads its progress to
 * know the message in hand, kills it past a deadline, and when it is gone
 * records the run, charges a crash or a timeout to that message
 * (quarantining it after max_attempts) and hands the account back to the
 * scheduler.
 */
#include <config.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <glib.h>
#include <glib-unix.h>
#include "daemon/sched/sched_int.h"
#include "daemon/core/log.h"
#include "daemon/sched/progress.h"
#include "daemon/sched/watch.h"
#include "daemon/sched/worker.h"
#include "daemon/oauth/oauth.h"
#include "proto/err.h"


typedef struct supervise_worker {
	sched *s;
	sched_acct *acct;
	spawnctl *sp;                 /* the spawner that forked it; NULL: ours */
	unsigned long long seq;       /* its run there */
	pid_t pid;                    /* 0 until the spawner said */
	int fd;
	guint fd_watch;
	watch w;                      /* what it reported (daemon/sched/watch.h) */
	gint64 run_deadline;          /* monotonic us */
	const char *killed;           /* why we killed it, NULL if we did not */
	int exited, status, eof;
	int lease_lost;               /* stopped: its lease ran out */
	int lost;                     /* its spawner died before saying its pid */
} supervise_worker;

static void
supervise_kill(supervise_worker *w, int sig)
{
	if (w->sp != NULL)
		spawnctl_kill(w->sp, w->seq, sig);
	else if (w->pid > 0 && !w->exited)
		kill(w->pid, sig);
}

static supervise_worker *
supervise_find(sched *s, spawnctl *sp, unsigned long long seq)
{
	for (guint i = 0; i < s->workers->len; i++) {
		supervise_worker *w = s->workers->pdata[i];

		if (w->sp == sp && w->seq == seq)
			return w;
	}
	return NULL;
}

/* The worker died or overran its deadline with this message in hand. */
static void
supervise_charge(sched *s, supervise_worker *w, const char *why)
{
	const cfg_account *ca = w->acct->ca;

	if (run_charge(s->st, w->acct->name, w->w.uid, why, ca != NULL ? ca->max_attempts : 3) == 1)
		metrics_quarantined(s->m, w->acct->name, w->w.uid_size);
}

/* The needs-sign-in gauge of an OAuth account, from the store: at start, on
 * reload and after each of its runs. */
void
supervise_signin(sched *s, const sched_acct *a)
{
	watch_signin(a->ca, s->st, s->m, a->name);
}

/* Both the exit and the end of the pipe are in: account for the run. */
static void
supervise_finish(supervise_worker *w)
{
	sched *s = w->s;
	sched_acct *a = w->acct;
	char why[600];
	const char *result = watch_result(&w->w, w->status, w->killed, why, sizeof why);
	sched_run_end how = SCHED_RUN_FAILED;

	if (strcmp(result, "ok") == 0) {
		how = SCHED_RUN_OK;
		if (w->w.have_stats && w->w.stats.journal_empty && !w->lease_lost)
			claim_note_empty(&a->lease);
	} else if (w->w.uid[0] != '\0' &&
		   (strcmp(result, "timeout") == 0 || strcmp(result, "crashed") == 0)) {
		supervise_charge(s, w, why);
		how = SCHED_RUN_CHARGED;
	} else {
		if (strcmp(result, "auth") == 0)
			how = SCHED_RUN_AUTH;
		/* What the worker logged itself is not said twice; the back-off
		 * line that follows says that the run failed. */
		if (w->w.error[0] == '\0')
			log_error("%s: run %s: %s", a->name, how == SCHED_RUN_AUTH ?
				  "failed: AUTHENTICATION refused" : result, why);
	}
	watch_record(&w->w, a->ca, s->st, result, why);
	sched_metrics_changed(s);
	g_ptr_array_remove(s->workers, w);
	if (w->fd_watch != 0)
		g_source_remove(w->fd_watch);
	if (w->fd >= 0)
		close(w->fd);
	watch_clear(&w->w);
	g_free(w);
	sched_run_done(s, a, how);
}

/* Its exit status went with the spawner: what it reported decides. */
static void
supervise_lost_end(supervise_worker *w)
{
	w->exited = 1;
	w->status = w->w.have_stats && w->w.error[0] == '\0' ? 0 : EX_TEMPFAIL << 8;
}

static gboolean
supervise_on_fd(gint fd, GIOCondition cond, gpointer arg)
{
	supervise_worker *w = arg;

	(void)fd;
	(void)cond;
	if (!watch_drain(&w->w, w->fd))
		return G_SOURCE_CONTINUE;
	w->eof = 1;
	w->fd_watch = 0;
	if (w->lost)
		supervise_lost_end(w);
	if (w->exited)
		supervise_finish(w);
	return G_SOURCE_REMOVE;
}

static void
supervise_exited(supervise_worker *w, int status)
{
	w->exited = 1;
	w->status = status;
	if (!w->eof) {
		/* Dead: whatever it wrote is in the pipe now. */
		watch_drain(&w->w, w->fd);
		w->eof = 1;
		if (w->fd_watch != 0) {
			g_source_remove(w->fd_watch);
			w->fd_watch = 0;
		}
	}
	supervise_finish(w);
}

static void
supervise_on_exit(GPid pid, gint status, gpointer arg)
{
	g_spawn_close_pid(pid);
	supervise_exited(arg, status);
}

void
supervise_spawned(sched *s, spawnctl *sp, unsigned long long seq, pid_t pid)
{
	supervise_worker *w = supervise_find(s, sp, seq);

	if (w == NULL)
		return;
	w->pid = pid;
	log_debug("%s: worker %ld started", w->acct->name, (long)pid);
}

void
supervise_ended(sched *s, spawnctl *sp, unsigned long long seq, int status)
{
	supervise_worker *w = supervise_find(s, sp, seq);

	if (w != NULL)
		supervise_exited(w, status);
}

void
supervise_refused(sched *s, spawnctl *sp, unsigned long long seq, const char *why)
{
	supervise_worker *w = supervise_find(s, sp, seq);
	sched_acct *a;

	if (w == NULL)
		return;
	a = w->acct;
	log_error("%s: cannot start a worker: %s", a->name, why);
	g_ptr_array_remove(s->workers, w);
	if (w->fd_watch != 0)
		g_source_remove(w->fd_watch);
	close(w->fd);
	watch_clear(&w->w);
	g_free(w);
	sched_run_done(s, a, SCHED_RUN_FAILED);
}

void
supervise_orphaned(sched *s, spawnctl *sp)
{
	guint i = 0;

	while (i < s->workers->len) {
		supervise_worker *w = s->workers->pdata[i++];

		if (w->sp != sp)
			continue;
		w->sp = NULL;
		if (w->pid > 0) {
			g_child_watch_add(w->pid, supervise_on_exit, w);
			continue;
		}
		/* Never started, or started unheard: the pipe's end tells. */
		w->lost = 1;
		if (w->eof) {
			supervise_lost_end(w);
			supervise_finish(w);
			i = 0;   /* it is gone from the array */
		}
	}
}

int
supervise_start(sched *s, sched_acct *a, char **err_r)
{
	const cfg_account *ca = a->ca;
	struct run_lease rl;
	run_opts ro;
	supervise_worker *w;
	spawnctl *sp = NULL;
	unsigned long long seq = 0;
	pid_t pid = 0;
	int p[2];

	if (ca == NULL) {
		*err_r = err_fmt("no account %s", a->name);
		return -1;
	}
	/* The worker fences its store with the lease and renews it before it
	 * changes its server (run.h); its copy of ro is made by the fork. */
	claim_lease(&a->lease, &rl);
	ro = s->o->ro;
	ro.lease = &rl;
	if (s->spawner == NULL) {
		/* None now (it died; a new one comes): forked here, the old way,
		 * so that runs go on meanwhile. */
		if (worker_spawn(s->c, ca, &ro, &pid, &p[0], err_r) < 0)
			return -1;
	} else if (worker_pipe(p, err_r) < 0) {
		return -1;
	} else if (spawnctl_run(s, a->name, ro.lease, p[1], &sp, &seq, err_r) < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	} else {
		close(p[1]);
	}
	w = g_new0(supervise_worker, 1);
	w->s = s;
	w->acct = a;
	w->sp = sp;
	w->seq = seq;
	w->pid = pid;
	w->fd = p[0];
	watch_init(&w->w, a->name, s->m);
	w->run_deadline = w->w.t0 + s->c->run_timeout_s * G_USEC_PER_SEC;
	g_ptr_array_add(s->workers, w);
	w->fd_watch = g_unix_fd_add(w->fd, G_IO_IN | G_IO_HUP | G_IO_ERR, supervise_on_fd, w);
	if (pid > 0)
		g_child_watch_add(pid, supervise_on_exit, w);
	return 0;
}

void
supervise_check_deadlines(sched *s, gint64 now)
{
	guint i;

	for (i = 0; i < s->workers->len; i++) {
		supervise_worker *w = s->workers->pdata[i];

		if (w->killed != NULL || w->exited)
			continue;
		if (!w->lease_lost && claim_tick(&w->acct->lease, s->st, now) < 0) {
			/* Its commits are refused already (the fence); the stop
			 * spares the work, as at a daemon's stop.  Not charged
			 * to the message in hand: it did nothing wrong. */
			w->lease_lost = 1;
			supervise_kill(w, SIGTERM);
		}
		if (now > w->run_deadline)
			w->killed = "killed: the run passed its deadline (run_timeout)";
		else if (w->w.uid_since != 0 &&
			 now > w->w.uid_since + w->s->c->message_timeout_s * G_USEC_PER_SEC)
			w->killed = "killed: the message passed its deadline (message_timeout)";
		else
			continue;
		log_error("%s: worker %ld %s%s%s", w->acct->name, (long)w->pid, w->killed,
			  w->w.uid[0] ? " with uid " : "", w->w.uid);
		supervise_kill(w, SIGKILL);
	}
}

void
supervise_signal_all(sched *s, int sig)
{
	guint i;

	for (i = 0; i < s->workers->len; i++)
		supervise_kill(s->workers->pdata[i], sig);
}

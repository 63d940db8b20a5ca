/* mailmill - ISC licence, see LICENSE */
#include <config.h>
#include <errno.h>
#include <poll.h>
#include <time.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>
#include "daemon/sched/once.h"
#include "daemon/sched/claim.h"
#include "daemon/sched/metrics.h"
#include "daemon/sched/progress.h"
#include "daemon/sched/watch.h"
#include "daemon/sched/worker.h"
#include "daemon/core/log.h"
#include "daemon/core/privs.h"
#include "daemon/core/statelock.h"
#include "daemon/run/outbox.h"

#define ONCE_POLL_MS 200
#define ONCE_GATHER_NS (10 * 1000 * 1000)  /* 10 ms */

static volatile sig_atomic_t once_stop;   /* SIGINT/SIGTERM received, capped at 2 */

static void
once_on_signal(int sig)
{
	(void)sig;
	if (once_stop < 2)
		once_stop++;
}

typedef struct once_totals {
	unsigned long failed_runs, open;
	int rc;
	gint64 metrics_last;     /* monotonic us of the last metrics write; 0 never */
} once_totals;

/* metrics.prom during a long --once at most every METRICS_PERIOD_S (every
 * write renders every account), and at the end (force). */
static void
once_metrics(const cfg *c, store *st, metrics *m, once_totals *t, int force)
{
	gint64 now = g_get_monotonic_time();
	char *err = NULL;

	if (st == NULL || !metrics_dirty(m) ||
	    (!force && t->metrics_last != 0 &&
	     now - t->metrics_last < METRICS_PERIOD_S * G_USEC_PER_SEC))
		return;
	t->metrics_last = now;
	if (metrics_write(m, c->state_dir, st, &err) < 0) {
		log_warn("%s", err);
		free(err);
	}
}

/* Wait for the worker pid, reading its progress; kill it past a deadline. */
static int
once_wait(const cfg *c, pid_t pid, int fd, watch *w, claim *cl, store *st, const char **killed)
{
	gint64 run_deadline = w->t0 + c->run_timeout_s * G_USEC_PER_SEC;
	int eof = 0, status = 0, stop_sent = 0, lease_lost = 0;

	*killed = NULL;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		gint64 now;
		pid_t r;

		if (!eof && poll(&p, 1, ONCE_POLL_MS) > 0) {
			eof = watch_drain(w, fd);
			/* Let lines gather before reading again: the worker
			 * writes two a message, and waking for each costs the
			 * run more than its message does (bench/README.md).
			 * The pipe holds far more than it writes meanwhile
			 * (worker_spawn); deadlines are checked in seconds. */
			if (!eof)
				nanosleep(&(struct timespec){ 0, ONCE_GATHER_NS }, NULL);
		}
		/* At the end of the pipe the worker is exiting: wait for it (a
		 * signal interrupts the wait).  Before, it may have died while a
		 * child of a plugin holds the pipe. */
		r = waitpid(pid, &status, eof ? 0 : WNOHANG);
		if (r == pid || (r < 0 && errno != EINTR)) {
			/* Gone: whatever it wrote is in the pipe now. */
			if (!eof)
				watch_drain(w, fd);
			return r == pid ? status : 0;
		}
		/* As in the daemon: the first signal lets the worker finish the
		 * message in hand, a second kills it. */
		if (once_stop > stop_sent) {
			kill(pid, once_stop == 1 ? SIGTERM : SIGKILL);
			stop_sent = once_stop;
		}
		now = g_get_monotonic_time();
		/* As in the daemon: renewed from here; a lost lease stops the
		 * run (its commits are refused anyway). */
		if (cl->held && !lease_lost && claim_tick(cl, st, now) < 0) {
			lease_lost = 1;
			kill(pid, SIGTERM);
		}
		if (*killed != NULL)
			continue;
		if (now > run_deadline)
			*killed = "killed: the run passed its deadline (run_timeout)";
		else if (w->uid_since != 0 && now > w->uid_since + c->message_timeout_s * G_USEC_PER_SEC)
			*killed = "killed: the message passed its deadline (message_timeout)";
		else
			continue;
		log_error("%s: worker %ld %s%s%s", w->account, (long)pid, *killed,
			  w->uid[0] ? " with uid " : "", w->uid);
		kill(pid, SIGKILL);
	}
}

/* One account's run in a worker, recorded (st NULL: a dry run, not). */
static void
once_account(const cfg *c, const cfg_account *a, const run_opts *ro, store *st, metrics *m,
	     const char *owner, once_totals *t)
{
	const char *killed, *result;
	char why[600], *err = NULL;
	claim cl = { 0 };
	struct run_lease rl;
	run_opts wro = *ro;
	watch w;
	pid_t pid;
	int fd, status;

	/* Several daemons on one store: an account another one runs (or will
	 * run at its next time) is that one's, and no failure here. */
	if (st != NULL) {
		int r = claim_take(&cl, st, owner, a->name, c->lease_ttl_s);

		if (r == 0) {
			log_info("%s: another daemon holds it: skipped", a->name);
			return;
		}
		if (r < 0) {
			t->failed_runs++;
			t->rc = EX_TEMPFAIL;
			return;
		}
		claim_lease(&cl, &rl);
		wro.lease = &rl;
	}
	if (worker_spawn(c, a, &wro, &pid, &fd, &err) < 0) {
		log_error("%s: cannot start a worker: %s", a->name, err);
		free(err);
		claim_release(&cl, st);
		t->failed_runs++;
		t->rc = EX_TEMPFAIL;
		return;
	}
	watch_init(&w, a->name, m);
	status = once_wait(c, pid, fd, &w, &cl, st, &killed);
	close(fd);
	claim_release(&cl, st);
	result = watch_result(&w, status, killed, why, sizeof why);
	if (strcmp(result, "ok") != 0) {
		t->failed_runs++;
		t->rc = EX_TEMPFAIL;
		/* What the worker logged itself is not said again. */
		if (w.uid[0] != '\0' && st != NULL &&
		    (strcmp(result, "timeout") == 0 || strcmp(result, "crashed") == 0)) {
			if (run_charge(st, a->name, w.uid, why, a->max_attempts) == 1)
				metrics_quarantined(m, a->name, w.uid_size);
		} else if (w.error[0] == '\0') {
			log_error("%s: run %s: %s", a->name, result, why);
		}
	} else if (!run_settled(&w.stats)) {
		t->rc = EX_TEMPFAIL;
	}
	t->open += w.stats.deferred + w.stats.failed + w.stats.unsettled;
	if (st != NULL) {
		watch_record(&w, a, st, result, why);
		once_metrics(c, st, m, t, 0);
	}
	watch_clear(&w);
}

int
once_main(const cfg *c, const run_opts *o, char **only, int n_only)
{
	run_opts ro = *o;
	once_totals t = { 0, 0, EX_OK, 0 };
	outbox_stats os = { 0 };
	struct sigaction sa, old_int, old_term;
	store *st = NULL;
	metrics *m = NULL;
	char *err = NULL, owner[CLAIM_OWNER_MAX];
	int lock_fd = -1, flush_failed = 0;

	/* Not next to a daemon or another run on the same journal. */
	if (!ro.dry_run && statelock_take(c->state_dir, &lock_fd, &err) < 0) {
		log_error("cannot run: %s", err);
		free(err);
		return EX_TEMPFAIL;
	}
	/* The workers become `user`: the state directory is theirs, as the
	 * daemon makes it at its start. */
	if (!ro.dry_run && store_open_cfg(c, 0, &st, &err) < 0) {
		log_error("cannot open the store: %s", err);
		free(err);
		close(lock_fd);
		return EX_TEMPFAIL;
	}
	if (!ro.dry_run && (privs_chown_state(c, &err) < 0 || privs_check_access(c, &err) < 0)) {
		log_error("%s", err);
		free(err);
		store_close(&st);
		if (lock_fd >= 0)
			close(lock_fd);
		return EX_CONFIG;
	}
	ro.meter = progress_meter_wanted();
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = once_on_signal;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	m = metrics_new();
	claim_owner_once(owner, sizeof owner, c->state_dir);
	for (size_t k = 0; k < c->n_accounts && !once_stop; k++)
		if (cfg_selected(c->accounts[k].name, only, n_only))
			once_account(c, &c->accounts[k], &ro, st, m, owner, &t);
	/* Mail the runs queued goes out now, over one relay connection; what
	 * fails stays queued for the next run. */
	if (st != NULL && !once_stop &&
	    ((flush_failed = worker_flush_leased(c, st, owner, 0, ro.trace, &os) < 0) ||
	     !outbox_settled(&os)))
		t.rc = EX_TEMPFAIL;
	if (once_stop)
		t.rc = EX_TEMPFAIL;
	once_metrics(c, st, m, &t, 1);
	/* cron mails this line: why the status is not 0, in one place. */
	if (t.rc == EX_TEMPFAIL)
		log_warn("exit 75: %lu account run(s) failed, %lu message(s) deferred, failed or"
			 " left on the server; outbox: %lu deferred, %lu dead, %lu recipient(s)"
			 " refused%s%s%s", t.failed_runs, t.open, os.retried, os.dead,
			 os.refused_rcpts, flush_failed ? ", the flush failed" : "",
			 once_stop ? ", stopped by a signal" : "", ro.dry_run ? " (dry run)" : "");
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	metrics_free(&m);
	store_close(&st);
	if (lock_fd >= 0)
		close(lock_fd);
	return t.rc;
}

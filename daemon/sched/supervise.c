/* mailmill - ISC licence, see LICENSE */
/*
 * The daemon's side of a worker (daemon/sched/worker.h): reads its progress to
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
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <glib.h>
#include <glib-unix.h>
#include "daemon/sched/sched_int.h"
#include "daemon/core/log.h"
#include "daemon/sched/progress.h"
#include "daemon/sched/worker.h"
#include "daemon/oauth/oauth.h"
#include "proto/err.h"


#define SUPERVISE_LINE_MAX 1024     /* a longer progress line is a broken worker */

typedef struct supervise_worker {
	sched *s;
	sched_acct *acct;
	pid_t pid;
	int fd;
	guint fd_watch;
	GString *in;
	char uid[PROGRESS_UID_MAX];   /* message in hand, "" none */
	unsigned long long uid_size;
	gint64 msg_deadline, run_deadline;  /* monotonic us */
	gint64 t0;
	long long started;            /* unix */
	const char *killed;           /* why we killed it, NULL if we did not */
	char error[PROGRESS_ERROR_MAX];
	run_stats stats;
	int have_stats;
	int exited, status, eof;
} supervise_worker;

/* The worker died or overran its deadline with this message in hand. */
static void
supervise_charge(sched *s, supervise_worker *w, const char *why)
{
	const cfg_account *ca = cfg_find_account(s->c, w->acct->name);

	if (run_charge(s->st, w->acct->name, w->uid, why, ca != NULL ? ca->max_attempts : 3) == 1)
		metrics_quarantined(s->m, w->acct->name, w->uid_size);
}

static void
supervise_on_line(supervise_worker *w, const char *line)
{
	progress_event ev;
	gint64 now = g_get_monotonic_time();

	if (progress_parse(line, &ev) < 0) {
		log_warn("%s: worker %ld sent a malformed progress line", w->acct->name, (long)w->pid);
		return;
	}
	switch (ev.kind) {
	case PROGRESS_START:
		snprintf(w->uid, sizeof w->uid, "%s", ev.uid);
		w->uid_size = ev.size;
		w->msg_deadline = now + w->s->c->message_timeout_s * G_USEC_PER_SEC;
		break;
	case PROGRESS_DONE:
		/* run.c follows a "fail" with "quarantine" when it quarantined
		 * the message (run_charge): counted once as each. */
		if (strcmp(ev.verdict, "quarantine") == 0)
			metrics_quarantined(w->s->m, w->acct->name, ev.size);
		else
			metrics_verdict(w->s->m, w->acct->name, ev.stage, ev.verdict, ev.size);
		w->uid[0] = '\0';
		w->msg_deadline = 0;
		break;
	case PROGRESS_ERROR:
		snprintf(w->error, sizeof w->error, "%s", ev.error);
		break;
	case PROGRESS_RESULT:
		w->stats = ev.stats;
		w->have_stats = 1;
		break;
	}
}

/* Read what the worker wrote; 1 at end of file. */
static int
supervise_drain(supervise_worker *w)
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
			supervise_on_line(w, w->in->str);
			g_string_erase(w->in, 0, nl - w->in->str + 1);
		}
		if (w->in->len > SUPERVISE_LINE_MAX)
			g_string_truncate(w->in, 0);
	}
}

static const char *
supervise_result(const supervise_worker *w, char *why, size_t len)
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

static void
supervise_record(supervise_worker *w, const char *result, const char *why)
{
	sched *s = w->s;
	long long now = (long long)time(NULL);
	double secs = (double)(g_get_monotonic_time() - w->t0) / 1e6;
	store_run_row row;
	char *err = NULL;

	memset(&row, 0, sizeof row);
	row.account = w->acct->name;
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
		log_warn("%s: cannot record the run: %s", w->acct->name, err);
		free(err);
	}
	metrics_run(s->m, w->acct->name, w->have_stats ? &w->stats : NULL,
		    strcmp(result, "ok") == 0, now, secs);
	supervise_signin(s, w->acct->name);
}

/* The needs-sign-in gauge of an OAuth account, from the store: at start, on
 * reload and after each of its runs. */
void
supervise_signin(sched *s, const char *name)
{
	const cfg_account *a = cfg_find_account(s->c, name);
	char *err = NULL;
	int needs;

	if (a == NULL || a->oauth == NULL)
		return;
	needs = oauth_needs_signin(s->st, a->oauth, a->user, NULL, &err);
	if (needs < 0) {
		log_warn("%s: cannot read the sign-in state: %s", name, err);
		free(err);
		return;
	}
	metrics_signin(s->m, name, needs);
}

/* Both the exit and the end of the pipe are in: account for the run. */
static void
supervise_finish(supervise_worker *w)
{
	sched *s = w->s;
	sched_acct *a = w->acct;
	char why[600];
	const char *result = supervise_result(w, why, sizeof why);
	sched_run_end how = SCHED_RUN_FAILED;

	if (strcmp(result, "ok") == 0) {
		how = SCHED_RUN_OK;
	} else if (w->uid[0] != '\0' &&
		   (strcmp(result, "timeout") == 0 || strcmp(result, "crashed") == 0)) {
		supervise_charge(s, w, why);
		how = SCHED_RUN_CHARGED;
	} else {
		if (strcmp(result, "auth") == 0)
			how = SCHED_RUN_AUTH;
		log_error("%s: run %s: %s", a->name, how == SCHED_RUN_AUTH ?
			  "failed: AUTHENTICATION refused" : result, why);
	}
	supervise_record(w, result, why);
	sched_write_metrics(s);
	g_ptr_array_remove(s->workers, w);
	if (w->fd_watch != 0)
		g_source_remove(w->fd_watch);
	if (w->fd >= 0)
		close(w->fd);
	g_string_free(w->in, TRUE);
	g_free(w);
	sched_run_done(s, a, how);
}

static gboolean
supervise_on_fd(gint fd, GIOCondition cond, gpointer arg)
{
	supervise_worker *w = arg;

	(void)fd;
	(void)cond;
	if (!supervise_drain(w))
		return G_SOURCE_CONTINUE;
	w->eof = 1;
	w->fd_watch = 0;
	if (w->exited)
		supervise_finish(w);
	return G_SOURCE_REMOVE;
}

static void
supervise_on_exit(GPid pid, gint status, gpointer arg)
{
	supervise_worker *w = arg;

	w->exited = 1;
	w->status = status;
	g_spawn_close_pid(pid);
	if (!w->eof) {
		/* Dead: whatever it wrote is in the pipe now. */
		supervise_drain(w);
		w->eof = 1;
		if (w->fd_watch != 0) {
			g_source_remove(w->fd_watch);
			w->fd_watch = 0;
		}
	}
	supervise_finish(w);
}

int
supervise_start(sched *s, sched_acct *a, char **err_r)
{
	const cfg_account *ca = cfg_find_account(s->c, a->name);
	supervise_worker *w;
	pid_t pid;
	int fd;

	if (ca == NULL) {
		*err_r = err_fmt("no account %s", a->name);
		return -1;
	}
	if (worker_spawn(s->c, ca, &s->o->ro, &pid, &fd, err_r) < 0)
		return -1;
	w = g_new0(supervise_worker, 1);
	w->s = s;
	w->acct = a;
	w->pid = pid;
	w->fd = fd;
	w->in = g_string_new(NULL);
	w->t0 = g_get_monotonic_time();
	w->started = (long long)time(NULL);
	w->run_deadline = w->t0 + s->c->run_timeout_s * G_USEC_PER_SEC;
	g_ptr_array_add(s->workers, w);
	w->fd_watch = g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR, supervise_on_fd, w);
	g_child_watch_add(pid, supervise_on_exit, w);
	log_debug("%s: worker %ld started", a->name, (long)pid);
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
}

void
supervise_signal_all(sched *s, int sig)
{
	guint i;

	for (i = 0; i < s->workers->len; i++)
		kill(((supervise_worker *)s->workers->pdata[i])->pid, sig);
}

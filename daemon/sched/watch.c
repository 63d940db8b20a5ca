/* mailmill - ISC licence, see LICENSE */
#include <config.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "daemon/sched/watch.h"
#include "daemon/sched/worker.h"
#include "daemon/core/log.h"
#include "daemon/oauth/oauth.h"

#define WATCH_LINE_MAX 1024     /* a longer progress line is a broken worker */

void
watch_init(watch *w, const char *account, metrics *m)
{
	memset(w, 0, sizeof *w);
	w->account = account;
	w->m = m;
	w->in = g_string_new(NULL);
	w->t0 = g_get_monotonic_time();
	w->started = (long long)time(NULL);
}

void
watch_clear(watch *w)
{
	if (w->in != NULL)
		g_string_free(w->in, TRUE);
	w->in = NULL;
}

static void
watch_line(watch *w, const char *line)
{
	progress_event ev;

	if (progress_parse(line, &ev) < 0) {
		log_warn("%s: its worker sent a malformed progress line", w->account);
		return;
	}
	switch (ev.kind) {
	case PROGRESS_START:
		snprintf(w->uid, sizeof w->uid, "%s", ev.uid);
		w->uid_size = ev.size;
		w->uid_since = g_get_monotonic_time();
		break;
	case PROGRESS_DONE:
		/* run.c follows a "fail" with "quarantine" when it quarantined
		 * the message (run_charge): counted once as each. */
		if (strcmp(ev.verdict, "quarantine") == 0)
			metrics_quarantined(w->m, w->account, ev.size);
		else
			metrics_verdict(w->m, w->account, ev.stage, ev.verdict, ev.size);
		w->uid[0] = '\0';
		w->uid_since = 0;
		break;
	case PROGRESS_ERROR:
		snprintf(w->error, sizeof w->error, "%s", ev.error);
		break;
	case PROGRESS_TOTALS:
		w->stats.listed = ev.stats.listed;
		w->stats.failed = ev.stats.failed;
		w->stats.unsettled = ev.stats.unsettled;
		w->stats.moved = ev.stats.moved;
		w->stats.flagged = ev.stats.flagged;
		break;
	case PROGRESS_RESULT:
		/* T came first: its counts stay. */
		ev.stats.listed = w->stats.listed;
		ev.stats.failed = w->stats.failed;
		ev.stats.unsettled = w->stats.unsettled;
		ev.stats.moved = w->stats.moved;
		ev.stats.flagged = w->stats.flagged;
		w->stats = ev.stats;
		w->have_stats = 1;
		break;
	}
}

int
watch_drain(watch *w, int fd)
{
	char buf[16384];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		size_t off = 0;
		char *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : 1;
		if (n == 0)
			return 1;
		g_string_append_len(w->in, buf, n);
		/* Every whole line, then one erase: a read holds many lines. */
		while ((nl = memchr(w->in->str + off, '\n', w->in->len - off)) != NULL) {
			*nl = '\0';
			watch_line(w, w->in->str + off);
			off = (size_t)(nl - w->in->str) + 1;
		}
		g_string_erase(w->in, 0, (gssize)off);
		if (w->in->len > WATCH_LINE_MAX)
			g_string_truncate(w->in, 0);
	}
}

const char *
watch_result(const watch *w, int status, const char *killed, char *why, size_t len)
{
	if (killed != NULL) {
		snprintf(why, len, "%s", killed);
		return "timeout";
	}
	if (WIFSIGNALED(status)) {
		snprintf(why, len, "the worker crashed (signal %d, %s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
		return "crashed";
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		why[0] = '\0';
		return "ok";
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_AUTH) {
		snprintf(why, len, "%s", w->error[0] ? w->error : "authentication failed");
		return "auth";
	}
	if (WIFEXITED(status) && w->error[0] == '\0' && !w->have_stats) {
		snprintf(why, len, "the worker exited with status %d before reporting",
			 WEXITSTATUS(status));
		return "crashed";
	}
	snprintf(why, len, "%s", w->error[0] ? w->error : "the run failed");
	return "failed";
}

void
watch_signin(const cfg_account *a, store *st, metrics *m, const char *account)
{
	char *err = NULL;
	int needs;

	if (a == NULL || a->oauth == NULL)
		return;
	needs = oauth_needs_signin(st, a->oauth, a->user, NULL, &err);
	if (needs < 0) {
		log_warn("%s: cannot read the sign-in state: %s", account, err);
		free(err);
		return;
	}
	metrics_signin(m, account, needs);
}

void
watch_record(const watch *w, const cfg_account *a, store *st, const char *result, const char *why)
{
	long long now = (long long)time(NULL);
	double secs = (double)(g_get_monotonic_time() - w->t0) / 1e6;
	store_run_row row;
	char *err = NULL;

	memset(&row, 0, sizeof row);
	row.account = w->account;
	row.started = w->started;
	row.finished = now;
	row.result = result;
	row.error = why[0] ? why : NULL;
	row.fetched = w->stats.fetched;
	row.deleted = w->stats.deleted;
	row.moved = w->stats.moved;
	row.flagged = w->stats.flagged;
	row.kept = w->stats.kept;
	row.deferred = w->stats.deferred;
	row.skipped = w->stats.skipped;
	row.bytes = w->stats.bytes;
	if (store_run_add(st, &row, &err) < 0) {
		log_warn("%s: cannot record the run: %s", w->account, err);
		free(err);
	}
	metrics_run(w->m, w->account, w->have_stats ? &w->stats : NULL,
		    strcmp(result, "ok") == 0, now, secs);
	watch_signin(a, st, w->m, w->account);
}

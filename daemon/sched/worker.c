/* mailmill - ISC licence, see LICENSE */
#include <config.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>
#include "daemon/sched/worker.h"
#include "daemon/sched/claim.h"
#include "daemon/core/log.h"
#include "daemon/run/outbox.h"
#include "daemon/run/pipeline.h"
#include "daemon/core/plugin.h"
#include "daemon/core/privs.h"
#include "daemon/sched/progress.h"
#include "daemon/store/store.h"
#include "proto/err.h"

static volatile sig_atomic_t worker_stop;
static int worker_fd = -1;

static void
worker_on_signal(int sig)
{
	(void)sig;
	worker_stop = 1;
}

/* Best effort: a daemon that is gone cannot listen anyway. */
static void
worker_send(const char *line, size_t len)
{
	while (len > 0 && worker_fd >= 0) {
		ssize_t n = write(worker_fd, line, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		line += n;
		len -= (size_t)n;
	}
}

/* The terminal's progress line (--once on a tty): this worker's account. */
typedef struct worker_meter {
	const char *account;
	unsigned long done, total;
	gint64 t0, drawn;       /* monotonic us */
} worker_meter;

static void
worker_meter_draw(worker_meter *m, int force)
{
	char line[256];
	gint64 now = g_get_monotonic_time();

	/* Five redraws a second are enough to read and cost nothing. */
	if (!force && now - m->drawn < G_USEC_PER_SEC / 5)
		return;
	m->drawn = now;
	progress_format_meter(line, sizeof line, m->account, m->done, m->total,
			      (double)(now - m->t0) / 1e6);
	log_status(line);
}

static void
worker_planned(void *arg, unsigned long n)
{
	worker_meter *m = arg;

	if (m == NULL || n == 0)
		return;
	m->total = n;
	m->t0 = g_get_monotonic_time();
	worker_meter_draw(m, 1);
}

static void
worker_progress(void *arg, const char *uid, unsigned long long size, const char *stage,
		const char *verdict)
{
	worker_meter *m = arg;
	char line[PROGRESS_LINE_MAX];
	int n = progress_format_message(line, sizeof line, uid, size, verdict, stage);

	if (n > 0)
		worker_send(line, (size_t)n);
	/* "quarantine" follows the "fail" of the same message. */
	if (m != NULL && m->total > 0 && verdict != NULL && strcmp(verdict, "quarantine") != 0) {
		m->done++;
		worker_meter_draw(m, m->done == m->total);
	}
}

static void
worker_report(const run_stats *s, int failed)
{
	char line[PROGRESS_LINE_MAX];
	const char *e = log_last_error();
	int n;

	if (failed && e[0] != '\0' && (n = progress_format_error(line, sizeof line, e)) > 0)
		worker_send(line, (size_t)n);
	if ((n = progress_format_totals(line, sizeof line, s)) > 0)
		worker_send(line, (size_t)n);
	if ((n = progress_format_result(line, sizeof line, s)) > 0)
		worker_send(line, (size_t)n);
}

void
worker_signals(void (*on_stop)(int))
{
	struct sigaction sa;
	sigset_t none;

	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;     /* no SA_RESTART: a blocked read sees EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

int
worker_pin_secret(const cfg_account *acct, cfg_account *a, oauth_cfg *oc, char **secret_r)
{
	char *err = NULL;

	*a = *acct;
	*secret_r = NULL;
	if (acct->oauth != NULL) {
		int pinned = oauth_cfg_pin_secret(acct->oauth, oc, secret_r, &err);

		if (pinned < 0) {
			log_error("%s: cannot get the client secret: %s", a->name,
				  err != NULL ? err : "error");
			free(err);
			return -1;
		}
		if (pinned > 0)
			a->oauth = oc;
	} else if (secret_get(&acct->secret, secret_r, &err) < 0) {
		log_error("%s: cannot get the password: %s", a->name, err != NULL ? err : "error");
		free(err);
		return -1;
	} else {
		memset(&a->secret, 0, sizeof a->secret);
		a->secret.kind = SECRET_INLINE;
		a->secret.value = *secret_r;
	}
	return 0;
}

/* run_opts.open_store: the run's store, opened when the run first needs
 * it; worker_run closes it. */
typedef struct worker_store {
	const cfg *c;
	int readonly;
	store *st;
} worker_store;

static int
worker_open_store(void *arg, store **st_r, char **err_r)
{
	worker_store *ws = arg;

	if (ws->st == NULL && store_open_cfg(ws->c, ws->readonly, &ws->st, err_r) < 0)
		return -1;
	*st_r = ws->st;
	return 0;
}

/*
 * One account run, for the daemon and --once alike: the secret is resolved
 * here, once, as root (it may be readable by root only), then privileges
 * are dropped, the plugins loaded, and run_account runs; it opens the
 * store only if the account has mail (or OAuth wants its token cache).  Its exit status is the worker's (worker.h).
 */
static int
worker_run(const cfg *c, const cfg_account *acct, const run_opts *o)
{
	cfg_account a;                  /* our copy: the password goes in it */
	oauth_cfg oc;                   /* and the OAuth client secret in this */
	run_opts ro = *o;
	worker_meter meter = { .account = acct->name };
	pipeline *pl = NULL;
	worker_store ws = { .c = c, .readonly = o->dry_run };
	store *tok_st = NULL;
	run_stats stats;
	run_dial *dial = NULL;
	char *err = NULL, *password = NULL;
	int rc = EX_TEMPFAIL;

	memset(&stats, 0, sizeof stats);
	stats.fail = RUN_FAIL_TEMP;
	if (worker_pin_secret(acct, &a, &oc, &password) < 0)
		goto out;
	if (privs_drop(c->user, &err) < 0) {
		log_error("%s: %s", a.name, err);
		goto out;
	}
	if (privs_limit_memory(c->worker_memory, &err) < 0) {
		log_warn("%s: %s", a.name, err);
		free(err);
		err = NULL;
	}
	/* The server greets while the plugins load. */
	dial = run_dial_start(&a);
	/* A dry run writes nothing but the token cache: a rotated refresh
	 * token must not be lost. */
	if (o->dry_run && a.oauth != NULL && !a.oauth->command &&
	    store_open_cfg(c, 0, &tok_st, &err) < 0) {
		log_error("%s: cannot open the store: %s", a.name, err);
		goto out;
	}
	if (pipeline_build(c, &a, o->dry_run, &pl, &err) < 0) {
		if (err != NULL)
			log_error("%s: %s", a.name, err);
		rc = EX_CONFIG;
		goto out;
	}
	ro.stop = &worker_stop;
	ro.progress = worker_progress;
	ro.planned = worker_planned;
	ro.progress_arg = o->meter ? &meter : NULL;
	ro.tokens = tok_st;
	ro.open_store = worker_open_store;
	ro.open_store_arg = &ws;
	rc = run_account(&a, pl, NULL, &ro, dial, &stats);
	dial = NULL;   /* taken over */
	if (rc == 0)
		rc = EX_OK;
	else
		rc = stats.fail == RUN_FAIL_AUTH ? WORKER_EXIT_AUTH : EX_TEMPFAIL;
out:
	log_status(NULL);
	free(err);
	run_dial_free(&dial);
	secret_wipe(&password);
	worker_report(&stats, rc != EX_OK);
	pipeline_free(&pl);
	store_close(&tok_st);
	store_close(&ws.st);
	return rc;
}

int
worker_child(const cfg *c, const cfg_account *a, const run_opts *o, int fd)
{
	worker_fd = fd;
	worker_signals(worker_on_signal);
	return worker_run(c, a, o);
}

int
worker_pipe(int p[2], char **err_r)
{
	if (pipe2(p, O_CLOEXEC) < 0) {
		*err_r = err_fmt("cannot make a pipe: %s", strerror(errno));
		return -1;
	}
	/* Room for thousands of progress lines, so that a parent reading them
	 * in batches (once.c) never stalls the worker; the default 64 KB is
	 * kept where the system refuses more. */
	(void)fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
	if (fcntl(p[0], F_SETFL, O_NONBLOCK) < 0) {
		*err_r = err_fmt("cannot set up the pipe: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	return 0;
}

int
worker_spawn(const cfg *c, const cfg_account *a, const run_opts *o, pid_t *pid_r, int *fd_r,
	     char **err_r)
{
	int p[2];
	pid_t pid;

	if (worker_pipe(p, err_r) < 0)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		*err_r = err_fmt("cannot fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		_exit(worker_child(c, a, o, p[1]));
	}
	close(p[1]);
	*pid_r = pid;
	*fd_r = p[0];
	return 0;
}

/* The relay's secrets that may be readable by root only, read before the
 * drop into *cc (a copy of c, its smtp group copied into *sm): the OAuth
 * client secret, a password_file.  0 (*secret_r to wipe), or -1 logged. */
static int
worker_outbox_secrets(const cfg *c, cfg *cc, cfg_smtp *sm, oauth_cfg *oc, char **secret_r)
{
	char *err = NULL;
	int rc;

	*cc = *c;
	if (c->smtp == NULL)
		return 0;
	*sm = *c->smtp;
	cc->smtp = sm;
	if ((rc = oauth_cfg_pin_secret(c->smtp->oauth, oc, secret_r, &err)) > 0) {
		sm->oauth = oc;
	} else if (rc == 0 && c->smtp->oauth == NULL && c->smtp->user != NULL &&
		   c->smtp->secret.kind == SECRET_FILE &&
		   (rc = secret_get(&c->smtp->secret, secret_r, &err)) == 0) {
		memset(&sm->secret, 0, sizeof sm->secret);
		sm->secret.kind = SECRET_INLINE;
		sm->secret.value = *secret_r;
	}
	if (rc < 0) {
		log_error("outbox: cannot get the %s: %s", c->smtp->oauth != NULL ?
			  "client secret" : "password", err != NULL ? err : "error");
		free(err);
		return -1;
	}
	return 0;
}

/* The flush as a worker (all: every queued message, ignoring back-off);
 * fd >= 0: its result goes there as one line
 * "O rc due sent retried dead refused unknown" (worker_flush_outbox). */
static int
worker_outbox_main(const cfg *c, int all, int trace, const struct run_lease *lease, int fd)
{
	store *st = NULL;
	outbox_stats os;
	cfg cc;
	cfg_smtp sm;
	oauth_cfg oc;
	char *err = NULL, *pinned = NULL;
	int rc;

	if (worker_outbox_secrets(c, &cc, &sm, &oc, &pinned) < 0)
		return EX_TEMPFAIL;
	c = &cc;
	if (privs_drop(c->user, &err) < 0 ||
	    store_open_cfg(c, 0, &st, &err) < 0 ||
	    (lease != NULL &&
	     store_fence_set(st, OUTBOX_LEASE, lease->owner, lease->fence, &err) < 0)) {
		log_error("outbox: %s", err);
		store_close(&st);
		free(err);
		secret_wipe(&pinned);
		return EX_TEMPFAIL;
	}
	if (privs_limit_memory(c->worker_memory, &err) < 0) {
		log_warn("outbox: %s", err);
		free(err);
	}
	memset(&os, 0, sizeof os);
	rc = outbox_flush(c, st, all, trace, lease, &os);
	store_close(&st);
	secret_wipe(&pinned);
	if (fd >= 0)
		dprintf(fd, "O %d %lu %lu %lu %lu %lu %lu\n", rc, os.due, os.sent, os.retried, os.dead,
			os.refused_rcpts, os.unknown);
	return rc < 0 ? EX_TEMPFAIL : EX_OK;
}

int
worker_flush_outbox(const cfg *c, int all, int trace, const struct run_lease *lease,
		    outbox_stats *os)
{
	char line[256];
	size_t len = 0;
	pid_t pid;
	int p[2], status = 0, rc = -1;

	memset(os, 0, sizeof *os);
	if (pipe2(p, O_CLOEXEC) < 0) {
		log_error("outbox: cannot make a pipe: %s", strerror(errno));
		return -1;
	}
	fflush(NULL);
	if ((pid = fork()) < 0) {
		log_error("outbox: cannot fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		worker_signals(worker_on_signal);
		_exit(worker_outbox_main(c, all, trace, lease, p[1]));
	}
	close(p[1]);
	while (len < sizeof line - 1) {
		ssize_t n = read(p[0], line + len, sizeof line - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(p[0]);
	line[len] = '\0';
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(status))
		log_error("outbox: the flush process crashed (signal %d, %s)", WTERMSIG(status),
			  strsignal(WTERMSIG(status)));
	else if (sscanf(line, "O %d %lu %lu %lu %lu %lu %lu", &rc, &os->due, &os->sent,
			&os->retried, &os->dead, &os->refused_rcpts, &os->unknown) != 7)
		rc = -1;     /* it failed before flushing, and said why */
	return rc < 0 ? -1 : 0;
}

int
worker_spawn_outbox(const cfg *c, int trace, const struct run_lease *lease, pid_t *pid_r,
		    char **err_r)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		*err_r = err_fmt("cannot fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		/* A stop waits for the flush: a message killed past its final dot
		 * would be sent twice. */
		worker_signals(worker_on_signal);
		_exit(worker_outbox_main(c, 0, trace, lease, -1));
	}
	*pid_r = pid;
	return 0;
}

int
worker_flush_leased(const cfg *c, store *st, const char *owner, int all, int trace,
		    outbox_stats *os)
{
	claim cl = { 0 };
	struct run_lease rl;
	int r = claim_take(&cl, st, owner, CLAIM_OUTBOX, c->lease_ttl_s);

	memset(os, 0, sizeof *os);
	if (r <= 0) {
		if (r == 0)
			log_info("outbox: another daemon flushes it now: left to that one");
		return r < 0 ? -1 : 1;
	}
	claim_lease(&cl, &rl);
	r = worker_flush_outbox(c, all, trace, &rl, os);
	claim_release(&cl, st);
	return r;
}

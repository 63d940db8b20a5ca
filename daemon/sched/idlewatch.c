/* mailmill - ISC licence, see LICENSE */
/*
 * The IDLE watcher process (daemon/sched/idlewatch.h).  Each watched folder
 * is a session that is down (waiting for its next try), opening, or
 * idling.  The loop hands what is due to a few connector threads (connect,
 * sign in, EXAMINE, IDLE: a server that does not answer holds one of them
 * for its timeouts, never the loop), polls every idling socket, the
 * connectors' wake-up pipe and the control pipe, reads what came, renews
 * what is due, and sleeps until the next of those.  A session belongs to
 * its connector while opening and to the loop otherwise; the hand-over is
 * the queue.  A renewal blocks the loop for one session (within its command
 * timeout): a server that takes DONE but never answers costs that, once.
 */
#include <config.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include "daemon/sched/idlewatch.h"
#include "daemon/sched/backoff.h"
#include "daemon/sched/idlecount.h"
#include "daemon/sched/worker.h"
#include "daemon/core/log.h"
#include "daemon/core/privs.h"
#include "daemon/run/run_login.h"
#include "daemon/store/store.h"
#include "proto/imap.h"

#define IW_RETRY_S 2             /* back-off base: 4 s, 8 s, ... max_backoff */
#define IW_SHORT_LIFE_S 60       /* dropped sooner than this: counts as a failure */
#define IW_PARENT_CHECK_MS 30000 /* the longest sleep without asking getppid() */
#define IW_CONNECTORS 4          /* connector threads */

static volatile sig_atomic_t iw_stop;

static void
iw_on_signal(int sig)
{
	(void)sig;
	iw_stop = 1;
}

/* An account with its secret resolved (worker_pin_secret). */
typedef struct iw_acct {
	cfg_account a;
	oauth_cfg oc;
	char *secret;
} iw_acct;

/* One watched folder. */
typedef struct iw_sess {
	const iw_acct *acct;
	const char *folder;            /* borrowed from the configuration */
	imap_session *s;               /* NULL: down or opening */
	int opening;                   /* a connector has it: the fields below */
	imap_session *os;              /* the connector's session */
	imap_mailbox omb;              /* what its EXAMINE said */
	int orc, orefused, onever;     /* iw_open's result */
	char *oerr;
	idlecount n;                   /* what the folder holds (daemon/sched/idlecount.h) */
	uint32_t uidvalidity;          /* at the last EXAMINE; 0: never opened */
	int failures;                  /* tries in a row that failed */
	int auth_refused;              /* the last failure was a refused login */
	int never;                     /* the server cannot IDLE: tried rarely */
	gint64 next_try;               /* monotonic us, while down */
	gint64 renew_at;               /* monotonic us, while idling */
	gint64 up_since;               /* monotonic us */
} iw_sess;

typedef struct iw {
	const cfg *c;
	int out_fd, ctl_fd;
	pid_t parent;
	store *tokens;                 /* OAuth accounts' token cache; NULL without */
	GMutex tokens_lock;            /* one connector at a time uses it (and HTTP) */
	gint64 renew_us;
	iw_acct *accts;
	size_t n_accts;
	iw_sess *sess;
	size_t n_sess;
	GThreadPool *pool;             /* connectors: iw_open_job */
	GAsyncQueue *opened;           /* iw_sess * they are done with */
	int wake[2];                   /* a byte per session opened */
} iw;

/* The renewal period: IDLEWATCH_RENEW_S, or the test's. */
static gint64
iw_renew_period_us(void)
{
	const char *v = getenv("MAILMILL_TEST_IDLE_RENEW");
	long long n;
	char *end;

	if (v != NULL && *v != '\0') {
		errno = 0;
		n = strtoll(v, &end, 10);
		if (errno == 0 && *end == '\0' && n >= 1 && n <= IDLEWATCH_RENEW_S)
			return n * G_USEC_PER_SEC;
		log_warn("IDLE: ignoring MAILMILL_TEST_IDLE_RENEW=%s (1..%d seconds)", v,
			 IDLEWATCH_RENEW_S);
	}
	return (gint64)IDLEWATCH_RENEW_S * G_USEC_PER_SEC;
}

/* Spread renewals over the last tenth of the period, never after it. */
static gint64
iw_next_renew(const iw *w, gint64 now)
{
	return now + w->renew_us - (gint64)(g_random_double() * 0.1 * (double)w->renew_us);
}

/* "N account": best effort, the daemon polls at the interval anyway. */
static void
iw_report(iw *w, const iw_sess *x)
{
	char line[512];
	int n = snprintf(line, sizeof line, "N %s\n", x->acct->a.name);
	const char *p = line;

	log_debug("%s/%s: new mail", x->acct->a.name, x->folder);
	if (n <= 0 || (size_t)n >= sizeof line)
		return;
	while (n > 0) {
		ssize_t k = write(w->out_fd, p, (size_t)n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return;
		p += k;
		n -= (int)k;
	}
}

/* Connect and sign in as the account's runs do (run_imap_sign_in, which
 * logs why it could not), EXAMINE, IDLE: 0, or -1 and *err_r (*auth_r: the
 * login was refused; *never_r: the server does not offer IDLE). */
static int
iw_open(iw *w, iw_sess *x, imap_session **s_r, imap_mailbox *mb, int *auth_r, int *never_r,
	char **err_r)
{
	const char *how = NULL;
	run_fail fail = RUN_FAIL_TEMP;

	int rc;

	*auth_r = *never_r = 0;
	if (x->acct->a.oauth != NULL)
		g_mutex_lock(&w->tokens_lock);
	rc = run_imap_sign_in(&x->acct->a, w->tokens, w->c->path, NULL, NULL, s_r, &how, &fail);
	if (x->acct->a.oauth != NULL)
		g_mutex_unlock(&w->tokens_lock);
	if (rc < 0) {
		*auth_r = fail == RUN_FAIL_AUTH;
		*err_r = strdup(*auth_r ? "sign-in refused" : "cannot connect or sign in");
		return -1;
	}
	if (!imap_has_capa(*s_r, "IDLE")) {
		*never_r = 1;
		*err_r = strdup("the server does not offer IDLE");
		return -1;
	}
	/* EXAMINE: read-only, the watcher changes nothing (not even \Recent). */
	if (imap_examine(*s_r, x->folder, mb, err_r) != IMAP_OK ||
	    imap_idle_start(*s_r, err_r) != IMAP_OK)
		return -1;
	return 0;
}

static void
iw_down(iw *w, iw_sess *x, gint64 now, const char *why)
{
	const cfg_account *a = &x->acct->a;
	double d;

	imap_close(&x->s);
	if (x->never) {
		d = (double)w->c->max_backoff_s;
	} else if (x->up_since != 0 && now - x->up_since >= IW_SHORT_LIFE_S * G_USEC_PER_SEC) {
		/* It had been up a while: try again at once (spread a little). */
		x->failures = 0;
		d = g_random_double();
	} else {
		x->failures++;
		d = backoff_failed(IW_RETRY_S, x->failures, x->auth_refused, w->c->max_backoff_s,
				   g_random_double());
	}
	x->up_since = 0;
	x->next_try = now + (gint64)(d * (double)G_USEC_PER_SEC);
	log_warn("%s/%s: IDLE watch failed: %s; trying again in %.0fs (polled every %llds meanwhile)",
		 a->name, x->folder, why, d, (long long)a->interval_s);
}

/* In a connector thread. */
static void
iw_open_job(gpointer data, gpointer arg)
{
	iw_sess *x = data;
	iw *w = arg;
	ssize_t n;

	memset(&x->omb, 0, sizeof x->omb);
	x->oerr = NULL;
	x->orc = iw_open(w, x, &x->os, &x->omb, &x->orefused, &x->onever, &x->oerr);
	g_async_queue_push(w->opened, x);
	do
		n = write(w->wake[1], "o", 1);
	while (n < 0 && errno == EINTR);
}

/* Back from its connector: idling, or down again. */
static void
iw_opened(iw *w, iw_sess *x)
{
	const imap_mailbox mb = x->omb;
	gint64 now;

	x->opening = 0;
	if (x->orc < 0) {
		imap_close(&x->os);
		x->auth_refused = x->orefused;
		x->never = x->onever;
		iw_down(w, x, g_get_monotonic_time(), x->oerr != NULL ? x->oerr : "error");
		free(x->oerr);
		x->oerr = NULL;
		return;
	}
	x->s = x->os;
	x->os = NULL;
	now = g_get_monotonic_time();
	if (x->uidvalidity == 0)
		log_info("%s/%s: watching with IDLE (%u messages)%s", x->acct->a.name, x->folder,
			 mb.exists, x->failures > 0 ? " after failed tries" : "");
	else if (x->failures > 0)
		log_info("%s/%s: IDLE watch back after %d failed tr%s", x->acct->a.name, x->folder,
			 x->failures, x->failures == 1 ? "y" : "ies");
	else
		log_info("%s/%s: IDLE watch reconnected", x->acct->a.name, x->folder);
	/* Mail that came while the session was away (a server restart, a
	 * dropped link): UIDNEXT moved, or the folder is another one now. */
	if (x->uidvalidity != 0 && (mb.uidvalidity != x->uidvalidity ||
				    idlecount_missed(&x->n, mb.uidnext)))
		iw_report(w, x);
	x->uidvalidity = mb.uidvalidity != 0 ? mb.uidvalidity : 1;
	x->failures = 0;
	x->auth_refused = 0;
	x->never = 0;
	x->up_since = now;
	x->renew_at = iw_next_renew(w, now);
	idlecount_open(&x->n, mb.exists, mb.uidnext, imap_counters_get(x->s)->n_exists,
		       imap_counters_get(x->s)->n_expunge);
}

/* What came since the last look (daemon/sched/idlecount.h). */
static void
iw_account_for(iw *w, iw_sess *x)
{
	const imap_counters *k = imap_counters_get(x->s);

	if (idlecount_update(&x->n, k->exists, k->n_exists, k->n_expunge))
		iw_report(w, x);
}

static void
iw_read(iw *w, iw_sess *x, gint64 now)
{
	unsigned events = 0;
	char *err = NULL;

	if (imap_idle_read(x->s, &events, &err) != IMAP_OK) {
		/* An EXISTS read just before the end still counts. */
		iw_account_for(w, x);
		iw_down(w, x, now, err != NULL ? err : "connection lost");
		free(err);
		return;
	}
	if (events != 0)
		iw_account_for(w, x);
}

/* DONE, then IDLE again: the server's 30 minutes start anew. */
static void
iw_renew(iw *w, iw_sess *x, gint64 now)
{
	char *err = NULL;
	imap_status st = imap_idle_done(x->s, &err);

	if (st == IMAP_OK) {
		iw_account_for(w, x);   /* what came with the DONE */
		st = imap_idle_start(x->s, &err);
	}
	if (st != IMAP_OK) {
		iw_down(w, x, now, err != NULL ? err : "error");
		free(err);
		return;
	}
	iw_account_for(w, x);
	x->renew_at = iw_next_renew(w, g_get_monotonic_time());
	log_debug("%s/%s: IDLE renewed", x->acct->a.name, x->folder);
}

/* The accounts to watch, their secrets resolved (failures logged). */
static void
iw_setup(iw *w, char *const *only, int n_only)
{
	size_t k, i, n = 0;

	w->accts = g_new0(iw_acct, w->c->n_accounts > 0 ? w->c->n_accounts : 1);
	for (k = 0; k < w->c->n_accounts; k++) {
		const cfg_account *ca = &w->c->accounts[k];
		iw_acct *ia = &w->accts[w->n_accts];

		if (ca->protocol != CFG_PROTO_IMAP || !ca->idle ||
		    !cfg_selected(ca->name, only, n_only))
			continue;
		/* Without its secret the account is still polled by its workers,
		 * which say why they cannot sign in either. */
		if (worker_pin_secret(ca, &ia->a, &ia->oc, &ia->secret) < 0)
			continue;
		w->n_accts++;
		n += ca->n_folders;
	}
	w->sess = g_new0(iw_sess, n > 0 ? n : 1);
	for (k = 0; k < w->n_accts; k++) {
		for (i = 0; i < w->accts[k].a.n_folders; i++) {
			iw_sess *x = &w->sess[w->n_sess++];

			x->acct = &w->accts[k];
			x->folder = w->accts[k].a.folders[i];
		}
	}
}

static void
iw_cleanup(iw *w)
{
	size_t k;

	for (k = 0; k < w->n_sess; k++)
		imap_close(&w->sess[k].s);
	for (k = 0; k < w->n_accts; k++)
		secret_wipe(&w->accts[k].secret);
	g_free(w->sess);
	g_free(w->accts);
	store_close(&w->tokens);
}

/* Sessions back from their connectors. */
static void
iw_take_opened(iw *w)
{
	char bytes[256];
	iw_sess *x;

	while (read(w->wake[0], bytes, sizeof bytes) > 0)
		;
	while ((x = g_async_queue_try_pop(w->opened)) != NULL)
		iw_opened(w, x);
}

/* One turn: open what is due, poll, read, renew.  0, or 1 to end. */
static int
iw_turn(iw *w, struct pollfd *pf, size_t *idx)
{
	gint64 now = g_get_monotonic_time(), wake = now + IW_PARENT_CHECK_MS * 1000LL;
	size_t k, n = 2;
	int ready = 0, r, ms;

	pf[0].fd = w->ctl_fd;
	pf[0].events = POLLIN;
	pf[1].fd = w->wake[0];
	pf[1].events = POLLIN;
	for (k = 0; k < w->n_sess; k++) {
		iw_sess *x = &w->sess[k];

		if (x->opening)
			continue;
		if (x->s == NULL && x->next_try <= now) {
			x->opening = 1;
			g_thread_pool_push(w->pool, x, NULL);
			continue;
		}
		if ((x->s != NULL ? x->renew_at : x->next_try) < wake)
			wake = x->s != NULL ? x->renew_at : x->next_try;
		if (x->s == NULL)
			continue;
		if (imap_idle_pending(x->s))
			ready = 1;
		pf[n].fd = imap_fd(x->s);
		pf[n].events = POLLIN;
		idx[n++] = k;
	}
	ms = ready || wake <= now ? 0 : (int)((wake - now + 999) / 1000);
	if (iw_stop)
		return 1;
	r = poll(pf, n, ms);
	if (r < 0 && errno != EINTR) {
		log_error("IDLE watcher: poll: %s", strerror(errno));
		return 1;
	}
	if (iw_stop || (r > 0 && pf[0].revents != 0) || getppid() != w->parent)
		return 1;   /* stopped, or the daemon is gone */
	now = g_get_monotonic_time();
	for (k = 2; k < n; k++) {
		iw_sess *x = &w->sess[idx[k]];

		if (x->s != NULL && ((r > 0 && pf[k].revents != 0) || imap_idle_pending(x->s)))
			iw_read(w, x, now);
		if (x->s != NULL && x->renew_at <= now)
			iw_renew(w, x, now);
	}
	if (r > 0 && pf[1].revents != 0)
		iw_take_opened(w);
	return 0;
}

int
idlewatch_main(const cfg *c, char *const *only, int n_only, int out_fd, int ctl_fd)
{
	struct pollfd *pf;
	size_t *idx, k;
	char *err = NULL;
	iw w;

	memset(&w, 0, sizeof w);
	w.c = c;
	w.out_fd = out_fd;
	w.ctl_fd = ctl_fd;
	w.parent = getppid();
	g_mutex_init(&w.tokens_lock);
	worker_signals(iw_on_signal);
	iw_setup(&w, only, n_only);
	if (privs_drop(c->user, &err) < 0) {
		log_error("IDLE watcher: %s", err);
		free(err);
		iw_cleanup(&w);
		return 78;
	}
	/* Within worker_memory, as the workers: it holds every watched
	 * folder's connection, so the limit must fit those too. */
	if (privs_limit_memory(c->worker_memory, &err) < 0) {
		log_warn("IDLE watcher: %s", err);
		free(err);
		err = NULL;
	}
	for (k = 0; k < w.n_accts && w.tokens == NULL; k++) {
		/* The configured store (tokens live in PostgreSQL with one). */
		if (w.accts[k].a.oauth != NULL && store_open_cfg(c, 0, &w.tokens, &err) < 0) {
			/* Those accounts then fail to sign in, and say so. */
			log_error("IDLE watcher: cannot open the store: %s", err);
			free(err);
			err = NULL;
			break;
		}
	}
	w.renew_us = iw_renew_period_us();
	log_info("IDLE watcher %ld: %zu folder(s) of %zu account(s)", (long)getpid(), w.n_sess,
		 w.n_accts);
	if (pipe2(w.wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		log_error("IDLE watcher: cannot make a pipe: %s", strerror(errno));
		iw_cleanup(&w);
		return 71;
	}
	w.opened = g_async_queue_new();
	w.pool = g_thread_pool_new(iw_open_job, &w, IW_CONNECTORS, FALSE, NULL);
	pf = g_new0(struct pollfd, w.n_sess + 2);
	idx = g_new0(size_t, w.n_sess + 2);
	while (!iw_turn(&w, pf, idx))
		;
	/* Connectors still busy keep their sessions and the accounts until
	 * the process ends, which is now: only the loop's sessions are
	 * closed, nothing they use is freed. */
	g_thread_pool_free(w.pool, TRUE, FALSE);
	for (k = 0; k < w.n_sess; k++)
		imap_close(&w.sess[k].s);
	log_debug("IDLE watcher %ld stopped", (long)getpid());
	return 0;
}

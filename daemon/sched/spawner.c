/* mailmill - ISC licence, see LICENSE */
/*
 * The spawner process (daemon/sched/spawner.h): a plain poll() loop over
 * the scheduler's socket and a signalfd, no GLib main loop, so that what a
 * forked worker inherits is the configuration and little else.
 */
#include <config.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>
#include "daemon/sched/spawner.h"
#include "daemon/core/log.h"
#include "daemon/sched/worker.h"
#include "proto/tls.h"

typedef struct spawner_run {
	unsigned long long seq;
	pid_t pid;
} spawner_run;

typedef struct spawner {
	const cfg *c;
	const run_opts *o;
	GHashTable *by_name;  /* account name -> const cfg_account * */
	GArray *runs;         /* spawner_run: the workers not reaped yet */
	int fd, sfd;
	int stopping;         /* stop every worker, then exit */
	gint64 kill_at;       /* then: monotonic us when they are killed */
	int quitting;         /* no more runs; exit once none is left */
} spawner;

/* Best effort: a scheduler that is gone cannot listen. */
static void
spawner_say(spawner *sp, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void
spawner_say(spawner *sp, const char *fmt, ...)
{
	char msg[SPAWNER_MSG_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n < 0 || sp->fd < 0)
		return;
	if ((size_t)n >= sizeof msg)
		n = (int)sizeof msg - 1;
	while (send(sp->fd, msg, (size_t)n, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

static void
spawner_signal_all(spawner *sp, int sig)
{
	for (guint i = 0; i < sp->runs->len; i++)
		kill(g_array_index(sp->runs, spawner_run, i).pid, sig);
}

static void
spawner_stop(spawner *sp)
{
	if (sp->stopping)
		return;
	sp->stopping = 1;
	/* The message in hand gets its own deadline; nobody else enforces
	 * it now. */
	sp->kill_at = g_get_monotonic_time() + sp->c->message_timeout_s * G_USEC_PER_SEC;
	spawner_signal_all(sp, SIGTERM);
}

/* poll's timeout: until the stop's deadline, or none. */
static int
spawner_timeout(spawner *sp)
{
	gint64 left;

	if (!sp->stopping)
		return -1;
	left = sp->kill_at - g_get_monotonic_time();
	if (left <= 0) {
		log_error("spawner: %u worker(s) still running past message_timeout after the"
			  " stop: killed", sp->runs->len);
		spawner_signal_all(sp, SIGKILL);
		sp->kill_at = G_MAXINT64;
		return -1;
	}
	return (int)MIN(left / 1000 + 1, G_MAXINT);
}

/* The worker's process: nothing of the spawner's stays open in it. */
static G_GNUC_NORETURN void
spawner_child(spawner *sp, const cfg_account *a, const struct run_lease *rl, int pfd)
{
	run_opts ro = *sp->o;

	close(sp->fd);
	close(sp->sfd);
	(void)prctl(PR_SET_NAME, "mailmilld");
	ro.lease = rl;
	_exit(worker_child(sp->c, a, &ro, pfd));
}

/* "R seq fence ttl empty owner account" with the progress pipe pfd (taken). */
static void
spawner_run_one(spawner *sp, const char *msg, int pfd)
{
	unsigned long long seq;
	long long fence, ttl;
	char owner[256];
	int off = 0, empty = 0;
	const cfg_account *a;
	struct run_lease rl;
	spawner_run r;
	pid_t pid;

	if (sscanf(msg, "R %llu", &seq) != 1) {
		log_error("spawner: a request it cannot read: %.80s", msg);
		goto out;
	}
	if (sscanf(msg, "R %llu %lld %lld %d %255s %n", &seq, &fence, &ttl, &empty, owner,
		   &off) != 5 || off == 0 || (empty != 0 && empty != 1)) {
		spawner_say(sp, "E %llu a request the spawner cannot read", seq);
		goto out;
	}
	if (pfd < 0) {
		spawner_say(sp, "E %llu no progress pipe came with the request", seq);
		goto out;
	}
	if (sp->stopping || sp->quitting) {
		spawner_say(sp, "E %llu the spawner is stopping", seq);
		goto out;
	}
	if ((a = g_hash_table_lookup(sp->by_name, msg + off)) == NULL) {
		spawner_say(sp, "E %llu no account '%s' in the spawner's configuration", seq,
			    msg + off);
		goto out;
	}
	rl.owner = owner;
	rl.fence = fence;
	rl.ttl_s = ttl;
	rl.journal_empty = empty;
	fflush(NULL);
	if ((pid = fork()) < 0) {
		spawner_say(sp, "E %llu cannot fork: %s", seq, strerror(errno));
		goto out;
	}
	if (pid == 0)
		spawner_child(sp, a, strcmp(owner, "-") == 0 ? NULL : &rl, pfd);
	r.seq = seq;
	r.pid = pid;
	g_array_append_val(sp->runs, r);
	spawner_say(sp, "S %llu %ld", seq, (long)pid);
out:
	if (pfd >= 0)
		close(pfd);
}

static void
spawner_kill(spawner *sp, const char *msg)
{
	unsigned long long seq;
	int sig;

	if (sscanf(msg, "K %llu %d", &seq, &sig) != 2)
		return;
	for (guint i = 0; i < sp->runs->len; i++) {
		spawner_run *r = &g_array_index(sp->runs, spawner_run, i);

		if (r->seq == seq)
			kill(r->pid, sig);
	}
}

/* One message from the scheduler; 0 when its end is closed. */
static int
spawner_read(spawner *sp)
{
	char msg[SPAWNER_MSG_MAX];
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { msg, sizeof msg - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			     .msg_controllen = sizeof ctl.buf };
	struct cmsghdr *cm;
	ssize_t n = recvmsg(sp->fd, &mh, MSG_CMSG_CLOEXEC);
	int pfd = -1;

	if (n < 0)
		return errno == EINTR || errno == EAGAIN;
	if (n == 0)
		return 0;
	msg[n] = '\0';
	for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&pfd, CMSG_DATA(cm), sizeof pfd);
	}
	if (msg[0] == 'R')
		spawner_run_one(sp, msg, pfd);
	else if (pfd >= 0)
		close(pfd);
	if (msg[0] == 'K')
		spawner_kill(sp, msg);
	else if (msg[0] == 'Q')
		sp->quitting = 1;
	return 1;
}

/* Reap every child that ended; report the workers. */
static void
spawner_reap(spawner *sp)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (guint i = 0; i < sp->runs->len; i++) {
			spawner_run *r = &g_array_index(sp->runs, spawner_run, i);

			if (r->pid != pid)
				continue;
			spawner_say(sp, "X %llu %d", r->seq, status);
			g_array_remove_index_fast(sp->runs, i);
			break;
		}
	}
}

static void
spawner_on_signals(spawner *sp)
{
	struct signalfd_siginfo si;

	while (read(sp->sfd, &si, sizeof si) == (ssize_t)sizeof si) {
		if (si.ssi_signo == SIGCHLD)
			spawner_reap(sp);
		else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			spawner_stop(sp);
	}
}

static int
spawner_setup(spawner *sp, pid_t parent)
{
	sigset_t set;

	/* The scheduler gone: its workers stop, none is left behind. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent) {
		log_error("spawner: the daemon is gone");
		return -1;
	}
	/* Nothing of the daemon's (its state lock, inherited so that a new
	 * daemon waits for these workers as for its own) goes on to what a
	 * worker executes. */
	(void)close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	/* Told apart in ps and top (its workers are named mailmilld again). */
	(void)prctl(PR_SET_NAME, "mailmilld-spawn");
	/* A worker's own children that outlive it end up here, and are reaped. */
	(void)prctl(PR_SET_CHILD_SUBREAPER, 1);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0 ||
	    (sp->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		log_error("spawner: cannot watch signals: %s", strerror(errno));
		return -1;
	}
	sp->by_name = g_hash_table_new(g_str_hash, g_str_equal);
	for (size_t k = 0; k < sp->c->n_accounts; k++) {
		const cfg_account *a = &sp->c->accounts[k];
		char *err = NULL;

		g_hash_table_insert(sp->by_name, a->name, (gpointer)a);
		/* OpenSSL's start and the CA file, once here instead of in
		 * every worker (it was a third of an idle poll's CPU with a
		 * one-certificate file; a system bundle costs ten times that). */
		if (a->tls != CFG_TLS_NONE && tls_preload(a->ca_file, &err) < 0) {
			log_debug("spawner: %s: %s", a->name, err);
			free(err);
		}
	}
	sp->runs = g_array_new(FALSE, FALSE, sizeof(spawner_run));
	return 0;
}

int
spawner_main(const cfg *c, const run_opts *o, int fd, pid_t parent)
{
	spawner sp = { .c = c, .o = o, .fd = fd, .sfd = -1 };
	int rc = EX_OSERR;

	if (spawner_setup(&sp, parent) < 0)
		goto out;
	log_debug("spawner %ld ready: %zu account(s)", (long)getpid(), c->n_accounts);
	while (!((sp.stopping || sp.quitting) && sp.runs->len == 0)) {
		struct pollfd p[2] = { { sp.sfd, POLLIN, 0 }, { sp.fd, POLLIN, 0 } };
		int nfds = sp.fd >= 0 ? 2 : 1;

		if (poll(p, (nfds_t)nfds, spawner_timeout(&sp)) < 0 && errno != EINTR) {
			log_error("spawner: poll: %s", strerror(errno));
			spawner_stop(&sp);
		}
		if (p[0].revents != 0)
			spawner_on_signals(&sp);
		if (nfds == 2 && p[1].revents != 0 && !spawner_read(&sp)) {
			/* The scheduler is gone: nobody hears the workers now. */
			close(sp.fd);
			sp.fd = -1;
			spawner_stop(&sp);
		}
	}
	rc = EX_OK;
out:
	if (sp.sfd >= 0)
		close(sp.sfd);
	if (sp.fd >= 0)
		close(sp.fd);
	if (sp.by_name != NULL)
		g_hash_table_destroy(sp.by_name);
	if (sp.runs != NULL)
		g_array_free(sp.runs, TRUE);
	return rc;
}

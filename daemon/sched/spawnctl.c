/* mailmill - ISC licence, see LICENSE */
/*
 * The scheduler's side of the spawner (daemon/sched/spawner.h): starts it
 * (a fresh exec of this mailmilld with --spawner), hands it runs, passes on
 * what it says to supervise.c, and re-makes it when it dies.  A reload
 * makes a new one for the new configuration; the old one finishes its
 * workers and exits.
 */
#include <config.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>
#include <glib-unix.h>
#include "daemon/sched/sched_int.h"
#include "daemon/core/log.h"
#include "daemon/sched/spawner.h"
#include "proto/err.h"

/* Re-making a spawner that keeps dying: at most once per this many seconds
 * (doubling from 1). */
#define SPAWNCTL_BACKOFF_MAX_S 60
/* A spawner that lived this long before it died is re-made at once. */
#define SPAWNCTL_STABLE_S 30

struct spawnctl {
	sched *s;
	pid_t pid;
	int fd;
	guint fd_src, child_src;
	int draining;         /* told Q: a newer one takes the runs */
	gint64 started;       /* monotonic us */
};

static void spawnctl_remake(sched *s);

static void
spawnctl_dispatch(spawnctl *sp, const char *msg)
{
	unsigned long long seq;
	long v;
	int off = 0;

	if (sscanf(msg, "S %llu %ld", &seq, &v) == 2)
		supervise_spawned(sp->s, sp, seq, (pid_t)v);
	else if (sscanf(msg, "X %llu %ld", &seq, &v) == 2)
		supervise_ended(sp->s, sp, seq, (int)v);
	else if (sscanf(msg, "E %llu %n", &seq, &off) == 1 && off > 0)
		supervise_refused(sp->s, sp, seq, msg + off);
	else
		log_warn("spawner %ld said what the daemon cannot read: %.80s", (long)sp->pid, msg);
}

/* Everything it said so far; 0 once its end is closed. */
static int
spawnctl_drain(spawnctl *sp)
{
	char msg[SPAWNER_MSG_MAX + 1];

	for (;;) {
		ssize_t n = recv(sp->fd, msg, SPAWNER_MSG_MAX, MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK;
		if (n == 0)
			return 0;
		msg[n] = '\0';
		spawnctl_dispatch(sp, msg);
	}
}

static gboolean
spawnctl_on_fd(gint fd, GIOCondition cond, gpointer arg)
{
	spawnctl *sp = arg;

	(void)fd;
	(void)cond;
	if (spawnctl_drain(sp))
		return G_SOURCE_CONTINUE;
	sp->fd_src = 0;      /* its exit follows; the child watch handles it */
	return G_SOURCE_REMOVE;
}

static void
spawnctl_free_one(spawnctl *sp)
{
	if (sp->fd_src != 0)
		g_source_remove(sp->fd_src);
	if (sp->child_src != 0)
		g_source_remove(sp->child_src);
	if (sp->fd >= 0)
		close(sp->fd);
	g_free(sp);
}

static gboolean
spawnctl_on_retry(gpointer arg)
{
	sched *s = arg;

	s->spawner_retry = 0;
	spawnctl_remake(s);
	return G_SOURCE_REMOVE;
}

static void
spawnctl_on_exit(GPid pid, gint status, gpointer arg)
{
	spawnctl *sp = arg;
	sched *s = sp->s;
	int current = s->spawner == sp;
	gint64 lived = g_get_monotonic_time() - sp->started;

	g_spawn_close_pid(pid);
	sp->child_src = 0;
	spawnctl_drain(sp);        /* what it said before it died */
	if (current)
		s->spawner = NULL;
	else
		g_ptr_array_remove(s->spawners_old, sp);
	if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0 && (sp->draining || s->stopping))) {
		if (WIFSIGNALED(status))
			log_error("the spawner (pid %ld) died: signal %d, %s", (long)pid,
				  WTERMSIG(status), strsignal(WTERMSIG(status)));
		else
			log_error("the spawner (pid %ld) exited with status %d", (long)pid,
				  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	}
	/* Its workers are this daemon's children now (a subreaper). */
	supervise_orphaned(s, sp);
	spawnctl_free_one(sp);
	if (current && !s->stopping) {
		if (lived >= SPAWNCTL_STABLE_S * G_USEC_PER_SEC)
			s->spawner_backoff = 0;
		if (s->spawner_backoff == 0) {
			s->spawner_backoff = 1;
			spawnctl_remake(s);
		} else if (s->spawner_retry == 0) {
			log_warn("making a new spawner in %d s", s->spawner_backoff);
			s->spawner_retry = g_timeout_add_seconds((guint)s->spawner_backoff,
								 spawnctl_on_retry, s);
			s->spawner_backoff = MIN(2 * s->spawner_backoff, SPAWNCTL_BACKOFF_MAX_S);
		}
	}
	sched_maybe_quit(s);
}

/* The spawner's command line: this binary, this configuration file, the
 * daemon's log level and trace; fd is its end of the socket; bind_now: it
 * was started with LD_BIND_NOW set for it. */
static GPtrArray *
spawnctl_argv(const sched *s, int fd, int bind_now)
{
	GPtrArray *av = g_ptr_array_new_with_free_func(g_free);

	g_ptr_array_add(av, g_strdup("mailmilld"));
	g_ptr_array_add(av, g_strdup("-c"));
	g_ptr_array_add(av, g_strdup(s->o->config_path));
	if (s->o->log_level == LOG_LVL_WARNING)
		g_ptr_array_add(av, g_strdup("-q"));
	else if (s->o->log_level == LOG_LVL_DEBUG)
		g_ptr_array_add(av, g_strdup("-v"));
	if (s->o->ro.trace)
		g_ptr_array_add(av, g_strdup("-v"));
	g_ptr_array_add(av, g_strdup_printf("--spawner=%d:%ld:%d", fd, (long)getpid(), bind_now));
	g_ptr_array_add(av, NULL);
	return av;
}

static int
spawnctl_start(sched *s, char **err_r)
{
	spawnctl *sp;
	GPtrArray *av;
	int sv[2], bind_now;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		*err_r = err_fmt("cannot make the spawner's socket: %s", strerror(errno));
		return -1;
	}
	bind_now = getenv("LD_BIND_NOW") == NULL;
	av = spawnctl_argv(s, sv[1], bind_now);
	fflush(NULL);
	if ((pid = fork()) < 0) {
		*err_r = err_fmt("cannot fork the spawner: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		g_ptr_array_free(av, TRUE);
		return -1;
	}
	if (pid == 0) {
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* Every symbol bound once, in the spawner: a worker otherwise
		 * resolves each function it calls first, every time (the
		 * dynamic linker's do_lookup_x was 7 % of a poll).  The spawner
		 * takes it out of its environment again (spawner_main). */
		if (bind_now)
			setenv("LD_BIND_NOW", "1", 1);
		/* The state lock stays held while a worker of this daemon
		 * lives, as when the daemon forked them itself: a daemon
		 * started after a crash waits for them. */
		if (s->lock_fd >= 0)
			(void)fcntl(s->lock_fd, F_SETFD, 0);
		if (fcntl(sv[1], F_SETFD, 0) == 0)
			execv("/proc/self/exe", (char **)av->pdata);
		fprintf(stderr, "mailmilld: cannot start the spawner: %s\n", strerror(errno));
		_exit(127);
	}
	close(sv[1]);
	g_ptr_array_free(av, TRUE);
	sp = g_new0(spawnctl, 1);
	sp->s = s;
	sp->pid = pid;
	sp->fd = sv[0];
	sp->started = g_get_monotonic_time();
	sp->fd_src = g_unix_fd_add(sp->fd, G_IO_IN | G_IO_HUP | G_IO_ERR, spawnctl_on_fd, sp);
	sp->child_src = g_child_watch_add(pid, spawnctl_on_exit, sp);
	s->spawner = sp;
	log_debug("spawner %ld started", (long)pid);
	return 0;
}

static void
spawnctl_remake(sched *s)
{
	char *err = NULL;

	if (s->stopping || s->spawner != NULL)
		return;
	if (spawnctl_start(s, &err) < 0) {
		log_error("%s", err);
		free(err);
		return;
	}
	log_info("made a new spawner (pid %ld)", (long)s->spawner->pid);
}

int
spawnctl_init(sched *s, char **err_r)
{
	/* A worker whose spawner died becomes this daemon's child, so that
	 * its end is still seen (daemon/sched/supervise.c). */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		*err_r = err_fmt("cannot become a subreaper: %s", strerror(errno));
		return -1;
	}
	s->spawners_old = g_ptr_array_new();
	return spawnctl_start(s, err_r);
}

void
spawnctl_renew(sched *s)
{
	spawnctl *old = s->spawner;

	if (old != NULL) {
		old->draining = 1;
		g_ptr_array_add(s->spawners_old, old);
		s->spawner = NULL;
		if (send(old->fd, "Q", 1, MSG_NOSIGNAL) < 0)
			log_warn("cannot tell the old spawner to finish: %s", strerror(errno));
	}
	if (s->spawner_retry != 0) {
		g_source_remove(s->spawner_retry);
		s->spawner_retry = 0;
	}
	s->spawner_backoff = 0;
	spawnctl_remake(s);
}

int
spawnctl_run(sched *s, const char *account, const struct run_lease *rl, int pfd,
	     spawnctl **sp_r, unsigned long long *seq_r, char **err_r)
{
	char msg[SPAWNER_MSG_MAX];
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov;
	struct msghdr mh;
	struct cmsghdr *cm;
	spawnctl *sp = s->spawner;
	int n;

	if (sp == NULL) {
		*err_r = err_fmt("no spawner runs now");
		return -1;
	}
	n = snprintf(msg, sizeof msg, "R %llu %lld %lld %d %s %s", s->spawn_seq + 1,
		     rl != NULL ? rl->fence : 0, rl != NULL ? rl->ttl_s : 0,
		     rl != NULL && rl->journal_empty, rl != NULL && rl->owner != NULL ? rl->owner : "-",
		     account);
	if (n < 0 || (size_t)n >= sizeof msg) {
		*err_r = err_fmt("account name too long for the spawner");
		return -1;
	}
	memset(&mh, 0, sizeof mh);
	memset(&ctl, 0, sizeof ctl);
	iov.iov_base = msg;
	iov.iov_len = (size_t)n;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctl.buf;
	mh.msg_controllen = sizeof ctl.buf;
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &pfd, sizeof pfd);
	while (sendmsg(sp->fd, &mh, MSG_NOSIGNAL) < 0) {
		if (errno != EINTR) {
			*err_r = err_fmt("cannot reach the spawner: %s", strerror(errno));
			return -1;
		}
	}
	*sp_r = sp;
	*seq_r = ++s->spawn_seq;
	return 0;
}

void
spawnctl_kill(spawnctl *sp, unsigned long long seq, int sig)
{
	char msg[64];
	int n = snprintf(msg, sizeof msg, "K %llu %d", seq, sig);

	if (send(sp->fd, msg, (size_t)n, MSG_NOSIGNAL) < 0)
		log_warn("cannot reach the spawner to stop a worker: %s", strerror(errno));
}

/* At exit: every worker is gone; a spawner whose socket closes exits. */
void
spawnctl_free(sched *s)
{
	GPtrArray *all = s->spawners_old;

	if (all == NULL)
		return;
	if (s->spawner != NULL)
		g_ptr_array_add(all, s->spawner);
	s->spawner = NULL;
	if (s->spawner_retry != 0)
		g_source_remove(s->spawner_retry);
	for (guint i = 0; i < all->len; i++) {
		spawnctl *sp = all->pdata[i];
		int status;

		if (sp->fd_src != 0)
			g_source_remove(sp->fd_src);
		sp->fd_src = 0;
		close(sp->fd);
		sp->fd = -1;
		if (sp->child_src != 0) {
			g_source_remove(sp->child_src);
			sp->child_src = 0;
			while (waitpid(sp->pid, &status, 0) < 0 && errno == EINTR)
				;
		}
		spawnctl_free_one(sp);
	}
	g_ptr_array_free(all, TRUE);
	s->spawners_old = NULL;
}

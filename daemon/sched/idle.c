/* mailmill - ISC licence, see LICENSE */
/*
 * The daemon's side of IMAP IDLE: one watcher process (daemon/sched/idlewatch.h)
 * holds every IDLE connection of the accounts with `idle = true`; it says
 * "new mail for account X" over a pipe and the scheduler runs X as a due
 * interval would (sched_run_now).  The watcher is started with the daemon,
 * started anew on each reload (the new configuration and its secrets; the
 * old one ends), restarted with back-off if it dies, and stopped with the
 * daemon.  Nothing here touches a mailbox: a missed report only delays
 * mail to the account's next interval.
 */
#include <config.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>
#include <glib-unix.h>
#include "daemon/sched/sched_int.h"
#include "daemon/sched/backoff.h"
#include "daemon/sched/idlewatch.h"
#include "daemon/core/log.h"

#define IDLE_RESTART_S 5        /* first restart of a watcher that died */
#define IDLE_LINE_MAX 1024      /* a longer report line is a broken watcher */

/* One watcher process; an old one may still be ending after a reload. */
typedef struct idle_proc {
	sched *s;
	pid_t pid;
	int fd;                 /* its reports (read end, non-blocking), -1 at EOF */
	int ctl;                /* our end of its control pipe: closed, it ends */
	guint fd_watch;
	GString *in;
	int retired;            /* replaced or stopped: its end is expected */
	gint64 started;         /* monotonic us */
} idle_proc;

struct idle_sup {
	idle_proc *cur;         /* NULL: none runs */
	GPtrArray *procs;       /* every idle_proc still alive (cur among them) */
	guint restart_timer;
	int failures;           /* watchers that died in a row */
};

static idle_sup *
idle_get(sched *s)
{
	if (s->idle == NULL) {
		s->idle = g_new0(idle_sup, 1);
		s->idle->procs = g_ptr_array_new();
	}
	return s->idle;
}

/* The accounts the watcher would watch: selected, IMAP, idle = true. */
static int
idle_count(const sched *s)
{
	size_t k;
	int n = 0;

	for (k = 0; k < s->c->n_accounts; k++) {
		const cfg_account *a = &s->c->accounts[k];

		if (a->protocol == CFG_PROTO_IMAP && a->idle && sched_selected(s, a->name))
			n++;
	}
	return n;
}

static void
idle_line(idle_proc *p, const char *line)
{
	/* "N account": new mail.  Anything else is ignored (a later watcher
	 * may say more than this daemon understands). */
	if (strncmp(line, "N ", 2) == 0 && line[2] != '\0')
		sched_run_now(p->s, line + 2);
}

static void
idle_close_fd(idle_proc *p)
{
	if (p->fd_watch != 0)
		g_source_remove(p->fd_watch);
	p->fd_watch = 0;
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

static gboolean
idle_on_fd(gint fd, GIOCondition cond, gpointer arg)
{
	idle_proc *p = arg;
	char buf[4096];

	(void)cond;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		char *nl;
		size_t off = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return G_SOURCE_CONTINUE;
		if (n <= 0) {
			p->fd_watch = 0;   /* removed by returning */
			close(p->fd);
			p->fd = -1;
			return G_SOURCE_REMOVE;
		}
		g_string_append_len(p->in, buf, n);
		while ((nl = memchr(p->in->str + off, '\n', p->in->len - off)) != NULL) {
			*nl = '\0';
			idle_line(p, p->in->str + off);
			off = (size_t)(nl - p->in->str) + 1;
		}
		g_string_erase(p->in, 0, (gssize)off);
		if (p->in->len > IDLE_LINE_MAX)
			g_string_truncate(p->in, 0);
	}
}

static void idle_arm_restart(sched *s);

static void
idle_on_exit(GPid pid, gint status, gpointer arg)
{
	idle_proc *p = arg;
	sched *s = p->s;
	idle_sup *sup = s->idle;

	g_spawn_close_pid(pid);
	idle_close_fd(p);
	if (p->ctl >= 0)
		close(p->ctl);
	g_ptr_array_remove(sup->procs, p);
	if (sup->cur == p) {
		sup->cur = NULL;
		if (WIFSIGNALED(status))
			log_error("IDLE watcher %ld crashed (signal %d, %s)", (long)pid,
				  WTERMSIG(status), strsignal(WTERMSIG(status)));
		else
			log_error("IDLE watcher %ld exited with status %d", (long)pid,
				  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		/* One that ran for an hour had no trouble starting. */
		if (g_get_monotonic_time() - p->started > 3600LL * G_USEC_PER_SEC)
			sup->failures = 0;
		sup->failures++;
		if (!s->stopping)
			idle_arm_restart(s);
	} else {
		log_debug("IDLE watcher %ld ended", (long)pid);
	}
	g_string_free(p->in, TRUE);
	g_free(p);
	sched_maybe_quit(s);
}

/* Fork the watcher for the current configuration: 0, or -1 (logged). */
static int
idle_spawn(sched *s)
{
	idle_sup *sup = idle_get(s);
	int rep[2], ctl[2];
	idle_proc *p;
	pid_t pid;

	if (pipe2(rep, O_CLOEXEC) < 0)
		goto fail;
	if (pipe2(ctl, O_CLOEXEC) < 0) {
		close(rep[0]);
		close(rep[1]);
		goto fail;
	}
	fflush(NULL);
	if ((pid = fork()) < 0) {
		close(rep[0]);
		close(rep[1]);
		close(ctl[0]);
		close(ctl[1]);
		goto fail;
	}
	if (pid == 0) {
		guint i;

		close(rep[0]);
		close(ctl[1]);
		/* A watcher still ending must see the daemon's end, not ours. */
		for (i = 0; i < sup->procs->len; i++) {
			idle_proc *o = sup->procs->pdata[i];

			if (o->ctl >= 0)
				close(o->ctl);
			if (o->fd >= 0)
				close(o->fd);
		}
		_exit(idlewatch_main(s->c, s->o->only, s->o->n_only, rep[1], ctl[0]));
	}
	close(rep[1]);
	close(ctl[0]);
	(void)fcntl(rep[0], F_SETFL, O_NONBLOCK);
	p = g_new0(idle_proc, 1);
	p->s = s;
	p->pid = pid;
	p->fd = rep[0];
	p->ctl = ctl[1];
	p->in = g_string_new(NULL);
	p->started = g_get_monotonic_time();
	p->fd_watch = g_unix_fd_add(p->fd, G_IO_IN | G_IO_HUP | G_IO_ERR, idle_on_fd, p);
	g_child_watch_add(pid, idle_on_exit, p);
	g_ptr_array_add(sup->procs, p);
	sup->cur = p;
	log_debug("IDLE watcher %ld started", (long)pid);
	return 0;
fail:
	log_error("cannot start the IDLE watcher: %s", strerror(errno));
	return -1;
}

/* End the current watcher (it logs out of its sessions and exits). */
static void
idle_retire(sched *s, int sig)
{
	idle_sup *sup = s->idle;

	if (sup == NULL || sup->cur == NULL)
		return;
	sup->cur->retired = 1;
	kill(sup->cur->pid, sig);
	sup->cur = NULL;
}

static gboolean
idle_on_restart(gpointer arg)
{
	sched *s = arg;

	s->idle->restart_timer = 0;
	if (!s->stopping && s->idle->cur == NULL && idle_count(s) > 0 && idle_spawn(s) < 0) {
		s->idle->failures++;
		idle_arm_restart(s);
	}
	return G_SOURCE_REMOVE;
}

static void
idle_arm_restart(sched *s)
{
	idle_sup *sup = s->idle;
	double d = backoff_failed(IDLE_RESTART_S, sup->failures, 0, s->c->max_backoff_s,
				  g_random_double());

	if (sup->restart_timer != 0)
		g_source_remove(sup->restart_timer);
	log_warn("IDLE watcher: starting it again in %.0fs; accounts are polled at their interval"
		 " meanwhile", d);
	sup->restart_timer = g_timeout_add_full(G_PRIORITY_DEFAULT, (guint)(d * 1000.0),
						idle_on_restart, s, NULL);
}

void
idle_sync(sched *s)
{
	idle_sup *sup;
	int n = idle_count(s);

	if (s->idle == NULL && n == 0)
		return;
	sup = idle_get(s);
	/* A new configuration may change the accounts, their folders and
	 * their secrets: a new watcher reads them, the old one ends. */
	idle_retire(s, SIGTERM);
	if (sup->restart_timer != 0) {
		g_source_remove(sup->restart_timer);
		sup->restart_timer = 0;
	}
	sup->failures = 0;
	if (n > 0 && !s->stopping && idle_spawn(s) < 0) {
		sup->failures++;
		idle_arm_restart(s);
	}
}

void
idle_signal(sched *s, int sig)
{
	guint i;

	if (s->idle == NULL)
		return;
	if (s->idle->restart_timer != 0) {
		g_source_remove(s->idle->restart_timer);
		s->idle->restart_timer = 0;
	}
	idle_retire(s, sig);
	for (i = 0; i < s->idle->procs->len; i++)
		kill(((idle_proc *)s->idle->procs->pdata[i])->pid, sig);
}

int
idle_alive(const sched *s)
{
	return s->idle != NULL && s->idle->procs->len > 0;
}

void
idle_free(sched *s)
{
	if (s->idle == NULL)
		return;
	if (s->idle->restart_timer != 0)
		g_source_remove(s->idle->restart_timer);
	g_ptr_array_free(s->idle->procs, TRUE);
	g_free(s->idle);
	s->idle = NULL;
}

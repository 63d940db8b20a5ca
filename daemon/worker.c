/* mailmill - ISC licence, see LICENSE */
#include <config.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <sys/resource.h>
#include <unistd.h>
#include <glib.h>
#include "daemon/worker.h"
#include "daemon/log.h"
#include "daemon/outbox.h"
#include "daemon/pipeline.h"
#include "daemon/plugin.h"
#include "daemon/store.h"

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

static void
worker_progress(void *arg, const char *uid, unsigned long long size, const char *stage,
		const char *verdict)
{
	char line[256];
	int n;

	(void)arg;
	if (verdict == NULL)
		n = snprintf(line, sizeof line, "S %s %llu\n", uid, size);
	else
		n = snprintf(line, sizeof line, "D %s %llu %s %s\n", uid, size, verdict,
			     stage != NULL ? stage : "-");
	if (n > 0 && (size_t)n < sizeof line)
		worker_send(line, (size_t)n);
}

static void
worker_report(const run_stats *s, int failed)
{
	char line[768];
	const char *e = log_last_error();
	int n;

	if (failed && e[0] != '\0') {
		char clean[512];
		size_t i;

		snprintf(clean, sizeof clean, "%s", e);
		for (i = 0; clean[i] != '\0'; i++)
			if (clean[i] == '\n' || clean[i] == '\r')
				clean[i] = ' ';
		n = snprintf(line, sizeof line, "E %s\n", clean);
		if (n > 0)
			worker_send(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
	}
	n = snprintf(line, sizeof line, "R %lu %lu %lu %lu %lu %llu %llu %d %d\n", s->fetched,
		     s->deleted, s->kept, s->deferred, s->skipped, s->bytes, s->deleted_bytes,
		     (int)s->fail, s->stopped);
	if (n > 0 && (size_t)n < sizeof line)
		worker_send(line, (size_t)n);
}

int
worker_drop_privileges(const char *user, char **err_r)
{
	struct passwd *pw;

	if (user == NULL || geteuid() != 0)
		return 0;
	errno = 0;
	pw = getpwnam(user);
	if (pw == NULL) {
		*err_r = g_strdup_printf("user \"%s\": %s", user, errno ? strerror(errno) : "no such user");
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		*err_r = g_strdup_printf("cannot become user \"%s\": %s", user, strerror(errno));
		return -1;
	}
	/* setuid from root drops the saved id too; make sure it cannot come back. */
	if (pw->pw_uid != 0 && setuid(0) == 0) {
		*err_r = g_strdup_printf("could regain root after becoming \"%s\"", user);
		return -1;
	}
	return 0;
}

static void
worker_signals(void)
{
	struct sigaction sa;
	sigset_t none;

	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = worker_on_signal;     /* no SA_RESTART: a blocked read sees EINTR */
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

static int
worker_main(const cfg *c, const cfg_account *acct, const run_opts *o)
{
	cfg_account a = *acct;          /* our copy: the password goes in it */
	run_opts ro = *o;
	pipeline *pl = NULL;
	store *st = NULL;
	run_stats stats;
	char *err = NULL, *password = NULL;
	int rc;

	memset(&stats, 0, sizeof stats);
	stats.fail = RUN_FAIL_TEMP;
	/* The password may be readable by root only: fetch it before dropping. */
	if (secret_get(&acct->secret, &password, &err) < 0) {
		log_error("%s: cannot get the password: %s", a.name, err != NULL ? err : "error");
		goto fail;
	}
	memset(&a.secret, 0, sizeof a.secret);
	a.secret.kind = SECRET_INLINE;
	a.secret.value = password;
	if (worker_drop_privileges(c->user, &err) < 0) {
		log_error("%s: %s", a.name, err);
		goto fail;
	}
	if (c->worker_memory > 0) {
		struct rlimit rl = { (rlim_t)c->worker_memory, (rlim_t)c->worker_memory };

		if (setrlimit(RLIMIT_AS, &rl) < 0)
			log_warn("%s: cannot limit memory to %llu bytes: %s", a.name,
				 c->worker_memory, strerror(errno));
	}
	if (store_open(c->state_dir, o->dry_run, &st, &err) < 0) {
		log_error("%s: cannot open the store in %s: %s", a.name, c->state_dir, err);
		goto fail;
	}
	if (pipeline_build(c, &a, o->dry_run, &pl, &err) < 0) {
		log_error("%s: %s", a.name, err != NULL ? err : "cannot build the pipeline");
		free(err);
		secret_wipe(&password);
		store_close(&st);
		worker_report(&stats, 1);
		return EX_CONFIG;
	}
	ro.stop = &worker_stop;
	ro.progress = worker_progress;
	ro.progress_arg = NULL;
	rc = run_account(c, &a, pl, st, &ro, &stats);
	secret_wipe(&password);
	worker_report(&stats, rc < 0);
	pipeline_free(&pl);
	store_close(&st);
	if (rc == 0)
		return EX_OK;
	return stats.fail == RUN_FAIL_AUTH ? WORKER_EXIT_AUTH : EX_TEMPFAIL;
fail:
	free(err);
	secret_wipe(&password);
	store_close(&st);
	worker_report(&stats, 1);
	return EX_TEMPFAIL;
}

int
worker_spawn(const cfg *c, const cfg_account *a, const run_opts *o, pid_t *pid_r, int *fd_r,
	     char **err_r)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0) {
		*err_r = g_strdup_printf("cannot make a pipe: %s", strerror(errno));
		return -1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		*err_r = g_strdup_printf("cannot fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		worker_fd = p[1];
		worker_signals();
		/* The daemon's plugins stay the daemon's: ours are loaded fresh. */
		_exit(worker_main(c, a, o));
	}
	close(p[1]);
	if (fcntl(p[0], F_SETFL, O_NONBLOCK) < 0) {
		*err_r = g_strdup_printf("cannot set up the pipe: %s", strerror(errno));
		close(p[0]);
		return -1;   /* the worker runs on; its child watch is the caller's */
	}
	*pid_r = pid;
	*fd_r = p[0];
	return 0;
}

static int
worker_outbox_main(const cfg *c, int trace)
{
	store *st = NULL;
	outbox_stats os;
	char *err = NULL;
	int rc;

	if (worker_drop_privileges(c->user, &err) < 0 ||
	    store_open(c->state_dir, 0, &st, &err) < 0) {
		log_error("outbox: %s", err);
		free(err);
		return EX_TEMPFAIL;
	}
	memset(&os, 0, sizeof os);
	rc = outbox_flush(c, st, 0, trace, &os);
	store_close(&st);
	return rc < 0 ? EX_TEMPFAIL : EX_OK;
}

int
worker_spawn_outbox(const cfg *c, int trace, pid_t *pid_r, char **err_r)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		*err_r = g_strdup_printf("cannot fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		/* A stop waits for the flush: a message killed past its final dot
		 * would be sent twice. */
		worker_signals();
		_exit(worker_outbox_main(c, trace));
	}
	*pid_r = pid;
	return 0;
}

static int
worker_word(const char **p, char *out, size_t max)
{
	size_t n = strcspn(*p, " ");

	if (n == 0 || n >= max)
		return -1;
	memcpy(out, *p, n);
	out[n] = '\0';
	*p += n;
	if (**p == ' ')
		(*p)++;
	return 0;
}

static int
worker_number(const char **p, unsigned long long *out)
{
	char w[24], *end;

	if (worker_word(p, w, sizeof w) < 0 || w[0] < '0' || w[0] > '9')
		return -1;
	errno = 0;
	*out = strtoull(w, &end, 10);
	return errno != 0 || *end != '\0' ? -1 : 0;
}

int
worker_parse(const char *line, worker_event *ev)
{
	const char *p = line + 2;
	unsigned long long v[9];
	int i;

	memset(ev, 0, sizeof *ev);
	if (line[0] == '\0' || line[1] != ' ')
		return -1;
	switch (line[0]) {
	case 'S':
		ev->kind = WORKER_EV_START;
		return worker_word(&p, ev->uid, sizeof ev->uid) < 0 ||
		       worker_number(&p, &ev->size) < 0 || *p != '\0' ? -1 : 0;
	case 'D':
		ev->kind = WORKER_EV_DONE;
		if (worker_word(&p, ev->uid, sizeof ev->uid) < 0 ||
		    worker_number(&p, &ev->size) < 0 ||
		    worker_word(&p, ev->verdict, sizeof ev->verdict) < 0 ||
		    worker_word(&p, ev->stage, sizeof ev->stage) < 0 || *p != '\0')
			return -1;
		if (strcmp(ev->stage, "-") == 0)
			ev->stage[0] = '\0';
		return 0;
	case 'E':
		ev->kind = WORKER_EV_ERROR;
		snprintf(ev->error, sizeof ev->error, "%s", p);
		return 0;
	case 'R':
		ev->kind = WORKER_EV_RESULT;
		for (i = 0; i < 9; i++)
			if (worker_number(&p, &v[i]) < 0)
				return -1;
		if (*p != '\0' || v[7] > RUN_FAIL_AUTH || v[8] > 1)
			return -1;
		ev->stats.fetched = (unsigned long)v[0];
		ev->stats.deleted = (unsigned long)v[1];
		ev->stats.kept = (unsigned long)v[2];
		ev->stats.deferred = (unsigned long)v[3];
		ev->stats.skipped = (unsigned long)v[4];
		ev->stats.bytes = v[5];
		ev->stats.deleted_bytes = v[6];
		ev->stats.fail = (run_fail)v[7];
		ev->stats.stopped = (int)v[8];
		return 0;
	default:
		return -1;
	}
}

/* mailmill - ISC licence, see LICENSE */
/*
 * See daemon/sched/claim.h.  The renewal is the parent's (the daemon's main
 * loop or --once's wait), not the worker's: a worker blocks in its server's
 * I/O and plugins, where no timer can run, while its parent wakes five times
 * a second anyway; the worker renews only before it changes its server
 * (run.h).  The local deadline (until) is counted from before the claim
 * was sent, so it never outlives the lease in the database.
 */
#include <config.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "daemon/sched/claim.h"
#include "daemon/core/log.h"

/* A renewal that failed is tried again this soon, until the lease ends. */
#define CLAIM_RETRY_US (G_USEC_PER_SEC)

static void
claim_host(char *host, size_t len)
{
	if (gethostname(host, len) < 0 || host[0] == '\0')
		snprintf(host, len, "localhost");
	host[len - 1] = '\0';
}

void
claim_owner(char *buf, size_t len)
{
	char host[256];

	claim_host(host, sizeof host);
	/* The boot id tells a daemon from an earlier one with the same pid
	 * (a container restarted, pid 1 again). */
	snprintf(buf, len, "%s:%ld:%08x", host, (long)getpid(), (unsigned)g_random_int());
}

void
claim_owner_once(char *buf, size_t len, const char *state_dir)
{
	char host[256];

	claim_host(host, sizeof host);
	snprintf(buf, len, "%s:once:%08x", host, (unsigned)g_str_hash(state_dir));
}

static void
claim_arm(claim *cl, gint64 t0)
{
	cl->until = t0 + cl->ttl_s * G_USEC_PER_SEC;
	cl->renew_at = t0 + cl->ttl_s * G_USEC_PER_SEC / 3;
}

int
claim_take(claim *cl, store *st, const char *owner, const char *name, long long ttl_s)
{
	gint64 t0 = g_get_monotonic_time();
	char *err = NULL;
	long long fence = 0;
	int r;

	if (cl->held && cl->name != NULL && strcmp(cl->name, name) != 0)
		claim_release(cl, st);
	r = store_lease_claim(st, name, owner, ttl_s, &fence, &err);
	if (r < 0) {
		log_warn("%s: cannot claim its lease: %s", name, err != NULL ? err : "error");
		free(err);
		cl->held = 0;
		cl->empty_at = 0;
		return -1;
	}
	if (r == 0) {
		log_debug("%s: another daemon holds it: left to that one", name);
		cl->held = 0;
		cl->empty_at = 0;
		return 0;
	}
	/* Every claim adds one to the fence (PostgreSQL; SQLite's is always 1,
	 * one daemon per store): one more than our last run's means nobody
	 * ran the account in between. */
	cl->journal_empty = cl->empty_at > 0 && (fence == cl->empty_at || fence == cl->empty_at + 1);
	cl->empty_at = 0;
	cl->name = name;
	cl->owner = owner;
	cl->fence = fence;
	cl->ttl_s = ttl_s;
	cl->held = 1;
	cl->lost_said = 0;
	claim_arm(cl, t0);
	return 1;
}

int
claim_tick(claim *cl, store *st, gint64 now)
{
	char *err = NULL;

	if (!cl->held)
		return -1;
	if (now < cl->renew_at)
		return 0;
	if (store_lease_renew(st, cl->name, cl->owner, cl->fence, cl->ttl_s, &err) == 0) {
		claim_arm(cl, now);
		cl->lost_said = 0;
		return 0;
	}
	if (!cl->lost_said)
		log_warn("%s: cannot renew its lease: %s", cl->name, err != NULL ? err : "error");
	cl->lost_said = 1;
	free(err);
	cl->renew_at = now + CLAIM_RETRY_US;
	if (now < cl->until)
		return 0;
	log_error("%s: the lease ran out (fence %lld): its commits are refused from now on",
		  cl->name, cl->fence);
	cl->held = 0;
	return -1;
}

void
claim_hold(claim *cl, store *st, double hold_s)
{
	gint64 t0 = g_get_monotonic_time();
	long long ttl = (long long)(hold_s < 0 ? 0 : hold_s + 0.5) + cl->ttl_s;
	char *err = NULL;

	if (!cl->held)
		return;
	if (store_lease_renew(st, cl->name, cl->owner, cl->fence, ttl, &err) < 0) {
		log_debug("%s: cannot keep its lease until the next run: %s", cl->name,
			  err != NULL ? err : "error");
		free(err);
		cl->held = 0;
		return;
	}
	cl->until = t0 + ttl * G_USEC_PER_SEC;
	cl->renew_at = G_MAXINT64;
}

void
claim_release(claim *cl, store *st)
{
	char *err = NULL;

	if (!cl->held)
		return;
	cl->held = 0;
	if (store_lease_release(st, cl->name, cl->owner, cl->fence, &err) < 0) {
		/* It expires by itself. */
		log_debug("%s: cannot release its lease: %s", cl->name, err != NULL ? err : "error");
		free(err);
	}
}

void
claim_lease(const claim *cl, struct run_lease *rl)
{
	rl->owner = cl->owner;
	rl->fence = cl->fence;
	rl->ttl_s = cl->ttl_s;
	rl->journal_empty = cl->journal_empty;
}

void
claim_note_empty(claim *cl)
{
	if (cl->held)
		cl->empty_at = cl->fence;
}

/* mailmill - ISC licence, see LICENSE */
#include <config.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <glib.h>
#include "daemon/sched/status.h"
#include "daemon/core/statelock.h"
#include "daemon/store/store.h"
#include "daemon/run/outbox.h"
#include "daemon/oauth/oauth.h"

typedef struct status_ctx {
	FILE *out;
	long long now;
	int bad;
	unsigned quarantined;
	unsigned long outbox[3];
	GHashTable *leases;   /* account -> "owner until ..." (a shared store) */
} status_ctx;

static void
status_time(char *buf, size_t len, long long t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, len, "@%lld", t);
}

/* Which daemon holds which account (store_lease_list: only the live ones;
 * none on SQLite, where one daemon has them all). */
static void
status_lease(void *arg, const char *account, const char *owner, long long fence,
	     long long expires)
{
	status_ctx *sc = arg;
	char when[32];

	status_time(when, sizeof when, expires);
	g_hash_table_replace(sc->leases, g_strdup(account),
			     g_strdup_printf("%s until %s (fence %lld)", owner, when, fence));
}

static void
status_lease_line(status_ctx *sc, const char *name)
{
	const char *l = g_hash_table_lookup(sc->leases, name);

	if (l != NULL)
		fprintf(sc->out, "  lease:       %s\n", l);
}

static void
status_run(void *arg, const store_run_row *r)
{
	status_ctx *sc = arg;
	char when[32], effects[64] = "";

	if (r->result == NULL) {
		fprintf(sc->out, "  last run:    never\n");
	} else {
		status_time(when, sizeof when, r->finished);
		/* IMAP's other effects, when there were any (POP3's line stays). */
		if (r->moved > 0 || r->flagged > 0)
			snprintf(effects, sizeof effects, " %lu moved, %lu flagged,", r->moved,
				 r->flagged);
		fprintf(sc->out, "  last run:    %s (%llds): %s: %lu fetched (%llu bytes), %lu deleted,"
			"%s %lu kept, %lu deferred, %lu skipped\n", when, r->finished - r->started,
			r->result, r->fetched, r->bytes, r->deleted, effects, r->kept, r->deferred,
			r->skipped);
		if (r->error != NULL)
			fprintf(sc->out, "  error:       %s\n", r->error);
		if (strcmp(r->result, "ok") != 0)
			sc->bad = 1;
	}
	if (r->failures > 0)
		fprintf(sc->out, "  failures:    %d in a row\n", r->failures);
	if (r->next_run == 0) {
		fprintf(sc->out, "  next run:    running now\n");
	} else if (r->next_run > 0) {
		status_time(when, sizeof when, r->next_run);
		fprintf(sc->out, "  next run:    %s (%s)\n", when,
			r->next_run >= sc->now ? "scheduled" : "overdue: is the daemon running?");
	} else {
		fprintf(sc->out, "  next run:    not scheduled (no daemon has run it)\n");
	}
}

static void
status_quarantine(void *arg, const store_quarantine_row *q)
{
	status_ctx *sc = arg;
	char when[32];

	status_time(when, sizeof when, q->updated);
	if (sc->quarantined++ == 0)
		fprintf(sc->out, "  quarantined (left on the server, skipped):\n");
	fprintf(sc->out, "    uid %s <%s>: %d attempts, since %s: %s\n", q->uid,
		q->message_id != NULL ? q->message_id : "", q->attempts, when,
		q->last_error != NULL ? q->last_error : "-");
	sc->bad = 1;
}

/* An OAuth sign-in that needs a person: said loudly, with what to run. */
static int
status_signin(status_ctx *sc, const cfg *c, store *st, const char *what, const oauth_cfg *o,
	      const char *user, char **err_r)
{
	char *reason = NULL;
	int needs;

	if (o == NULL)
		return 0;
	if (o->command) {
		fprintf(sc->out, "  sign-in:     OAuth, token from token_command\n");
		return 0;
	}
	needs = oauth_needs_signin(st, o, user, &reason, err_r);
	if (needs < 0)
		return -1;
	if (needs) {
		fprintf(sc->out, "  sign-in:     needs sign-in (%s): run mailmilld -c %s --sign-in %s\n",
			reason != NULL ? reason : "-", c->path, what);
		sc->bad = 1;
	} else {
		fprintf(sc->out, "  sign-in:     OAuth (%s, %s)\n", oauth_provider_name(o->provider),
			o->grant == OAUTH_GRANT_CLIENT ? "client credentials" : "signed in");
	}
	free(reason);
	return 0;
}

static int
status_outbox(void *arg, const store_outbox_row *row)
{
	status_ctx *sc = arg;

	if ((unsigned)row->state < 3)
		sc->outbox[row->state]++;
	return 0;
}

int
status_print(const cfg *c, FILE *out)
{
	status_ctx sc = { .out = out, .now = (long long)time(NULL) };
	long holder = statelock_holder(c->state_dir);
	store *st = NULL;
	char *err = NULL;
	long long unknown = 0;
	size_t k;

	if (holder > 0)
		fprintf(out, "daemon: running, pid %ld (state_dir %s)\n", holder, c->state_dir);
	else if (holder == 0)
		fprintf(out, "daemon: not running (state_dir %s)\n", c->state_dir);
	else
		fprintf(out, "daemon: unknown (cannot read the lock in %s)\n", c->state_dir);
	if (store_open_cfg(c, 1, &st, &err) < 0) {
		fprintf(stderr, "mailmilld: cannot read the store: %s\n", err);
		free(err);
		return EX_UNAVAILABLE;
	}
	sc.leases = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	if (store_lease_list(st, status_lease, &sc, &err) < 0)
		goto fail;
	for (k = 0; k < c->n_accounts; k++) {
		const cfg_account *a = &c->accounts[k];

		sc.quarantined = 0;
		fprintf(out, "\naccount %s (%s@%s:%s, ", a->name, a->user, a->host, a->port);
		if (!a->at_only)
			fprintf(out, "every %llds%s", a->interval_s, a->n_at > 0 ? " and " : "");
		for (size_t i = 0; i < a->n_at; i++)   /* `at` times */
			fprintf(out, "%s%02d:%02d", i > 0 ? ", " : "at ", a->at[i] / 60, a->at[i] % 60);
		fprintf(out, ")\n");
		status_lease_line(&sc, a->name);
		if (status_signin(&sc, c, st, a->name, a->oauth, a->user, &err) < 0 ||
		    store_run_last(st, a->name, status_run, &sc, &err) < 0 ||
		    store_quarantine_list(st, a->name, status_quarantine, &sc, &err) < 0)
			goto fail;
		if (sc.quarantined == 0)
			fprintf(out, "  quarantined: none\n");
	}
	if (c->smtp != NULL && c->smtp->oauth != NULL) {
		fprintf(out, "\nsmtp relay %s:%s\n", c->smtp->host, c->smtp->port);
		if (status_signin(&sc, c, st, "smtp", c->smtp->oauth, c->smtp->user, &err) < 0)
			goto fail;
	}
	if (store_outbox_list(st, 7u, status_outbox, &sc, &err) < 0 ||
	    store_counter_get(st, STORE_COUNTER_UNKNOWN, &unknown, &err) < 0)
		goto fail;
	fprintf(out, "\noutbox: %lu queued, %lu sent, %lu dead%s\n", sc.outbox[OUTBOX_QUEUED],
		sc.outbox[OUTBOX_SENT], sc.outbox[OUTBOX_DEAD],
		sc.outbox[OUTBOX_QUEUED] + sc.outbox[OUTBOX_DEAD] > 0 ? " (details: mailmilld --outbox)" : "");
	if (unknown > 0)
		fprintf(out, "  outcome unknown after end of data: %lld time(s) so far (RFC 1047:"
			" the relay may have delivered those messages twice)\n", unknown);
	status_lease_line(&sc, OUTBOX_LEASE);
	g_hash_table_destroy(sc.leases);
	store_close(&st);
	return sc.bad ? EX_TEMPFAIL : EX_OK;
fail:
	fprintf(stderr, "mailmilld: cannot read the store: %s\n", err);
	free(err);
	g_hash_table_destroy(sc.leases);
	store_close(&st);
	return EX_UNAVAILABLE;
}

/* mailmill - ISC licence, see LICENSE */
/*
 * The account run (run.h): for each mailbox of the source, the listing, the
 * plan, the pipelined fetch with the effects of committed batches riding in
 * the same pipeline, and the mailbox's end.  run_plan.c plans; run_commit.c
 * turns verdicts into journal rows; source_pop3.c and source_imap.c speak
 * to the server (source.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <glib.h>
#include "daemon/run/run.h"
#include "daemon/run/run_int.h"
#include "daemon/run/source.h"
#include "daemon/run/api.h"
#include "daemon/core/crash.h"
#include "daemon/core/log.h"

#define RUN_HARD_MAX_SIZE (1024ULL * 1024 * 1024)

/* Installed on every session: the "quit" crash point must fire whether or
 * not the operator asked for a protocol trace. */
void
run_trace(void *arg, char dir, const char *line, size_t len)
{
	const struct run *r = arg;

	if (dir == 'C' && len >= 4 && strncmp(line, "QUIT", 4) == 0)
		crash_point("quit");
	if (r->o->trace)
		log_debug("%s: %s %.*s", r->a->name, dir == 'C' ? "C:" : "S:",
			  (int)(len > 300 ? 300 : len), line);
}

int
run_lease_renew(run *r)
{
	const struct run_lease *l = r->o->lease;
	char *err = NULL;

	if (l == NULL || r->o->dry_run)
		return 0;
	if (store_lease_renew(r->st, r->a->name, l->owner, l->fence, l->ttl_s, &err) == 0)
		return 0;
	log_error("%s: the lease on the account is lost (%s): nothing more is changed on the"
		  " server; the run fails", r->a->name, err != NULL ? err : "error");
	free(err);
	return -1;
}

/* A pipelined command whose reply has not been read: the fetch of
 * entries[ei], or the effect of dele[ei..ei+n). */
typedef struct run_cmd {
	size_t ei, n;
	int effect;
} run_cmd;

/* Send the effect of the next dele entries: 0, -1 on a lost lease (logged,
 * *err_r NULL) or a failed send (*err_r). */
static int
run_send_effect(run *r, run_cmd *c, char **err_r)
{
	long k;

	if (r->dele_renewed < r->dele->len) {
		if (run_lease_renew(r) < 0)
			return -1;
		r->dele_renewed = r->dele->len;
	}
	k = r->src->send_effect(r, r->dele_sent, r->dele->len - r->dele_sent, err_r);
	if (k <= 0)
		return -1;
	c->ei = r->dele_sent;
	c->n = (size_t)k;
	c->effect = 1;
	r->dele_sent += (size_t)k;
	return 0;
}

/* What a fetch of entries[ei] counts against window_bytes: its listed size,
 * or 1 MiB when the listing gave none. */
static unsigned long long
run_fetch_size(const run *r, size_t ei)
{
	return r->src->window_bytes == 0 ? 0 :
	       r->entries[ei].size_ok ? r->entries[ei].size : 1024 * 1024;
}

/* Whether the next fetch may go out now: always when nothing is in flight. */
static int
run_fetch_fits(const run *r, const GArray *fetch, size_t next, size_t out,
	       unsigned long long in_flight)
{
	unsigned long long w = r->src->window_bytes;

	return w == 0 || out == 0 ||
	       in_flight + run_fetch_size(r, g_array_index(fetch, size_t, next)) <= w;
}

/*
 * Fetch every message of fetch, pipelined; the effects of what earlier
 * commits decided ride in the same pipeline (not in a dry run), so that
 * the server deletes (moves, flags) while it sends and the run does not end
 * with a round of them.
 */
static int
run_fetch(run *r, GArray *fetch, int window, GPtrArray *done)
{
	const run_source_ops *src = r->src;
	unsigned long long cap = r->a->max_size != 0 ? r->a->max_size : RUN_HARD_MAX_SIZE;
	buf body = { .max = cap > RUN_HARD_MAX_SIZE ? RUN_HARD_MAX_SIZE : cap };
	run_cmd ring[RUN_WINDOW];
	size_t head = 0, out = 0, sent = 0, got = 0;
	unsigned long long in_flight = 0;   /* listed bytes of the fetches in flight */
	int effects_too = !r->o->dry_run &&
			  (src->effects_after_fetch == NULL || !src->effects_after_fetch(r));
	int last_effect = 0, rc = 0;
	char *err = NULL;

	if (window > RUN_WINDOW)
		window = RUN_WINDOW;
	for (;;) {
		run_cmd c;
		run_got g;

		/* Refill the window only when half of it has drained, so that the
		 * commands go out in few writes rather than one write per message. */
		if (out <= (size_t)window / 2) {
			size_t before = out;

			while (out < (size_t)window) {
				run_cmd *n = &ring[(head + out) % RUN_WINDOW];
				int fetch_left = sent < fetch->len && !run_stopping(r) &&
						 run_fetch_fits(r, fetch, sent, out, in_flight);

				/* Fetches and effects alternate while both wait: a batch's
				 * 4096 DELEs in a row would stall the fetch as long as a
				 * round of DELEs at the end did. */
				if (effects_too && r->dele_sent < r->dele->len &&
				    (!fetch_left || !last_effect)) {
					if (run_send_effect(r, n, &err) < 0)
						goto io_fail;
				} else if (fetch_left) {
					n->ei = g_array_index(fetch, size_t, sent);
					n->n = 1;
					n->effect = 0;
					if (src->send_fetch(r, n->ei, &err) < 0)
						goto io_fail;
					in_flight += run_fetch_size(r, n->ei);
					sent++;
				} else {
					break;
				}
				last_effect = n->effect;
				out++;
			}
			if (out > before && src->flush(r, &err) < 0)
				goto io_fail;
		}
		if (out == 0)
			break;
		c = ring[head];
		head = (head + 1) % RUN_WINDOW;
		out--;
		if (c.effect) {
			if (src->recv_effect(r, c.ei, c.n, done, &err) < 0)
				goto io_fail;
			continue;
		}
		buf_reset(&body);
		in_flight -= run_fetch_size(r, c.ei);
		g = src->recv_fetch(r, c.ei, &body, &err);
		got++;
		if (g == RUN_GOT_NEG) {
			log_warn("%s: %s %lu refused (%s): left for the next run", r->a->name,
				 r->src->fetch_cmd, r->entries[c.ei].msgno,
				 err != NULL ? err : "refused");
			free(err);
			err = NULL;
			r->stats->deferred++;
			run_fetch_failed(r, c.ei, r->src->fetch_refused);
			continue;
		}
		if (g == RUN_GOT_GONE) {
			log_info("%s: message %lu was removed from the server while being fetched"
				 " (by another client): nothing to do", r->a->name,
				 r->entries[c.ei].msgno);
			free(err);
			err = NULL;
			continue;
		}
		if (g == RUN_GOT_TOOBIG) {
			/* Read to its end and dropped: the run goes on with the next. */
			log_error("%s: message %lu is larger than %llu bytes (the server said %llu): not"
				  " processed, left on the server", r->a->name, r->entries[c.ei].msgno,
				  (unsigned long long)body.max, r->entries[c.ei].size);
			free(err);
			err = NULL;
			r->stats->failed++;
			run_fetch_failed(r, c.ei, "larger than max_size while fetching");
			continue;
		}
		if (g != RUN_GOT_OK) {
			/* The session is gone; a server that fails on this message every
			 * time must not stop the mailbox for ever. */
			run_fetch_failed(r, c.ei, "fetching it failed");
			goto io_fail;
		}
		if (run_stopping(r)) {
			/* Already on its way when the stop came: read, not processed. */
			r->stats->deferred++;
			continue;
		}
		if (run_message(r, c.ei, &body) < 0) {
			/* A batch could not be committed: stop before doing more work that
			 * would be thrown away too. */
			rc = -1;
			break;
		}
	}
	buf_free(&body);
	if (run_stopping(r)) {
		r->stats->stopped = 1;
		if (got < fetch->len)
			log_info("%s: stopping: %zu message(s) left on the server for the next run",
				 r->a->name, fetch->len - got);
	}
	return rc;
io_fail:
	if (err != NULL || r->o->lease == NULL)
		log_error("%s: fetching failed: %s", r->a->name,
			  err != NULL ? err : "connection error");
	free(err);
	buf_free(&body);
	return -1;
}

/* The effects run_fetch has not sent yet: the last batch's messages. */
static int
run_effects(run *r, int window, GPtrArray *done)
{
	run_cmd ring[RUN_WINDOW];
	size_t head = 0, out = 0;
	char *err = NULL;

	if (window > RUN_WINDOW)
		window = RUN_WINDOW;
	while (r->dele_sent < r->dele->len || out > 0) {
		if (out <= (size_t)window / 2 && r->dele_sent < r->dele->len) {
			while (r->dele_sent < r->dele->len && out < (size_t)window) {
				if (run_send_effect(r, &ring[(head + out) % RUN_WINDOW], &err) < 0)
					goto fail;
				out++;
			}
			if (r->src->flush(r, &err) < 0)
				goto fail;
		}
		if (r->src->recv_effect(r, ring[head].ei, ring[head].n, done, &err) < 0)
			goto fail;
		head = (head + 1) % RUN_WINDOW;
		out--;
	}
	return 0;
fail:
	if (err != NULL || r->o->lease == NULL)
		log_error("%s: %s failed: %s (%s)", r->a->name, r->src->verbing,
			  err != NULL ? err : "connection error", r->src->redo_deleted ?
			  "nothing is deleted until QUIT: the next run retries" :
			  "the next run does what is left");
	free(err);
	return -1;
}

/* One mailbox: list, plan, fetch and process, commit, effects, its end. */
static int
run_mailbox(run *r, size_t mb, GArray *fetch, GPtrArray *done)
{
	int rc, window;
	unsigned pending;

	g_array_set_size(fetch, 0);
	g_array_set_size(r->dele, 0);
	g_ptr_array_set_size(done, 0);
	r->dele_sent = r->dele_renewed = 0;
	r->listing_partial = 0;
	r->key_prefix = NULL;
	if (r->src->list(r, mb) < 0)
		return -1;
	/* Only a listing with messages needs the journal, with one exception:
	 * POP3 forgets, at an empty listing, the rows of messages the server
	 * deleted, lest a server that reuses such a UIDL see a new message
	 * deleted unprocessed (redo_deleted), unless the daemon knows there are
	 * none.  IMAP's keys carry the UIDVALIDITY, and a UID never comes back:
	 * its rows can wait for the next run with mail. */
	if ((r->n_entries > 0 || (r->src->redo_deleted && !r->listing_partial &&
				  (r->o->lease == NULL || !r->o->lease->journal_empty))) &&
	    run_journal_open(r) < 0)
		return -1;
	r->stats->listed += r->n_entries;
	window = r->src->window(r);
	log_debug("%s: %zu message(s) listed; %s", r->a->name, r->n_entries,
		  window > 1 ? "pipelining" : "no pipelining");
	run_plan(r, fetch);
	rc = run_fetch(r, fetch, window, done);
	/* Whatever happened, what was processed is made durable and journalled,
	 * so that it is never processed twice. */
	if (run_commit_batch(r) < 0)
		rc = -1;
	/* POP3's confirmed DELEs count only once QUIT succeeds. */
	pending = r->dele->len - (r->src->redo_deleted ? 0 : done->len);
	if (rc < 0 && pending > 0) {
		/* The connection may be gone; the journal has these for the next
		 * run (POP3: without QUIT the server deletes nothing). */
		log_info("%s: %u processed message(s) will be %s on the next run", r->a->name,
			 pending, r->src->verbed);
		return -1;
	}
	if (rc < 0)
		return -1;
	if (r->o->dry_run) {
		if (r->dele->len > 0)
			log_info("%s: dry run: would %s %u message(s); nothing written, nothing"
				 " changed on the server", r->a->name, r->src->verb, r->dele->len);
	} else if (r->dele_sent < r->dele->len && run_effects(r, window, done) < 0) {
		return -1;
	}
	return r->src->finish(r, mb, done);
}

/* r->st, opened through run_opts.open_store if the caller gave none. */
static int
run_store_open(run *r)
{
	char *err = NULL;

	if (r->st != NULL)
		return 0;
	if (r->o->open_store == NULL) {
		log_error("%s: the run has no store", r->a->name);
		return -1;
	}
	if (r->o->open_store(r->o->open_store_arg, &r->st, &err) < 0) {
		log_error("%s: cannot open the store: %s", r->a->name,
			  err != NULL ? err : "error");
		free(err);
		r->st = NULL;
		return -1;
	}
	return 0;
}

store *
run_token_store(run *r)
{
	if (r->o->tokens != NULL)
		return r->o->tokens;
	if (r->a->oauth != NULL && run_store_open(r) < 0)
		return NULL;
	return r->st;
}

int
run_journal_open(run *r)
{
	const cfg_account *a = r->a;
	const run_opts *o = r->o;
	char *err = NULL;

	if (r->journal_open)
		return 0;
	if (run_store_open(r) < 0)
		return -1;
	/* Fenced before anything is read or written: every commit of the run,
	 * and so every effect on the server, checks the lease. */
	if (o->lease != NULL && !o->dry_run &&
	    store_fence_set(r->st, a->name, o->lease->owner, o->lease->fence, &err) < 0) {
		log_error("%s: cannot fence the store with the run's lease: %s", a->name, err);
		free(err);
		return -1;
	}
	/* delete_after: done mail first seen long enough ago is journalled for
	 * deletion now; the plan deletes it like any such row. */
	if (a->delete_after_s > 0 && !a->keep) {
		size_t aged = 0;

		if (store_aging_promote(r->st, a->name, (long long)time(NULL) - a->delete_after_s,
					!o->dry_run, &aged, &err) < 0) {
			log_error("%s: cannot age the journal: %s", a->name, err);
			free(err);
			return -1;
		}
		if (aged > 0)
			log_info("%s: %zu message(s) older than delete_after %s deleted", a->name,
				 aged, o->dry_run ? "would be" : "will be");
	}
	if (store_ledger_load(r->st, a->name, run_ledger_row, r->ledger, &err) < 0) {
		log_error("%s: cannot read the journal: %s", a->name, err);
		free(err);
		return -1;
	}
	if (g_hash_table_size(r->ledger) == 0)
		r->digests = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	r->api = api_batch_new(r->st);
	r->journal_open = 1;
	return 0;
}

int
run_account(const cfg_account *a, pipeline *pl, store *st, const run_opts *o,
	    run_dial *dial, run_stats *stats)
{
	run *r = g_new0(run, 1);
	GArray *fetch = g_array_new(FALSE, FALSE, sizeof(size_t));
	GPtrArray *done = g_ptr_array_new();
	char *err = NULL, effects[64] = "";
	const char *how = NULL;
	int rc = -1;
	long long t0 = g_get_monotonic_time();

	memset(stats, 0, sizeof *stats);
	r->a = a;
	r->pl = pl;
	r->st = st;
	r->o = o;
	r->stats = stats;
	r->src = a->protocol == CFG_PROTO_IMAP ? &run_source_imap : &run_source_pop3;
	r->ledger = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	r->dele = g_array_new(FALSE, FALSE, sizeof(size_t));

	if (r->src->open(r, dial, &how) < 0)
		goto out;
	log_debug("%s: signed in (%s as %s)", a->name, how != NULL ? how : "-", a->user);
	rc = 0;
	for (size_t mb = 0; mb < r->src->n_mailboxes(r) && rc == 0; mb++) {
		rc = run_mailbox(r, mb, fetch, done);
		if (run_stopping(r))
			break;
	}
	/* Back to a flush per commit for what follows (another account's run,
	 * the outbox); failing that, the run fails rather than go on weaker. */
	if (!o->dry_run && r->journal_open && store_durability(r->st, 1, &err) < 0) {
		log_error("%s: %s", a->name, err);
		free(err);
		rc = -1;
	}
out:
	if (rc < 0 && stats->fail == RUN_FAIL_NONE)
		stats->fail = RUN_FAIL_TEMP;
	/* IMAP says what its effect did; POP3 only deletes (its line stays). */
	if (a->protocol == CFG_PROTO_IMAP)
		snprintf(effects, sizeof effects, ", %lu moved, %lu flagged", stats->moved,
			 stats->flagged);
	/* A cron line every few minutes saying "nothing new" is noise; so is
	 * this one after a failure to connect or list, already logged. */
	log_msg((rc == 0 && stats->fetched == 0 && stats->deleted == 0 && stats->moved == 0 &&
		 stats->flagged == 0 && stats->skipped == 0 && r->limited == 0) ||
		(rc < 0 && stats->listed == 0) ? LOG_LVL_DEBUG : LOG_LVL_INFO,
		"%s: run %s in %.2fs: %lu listed, %lu fetched (%llu bytes), %lu deleted%s, %lu kept,"
		 " %lu deferred, %lu skipped", a->name, rc == 0 ? "finished" : "FAILED",
		 (double)(g_get_monotonic_time() - t0) / 1e6, stats->listed, stats->fetched,
		 stats->bytes, stats->deleted, effects, stats->kept, stats->deferred, stats->skipped);
	api_batch_free(&r->api);
	if (r->sd != NULL)
		r->src->close(r);
	run_digest_free(r);
	g_hash_table_destroy(r->ledger);
	if (r->digests != NULL)
		g_hash_table_destroy(r->digests);
	g_array_free(r->dele, TRUE);
	g_array_free(fetch, TRUE);
	g_ptr_array_free(done, TRUE);
	g_free(r);
	return rc;
}

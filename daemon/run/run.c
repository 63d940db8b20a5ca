/* mailmill - ISC licence, see LICENSE */
/*
 * The account run (run.h): the session, the pipelined fetch, DELE and QUIT.
 * run_plan.c lists and plans; run_commit.c turns verdicts into journal rows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <glib.h>
#include "proto/pop3.h"
#include "daemon/run/run.h"
#include "daemon/run/run_int.h"
#include "daemon/run/api.h"
#include "daemon/core/crash.h"
#include "daemon/core/log.h"
#include "daemon/run/run_login.h"

/* Pipelined commands in flight.  Deep enough that the server, whose one
 * process is the bottleneck on loopback, keeps sending while a batch
 * commits (about 25 ms, 500 small messages): 64 left it idle for 130 ms
 * of a 10,000-message run. */
#define RUN_WINDOW 1024
#define RUN_HARD_MAX_SIZE (1024ULL * 1024 * 1024)

/* Installed on every session: the "quit" crash point must fire whether or
 * not the operator asked for a protocol trace. */
static void
run_trace(void *arg, char dir, const char *line, size_t len)
{
	const struct run *r = arg;

	if (dir == 'C' && len >= 4 && strncmp(line, "QUIT", 4) == 0)
		crash_point("quit");
	if (r->o->trace)
		log_debug("%s: %s %.*s", r->a->name, dir == 'C' ? "C:" : "S:",
			  (int)(len > 300 ? 300 : len), line);
}

static int
run_stopping(const run *r)
{
	return r->o->stop != NULL && *r->o->stop != 0;
}

/* A pipelined command whose reply has not been read: RETR or DELE of entries[ei]. */
typedef struct run_cmd {
	size_t ei;
	int dele;
} run_cmd;

/* The reply to DELE of entries[ei]: 0, or -1 if the session failed (*err_r). */
static int
run_dele_reply(run *r, size_t ei, GPtrArray *deleted, char **err_r)
{
	pop3_status ps = pop3_recv_dele(r->s, err_r);

	if (ps == POP3_ENEG) {
		log_warn("%s: DELE %lu refused (%s): will try again next run", r->a->name,
			 r->entries[ei].msgno, *err_r != NULL ? *err_r : "-ERR");
		r->stats->unsettled++;
		free(*err_r);
		*err_r = NULL;
		return 0;
	}
	if (ps != POP3_OK)
		return -1;
	g_ptr_array_add(deleted, r->entries[ei].uid);
	r->stats->deleted_bytes += r->entries[ei].size;
	return 0;
}

/*
 * RETR every message of fetch, pipelined; DELE of what earlier commits made
 * deletable rides in the same pipeline (not in a dry run), so that the server
 * deletes while it sends and the run does not end with a round of DELEs.
 */
static int
run_fetch(run *r, GArray *fetch, int window, GPtrArray *deleted)
{
	unsigned long long cap = r->a->max_size != 0 ? r->a->max_size : RUN_HARD_MAX_SIZE;
	buf body = { .max = cap > RUN_HARD_MAX_SIZE ? RUN_HARD_MAX_SIZE : cap };
	run_cmd ring[RUN_WINDOW];
	size_t head = 0, out = 0, sent = 0, got = 0;
	int dele_too = !r->o->dry_run, last_dele = 0, rc = 0;
	char *err = NULL;

	if (window > RUN_WINDOW)
		window = RUN_WINDOW;
	for (;;) {
		run_cmd c;
		pop3_status ps;

		/* Refill the window only when half of it has drained, so that the
		 * commands go out in few writes rather than one write per message. */
		if (out <= (size_t)window / 2) {
			size_t before = out;

			while (out < (size_t)window) {
				run_cmd *n = &ring[(head + out) % RUN_WINDOW];
				int retr_left = sent < fetch->len && !run_stopping(r);

				/* RETR and DELE alternate while both wait: a batch's 4096
				 * DELEs in a row would stall the fetch as long as a round of
				 * DELEs at the end did. */
				if (dele_too && r->dele_sent < r->dele->len && (!retr_left || !last_dele)) {
					n->ei = g_array_index(r->dele, size_t, r->dele_sent);
					n->dele = 1;
					if (pop3_send_dele(r->s, r->entries[n->ei].msgno, &err) != POP3_OK)
						goto io_fail;
					r->dele_sent++;
				} else if (retr_left) {
					n->ei = g_array_index(fetch, size_t, sent);
					n->dele = 0;
					if (pop3_send_retr(r->s, r->entries[n->ei].msgno, &err) != POP3_OK)
						goto io_fail;
					sent++;
				} else {
					break;
				}
				last_dele = n->dele;
				out++;
			}
			if (out > before && pop3_flush(r->s, &err) != POP3_OK)
				goto io_fail;
		}
		if (out == 0)
			break;
		c = ring[head];
		head = (head + 1) % RUN_WINDOW;
		out--;
		if (c.dele) {
			if (run_dele_reply(r, c.ei, deleted, &err) < 0)
				goto io_fail;
			continue;
		}
		buf_reset(&body);
		ps = pop3_recv_retr(r->s, &body, &err);
		got++;
		if (ps == POP3_ENEG) {
			log_warn("%s: RETR %lu refused (%s): left for the next run", r->a->name,
				 r->entries[c.ei].msgno, err != NULL ? err : "-ERR");
			free(err);
			err = NULL;
			r->stats->deferred++;
			run_fetch_failed(r, c.ei, "the server refused RETR");
			continue;
		}
		if (ps == POP3_ETOOBIG) {
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
		if (ps != POP3_OK) {
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
	log_error("%s: fetching failed: %s", r->a->name, err != NULL ? err : "connection error");
	free(err);
	buf_free(&body);
	return -1;
}

/* DELE what run_fetch has not sent yet: the last batch's messages. */
static int
run_delete(run *r, int window, GPtrArray *deleted)
{
	size_t sent = r->dele_sent, got = r->dele_sent, n = r->dele->len;
	char *err = NULL;

	while (got < n) {
		if (sent - got <= (size_t)window / 2) {
			while (sent < n && sent - got < (size_t)window) {
				size_t ei = g_array_index(r->dele, size_t, sent);

				if (pop3_send_dele(r->s, r->entries[ei].msgno, &err) != POP3_OK)
					goto fail;
				sent++;
			}
			if (pop3_flush(r->s, &err) != POP3_OK)
				goto fail;
		}
		if (run_dele_reply(r, g_array_index(r->dele, size_t, got++), deleted, &err) < 0)
			goto fail;
	}
	r->dele_sent = n;
	return 0;
fail:
	log_error("%s: deleting failed: %s (nothing is deleted until QUIT: the next run retries)",
		  r->a->name, err != NULL ? err : "connection error");
	free(err);
	return -1;
}

static int
run_connect(run *r, run_dial *dial)
{
	const char *how = NULL;
	run_fail fail = RUN_FAIL_TEMP;

	if (run_sign_in(r->a, r->o->tokens != NULL ? r->o->tokens : r->st, r->o->config_path, dial,
			run_trace, r, &r->s, &how, &fail) < 0) {
		r->stats->fail = fail;
		return -1;
	}
	log_debug("%s: signed in (%s as %s)", r->a->name, how != NULL ? how : "-", r->a->user);
	return 0;
}

int
run_account(const cfg_account *a, pipeline *pl, store *st, const run_opts *o,
	    run_dial *dial, run_stats *stats)
{
	run *r = g_new0(run, 1);
	GArray *fetch = g_array_new(FALSE, FALSE, sizeof(size_t));
	GPtrArray *deleted = g_ptr_array_new();
	char *err = NULL;
	int rc = -1, window, tx;
	long long t0 = g_get_monotonic_time();

	memset(stats, 0, sizeof *stats);
	r->a = a;
	r->pl = pl;
	r->st = st;
	r->o = o;
	r->stats = stats;
	r->ledger = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	r->dele = g_array_new(FALSE, FALSE, sizeof(size_t));
	r->api = api_batch_new(st);

	/* Several daemons on one store: from here on a commit after our lease
	 * was lost is refused (run.h). */
	if (o->lease != NULL && !o->dry_run &&
	    store_fence_set(st, a->name, o->lease->owner, o->lease->fence, &err) < 0) {
		log_error("%s: %s", a->name, err);
		free(err);
		run_dial_free(&dial);
		goto out;
	}
	/* delete_after: done mail first seen long enough ago is journalled for
	 * deletion now; the plan below DELEs it like any such row. */
	if (a->delete_after_s > 0 && !a->keep) {
		size_t aged = 0;

		if (store_aging_promote(st, a->name, (long long)time(NULL) - a->delete_after_s,
					!o->dry_run, &aged, &err) < 0) {
			log_error("%s: cannot age the journal: %s", a->name, err);
			free(err);
			run_dial_free(&dial);
			goto out;
		}
		if (aged > 0)
			log_info("%s: %zu message(s) older than delete_after %s deleted", a->name,
				 aged, o->dry_run ? "would be" : "will be");
	}
	if (store_ledger_load(st, a->name, run_ledger_row, r->ledger, &err) < 0) {
		log_error("%s: cannot read the journal: %s", a->name, err);
		free(err);
		run_dial_free(&dial);
		goto out;
	}
	if (run_connect(r, dial) < 0 || run_list(r) < 0)
		goto out;
	stats->listed = r->n_entries;
	window = pop3_has_capa(r->s, "PIPELINING") ? RUN_WINDOW : 1;
	log_debug("%s: %zu message(s) listed; %s", a->name, r->n_entries,
		  window > 1 ? "pipelining" : "no pipelining");
	run_plan(r, fetch);
	rc = run_fetch(r, fetch, window, deleted);
	/* Whatever happened, what was processed is made durable and journalled,
	 * so that it is never processed twice. */
	if (run_commit_batch(r) < 0)
		rc = -1;
	if (rc < 0 && r->dele->len > 0) {
		/* The connection may be gone; without QUIT the server deletes
		 * nothing, and the journal has these for the next run. */
		log_info("%s: %u processed message(s) will be deleted on the next run", a->name,
			 r->dele->len);
		goto out;
	}
	if (rc < 0)
		goto out;
	if (o->dry_run) {
		log_info("%s: dry run: would delete %u message(s); nothing written, nothing deleted",
			 a->name, r->dele->len);
	} else if (r->dele_sent < r->dele->len && run_delete(r, window, deleted) < 0) {
		rc = -1;
		goto out;
	}
	crash_point("dele");
	/* QUIT makes the DELEs happen: only while the account is still ours.
	 * Without it the server deletes nothing; the journal keeps them. */
	if (o->lease != NULL && !o->dry_run &&
	    store_lease_renew(st, a->name, o->lease->owner, o->lease->fence, o->lease->ttl_s,
			      &err) < 0) {
		log_error("%s: the lease on the account is lost: %s: nothing deleted, no QUIT",
			  a->name, err != NULL ? err : "error");
		free(err);
		err = NULL;
		rc = -1;
		goto durable;
	}
	if (pop3_quit_send(r->s, &err) != POP3_OK)
		goto quit_failed;
	/* While the server deletes, the journal's bookkeeping is written in a
	 * transaction that commits only if QUIT succeeds. */
	tx = !o->dry_run && run_after_quit(r, deleted) == 0;
	if (pop3_quit_recv(r->s, &err) != POP3_OK) {
		if (tx)
			store_rollback(st);
		goto quit_failed;
	}
	if (!o->dry_run) {
		crash_point("quitok");
		stats->deleted = deleted->len;
		if (tx && store_commit(st, &err) < 0) {
			store_rollback(st);
			log_error("%s: cannot record deletions: %s", a->name, err);
			free(err);
			err = NULL;
		}
	}
	rc = 0;
	goto durable;
quit_failed:
	log_error("%s: QUIT failed: %s: the server may not have deleted anything; the next run"
		  " deletes again", a->name, err != NULL ? err : "error");
	free(err);
	err = NULL;
	rc = -1;
durable:
	/* Back to a flush per commit for what follows (another account's run,
	 * the outbox); failing that, the run fails rather than go on weaker. */
	if (!o->dry_run && store_durability(st, 1, &err) < 0) {
		log_error("%s: %s", a->name, err);
		free(err);
		rc = -1;
	}
out:
	if (rc < 0 && stats->fail == RUN_FAIL_NONE)
		stats->fail = RUN_FAIL_TEMP;
	/* A cron line every few minutes saying "nothing new" is noise; so is
	 * this one after a failure to connect or list, already logged. */
	log_msg((rc == 0 && stats->fetched == 0 && stats->deleted == 0 && stats->skipped == 0 &&
		 r->limited == 0) || (rc < 0 && stats->listed == 0) ? LOG_LVL_DEBUG : LOG_LVL_INFO,
		"%s: run %s in %.2fs: %lu listed, %lu fetched (%llu bytes), %lu deleted, %lu kept,"
		 " %lu deferred, %lu skipped", a->name, rc == 0 ? "finished" : "FAILED",
		 (double)(g_get_monotonic_time() - t0) / 1e6, stats->listed, stats->fetched,
		 stats->bytes, stats->deleted, stats->kept, stats->deferred, stats->skipped);
	api_batch_free(&r->api);
	pop3_close(&r->s);
	free(r->entries);
	g_hash_table_destroy(r->ledger);
	g_array_free(r->dele, TRUE);
	g_array_free(fetch, TRUE);
	g_ptr_array_free(deleted, TRUE);
	g_free(r);
	return rc;
}

/* mailmill - ISC licence, see LICENSE */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <glib.h>
#include "proto/pop3.h"
#include "daemon/run/run.h"
#include "daemon/run/api.h"
#include "daemon/core/crash.h"
#include "daemon/core/log.h"
#include "daemon/run/message.h"
#include "daemon/run/run_login.h"

/*
 * Group commit: a batch is made durable with one pipeline_sync and one store
 * transaction.  Bigger batches mean fewer flushes; the bounds keep the
 * unflushed data and the journal transaction small.
 */
#define RUN_BATCH_MAX 4096
#define RUN_BATCH_BYTES (64ULL * 1024 * 1024)
/* What the batch's stages staged (replies, keys) is held in memory until
 * the commit: an auto-responder's 4096 replies grew the worker by 12 MB. */
#define RUN_BATCH_STAGED (2ULL * 1024 * 1024)
/* Pipelined commands in flight.  Deep enough that the server, whose one
 * process is the bottleneck on loopback, keeps sending while a batch
 * commits (about 25 ms, 500 small messages): 64 left it idle for 130 ms
 * of a 10,000-message run. */
#define RUN_WINDOW 1024
#define RUN_MAX_MESSAGES 1000000UL           /* a listing longer than this is refused */
#define RUN_HARD_MAX_SIZE (1024ULL * 1024 * 1024)

typedef struct run_item {
	char uid[72];
	size_t entry;          /* index into run.entries */
	ledger_state state;
	char *message_id;
	unsigned long long size;
	const char *stage;     /* borrowed from the configuration */
	mm_verdict verdict;
	GPtrArray *effects;    /* staged mail and kv puts (api.h), NULL if none */
} run_item;

typedef struct run {
	const cfg_account *a;
	pipeline *pl;
	store *st;
	const run_opts *o;
	run_stats *stats;
	api_batch *api;        /* the API's side of the run: store, staged effects */
	pop3_session *s;
	pop3_entry *entries;
	size_t n_entries;
	GHashTable *ledger;    /* uid -> ledger state + 1 (rows of this account) */
	GArray *dele;          /* indices into entries to delete, in commit order */
	size_t dele_sent;      /* dele[0..dele_sent) have had their DELE sent */
	run_item batch[RUN_BATCH_MAX];
	size_t n_batch;
	unsigned long long batch_bytes;
	unsigned long long batch_staged; /* api_effects_size of the batch */
	int listing_partial;   /* LIST or UIDL left lines out: the listing is not all */
	unsigned long limited; /* new messages not fetched because of o->limit */
} run;

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

static void
run_ledger_row(void *arg, const char *uid, ledger_state st, int attempts)
{
	(void)attempts;
	g_hash_table_insert(arg, g_strdup(uid), GINT_TO_POINTER((int)st + 1));
}

static ledger_state
run_ledger_get(const run *r, const char *uid)
{
	gpointer v = g_hash_table_lookup(r->ledger, uid);

	return v == NULL ? LEDGER_NEW : (ledger_state)(GPOINTER_TO_INT(v) - 1);
}

/* Make the batch durable and commit its verdicts; then its deletions may go. */
static int
run_commit_batch(run *r)
{
	char *err = NULL;
	size_t i;
	int rc = 0;

	if (r->n_batch == 0)
		return 0;
	if (r->o->dry_run) {
		for (i = 0; i < r->n_batch; i++)
			if (r->batch[i].state == LEDGER_DELETE)
				g_array_append_val(r->dele, r->batch[i].entry);
		goto out;
	}
	crash_point("sync");
	if (pipeline_sync(r->pl) < 0) {
		log_error("%s: could not make %zu message(s) durable: all left on the server for the next run",
			  r->a->name, r->n_batch);
		r->stats->deferred += r->n_batch;
		rc = -1;
		goto out;
	}
	if (store_begin(r->st, &err) < 0)
		goto fail;
	for (i = 0; i < r->n_batch; i++) {
		run_item *it = &r->batch[i];
		store_record rec = {
			.account = r->a->name, .uid = it->uid, .state = it->state,
			.message_id = it->message_id, .size = it->size, .stage = it->stage,
			.verdict = mm_verdict_name(it->verdict),
		};

		if (store_ledger_put(r->st, &rec, &err) < 0 ||
		    api_batch_commit(r->api, it->effects, &err) < 0) {
			store_rollback(r->st);
			goto fail;
		}
	}
	if (store_commit(r->st, &err) < 0) {
		store_rollback(r->st);
		goto fail;
	}
	crash_point("commit");
	for (i = 0; i < r->n_batch; i++) {
		run_item *it = &r->batch[i];

		g_hash_table_replace(r->ledger, g_strdup(it->uid), GINT_TO_POINTER((int)it->state + 1));
		if (it->state == LEDGER_DELETE)
			g_array_append_val(r->dele, it->entry);
	}
	goto out;
fail:
	log_error("%s: journal commit failed: %s: %zu message(s) left on the server", r->a->name,
		  err != NULL ? err : "error", r->n_batch);
	free(err);
	r->stats->deferred += r->n_batch;
	rc = -1;
out:
	/* Committed or not, the staged effects are done with: in the store, or
	 * dropped with their messages' verdicts. */
	api_batch_clear(r->api);
	for (i = 0; i < r->n_batch; i++) {
		g_free(r->batch[i].message_id);
		api_effects_free(&r->batch[i].effects);
	}
	r->n_batch = 0;
	r->batch_bytes = 0;
	r->batch_staged = 0;
	return rc;
}

/* Identity without UIDL: "sha256:" and 63 of the digest's 64 hex digits, so
 * that it fits where a POP3 UID (at most 70 characters) goes. */
static void
run_digest_uid(const buf *body, char uid[71])
{
	gchar *hex = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)body->data,
						 body->len);

	snprintf(uid, 71, "sha256:%.63s", hex);
	g_free(hex);
}

int
run_settled(const run_stats *s)
{
	return s->deferred == 0 && s->failed == 0 && s->unsettled == 0;
}

int
run_charge(store *st, const char *account, const char *uid, const char *why, int max_attempts)
{
	int attempts = 0;
	char *err = NULL;

	if (store_ledger_fail(st, account, uid, why, &attempts, &err) < 0) {
		log_error("%s: uid %s: cannot record the failure (%s): %s", account, uid, why, err);
		free(err);
		return -1;
	}
	if (attempts < max_attempts) {
		log_error("%s: uid %s: %s (attempt %d of %d; tried again on the next run)", account,
			  uid, why, attempts, max_attempts);
		return 0;
	}
	if (store_ledger_quarantine(st, account, uid, &err) < 0) {
		log_error("%s: uid %s: cannot quarantine: %s", account, uid, err);
		free(err);
		return -1;
	}
	log_error("%s: uid %s: QUARANTINED after %d failed attempts (last: %s): left on the server"
		  " and skipped from now on; see mailmilld --status", account, uid, attempts, why);
	return 1;
}

/* The message failed: it stays on the server and the attempt counts toward
 * quarantine (a dry run counts nothing). */
static void
run_failed_why(run *r, const char *uid, const char *why, const char *stage, size_t size)
{
	if (r->o->dry_run) {
		log_info("%s: uid %s: %s (dry run: not counted)", r->a->name, uid, why);
		return;
	}
	if (run_charge(r->st, r->a->name, uid, why, r->a->max_attempts) == 1 &&
	    r->o->progress != NULL)
		r->o->progress(r->o->progress_arg, uid, size, stage, "quarantine");
}

/* A stage said MM_FAIL. */
static void
run_failed(run *r, const char *uid, const char *stage, size_t size)
{
	char why[160];

	r->stats->failed++;
	snprintf(why, sizeof why, "stage %s failed", stage != NULL ? stage : "-");
	run_failed_why(r, uid, why, stage, size);
}

/*
 * Fetching entries[ei] failed (a -ERR, too big, its reply broken or cut):
 * with a UID it counts toward quarantine, so that a message the server
 * cannot or will not give does not hold the mailbox for ever.  Without one
 * (identity by digest) there is nothing to count it against.
 */
static void
run_fetch_failed(run *r, size_t ei, const char *why)
{
	const pop3_entry *e = &r->entries[ei];

	if (e->uid_state == POP3_UID_OK)
		run_failed_why(r, e->uid, why, NULL, (size_t)e->size);
}

static int
run_message(run *r, size_t ei, const buf *body)
{
	const cfg_account *a = r->a;
	pop3_entry *e = &r->entries[ei];
	run_item *it;
	const char *stage = NULL;
	char *mid = NULL;
	long long date = (long long)time(NULL);
	mm_msg msg;
	mm_verdict v;
	char uid[72];
	gint64 t0 = g_get_monotonic_time();

	crash_point("retr");
	r->stats->fetched++;
	r->stats->bytes += body->len;
	if (e->uid_state == POP3_UID_OK)
		snprintf(uid, sizeof uid, "%s", e->uid);
	else {
		ledger_state known;

		run_digest_uid(body, e->uid);
		snprintf(uid, sizeof uid, "%s", e->uid);
		known = run_ledger_get(r, uid);
		if (known != LEDGER_NEW) {
			if ((known == LEDGER_DELETE || known == LEDGER_DELETED) && !a->keep)
				g_array_append_val(r->dele, ei);
			return 0;
		}
	}
	if (r->o->progress != NULL)
		r->o->progress(r->o->progress_arg, uid, body->len, NULL, NULL);
	/* The header only: mm_msg_mime parses the tree if a stage asks for it. */
	message_head(body->data, body->len, &mid, &date);
	api_msg_init(&msg, r->api, body->data, body->len, uid, a->name, date);
	v = pipeline_run(r->pl, &msg, &stage);
	api_msg_release(&msg);
	if (msg.mime != NULL) {
		/* A stage parsed the tree (and may have changed it): read from it. */
		g_free(mid);
		mid = g_strdup(g_mime_message_get_message_id(msg.mime));
		g_object_unref(msg.mime);
	}
	if (v == MM_PASS)
		v = a->end == CFG_END_DONE ? MM_DONE : a->end == CFG_END_DEFER ? MM_DEFER : MM_KEEP;
	log_info("%s: uid %s: <%s>, %zu bytes, %s: %s in %.3fs%s", a->name, uid, mid != NULL ? mid : "",
		 body->len, stage != NULL ? stage : "pipeline end", mm_verdict_name(v),
		 (double)(g_get_monotonic_time() - t0) / 1e6, r->o->dry_run ? " (dry run)" : "");
	if (r->o->progress != NULL)
		r->o->progress(r->o->progress_arg, uid, body->len, stage, mm_verdict_name(v));
	if (v == MM_DEFER || v == MM_FAIL) {
		/* Processed again next time: what it staged must not happen twice. */
		api_effects_free(&msg.effects);
		if (v == MM_DEFER) {
			r->stats->deferred++;
		} else {
			char *nerr = NULL;

			/* So that --status can name it if it ends in quarantine. */
			if (store_ledger_note(r->st, a->name, uid, mid, &nerr) < 0)
				log_warn("%s: uid %s: %s", a->name, uid, nerr);
			free(nerr);
			run_failed(r, uid, stage, body->len);
		}
		g_free(mid);
		return 0;
	}
	it = &r->batch[r->n_batch++];
	snprintf(it->uid, sizeof it->uid, "%s", uid);
	it->entry = ei;
	/* With delete_after, done mail stays until the journal ages it (store_aging_promote, store.h). */
	it->state = v == MM_DONE && !a->keep && a->delete_after_s == 0 ? LEDGER_DELETE : LEDGER_KEEP;
	it->message_id = mid; /* the batch owns it now */
	it->size = body->len;
	it->stage = stage;
	it->verdict = v;
	it->effects = msg.effects;
	api_batch_add(r->api, it->effects);
	if (it->state == LEDGER_KEEP)
		r->stats->kept++;
	r->batch_bytes += body->len;
	r->batch_staged += api_effects_size(it->effects);
	if (r->n_batch == RUN_BATCH_MAX || r->batch_bytes >= RUN_BATCH_BYTES ||
	    r->batch_staged >= RUN_BATCH_STAGED)
		return run_commit_batch(r);
	return 0;
}

/* Decide per listed message: fetch, delete (processed earlier), or leave. */
static void
run_plan(run *r, GArray *fetch)
{
	const cfg_account *a = r->a;
	size_t i;

	for (i = 0; i < r->n_entries; i++) {
		pop3_entry *e = &r->entries[i];
		ledger_state st;

		if (e->uid_state == POP3_UID_INVALID || e->uid_state == POP3_UID_DUPLICATE) {
			log_warn("%s: message %lu skipped: the server gave it %s UID; it stays on the server",
				 a->name, e->msgno,
				 e->uid_state == POP3_UID_INVALID ? "an invalid" : "a duplicate");
			r->stats->skipped++;
			r->stats->unsettled++;
			continue;
		}
		if (e->uid_state == POP3_UID_OK) {
			st = run_ledger_get(r, e->uid);
			if (st == LEDGER_DELETE || st == LEDGER_DELETED) {
				/* Processed on an earlier run whose QUIT did not complete. */
				if (!a->keep && !r->o->dry_run)
					g_array_append_val(r->dele, i);
				continue;
			}
			if (st == LEDGER_KEEP || st == LEDGER_QUARANTINE)
				continue;
		}
		/* An unknown size (a bad LIST line) is bounded while fetching. */
		if (a->max_size != 0 && e->size_state == POP3_SIZE_OK && e->size > a->max_size) {
			log_warn("%s: message %lu (uid %s) is %llu bytes, over max_size %llu: not fetched,"
				 " left on the server", a->name, e->msgno,
				 e->uid[0] != '\0' ? e->uid : "-", e->size, a->max_size);
			r->stats->skipped++;
			continue;
		}
		if (r->o->limit != 0 && fetch->len >= r->o->limit) {
			r->limited++;
			continue;
		}
		g_array_append_val(fetch, i);
	}
	if (r->limited > 0)
		log_info("%s: --limit %lu: %lu more message(s) left for a later run", a->name,
			 r->o->limit, r->limited);
	if (r->o->planned != NULL)
		r->o->planned(r->o->progress_arg, fetch->len);
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
run_connect(run *r, const cfg *c, run_dial *dial)
{
	const char *how = NULL;
	run_fail fail = RUN_FAIL_TEMP;

	(void)c;
	if (run_sign_in(r->a, r->o->tokens != NULL ? r->o->tokens : r->st, r->o->config_path, dial,
			run_trace, r, &r->s, &how, &fail) < 0) {
		r->stats->fail = fail;
		return -1;
	}
	log_debug("%s: signed in (%s as %s)", r->a->name, how != NULL ? how : "-", r->a->user);
	return 0;
}

/*
 * Bad listing lines cost only their messages (pop3_list, pop3_uidl): say
 * which, and remember that the listing is not the whole mailbox, so that
 * no journal row is forgotten for a message merely left out.
 */
static void
run_list_check(run *r, const char *what)
{
	unsigned long ignored = pop3_listing_ignored(r->s);

	if (ignored > 0) {
		log_warn("%s: %s: %lu line(s) naming no message were left out; the messages they"
			 " may have been stay on the server", r->a->name, what, ignored);
		r->listing_partial = 1;
	}
	if (strcmp(what, "LIST") == 0)
		for (size_t i = 0; i < r->n_entries; i++)
			if (r->entries[i].size_state != POP3_SIZE_OK)
				log_warn("%s: message %lu: LIST gave no valid size; fetched within"
					 " max_size", r->a->name, r->entries[i].msgno);
}

static int
run_list(run *r)
{
	char *err = NULL;

	if (pop3_list(r->s, RUN_MAX_MESSAGES, &r->entries, &r->n_entries, &err) != POP3_OK)
		goto fail;
	run_list_check(r, "LIST");
	if (r->n_entries > 0 && pop3_uidl(r->s, r->entries, r->n_entries, &err) != POP3_OK) {
		if (pop3_last_code(r->s) != POP3_RC_NONE || pop3_has_capa(r->s, "UIDL"))
			goto fail;
		/* No UIDL: identity becomes the digest of each message. */
		log_info("%s: the server has no UIDL; messages are identified by their SHA-256",
			 r->a->name);
		free(err);
	} else if (r->n_entries > 0) {
		run_list_check(r, "UIDL");
	}
	return 0;
fail:
	log_error("%s: listing failed: %s", r->a->name, err != NULL ? err : "error");
	free(err);
	return -1;
}

/*
 * Record that QUIT deleted these uids.  When they are all the account's rows
 * waiting for deletion (the usual case: every DELE accepted), one statement
 * marks them; a row per uid cost 17k instructions (a fifth of an archive
 * run's).  Every deleted uid is in r->ledger: DELE goes only to messages
 * journalled for deletion.
 */
static int
run_mark_deleted(const run *r, const GPtrArray *deleted, char **err_r)
{
	GHashTableIter it;
	gpointer state;
	size_t pending = 0, confirmed = 0;

	if (deleted->len == 0)
		return 0;
	g_hash_table_iter_init(&it, r->ledger);
	while (g_hash_table_iter_next(&it, NULL, &state))
		if (GPOINTER_TO_INT(state) == (int)LEDGER_DELETE + 1)
			pending++;
	for (guint i = 0; i < deleted->len; i++)
		if (run_ledger_get(r, g_ptr_array_index(deleted, i)) == LEDGER_DELETE)
			confirmed++;
	if (pending == confirmed)
		return store_ledger_mark_all_deleted(r->st, r->a->name, err_r);
	return store_ledger_mark_deleted(r->st, r->a->name, (const char *const *)deleted->pdata,
					 deleted->len, err_r);
}

/* The journal's uids (borrowed) that the listing lacks, into missing: 0;
 * -1 if a listed message had no valid UID or the listing left lines out
 * (nothing can be concluded). */
static int
run_missing(const run *r, GPtrArray *missing)
{
	GHashTable *listed = g_hash_table_new(g_str_hash, g_str_equal);
	GHashTableIter it;
	gpointer uid;

	if (r->listing_partial) {
		g_hash_table_destroy(listed);
		return -1;
	}
	for (size_t i = 0; i < r->n_entries; i++) {
		if (r->entries[i].uid_state != POP3_UID_OK) {
			g_hash_table_destroy(listed);
			return -1;
		}
		g_hash_table_add(listed, r->entries[i].uid);
	}
	g_hash_table_iter_init(&it, r->ledger);
	while (g_hash_table_iter_next(&it, &uid, NULL))
		if (!g_hash_table_contains(listed, uid))
			g_ptr_array_add(missing, uid);
	g_hash_table_destroy(listed);
	return 0;
}

/*
 * After QUIT is sent: open a transaction that marks what this run deleted
 * and forgets the rows of messages the server no longer lists; the caller
 * commits it once QUIT succeeds.  Not a durability point: if a crash loses
 * it, the rows say "to delete" and the next run forgets them (the server
 * no longer lists them) or deletes again.  So no flush at its commit.
 * 0 with the transaction open, -1 (logged, nothing open) otherwise.
 */
static int
run_after_quit(run *r, const GPtrArray *deleted)
{
	GPtrArray *present = g_ptr_array_new();
	char *err = NULL;
	int rc = -1;

	if (store_durability(r->st, 0, &err) < 0 || store_begin(r->st, &err) < 0)
		goto out;
	if (run_mark_deleted(r, deleted, &err) < 0) {
		store_rollback(r->st);
		goto out;
	}
	/* Only when every message had a valid UID, or we could forget a live
	 * one.  The rows are those loaded at the start and committed since. */
	if (run_missing(r, present) == 0 &&
	    store_ledger_forget(r->st, r->a->name, (const char *const *)present->pdata,
				present->len, &err) < 0) {
		store_rollback(r->st);
		goto out;
	}
	rc = 0;
out:
	if (rc < 0) {
		log_error("%s: cannot record deletions: %s", r->a->name,
			  err != NULL ? err : "error");
		free(err);
	}
	g_ptr_array_free(present, TRUE);
	return rc;
}

int
run_account(const cfg *c, const cfg_account *a, pipeline *pl, store *st, const run_opts *o,
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
	if (run_connect(r, c, dial) < 0 || run_list(r) < 0)
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

/* mailmill - ISC licence, see LICENSE */
/*
 * What a fetched message's verdict does: into the batch, the batch into the
 * journal with its effects (group commit), a failure counted toward
 * quarantine; a message seen before under another key (IMAP: by digest);
 * and at a mailbox's end, the effects the server confirmed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <glib.h>
#include <openssl/evp.h>
#include "daemon/run/run.h"
#include "daemon/run/run_int.h"
#include "daemon/run/source.h"
#include "daemon/run/api.h"
#include "daemon/core/crash.h"
#include "daemon/core/log.h"
#include "daemon/run/message.h"

int
run_commit_batch(run *r)
{
	char *err = NULL;
	size_t i;
	int rc = 0;
	gint64 t0 = g_get_monotonic_time(), t1;

	if (r->n_batch == 0)
		return 0;
	if (r->o->dry_run) {
		for (i = 0; i < r->n_batch; i++)
			if (r->batch[i].state == LEDGER_DELETE)
				g_array_append_val(r->dele, r->batch[i].entry);
		goto out;
	}
	crash_point("sync");
	/*
	 * The rows go into the transaction before the plugins' sync and are
	 * committed only after it: nothing is durable in the journal before
	 * the batch's side effects are, and writing the rows overlaps the
	 * archive's writer thread finishing the batch's files.
	 */
	if (store_begin(r->st, &err) < 0)
		goto fail;
	for (i = 0; i < r->n_batch; i++) {
		run_item *it = &r->batch[i];
		store_record rec = {
			.account = r->a->name, .uid = it->uid, .state = it->state,
			.message_id = it->message_id, .size = it->size, .stage = it->stage,
			.verdict = it->verdict_name != NULL ? it->verdict_name :
				   mm_verdict_name(it->verdict),
			.digest = it->digest[0] != '\0' ? it->digest : NULL,
		};

		/* before the row: a rolled-back batch leaves a superset, which
		 * only costs lookups */
		if (r->digests != NULL && rec.digest != NULL)
			g_hash_table_add(r->digests, g_strdup(rec.digest));
		if (store_ledger_put(r->st, &rec, &err) < 0 ||
		    api_batch_commit(r->api, it->effects, &err) < 0) {
			store_rollback(r->st);
			goto fail;
		}
	}
	if (pipeline_sync(r->pl) < 0) {
		store_rollback(r->st);
		log_error("%s: could not make %zu message(s) durable: all left on the server for the next run",
			  r->a->name, r->n_batch);
		r->stats->deferred += r->n_batch;
		rc = -1;
		goto out;
	}
	t1 = g_get_monotonic_time();
	if (store_commit(r->st, &err) < 0) {
		store_rollback(r->st);
		goto fail;
	}
	crash_point("commit");
	log_debug("%s: %zu message(s) committed in %.3fs (journal rows and the sync took %.3fs)", r->a->name,
		  r->n_batch, (double)(g_get_monotonic_time() - t0) / 1e6, (double)(t1 - t0) / 1e6);
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
void
run_fetch_failed(run *r, size_t ei, const char *why)
{
	const run_entry *e = &r->entries[ei];

	if (e->uid_state == RUN_UID_OK)
		run_failed_why(r, e->uid, why, NULL, (size_t)e->size);
}

void
run_digest_free(run *r)
{
	EVP_MD_CTX_free(r->sha256_ctx);
	EVP_MD_free(r->sha256);
	r->sha256_ctx = NULL;
	r->sha256 = NULL;
}

static void
run_sha256_hex(run *r, const buf *body, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	static const char digits[] = "0123456789abcdef";

	if (r->sha256 == NULL) {
		r->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
		r->sha256_ctx = EVP_MD_CTX_new();
	}
	if (r->sha256 == NULL || r->sha256_ctx == NULL ||
	    EVP_DigestInit_ex2(r->sha256_ctx, r->sha256, NULL) != 1 ||
	    EVP_DigestUpdate(r->sha256_ctx, body->data, body->len) != 1 ||
	    EVP_DigestFinal_ex(r->sha256_ctx, md, &n) != 1 || n != 32) {
		hex[0] = '\0';   /* no digest: nothing to recognise it by */
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[64] = '\0';
}

/* The length of an IMAP key's folder part: up to its ";UIDVALIDITY=". */
static size_t
run_key_folder_len(const char *key)
{
	const char *p = NULL;

	for (const char *q = strstr(key, ";UIDVALIDITY="); q != NULL;
	     q = strstr(q + 1, ";UIDVALIDITY="))
		p = q;
	return p != NULL ? (size_t)(p - key) : strlen(key);
}

/*
 * Whether the message fetched as uid was processed already under another
 * key: the same Message-ID and digest in the journal.  In the same folder
 * under an older UIDVALIDITY (the server renumbered it), the new key takes
 * that row's state, and a DELETE has its effect done again; in another
 * folder (a Gmail label shows one message in several), the new key is
 * journalled KEEP, verdict "duplicate".  Either way the pipeline does not
 * see it again.  1 journalled (into the batch), 0 new, -1 the journal
 * cannot be read (the run stops: nothing is processed twice).
 */
static int
run_seen(run *r, size_t ei, const char *uid, char *mid, const char *digest)
{
	char *other = NULL, *err = NULL;
	ledger_state ost = LEDGER_NEW;
	run_item *it;
	size_t fl = run_key_folder_len(uid);
	int same_folder;

	if (digest[0] == '\0')
		return 0;
	/*
	 * Skip the query when it cannot match.  store_ledger_find_digest only
	 * finds a digest joined to a ledger row of this account.  r->digests is
	 * kept only when the account had no ledger row at the start of the run
	 * (so no digest could match then); since, the rows with a digest were
	 * written by this run's batches alone (run_commit_batch adds each
	 * batch's digests to r->digests before writing them; the run holds the
	 * account alone: state lock or lease).  The run's other writers (failed
	 * attempts, quarantine, notes) add no digest: they could only meet a
	 * digest left from a key whose row was forgotten, i.e. deleted on the
	 * server, and a folder never reuses a UID under one UIDVALIDITY (a row
	 * of failed attempts alone, state 0, is ignored below anyway).  So a
	 * digest not in r->digests is in no ledger row: the answer is 0.
	 * Digests of forgotten keys outlive their rows (store_ledger_forget):
	 * asked once a run, at its first message, so that an idle poll costs
	 * nothing more; if there are any, every digest is looked up.
	 */
	if (r->digests != NULL && !r->gone_checked) {
		int gone = store_ledger_has_gone(r->st, r->a->name, &err);

		r->gone_checked = 1;
		if (gone < 0) {
			log_error("%s: uid %s: cannot read the journal's digests: %s", r->a->name,
				  uid, err != NULL ? err : "error");
			free(err);
			r->stats->deferred++;
			return -1;
		}
		if (gone > 0) {
			g_hash_table_destroy(r->digests);
			r->digests = NULL;
		}
	}
	if (r->digests != NULL && !g_hash_table_contains(r->digests, digest))
		return 0;
	switch (store_ledger_find_digest(r->st, r->a->name, mid, digest, &other, &ost, &err)) {
	case 0:
		return 0;
	case 1:
		break;
	default:
		log_error("%s: uid %s: cannot look its digest up in the journal: %s", r->a->name,
			  uid, err != NULL ? err : "error");
		free(err);
		r->stats->deferred++;
		return -1;
	}
	if (other == NULL || strcmp(other, uid) == 0 || ost == LEDGER_NEW) {
		free(other);
		return 0;
	}
	/* Renumbered: the same folder, another UIDVALIDITY.  The same folder and
	 * UIDVALIDITY (another client copied it back) is a duplicate. */
	same_folder = run_key_folder_len(other) == fl && strncmp(other, uid, fl) == 0 &&
		      (r->key_prefix == NULL ||
		       strncmp(other, r->key_prefix, strlen(r->key_prefix)) != 0);
	if (same_folder) {
		log_info("%s: uid %s: <%s> is %s, processed before the folder's UIDVALIDITY"
			 " changed: not processed again; its journal state %s carries over",
			 r->a->name, uid, mid != NULL ? mid : "", other, ledger_state_name(ost));
	} else {
		log_info("%s: uid %s: <%s> is a duplicate of %s (%s): kept, not processed again",
			 r->a->name, uid, mid != NULL ? mid : "", other,
			 run_key_folder_len(other) == fl && strncmp(other, uid, fl) == 0 ?
			 "copied or moved back into its folder" : "the same message in another folder");
		ost = LEDGER_KEEP;
	}
	free(other);
	it = &r->batch[r->n_batch++];
	memset(it, 0, sizeof *it);
	snprintf(it->uid, sizeof it->uid, "%s", uid);
	it->entry = ei;
	/* A renumbered message still listed is not yet where its effect puts it
	 * (or its flag went with the renumbering): the effect is done again. */
	it->state = ost == LEDGER_DELETED && !r->a->keep ? LEDGER_DELETE : ost;
	it->message_id = g_strdup(mid);
	it->size = r->entries[ei].size;
	it->verdict = MM_KEEP;
	it->verdict_name = same_folder ? "renumbered" : "duplicate";
	memcpy(it->digest, digest, sizeof it->digest);
	if (ost == LEDGER_KEEP)
		r->stats->kept++;
	return 1;
}

int
run_message(run *r, size_t ei, const buf *body)
{
	const cfg_account *a = r->a;
	run_entry *e = &r->entries[ei];
	run_item *it;
	const char *stage = NULL;
	char *mid = NULL;
	long long date = (long long)time(NULL);
	mm_msg msg;
	mm_verdict v;
	char uid[RUN_KEY_MAX], digest[65] = "";
	gint64 t0 = g_get_monotonic_time();

	crash_point("retr");
	r->stats->fetched++;
	r->stats->bytes += body->len;
	if (e->uid_state == RUN_UID_OK)
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
	/* The header only: mm_msg_mime parses the tree if a stage asks for it. */
	message_head(body->data, body->len, &mid, &date);
	if (r->src->digests) {
		int seen;

		run_sha256_hex(r, body, digest);
		seen = run_seen(r, ei, uid, mid, digest);
		if (seen != 0) {
			g_free(mid);
			if (seen < 0)
				return -1;
			if (r->o->progress != NULL) {
				ledger_state st = r->batch[r->n_batch - 1].state;

				/* Counted as decided, so that a meter reaches its end. */
				r->o->progress(r->o->progress_arg, uid, body->len, NULL, NULL);
				r->o->progress(r->o->progress_arg, uid, body->len, NULL,
					       st == LEDGER_KEEP ? "keep" : st == LEDGER_QUARANTINE ?
					       "quarantine" : "done");
			}
			return r->n_batch == RUN_BATCH_MAX ? run_commit_batch(r) : 0;
		}
	}
	if (r->o->progress != NULL)
		r->o->progress(r->o->progress_arg, uid, body->len, NULL, NULL);
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
	it->verdict_name = NULL;
	if (digest[0] != '\0')
		memcpy(it->digest, digest, sizeof it->digest);
	else
		it->digest[0] = '\0';
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
	size_t plen = r->key_prefix != NULL ? strlen(r->key_prefix) : 0;

	if (r->listing_partial) {
		g_hash_table_destroy(listed);
		return -1;
	}

	for (size_t i = 0; i < r->n_entries; i++) {
		if (r->entries[i].uid_state != RUN_UID_OK) {
			g_hash_table_destroy(listed);
			return -1;
		}
		g_hash_table_add(listed, r->entries[i].uid);
	}
	g_hash_table_iter_init(&it, r->ledger);
	/* Only the folder's rows, another folder's are not its to forget.  Its
	 * rows under an older UIDVALIDITY are never listed again: forgotten
	 * too, their digests stay (store_ledger_forget) for recognising the
	 * renumbered messages this run did not reach (--limit). */
	if (plen > 0)
		plen = run_key_folder_len(r->key_prefix);
	while (g_hash_table_iter_next(&it, &uid, NULL))
		if ((plen == 0 || (run_key_folder_len(uid) == plen &&
				   strncmp(uid, r->key_prefix, plen) == 0)) &&
		    !g_hash_table_contains(listed, uid))
			g_ptr_array_add(missing, uid);
	g_hash_table_destroy(listed);
	return 0;
}

/*
 * At a mailbox's end (POP3: after QUIT is sent): open a transaction that
 * marks what this run deleted (moved, flagged) and forgets the rows of
 * messages the server no longer lists; the caller commits it (POP3: once
 * QUIT succeeds).  Not a durability point: if a crash loses it, the rows
 * say "to delete" and the next run forgets them (the server no longer lists
 * them) or does their effect again.  So no flush at its commit.
 * 0 with the transaction open, -1 (logged, nothing open) otherwise.
 */
int
run_journal_settle(run *r, const GPtrArray *deleted)
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
	if (run_missing(r, present) == 0 && present->len > 0 &&
	    (store_ledger_forget(r->st, r->a->name, (const char *const *)present->pdata,
				 present->len, &err) < 0 ||
	     /* Aged when keys are forgotten: an idle poll costs nothing more. */
	     (r->src->digests &&
	      store_ledger_prune_gone(r->st, r->a->name, (long long)time(NULL) - STORE_GONE_KEEP,
				      &err) < 0))) {
		store_rollback(r->st);
		goto out;
	}
	/* A later mailbox of the run counts the rows still waiting (IMAP). */
	for (guint i = 0; !r->src->redo_deleted && i < deleted->len; i++)
		g_hash_table_replace(r->ledger, g_strdup(g_ptr_array_index(deleted, i)),
				     GINT_TO_POINTER((int)LEDGER_DELETED + 1));
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

/* mailmill - ISC licence, see LICENSE */
/*
 * The IMAP mail source (source.h): each configured folder in turn, SELECT
 * (EXAMINE in a dry run), the UIDs and sizes, pipelined UID FETCH
 * BODY.PEEK[]; once a batch's verdicts are committed, the account's `after`
 * on exactly the messages done, pipelined between the next fetches: UID
 * STORE \Deleted + UID EXPUNGE, UID MOVE, a flag, or nothing.  Without
 * MOVE (UID COPY + \Deleted + UID EXPUNGE) the effects wait until the
 * folder's fetches are done, each command answered before the next.
 * Never a bare EXPUNGE, never CLOSE: they would remove other clients'
 * deleted mail.  Journal keys are "FOLDER;UIDVALIDITY=V/;UID=N" (RFC 5092).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <glib.h>
#include "proto/err.h"
#include "proto/imap.h"
#include "daemon/run/source.h"
#include "daemon/run/run_login.h"
#include "daemon/core/crash.h"
#include "daemon/core/log.h"

#define IMAP_MAX_MESSAGES 1000000UL   /* a folder listing longer than this is refused */
/* UIDs being fetched (proto/imap takes at most 1024); proto/imap asks for
 * them with one UID FETCH per set of up to 256, which the window's refill
 * at half (run.c) sends at once. */
#define IMAP_WINDOW 512
/* ... and their bytes: Dovecot answers pipelined fetches together, and a
 * body that arrives before its turn waits in the session's memory. */
#define IMAP_WINDOW_BYTES (32ULL * 1024 * 1024)
/* Where the run remembers each folder's UIDVALIDITY (store_kv). */
#define IMAP_KV_STAGE "imap:uidvalidity"

typedef struct imap_source {
	imap_session *s;
	imap_entry *list;       /* the folder's listing, as proto/imap gives it */
	run_entry *entries;
	GStringChunk *keys;     /* the entries' journal keys */
	char prefix[RUN_KEY_MAX];
	uint32_t *uids;         /* scratch for an effect's UID set */
	imap_status eff;        /* the result of the effect being read */
	char *eff_err;
	GQueue eff_q;           /* imap_inflight, in the order they went out */
	int late;               /* this folder's effects wait for its fetches */
	int warned_uidplus;     /* "no UIDPLUS" said once per run */
	int move_to_ready;      /* move_to exists (checked, or created) */
} imap_source;

#define SD(r) ((imap_source *)(r)->sd)

/*
 * What is in flight for dele[from..from+n): an effect's pipelined changes,
 * an effect done at once (its result kept with it: entries before it are
 * read first and set eff their way), or the UID EXPUNGE that
 * confirms a delete.  A delete sends UID STORE \Deleted and UID EXPUNGE
 * together, which Dovecot does in one go (half the time of the two one
 * after the other), but Dovecot runs pipelined commands side by side: while
 * a fetch before them still waits to be read, the EXPUNGE can find nothing
 * flagged yet.  So once both are answered a second UID EXPUNGE of the same
 * UIDs goes out (nothing left to do when the first worked), and the
 * messages count as deleted only when that one is answered.
 */
typedef struct imap_inflight {
	size_t from, n;
	unsigned changes;      /* change groups to read */
	int at_once, expunge;
	imap_status st;        /* at_once: its result, and why (owned) */
	char *err;
} imap_inflight;

static void
imap_inflight_free(gpointer f)
{
	free(((imap_inflight *)f)->err);
	g_free(f);
}

/* Pipelined changes for dele[from..from+n), read later. */
static void
imap_src_push(imap_source *p, size_t from, size_t n, unsigned changes)
{
	imap_inflight *f = g_new0(imap_inflight, 1);

	f->from = from;
	f->n = n;
	f->changes = changes;
	g_queue_push_tail(&p->eff_q, f);
}

/* An effect done at once (or refused before anything went out): its
 * result waits with it for its turn; err (owned) goes with it. */
static void
imap_src_push_done(imap_source *p, size_t from, size_t n, imap_status st, char *err)
{
	imap_inflight *f = g_new0(imap_inflight, 1);

	*f = (imap_inflight){ .from = from, .n = n, .at_once = 1, .st = st, .err = err };
	g_queue_push_tail(&p->eff_q, f);
}

/* The result imap_src_result reports; err (owned) is its reason. */
static void
imap_src_set_eff(imap_source *p, imap_status st, char *err)
{
	free(p->eff_err);
	p->eff = st;
	p->eff_err = err;
}

/* *err_r handed over (NULL if none). */
static char *
imap_src_take(char **err_r)
{
	char *e = err_r != NULL ? *err_r : NULL;

	if (err_r != NULL)
		*err_r = NULL;
	return e;
}

static int
imap_src_open(run *r, run_dial *dial, const char **how_r)
{
	run_fail fail = RUN_FAIL_TEMP;
	imap_source *p = g_new0(imap_source, 1);

	run_dial_free(&dial);
	r->sd = p;
	p->keys = g_string_chunk_new(64 * 1024);
	if (r->a->oauth != NULL && run_token_store(r) == NULL)
		return -1;
	if (run_imap_sign_in(r->a, run_token_store(r), r->o->config_path,
			     run_trace, r, &p->s, how_r, &fail) < 0) {
		r->stats->fail = fail;
		return -1;
	}
	/* Besides tracing, run_trace only watches for POP3's QUIT (a crash
	 * point), which no IMAP line is: with no trace asked for, proto/imap
	 * need not format every response for it. */
	if (!r->o->trace)
		imap_set_trace(p->s, NULL, NULL);
	return 0;
}

static size_t
imap_src_n_mailboxes(const run *r)
{
	return r->a->n_folders;
}

/* The folder's last UIDVALIDITY the run saw (0: none), and the new one
 * remembered; a change is said, with what it means. */
static void
imap_src_uidvalidity(run *r, const char *folder, uint32_t v)
{
	store_kv_scope sc = { .account = r->a->name, .stage = IMAP_KV_STAGE };
	char *old = NULL, *err = NULL, val[16];
	long long now = (long long)time(NULL);
	int got = store_kv_get(r->st, &sc, folder, now, &old, &err);

	snprintf(val, sizeof val, "%u", (unsigned)v);
	if (got == 1 && strcmp(old, val) == 0) {
		free(old);
		return;
	}
	if (got == 1)
		log_warn("%s: folder %s: UIDVALIDITY changed from %s to %s: the server renumbered"
			 " its messages; those processed before are recognised by Message-ID and"
			 " digest and not processed again", r->a->name, folder, old, val);
	else if (got < 0)
		log_warn("%s: folder %s: cannot read its last UIDVALIDITY: %s", r->a->name, folder,
			 err);
	free(old);
	free(err);
	err = NULL;
	if (r->o->dry_run)
		return;
	if (store_begin(r->st, &err) < 0 || store_kv_put(r->st, &sc, folder, val, 0, now, &err) < 0 ||
	    store_commit(r->st, &err) < 0) {
		store_rollback(r->st);
		log_warn("%s: folder %s: cannot remember its UIDVALIDITY: %s", r->a->name, folder,
			 err != NULL ? err : "error");
		free(err);
	}
}

/* move_to exists, or is created now (once per run). */
static imap_status
imap_src_move_to(run *r, char **err_r)
{
	imap_source *p = SD(r);
	int exists = 0;
	imap_status st;

	if (p->move_to_ready)
		return IMAP_OK;
	st = imap_mailbox_exists(p->s, r->a->move_to, &exists, err_r);
	if (st == IMAP_OK && !exists) {
		log_info("%s: creating folder %s for processed mail", r->a->name, r->a->move_to);
		st = imap_create(p->s, r->a->move_to, err_r);
	}
	p->move_to_ready = st == IMAP_OK;
	return st;
}

static int
imap_src_list(run *r, size_t mb)
{
	imap_source *p = SD(r);
	const char *folder = r->a->folders[mb];
	imap_mailbox info;
	imap_status st;
	size_t n = 0;
	char *err = NULL;

	free(p->list);
	p->list = NULL;
	g_free(p->entries);
	p->entries = NULL;
	g_string_chunk_clear(p->keys);
	g_queue_clear_full(&p->eff_q, imap_inflight_free);
	r->entries = NULL;
	r->n_entries = 0;
	st = r->o->dry_run ? imap_examine(p->s, folder, &info, &err) :
			     imap_select(p->s, folder, &info, &err);
	if (st == IMAP_ENO) {
		/* One folder missing does not stop the others. */
		log_error("%s: folder %s cannot be opened: %s: skipped", r->a->name, folder,
			  err != NULL ? err : "NO");
		free(err);
		r->stats->unsettled++;
		r->listing_partial = 1;
		return 0;
	}
	if (st != IMAP_OK)
		goto fail;
	if (info.uidvalidity == 0) {
		log_error("%s: folder %s: the server gives no UIDVALIDITY, so its UIDs cannot key"
			  " the journal: skipped", r->a->name, folder);
		r->stats->unsettled++;
		r->listing_partial = 1;
		return 0;
	}
	if ((size_t)snprintf(p->prefix, sizeof p->prefix, "%s;UIDVALIDITY=%u/;UID=", folder,
			     (unsigned)info.uidvalidity) >= sizeof p->prefix - 11) {
		log_error("%s: folder %s: its name is too long for the journal: skipped",
			  r->a->name, folder);
		r->stats->unsettled++;
		r->listing_partial = 1;
		return 0;
	}
	r->key_prefix = p->prefix;
	st = imap_uid_list(p->s, 1, IMAP_MAX_MESSAGES, &p->list, &n, &err);
	if (st != IMAP_OK)
		goto fail;
	/* An empty folder leaves the journal closed (run_journal_open); its
	 * UIDVALIDITY is compared when it next holds mail, or now if an
	 * earlier folder opened the journal.  The keys carry it either way. */
	if (n > 0 && run_journal_open(r) < 0)
		return -1;
	if (r->journal_open)
		imap_src_uidvalidity(r, folder, info.uidvalidity);
	p->entries = g_new(run_entry, n > 0 ? n : 1);
	for (size_t i = 0; i < n; i++) {
		char key[RUN_KEY_MAX + 12];   /* the prefix was bounded to leave room */

		snprintf(key, sizeof key, "%s%u", p->prefix, (unsigned)p->list[i].uid);
		p->entries[i] = (run_entry){
			.uid = g_string_chunk_insert(p->keys, key), .msgno = p->list[i].uid,
			.size = p->list[i].size, .uid_state = RUN_UID_OK,
			.size_ok = p->list[i].size_known != 0,
		};
	}
	r->entries = p->entries;
	r->n_entries = n;
	p->late = 0;
	if (!r->o->dry_run && r->a->after == CFG_AFTER_MOVE) {
		/* before any fetch: the check is a command of its own */
		st = imap_src_move_to(r, &err);
		if (st != IMAP_OK && st != IMAP_ENO && st != IMAP_EBAD)
			goto fail;
		free(err);
		err = NULL;
		p->late = !p->move_to_ready || !imap_has_capa(p->s, "MOVE");
	}
	log_debug("%s: folder %s: UIDVALIDITY %u, %zu message(s)", r->a->name, folder,
		  (unsigned)info.uidvalidity, n);
	return 0;
fail:
	log_error("%s: listing folder %s failed: %s", r->a->name, folder,
		  err != NULL ? err : "error");
	free(err);
	return -1;
}

static int
imap_src_window(const run *r)
{
	(void)r;
	return IMAP_WINDOW;
}

static int
imap_src_send_fetch(run *r, size_t ei, char **err_r)
{
	return imap_send_fetch(SD(r)->s, (uint32_t)r->entries[ei].msgno, err_r) == IMAP_OK ? 0 : -1;
}

static int
imap_src_flush(run *r, char **err_r)
{
	/* Nothing to flush after an effect done at once: its failure is told
	 * by imap_src_recv_effect. */
	if (imap_in_flight(SD(r)->s) == 0)
		return 0;
	return imap_flush(SD(r)->s, err_r) == IMAP_OK ? 0 : -1;
}

static run_got
imap_src_recv_fetch(run *r, size_t ei, buf *body, char **err_r)
{
	uint32_t uid = 0;

	switch (imap_recv_fetch(SD(r)->s, body, &uid, err_r)) {
	case IMAP_OK:
		if (uid != (uint32_t)r->entries[ei].msgno) {
			err_set(err_r, "UID FETCH %lu answered for UID %u", r->entries[ei].msgno,
				(unsigned)uid);
			return RUN_GOT_FAIL;
		}
		return RUN_GOT_OK;
	case IMAP_ETOOBIG: return RUN_GOT_TOOBIG;
	case IMAP_EGONE: return RUN_GOT_GONE;
	case IMAP_ENO:
	case IMAP_EBAD: return RUN_GOT_NEG;
	default: return RUN_GOT_FAIL;
	}
}

static void
imap_src_no_uidplus(run *r)
{
	imap_source *p = SD(r);

	if (!p->warned_uidplus) {
		log_warn("%s: the server has no UIDPLUS: processed messages are flagged \\Deleted"
			 " but not expunged (mailmill never sends a bare EXPUNGE); expunge them"
			 " with another client", r->a->name);
		p->warned_uidplus = 1;
	}
}

/* \Deleted on uids, then UID EXPUNGE of exactly them; without UIDPLUS the
 * flag only (a bare EXPUNGE would take other clients' deleted mail too). */
static imap_status
imap_src_expunge(run *r, const uint32_t *uids, size_t n, char **err_r)
{
	imap_source *p = SD(r);
	imap_status st = imap_uid_store_flags(p->s, uids, n, "\\Deleted", err_r);

	if (st != IMAP_OK)
		return st;
	if (imap_has_capa(p->s, "UIDPLUS"))
		return imap_uid_expunge(p->s, uids, n, err_r);
	imap_src_no_uidplus(r);
	return IMAP_OK;
}

/* What the effect did to a message, for the run's counts. */
static unsigned long *
imap_src_effect_count(run *r)
{
	imap_source *p = SD(r);

	switch (r->a->after) {
	case CFG_AFTER_MOVE: return &r->stats->moved;
	case CFG_AFTER_FLAG: return &r->stats->flagged;
	default:
		return imap_has_capa(p->s, "UIDPLUS") ? &r->stats->deleted : &r->stats->flagged;
	}
}

/* A folder's move done at once, each command answered before the next:
 * the folders whose effects wait (late: no MOVE, or move_to could not be
 * made ready before the fetches). */
static imap_status
imap_src_move_now(run *r, const uint32_t *uids, size_t n, char **err_r)
{
	imap_source *p = SD(r);
	imap_status st;

	if ((st = imap_src_move_to(r, err_r)) != IMAP_OK)
		return st;
	if (imap_has_capa(p->s, "MOVE"))
		return imap_uid_move(p->s, uids, n, r->a->move_to, err_r);
	/* Exchange and others: a copy, then the originals go. */
	st = imap_uid_copy(p->s, uids, n, r->a->move_to, err_r);
	return st != IMAP_OK ? st : imap_src_expunge(r, uids, n, err_r);
}

static int
imap_src_effects_after_fetch(const run *r)
{
	return SD(r)->late;
}

/* One pipelined change; *count_r counts it when it put a command out. */
static imap_status
imap_src_change(run *r, imap_change kind, size_t n, const char *arg, unsigned *count_r,
		char **err_r)
{
	imap_source *p = SD(r);
	size_t before = imap_changes_in_flight(p->s);
	imap_status st = imap_send_change(p->s, kind, p->uids, n, arg, err_r);

	*count_r += imap_changes_in_flight(p->s) > before;
	return st;
}

/* The UIDs of dele[from..from+n) into p->uids. */
static void
imap_src_uids(run *r, size_t from, size_t n)
{
	imap_source *p = SD(r);

	p->uids = g_renew(uint32_t, p->uids, n);
	for (size_t i = 0; i < n; i++)
		p->uids[i] = (uint32_t)r->entries[g_array_index(r->dele, size_t, from + i)].msgno;
}

/* A change that put nothing out (a flag list the server cannot take) is
 * a refusal, as when the effect is done at once. */
static int
imap_src_unsent(imap_status st, unsigned count)
{
	return st != IMAP_OK && count == 0 &&
	       (st == IMAP_EUSAGE || st == IMAP_ENO || st == IMAP_EBAD);
}

/*
 * The effect on every message of dele[from..from+n) at once (compact UID
 * sets).  Pipelined behind the fetches in flight (the server works on it
 * while it sends the next bodies), or, for a folder whose effects wait
 * (late), done here and its result kept; imap_src_recv_effect reports.
 * The run sends it only once the batch's archive and journal are durable.
 */
static long
imap_src_send_effect(run *r, size_t from, size_t n, char **err_r)
{
	imap_source *p = SD(r);
	const cfg_account *a = r->a;
	unsigned count = 0;
	imap_status st = IMAP_OK;

	imap_src_uids(r, from, n);
	crash_point("imap-effect");
	if (p->late) {
		char *e = NULL;

		st = imap_src_move_now(r, p->uids, n, &e);
		imap_src_push_done(p, from, n, st, e);
		return (long)n;
	}
	switch (a->after) {
	case CFG_AFTER_DELETE:
		st = imap_src_change(r, IMAP_CHANGE_FLAGS, n, "\\Deleted", &count, err_r);
		if (st == IMAP_OK && imap_has_capa(p->s, "UIDPLUS"))
			st = imap_src_change(r, IMAP_CHANGE_EXPUNGE, n, NULL, &count, err_r);
		else if (st == IMAP_OK)
			imap_src_no_uidplus(r);
		break;
	case CFG_AFTER_FLAG:
		st = imap_src_change(r, IMAP_CHANGE_FLAGS, n, a->flag, &count, err_r);
		break;
	case CFG_AFTER_MOVE:
		st = imap_src_change(r, IMAP_CHANGE_MOVE, n, a->move_to, &count, err_r);
		break;
	default:
		break;
	}
	if (imap_src_unsent(st, count)) {
		imap_src_push_done(p, from, n, st, imap_src_take(err_r));
		return (long)n;
	}
	if (st != IMAP_OK)
		return -1;
	imap_src_push(p, from, n, count);
	return (long)n;
}

/* The answers of pipelined changes: the first failure, if any, into
 * p->eff and p->eff_err. */
static void
imap_src_recv_changes(run *r, unsigned count)
{
	imap_source *p = SD(r);

	imap_src_set_eff(p, IMAP_OK, NULL);
	for (unsigned i = 0; i < count; i++) {
		char *e = NULL;
		imap_status st = imap_recv_change(p->s, &e);

		if (st != IMAP_OK && p->eff == IMAP_OK) {
			imap_src_set_eff(p, st, e);
		} else {
			free(e);
		}
		if (st != IMAP_OK && st != IMAP_ENO && st != IMAP_EBAD)
			break;   /* the session is gone */
	}
}

/* What p->eff says of dele[from..from+n): done (into done), refused (the
 * rows stay "to do": the next run tries again), or -1: the session is gone. */
static int
imap_src_result(run *r, size_t from, size_t n, GPtrArray *done, char **err_r)
{
	imap_source *p = SD(r);
	int removed;

	if (p->eff == IMAP_ENO || p->eff == IMAP_EBAD || p->eff == IMAP_EUSAGE) {
		log_warn("%s: after = %s refused for %zu message(s) (%s): tried again next run",
			 r->a->name, r->a->after == CFG_AFTER_MOVE ? "move" :
			 r->a->after == CFG_AFTER_FLAG ? "flag" : "delete", n,
			 p->eff_err != NULL ? p->eff_err : "NO");
		r->stats->unsettled += n;
		return 0;
	}
	if (p->eff != IMAP_OK) {
		*err_r = p->eff_err;
		p->eff_err = NULL;
		return -1;
	}
	crash_point("imap-effected");
	removed = imap_src_effect_count(r) == &r->stats->deleted;
	for (size_t i = 0; i < n; i++) {
		const run_entry *e = &r->entries[g_array_index(r->dele, size_t, from + i)];

		g_ptr_array_add(done, e->uid);
		if (removed)
			r->stats->deleted_bytes += e->size;
	}
	return 0;
}

/* Read the oldest thing in flight; an answered delete sends its second
 * UID EXPUNGE, read later. */
static int
imap_src_recv_one(run *r, GPtrArray *done, char **err_r)
{
	imap_source *p = SD(r);
	imap_inflight *f = g_queue_pop_head(&p->eff_q);
	unsigned count = 0;
	imap_status st;
	int rc;

	if (f == NULL) {
		err_set(err_r, "no effect in flight");
		return -1;
	}
	if (f->at_once) {
		imap_src_set_eff(p, f->st, f->err);
		f->err = NULL;
	} else {
		imap_src_recv_changes(r, f->changes);
	}
	if (f->expunge || f->at_once || p->eff != IMAP_OK || r->a->after != CFG_AFTER_DELETE ||
	    !imap_has_capa(p->s, "UIDPLUS")) {
		rc = imap_src_result(r, f->from, f->n, done, err_r);
		imap_inflight_free(f);
		return rc;
	}
	imap_src_uids(r, f->from, f->n);
	st = imap_src_change(r, IMAP_CHANGE_EXPUNGE, f->n, NULL, &count, err_r);
	if (imap_src_unsent(st, count)) {
		imap_src_set_eff(p, st, imap_src_take(err_r));
		rc = imap_src_result(r, f->from, f->n, done, err_r);
		imap_inflight_free(f);
		return rc;
	}
	if (st != IMAP_OK) {
		imap_inflight_free(f);
		return -1;
	}
	f->changes = count;
	f->expunge = 1;
	g_queue_push_tail(&p->eff_q, f);
	return 0;
}

/* The effect of dele[from..from+n), and every expunge sent before it. */
static int
imap_src_recv_effect(run *r, size_t from, size_t n, GPtrArray *done, char **err_r)
{
	imap_source *p = SD(r);
	imap_inflight *f;

	(void)from;
	(void)n;
	while ((f = g_queue_peek_head(&p->eff_q)) != NULL && f->expunge)
		if (imap_src_recv_one(r, done, err_r) < 0)
			return -1;
	return imap_src_recv_one(r, done, err_r);
}

/* The expunges still in flight are read; then the journal says what the
 * server has done. */
static int
imap_src_finish(run *r, size_t mb, GPtrArray *done)
{
	imap_source *p = SD(r);
	char *err = NULL;
	int rc = 0;

	(void)mb;
	while (!g_queue_is_empty(&p->eff_q))
		if (imap_src_recv_one(r, done, &err) < 0) {
			log_error("%s: finishing failed: %s (the next run does what is left)",
				  r->a->name, err != NULL ? err : "connection error");
			free(err);
			err = NULL;
			rc = -1;
			break;
		}
	if (r->o->dry_run || r->key_prefix == NULL || !r->journal_open)
		return rc;
	if (run_journal_settle(r, done) < 0)
		return -1;
	if (store_commit(r->st, &err) < 0) {
		store_rollback(r->st);
		log_error("%s: cannot record what the server did: %s (the next run does it again)",
			  r->a->name, err);
		free(err);
		return -1;
	}
	*imap_src_effect_count(r) += done->len;
	return rc;
}

static void
imap_src_close(run *r)
{
	imap_source *p = SD(r);
	char *err = NULL;

	if (p->s != NULL && imap_logout(p->s, &err) != IMAP_OK) {
		log_debug("%s: LOGOUT: %s", r->a->name, err != NULL ? err : "failed");
		free(err);
	}
	imap_close(&p->s);
	free(p->list);
	g_free(p->entries);
	g_string_chunk_free(p->keys);
	g_free(p->uids);
	g_queue_clear_full(&p->eff_q, imap_inflight_free);
	free(p->eff_err);
	g_free(p);
	r->sd = NULL;
	r->entries = NULL;
}

const run_source_ops run_source_imap = {
	.name = "imap",
	.open = imap_src_open,
	.n_mailboxes = imap_src_n_mailboxes,
	.list = imap_src_list,
	.window = imap_src_window,
	.send_fetch = imap_src_send_fetch,
	.flush = imap_src_flush,
	.recv_fetch = imap_src_recv_fetch,
	.send_effect = imap_src_send_effect,
	.recv_effect = imap_src_recv_effect,
	.finish = imap_src_finish,
	.close = imap_src_close,
	.redo_deleted = 0,
	.digests = 1,
	.effects_after_fetch = imap_src_effects_after_fetch,
	.window_bytes = IMAP_WINDOW_BYTES,
	.verb = "finish", .verbing = "finishing", .verbed = "finished",
	.fetch_cmd = "UID FETCH", .fetch_refused = "the server refused UID FETCH",
};

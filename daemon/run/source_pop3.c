/* mailmill - ISC licence, see LICENSE */
/*
 * The POP3 mail source (source.h): LIST and UIDL, pipelined RETR, DELE as
 * a message's effect, and QUIT, which is what deletes: the journal records
 * the deletions in a transaction that commits only if QUIT succeeds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>
#include "proto/pop3.h"
#include "daemon/run/source.h"
#include "daemon/run/run_login.h"
#include "daemon/core/crash.h"
#include "daemon/core/log.h"

#define RUN_MAX_MESSAGES 1000000UL           /* a listing longer than this is refused */

typedef struct pop3_source {
	pop3_session *s;
	pop3_entry *pe;       /* the listing, as proto/pop3 gives it */
	run_entry *entries;   /* the run's view of it (uids point into pe) */
} pop3_source;

#define SD(r) ((pop3_source *)(r)->sd)

static int
pop3_src_open(run *r, run_dial *dial, const char **how_r)
{
	run_fail fail = RUN_FAIL_TEMP;
	pop3_source *p = g_new0(pop3_source, 1);

	r->sd = p;
	if (r->a->oauth != NULL && run_token_store(r) == NULL) {
		run_dial_free(&dial);
		return -1;
	}
	if (run_sign_in(r->a, run_token_store(r), r->o->config_path, dial,
			run_trace, r, &p->s, how_r, &fail) < 0) {
		r->stats->fail = fail;
		return -1;
	}
	return 0;
}

static size_t
pop3_src_n_mailboxes(const run *r)
{
	(void)r;
	return 1;
}

/*
 * Bad listing lines cost only their messages (pop3_list, pop3_uidl): say
 * which, and remember that the listing is not the whole mailbox, so that
 * no journal row is forgotten for a message merely left out.
 */
static void
pop3_src_list_check(run *r, const char *what)
{
	pop3_source *p = SD(r);
	unsigned long ignored = pop3_listing_ignored(p->s);

	if (ignored > 0) {
		log_warn("%s: %s: %lu line(s) naming no message were left out; the messages they"
			 " may have been stay on the server", r->a->name, what, ignored);
		r->listing_partial = 1;
	}
	if (strcmp(what, "LIST") == 0)
		for (size_t i = 0; i < r->n_entries; i++)
			if (p->pe[i].size_state != POP3_SIZE_OK)
				log_warn("%s: message %lu: LIST gave no valid size; fetched within"
					 " max_size", r->a->name, p->pe[i].msgno);
}

static int
pop3_src_list(run *r, size_t mb)
{
	pop3_source *p = SD(r);
	char *err = NULL;

	(void)mb;
	if (pop3_list(p->s, RUN_MAX_MESSAGES, &p->pe, &r->n_entries, &err) != POP3_OK)
		goto fail;
	pop3_src_list_check(r, "LIST");
	if (r->n_entries > 0 && pop3_uidl(p->s, p->pe, r->n_entries, &err) != POP3_OK) {
		if (pop3_last_code(p->s) != POP3_RC_NONE || pop3_has_capa(p->s, "UIDL"))
			goto fail;
		/* No UIDL: identity becomes the digest of each message. */
		log_info("%s: the server has no UIDL; messages are identified by their SHA-256",
			 r->a->name);
		free(err);
	} else if (r->n_entries > 0) {
		pop3_src_list_check(r, "UIDL");
	}
	p->entries = g_new(run_entry, r->n_entries > 0 ? r->n_entries : 1);
	for (size_t i = 0; i < r->n_entries; i++) {
		const pop3_entry *e = &p->pe[i];

		p->entries[i] = (run_entry){
			.uid = p->pe[i].uid, .msgno = e->msgno, .size = e->size,
			.uid_state = e->uid_state == POP3_UID_OK ? RUN_UID_OK :
				     e->uid_state == POP3_UID_MISSING ? RUN_UID_MISSING :
				     e->uid_state == POP3_UID_INVALID ? RUN_UID_INVALID :
				     RUN_UID_DUPLICATE,
			.size_ok = e->size_state == POP3_SIZE_OK,
		};
	}
	r->entries = p->entries;
	return 0;
fail:
	log_error("%s: listing failed: %s", r->a->name, err != NULL ? err : "error");
	free(err);
	return -1;
}

static int
pop3_src_window(const run *r)
{
	return pop3_has_capa(SD(r)->s, "PIPELINING") ? RUN_WINDOW : 1;
}

static int
pop3_src_send_fetch(run *r, size_t ei, char **err_r)
{
	return pop3_send_retr(SD(r)->s, r->entries[ei].msgno, err_r) == POP3_OK ? 0 : -1;
}

static int
pop3_src_flush(run *r, char **err_r)
{
	return pop3_flush(SD(r)->s, err_r) == POP3_OK ? 0 : -1;
}

static run_got
pop3_src_recv_fetch(run *r, size_t ei, buf *body, char **err_r)
{
	(void)ei;
	switch (pop3_recv_retr(SD(r)->s, body, err_r)) {
	case POP3_OK: return RUN_GOT_OK;
	case POP3_ENEG: return RUN_GOT_NEG;
	case POP3_ETOOBIG: return RUN_GOT_TOOBIG;
	default: return RUN_GOT_FAIL;
	}
}

/* One DELE per message: the server answers each. */
static long
pop3_src_send_effect(run *r, size_t from, size_t n, char **err_r)
{
	size_t ei = g_array_index(r->dele, size_t, from);

	(void)n;
	return pop3_send_dele(SD(r)->s, r->entries[ei].msgno, err_r) == POP3_OK ? 1 : -1;
}

static int
pop3_src_recv_effect(run *r, size_t from, size_t n, GPtrArray *done, char **err_r)
{
	size_t ei = g_array_index(r->dele, size_t, from);
	pop3_status ps = pop3_recv_dele(SD(r)->s, err_r);

	(void)n;
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
	g_ptr_array_add(done, r->entries[ei].uid);
	r->stats->deleted_bytes += r->entries[ei].size;
	return 0;
}

/* QUIT deletes what DELE marked; the journal's record of it commits only
 * if QUIT succeeds. */
static int
pop3_src_finish(run *r, size_t mb, GPtrArray *done)
{
	pop3_source *p = SD(r);
	char *err = NULL;
	int tx;

	(void)mb;
	crash_point("dele");
	if (r->dele_sent > 0 && run_lease_renew(r) < 0)
		return -1;
	if (pop3_quit_send(p->s, &err) != POP3_OK)
		goto quit_failed;
	/* While the server deletes, the journal's bookkeeping is written in a
	 * transaction that commits only if QUIT succeeds. */
	tx = !r->o->dry_run && r->journal_open && run_journal_settle(r, done) == 0;
	if (pop3_quit_recv(p->s, &err) != POP3_OK) {
		if (tx)
			store_rollback(r->st);
		goto quit_failed;
	}
	if (!r->o->dry_run) {
		crash_point("quitok");
		r->stats->deleted += done->len;
		if (tx && store_commit(r->st, &err) < 0) {
			store_rollback(r->st);
			log_error("%s: cannot record deletions: %s", r->a->name, err);
			free(err);
		} else if ((tx || !r->journal_open) && r->n_entries == 0 && !r->listing_partial) {
			/* Nothing listed: every row was forgotten now, or there was
			 * none (run_lease.journal_empty). */
			r->stats->journal_empty = 1;
		}
	}
	return 0;
quit_failed:
	log_error("%s: QUIT failed: %s: the server may not have deleted anything; the next run"
		  " deletes again", r->a->name, err != NULL ? err : "error");
	free(err);
	return -1;
}

static void
pop3_src_close(run *r)
{
	pop3_source *p = SD(r);

	pop3_close(&p->s);
	free(p->pe);
	g_free(p->entries);
	g_free(p);
	r->sd = NULL;
	r->entries = NULL;
}

const run_source_ops run_source_pop3 = {
	.name = "pop3",
	.open = pop3_src_open,
	.n_mailboxes = pop3_src_n_mailboxes,
	.list = pop3_src_list,
	.window = pop3_src_window,
	.send_fetch = pop3_src_send_fetch,
	.flush = pop3_src_flush,
	.recv_fetch = pop3_src_recv_fetch,
	.send_effect = pop3_src_send_effect,
	.recv_effect = pop3_src_recv_effect,
	.finish = pop3_src_finish,
	.close = pop3_src_close,
	.redo_deleted = 1,
	.digests = 0,
	.verb = "delete", .verbing = "deleting", .verbed = "deleted",
	.fetch_cmd = "RETR", .fetch_refused = "the server refused RETR",
};

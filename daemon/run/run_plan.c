/* mailmill - ISC licence, see LICENSE */
/*
 * The listing against the journal: LIST and UIDL, and what to do with each
 * listed message (fetch it, DELE it again, leave it).
 */
#include <stdlib.h>
#include <string.h>
#include <glib.h>
#include "proto/pop3.h"
#include "daemon/run/run_int.h"
#include "daemon/core/log.h"

#define RUN_MAX_MESSAGES 1000000UL           /* a listing longer than this is refused */

void
run_ledger_row(void *arg, const char *uid, ledger_state st, int attempts)
{
	(void)attempts;
	g_hash_table_insert(arg, g_strdup(uid), GINT_TO_POINTER((int)st + 1));
}

ledger_state
run_ledger_get(const run *r, const char *uid)
{
	gpointer v = g_hash_table_lookup(r->ledger, uid);

	return v == NULL ? LEDGER_NEW : (ledger_state)(GPOINTER_TO_INT(v) - 1);
}

void
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

int
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

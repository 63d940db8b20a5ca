/* mailmill - ISC licence, see LICENSE */
/*
 * The listing against the journal: what to do with each listed message
 * (fetch it, do its effect again, leave it).  The sources list (source.h).
 */
#include <stdlib.h>
#include <string.h>
#include <glib.h>
#include "daemon/run/run_int.h"
#include "daemon/run/source.h"
#include "daemon/core/log.h"

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
		run_entry *e = &r->entries[i];
		ledger_state st;

		if (e->uid_state == RUN_UID_INVALID || e->uid_state == RUN_UID_DUPLICATE) {
			log_warn("%s: message %lu skipped: the server gave it %s UID; it stays on the server",
				 a->name, e->msgno,
				 e->uid_state == RUN_UID_INVALID ? "an invalid" : "a duplicate");
			r->stats->skipped++;
			r->stats->unsettled++;
			continue;
		}
		if (e->uid_state == RUN_UID_OK) {
			st = run_ledger_get(r, e->uid);
			if (st == LEDGER_DELETE || (st == LEDGER_DELETED && r->src->redo_deleted)) {
				/* Processed on an earlier run whose effect was not
				 * confirmed (POP3: whose QUIT did not complete). */
				if (!a->keep && !r->o->dry_run)
					g_array_append_val(r->dele, i);
				continue;
			}
			if (st != LEDGER_NEW)
				continue;
		}
		/* An unknown size (a bad LIST line) is bounded while fetching. */
		if (a->max_size != 0 && e->size_ok && e->size > a->max_size) {
			log_warn("%s: message %lu (uid %s) is %llu bytes, over max_size %llu: not fetched,"
				 " left on the server", a->name, e->msgno,
				 e->uid[0] != '\0' ? e->uid : "-", e->size, a->max_size);
			r->stats->skipped++;
			continue;
		}
		if (r->o->limit != 0 && r->planned + fetch->len >= r->o->limit) {
			r->limited++;
			continue;
		}
		g_array_append_val(fetch, i);
	}
	r->planned += fetch->len;
	if (r->limited > 0)
		log_info("%s: --limit %lu: %lu more message(s) left for a later run", a->name,
			 r->o->limit, r->limited);
	if (r->o->planned != NULL)
		r->o->planned(r->o->progress_arg, fetch->len);
}

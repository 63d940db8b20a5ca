/* mailmill - ISC licence, see LICENSE */
#ifndef MM_STORE_AGING_H
#define MM_STORE_AGING_H
/*
 * delete_after: mail the pipeline finished (verdict "done") on an account
 * that leaves it on the server for a while.  Such a message's ledger row is
 * KEEP with verdict "done"; its `created` is when the journal first saw it
 * (the first commit of a verdict for the uid; later writes keep it).  Once
 * that is at or before `before`, the row becomes DELETE, and the run DELEs
 * it like any message journalled for deletion (crash-safe the same way:
 * a row that says DELETE is deleted by a later run if not by this one).
 * A KEEP verdict (a stage's, or pipeline_end = "keep") is never aged.
 *
 * apply = 0 (a dry run, a read-only store): count only, write nothing.
 * 0 and *n_r (the rows due), or -1 and *err_r (allocated).  Not inside a
 * transaction of the store's own connection.
 */
#include <stddef.h>
#include "daemon/store/store.h"

int store_aging_promote(store *st, const char *account, long long before, int apply,
			size_t *n_r, char **err_r);
#endif

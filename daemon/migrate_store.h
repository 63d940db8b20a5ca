/* mailmill - ISC licence, see LICENSE */
#ifndef MM_MIGRATE_STORE_H
#define MM_MIGRATE_STORE_H
#include <stdio.h>
#include "daemon/core/cfg.h"

/* mailmilld --migrate-store: state_dir's SQLite store copied into the
 * PostgreSQL store the configuration names, which must be empty; one
 * transaction.  The exit status (sysexits): 0, 78 not configured for
 * PostgreSQL, 66 no SQLite store, 75 anything else (nothing written). */
int migrate_store_main(const cfg *c, FILE *out);
#endif

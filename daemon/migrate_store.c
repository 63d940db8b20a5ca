/* mailmill - ISC licence, see LICENSE */
/*
 * --migrate-store: moving an installation from SQLite to PostgreSQL.  The
 * SQLite store is held with the state lock meanwhile (no daemon or --once
 * run on it), the target gets every row or none (store_copy).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "daemon/core/log.h"
#include "daemon/core/statelock.h"
#include "daemon/migrate_store.h"
#include "daemon/store/store.h"

int
migrate_store_main(const cfg *c, FILE *out)
{
	store *from = NULL, *to = NULL;
	unsigned long long rows = 0;
	char *err = NULL, path[4096];
	int lock_fd = -1, rc = EX_TEMPFAIL;

	if (c->store_driver != CFG_STORE_POSTGRESQL) {
		log_error("--migrate-store copies the SQLite store of state_dir into the PostgreSQL"
			  " store the configuration names: set store = { driver = \"postgresql\";"
			  " conninfo = \"...\"; } in %s", c->path);
		return EX_CONFIG;
	}
	snprintf(path, sizeof(path), "%s/mailmill.db", c->state_dir);
	if (access(path, F_OK) < 0) {
		log_error("--migrate-store: no SQLite store %s: %s", path, strerror(errno));
		return EX_NOINPUT;
	}
	if (statelock_take(c->state_dir, &lock_fd, &err) < 0) {
		log_error("--migrate-store: %s", err);
		free(err);
		return EX_TEMPFAIL;
	}
	if (store_open(c->state_dir, 0, &from, &err) < 0 ||
	    store_open_cfg(c, 0, &to, &err) < 0 ||
	    store_copy(from, to, &rows, &err) < 0) {
		log_error("--migrate-store: %s", err);
		free(err);
	} else {
		fprintf(out, "copied %llu row(s) from %s to %s\n", rows, store_path(from),
			store_path(to));
		rc = EX_OK;
	}
	store_close(&to);
	store_close(&from);
	close(lock_fd);
	return rc;
}

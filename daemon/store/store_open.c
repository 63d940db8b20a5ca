/* mailmill - ISC licence, see LICENSE */
/*
 * Opening the store the configuration names: the one place outside the
 * backends that knows there are two.
 */
#include <stdlib.h>

#include "daemon/core/cfg.h"
#include "daemon/core/secret.h"
#include "daemon/store/store_int.h"
#include "proto/err.h"

int
store_open_pg(const store_pg_conf *pc, int readonly, store **st_r, char **err_r)
{
	secret sec = { .kind = SECRET_FILE, .key = "store.password_file" };
	char *password = NULL;
	store *st;
	int rc;

	*st_r = NULL;
	if (pc->password_file != NULL) {
		sec.value = (char *)pc->password_file;
		if (secret_get(&sec, &password, err_r) < 0)
			return -1;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		secret_wipe(&password);
		err_set(err_r, "out of memory");
		return -1;
	}
	st->readonly = readonly;
	rc = pgs_open(st, pc->conninfo, password, pc->sslmode, pc->sslrootcert, err_r);
	secret_wipe(&password);
	if (rc < 0) {
		store_close(&st);
		return -1;
	}
	*st_r = st;
	return 0;
}

int
store_open_cfg(const cfg *c, int readonly, store **st_r, char **err_r)
{
	store_pg_conf pc = {
		.conninfo = c->store_conninfo, .password_file = c->store_password_file,
		.sslmode = c->store_sslmode, .sslrootcert = c->store_sslrootcert,
	};

	if (c->store_driver == CFG_STORE_POSTGRESQL)
		return store_open_pg(&pc, readonly, st_r, err_r);
	return store_open(c->state_dir, readonly, st_r, err_r);
}

const char *
store_driver(const store *st)
{
	return st->pg != NULL ? "postgresql" : "sqlite";
}

/* mailmill - ISC licence, see LICENSE */
/*
 * Opening the store the configuration names: the one place outside the
 * backends that knows there are two.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon/core/cfg.h"
#include "daemon/core/secret.h"
#include "daemon/store/store_int.h"
#include "proto/err.h"

/*
 * The database password of the last password_file read in this process.
 * The daemon (root) opens the store before it forks workers, which open it
 * again after they became `user` and may no longer read the file: they use
 * the copy they inherited.  A file that can be read is read again (a new
 * password takes effect without a restart).
 */
static char *store_pw_path, *store_pw;

static int
store_pg_password(const char *path, char **pw_r, char **err_r)
{
	secret sec = { .kind = SECRET_FILE, .key = "store.password_file", .value = (char *)path };
	char *why = NULL;

	if (secret_get(&sec, pw_r, &why) == 0) {
		char *p = strdup(path), *copy = strdup(*pw_r);

		if (p != NULL && copy != NULL) {
			free(store_pw_path);
			secret_wipe(&store_pw);
			store_pw_path = p;
			store_pw = copy;
		} else {
			free(p);
			secret_wipe(&copy);
		}
		return 0;
	}
	if (store_pw_path != NULL && strcmp(store_pw_path, path) == 0 &&
	    (*pw_r = strdup(store_pw)) != NULL) {
		free(why);
		return 0;
	}
	err_set(err_r, "%s", why != NULL ? why : "out of memory");
	free(why);
	return -1;
}

int
store_open_pg(const store_pg_conf *pc, int readonly, store **st_r, char **err_r)
{
	char *password = NULL;
	store *st;
	int rc;

	*st_r = NULL;
	if (pc->password_file != NULL && store_pg_password(pc->password_file, &password, err_r) < 0)
		return -1;
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

/* mailmill - ISC licence, see LICENSE */
/*
 * The `store` group's rules that concern several keys: PostgreSQL needs a
 * conninfo, SQLite takes none; the conninfo holds no password (it shows in
 * messages; the password comes from password_file, which must be ours and
 * unreadable to others, like an account's) and no TLS setting (sslmode and
 * sslrootcert are keys of their own, so that the default is a verified one).
 */
#include <stdlib.h>
#include <string.h>

#include "daemon/core/cfg_int.h"

/* The setting store.<name>, or the store group, or NULL: where to point. */
static const config_setting_t *
cfg_store_at(cfg *c, const char *name)
{
	const config_setting_t *g = config_lookup(&c->lc, "store");
	const config_setting_t *s = g != NULL ? config_setting_get_member(g, name) : NULL;

	return s != NULL ? s : g;
}

/* Does the conninfo (keyword=value words, or a URI) set key? */
static int
cfg_conninfo_has(const char *conninfo, const char *key)
{
	size_t n = strlen(key);

	for (const char *p = conninfo; (p = strstr(p, key)) != NULL; p += n) {
		int start = p == conninfo || p[-1] == ' ' || p[-1] == '\t' || p[-1] == '?' ||
			    p[-1] == '&';
		const char *q = p + n;

		while (*q == ' ' || *q == '\t')
			q++;
		if (start && *q == '=')
			return 1;
	}
	return 0;
}

void
cfg_store_check(cfg_errs *e, cfg *c)
{
	static const char *const own_keys[] = { "password", "sslmode", "sslrootcert", NULL };
	char *why = NULL;

	if (c->store_driver != CFG_STORE_POSTGRESQL) {
		if (c->store_conninfo != NULL || c->store_password_file != NULL)
			cfg_err(e, cfg_store_at(c, c->store_conninfo != NULL ? "conninfo" :
						"password_file"), "",
				"store: conninfo and password_file need driver = \"postgresql\"");
		return;
	}
	if (c->store_conninfo == NULL) {
		cfg_err(e, cfg_store_at(c, "driver"), "",
			"store: driver \"postgresql\" needs a conninfo");
		return;
	}
	for (int i = 0; own_keys[i] != NULL; i++) {
		/* user:password@ in a URI is a password too. */
		int uri_pw = i == 0 && strstr(c->store_conninfo, "://") != NULL &&
			     strchr(c->store_conninfo, '@') != NULL &&
			     strchr(strstr(c->store_conninfo, "://") + 3, ':') != NULL &&
			     strchr(strstr(c->store_conninfo, "://") + 3, ':') <
			     strchr(c->store_conninfo, '@');

		if (uri_pw || cfg_conninfo_has(c->store_conninfo, own_keys[i]))
			cfg_err(e, cfg_store_at(c, "conninfo"), "",
				"store: conninfo must not set %s; use store.%s", own_keys[i],
				i == 0 ? "password_file" : own_keys[i]);
	}
	if (c->store_password_file != NULL &&
	    secret_check_file_as("store.password_file", c->store_password_file, &why) < 0) {
		cfg_err(e, cfg_store_at(c, "password_file"), "", "%s",
			why != NULL ? why : "out of memory");
		free(why);
	}
}

/* mailmill - ISC licence, see LICENSE */
#ifndef MM_OAUTH_CONFIG_H
#define MM_OAUTH_CONFIG_H
/*
 * The OAuth 2.0 sign-in of an account or of the smtp relay: an `oauth2`
 * group (mailmill gets, caches and refreshes the tokens itself) or a
 * `token_command` (a helper prints an access token for every connection).
 * Parsed and checked completely by config.c through the two hooks below;
 * provider defaults (endpoints, scopes) are filled in once parsed, so the
 * rest of the daemon never asks which provider it is.
 *
 * Ownership: an oauth_cfg belongs to its cfg_account / cfg_smtp and is freed
 * with oauth_cfg_free.
 */
#include <libconfig.h>
#include "daemon/core/secret.h"

typedef enum { OAUTH_MICROSOFT = 0, OAUTH_GOOGLE, OAUTH_GENERIC } oauth_provider;
typedef enum { OAUTH_GRANT_REFRESH = 0, OAUTH_GRANT_CLIENT } oauth_grant;
/* Which server the token is for: the default scopes differ. */
typedef enum { OAUTH_FOR_POP3 = 0, OAUTH_FOR_SMTP, OAUTH_FOR_IMAP } oauth_for;

typedef struct oauth_cfg {
	int command;                 /* 1: token_command (only `token` below is set) */
	secret token;                /* token_command: kind SECRET_COMMAND */
	oauth_provider provider;
	char *client_id;
	secret client_secret;        /* SECRET_NONE (public client), INLINE or FILE */
	char *tenant;                /* microsoft: default "common" ("organizations" app-only) */
	char *token_url;             /* filled in from the provider when not set */
	char *device_url;            /* NULL: the provider has none (generic without it) */
	char *auth_url;              /* the browser sign-in's authorization endpoint, or NULL */
	char *scope;                 /* filled in from the provider and oauth_for */
	oauth_grant grant;
	char *ca_file;               /* NULL: the system store */
	long long timeout_s;         /* one token request, default 30 */
	const char *file;            /* where the group is; borrowed from libconfig */
	int line;
} oauth_cfg;

/* How config.c is told of a problem: s is the setting to point at (the
 * group when a key is missing), msg one line without the context. */
typedef void oauth_cfg_err_fn(void *arg, const config_setting_t *s, const char *msg);

/* Every key an `oauth2` group accepts, NULL-terminated; anything else is
 * refused.  test_cfg_schema checks each is in mailmill.conf(5). */
extern const char *const oauth_cfg_keys[];

/*
 * Called by config.c for the keys `oauth2` and `token_command` of an
 * account or of `smtp`: 1 if k is one of them (taken, problems reported),
 * 0 if it is not.  *o is created on first use.
 */
int oauth_cfg_setting(const config_setting_t *s, oauth_cfg **o, oauth_cfg_err_fn *err,
		      void *arg);
/*
 * After the group is read: check what needs the whole picture (both
 * `oauth2` and `token_command`, keys the grant needs, password keys mixed
 * in, a tenant for app-only) and fill in the provider's defaults.  g is the
 * account or smtp group; has_password: a password key was set there.
 */
void oauth_cfg_finish(const config_setting_t *g, oauth_cfg *o, oauth_for what, int has_password,
		      oauth_cfg_err_fn *err, void *arg);
void oauth_cfg_free(oauth_cfg **o);
/*
 * For a process about to drop its privileges (a worker): a client_secret_file
 * may be readable by root only, so read it now.  1: *copy is *o with the
 * secret inline (*secret_r, allocated: secret_wipe it after the copy's last
 * use; the copy borrows the rest from o); 0: no file, use o; -1 and *err_r.
 */
int oauth_cfg_pin_secret(const oauth_cfg *o, oauth_cfg *copy, char **secret_r, char **err_r);

const char *oauth_provider_name(oauth_provider p);
#endif

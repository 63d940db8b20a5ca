/* mailmill - ISC licence, see LICENSE */
#ifndef MM_OAUTH_H
#define MM_OAUTH_H
/*
 * OAuth 2.0 access tokens for a sign-in (oauth_config.h): from the cache
 * in the store while fresh (under 80 % of their lifetime), else from the
 * token endpoint with the refresh token (a rotated one replaces the old one
 * atomically) or the client credentials, or from token_command every time.
 * A refresh token the endpoint refuses for good (invalid_grant) puts the
 * sign-in in "needs sign-in": no request is made for it again until
 * oauth_sign_in (the device flow of RFC 8628) succeeds.
 *
 * Tokens and client secrets never appear in an error message.
 */
#include <stdio.h>
#include "daemon/oauth/oauth_config.h"
#include "daemon/oauth/oauth_json.h"
#include "daemon/store/store.h"

typedef enum {
	OAUTH_OK = 0,
	OAUTH_TEMP,      /* endpoint down, slow, 5xx, unreadable; token_command failed */
	OAUTH_SIGNIN,    /* someone must run mailmilld --sign-in */
	OAUTH_REFUSED    /* the endpoint refused the client or scope: configuration */
} oauth_status;

/*
 * An access token for user.  force: never the cached one (the server
 * refused it).  *token_r allocated (wipe with secret_wipe); *cached_r (may
 * be NULL) 1 when it came from the cache, so a refusal is worth one refresh.
 * Errors: *err_r allocated.
 */
oauth_status oauth_token_get(store *st, const oauth_cfg *o, const char *user, int force,
			     char **token_r, int *cached_r, char **err_r);
/* The server refused the token: forget the cached one. */
int oauth_token_refused(store *st, const oauth_cfg *o, const char *user, char **err_r);
/* 1 if the sign-in needs a person (never signed in, or refused for good),
 * with *reason_r (allocated, may be NULL); 0 if not (or no sign-in is
 * involved: token_command, client credentials); -1 on a store error. */
int oauth_needs_signin(store *st, const oauth_cfg *o, const char *user, char **reason_r,
		       char **err_r);
/*
 * The device sign-in (RFC 8628): ask the device endpoint for a code, print
 * on out where to enter it, poll the token endpoint at the interval the
 * server sets (slow_down adds 5 s) until the person signs in, refuses or
 * the code expires; then store the refresh token (and the access token).
 */
oauth_status oauth_sign_in(store *st, const oauth_cfg *o, const char *user, FILE *out,
			   char **err_r);

/*
 * The browser sign-in (authorization code with PKCE and a loopback redirect
 * on 127.0.0.1): for Google, whose device sign-in refuses Gmail's scope, and
 * for a generic provider with an auth_url and no device_url.  oauth_sign_in
 * picks it by itself.
 */
oauth_status oauth_sign_in_browser(store *st, const oauth_cfg *o, const char *user, FILE *out,
				   char **err_r);
/* Its pieces, for the tests: the S256 challenge of a PKCE verifier, and one
 * decoded query parameter of the redirect's request line (both g_free). */
char *oauth_pkce_challenge(const char *verifier);
char *oauth_redirect_param(const char *request_line, const char *name);

/* For oauth.c and oauth_signin.c: the store keys of a sign-in (allocated). */
void oauth_keys(const oauth_cfg *o, const char *user, char **rkey_r, char **akey_r);
/* POST to url and read the JSON answer; OAUTH_OK and *a (any HTTP status
 * with a JSON body; *status_r), OAUTH_TEMP and *err_r otherwise. */
oauth_status oauth_post(const oauth_cfg *o, const char *url, const char *const *kv, size_t n,
			oauth_answer *a, long *status_r, char **err_r);
/* Store a successful token answer; OAUTH_OK, or OAUTH_TEMP (store error). */
oauth_status oauth_keep(store *st, const oauth_cfg *o, const char *user, const oauth_answer *a,
			char **token_r, char **err_r);
#endif

/* mailmill - ISC licence, see LICENSE */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <glib.h>

#include "daemon/oauth/oauth.h"
#include "daemon/oauth/http.h"
#include "daemon/core/log.h"
#include "proto/err.h"

/* A server that gives no lifetime: assume an hour (RFC 6749 leaves it open). */
#define OAUTH_DEFAULT_LIFETIME 3600LL
/* Refresh at this share of the lifetime (per cent). */
#define OAUTH_REFRESH_AT 80

void
oauth_keys(const oauth_cfg *o, const char *user, char **rkey_r, char **akey_r)
{
	/*
	 * Not the token URL: a tenant or port written differently is still the
	 * same sign-in.  The scope is part of it: a refresh token refused for
	 * one scope (consent missing for SMTP.Send) must not put the POP3
	 * sign-in in "needs sign-in".  So POP3 and SMTP share the tokens when
	 * provider, client, user and scope agree (Gmail), and sign in apart
	 * when the scopes differ (Microsoft's defaults).
	 */
	char *k = g_strdup_printf("%s\n%s\n%s\n%s", oauth_provider_name(o->provider),
				  o->client_id, user, o->scope);

	if (rkey_r != NULL)
		*rkey_r = strdup(k);
	if (akey_r != NULL)
		*akey_r = strdup(k);
	g_free(k);
}

oauth_status
oauth_post(const oauth_cfg *o, const char *url, const char *const *kv, size_t n,
	   oauth_answer *a, long *status_r, char **err_r)
{
	http_field f[12];
	http_answer ans;
	char *csecret = NULL, *why = NULL;
	size_t nf = 0;
	int rc;

	memset(a, 0, sizeof *a);
	*status_r = 0;
	for (size_t i = 0; i + 1 < n && nf < 10; i += 2)
		f[nf++] = (http_field){ kv[i], kv[i + 1] };
	f[nf++] = (http_field){ "client_id", o->client_id };
	if (o->client_secret.kind != SECRET_NONE) {
		if (secret_get(&o->client_secret, &csecret, &why) < 0) {
			err_set(err_r, "client secret: %s", why != NULL ? why : "error");
			free(why);
			return OAUTH_TEMP;
		}
		f[nf++] = (http_field){ "client_secret", csecret };
	}
	rc = http_post_form(url, f, nf, o->ca_file, (long)o->timeout_s, OAUTH_JSON_MAX, &ans, &why);
	secret_wipe(&csecret);
	if (rc < 0) {
		err_set(err_r, "token endpoint: %s", why != NULL ? why : "error");
		free(why);
		return OAUTH_TEMP;
	}
	*status_r = ans.status;
	if (oauth_json_parse(ans.body, ans.len, a, &why) < 0) {
		err_set(err_r, "token endpoint %s: HTTP %ld, the answer is unreadable (%s)", url,
			ans.status, why != NULL ? why : "error");
		free(why);
		http_answer_clear(&ans);
		return OAUTH_TEMP;
	}
	http_answer_clear(&ans);
	return OAUTH_OK;
}

oauth_status
oauth_keep(store *st, const oauth_cfg *o, const char *user, const oauth_answer *a,
	   char **token_r, char **err_r)
{
	long long now = (long long)time(NULL);
	long long life = a->expires_in > 0 ? a->expires_in : OAUTH_DEFAULT_LIFETIME;
	char *rkey = NULL, *akey = NULL, *why = NULL;
	int rc;

	oauth_keys(o, user, &rkey, &akey);
	if (a->token_type != NULL && g_ascii_strcasecmp(a->token_type, "bearer") != 0) {
		/* The access token is of no use, but a rotated refresh token may
		 * be the only one the endpoint still takes: keep it. */
		if (o->grant == OAUTH_GRANT_REFRESH && a->refresh_token != NULL &&
		    store_token_signed_in(st, rkey, a->refresh_token, now, &why) < 0) {
			log_error("oauth: %s: cannot keep the rotated refresh token: %s", user,
				  why != NULL ? why : "store error");
			free(why);
		}
		free(rkey);
		free(akey);
		err_set(err_r, "token endpoint: token_type \"%.40s\", not Bearer", a->token_type);
		return OAUTH_TEMP;
	}
	rc = store_token_put(st, o->grant == OAUTH_GRANT_REFRESH ? rkey : NULL, akey,
			     a->access_token, now, now + life,
			     o->grant == OAUTH_GRANT_REFRESH ? a->refresh_token : NULL, &why);
	free(rkey);
	free(akey);
	if (rc < 0) {
		err_set(err_r, "cannot keep the token: %s", why != NULL ? why : "store error");
		free(why);
		return OAUTH_TEMP;
	}
	if ((*token_r = strdup(a->access_token)) == NULL) {
		err_set(err_r, "out of memory");
		return OAUTH_TEMP;
	}
	log_debug("oauth: new access token for %s, valid %llds%s", user, life,
		  a->refresh_token != NULL && o->grant == OAUTH_GRANT_REFRESH ?
		  ", refresh token rotated" : "");
	return OAUTH_OK;
}

/* The endpoint said no: what that means for the run. */
static oauth_status
oauth_refusal(store *st, const oauth_cfg *o, const char *rkey, const char *refresh,
	      const oauth_answer *a, long status, char **err_r)
{
	const char *e = a->error != NULL ? a->error : "";
	char reason[400], *why = NULL;
	int r;

	snprintf(reason, sizeof reason, "%s%s%.300s", a->error != NULL ? a->error : "no error code",
		 a->error_description != NULL ? ": " : "",
		 a->error_description != NULL ? a->error_description : "");
	if (status >= 500 || status == 429 || strcmp(e, "temporarily_unavailable") == 0 ||
	    (a->error == NULL && a->access_token == NULL)) {
		err_set(err_r, "token endpoint: HTTP %ld (%s): try again later", status, reason);
		return OAUTH_TEMP;
	}
	if (strcmp(e, "invalid_grant") == 0 && o->grant == OAUTH_GRANT_REFRESH) {
		r = store_token_needs_signin(st, rkey, refresh, reason, (long long)time(NULL), &why);
		if (r < 0) {
			err_set(err_r, "the refresh token was refused (%s), and the store: %s",
				reason, why != NULL ? why : "error");
			free(why);
			return OAUTH_TEMP;
		}
		if (r > 0) {
			/* Another process rotated it meanwhile: the new one is kept. */
			err_set(err_r, "the refresh token was refused (%s), but it had been "
				"replaced meanwhile: the new one is tried on the next run", reason);
			return OAUTH_TEMP;
		}
		err_set(err_r, "the refresh token was refused (%s)", reason);
		return OAUTH_SIGNIN;
	}
	err_set(err_r, "token endpoint refused the request: HTTP %ld (%s)", status, reason);
	return OAUTH_REFUSED;
}

/* A token from token_command, every time. */
static oauth_status
oauth_from_command(const oauth_cfg *o, char **token_r, char **err_r)
{
	char *why = NULL;

	if (secret_get(&o->token, token_r, &why) < 0) {
		err_set(err_r, "%s", why != NULL ? why : "token_command failed");
		free(why);
		return OAUTH_TEMP;
	}
	for (const char *p = *token_r; *p; p++) {
		if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e) {
			secret_wipe(token_r);
			err_set(err_r, "token_command %s: the token holds a space or a byte "
				"outside printable ASCII", o->token.argv[0]);
			return OAUTH_TEMP;
		}
	}
	return OAUTH_OK;
}

oauth_status
oauth_token_get(store *st, const oauth_cfg *o, const char *user, int force, char **token_r,
		int *cached_r, char **err_r)
{
	long long now = (long long)time(NULL);
	char *rkey = NULL, *akey = NULL, *why = NULL;
	store_token t;
	oauth_answer a;
	oauth_status rc;
	long status;

	*token_r = NULL;
	*err_r = NULL;
	if (cached_r != NULL)
		*cached_r = 0;
	if (o->command)
		return oauth_from_command(o, token_r, err_r);
	oauth_keys(o, user, &rkey, &akey);
	if (store_token_get(st, o->grant == OAUTH_GRANT_REFRESH ? rkey : NULL, akey, &t, &why) < 0) {
		err_set(err_r, "cannot read the token cache: %s", why != NULL ? why : "error");
		free(why);
		rc = OAUTH_TEMP;
		goto out;
	}
	if (!force && t.access_token != NULL && t.expires > t.obtained &&
	    now >= t.obtained && now - t.obtained < (t.expires - t.obtained) * OAUTH_REFRESH_AT / 100) {
		*token_r = t.access_token;
		t.access_token = NULL;
		if (cached_r != NULL)
			*cached_r = 1;
		rc = OAUTH_OK;
		goto out;
	}
	if (o->grant == OAUTH_GRANT_REFRESH && (t.needs_signin || t.refresh_token == NULL)) {
		if (t.needs_signin)
			err_set(err_r, "the refresh token was refused earlier (%s)",
				t.reason != NULL ? t.reason : "invalid_grant");
		else
			err_set(err_r, "never signed in");
		rc = OAUTH_SIGNIN;
		goto out;
	}
	if (o->grant == OAUTH_GRANT_REFRESH) {
		const char *kv[] = { "grant_type", "refresh_token", "refresh_token", t.refresh_token,
				     "scope", o->scope };
		rc = oauth_post(o, o->token_url, kv, 6, &a, &status, err_r);
	} else {
		const char *kv[] = { "grant_type", "client_credentials", "scope", o->scope };
		rc = oauth_post(o, o->token_url, kv, 4, &a, &status, err_r);
	}
	if (rc != OAUTH_OK)
		goto out;
	if (status == 200 && a.access_token != NULL)
		rc = oauth_keep(st, o, user, &a, token_r, err_r);
	else
		rc = oauth_refusal(st, o, rkey, t.refresh_token, &a, status, err_r);
	oauth_answer_clear(&a);
out:
	store_token_clear(&t);
	free(rkey);
	free(akey);
	return rc;
}

int
oauth_token_refused(store *st, const oauth_cfg *o, const char *user, char **err_r)
{
	char *akey = NULL;
	int rc;

	if (o->command)
		return 0;
	oauth_keys(o, user, NULL, &akey);
	rc = store_token_drop_access(st, akey, err_r);
	free(akey);
	return rc;
}

int
oauth_needs_signin(store *st, const oauth_cfg *o, const char *user, char **reason_r,
		   char **err_r)
{
	char *rkey = NULL;
	store_token t;
	int rc;

	if (reason_r != NULL)
		*reason_r = NULL;
	if (o->command || o->grant != OAUTH_GRANT_REFRESH)
		return 0;
	oauth_keys(o, user, &rkey, NULL);
	rc = store_token_get(st, rkey, NULL, &t, err_r);
	free(rkey);
	if (rc < 0)
		return -1;
	rc = t.needs_signin || t.refresh_token == NULL;
	if (rc && reason_r != NULL)
		*reason_r = strdup(t.needs_signin && t.reason != NULL ? t.reason : "never signed in");
	store_token_clear(&t);
	return rc;
}

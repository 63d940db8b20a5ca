/* mailmill - ISC licence, see LICENSE */
/* The device sign-in of RFC 8628: a person signs in elsewhere (a phone, a
 * laptop), so it works over SSH on a host without a browser. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <glib.h>

#include "daemon/oauth/oauth.h"
#include "daemon/core/log.h"
#include "proto/err.h"

/* RFC 8628 3.5: a slow_down adds 5 s to the interval. */
#define SIGNIN_SLOW_DOWN 5
/* The interval when the server gives none (RFC 8628 3.2). */
#define SIGNIN_INTERVAL 5
#define SIGNIN_INTERVAL_MAX 300
/* A code valid longer than this is not waited for. */
#define SIGNIN_WAIT_MAX 3600
/* How long past the code's lifetime a silent server is polled. */
#define SIGNIN_GRACE 10

static void
signin_sleep(long long s)
{
	struct timespec ts = { (time_t)s, 0 };

	while (nanosleep(&ts, &ts) < 0)
		;
}

/* The device endpoint's answer: a code for the person and one for us. */
static oauth_status
signin_start(const oauth_cfg *o, oauth_answer *a, char **err_r)
{
	const char *kv[] = { "scope", o->scope };
	long status;
	oauth_status rc = oauth_post(o, o->device_url, kv, 2, a, &status, err_r);

	if (rc != OAUTH_OK)
		return rc;
	if (status != 200 || a->device_code == NULL || a->user_code == NULL ||
	    (a->verification_uri == NULL && a->verification_uri_complete == NULL)) {
		err_set(err_r, "device endpoint %s: HTTP %ld: %s%s%.300s%s", o->device_url, status,
			 a->error != NULL ? a->error : "no device code in the answer",
			 a->error_description != NULL ? ": " : "",
			 a->error_description != NULL ? a->error_description : "",
			 o->provider == OAUTH_GOOGLE && a->error != NULL &&
			 strcmp(a->error, "invalid_scope") == 0 ?
			 " (Google does not allow Gmail's scope in the device sign-in: see "
			 "README, \"Gmail and Google Workspace\")" : "");
		rc = status >= 500 || status == 429 ? OAUTH_TEMP : OAUTH_REFUSED;
		oauth_answer_clear(a);
		return rc;
	}
	return OAUTH_OK;
}

oauth_status
oauth_sign_in(store *st, const oauth_cfg *o, const char *user, FILE *out, char **err_r)
{
	oauth_answer dev, a;
	oauth_status rc;
	long long interval, deadline;
	char *token = NULL, *rkey = NULL, *why = NULL;

	*err_r = NULL;
	if (o->command || o->grant != OAUTH_GRANT_REFRESH) {
		err_set(err_r, "%s: nobody signs in: %s", user,
			 o->command ? "the token comes from token_command" :
			 "grant \"client_credentials\" needs no person");
		return OAUTH_REFUSED;
	}
	/* Google refuses Gmail's scope in its device sign-in. */
	if (o->provider == OAUTH_GOOGLE || (o->device_url == NULL && o->auth_url != NULL))
		return oauth_sign_in_browser(st, o, user, out, err_r);
	if (o->device_url == NULL) {
		err_set(err_r, "oauth2 of %s has neither 'device_url' nor 'auth_url' (provider "
			 "\"generic\" needs one for --sign-in)", user);
		return OAUTH_REFUSED;
	}
	if ((rc = signin_start(o, &dev, err_r)) != OAUTH_OK)
		return rc;
	interval = dev.interval > 0 ? dev.interval : SIGNIN_INTERVAL;
	if (interval > SIGNIN_INTERVAL_MAX)
		interval = SIGNIN_INTERVAL_MAX;
	deadline = (long long)time(NULL) +
		   (dev.expires_in > 0 && dev.expires_in < SIGNIN_WAIT_MAX ? dev.expires_in :
		    SIGNIN_WAIT_MAX);
	fprintf(out, "To sign in %s, open %s\nand enter the code %s\n", user,
		dev.verification_uri != NULL ? dev.verification_uri : dev.verification_uri_complete,
		dev.user_code);
	if (dev.verification_uri_complete != NULL && dev.verification_uri != NULL)
		fprintf(out, "(or open %s, which holds the code)\n", dev.verification_uri_complete);
	fprintf(out, "Waiting for the sign-in (the code is valid for %lld s)...\n",
		deadline - (long long)time(NULL));
	fflush(out);

	for (;;) {
		const char *kv[] = { "grant_type", "urn:ietf:params:oauth:grant-type:device_code",
				     "device_code", dev.device_code };
		long status;

		signin_sleep(interval);
		/* The server says expired_token; this only stops a server that
		 * never does. */
		if ((long long)time(NULL) > deadline + interval + SIGNIN_GRACE) {
			err_set(err_r, "the code expired before the sign-in; run --sign-in again");
			rc = OAUTH_SIGNIN;
			break;
		}
		rc = oauth_post(o, o->token_url, kv, 4, &a, &status, err_r);
		if (rc == OAUTH_TEMP) {
			/* A lost answer is not the end of a sign-in: keep polling. */
			log_warn("sign-in: %s (polling on)", *err_r);
			free(*err_r);
			*err_r = NULL;
			continue;
		}
		if (status == 200 && a.access_token != NULL) {
			if (a.refresh_token == NULL) {
				err_set(err_r, "signed in, but the server gave no refresh token: "
					 "the scope needs offline_access (Microsoft) or the client "
					 "is not allowed to refresh");
				oauth_answer_clear(&a);
				rc = OAUTH_REFUSED;
				break;
			}
			oauth_keys(o, user, &rkey, NULL);
			if (store_token_signed_in(st, rkey, a.refresh_token, (long long)time(NULL),
						  &why) < 0) {
				err_set(err_r, "signed in, but the token cannot be stored: %s",
					 why != NULL ? why : "error");
				free(why);
				rc = OAUTH_TEMP;
			} else {
				rc = oauth_keep(st, o, user, &a, &token, err_r);
				secret_wipe(&token);
			}
			free(rkey);
			oauth_answer_clear(&a);
			if (rc == OAUTH_OK)
				fprintf(out, "Signed in: the refresh token for %s is stored in the "
					"state directory; mailmill refreshes it from now on.\n", user);
			break;
		}
		if (a.error != NULL && strcmp(a.error, "authorization_pending") == 0) {
			oauth_answer_clear(&a);
			continue;
		}
		if (a.error != NULL && strcmp(a.error, "slow_down") == 0) {
			interval += SIGNIN_SLOW_DOWN;
			if (interval > SIGNIN_INTERVAL_MAX)
				interval = SIGNIN_INTERVAL_MAX;
			oauth_answer_clear(&a);
			continue;
		}
		if (a.error != NULL && strcmp(a.error, "expired_token") == 0) {
			err_set(err_r, "the code expired before the sign-in; run --sign-in again");
			rc = OAUTH_SIGNIN;
		} else if (a.error != NULL && strcmp(a.error, "access_denied") == 0) {
			err_set(err_r, "the sign-in was refused (access_denied)%s%.300s",
				 a.error_description != NULL ? ": " : "",
				 a.error_description != NULL ? a.error_description : "");
			rc = OAUTH_SIGNIN;
		} else {
			err_set(err_r, "token endpoint: HTTP %ld: %s%s%.300s", status,
				 a.error != NULL ? a.error : "no token in the answer",
				 a.error_description != NULL ? ": " : "",
				 a.error_description != NULL ? a.error_description : "");
			rc = status >= 500 ? OAUTH_TEMP : OAUTH_REFUSED;
		}
		oauth_answer_clear(&a);
		break;
	}
	oauth_answer_clear(&dev);
	return rc;
}

/* mailmill - ISC licence, see LICENSE */
/*
 * The token cache (store_token_*) and the token manager's decisions that
 * need no token endpoint (daemon/oauth.c), against a real SQLite file in a
 * temporary directory: fresh tokens come from the cache, tokens past 80 %
 * of their lifetime do not, a rotated refresh token replaces the old one in
 * the same transaction, a sign-in that needs a person makes no request,
 * POP3 and SMTP share one token when their scopes agree, token_command runs
 * every time and reports its stderr.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "daemon/oauth.h"
#include "daemon/store.h"

static char tmpdir[256];
static char statedir[512];
static int case_no;
static store *st;

static int
setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/mm-test-oauth.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static int
each_setup(void **state)
{
	char *err = NULL;

	snprintf(statedir, sizeof(statedir), "%s/s%d", tmpdir, ++case_no);
	if (store_open(statedir, 0, &st, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return 0;
}

static int
each_teardown(void **state)
{
	store_close(&st);
	return 0;
}

/* A sign-in at a token endpoint nobody listens on: a request would fail
 * with OAUTH_TEMP, so OAUTH_OK or OAUTH_SIGNIN prove none was made. */
static void
oauth_fill(oauth_cfg *o, const char *scope)
{
	memset(o, 0, sizeof *o);
	o->provider = OAUTH_GENERIC;
	o->client_id = (char *)"client1";
	o->token_url = (char *)"https://127.0.0.1:1/token";
	o->scope = (char *)scope;
	o->timeout_s = 5;
}

static long long
now_s(void)
{
	return (long long)time(NULL);
}

static void
test_cache_roundtrip(void **state)
{
	store_token t;
	char *err = NULL;

	assert_int_equal(store_token_get(st, "r", "a", &t, &err), 0);
	assert_null(t.access_token);
	assert_null(t.refresh_token);
	assert_int_equal(t.needs_signin, 0);

	assert_int_equal(store_token_signed_in(st, "r", "rt-1", 100, &err), 0);
	assert_int_equal(store_token_put(st, "r", "a", "at-1", 100, 3700, NULL, &err), 0);
	assert_int_equal(store_token_get(st, "r", "a", &t, &err), 0);
	assert_string_equal(t.access_token, "at-1");
	assert_string_equal(t.refresh_token, "rt-1");
	assert_int_equal(t.obtained, 100);
	assert_int_equal(t.expires, 3700);
	store_token_clear(&t);

	/* Rotation: the new refresh token with the new access token. */
	assert_int_equal(store_token_put(st, "r", "a", "at-2", 200, 3800, "rt-2", &err), 0);
	assert_int_equal(store_token_get(st, "r", "a", &t, &err), 0);
	assert_string_equal(t.access_token, "at-2");
	assert_string_equal(t.refresh_token, "rt-2");
	store_token_clear(&t);

	/* A refused access token is forgotten, the refresh token stays. */
	assert_int_equal(store_token_drop_access(st, "a", &err), 0);
	assert_int_equal(store_token_get(st, "r", "a", &t, &err), 0);
	assert_null(t.access_token);
	assert_string_equal(t.refresh_token, "rt-2");
	store_token_clear(&t);

	/* invalid_grant: the refresh token is gone, the reason kept, access
	 * tokens of the sign-in forgotten. */
	assert_int_equal(store_token_put(st, "r", "a", "at-3", 300, 3900, NULL, &err), 0);
	assert_int_equal(store_token_needs_signin(st, "r", "invalid_grant: revoked", 400, &err), 0);
	assert_int_equal(store_token_get(st, "r", "a", &t, &err), 0);
	assert_null(t.access_token);
	assert_null(t.refresh_token);
	assert_int_equal(t.needs_signin, 1);
	assert_string_equal(t.reason, "invalid_grant: revoked");
	store_token_clear(&t);

	/* A new sign-in clears it. */
	assert_int_equal(store_token_signed_in(st, "r", "rt-9", 500, &err), 0);
	assert_int_equal(store_token_get(st, "r", NULL, &t, &err), 0);
	assert_int_equal(t.needs_signin, 0);
	assert_string_equal(t.refresh_token, "rt-9");
	assert_null(t.reason);
	store_token_clear(&t);

	/* Bad arguments are refused, not written. */
	assert_int_equal(store_token_put(st, NULL, "a", "x", 1, 2, "rt", &err), -1);
	free(err);
}

/* The rotation is one transaction: when the refresh token cannot be
 * written, the access token that came with it is not kept either. */
static void
test_rotation_atomic(void **state)
{
	char path[700], *err = NULL;
	store_token t;
	sqlite3 *db;

	assert_int_equal(store_token_signed_in(st, "r", "rt-1", 100, &err), 0);
	snprintf(path, sizeof path, "%s/mailmill.db", statedir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TRIGGER no_rotate BEFORE UPDATE ON oauth_refresh"
				      " BEGIN SELECT RAISE(ABORT, 'disk says no'); END;",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_token_put(st, "r", "a", "at-2", 200, 3800, "rt-2", &err), -1);
	assert_non_null(strstr(err, "disk says no"));
	free(err);
	err = NULL;
	assert_int_equal(store_token_get(st, "r", "a", &t, &err), 0);
	assert_null(t.access_token);
	assert_string_equal(t.refresh_token, "rt-1");
	store_token_clear(&t);
}

static void
test_fresh_from_cache(void **state)
{
	oauth_cfg o;
	char *rkey = NULL, *akey = NULL, *tok = NULL, *err = NULL;
	int cached = 0;

	oauth_fill(&o, "pop");
	oauth_keys(&o, "u@example.org", &rkey, &akey);
	/* 10 s into a 3600 s lifetime. */
	assert_int_equal(store_token_put(st, rkey, akey, "at-fresh", now_s() - 10, now_s() + 3590,
					 "rt-1", &err), 0);
	assert_int_equal(oauth_token_get(st, &o, "u@example.org", 0, &tok, &cached, &err), OAUTH_OK);
	assert_string_equal(tok, "at-fresh");
	assert_int_equal(cached, 1);
	free(tok);
	tok = NULL;
	assert_int_equal(oauth_needs_signin(st, &o, "u@example.org", NULL, &err), 0);

	/* force (the server refused it): a request, which fails here. */
	assert_int_equal(oauth_token_get(st, &o, "u@example.org", 1, &tok, &cached, &err),
			 OAUTH_TEMP);
	assert_null(tok);
	assert_non_null(strstr(err, "token endpoint"));
	assert_null(strstr(err, "rt-1"));
	free(err);
	free(rkey);
	free(akey);
}

/* Past 80 % of the lifetime the cached token is not used: a refresh is
 * tried (and here fails: the endpoint is down, a temporary failure). */
static void
test_stale_refreshes(void **state)
{
	oauth_cfg o;
	char *rkey = NULL, *akey = NULL, *tok = NULL, *err = NULL;

	oauth_fill(&o, "pop");
	oauth_keys(&o, "u@example.org", &rkey, &akey);
	assert_int_equal(store_token_put(st, rkey, akey, "at-old", now_s() - 85, now_s() + 15,
					 "rt-1", &err), 0);
	assert_int_equal(oauth_token_get(st, &o, "u@example.org", 0, &tok, NULL, &err), OAUTH_TEMP);
	assert_null(tok);
	assert_non_null(strstr(err, "127.0.0.1"));
	free(err);
	free(rkey);
	free(akey);
}

/* Needs sign-in, or never signed in: no request at all (OAUTH_SIGNIN, not
 * the OAUTH_TEMP a request to the dead endpoint would give). */
static void
test_needs_signin_no_request(void **state)
{
	oauth_cfg o;
	char *rkey = NULL, *tok = NULL, *err = NULL, *reason = NULL;

	oauth_fill(&o, "pop");
	assert_int_equal(oauth_token_get(st, &o, "u@example.org", 0, &tok, NULL, &err),
			 OAUTH_SIGNIN);
	assert_non_null(strstr(err, "never signed in"));
	free(err);
	assert_int_equal(oauth_needs_signin(st, &o, "u@example.org", &reason, &err), 1);
	assert_string_equal(reason, "never signed in");
	free(reason);

	oauth_keys(&o, "u@example.org", &rkey, NULL);
	assert_int_equal(store_token_needs_signin(st, rkey, "invalid_grant: AADSTS50173", 1, &err), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(oauth_token_get(st, &o, "u@example.org", i > 0, &tok, NULL, &err),
				 OAUTH_SIGNIN);
		assert_null(tok);
		assert_non_null(strstr(err, "AADSTS50173"));
		free(err);
	}
	assert_int_equal(oauth_needs_signin(st, &o, "u@example.org", &reason, &err), 1);
	assert_string_equal(reason, "invalid_grant: AADSTS50173");
	free(reason);
	free(rkey);
}

/* POP3 and SMTP with the same client, user and scope share the token;
 * another scope does not get it, but shares the refresh token. */
static void
test_shared_between_pop3_and_smtp(void **state)
{
	oauth_cfg pop, smtp, other;
	char *rkey = NULL, *akey = NULL, *tok = NULL, *err = NULL;

	oauth_fill(&pop, "https://mail.google.com/");
	oauth_fill(&smtp, "https://mail.google.com/");
	oauth_fill(&other, "SMTP.Send");
	oauth_keys(&pop, "u@example.org", &rkey, &akey);
	assert_int_equal(store_token_put(st, rkey, akey, "at-shared", now_s(), now_s() + 3600,
					 "rt-1", &err), 0);
	assert_int_equal(oauth_token_get(st, &smtp, "u@example.org", 0, &tok, NULL, &err), OAUTH_OK);
	assert_string_equal(tok, "at-shared");
	free(tok);
	assert_int_equal(oauth_needs_signin(st, &other, "u@example.org", NULL, &err), 0);
	assert_int_equal(oauth_token_get(st, &other, "u@example.org", 0, &tok, NULL, &err),
			 OAUTH_TEMP);
	free(err);
	/* Another user is another sign-in. */
	assert_int_equal(oauth_needs_signin(st, &pop, "v@example.org", NULL, &err), 1);
	free(rkey);
	free(akey);
}

/* Client credentials: no refresh token and never "needs sign-in". */
static void
test_client_credentials(void **state)
{
	oauth_cfg o;
	char *akey = NULL, *tok = NULL, *err = NULL;

	oauth_fill(&o, "https://outlook.office365.com/.default");
	o.grant = OAUTH_GRANT_CLIENT;
	assert_int_equal(oauth_needs_signin(st, &o, "shared@example.org", NULL, &err), 0);
	oauth_keys(&o, "shared@example.org", NULL, &akey);
	assert_int_equal(store_token_put(st, NULL, akey, "at-app", now_s(), now_s() + 3600, NULL,
					 &err), 0);
	assert_int_equal(oauth_token_get(st, &o, "shared@example.org", 0, &tok, NULL, &err),
			 OAUTH_OK);
	assert_string_equal(tok, "at-app");
	free(tok);
	free(akey);
}

static void
write_script(const char *name, const char *text, char *path, size_t size)
{
	FILE *f;

	snprintf(path, size, "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, 0700), 0);
}

/* token_command: run every time (no cache), a 4 KB token is fine, a failure
 * carries its stderr, a token that cannot go on a SASL line is refused. */
static void
test_token_command(void **state)
{
	char path[600], *argv[2] = { path, NULL }, *tok = NULL, *err = NULL;
	oauth_cfg o;

	memset(&o, 0, sizeof o);
	o.command = 1;
	o.token.kind = SECRET_COMMAND;
	o.token.argv = argv;
	o.token.key = "token_command";
	o.token.max = 65537;
	o.token.want_stderr = 1;

	write_script("big", "#!/bin/sh\nhead -c 4096 /dev/zero | tr '\\0' 'T'; echo\n", path,
		     sizeof path);
	assert_int_equal(oauth_token_get(st, &o, "u", 0, &tok, NULL, &err), OAUTH_OK);
	assert_int_equal(strlen(tok), 4096);
	free(tok);

	write_script("fails", "#!/bin/sh\necho 'helper: the keyring is locked' >&2\nexit 3\n",
		     path, sizeof path);
	assert_int_equal(oauth_token_get(st, &o, "u", 0, &tok, NULL, &err), OAUTH_TEMP);
	assert_null(tok);
	assert_non_null(strstr(err, "exited with status 3"));
	assert_non_null(strstr(err, "helper: the keyring is locked"));
	assert_non_null(strstr(err, "token_command"));
	free(err);

	write_script("spaces", "#!/bin/sh\necho 'two words'\n", path, sizeof path);
	assert_int_equal(oauth_token_get(st, &o, "u", 0, &tok, NULL, &err), OAUTH_TEMP);
	assert_null(strstr(err, "two words"));
	free(err);

	write_script("silent", "#!/bin/sh\nexit 0\n", path, sizeof path);
	assert_int_equal(oauth_token_get(st, &o, "u", 0, &tok, NULL, &err), OAUTH_TEMP);
	assert_non_null(strstr(err, "the token is empty"));
	free(err);
	assert_int_equal(oauth_needs_signin(st, &o, "u", NULL, &err), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cache_roundtrip, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_rotation_atomic, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_fresh_from_cache, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_stale_refreshes, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_needs_signin_no_request, each_setup,
						each_teardown),
		cmocka_unit_test_setup_teardown(test_shared_between_pop3_and_smtp, each_setup,
						each_teardown),
		cmocka_unit_test_setup_teardown(test_client_credentials, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_token_command, each_setup, each_teardown),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

/* mailmill - ISC licence, see LICENSE */
/*
 * The token cache (store_token_*) and the token manager's decisions that
 * need no token endpoint (daemon/oauth/oauth.c), against a real SQLite file in a
 * temporary directory: fresh tokens come from the cache, tokens past 80 %
 * of their lifetime do not, a rotated refresh token replaces the old one in
 * the same transaction, a sign-in that needs a person makes no request,
 * POP3 and SMTP share one token when their scopes agree, token_command runs
 * every time and reports its stderr.
 */
#define _GNU_SOURCE /* nftw, in tmpdir.h */
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
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "daemon/oauth/oauth.h"
#include "daemon/store/store.h"
#include "tests/unit/store_backend.h"

static char topdir[] = "/tmp/mm-test-oauth.XXXXXX";
#include "tests/unit/tmpdir.h"

static char statedir[512];
static int case_no;
static store *st;

static int
each_setup(void **state)
{
	char *err = NULL;

	snprintf(statedir, sizeof(statedir), "%s/s%d", topdir, ++case_no);
	tsb_reset();
	if (tsb_open(statedir, 0, &st, &err) < 0) {
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
	assert_int_equal(store_token_needs_signin(st, "r", NULL, "invalid_grant: revoked", 400, &err), 0);
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

	assert_int_equal(store_token_signed_in(st, "r", "rt-1", 100, &err), 0);
	snprintf(path, sizeof path, "%s/mailmill.db", statedir);
	tsb_sql_exec(path, tsb_pg() ?
		     "CREATE FUNCTION no_rotate() RETURNS trigger LANGUAGE plpgsql AS"
		     " $$ BEGIN RAISE EXCEPTION 'disk says no'; END $$;"
		     " CREATE TRIGGER no_rotate BEFORE UPDATE ON oauth_refresh FOR EACH ROW"
		     " EXECUTE FUNCTION no_rotate();" :
		     "CREATE TRIGGER no_rotate BEFORE UPDATE ON oauth_refresh"
		     " BEGIN SELECT RAISE(ABORT, 'disk says no'); END;");
	assert_int_equal(store_token_put(st, "r", "a", "at-2", 200, 3800, "rt-2", &err), -1);
	assert_non_null(strstr(err, "disk says no"));
	free(err);
	err = NULL;
	assert_int_equal(store_token_get(st, "r", "a", &t, &err), 0);
	assert_null(t.access_token);
	assert_string_equal(t.refresh_token, "rt-1");
	store_token_clear(&t);
}

/* invalid_grant for a refresh token that another process (POP3 and SMTP
 * share a sign-in) has rotated meanwhile: the new one is not thrown away. */
static void
test_refused_after_rotation(void **state)
{
	char *err = NULL;
	store_token t;

	assert_int_equal(store_token_signed_in(st, "r", "rt-1", 100, &err), 0);
	/* The other process refreshes first: rt-1 -> rt-2. */
	assert_int_equal(store_token_put(st, "r", "a", "at-2", 200, 3800, "rt-2", &err), 0);
	/* This one's request with rt-1 was refused. */
	assert_int_equal(store_token_needs_signin(st, "r", "rt-1", "invalid_grant: rotated", 300,
						  &err), 1);
	assert_int_equal(store_token_get(st, "r", "a", &t, &err), 0);
	assert_string_equal(t.refresh_token, "rt-2");
	assert_string_equal(t.access_token, "at-2");
	assert_int_equal(t.needs_signin, 0);
	store_token_clear(&t);
	/* The stored one refused: needs sign-in. */
	assert_int_equal(store_token_needs_signin(st, "r", "rt-2", "invalid_grant: revoked", 400,
						  &err), 0);
	assert_int_equal(store_token_get(st, "r", "a", &t, &err), 0);
	assert_null(t.refresh_token);
	assert_null(t.access_token);
	assert_int_equal(t.needs_signin, 1);
	assert_string_equal(t.reason, "invalid_grant: revoked");
	store_token_clear(&t);
}

/* An answer whose access token is not a Bearer one is not used, but the
 * refresh token it rotated is kept (the old one may be dead already). */
static void
test_not_bearer_keeps_rotation(void **state)
{
	oauth_cfg o;
	oauth_answer a;
	char *rkey = NULL, *tok = NULL, *err = NULL;
	store_token t;

	oauth_fill(&o, "pop");
	oauth_keys(&o, "u@example.org", &rkey, NULL);
	assert_int_equal(store_token_signed_in(st, rkey, "rt-1", 100, &err), 0);
	memset(&a, 0, sizeof a);
	a.access_token = (char *)"at-mac";
	a.token_type = (char *)"mac";
	a.refresh_token = (char *)"rt-2";
	a.expires_in = 3600;
	assert_int_equal(oauth_keep(st, &o, "u@example.org", &a, &tok, &err), OAUTH_TEMP);
	assert_null(tok);
	assert_non_null(strstr(err, "not Bearer"));
	free(err);
	err = NULL;
	assert_int_equal(store_token_get(st, rkey, NULL, &t, &err), 0);
	assert_string_equal(t.refresh_token, "rt-2");
	store_token_clear(&t);
	free(rkey);
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
	assert_int_equal(store_token_needs_signin(st, rkey, NULL, "invalid_grant: AADSTS50173", 1, &err), 0);
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

/* POP3 and SMTP with the same client, user and scope share the tokens;
 * another scope is another sign-in (its refusal must not lock POP3 out). */
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
	assert_int_equal(oauth_needs_signin(st, &other, "u@example.org", NULL, &err), 1);
	assert_int_equal(oauth_token_get(st, &other, "u@example.org", 0, &tok, NULL, &err),
			 OAUTH_SIGNIN);
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

	snprintf(path, size, "%s/%s", topdir, name);
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

/*
 * The browser sign-in in a child: what it prints (the address to open, with
 * the state and the PKCE challenge; the loopback port), then a "browser"
 * (this test) comes back to it with `query_fmt` ("STATE" in it: the state).  Returns the child's status
 * and its error line in err (size n).
 */
static int
browser_run(const char *query_fmt, char *err, size_t n)
{
	int p[2], status = 0, port = 0;
	char line[4096], state[128] = "", query[512];
	FILE *in;
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		FILE *out = fdopen(p[1], "w");
		oauth_cfg o;
		char *e = NULL;
		oauth_status rc;

		close(p[0]);
		oauth_fill(&o, "https://mail.google.com/");
		o.provider = OAUTH_GOOGLE;
		o.auth_url = (char *)"https://accounts.example.org/auth";
		rc = oauth_sign_in(st, &o, "u@example.org", out, &e);
		fprintf(out, "ERR %s\n", e != NULL ? e : "-");
		fclose(out);
		_exit((int)rc);
	}
	close(p[1]);
	in = fdopen(p[0], "r");
	while (fgets(line, sizeof line, in) != NULL) {
		char *s;

		if ((s = strstr(line, "&state=")) != NULL)
			sscanf(s, "&state=%127[^&]", state);
		if (strstr(line, "https://accounts.example.org/auth?") != NULL) {
			assert_non_null(strstr(line, "code_challenge_method=S256"));
			assert_non_null(strstr(line, "redirect_uri=http%3A%2F%2F127.0.0.1%3A"));
			assert_non_null(strstr(line, "scope=https%3A%2F%2Fmail.google.com%2F"));
		}
		if ((s = strstr(line, "comes back to http://127.0.0.1:")) != NULL) {
			struct sockaddr_in sin = { .sin_family = AF_INET };
			int fd = socket(AF_INET, SOCK_STREAM, 0);
			char req[700];

			port = atoi(s + strlen("comes back to http://127.0.0.1:"));
			sin.sin_port = htons((uint16_t)port);
			sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
			/* "STATE" in the query becomes the sign-in's state. */
			{
				const char *at = strstr(query_fmt, "STATE");

				if (at == NULL)
					snprintf(query, sizeof query, "%s", query_fmt);
				else
					snprintf(query, sizeof query, "%.*s%s%s", (int)(at - query_fmt),
						 query_fmt, state, at + 5);
			}
			snprintf(req, sizeof req, "GET /?%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", query);
			assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
			assert_true(read(fd, req, sizeof req) > 0);
			assert_non_null(strstr(req, "200 OK"));
			close(fd);
		}
		if (strncmp(line, "ERR ", 4) == 0) {
			size_t l = strlen(line + 4);

			if (l >= n)
				l = n - 1;
			memcpy(err, line + 4, l);
			err[l] = '\0';
		}
	}
	fclose(in);
	assert_true(port > 0);
	assert_true(state[0] != '\0');
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void
test_browser_sign_in(void **state)
{
	char err[1024] = "";

	/* A redirect with another state is not this sign-in's. */
	assert_int_equal(browser_run("state=forged&code=stolen", err, sizeof err), OAUTH_SIGNIN);
	assert_non_null(strstr(err, "without this sign-in's state"));
	/* The person declined. */
	assert_int_equal(browser_run("state=STATE&error=access_denied", err, sizeof err), OAUTH_SIGNIN);
	assert_non_null(strstr(err, "refused (access_denied)"));
	/* A code: exchanged at the token endpoint (down here: a temporary failure
	 * that names it, not the code). */
	assert_int_equal(browser_run("state=STATE&code=4%2F0AbCd", err, sizeof err), OAUTH_TEMP);
	assert_non_null(strstr(err, "token endpoint"));
	assert_null(strstr(err, "0AbCd"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cache_roundtrip, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_rotation_atomic, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_refused_after_rotation, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_not_bearer_keeps_rotation, each_setup,
						each_teardown),
		cmocka_unit_test_setup_teardown(test_fresh_from_cache, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_stale_refreshes, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_needs_signin_no_request, each_setup,
						each_teardown),
		cmocka_unit_test_setup_teardown(test_shared_between_pop3_and_smtp, each_setup,
						each_teardown),
		cmocka_unit_test_setup_teardown(test_client_credentials, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_token_command, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_browser_sign_in, each_setup, each_teardown),
	};

	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}

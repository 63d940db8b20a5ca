/* mailmill - ISC licence, see LICENSE */
/*
 * The token endpoint's JSON answers (daemon/oauth/oauth_json.c): what real
 * servers send (Microsoft, Google, the RFCs' examples), and what a broken or
 * hostile one might: wrong types, huge numbers, control characters, tokens
 * that could not go on a SASL line.  A rejection never quotes a token.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <glib.h>

#include "daemon/oauth/oauth.h"
#include "daemon/oauth/oauth_json.h"

struct json_case {
	const char *what, *json;
	int ok;
	const char *access, *refresh, *error, *user_code;
	long long expires_in, interval;
	const char *want_err;   /* a part of the error when !ok */
};

static const struct json_case cases[] = {
	{ "RFC 6749 5.1", "{\"access_token\":\"2YotnFZFEjr1zCsicMWpAA\",\"token_type\":\"example\","
	  "\"expires_in\":3600,\"refresh_token\":\"tGzv3JOkF0XG5Qx2TlKWIA\","
	  "\"example_parameter\":\"example_value\"}", 1,
	  "2YotnFZFEjr1zCsicMWpAA", "tGzv3JOkF0XG5Qx2TlKWIA", NULL, NULL, 3600, -1, NULL },
	{ "Microsoft, expires_in and ext_expires_in", "{\"token_type\":\"Bearer\",\"scope\":"
	  "\"https://outlook.office.com/POP.AccessAsUser.All\",\"expires_in\":4799,"
	  "\"ext_expires_in\":4799,\"access_token\":\"eyJ0eXAi.eyJhdWQi.sig-_\","
	  "\"refresh_token\":\"0.AXkA\"}", 1, "eyJ0eXAi.eyJhdWQi.sig-_", "0.AXkA", NULL, NULL,
	  4799, -1, NULL },
	{ "expires_in as a string", "{\"access_token\":\"a\",\"expires_in\":\"3599\"}", 1, "a",
	  NULL, NULL, NULL, 3599, -1, NULL },
	{ "expires_in as a float", "{\"access_token\":\"a\",\"expires_in\":3600.0}", 1, "a", NULL,
	  NULL, NULL, 3600, -1, NULL },
	{ "no expires_in", "{\"access_token\":\"a\"}", 1, "a", NULL, NULL, NULL, -1, -1, NULL },
	{ "null fields are absent", "{\"access_token\":\"a\",\"refresh_token\":null,"
	  "\"expires_in\":null}", 1, "a", NULL, NULL, NULL, -1, -1, NULL },
	{ "invalid_grant", "{\"error\":\"invalid_grant\",\"error_description\":\"AADSTS70000: "
	  "The refresh token has expired\"}", 1, NULL, NULL, "invalid_grant", NULL, -1, -1, NULL },
	{ "device answer", "{\"device_code\":\"GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS\","
	  "\"user_code\":\"WDJB-MJHT\",\"verification_uri\":\"https://example.com/device\","
	  "\"verification_uri_complete\":\"https://example.com/device?user_code=WDJB-MJHT\","
	  "\"expires_in\":1800,\"interval\":5}", 1, NULL, NULL, NULL, "WDJB-MJHT", 1800, 5, NULL },
	{ "unicode in a description", "{\"error\":\"access_denied\",\"error_description\":"
	  "\"Zugriff verweigert \\u00fc\"}", 1, NULL, NULL, "access_denied", NULL, -1, -1, NULL },
	{ "empty", "", 0, NULL, NULL, NULL, NULL, -1, -1, "empty" },
	{ "HTML error page", "<html><body>503 Service Unavailable</body></html>", 0, NULL, NULL,
	  NULL, NULL, -1, -1, "not JSON" },
	{ "an array", "[1,2]", 0, NULL, NULL, NULL, NULL, -1, -1, "not a JSON object" },
	{ "a bare string", "\"at-123\"", 0, NULL, NULL, NULL, NULL, -1, -1, "not a JSON object" },
	{ "truncated", "{\"access_token\":\"abc", 0, NULL, NULL, NULL, NULL, -1, -1, "not JSON" },
	/* json-glib's own message would quote the token it stumbled on. */
	{ "comma missing after a token", "{\"access_token\":\"secret-tok\" \"token_type\":"
	  "\"Bearer\"}", 0, NULL, NULL, NULL, NULL, -1, -1, "not JSON (parse error at" },
	{ "a bare token", "secret_tok_abc", 0, NULL, NULL, NULL, NULL, -1, -1, "not JSON" },
	{ "token a number", "{\"access_token\":12345}", 0, NULL, NULL, NULL, NULL, -1, -1,
	  "'access_token' is not a string" },
	{ "token an object", "{\"access_token\":{\"a\":1}}", 0, NULL, NULL, NULL, NULL, -1, -1,
	  "'access_token' is not a string" },
	{ "token with a space", "{\"access_token\":\"secret part\"}", 0, NULL, NULL, NULL, NULL,
	  -1, -1, "'access_token' holds characters" },
	{ "token with CRLF", "{\"access_token\":\"secret\\r\\nQUIT\"}", 0, NULL, NULL, NULL, NULL,
	  -1, -1, "'access_token' holds characters" },
	{ "token with UTF-8", "{\"access_token\":\"secr\\u00e9t\"}", 0, NULL, NULL, NULL, NULL,
	  -1, -1, "'access_token' holds characters" },
	{ "description with a newline", "{\"error\":\"x\",\"error_description\":\"a\\nb\"}", 0,
	  NULL, NULL, NULL, NULL, -1, -1, "'error_description' holds characters" },
	{ "negative expires_in", "{\"access_token\":\"a\",\"expires_in\":-1}", 0, NULL, NULL,
	  NULL, NULL, -1, -1, "'expires_in' is not a number of seconds" },
	{ "huge expires_in", "{\"access_token\":\"a\",\"expires_in\":99999999999999999999}", 0,
	  NULL, NULL, NULL, NULL, -1, -1, "'expires_in' is not a number of seconds" },
	{ "expires_in a word", "{\"access_token\":\"a\",\"expires_in\":\"soon\"}", 0, NULL, NULL,
	  NULL, NULL, -1, -1, "'expires_in' is not a number of seconds" },
	{ "interval a bool", "{\"device_code\":\"d\",\"interval\":true}", 0, NULL, NULL, NULL,
	  NULL, -1, -1, "'interval' is not a number of seconds" },
};

static void
test_cases(void **state)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct json_case *c = &cases[i];
		oauth_answer a;
		char *err = NULL;
		int rc = oauth_json_parse(c->json, strlen(c->json), &a, &err);

		if (c->ok) {
			if (rc != 0)
				fail_msg("%s: refused: %s", c->what, err);
#define STR(field, want) \
			if ((want) == NULL ? a.field != NULL : \
			    a.field == NULL || strcmp(a.field, (want)) != 0) \
				fail_msg("%s: " #field " \"%s\", want \"%s\"", c->what, \
					 a.field ? a.field : "(null)", (want) ? (want) : "(null)");
			STR(access_token, c->access)
			STR(refresh_token, c->refresh)
			STR(error, c->error)
			STR(user_code, c->user_code)
#undef STR
			if (a.expires_in != c->expires_in || a.interval != c->interval)
				fail_msg("%s: expires_in %lld interval %lld", c->what, a.expires_in,
					 a.interval);
			oauth_answer_clear(&a);
			assert_null(a.access_token);
		} else {
			if (rc == 0)
				fail_msg("%s: accepted", c->what);
			if (err == NULL || strstr(err, c->want_err) == NULL)
				fail_msg("%s: error \"%s\", want \"%s\"", c->what, err, c->want_err);
			assert_null(strstr(err, "secret"));
			assert_null(a.access_token);
			free(err);
		}
	}
}

/* Sizes: a 4 KB token is normal, one past the bound is refused, and so is an
 * answer past OAUTH_JSON_MAX. */
static void
test_sizes(void **state)
{
	size_t big = OAUTH_JSON_TOKEN_MAX + 1;
	char *json = malloc(big + 64), *err = NULL;
	oauth_answer a;

	assert_non_null(json);
	strcpy(json, "{\"access_token\":\"");
	memset(json + strlen(json), 'A', 4096);
	strcpy(json + 17 + 4096, "\"}");
	assert_int_equal(oauth_json_parse(json, strlen(json), &a, &err), 0);
	assert_int_equal(strlen(a.access_token), 4096);
	oauth_answer_clear(&a);

	memset(json + 17, 'A', big);
	strcpy(json + 17 + big, "\"}");
	assert_int_equal(oauth_json_parse(json, strlen(json), &a, &err), -1);
	assert_non_null(strstr(err, "longer than"));
	free(err);
	err = NULL;

	assert_int_equal(oauth_json_parse("{}", OAUTH_JSON_MAX + 1, &a, &err), -1);
	assert_non_null(strstr(err, "larger than"));
	free(err);
	err = NULL;

	/* A NUL inside the answer is refused rather than cut short. */
	assert_int_equal(oauth_json_parse("{\"access_token\":\"a\"}\0x", 22, &a, &err), -1);
	assert_non_null(strstr(err, "NUL"));
	free(err);
	free(json);
}

/* The browser sign-in's pieces: RFC 7636 appendix B's PKCE example, and the
 * redirect's query read strictly (decoded, only from a GET of the path). */
static void
test_browser_pieces(void **state)
{
	char *c = oauth_pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
	char *v;

	assert_string_equal(c, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
	g_free(c);
	v = oauth_redirect_param("GET /?state=abc&code=4%2F0Ab_x+y&scope=https%3A%2F%2Fmail.google.com%2F"
				 " HTTP/1.1", "code");
	assert_string_equal(v, "4/0Ab_x y");
	g_free(v);
	v = oauth_redirect_param("GET /?state=abc&code=x HTTP/1.1", "state");
	assert_string_equal(v, "abc");
	g_free(v);
	assert_null(oauth_redirect_param("GET /?xcode=1&codex=2 HTTP/1.1", "code"));
	assert_null(oauth_redirect_param("POST /?code=1 HTTP/1.1", "code"));
	assert_null(oauth_redirect_param("GET /favicon.ico HTTP/1.1", "code"));
	v = oauth_redirect_param("GET /?error=access_denied&state=s HTTP/1.1", "error");
	assert_string_equal(v, "access_denied");
	g_free(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_browser_pieces),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* mailmill - ISC licence, see LICENSE */
/*
 * proto/b64 and proto/sasl without I/O: RFC 4648's vectors and strictness,
 * the responses of every mechanism against published examples (RFC 4616,
 * Google's XOAUTH2 page, RFC 7628), 4 KB tokens, and hostile challenges.
 */
#include <config.h>

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/b64.h"
#include "proto/sasl.h"

/* ------------------------------------------------------------ base64 */

/* RFC 4648 section 10. */
static const char *const vec_in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
static const char *const vec_out[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
				       "Zm9vYmFy" };

static void
test_b64_vectors(void **state)
{
	size_t i, n;

	for (i = 0; i < 7; i++) {
		char *e = b64_encode(vec_in[i], strlen(vec_in[i]), &n);
		unsigned char *d;
		size_t dl;

		assert_non_null(e);
		assert_string_equal(e, vec_out[i]);
		assert_int_equal(n, strlen(vec_out[i]));
		assert_int_equal(b64_encoded_len(strlen(vec_in[i])), n);
		assert_int_equal(b64_decode(e, n, 100, &d, &dl), 0);
		assert_int_equal(dl, strlen(vec_in[i]));
		assert_memory_equal(d, vec_in[i], dl);
		assert_int_equal(d[dl], '\0');
		free(d);
		free(e);
	}
}

/* Every byte value and every length up to 3 groups survive the round trip. */
static void
test_b64_roundtrip(void **state)
{
	unsigned char in[256 + 9], *d;
	size_t len, n, dl, i;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i * 7 + 3);
	for (len = 0; len <= sizeof(in); len++) {
		char *e = b64_encode(in, len, &n);

		assert_non_null(e);
		assert_int_equal(n % 4, 0);
		assert_int_equal(b64_decode(e, n, len, &d, &dl), 0);
		assert_int_equal(dl, len);
		if (len > 0)
			assert_memory_equal(d, in, len);
		free(d);
		if (len > 0) {
			/* One byte short of room: refused, not cut. */
			assert_int_equal(b64_decode(e, n, len - 1, &d, &dl), -1);
			assert_int_equal(errno, EFBIG);
			assert_null(d);
		}
		free(e);
	}
}

static void
test_b64_strict(void **state)
{
	static const char *const bad[] = {
		"Zg", "Zg=", "Zm9", "Z===", "====", "Zg==Zg==", "Zm=v", "=Zm9", "Zm9v\n",
		"Zm 9v", "Zm9v.", "Zh==", "Zm9=", "Zm-v", "Zm_v", "Zg=a",
	};
	unsigned char *d = (unsigned char *)"x";
	size_t i, dl = 9;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (b64_decode(bad[i], strlen(bad[i]), 100, &d, &dl) != -1)
			fail_msg("\"%s\" was accepted", bad[i]);
		assert_int_equal(errno, EINVAL);
		assert_null(d);
		assert_int_equal(dl, 0);
	}
	/* The length counts, not a NUL: a NUL inside is refused. */
	assert_int_equal(b64_decode("Zm9\0", 4, 100, &d, &dl), -1);
	assert_int_equal(errno, EINVAL);
	/* The empty string is the empty value. */
	assert_int_equal(b64_decode("", 0, 0, &d, &dl), 0);
	assert_int_equal(dl, 0);
	free(d);
}

/* ------------------------------------------------------------ mechanisms */

static void
test_mech_names(void **state)
{
	sasl_mech m;

	assert_int_equal(sasl_mech_parse("xoauth2", &m), 0);
	assert_int_equal(m, SASL_XOAUTH2);
	assert_int_equal(sasl_mech_parse("OAuthBearer", &m), 0);
	assert_int_equal(m, SASL_OAUTHBEARER);
	assert_int_equal(sasl_mech_parse("plain", &m), 0);
	assert_int_equal(m, SASL_PLAIN);
	assert_int_equal(sasl_mech_parse("CRAM-MD5", &m), -1);
	assert_int_equal(sasl_mech_parse("XOAUTH", &m), -1);
	assert_int_equal(sasl_mech_parse(NULL, &m), -1);
	assert_string_equal(sasl_mech_name(SASL_LOGIN), "LOGIN");
	assert_true(sasl_mech_is_oauth(SASL_XOAUTH2));
	assert_false(sasl_mech_is_oauth(SASL_PLAIN));
	assert_int_equal(sasl_steps(SASL_LOGIN), 2);
	assert_int_equal(sasl_steps(SASL_OAUTHBEARER), 1);
}

static void
test_oauth_pick(void **state)
{
	const char *why = NULL;
	sasl_mech m;

	assert_int_equal(sasl_oauth_pick(NULL, 1, 1, &m, &why), 0);
	assert_int_equal(m, SASL_OAUTHBEARER);
	assert_int_equal(sasl_oauth_pick(NULL, 0, 1, &m, &why), 0);
	assert_int_equal(m, SASL_XOAUTH2);
	assert_int_equal(sasl_oauth_pick(NULL, 0, 0, &m, &why), -1);
	assert_non_null(strstr(why, "neither"));
	assert_int_equal(sasl_oauth_pick("xoauth2", 1, 0, &m, &why), 0);
	assert_int_equal(m, SASL_XOAUTH2);
	assert_int_equal(sasl_oauth_pick("PLAIN", 1, 1, &m, &why), -1);
}

/* The raw form of a response, for comparing with the bytes a spec shows. */
static void
expect_raw(const char *b64, const void *raw, size_t len)
{
	unsigned char *d;
	size_t dl;

	assert_int_equal(b64_decode(b64, strlen(b64), SIZE_MAX - 1, &d, &dl), 0);
	assert_int_equal(dl, len);
	assert_memory_equal(d, raw, len);
	free(d);
}

static void
test_plain_login(void **state)
{
	sasl_creds c = { .user = "alice", .secret = "s3cret pass" };
	char *r, *err = NULL;
	size_t n;

	r = sasl_response(SASL_PLAIN, 0, &c, &n, &err);
	assert_string_equal(r, "AGFsaWNlAHMzY3JldCBwYXNz");
	assert_int_equal(n, 24);
	sasl_free(r);
	r = sasl_response(SASL_LOGIN, 0, &c, NULL, &err);
	assert_string_equal(r, "YWxpY2U=");
	sasl_free(r);
	r = sasl_response(SASL_LOGIN, 1, &c, NULL, &err);
	assert_string_equal(r, "czNjcmV0IHBhc3M=");
	sasl_free(r);
	assert_null(sasl_response(SASL_LOGIN, 2, &c, NULL, &err));
	free(err);
	err = NULL;
	assert_null(sasl_response(SASL_PLAIN, 1, &c, NULL, &err));
	free(err);
	err = NULL;
	/* An empty password is the server's to refuse; an empty user is ours. */
	c.secret = "";
	r = sasl_response(SASL_PLAIN, 0, &c, NULL, &err);
	expect_raw(r, "\0alice\0", 7);
	sasl_free(r);
	c.user = "";
	assert_null(sasl_response(SASL_PLAIN, 0, &c, NULL, &err));
	assert_non_null(strstr(err, "user name"));
	free(err);
}

/* One limit for POP3 and SMTP alike: 1024 bytes each. */
static void
test_plain_limits(void **state)
{
	char big[1026], *r, *err = NULL;
	sasl_creds c = { .user = "alice", .secret = big };

	memset(big, 'p', sizeof(big));
	big[1024] = '\0';
	r = sasl_response(SASL_PLAIN, 0, &c, NULL, &err);
	assert_non_null(r);
	sasl_free(r);
	big[1024] = 'p';
	big[1025] = '\0';
	assert_null(sasl_response(SASL_PLAIN, 0, &c, NULL, &err));
	assert_null(strstr(err, "pppp"));
	free(err);
}

/* Google's example (developers.google.com/gmail/imap/xoauth2-protocol). */
static void
test_xoauth2_vector(void **state)
{
	sasl_creds c = { .user = "someuser@example.com",
			 .secret = "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg" };
	char *r = sasl_response(SASL_XOAUTH2, 0, &c, NULL, NULL);

	assert_string_equal(r, "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRm"
			    "dDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==");
	sasl_free(r);
}

/* RFC 7628 4.1's example, host and port included. */
static void
test_oauthbearer_vector(void **state)
{
	static const char raw[] = "n,a=user@example.com,\001host=server.example.com\001port=143\001"
		"auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\001\001";
	sasl_creds c = { .user = "user@example.com",
			 .secret = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==",
			 .host = "server.example.com", .port = "143" };
	char *r = sasl_response(SASL_OAUTHBEARER, 0, &c, NULL, NULL);

	assert_string_equal(r, "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBv"
			    "cnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1s"
			    "emRHRXVZMjl0Q2c9PQEB");
	expect_raw(r, raw, sizeof(raw) - 1);
	sasl_free(r);
}

/* Host and port are optional; ',' and '=' in the user are escaped (RFC 5801). */
static void
test_oauthbearer_fields(void **state)
{
	static const char raw1[] = "n,a=a=2Cb=3Dc@example.com,\001auth=Bearer tok\001\001";
	static const char raw2[] = "n,a=u@x,\001host=::1\001port=995\001auth=Bearer tok\001\001";
	sasl_creds c = { .user = "a,b=c@example.com", .secret = "tok" };
	char *r = sasl_response(SASL_OAUTHBEARER, 0, &c, NULL, NULL);

	expect_raw(r, raw1, sizeof(raw1) - 1);
	sasl_free(r);
	c.user = "u@x";
	c.host = "::1";
	c.port = "pop3s"; /* a service name: its number */
	r = sasl_response(SASL_OAUTHBEARER, 0, &c, NULL, NULL);
	expect_raw(r, raw2, sizeof(raw2) - 1);
	sasl_free(r);
	c.port = "no-such-service-here";
	c.host = NULL;
	c.user = "a,b=c@example.com";
	r = sasl_response(SASL_OAUTHBEARER, 0, &c, NULL, NULL);
	expect_raw(r, raw1, sizeof(raw1) - 1);
	sasl_free(r);
}

/* A 4 KB token (2-4 KB is normal for Microsoft) and the 64 KB limit. */
static void
test_big_tokens(void **state)
{
	size_t n = 4096, i, rl;
	char *tok = malloc(SASL_TOKEN_MAX + 2), *r, *raw, *err = NULL;
	sasl_creds c = { .user = "box@example.com", .secret = tok, .host = "localhost",
			 .port = "995" };

	assert_non_null(tok);
	for (i = 0; i < SASL_TOKEN_MAX + 1; i++)
		tok[i] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~+/"[i % 68];
	tok[n] = '\0';
	r = sasl_response(SASL_XOAUTH2, 0, &c, &rl, &err);
	assert_non_null(r);
	assert_true(rl > 4 * n / 3);
	assert_true(asprintf(&raw, "user=box@example.com\001auth=Bearer %s\001\001", tok) > 0);
	expect_raw(r, raw, strlen(raw));
	free(raw);
	sasl_free(r);
	r = sasl_response(SASL_OAUTHBEARER, 0, &c, &rl, &err);
	assert_true(asprintf(&raw, "n,a=box@example.com,\001host=localhost\001port=995\001"
			     "auth=Bearer %s\001\001", tok) > 0);
	expect_raw(r, raw, strlen(raw));
	free(raw);
	sasl_free(r);
	tok[n] = 'x';
	tok[SASL_TOKEN_MAX] = '\0';
	r = sasl_response(SASL_XOAUTH2, 0, &c, &rl, &err);
	assert_non_null(r);
	sasl_free(r);
	tok[SASL_TOKEN_MAX] = 'x';
	tok[SASL_TOKEN_MAX + 1] = '\0';
	assert_null(sasl_response(SASL_XOAUTH2, 0, &c, &rl, &err));
	assert_non_null(strstr(err, "longer than"));
	assert_null(strstr(err, "abcdef"));
	free(err);
	free(tok);
}

/* Nothing that could split the \1-separated fields gets in; err never quotes the token. */
static void
test_oauth_bad_input(void **state)
{
	static const char *const bad_tokens[] = {
		"", "tok\001auth=Bearer evil", "tok en", "tok\r\n", "=tok", "tok=x", "t\xc3\xa9",
	};
	sasl_creds c = { .user = "u@example.com" };
	char *err = NULL;
	size_t i;

	for (i = 0; i < sizeof(bad_tokens) / sizeof(bad_tokens[0]); i++) {
		c.secret = bad_tokens[i];
		if (sasl_response(SASL_XOAUTH2, 0, &c, NULL, &err) != NULL)
			fail_msg("token %zu accepted", i);
		assert_non_null(strstr(err, "token"));
		assert_null(strstr(err, "evil"));
		free(err);
		err = NULL;
	}
	c.secret = "good.token-123==";
	c.user = "u\001auth=Bearer x";
	assert_null(sasl_response(SASL_XOAUTH2, 0, &c, NULL, &err));
	free(err);
	err = NULL;
	c.user = "u@example.com";
	c.host = "evil\001host";
	assert_null(sasl_response(SASL_OAUTHBEARER, 0, &c, NULL, &err));
	free(err);
	err = NULL;
	c.host = "";
	assert_null(sasl_response(SASL_OAUTHBEARER, 0, &c, NULL, &err));
	free(err);
	err = NULL;
	c.user = NULL;
	assert_null(sasl_response(SASL_OAUTHBEARER, 0, &c, NULL, &err));
	free(err);
	assert_null(sasl_response(SASL_OAUTHBEARER, 0, NULL, NULL, NULL));
}

/* ------------------------------------------------------------ error challenges */

static void
test_challenge_json(void **state)
{
	/* RFC 7628 3.2.2's failure, and Google's answer to a stale token. */
	static const char rfc[] = "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NvcGUiOiJleGFtcGxlX3Njb3Bl"
		"Iiwib3BlbmlkLWNvbmZpZ3VyYXRpb24iOiJodHRwczovL2V4YW1wbGUuY29tLy53ZWxsLWtub3duL29w"
		"ZW5pZC1jb25maWd1cmF0aW9uIn0=";
	static const char google[] = "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIG1hYyIsInNjb3Bl"
		"IjoiaHR0cHM6Ly9tYWlsLmdvb2dsZS5jb20vIn0=";
	char *t = sasl_error_text(rfc, strlen(rfc));

	assert_string_equal(t, "{\"status\":\"invalid_token\",\"scope\":\"example_scope\","
			    "\"openid-configuration\":\"https://example.com/.well-known/"
			    "openid-configuration\"}");
	free(t);
	t = sasl_error_text(google, strlen(google));
	assert_string_equal(t, "{\"status\":\"401\",\"schemes\":\"bearer mac\","
			    "\"scope\":\"https://mail.google.com/\"}");
	free(t);
	t = sasl_error_text("", 0);
	assert_string_equal(t, "(empty challenge)");
	free(t);
}

static int
clean(const char *t, size_t max)
{
	size_t i, n = strlen(t);

	for (i = 0; i < n; i++)
		if ((unsigned char)t[i] < 0x20 || (unsigned char)t[i] >= 0x7f)
			return 0;
	return n <= max;
}

static void
test_challenge_hostile(void **state)
{
	/* Escape sequences, CR LF, NUL, 8-bit, DEL: never echoed. */
	static const char raw[] = "{\"status\":\"\x1b[31mred\r\nInjected: yes\0\xff\x7f\"}";
	size_t max = SASL_ERROR_TEXT_MAX + 40;
	char *b = b64_encode(raw, sizeof(raw) - 1, NULL), *t, *big;
	size_t i;

	t = sasl_error_text(b, strlen(b));
	assert_string_equal(t, "{\"status\":\"?[31mred Injected: yes???\"}");
	free(t);
	free(b);
	/* Not base64: quoted, cleaned, said so. */
	t = sasl_error_text("not base64 \x1b]0;title\x07 !", 24);
	assert_true(clean(t, max));
	assert_non_null(strstr(t, "undecodable"));
	free(t);
	t = sasl_error_text("abc", 3);
	assert_non_null(strstr(t, "undecodable"));
	free(t);
	t = sasl_error_text(NULL, 0);
	assert_non_null(t);
	free(t);
	/* Huge: bounded, both as base64 and not. */
	big = malloc(100001);
	assert_non_null(big);
	memset(big, 'Q', 100000);
	big[100000] = '\0';
	t = sasl_error_text(big, 100000);
	assert_true(clean(t, max));
	assert_non_null(strstr(t, "..."));
	free(t);
	for (i = 0; i < 100000; i++)
		big[i] = (char)(i % 251 + 1);
	t = sasl_error_text(big, 100000);
	assert_true(clean(t, max));
	free(t);
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64_vectors),
		cmocka_unit_test(test_b64_roundtrip),
		cmocka_unit_test(test_b64_strict),
		cmocka_unit_test(test_mech_names),
		cmocka_unit_test(test_oauth_pick),
		cmocka_unit_test(test_plain_login),
		cmocka_unit_test(test_plain_limits),
		cmocka_unit_test(test_xoauth2_vector),
		cmocka_unit_test(test_oauthbearer_vector),
		cmocka_unit_test(test_oauthbearer_fields),
		cmocka_unit_test(test_big_tokens),
		cmocka_unit_test(test_oauth_bad_input),
		cmocka_unit_test(test_challenge_json),
		cmocka_unit_test(test_challenge_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

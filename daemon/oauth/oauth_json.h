/* mailmill - ISC licence, see LICENSE */
#ifndef MM_OAUTH_JSON_H
#define MM_OAUTH_JSON_H
/*
 * The JSON answers of an OAuth 2.0 token endpoint (RFC 6749 5.1, 5.2) and of
 * a device authorization endpoint (RFC 8628 3.2), read with json-glib.
 * Untrusted input: sizes bounded, numbers range-checked, strings checked for
 * what their use allows (a token goes on a SASL line: printable ASCII only).
 */
#include <stddef.h>

typedef struct oauth_answer {
	/* token answer */
	char *access_token, *token_type, *refresh_token, *scope;
	long long expires_in;          /* seconds; -1 when absent */
	/* error answer */
	char *error, *error_description;
	/* device authorization answer */
	char *device_code, *user_code, *verification_uri, *verification_uri_complete;
	long long interval;            /* seconds; -1 when absent */
} oauth_answer;

/* Longest token (access or refresh) accepted: 2-4 KB is normal. */
#define OAUTH_JSON_TOKEN_MAX (16 * 1024)
/* Longest answer read. */
#define OAUTH_JSON_MAX (64 * 1024)

/*
 * Parse an answer.  0 and *a filled (strings allocated; clear with
 * oauth_answer_clear): the caller decides what the fields mean.  -1 and
 * *err_r (allocated, free) when it is not a JSON object or a field has a
 * wrong type or an impossible value; *a is then cleared.  err_r never
 * quotes a token.
 */
int oauth_json_parse(const char *body, size_t len, oauth_answer *a, char **err_r);
void oauth_answer_clear(oauth_answer *a);
#endif

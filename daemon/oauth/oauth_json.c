/* mailmill - ISC licence, see LICENSE */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-glib/json-glib.h>

#include "daemon/oauth/oauth_json.h"
#include "daemon/core/secret.h"
#include "proto/err.h"

/* Longest text field other than a token (error descriptions, URLs). */
#define OAUTH_JSON_TEXT_MAX 2048
/* A lifetime or interval beyond a year is nonsense from a server. */
#define OAUTH_JSON_SECONDS_MAX (366LL * 86400)

/* A token goes on a SASL line and into an HTTP form: printable ASCII. */
static int
oauth_json_token_ok(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

/* Free text for a log line: no control characters. */
static int
oauth_json_text_ok(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			return 0;
	return 1;
}

typedef struct oauth_json_str {
	const char *name;
	size_t off;
	int token;    /* a secret: bounded by OAUTH_JSON_TOKEN_MAX, never quoted */
} oauth_json_str;

#define F(field, tok) { #field, offsetof(oauth_answer, field), tok }
static const oauth_json_str oauth_json_strs[] = {
	F(access_token, 1), F(token_type, 0), F(refresh_token, 1), F(scope, 0),
	F(error, 0), F(error_description, 0), F(device_code, 1), F(user_code, 0),
	F(verification_uri, 0), F(verification_uri_complete, 0),
};
#undef F

static int
oauth_json_string(JsonObject *o, const oauth_json_str *f, oauth_answer *a, char **err_r)
{
	JsonNode *n = json_object_get_member(o, f->name);
	const char *v;
	size_t max = f->token ? OAUTH_JSON_TOKEN_MAX : OAUTH_JSON_TEXT_MAX;

	if (n == NULL || JSON_NODE_HOLDS_NULL(n))
		return 0;
	if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) {
		err_set(err_r, "'%s' is not a string", f->name);
		return -1;
	}
	v = json_node_get_string(n);
	if (v == NULL || strlen(v) > max) {
		err_set(err_r, "'%s' is longer than %zu bytes", f->name, max);
		return -1;
	}
	if (f->token ? !oauth_json_token_ok(v) : !oauth_json_text_ok(v)) {
		err_set(err_r, "'%s' holds characters it may not", f->name);
		return -1;
	}
	if ((*(char **)((char *)a + f->off) = strdup(v)) == NULL) {
		err_set(err_r, "out of memory");
		return -1;
	}
	return 0;
}

/* A count of seconds: a JSON number, or a string of digits (some servers,
 * Microsoft's among them, once sent "3599"). */
static int
oauth_json_seconds(JsonObject *o, const char *name, long long *out, char **err_r)
{
	JsonNode *n = json_object_get_member(o, name);
	long long v = -1;

	*out = -1;
	if (n == NULL || JSON_NODE_HOLDS_NULL(n))
		return 0;
	if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_INT64) {
		v = json_node_get_int(n);
	} else if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING) {
		const char *s = json_node_get_string(n);
		size_t digits = strspn(s, "0123456789");

		if (digits > 0 && digits <= 9 && s[digits] == '\0')
			v = strtoll(s, NULL, 10);
	} else if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_DOUBLE) {
		double d = json_node_get_double(n);

		if (d >= 0 && d <= (double)OAUTH_JSON_SECONDS_MAX)
			v = (long long)d;
	}
	if (v < 0 || v > OAUTH_JSON_SECONDS_MAX) {
		err_set(err_r, "'%s' is not a number of seconds (0 to %lld)", name,
			OAUTH_JSON_SECONDS_MAX);
		return -1;
	}
	*out = v;
	return 0;
}

int
oauth_json_parse(const char *body, size_t len, oauth_answer *a, char **err_r)
{
	JsonParser *p;
	JsonNode *root;
	JsonObject *o;
	GError *ge = NULL;
	int rc = -1;

	memset(a, 0, sizeof *a);
	a->expires_in = a->interval = -1;
	*err_r = NULL;
	if (len > OAUTH_JSON_MAX) {
		err_set(err_r, "answer larger than %d bytes", OAUTH_JSON_MAX);
		return -1;
	}
	if (len == 0 || memchr(body, '\0', len) != NULL) {
		err_set(err_r, len == 0 ? "empty answer" : "answer holds a NUL byte");
		return -1;
	}
	p = json_parser_new_immutable();
	if (!json_parser_load_from_data(p, body, (gssize)len, &ge)) {
		/* Only the position: json-glib's message quotes the token it
		 * stumbled on ("unexpected string constant \"<the token>\""). */
		const char *m = ge != NULL ? ge->message : "";
		const char *pe = strstr(m, ": Parse error");

		err_set(err_r, "not JSON (parse error%s%.*s)", pe != NULL ? " at " : "",
			pe != NULL && pe - m < 40 ? (int)(pe - m) : 0, m);
		g_clear_error(&ge);
		goto out;
	}
	root = json_parser_get_root(p);
	if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
		err_set(err_r, "not a JSON object");
		goto out;
	}
	o = json_node_get_object(root);
	for (size_t i = 0; i < sizeof oauth_json_strs / sizeof oauth_json_strs[0]; i++)
		if (oauth_json_string(o, &oauth_json_strs[i], a, err_r) < 0)
			goto out;
	if (oauth_json_seconds(o, "expires_in", &a->expires_in, err_r) < 0 ||
	    oauth_json_seconds(o, "interval", &a->interval, err_r) < 0)
		goto out;
	rc = 0;
out:
	g_object_unref(p);
	if (rc < 0)
		oauth_answer_clear(a);
	return rc;
}

void
oauth_answer_clear(oauth_answer *a)
{
	for (size_t i = 0; i < sizeof oauth_json_strs / sizeof oauth_json_strs[0]; i++)
		secret_wipe((char **)((char *)a + oauth_json_strs[i].off));
	a->expires_in = a->interval = -1;
}

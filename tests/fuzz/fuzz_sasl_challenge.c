/* mailmill - ISC licence, see LICENSE */
/*
 * The XOAUTH2/OAUTHBEARER error challenge decoder (what a server sends after
 * a refused token) and the strict base64 under it: the text for the error
 * message is always bounded and printable; whatever decodes re-encodes to
 * the very same text (one spelling per value); the input taken as a token
 * either is refused or comes back whole from the response.
 */
#include <config.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "proto/b64.h"
#include "proto/sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_text(const char *t)
{
	size_t i, n;

	if (t == NULL)
		return; /* out of memory only */
	n = strlen(t);
	if (n > SASL_ERROR_TEXT_MAX + 40)
		__builtin_trap();
	for (i = 0; i < n; i++)
		if ((unsigned char)t[i] < 0x20 || (unsigned char)t[i] >= 0x7f)
			__builtin_trap();
}

static void
check_decode(const char *in, size_t size)
{
	unsigned char *d;
	size_t dl, el;
	char *e;

	if (b64_decode(in, size, size, &d, &dl) < 0)
		return;
	if (dl > size || d[dl] != '\0')
		__builtin_trap();
	e = b64_encode(d, dl, &el);
	if (e != NULL && (el != size || memcmp(e, in, size) != 0))
		__builtin_trap();
	free(e);
	free(d);
}

static void
check_token(const char *in, size_t size)
{
	char *tok = malloc(size + 1), *r, *want;
	sasl_creds c = { .user = "u@example.com", .host = "localhost", .port = "995" };
	unsigned char *d;
	size_t dl;
	int n;

	if (tok == NULL)
		return;
	memcpy(tok, in, size);
	tok[size] = '\0';
	c.secret = tok;
	r = sasl_response(SASL_OAUTHBEARER, 0, &c, NULL, NULL);
	if (r != NULL) {
		if (memchr(tok, '\001', strlen(tok)) != NULL || strchr(tok, ' ') != NULL)
			__builtin_trap();
		n = asprintf(&want, "n,a=u@example.com,\001host=localhost\001port=995\001"
			     "auth=Bearer %s\001\001", tok);
		if (n < 0 || b64_decode(r, strlen(r), SIZE_MAX - 1, &d, &dl) < 0 ||
		    dl != (size_t)n || memcmp(d, want, dl) != 0)
			__builtin_trap();
		free(d);
		free(want);
		sasl_free(r);
	}
	free(tok);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	char *t = sasl_error_text(in, size);

	check_text(t);
	free(t);
	check_decode(in, size);
	check_token(in, size);
	return 0;
}

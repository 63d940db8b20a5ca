/* mailmill - ISC licence, see LICENSE */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/b64.h"

static const char alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t
b64_encoded_len(size_t len)
{
	size_t groups = len / 3 + (len % 3 != 0);

	return groups > (SIZE_MAX - 1) / 4 ? 0 : groups * 4;
}

char *
b64_encode(const void *data, size_t len, size_t *outlen_r)
{
	const unsigned char *p = data;
	size_t n = b64_encoded_len(len), i, o = 0;
	char *out;

	if (n == 0 && len != 0) {
		errno = EOVERFLOW;
		return NULL;
	}
	if ((out = malloc(n + 1)) == NULL)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		out[o++] = alphabet[v >> 18];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = alphabet[(v >> 6) & 63];
		out[o++] = alphabet[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		out[o++] = alphabet[v >> 18];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	if (outlen_r != NULL)
		*outlen_r = o;
	return out;
}

/* The value of one alphabet character, or -1. */
static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
b64_decode(const char *in, size_t len, size_t max, unsigned char **out_r, size_t *outlen_r)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t i, o = 0, pad = 0, need;
	unsigned char *out;

	*out_r = NULL;
	*outlen_r = 0;
	if (len % 4 != 0) {
		errno = EINVAL;
		return -1;
	}
	if (len > 0 && p[len - 1] == '=')
		pad = len > 1 && p[len - 2] == '=' ? 2 : 1;
	need = len / 4 * 3 - pad;
	if (need > max) {
		errno = EFBIG;
		return -1;
	}
	if ((out = malloc(need + 1)) == NULL)
		return -1;
	for (i = 0; i < len; i += 4) {
		int a = b64_value(p[i]), b = b64_value(p[i + 1]);
		int c = b64_value(p[i + 2]), d = b64_value(p[i + 3]);
		int last = i + 4 == len;

		/* Padding only at the very end, and the bits it hides must be 0. */
		if (a < 0 || b < 0 ||
		    (c < 0 && !(last && pad == 2)) || (d < 0 && !(last && pad >= 1)) ||
		    (last && pad == 2 && (b & 15) != 0) || (last && pad == 1 && (c & 3) != 0))
			goto bad;
		out[o++] = (unsigned char)(a << 2 | b >> 4);
		if (c >= 0 && !(last && pad == 2))
			out[o++] = (unsigned char)((b & 15) << 4 | c >> 2);
		if (d >= 0 && !(last && pad >= 1))
			out[o++] = (unsigned char)((c & 3) << 6 | d);
	}
	out[o] = '\0';
	*out_r = out;
	*outlen_r = o;
	return 0;
bad:
	b64_free_secret(out, need + 1);
	errno = EINVAL;
	return -1;
}

void
b64_free_secret(void *p, size_t len)
{
	if (p == NULL)
		return;
	explicit_bzero(p, len);
	free(p);
}

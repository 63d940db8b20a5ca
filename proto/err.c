/* mailmill - ISC licence, see LICENSE */
#include <config.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "proto/err.h"

void
err_vset(char **err_r, const char *fmt, va_list ap)
{
	if (err_r == NULL)
		return;
	if (vasprintf(err_r, fmt, ap) < 0)
		*err_r = NULL;
}

void
err_set(char **err_r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(err_r, fmt, ap);
	va_end(ap);
}

char *
err_fmt(const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;

	va_start(ap, fmt);
	err_vset(&s, fmt, ap);
	va_end(ap);
	return s;
}

void
err_quote(char dst[ERR_QUOTE_MAX + 4], const char *src, size_t len)
{
	size_t i, n = len > ERR_QUOTE_MAX ? ERR_QUOTE_MAX : len;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	if (len > n) {
		memcpy(dst + n, "...", 3);
		n += 3;
	}
	dst[n] = '\0';
}

/* mailmill - ISC licence, see LICENSE */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/buf.h"

/* Smallest first allocation: most uses hold a line or a short reply. */
#define BUF_MIN_CAP 256

int
buf_reserve(buf *b, size_t extra)
{
	size_t need, ncap;
	char *p;

	/* need + 1 for the NUL must not wrap. */
	if (extra > SIZE_MAX - 1 - b->len) {
		errno = EFBIG;
		return -1;
	}
	need = b->len + extra;
	if (b->max != 0 && need > b->max) {
		errno = EFBIG;
		return -1;
	}
	if (need + 1 > b->cap) {
		ncap = b->cap != 0 ? b->cap : BUF_MIN_CAP;
		while (ncap < need + 1) {
			if (ncap > SIZE_MAX / 2) {
				ncap = need + 1;
				break;
			}
			ncap *= 2;
		}
		/* Doubling past the cap would only waste memory we may never use. */
		if (b->max != 0 && b->max < SIZE_MAX && ncap > b->max + 1)
			ncap = b->max + 1;
		p = realloc(b->data, ncap);
		if (p == NULL) {
			errno = ENOMEM;
			return -1;
		}
		b->data = p;
		b->cap = ncap;
	}
	return 0;
}

int
buf_append(buf *b, const void *data, size_t len)
{
	if (len == 0)
		return 0;
	if (buf_reserve(b, len) < 0)
		return -1;
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

void
buf_reset(buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

void
buf_trade(buf *a, buf *b)
{
	buf t = *a;

	a->data = b->data;
	a->len = b->len;
	a->cap = b->cap;
	b->data = t.data;
	b->len = t.len;
	b->cap = t.cap;
}

void
buf_free(buf *b)
{
	size_t max = b->max;

	free(b->data);
	memset(b, 0, sizeof(*b));
	b->max = max;
}

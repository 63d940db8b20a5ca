/* mailmill - ISC licence, see LICENSE */
#ifndef MM_BUF_H
#define MM_BUF_H
/*
 * A growable byte buffer with a hard cap.  The cap is set by the caller from
 * its own limits, never from a number a server sent.  The buffer owns `data`
 * (free with buf_free).  `data` is always NUL-terminated past `len` when
 * non-NULL, so text can be used as a C string.
 */
#include <stddef.h>

typedef struct buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max; /* 0 = no cap (only for trusted data) */
} buf;

/* Append; -1 (errno ENOMEM or EFBIG when max would be passed), else 0. */
int buf_append(buf *b, const void *data, size_t len);
/*
 * Room for `extra` more bytes (and the NUL) after len, growing as buf_append
 * would, for a caller that writes into data directly and then sets len and
 * the NUL itself; -1 (errno EFBIG when max would be passed, or ENOMEM).
 */
int buf_reserve(buf *b, size_t extra);
void buf_reset(buf *b); /* len = 0, keeps the memory */
/* Exchange the bytes (data, len, cap) of a and b; each keeps its own max. */
void buf_trade(buf *a, buf *b);
void buf_free(buf *b);  /* frees data, zeroes the struct but keeps max */
#endif

/* mailmill - ISC licence, see LICENSE */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/linebuf.h"

#define LINEBUF_MIN_CAP 4096

int
linebuf_init(linebuf *lb, size_t max_line)
{
	memset(lb, 0, sizeof(*lb));
	/* max_line + CR + LF must stay far from SIZE_MAX for the checks below. */
	if (max_line == 0 || max_line > SIZE_MAX / 4) {
		errno = EINVAL;
		return -1;
	}
	lb->data = malloc(LINEBUF_MIN_CAP);
	if (lb->data == NULL)
		return -1;
	lb->cap = LINEBUF_MIN_CAP;
	lb->max_line = max_line;
	return 0;
}

void
linebuf_free(linebuf *lb)
{
	free(lb->data);
	memset(lb, 0, sizeof(*lb));
}

/* Make sure `want` bytes fit after end: slide the pending bytes down first,
 * grow only if that is not enough. */
static int
linebuf_reserve(linebuf *lb, size_t want)
{
	size_t pending = lb->end - lb->start;
	size_t need, ncap;
	char *p;

	if (lb->cap - lb->end >= want)
		return 0;
	if (lb->start > 0) {
		memmove(lb->data, lb->data + lb->start, pending);
		lb->start = 0;
		lb->end = pending;
		if (lb->cap - lb->end >= want)
			return 0;
	}
	if (want > SIZE_MAX - pending) {
		errno = ENOMEM;
		return -1;
	}
	need = pending + want;
	ncap = lb->cap > SIZE_MAX / 2 ? need : lb->cap * 2;
	if (ncap < need)
		ncap = need;
	p = realloc(lb->data, ncap);
	if (p == NULL) {
		errno = ENOMEM;
		return -1;
	}
	lb->data = p;
	lb->cap = ncap;
	return 0;
}

int
linebuf_feed(linebuf *lb, const char *data, size_t len)
{
	if (len == 0)
		return 0;
	if (linebuf_reserve(lb, len) < 0)
		return -1;
	memcpy(lb->data + lb->end, data, len);
	lb->end += len;
	return 0;
}

int
linebuf_next(linebuf *lb, const char **line, size_t *len)
{
	size_t pending = lb->end - lb->start;
	char *start = lb->data + lb->start;
	char *lf;
	size_t n;

	lf = pending > lb->scan ? memchr(start + lb->scan, '\n', pending - lb->scan) : NULL;
	if (lf == NULL) {
		lb->scan = pending;
		/* Even a CR still waiting for its LF cannot make this line fit. */
		if (pending > lb->max_line + 1 ||
		    (pending == lb->max_line + 1 && start[pending - 1] != '\r'))
			return -1;
		return 0;
	}
	n = (size_t)(lf - start);
	if (n > 0 && start[n - 1] == '\r')
		n--;
	if (n > lb->max_line)
		return -1;
	start[n] = '\0';
	lb->start += (size_t)(lf - start) + 1;
	lb->scan = 0;
	if (lb->start == lb->end)
		lb->start = lb->end = 0;
	*line = start;
	*len = n;
	return 1;
}

int
linebuf_next_part(linebuf *lb, const char **line, size_t *len, int *whole)
{
	int r = linebuf_next(lb, line, len);

	*whole = 1;
	if (r >= 0)
		return r;
	/*
	 * Longer than max_line: hand out its first max_line bytes.  Byte
	 * max_line exists and is no LF (else the line would have fit, its CR
	 * stripped), so a CR at max_line - 1 is a bare one: content.
	 */
	*whole = 0;
	*line = lb->data + lb->start;
	*len = lb->max_line;
	lb->start += lb->max_line;
	lb->scan = lb->scan > lb->max_line ? lb->scan - lb->max_line : 0;
	return 1;
}

size_t
linebuf_pending(const linebuf *lb)
{
	return lb->end - lb->start;
}

char *
linebuf_space(linebuf *lb, size_t want, size_t *room)
{
	if (want == 0)
		want = 1;
	if (linebuf_reserve(lb, want) < 0) {
		*room = 0;
		return NULL;
	}
	*room = lb->cap - lb->end;
	return lb->data + lb->end;
}

void
linebuf_commit(linebuf *lb, size_t n)
{
	/* A caller bug must not walk past the buffer. */
	if (n > lb->cap - lb->end)
		n = lb->cap - lb->end;
	lb->end += n;
}

size_t
linebuf_peek(const linebuf *lb, const char **data)
{
	*data = lb->data + lb->start;
	return lb->end - lb->start;
}

void
linebuf_skip(linebuf *lb, size_t n)
{
	size_t pending = lb->end - lb->start;

	/* A caller bug must not walk past the buffer. */
	if (n > pending)
		n = pending;
	lb->start += n;
	lb->scan = lb->scan > n ? lb->scan - n : 0;
	if (lb->start == lb->end)
		lb->start = lb->end = 0;
}

size_t
linebuf_take(linebuf *lb, char *out, size_t len)
{
	size_t pending = lb->end - lb->start;
	size_t n = len < pending ? len : pending;

	if (n == 0)
		return 0;
	memcpy(out, lb->data + lb->start, n);
	lb->start += n;
	lb->scan = lb->scan > n ? lb->scan - n : 0;
	if (lb->start == lb->end)
		lb->start = lb->end = 0;
	return n;
}

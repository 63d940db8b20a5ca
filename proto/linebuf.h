/* mailmill - ISC licence, see LICENSE */
#ifndef MM_LINEBUF_H
#define MM_LINEBUF_H
/*
 * A line splitter that does no I/O: bytes go in with linebuf_feed (or are
 * read straight into linebuf_space), whole lines come out with linebuf_next.
 * Lines end with LF; a CR before it is removed.  A line longer than max_line
 * (without its line end) is an error for linebuf_next: the caller must treat
 * the stream as broken; linebuf_next_part hands it out in pieces instead.
 * Tests feed it byte by byte and in odd chunks.
 */
#include <stddef.h>

typedef struct linebuf {
	char *data;
	size_t cap, start, end;
	size_t max_line;
	size_t scan; /* bytes after start already searched for LF: no rescans */
} linebuf;

/* -1 on ENOMEM, or EINVAL if max_line is 0 or absurd. */
int linebuf_init(linebuf *lb, size_t max_line);
void linebuf_free(linebuf *lb);
/* Copy bytes in; -1 if the buffer cannot take them (ENOMEM). */
int linebuf_feed(linebuf *lb, const char *data, size_t len);
/*
 * Next line: 1 and *line, *len (borrowed, valid until the next call on lb;
 * NUL-terminated, no line end), 0 if no complete line is buffered yet, -1 if
 * the buffered partial line is already longer than max_line.
 */
int linebuf_next(linebuf *lb, const char **line, size_t *len);
/*
 * As linebuf_next for a reader that takes a line of any length in pieces
 * (a message body): 1 and *whole 1 for a complete line (as linebuf_next);
 * 1 and *whole 0 for the first max_line bytes of a longer line (consumed;
 * NOT NUL-terminated; the next call goes on with the same line); 0 if more
 * bytes are needed.  Never -1.  A CR that may be the first half of a line
 * end is never split from its LF, so pieces joined make the line exactly.
 */
int linebuf_next_part(linebuf *lb, const char **line, size_t *len, int *whole);
size_t linebuf_pending(const linebuf *lb);  /* bytes buffered, not yet returned */
/*
 * Room to read into directly: returns a pointer to at least `want` free
 * bytes (*room says how many exactly) or NULL (ENOMEM); commit what was
 * written with linebuf_commit.  May move buffered bytes, so lines returned
 * before are no longer valid.
 */
char *linebuf_space(linebuf *lb, size_t want, size_t *room);
void linebuf_commit(linebuf *lb, size_t n);
/*
 * The buffered bytes not yet returned (borrowed until the next call on lb),
 * for a caller that splits many lines at once; it then drops what it used
 * with linebuf_skip (n <= what linebuf_peek returned).
 */
size_t linebuf_peek(const linebuf *lb, const char **data);
void linebuf_skip(linebuf *lb, size_t n);
/* Take up to len raw bytes already buffered (not split into lines). */
size_t linebuf_take(linebuf *lb, char *out, size_t len);
#endif

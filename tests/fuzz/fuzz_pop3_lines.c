/* mailmill - ISC licence, see LICENSE */
/*
 * POP3 line reading as the session does it: bytes through a linebuf in small
 * chunks (sizes taken from the input), the first line as a status line, the
 * following ones as LIST, UIDL and STAT lines and as body lines appended to a
 * bounded buffer, until the terminating dot.  Then the same bytes as a body
 * read in pieces of a few bytes (linebuf_next_part, pop3_body_piece, as the
 * session reads lines longer than its cap) must give what whole lines give.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "proto/buf.h"
#include "proto/linebuf.h"
#include "proto/pop3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The body in data as whole lines (ref) or in pieces of max_line bytes fed
 * chunk bytes at a time: 1 if it ended at its dot. */
static int
body_read(const uint8_t *data, size_t size, size_t max_line, size_t chunk, int pieces, buf *out)
{
	linebuf lb;
	size_t off = 0;
	int first = 1, r = 1;

	if (linebuf_init(&lb, max_line) < 0)
		__builtin_trap();
	while (r == 1 && off < size) {
		size_t n = size - off < chunk ? size - off : chunk;
		const char *line;
		size_t len;
		int whole = 1, got = 0;

		if (linebuf_feed(&lb, (const char *)data + off, n) < 0)
			__builtin_trap();
		off += n;
		while (r == 1 && (got = pieces ? linebuf_next_part(&lb, &line, &len, &whole) :
				       linebuf_next(&lb, &line, &len)) == 1) {
			if (len > max_line)
				__builtin_trap();
			r = pop3_body_piece(line, len, first, whole, out);
			first = whole;
		}
		if (r == 1 && got < 0)
			__builtin_trap();
	}
	linebuf_free(&lb);
	return r == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	linebuf lb;
	buf body = { .max = 4096 };
	size_t off = 1, nline = 0;
	unsigned chunk;
	int done = 0;

	if (size < 1 || linebuf_init(&lb, 512) < 0)
		return 0;
	chunk = (data[0] % 7) + 1;
	while (off < size && !done) {
		size_t n = size - off < chunk ? size - off : chunk;
		const char *line;
		size_t len;
		int r;

		if (linebuf_feed(&lb, (const char *)data + off, n) < 0)
			break;
		off += n;
		while (!done && (r = linebuf_next(&lb, &line, &len)) == 1) {
			if (nline++ == 0) {
				pop3_rcode code;
				const char *text;
				unsigned long c;
				unsigned long long o;

				if (pop3_parse_status(line, len, &code, &text) == 1)
					(void)pop3_parse_stat(text, len - (size_t)(text - line), &c, &o);
				(void)pop3_rcode_name(code);
			} else {
				unsigned long no;
				unsigned long long sz;
				char uid[71];
				int uid_ok;
				const char *d;
				size_t dl;

				(void)pop3_parse_list_line(line, len, &no, &sz);
				if (pop3_parse_uidl_line(line, len, &no, uid, &uid_ok) == 0 && uid_ok &&
				    !pop3_uid_valid(uid, strlen(uid)))
					__builtin_trap();
				if (pop3_ml_line(line, len, &d, &dl) == 0 ||
				    pop3_body_piece(line, len, 1, 1, &body) <= 0)
					done = 1;
				if (body.len > body.max)
					__builtin_trap();
			}
		}
		if (r < 0)
			break;
	}
	buf_free(&body);
	linebuf_free(&lb);
	{
		buf ref = { .max = 0 }, got = { .max = 0 };
		size_t max_line = (size_t)(data[0] % 13) + 1;

		int ended = body_read(data + 1, size - 1, size + 1, size, 0, &ref);

		/* Unended, the pieces may hold the start of a last line without LF. */
		if (ended != body_read(data + 1, size - 1, max_line, chunk, 1, &got) ||
		    (ended ? ref.len != got.len : ref.len > got.len) ||
		    (ref.len > 0 && memcmp(ref.data, got.data, ref.len) != 0))
			__builtin_trap();
		buf_free(&ref);
		buf_free(&got);
	}
	return 0;
}

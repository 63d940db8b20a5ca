/* mailmill - ISC licence, see LICENSE */
/*
 * POP3 line reading as the session does it: bytes through a linebuf in small
 * chunks (sizes taken from the input), the first line as a status line, the
 * following ones as LIST, UIDL and STAT lines and as body lines appended to a
 * bounded buffer, until the terminating dot.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "proto/buf.h"
#include "proto/linebuf.h"
#include "proto/pop3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
				if (pop3_ml_line(line, len, &d, &dl) == 0 || pop3_body_line(line, len, &body) <= 0)
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
	return 0;
}

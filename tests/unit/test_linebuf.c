/* mailmill - ISC licence, see LICENSE */
/* The line splitter and the capped buffer, fed in awkward chunk sizes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/buf.h"
#include "proto/linebuf.h"

/* Mixed line ends, an empty line, a CR inside a line, a line of exactly max. */
static const char stream[] =
	"+OK POP3 ready\r\n"
	"plain LF line\n"
	"\r\n"
	"\n"
	"bare\rCR inside\r\n"
	"ends with two CRs\r\r\n"
	"0123456789abcdef0123456789abcdef\r\n" /* 32 bytes: max_line below */
	".\r\n";
static const char *const expected[] = {
	"+OK POP3 ready", "plain LF line", "", "", "bare\rCR inside", "ends with two CRs\r",
	"0123456789abcdef0123456789abcdef", ".",
};
#define NEXPECTED (sizeof(expected) / sizeof(expected[0]))

/* Feed `stream` `chunk` bytes at a time, checking each line as it appears. */
static void
feed_in_chunks(size_t chunk, int direct)
{
	size_t total = sizeof(stream) - 1, off = 0, got = 0, n, len, room;
	const char *line;
	linebuf lb;
	char *p;
	int r;

	assert_int_equal(linebuf_init(&lb, 32), 0);
	while (off < total) {
		n = total - off < chunk ? total - off : chunk;
		if (direct) {
			p = linebuf_space(&lb, n, &room);
			assert_non_null(p);
			assert_true(room >= n);
			memcpy(p, stream + off, n);
			linebuf_commit(&lb, n);
		} else {
			assert_int_equal(linebuf_feed(&lb, stream + off, n), 0);
		}
		off += n;
		while ((r = linebuf_next(&lb, &line, &len)) == 1) {
			assert_true(got < NEXPECTED);
			assert_int_equal(len, strlen(expected[got]));
			assert_memory_equal(line, expected[got], len);
			assert_int_equal(line[len], '\0');
			got++;
		}
		assert_int_equal(r, 0);
	}
	assert_int_equal(got, NEXPECTED);
	assert_int_equal(linebuf_pending(&lb), 0);
	linebuf_free(&lb);
}

static void
test_chunk_1(void **state)
{
	feed_in_chunks(1, 0);
	feed_in_chunks(1, 1);
}

static void
test_chunk_2(void **state)
{
	feed_in_chunks(2, 0);
	feed_in_chunks(2, 1);
}

static void
test_chunk_7(void **state)
{
	feed_in_chunks(7, 0);
	feed_in_chunks(7, 1);
}

static void
test_chunk_all(void **state)
{
	feed_in_chunks(sizeof(stream), 0);
	feed_in_chunks(sizeof(stream), 1);
}

static void
test_no_line_yet(void **state)
{
	const char *line;
	size_t len;
	linebuf lb;

	assert_int_equal(linebuf_init(&lb, 64), 0);
	assert_int_equal(linebuf_next(&lb, &line, &len), 0);
	assert_int_equal(linebuf_feed(&lb, "abc\r", 4), 0);
	assert_int_equal(linebuf_next(&lb, &line, &len), 0);
	assert_int_equal(linebuf_pending(&lb), 4);
	assert_int_equal(linebuf_feed(&lb, "\n", 1), 0);
	assert_int_equal(linebuf_next(&lb, &line, &len), 1);
	assert_string_equal(line, "abc");
	assert_int_equal(len, 3);
	linebuf_free(&lb);
}

/* max_line counts the line without its end: max+CRLF fits, max+1 does not. */
static void
test_overlong(void **state)
{
	const char *line;
	size_t len, i;
	linebuf lb;
	int r = 0;

	assert_int_equal(linebuf_init(&lb, 8), 0);
	assert_int_equal(linebuf_feed(&lb, "12345678\r\n", 10), 0);
	assert_int_equal(linebuf_next(&lb, &line, &len), 1);
	assert_string_equal(line, "12345678");
	assert_int_equal(linebuf_feed(&lb, "12345678\n", 9), 0);
	assert_int_equal(linebuf_next(&lb, &line, &len), 1);
	/* A complete but overlong line is refused. */
	assert_int_equal(linebuf_feed(&lb, "123456789\r\n", 11), 0);
	assert_int_equal(linebuf_next(&lb, &line, &len), -1);
	linebuf_free(&lb);

	/* Byte by byte, without a line end: refused as soon as it cannot fit. */
	assert_int_equal(linebuf_init(&lb, 8), 0);
	for (i = 0; i < 100; i++) {
		assert_int_equal(linebuf_feed(&lb, "x", 1), 0);
		r = linebuf_next(&lb, &line, &len);
		if (r != 0)
			break;
	}
	assert_int_equal(r, -1);
	assert_int_equal(i, 8); /* the 9th byte: it is not a CR, so no room is left */
	linebuf_free(&lb);

	/* max bytes and a CR still waiting for its LF are fine. */
	assert_int_equal(linebuf_init(&lb, 8), 0);
	assert_int_equal(linebuf_feed(&lb, "abcdefgh\r", 9), 0);
	assert_int_equal(linebuf_next(&lb, &line, &len), 0);
	assert_int_equal(linebuf_feed(&lb, "\n", 1), 0);
	assert_int_equal(linebuf_next(&lb, &line, &len), 1);
	assert_string_equal(line, "abcdefgh");
	/* ...but a CR followed by anything else is past the limit. */
	assert_int_equal(linebuf_feed(&lb, "abcdefgh\rX", 10), 0);
	assert_int_equal(linebuf_next(&lb, &line, &len), -1);
	linebuf_free(&lb);
}

static void
test_init_invalid(void **state)
{
	linebuf lb;

	errno = 0;
	assert_int_equal(linebuf_init(&lb, 0), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(linebuf_init(&lb, SIZE_MAX), -1);
}

/* space/commit and take, across compaction and growth. */
static void
test_space_commit_take(void **state)
{
	const char *line;
	char out[16], *p;
	size_t len, room, i;
	linebuf lb;

	assert_int_equal(linebuf_init(&lb, 1000), 0);
	p = linebuf_space(&lb, 10, &room);
	assert_non_null(p);
	assert_true(room >= 10);
	memcpy(p, "one\ntwo\nthr", 11);
	linebuf_commit(&lb, 11);
	assert_int_equal(linebuf_next(&lb, &line, &len), 1);
	assert_string_equal(line, "one");
	assert_int_equal(linebuf_pending(&lb), 7);
	/* take returns raw bytes, line ends included, and never more than buffered */
	assert_int_equal(linebuf_take(&lb, out, 4), 4);
	assert_memory_equal(out, "two\n", 4);
	assert_int_equal(linebuf_take(&lb, out, sizeof(out)), 3);
	assert_memory_equal(out, "thr", 3);
	assert_int_equal(linebuf_pending(&lb), 0);
	assert_int_equal(linebuf_take(&lb, out, sizeof(out)), 0);

	/* A partial line survives being moved when a large read needs room. */
	assert_int_equal(linebuf_feed(&lb, "done\npartial li", 15), 0);
	assert_int_equal(linebuf_next(&lb, &line, &len), 1);
	assert_int_equal(linebuf_next(&lb, &line, &len), 0);
	p = linebuf_space(&lb, 100000, &room);
	assert_non_null(p);
	assert_true(room >= 100000);
	for (i = 0; i < 100000; i++)
		p[i] = i % 2 == 0 ? 'n' : '\n';
	p[0] = 'e';
	linebuf_commit(&lb, 100000);
	assert_int_equal(linebuf_next(&lb, &line, &len), 1);
	assert_string_equal(line, "partial lie");
	for (i = 1; i < 50000; i++) {
		assert_int_equal(linebuf_next(&lb, &line, &len), 1);
		assert_string_equal(line, "n");
	}
	assert_int_equal(linebuf_next(&lb, &line, &len), 0);
	assert_int_equal(linebuf_pending(&lb), 0);
	linebuf_free(&lb);
}

/* take after a partial scan must not make next skip bytes it has not seen. */
static void
test_take_after_scan(void **state)
{
	const char *line;
	char out[4];
	size_t len;
	linebuf lb;

	assert_int_equal(linebuf_init(&lb, 100), 0);
	assert_int_equal(linebuf_feed(&lb, "abcdef", 6), 0);
	assert_int_equal(linebuf_next(&lb, &line, &len), 0);
	assert_int_equal(linebuf_take(&lb, out, 2), 2);
	assert_int_equal(linebuf_feed(&lb, "\nX\n", 3), 0);
	assert_int_equal(linebuf_next(&lb, &line, &len), 1);
	assert_string_equal(line, "cdef");
	assert_int_equal(linebuf_next(&lb, &line, &len), 1);
	assert_string_equal(line, "X");
	linebuf_free(&lb);
}

static void
test_buf_cap(void **state)
{
	buf b = { .max = 10 };

	assert_int_equal(buf_append(&b, "hello", 5), 0);
	assert_string_equal(b.data, "hello");
	assert_int_equal(buf_append(&b, "world", 5), 0);
	assert_int_equal(b.len, 10);
	assert_string_equal(b.data, "helloworld");
	errno = 0;
	assert_int_equal(buf_append(&b, "!", 1), -1);
	assert_int_equal(errno, EFBIG);
	assert_int_equal(b.len, 10); /* a refused append leaves the buffer as it was */
	assert_string_equal(b.data, "helloworld");
	/* A length that would wrap size_t is refused, not wrapped. */
	assert_int_equal(buf_append(&b, "x", SIZE_MAX), -1);
	assert_int_equal(errno, EFBIG);
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	assert_int_equal(buf_append(&b, "", 0), 0);
	buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.max, 10);
}

static void
test_buf_grow(void **state)
{
	buf b = { .max = 0 };
	char chunk[1000];
	size_t i;

	memset(chunk, 'z', sizeof(chunk));
	for (i = 0; i < 1000; i++)
		assert_int_equal(buf_append(&b, chunk, sizeof(chunk)), 0);
	assert_int_equal(b.len, 1000000);
	assert_true(b.cap > b.len);
	assert_int_equal(b.data[b.len], '\0');
	assert_int_equal(b.data[999999], 'z');
	buf_free(&b);
}

/*
 * linebuf_next_part: any line in pieces of at most max_line bytes, never
 * an error; the pieces joined are what linebuf_next gives with room to
 * spare, at every max_line and every chunk size.  CRs at every place a
 * piece may end (bare ones, and the first half of a CRLF).
 */
static void
test_parts(void **state)
{
	static const char in[] =
		"short\r\n"
		"a line longer than the cap\r\n"
		"cr\r\rat\rthe\rends\r\r\r\n"
		"\r\n"
		"lf only and long enough\n"
		"x\r\n"
		"0123456789012345678901234567890123456789012345678901234567890123\r\n";
	size_t total = sizeof(in) - 1, max, chunk;

	for (max = 1; max <= 14; max++)
		for (chunk = 1; chunk <= total; chunk += chunk < 9 ? 1 : 13) {
			linebuf lb, ref;
			char joined[256];
			size_t off = 0, jl = 0, len, rlen;
			const char *line, *rline;
			int whole, r;

			assert_int_equal(linebuf_init(&lb, max), 0);
			assert_int_equal(linebuf_init(&ref, 4096), 0);
			assert_int_equal(linebuf_feed(&ref, in, total), 0);
			while (off < total) {
				size_t n = total - off < chunk ? total - off : chunk;

				assert_int_equal(linebuf_feed(&lb, in + off, n), 0);
				off += n;
				while ((r = linebuf_next_part(&lb, &line, &len, &whole)) == 1) {
					assert_true(len <= max);
					assert_true(jl + len < sizeof joined);
					memcpy(joined + jl, line, len);
					jl += len;
					if (!whole)
						continue;
					assert_int_equal(linebuf_next(&ref, &rline, &rlen), 1);
					if (jl != rlen || memcmp(joined, rline, rlen) != 0)
						fail_msg("max %zu chunk %zu: \"%.*s\", want \"%s\"", max,
							 chunk, (int)jl, joined, rline);
					jl = 0;
				}
				assert_int_equal(r, 0);
			}
			assert_int_equal(jl, 0);
			assert_int_equal(linebuf_next(&ref, &rline, &rlen), 0);
			assert_int_equal(linebuf_pending(&lb), 0);
			linebuf_free(&lb);
			linebuf_free(&ref);
		}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chunk_1),
		cmocka_unit_test(test_chunk_2),
		cmocka_unit_test(test_chunk_7),
		cmocka_unit_test(test_chunk_all),
		cmocka_unit_test(test_no_line_yet),
		cmocka_unit_test(test_overlong),
		cmocka_unit_test(test_parts),
		cmocka_unit_test(test_init_invalid),
		cmocka_unit_test(test_space_commit_take),
		cmocka_unit_test(test_take_after_scan),
		cmocka_unit_test(test_buf_cap),
		cmocka_unit_test(test_buf_grow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

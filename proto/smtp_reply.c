/* mailmill - ISC licence, see LICENSE */
/*
 * The parts of the SMTP client that do no I/O: the reply parser and the DATA
 * encoder (CRLF line ends, dot-stuffing).  Kept apart so that tests and fuzz
 * targets can drive them with arbitrary bytes.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "proto/smtp.h"

void
smtp_reply_clear(smtp_reply *r)
{
	if (r == NULL)
		return;
	free(r->text);
	memset(r, 0, sizeof(*r));
}

int
smtp_reply_parser_init(smtp_reply_parser *p, size_t max_line, size_t max_lines)
{
	memset(p, 0, sizeof(*p));
	p->max_line = max_line != 0 ? max_line : 2048;
	p->max_lines = max_lines != 0 ? max_lines : 128;
	/* room for the line, a CR before its LF, and a NUL */
	if (p->max_line > (size_t)-1 - 2)
		return -1;
	p->line = malloc(p->max_line + 2);
	return p->line != NULL ? 0 : -1;
}

void
smtp_reply_parser_free(smtp_reply_parser *p)
{
	free(p->line);
	free(p->text);
	memset(p, 0, sizeof(*p));
}

static void
parser_restart(smtp_reply_parser *p)
{
	p->code = 0;
	p->nlines = 0;
	p->enhanced[0] = '\0';
	p->text_len = 0;
}

static int
parser_fail(smtp_reply_parser *p, const char **error_r, const char *why)
{
	p->failed = 1;
	if (error_r != NULL)
		*error_r = why;
	return -1;
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* 1-3 digits at *pos (RFC 3463 subject and detail); advances *pos. */
static int
digits_1_3(const char *s, size_t len, size_t *pos)
{
	size_t n = 0;

	while (*pos < len && is_digit(s[*pos]) && n < 4) {
		(*pos)++;
		n++;
	}
	return n >= 1 && n <= 3;
}

size_t
smtp_parse_enhanced(const char *text, size_t len)
{
	size_t pos;

	if (len < 5 || (text[0] != '2' && text[0] != '4' && text[0] != '5') || text[1] != '.')
		return 0;
	pos = 2;
	if (!digits_1_3(text, len, &pos) || pos >= len || text[pos] != '.')
		return 0;
	pos++;
	if (!digits_1_3(text, len, &pos))
		return 0;
	if (pos < len && text[pos] != ' ')
		return 0;
	return pos;
}

static int
text_append(smtp_reply_parser *p, const char *s, size_t len)
{
	size_t need;

	if (len > (size_t)-1 - p->text_len - 1)
		return -1;
	need = p->text_len + len + 1;
	if (need > p->text_cap) {
		size_t cap = p->text_cap != 0 ? p->text_cap : 256;
		char *n;

		while (cap < need) {
			if (cap > (size_t)-1 / 2)
				return -1;
			cap *= 2;
		}
		n = realloc(p->text, cap);
		if (n == NULL)
			return -1;
		p->text = n;
		p->text_cap = cap;
	}
	memcpy(p->text + p->text_len, s, len);
	p->text_len += len;
	p->text[p->text_len] = '\0';
	return 0;
}

int
smtp_reply_parse_line(smtp_reply_parser *p, const char *line, size_t len,
			  smtp_reply *reply_r, const char **error_r)
{
	const char *text;
	size_t text_len, enh;
	int code;
	char sep;

	if (p->failed)
		return parser_fail(p, error_r, "reply parser already failed");
	if (len > p->max_line)
		return parser_fail(p, error_r, "reply line too long");
	if (memchr(line, '\0', len) != NULL)
		return parser_fail(p, error_r, "NUL byte in reply");
	if (len < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2]))
		return parser_fail(p, error_r, "reply line without a 3-digit code");
	if (line[0] < '2' || line[0] > '5' || line[1] > '5')
		return parser_fail(p, error_r, "reply code out of range");
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	sep = len == 3 ? ' ' : line[3];
	if (sep != ' ' && sep != '-')
		return parser_fail(p, error_r, "bad character after the reply code");
	if (p->nlines > 0 && code != p->code)
		return parser_fail(p, error_r, "reply lines with different codes");
	if (p->nlines >= p->max_lines)
		return parser_fail(p, error_r, "reply with too many lines");

	text = len > 4 ? line + 4 : "";
	text_len = len > 4 ? len - 4 : 0;
	enh = smtp_parse_enhanced(text, text_len);
	if (enh != 0 && text[0] != line[0])
		enh = 0; /* a "5.x.x" on a 250 is text, not a status */
	if (p->nlines == 0 && enh != 0 && enh < sizeof(p->enhanced)) {
		memcpy(p->enhanced, text, enh);
		p->enhanced[enh] = '\0';
	}
	if (p->enhanced[0] != '\0' && enh != 0) {
		text += enh;
		text_len -= enh;
		if (text_len > 0 && *text == ' ') {
			text++;
			text_len--;
		}
	}
	if ((p->nlines > 0 && text_append(p, "\n", 1) < 0) || text_append(p, text, text_len) < 0)
		return parser_fail(p, error_r, "out of memory");
	p->code = code;
	p->nlines++;
	if (sep == '-')
		return 0;

	memset(reply_r, 0, sizeof(*reply_r));
	reply_r->code = p->code;
	memcpy(reply_r->enhanced, p->enhanced, sizeof(reply_r->enhanced));
	reply_r->nlines = p->nlines;
	reply_r->text = p->text;
	p->text = NULL;
	p->text_cap = 0;
	parser_restart(p);
	return 1;
}

int
smtp_reply_parse(smtp_reply_parser *p, const char *data, size_t len, size_t *used_r,
		     smtp_reply *reply_r, const char **error_r)
{
	size_t i;

	*used_r = 0;
	if (p->failed)
		return parser_fail(p, error_r, "reply parser already failed");
	for (i = 0; i < len; i++) {
		char c = data[i];

		if (c == '\n') {
			size_t n = p->line_len;
			int r;

			if (n > 0 && p->line[n - 1] == '\r')
				n--;
			p->line[n] = '\0';
			p->line_len = 0;
			r = smtp_reply_parse_line(p, p->line, n, reply_r, error_r);
			if (r != 0) {
				*used_r = i + 1;
				return r;
			}
			continue;
		}
		/* one byte of slack for the CR of a line of exactly max_line */
		if (p->line_len > p->max_line)
			return parser_fail(p, error_r, "reply line too long");
		p->line[p->line_len++] = c;
	}
	*used_r = len;
	return 0;
}

/* ---- DATA encoder ---- */

void
smtp_data_init(smtp_data_enc *e)
{
	memset(e, 0, sizeof(*e));
	e->at_line_start = 1;
}

static int
put(smtp_data_enc *e, smtp_emit_fn *emit, void *arg, const char *d, size_t len)
{
	if (len == 0)
		return 0;
	e->out += len;
	return emit(arg, d, len);
}

int
smtp_data_encode(smtp_data_enc *e, const char *in, size_t len, smtp_emit_fn *emit,
		     void *arg)
{
	size_t i = 0, run = 0;

	while (i < len) {
		char c = in[i];

		if (e->after_cr) {
			e->after_cr = 0;
			if (c == '\n') {
				/* the LF of a CRLF whose CR already ended the line */
				run = ++i;
				continue;
			}
		}
		if (e->at_line_start) {
			e->at_line_start = 0;
			e->col = 0;
			if (c == '.') {
				if (put(e, emit, arg, ".", 1) < 0)
					return -1;
				e->col = 1;
			}
		}
		if (c == '\n' || c == '\r') {
			if (put(e, emit, arg, in + run, i - run) < 0 ||
			    put(e, emit, arg, "\r\n", 2) < 0)
				return -1;
			e->at_line_start = 1;
			e->after_cr = c == '\r';
			run = ++i;
			continue;
		}
		if (e->col >= SMTP_DATA_LINE_MAX) {
			/* The continuation starts with a space: never a dot to stuff. */
			if (put(e, emit, arg, in + run, i - run) < 0 ||
			    put(e, emit, arg, "\r\n ", 3) < 0)
				return -1;
			e->col = 1;
			run = i;
		}
		e->col++;
		i++;
	}
	return put(e, emit, arg, in + run, i - run);
}

int
smtp_data_finish(smtp_data_enc *e, smtp_emit_fn *emit, void *arg)
{
	if (!e->at_line_start && put(e, emit, arg, "\r\n", 2) < 0)
		return -1;
	return put(e, emit, arg, ".\r\n", 3);
}

static int
emit_nothing(void *arg, const char *data, size_t len)
{
	return 0;
}

unsigned long long
smtp_data_wire_size(const char *msg, size_t len)
{
	smtp_data_enc e;

	smtp_data_init(&e);
	(void)smtp_data_encode(&e, msg, len, emit_nothing, NULL);
	(void)smtp_data_finish(&e, emit_nothing, NULL);
	return e.out;
}

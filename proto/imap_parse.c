/* mailmill - ISC licence, see LICENSE */
/*
 * The IMAP response parser: no I/O.  Framing is incremental (bytes of any
 * chunking: a response is its lines and the literals between them); the
 * tokens of a complete response are then read from what was kept.  A body
 * literal (BODY[...], BINARY[...], RFC822 of a FETCH) is never kept: it is
 * handed out in chunks as it arrives, so nothing is ever sized by the
 * number in "{n}".  What is kept is bounded by max_line (text) plus
 * max_literal (the other literals of one response).
 *
 * Kept form: each line without its CR LF; a kept literal as "{n}\n" and its
 * n bytes; a streamed body as "{n}\0" (NUL cannot occur in a line: refused).
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/buf.h"
#include "proto/imap.h"

#define DEF_MAX_LINE 65536
#define DEF_MAX_LITERAL 65536
#define DEF_MAX_DEPTH 16
#define DEF_MAX_TOKENS 100000
/* Beyond this a literal size is nonsense (and would overflow our sums). */
#define LITERAL_SIZE_MAX (1ULL << 63)

enum { ST_LINE = 0, ST_LITERAL, ST_BODY };

struct imap_parser {
	imap_parser_limits lim;
	buf raw;             /* the response so far, in the kept form */
	size_t seg_start;    /* where the current line starts in raw */
	size_t text_len;     /* line bytes of this response (bounded by max_line) */
	size_t lit_total;    /* kept literal bytes of this response */
	unsigned long long lit_left, body_size;
	int state;
	int complete;        /* resp is valid; reset on the next feed */
	int busy;
	const char *err;
	imap_response resp;
	imap_token *toks;
	size_t n_toks, cap_toks;
};

imap_parser *
imap_parser_new(const imap_parser_limits *lim)
{
	imap_parser *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	if (lim != NULL)
		p->lim = *lim;
	if (p->lim.max_line == 0)
		p->lim.max_line = DEF_MAX_LINE;
	if (p->lim.max_literal == 0)
		p->lim.max_literal = DEF_MAX_LITERAL;
	if (p->lim.max_depth == 0)
		p->lim.max_depth = DEF_MAX_DEPTH;
	if (p->lim.max_tokens == 0)
		p->lim.max_tokens = DEF_MAX_TOKENS;
	return p;
}

void
imap_parser_free(imap_parser **pp)
{
	imap_parser *p = *pp;

	if (p == NULL)
		return;
	buf_free(&p->raw);
	free(p->toks);
	free(p);
	*pp = NULL;
}

const imap_response *
imap_parser_response(const imap_parser *p)
{
	return p->complete ? &p->resp : NULL;
}

const char *
imap_parser_error(const imap_parser *p)
{
	return p->err != NULL ? p->err : "no error";
}

int
imap_parser_busy(const imap_parser *p)
{
	return p->busy;
}

unsigned long long
imap_parser_body_left(const imap_parser *p)
{
	return p->state == ST_BODY ? p->lit_left : 0;
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* 1 if s[0..len) ends with the word w (case-insensitive). */
static int
ends_with(const char *s, size_t len, const char *w)
{
	size_t n = strlen(w), i;

	if (len < n)
		return 0;
	for (i = 0; i < n; i++)
		if (lower((unsigned char)s[len - n + i]) != lower((unsigned char)w[i]))
			return 0;
	return len == n || s[len - n - 1] == ' ' || s[len - n - 1] == '(';
}

/*
 * Does the literal whose "{" is at raw[at] carry a message body?  Only in
 * "* n FETCH", after BODY[...]<origin>, BINARY[...] or RFC822.
 */
static int
is_body_literal(const imap_parser *p, size_t at)
{
	const char *r = p->raw.data, *s = r + p->seg_start;
	size_t i, len = at - p->seg_start, j;

	i = 2;
	if (p->raw.len < 4 || r[0] != '*' || r[1] != ' ')
		return 0;
	while (i < p->raw.len && r[i] >= '0' && r[i] <= '9')
		i++;
	if (i == 2 || i + 6 > p->raw.len || strncasecmp(r + i, " FETCH", 6) != 0)
		return 0;
	if (len > 0 && s[len - 1] == '~')
		len--; /* literal8 */
	if (len == 0 || s[len - 1] != ' ')
		return 0;
	len--;
	if (ends_with(s, len, "RFC822"))
		return 1;
	if (len > 0 && s[len - 1] == '>') {
		while (len > 0 && s[len - 1] != '<')
			len--;
		if (len == 0)
			return 0;
		len--;
	}
	if (len == 0 || s[len - 1] != ']')
		return 0;
	for (j = len; j > 0 && s[j - 1] != '['; j--)
		;
	if (j == 0)
		return 0;
	return ends_with(s, j - 1, "BODY") || ends_with(s, j - 1, "BINARY");
}

/* "{n}" or "{n+}" at the end of raw[from..to): 1 and *n_r, *open_r; 0 if none; -1 bad size. */
static int
literal_at_end(const char *r, size_t from, size_t to, unsigned long long *n_r, size_t *open_r)
{
	size_t i = to, d;
	unsigned long long v = 0;

	if (i <= from || r[i - 1] != '}')
		return 0;
	i--;
	if (i > from && r[i - 1] == '+')
		i--;
	d = i;
	while (i > from && r[i - 1] >= '0' && r[i - 1] <= '9')
		i--;
	if (i == d || i <= from || r[i - 1] != '{')
		return 0;
	*open_r = i - 1;
	for (; i < d; i++) {
		unsigned dg = (unsigned)(r[i] - '0');

		if (v > (LITERAL_SIZE_MAX - dg) / 10)
			return -1;
		v = v * 10 + dg;
	}
	*n_r = v;
	return 1;
}

static imap_parse_event
perr(imap_parser *p, const char *why)
{
	p->err = why;
	return IMAP_P_ERROR;
}

static int parse_response(imap_parser *p);

/* A line (without CR LF) ended at raw's end: a literal follows or the response is whole. */
static imap_parse_event
line_done(imap_parser *p)
{
	unsigned long long n;
	size_t open;
	int r;

	if (p->raw.len > p->seg_start &&
	    memchr(p->raw.data + p->seg_start, '\0', p->raw.len - p->seg_start) != NULL)
		return perr(p, "NUL byte in a response line");
	r = literal_at_end(p->raw.data, p->seg_start, p->raw.len, &n, &open);
	if (r < 0)
		return perr(p, "literal size out of range");
	if (r == 0) {
		if (parse_response(p) < 0)
			return IMAP_P_ERROR;
		p->complete = 1;
		p->busy = 0;
		return IMAP_P_RESPONSE;
	}
	if (is_body_literal(p, open)) {
		p->state = ST_BODY;
		p->body_size = n;
		if (buf_append(&p->raw, "", 1) < 0)
			return perr(p, "out of memory");
	} else {
		if (n > p->lim.max_literal - p->lit_total)
			return perr(p, "literal larger than the limit");
		p->state = ST_LITERAL;
		if (buf_append(&p->raw, "\n", 1) < 0)
			return perr(p, "out of memory");
	}
	p->lit_left = n;
	if (n == 0) {
		p->state = ST_LINE;
		p->seg_start = p->raw.len;
	}
	return IMAP_P_MORE;
}

imap_parse_event
imap_parser_feed(imap_parser *p, const char *data, size_t len, size_t *used_r,
		 const char **chunk_r, size_t *chunk_len_r)
{
	size_t used = 0;

	*used_r = 0;
	if (p->err != NULL)
		return IMAP_P_ERROR;
	if (p->complete) {
		p->complete = 0;
		p->raw.len = 0;
		p->seg_start = p->text_len = p->lit_total = 0;
		p->n_toks = 0;
	}
	while (used < len) {
		if (p->state == ST_LINE) {
			const char *nl = memchr(data + used, '\n', len - used);
			size_t take = nl != NULL ? (size_t)(nl - (data + used)) : len - used;

			p->busy = 1;
			if (take > p->lim.max_line + 1 - p->text_len)
				return perr(p, "response line too long");
			if (buf_append(&p->raw, data + used, take) < 0)
				return perr(p, "out of memory");
			p->text_len += take;
			used += take;
			if (nl == NULL)
				break;
			used++; /* the LF */
			if (p->raw.len > p->seg_start && p->raw.data[p->raw.len - 1] == '\r') {
				p->raw.len--;
				p->text_len--;
			}
			if (p->text_len > p->lim.max_line)
				return perr(p, "response line too long");
			{
				imap_parse_event ev = line_done(p);

				if (ev != IMAP_P_MORE) {
					*used_r = used;
					return ev;
				}
			}
		} else {
			size_t take = len - used;

			if ((unsigned long long)take > p->lit_left)
				take = (size_t)p->lit_left;
			p->lit_left -= take;
			if (p->state == ST_BODY) {
				*chunk_r = data + used;
				*chunk_len_r = take;
				used += take;
				if (p->lit_left == 0) {
					p->state = ST_LINE;
					p->seg_start = p->raw.len;
				}
				*used_r = used;
				return IMAP_P_BODY;
			}
			if (buf_append(&p->raw, data + used, take) < 0)
				return perr(p, "out of memory");
			p->lit_total += take;
			used += take;
			if (p->lit_left == 0) {
				p->state = ST_LINE;
				p->seg_start = p->raw.len;
			}
		}
	}
	*used_r = used;
	return IMAP_P_MORE;
}

/* ------------------------------------------------------------ tokens */

static int
atom_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '(' && c != ')' && c != '{' && c != '"';
}

static int
add_tok(imap_parser *p, imap_tok_type t, const char *s, size_t len)
{
	if (p->n_toks >= p->lim.max_tokens) {
		p->err = "too many items in a response";
		return -1;
	}
	if (p->n_toks == p->cap_toks) {
		size_t nc = p->cap_toks == 0 ? 64 : p->cap_toks * 2;
		imap_token *nt;

		if (nc > p->lim.max_tokens)
			nc = p->lim.max_tokens;
		nt = realloc(p->toks, nc * sizeof(*nt));
		if (nt == NULL) {
			p->err = "out of memory";
			return -1;
		}
		p->toks = nt;
		p->cap_toks = nc;
	}
	p->toks[p->n_toks].type = t;
	p->toks[p->n_toks].s = s;
	p->toks[p->n_toks].len = len;
	p->toks[p->n_toks].end = p->n_toks + 1;
	p->n_toks++;
	return 0;
}

/* Tokens of s[0..len) (the kept form); 0 or -1 (p->err). */
static int
tokenize(imap_parser *p, char *s, size_t len)
{
	size_t i = 0, depth = 0, stack[64];

	if (p->lim.max_depth > 64)
		p->lim.max_depth = 64;
	while (i < len) {
		unsigned char c = (unsigned char)s[i];

		if (c == ' ') {
			i++;
		} else if (c == '(') {
			if (depth >= p->lim.max_depth) {
				p->err = "lists nested too deeply";
				return -1;
			}
			if (add_tok(p, IMAP_T_LIST, s + i, 0) < 0)
				return -1;
			stack[depth++] = p->n_toks - 1;
			i++;
		} else if (c == ')') {
			if (depth == 0) {
				p->err = "unbalanced parenthesis";
				return -1;
			}
			depth--;
			p->toks[stack[depth]].end = p->n_toks;
			p->toks[stack[depth]].len = p->n_toks - stack[depth] - 1;
			i++;
		} else if (c == '"') {
			size_t o = i + 1, w = o;

			for (i = o; i < len && s[i] != '"'; i++) {
				if (s[i] == '\n' || s[i] == '\0')
					break;
				if (s[i] == '\\' && i + 1 < len)
					i++;
				s[w++] = s[i];
			}
			if (i >= len || s[i] != '"') {
				p->err = "unterminated quoted string";
				return -1;
			}
			if (add_tok(p, IMAP_T_STRING, s + o, w - o) < 0)
				return -1;
			i++;
		} else if (c == '{' || (c == '~' && i + 1 < len && s[i + 1] == '{')) {
			unsigned long long n = 0;

			i += c == '~' ? 2 : 1;
			while (i < len && s[i] >= '0' && s[i] <= '9')
				n = n * 10 + (unsigned)(s[i++] - '0'); /* checked by the framing */
			if (i < len && s[i] == '+')
				i++;
			if (i >= len || s[i] != '}') {
				p->err = "bad literal";
				return -1;
			}
			i++;
			if (i < len && s[i] == '\0') {
				if (add_tok(p, IMAP_T_BODY, NULL, (size_t)n) < 0)
					return -1;
				i++;
			} else if (i < len && s[i] == '\n' && n <= len - i - 1) {
				if (add_tok(p, IMAP_T_STRING, s + i + 1, (size_t)n) < 0)
					return -1;
				i += 1 + (size_t)n;
			} else {
				p->err = "bad literal";
				return -1;
			}
		} else if (atom_char(c)) {
			size_t o = i;

			while (i < len && atom_char((unsigned char)s[i])) {
				if (s[i] == '[') {
					/* BODY[HEADER.FIELDS (A B)]<0>: one item */
					while (i < len && s[i] != ']' && s[i] != '\n' && s[i] != '\0')
						i++;
					if (i >= len || s[i] != ']') {
						p->err = "unterminated [";
						return -1;
					}
				}
				i++;
			}
			if (i - o == 3 && strncasecmp(s + o, "NIL", 3) == 0) {
				if (add_tok(p, IMAP_T_NIL, s + o, 3) < 0)
					return -1;
			} else if (add_tok(p, IMAP_T_ATOM, s + o, i - o) < 0) {
				return -1;
			}
		} else {
			p->err = "unexpected byte in a response";
			return -1;
		}
	}
	if (depth != 0) {
		p->err = "unbalanced parenthesis";
		return -1;
	}
	return 0;
}

static const struct {
	const char *name;
	imap_cond cond;
} conds[] = {
	{ "OK", IMAP_C_OK }, { "NO", IMAP_C_NO }, { "BAD", IMAP_C_BAD },
	{ "PREAUTH", IMAP_C_PREAUTH }, { "BYE", IMAP_C_BYE },
};

/* The word at s[*i] up to a space or the end. */
static size_t
word(const char *s, size_t len, size_t *i)
{
	size_t o = *i;

	while (*i < len && s[*i] != ' ')
		(*i)++;
	return *i - o;
}

static int
parse_status_rest(imap_parser *p, const char *s, size_t len, size_t i)
{
	imap_response *r = &p->resp;

	if (i < len && s[i] == ' ')
		i++;
	if (i < len && s[i] == '[') {
		size_t o = ++i;
		const char *close;

		while (i < len && s[i] != ' ' && s[i] != ']')
			i++;
		r->code = s + o;
		r->code_len = i - o;
		close = memchr(s + i, ']', len - i);
		if (close == NULL) {
			p->err = "unterminated response code";
			return -1;
		}
		if (i < len && s[i] == ' ')
			i++;
		r->code_arg = s + i;
		r->code_arg_len = (size_t)(close - (s + i));
		i = (size_t)(close - s) + 1;
		if (i < len && s[i] == ' ')
			i++;
	}
	r->text = s + i;
	r->text_len = len - i;
	return 0;
}

static int
parse_response(imap_parser *p)
{
	imap_response *r = &p->resp;
	char *s = p->raw.data;
	size_t len = p->raw.len, i = 0, n, k;

	memset(r, 0, sizeof(*r));
	r->code = r->code_arg = r->text = r->name = r->tag = "";
	if (len == 0) {
		p->err = "empty response line";
		return -1;
	}
	if (s[0] == '+') {
		r->kind = IMAP_R_CONTINUE;
		return parse_status_rest(p, s, len, 1);
	}
	if (s[0] == '*' && len > 1 && s[1] == ' ') {
		r->kind = IMAP_R_UNTAGGED;
		i = 2;
	} else {
		r->kind = IMAP_R_TAGGED;
		r->tag = s;
		r->tag_len = word(s, len, &i);
		for (k = 0; k < r->tag_len; k++)
			if (!atom_char((unsigned char)s[k]) || s[k] == '+') {
				p->err = "bad tag";
				return -1;
			}
		if (i >= len) {
			p->err = "tagged response without a status";
			return -1;
		}
		i++;
	}
	n = word(s, len, &i);
	if (r->kind == IMAP_R_UNTAGGED && n > 0 && s[i - n] >= '0' && s[i - n] <= '9') {
		unsigned long long v = 0;

		for (k = i - n; k < i; k++) {
			if (s[k] < '0' || s[k] > '9' || v > UINT32_MAX) {
				p->err = "bad number";
				return -1;
			}
			v = v * 10 + (unsigned)(s[k] - '0');
		}
		if (v > UINT32_MAX) {
			p->err = "number out of range";
			return -1;
		}
		r->has_number = 1;
		r->number = (uint32_t)v;
		if (i < len)
			i++;
		n = word(s, len, &i);
	}
	if (n == 0) {
		p->err = "response without a name";
		return -1;
	}
	r->name = s + i - n;
	r->name_len = n;
	if (!r->has_number)
		for (k = 0; k < sizeof(conds) / sizeof(conds[0]); k++)
			if (strlen(conds[k].name) == n && strncasecmp(r->name, conds[k].name, n) == 0)
				r->cond = conds[k].cond;
	if (r->kind == IMAP_R_TAGGED && r->cond != IMAP_C_OK && r->cond != IMAP_C_NO &&
	    r->cond != IMAP_C_BAD) {
		p->err = "tagged response that is not OK, NO or BAD";
		return -1;
	}
	if (r->cond != IMAP_C_NONE)
		return parse_status_rest(p, s, len, i);
	if (tokenize(p, s + i, len - i) < 0)
		return -1;
	r->toks = p->toks;
	r->n_toks = p->n_toks;
	return 0;
}

int
imap_tok_number(const imap_token *t, unsigned long long max, unsigned long long *v_r)
{
	unsigned long long v = 0;
	size_t i;

	if (t->type != IMAP_T_ATOM || t->len == 0 || t->len > 20)
		return -1;
	for (i = 0; i < t->len; i++) {
		unsigned d;

		if (t->s[i] < '0' || t->s[i] > '9')
			return -1;
		d = (unsigned)(t->s[i] - '0');
		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*v_r = v;
	return 0;
}

int
imap_tok_is(const imap_token *t, const char *name)
{
	return t->type == IMAP_T_ATOM && strlen(name) == t->len &&
	       strncasecmp(t->s, name, t->len) == 0;
}

/* Internal (imap_int.h): the "{n}" of the body being streamed. */
unsigned long long imap_parser_body_size(const imap_parser *p);
unsigned long long
imap_parser_body_size(const imap_parser *p)
{
	return p->body_size;
}

/* Internal (imap_int.h): the kept text, for traces. */
size_t imap_parser_raw(const imap_parser *p, const char **raw_r);
size_t
imap_parser_raw(const imap_parser *p, const char **raw_r)
{
	*raw_r = p->raw.data != NULL ? p->raw.data : "";
	return p->raw.len;
}

/* mailmill - ISC licence, see LICENSE */
/*
 * The IMAP response parser fed the fuzzer's bytes twice: whole, and in
 * chunks of 1-8 bytes chosen by the first byte.  Both must see the same
 * responses, the same body bytes and the same error; every token must lie
 * inside its response and every list's end inside the token array; a body
 * literal must never be kept.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "proto/buf.h"
#include "proto/imap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A checksum of a response, and the checks every response must pass. */
static uint64_t
digest(const imap_response *r)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i, j;

#define MIX(p, n) for (j = 0; j < (n); j++) h = (h ^ (uint8_t)(p)[j]) * 1099511628211ULL
	MIX(r->tag, r->tag_len);
	MIX(r->name, r->name_len);
	MIX(r->code, r->code_len);
	MIX(r->code_arg, r->code_arg_len);
	MIX(r->text, r->text_len);
	h = (h ^ (uint64_t)r->kind ^ ((uint64_t)r->cond << 4) ^ ((uint64_t)r->number << 8)) *
	    1099511628211ULL;
	for (i = 0; i < r->n_toks; i++) {
		const imap_token *t = &r->toks[i];

		if (t->end <= i || t->end > r->n_toks)
			__builtin_trap();
		if (t->type != IMAP_T_LIST && t->end != i + 1)
			__builtin_trap();
		if (t->type == IMAP_T_BODY && t->s != NULL)
			__builtin_trap();
		if (t->type != IMAP_T_LIST && t->type != IMAP_T_BODY)
			MIX(t->s, t->len);
		h = (h ^ t->type ^ ((uint64_t)t->end << 3)) * 1099511628211ULL;
	}
#undef MIX
	return h;
}

struct result {
	uint64_t h;
	size_t n;
	buf body;
	const char *err;
};

static void
run(const uint8_t *data, size_t size, size_t chunk, struct result *res)
{
	imap_parser_limits lim = { .max_line = 512, .max_literal = 256, .max_depth = 8,
				   .max_tokens = 200 };
	imap_parser *p = imap_parser_new(&lim);
	size_t off = 0;

	if (p == NULL)
		return;
	res->h = 0;
	res->n = 0;
	res->err = NULL;
	while (off < size && res->err == NULL) {
		size_t n = size - off < chunk ? size - off : chunk, pos = 0;

		while (pos < n) {
			const char *c = NULL;
			size_t used = 0, cl = 0;
			imap_parse_event ev = imap_parser_feed(p, (const char *)data + off + pos,
							       n - pos, &used, &c, &cl);

			if (used > n - pos)
				__builtin_trap();
			pos += used;
			if (ev == IMAP_P_RESPONSE) {
				res->h = res->h * 31 + digest(imap_parser_response(p));
				res->n++;
			} else if (ev == IMAP_P_BODY) {
				if (cl == 0 || c < (const char *)data || cl > size)
					__builtin_trap();
				(void)buf_append(&res->body, c, cl);
			} else if (ev == IMAP_P_ERROR) {
				res->err = imap_parser_error(p);
				break;
			} else if (pos != n) {
				__builtin_trap();
			}
		}
		off += n;
	}
	imap_parser_free(&p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct result a = { .body = { .max = 0 } }, b = { .body = { .max = 0 } };

	if (size < 1)
		return 0;
	run(data + 1, size - 1, size, &a);
	run(data + 1, size - 1, (size_t)(data[0] % 8) + 1, &b);
	if (a.n != b.n || a.h != b.h || a.body.len != b.body.len ||
	    (a.body.len > 0 && memcmp(a.body.data, b.body.data, a.body.len) != 0) ||
	    (a.err == NULL) != (b.err == NULL) || (a.err != NULL && strcmp(a.err, b.err) != 0))
		__builtin_trap();
	buf_free(&a.body);
	buf_free(&b.body);
	return 0;
}

/* mailmill - ISC licence, see LICENSE */
/* SMTP replies fed to the parser in small chunks (sizes from the input). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "proto/smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	smtp_reply_parser p;
	size_t off = 1, stuck = 0;
	unsigned chunk;

	if (size < 1 || smtp_reply_parser_init(&p, 256, 16) < 0)
		return 0;
	chunk = (data[0] % 13) + 1;
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk, used = 0;
		smtp_reply r;
		const char *why = NULL;
		int rc;

		memset(&r, 0, sizeof r);
		rc = smtp_reply_parse(&p, (const char *)data + off, n, &used, &r, &why);
		if (rc < 0)
			break;
		if (used > n)
			__builtin_trap();
		if (rc == 1) {
			if (r.code < 200 || r.code > 599 || r.text == NULL)
				__builtin_trap();
			(void)smtp_parse_enhanced(r.text, strlen(r.text));
			smtp_reply_clear(&r);
			/* A reply held back from an earlier chunk may come out without
			 * new bytes, but not forever. */
			if (used == 0 && ++stuck > 1000)
				__builtin_trap();
			off += used;
			continue;
		}
		off += n;
	}
	smtp_reply_parser_free(&p);
	return 0;
}

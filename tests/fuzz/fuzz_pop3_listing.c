/* mailmill - ISC licence, see LICENSE */
/*
 * The scan listing as pop3_list and pop3_uidl build it, without I/O: the
 * input's lines up to a NUL are LIST lines, the rest UIDL lines (the first
 * byte picks the message cap).  Whatever the lines, the listing must hold:
 * sorted unique message numbers from 1, within the cap, a size only when
 * known, a UID only when valid and unique, no UID taken as missing when a
 * line was left out.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "proto/pop3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The next line of [*p, end) without its LF and one CR before it. */
static int
next_line(const char **p, const char *end, const char **line, size_t *len)
{
	const char *lf;

	if (*p >= end)
		return 0;
	lf = memchr(*p, '\n', (size_t)(end - *p));
	*line = *p;
	*len = (size_t)((lf != NULL ? lf : end) - *p);
	*p = lf != NULL ? lf + 1 : end;
	if (*len > 0 && (*line)[*len - 1] == '\r')
		(*len)--;
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p, *end, *nul, *line;
	pop3_entry *v = NULL;
	size_t n = 0, cap = 0, len, i, j;
	unsigned long max_count, ignored = 0, uignored = 0;
	int sorted;

	if (size < 1)
		return 0;
	max_count = data[0] % 16;  /* 0: the default cap */
	p = (const char *)data + 1;
	end = (const char *)data + size;
	nul = memchr(p, '\0', (size_t)(end - p));
	if (nul == NULL)
		nul = end;
	while (next_line(&p, nul, &line, &len))
		if (pop3_list_add(&v, &n, &cap, max_count, line, len, &ignored) < 0) {
			if (errno != E2BIG || (max_count != 0 && n != max_count))
				__builtin_trap();
			break;
		}
	pop3_list_end(v, &n);
	for (i = 0; i < n; i++) {
		if (v[i].msgno == 0 || (i > 0 && v[i].msgno <= v[i - 1].msgno))
			__builtin_trap();
		if (v[i].size_state != POP3_SIZE_OK && v[i].size != 0)
			__builtin_trap();
	}
	if (max_count != 0 && n > max_count)
		__builtin_trap();
	sorted = pop3_uidl_begin(v, n);
	if (!sorted)
		__builtin_trap();
	p = nul < end ? nul + 1 : end;
	while (next_line(&p, end, &line, &len))
		pop3_uidl_add(v, n, sorted, line, len, &uignored);
	if (pop3_uidl_end(v, n, uignored) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		switch (v[i].uid_state) {
		case POP3_UID_OK:
			if (!pop3_uid_valid(v[i].uid, strlen(v[i].uid)))
				__builtin_trap();
			for (j = 0; j < n; j++)
				if (j != i && v[j].uid_state == POP3_UID_OK &&
				    strcmp(v[i].uid, v[j].uid) == 0)
					__builtin_trap();
			break;
		case POP3_UID_MISSING:
			if (uignored > 0 || v[i].uid[0] != '\0')
				__builtin_trap();
			break;
		case POP3_UID_INVALID:
			if (v[i].uid[0] != '\0')
				__builtin_trap();
			break;
		case POP3_UID_DUPLICATE:
			break;
		default:
			__builtin_trap();
		}
	}
out:
	free(v);
	return 0;
}

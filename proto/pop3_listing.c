/* mailmill - ISC licence, see LICENSE */
/*
 * The scan listing (LIST, then UIDL merged into it) built line by line
 * without I/O, so that tests and the fuzzer feed it what they like.  A bad
 * line costs only the message it names: a LIST line without a valid size
 * leaves that message's size unknown, a UIDL line without a valid UID makes
 * that message's UID invalid, and a line that names no message is counted
 * and left out.  Never does one line fail the whole listing.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/pop3.h"
#include "proto/pop3_int.h"

int
pop3_list_add(pop3_entry **v, size_t *n, size_t *cap, unsigned long max_count, const char *line,
	      size_t len, unsigned long *ignored_r)
{
	pop3_entry e;

	memset(&e, 0, sizeof e);
	e.uid_state = POP3_UID_MISSING;
	if (pop3_parse_list_line(line, len, &e.msgno, &e.size) < 0) {
		if (pop3_msgno_prefix(line, len, &e.msgno) < 0) {
			(*ignored_r)++;
			return 0;
		}
		e.size = 0;
		e.size_state = POP3_SIZE_UNKNOWN;
	}
	if (max_count == 0)
		max_count = LIST_DEFAULT_MAX;
	if (*n >= max_count) {
		errno = E2BIG;
		return -1;
	}
	if (*n == *cap) {
		/* Grown as lines arrive: the server's count is never trusted. */
		size_t ncap = *cap == 0 ? 64 : *cap * 2;
		pop3_entry *nv;

		if (ncap > max_count)
			ncap = max_count;
		if (ncap > ((size_t)-1) / sizeof(**v) || (nv = realloc(*v, ncap * sizeof(**v))) == NULL) {
			errno = ENOMEM;
			return -1;
		}
		*v = nv;
		*cap = ncap;
	}
	(*v)[(*n)++] = e;
	return 0;
}

static int
entry_cmp(const void *a, const void *b)
{
	const pop3_entry *x = a, *y = b;

	return x->msgno < y->msgno ? -1 : x->msgno > y->msgno;
}

void
pop3_list_end(pop3_entry *v, size_t *n)
{
	size_t i, o = 0;

	if (*n > 1)
		qsort(v, *n, sizeof(*v), entry_cmp);
	/* A number listed twice: one message, whose size nobody can tell. */
	for (i = 0; i < *n; i++) {
		if (o > 0 && v[o - 1].msgno == v[i].msgno) {
			v[o - 1].size = 0;
			v[o - 1].size_state = POP3_SIZE_UNKNOWN;
			continue;
		}
		v[o++] = v[i];
	}
	*n = o;
}

int
pop3_uidl_begin(pop3_entry *e, size_t n)
{
	size_t i;
	int sorted = 1;

	for (i = 0; i < n; i++) {
		e[i].uid[0] = '\0';
		e[i].uid_state = POP3_UID_MISSING;
		if (i > 0 && e[i].msgno <= e[i - 1].msgno)
			sorted = 0;
	}
	return sorted;
}

static int
entry_msgno_cmp(const void *key, const void *elt)
{
	unsigned long k = *(const unsigned long *)key;
	const pop3_entry *e = elt;

	return k < e->msgno ? -1 : k > e->msgno;
}

void
pop3_uidl_add(pop3_entry *entries, size_t n, int sorted, const char *line, size_t len,
	      unsigned long *ignored_r)
{
	char uid[71];
	unsigned long msgno;
	pop3_entry *e = NULL;
	size_t i;
	int ok = 0;

	if (pop3_parse_uidl_line(line, len, &msgno, uid, &ok) < 0) {
		/* "N" alone: message N has no UID. */
		if (pop3_msgno_prefix(line, len, &msgno) < 0) {
			(*ignored_r)++;
			return;
		}
		ok = 0;
	}
	if (sorted) {
		/* bsearch wants a valid array even for n == 0 (LIST may be empty). */
		if (n > 0)
			e = bsearch(&msgno, entries, n, sizeof(*entries), entry_msgno_cmp);
	} else {
		for (i = 0; i < n && e == NULL; i++)
			if (entries[i].msgno == msgno)
				e = &entries[i];
	}
	/* A message LIST did not show (deleted meanwhile?) is not ours to judge. */
	if (e == NULL)
		return;
	if (ok && e->uid_state == POP3_UID_MISSING) {
		memcpy(e->uid, uid, sizeof(e->uid));
		e->uid_state = POP3_UID_OK;
	} else {
		/* No valid UID, or a second line for the message: which is right? */
		e->uid[0] = '\0';
		e->uid_state = POP3_UID_INVALID;
	}
}

static int
entry_uid_cmp(const void *a, const void *b)
{
	const pop3_entry *x = *(pop3_entry *const *)a, *y = *(pop3_entry *const *)b;

	return strcmp(x->uid, y->uid);
}

int
pop3_uidl_end(pop3_entry *entries, size_t n, unsigned long ignored)
{
	pop3_entry **p;
	size_t m = 0, i, j;

	/* A line that named no message may have been one of these messages':
	 * the missing ones must not be taken for messages without a UID. */
	if (ignored > 0)
		for (i = 0; i < n; i++)
			if (entries[i].uid_state == POP3_UID_MISSING)
				entries[i].uid_state = POP3_UID_INVALID;
	if (n < 2)
		return 0;
	/* Every entry sharing a UID with another is marked: neither may become a path. */
	if (n > ((size_t)-1) / sizeof(*p) || (p = malloc(n * sizeof(*p))) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	for (i = 0; i < n; i++)
		if (entries[i].uid_state == POP3_UID_OK)
			p[m++] = &entries[i];
	qsort(p, m, sizeof(*p), entry_uid_cmp);
	for (i = 0; i < m; i = j) {
		for (j = i + 1; j < m && strcmp(p[i]->uid, p[j]->uid) == 0; j++)
			;
		if (j - i > 1)
			while (i < j)
				p[i++]->uid_state = POP3_UID_DUPLICATE;
	}
	free(p);
	return 0;
}

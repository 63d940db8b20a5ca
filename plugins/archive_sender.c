/* mailmill - ISC licence, see LICENSE */
/*
 * The envelope sender of an mbox From_ line, read from a plain From field
 * without GMime (see archive_sender_plain in archive.h).  Plain string work
 * on a value a hostile message controls: every scan stops at the NUL.
 */
#include <string.h>
#include <strings.h>

#include "archive.h"

/* [a, e) is a dot-atom: atext runs joined by single dots. */
static int
archive_sender_dot_atom(const char *a, const char *e)
{
	static const char specials[] = "()<>[]:;@\\,.\" \t";
	int run = 0;

	for (const char *p = a; p < e; p++) {
		if (*p == '.') {
			if (run == 0)
				return 0;
			run = 0;
		} else if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f ||
			   strchr(specials, *p) != NULL) {
			return 0;
		} else {
			run++;
		}
	}
	return run > 0;
}

/* A label of the domain [a, e) is an IDN A-label ("xn--"): GMime gives
 * those back decoded, so they are its to read. */
static int
archive_sender_idn(const char *a, const char *e)
{
	for (const char *p = a; p < e; p++)
		if ((p == a || p[-1] == '.') && e - p >= 4 && strncasecmp(p, "xn--", 4) == 0)
			return 1;
	return 0;
}

/* Past the quoted string or comment that starts at p (no escapes, no
 * nesting: those go to GMime); NULL if it does not end or is not plain. */
static const char *
archive_sender_skip(const char *p)
{
	char close = *p == '"' ? '"' : ')';

	for (p++; *p != close; p++)
		if (*p == '\0' || *p == '\\' || (close == ')' && *p == '(') ||
		    (unsigned char)*p >= 0x7f || ((unsigned char)*p < 0x20 && *p != '\t'))
			return NULL;
	return p;
}

int
archive_sender_plain(const char *v, char *buf, size_t size)
{
	const char *p, *a, *e, *at;
	int word = 0;

	/* Up to the first '<' outside quotes and comments: the display name. */
	for (p = v; *p != '\0' && *p != '<'; p++) {
		if ((unsigned char)*p >= 0x7f || ((unsigned char)*p < 0x20 && *p != '\t') ||
		    strchr(",:;\\>[])", *p) != NULL)
			return 0;  /* a list, a group, an escape, a stray ')', 8-bit: GMime's */
		/* A phrase, even RFC 5322's obs-phrase, starts with a word: a
		 * name that starts with a dot is not one (GMime refuses it). */
		if (*p == '.' && !word)
			return 0;
		if (*p != '(' && *p != ' ' && *p != '\t')
			word = 1;
		if ((*p == '"' || *p == '(') && (p = archive_sender_skip(p)) == NULL)
			return 0;
	}
	if (*p == '<') {
		if (memchr(v, '@', (size_t)(p - v)) != NULL)
			return 0;
		a = p + 1;
		if ((e = strchr(a, '>')) == NULL)
			return 0;
		p = e + 1;
	} else {
		/* No angle brackets: the value is the address, perhaps followed
		 * by one comment. */
		a = v + strspn(v, " \t");
		e = a + strcspn(a, " \t(");
		p = e + strspn(e, " \t");
		/* The address may have cut a comment or quote the scan above
		 * skipped whole: "a\"b(c\"@d" ends the address at the '('. */
		if (*p == '(') {
			if ((p = archive_sender_skip(p)) == NULL)
				return 0;
			p++;
		}
	}
	p += strspn(p, " \t");
	if (*p != '\0' || (at = memchr(a, '@', (size_t)(e - a))) == NULL ||
	    !archive_sender_dot_atom(a, at) || !archive_sender_dot_atom(at + 1, e) ||
	    archive_sender_idn(at + 1, e) || (size_t)(e - a) >= size)
		return 0;
	memcpy(buf, a, (size_t)(e - a));
	buf[e - a] = '\0';
	return 1;
}

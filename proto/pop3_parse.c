/* mailmill - ISC licence, see LICENSE */
/*
 * The POP3 parsers that do no I/O: status lines with RFC 2449 response
 * codes, LIST/UIDL lines, multi-line bodies.  They trust
 * nothing: every number is checked for overflow, every field for syntax.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/pop3.h"

int
pop3_rcode_is_temporary(pop3_rcode rc)
{
	return rc == POP3_RC_IN_USE || rc == POP3_RC_LOGIN_DELAY || rc == POP3_RC_SYS_TEMP;
}

const char *
pop3_rcode_name(pop3_rcode rc)
{
	switch (rc) {
	case POP3_RC_NONE: return "";
	case POP3_RC_IN_USE: return "IN-USE";
	case POP3_RC_LOGIN_DELAY: return "LOGIN-DELAY";
	case POP3_RC_SYS_TEMP: return "SYS/TEMP";
	case POP3_RC_SYS_PERM: return "SYS/PERM";
	case POP3_RC_AUTH: return "AUTH";
	case POP3_RC_OTHER: return "OTHER";
	}
	return "?";
}

/*
 * code points at the inside of "[...]", len excludes the brackets.  RFC 2449
 * codes are hierarchical ("SYS/TEMP/more" is still SYS/TEMP), so a known
 * code matches when followed by the end or by '/'.
 */
static int
code_is(const char *code, size_t len, const char *name)
{
	size_t n = strlen(name);

	if (len < n || strncasecmp(code, name, n) != 0)
		return 0;
	return len == n || code[n] == '/';
}

static pop3_rcode
parse_rcode(const char *text, size_t len)
{
	size_t i;

	if (len < 2 || text[0] != '[')
		return POP3_RC_NONE;
	/* resp-level is 1*<CHAR except " ", "]", "/">, levels joined by "/". */
	for (i = 1; i < len && text[i] != ']'; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c <= 0x20 || c >= 0x7f)
			return POP3_RC_NONE;
		if (c == '/' && (i == 1 || text[i - 1] == '/'))
			return POP3_RC_NONE;
	}
	if (i >= len || i == 1 || text[i - 1] == '/')
		return POP3_RC_NONE;
	text++;
	len = i - 1;
	if (code_is(text, len, "IN-USE"))
		return POP3_RC_IN_USE;
	if (code_is(text, len, "LOGIN-DELAY"))
		return POP3_RC_LOGIN_DELAY;
	if (code_is(text, len, "SYS/TEMP"))
		return POP3_RC_SYS_TEMP;
	if (code_is(text, len, "SYS/PERM"))
		return POP3_RC_SYS_PERM;
	if (code_is(text, len, "AUTH"))
		return POP3_RC_AUTH;
	return POP3_RC_OTHER;
}

int
pop3_parse_status(const char *line, size_t len, pop3_rcode *code_r, const char **text_r)
{
	size_t wl;
	int ok;

	if (code_r != NULL)
		*code_r = POP3_RC_NONE;
	if (text_r != NULL)
		*text_r = line + len;
	/* The status indicators are upper case (RFC 1939 3.); "+ok" is not one. */
	if (len >= 3 && memcmp(line, "+OK", 3) == 0) {
		wl = 3;
		ok = 1;
	} else if (len >= 4 && memcmp(line, "-ERR", 4) == 0) {
		wl = 4;
		ok = 0;
	} else {
		return -1;
	}
	if (len > wl && line[wl] != ' ')
		return -1;  /* "+OKAY", "-ERROR" */
	if (len > wl)
		wl++;
	if (text_r != NULL)
		*text_r = line + wl;
	if (!ok && code_r != NULL)
		*code_r = parse_rcode(line + wl, len - wl);
	return ok;
}

/*
 * A decimal number of digits only (no sign, no space, no "0x"), checked for
 * overflow.  *end_r gets the offset of the first byte after it.
 */
static int
parse_number(const char *s, size_t len, unsigned long long *val_r, size_t *end_r)
{
	char tmp[24];
	char *end;
	size_t n = 0;
	unsigned long long v;

	while (n < len && s[n] >= '0' && s[n] <= '9')
		n++;
	/* Twenty digits already exceed 2^64; leading zeros beyond that are silly. */
	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	errno = 0;
	v = strtoull(tmp, &end, 10);
	if (errno == ERANGE || *end != '\0')
		return -1;
	*val_r = v;
	*end_r = n;
	return 0;
}

static int
parse_msgno(const char *s, size_t len, unsigned long *msgno_r, size_t *end_r)
{
	unsigned long long v;

	if (parse_number(s, len, &v, end_r) < 0)
		return -1;
	/* Message numbers start at 1 and must fit the caller's type. */
	if (v == 0 || v > (unsigned long long)(unsigned long)-1)
		return -1;
	*msgno_r = (unsigned long)v;
	return 0;
}

int
pop3_parse_list_line(const char *line, size_t len, unsigned long *msgno_r,
		     unsigned long long *size_r)
{
	unsigned long msgno;
	unsigned long long size;
	size_t n, m;

	if (parse_msgno(line, len, &msgno, &n) < 0)
		return -1;
	if (n >= len || line[n] != ' ')
		return -1;
	n++;
	if (parse_number(line + n, len - n, &size, &m) < 0)
		return -1;
	n += m;
	/* RFC 1939 makes "no requirement on what follows the message size". */
	if (n < len && line[n] != ' ')
		return -1;
	*msgno_r = msgno;
	*size_r = size;
	return 0;
}

int
pop3_uid_valid(const char *uid, size_t len)
{
	size_t i;

	if (len < 1 || len > 70)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)uid[i] < 0x21 || (unsigned char)uid[i] > 0x7e)
			return 0;
	return 1;
}

int
pop3_parse_uidl_line(const char *line, size_t len, unsigned long *msgno_r,
		     char uid_r[71], int *uid_ok_r)
{
	unsigned long msgno;
	size_t n;

	uid_r[0] = '\0';
	*uid_ok_r = 0;
	if (parse_msgno(line, len, &msgno, &n) < 0)
		return -1;
	if (n >= len || line[n] != ' ')
		return -1;
	n++;
	*msgno_r = msgno;
	/* The rest of the line is the UID: trailing text makes it invalid. */
	if (pop3_uid_valid(line + n, len - n)) {
		memcpy(uid_r, line + n, len - n);
		uid_r[len - n] = '\0';
		*uid_ok_r = 1;
	}
	return 0;
}

int
pop3_ml_line(const char *line, size_t len, const char **data_r, size_t *len_r)
{
	if (len > 0 && line[0] == '.') {
		if (len == 1)
			return 0;
		line++;
		len--;
	}
	*data_r = line;
	*len_r = len;
	return 1;
}

int
pop3_body_piece(const char *line, size_t len, int first, int whole, buf *out)
{
	const char *data = line;
	size_t dlen = len;

	/* Only a line's start is stuffed, and only a whole "." ends the body. */
	if (first && len > 0 && line[0] == '.') {
		if (whole && len == 1)
			return 0;
		data++;
		dlen--;
	}
	if (buf_append(out, data, dlen) < 0 || (whole && buf_append(out, "\n", 1) < 0))
		return -1;
	return 1;
}

int
pop3_msgno_prefix(const char *line, size_t len, unsigned long *msgno_r)
{
	size_t n;

	if (parse_msgno(line, len, msgno_r, &n) < 0 || (n < len && line[n] != ' '))
		return -1;
	return 0;
}

int
pop3_parse_stat(const char *text, size_t len, unsigned long *count_r,
		unsigned long long *octets_r)
{
	unsigned long long count, octets;
	size_t n, m;

	if (parse_number(text, len, &count, &n) < 0 ||
	    count > (unsigned long long)(unsigned long)-1)
		return -1;
	if (n >= len || text[n] != ' ')
		return -1;
	n++;
	if (parse_number(text + n, len - n, &octets, &m) < 0)
		return -1;
	n += m;
	/* As for LIST, RFC 1939 allows anything after the size. */
	if (n < len && text[n] != ' ')
		return -1;
	*count_r = (unsigned long)count;
	*octets_r = octets;
	return 0;
}

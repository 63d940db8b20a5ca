/* mailmill - ISC licence, see LICENSE */
#include <string.h>
#include <strings.h>
#include "daemon/run/message.h"

/* Length of the top-level header (up to the first empty line). */
static size_t
message_header_len(const char *raw, size_t len)
{
	const char *p = raw, *end = raw + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (nl == NULL)
			return len;
		if (nl == p || (nl == p + 1 && *p == '\r'))
			return (size_t)(p - raw);
		p = nl + 1;
	}
	return len;
}

static const char *
message_scan(const char *raw, size_t len)
{
	const char *p = raw, *end = raw + len;
	unsigned long multiparts = 0, parts = 0;

	if (message_header_len(raw, len) > MESSAGE_MAX_HEADER)
		return "header over 1 MiB";
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (nl != NULL ? nl : end) - p;

		if (n >= 2 && p[0] == '-' && p[1] == '-' && ++parts > MESSAGE_MAX_PARTS)
			return "more than 2000 MIME parts";
		if (n > 13 && (p[0] | 0x20) == 'c' && strncasecmp(p, "content-type:", 13) == 0) {
			const char *q = p + 13, *qe = p + n;

			while (q < qe && (*q == ' ' || *q == '\t'))
				q++;
			if ((size_t)(qe - q) >= 10 && strncasecmp(q, "multipart/", 10) == 0 &&
			    ++multiparts > MESSAGE_MAX_MULTIPARTS)
				return "more than 64 multipart containers";
		}
		p = nl != NULL ? nl + 1 : end;
	}
	return NULL;
}

/* The parser's work; parse_len bytes of raw, NULL if GMime gives nothing. */
static GMimeMessage *
message_construct(const char *raw, size_t parse_len)
{
	GMimeMessage *m;
	GMimeParser *parser;
	GMimeStream *stream;

	stream = g_mime_stream_mem_new_with_buffer(raw, parse_len);
	parser = g_mime_parser_new_with_stream(stream);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	m = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	g_object_unref(stream);
	return m;
}

/* The unfolded value of a header line starting at p (name included), g_malloc'd. */
static char *
message_value(const char *p, const char *end, size_t name_len, const char **next_r)
{
	const char *q = p + name_len, *nl = memchr(q, '\n', (size_t)(end - q));
	GString *v;

	/* Most fields are one line: no GString and its regrowing for them. */
	if (nl == NULL || nl + 1 >= end || (nl[1] != ' ' && nl[1] != '\t')) {
		*next_r = nl != NULL ? nl + 1 : end;
		return g_strndup(q, (gsize)((nl != NULL ? nl : end) - q));
	}
	v = g_string_sized_new((gsize)(nl - q) + 64);
	for (;;) {
		const char *le = nl != NULL ? nl : end;

		g_string_append_len(v, q, le - q);
		q = nl != NULL ? nl + 1 : end;
		if (q >= end || (*q != ' ' && *q != '\t'))
			break;
		nl = memchr(q, '\n', (size_t)(end - q));
	}
	*next_r = q;
	return g_string_free(v, FALSE);
}

/*
 * Fast paths for message_head.  GMime's general date and msg-id readers cost
 * thousands of instructions per message; nearly every message carries the
 * canonical forms below, read here for a few hundred.  Each reader accepts
 * only inputs on which GMime 3.2 gives the same answer (the unit test holds
 * it to that, against GMime itself) and says 0 for anything else, which then
 * goes to GMime as before.
 */

/* An RFC 5322 atext character as GMime's is_atom sees it (printable ASCII,
 * not a special). */
static int
message_atext(unsigned char c)
{
	switch (c) {
	case '(': case ')': case '<': case '>': case '@': case ',': case ';':
	case ':': case '\\': case '"': case '.': case '[': case ']':
		return 0;
	default:
		return c > 0x20 && c < 0x7f;
	}
}

/* Length of the dot-atom at p (atoms joined by single dots), 0 if none. */
static size_t
message_dot_atom(const char *p, const char *end)
{
	const char *q = p;

	for (;;) {
		const char *a = q;

		while (q < end && message_atext((unsigned char)*q))
			q++;
		if (q == a)
			return 0; /* empty atom: leading, trailing or double dot */
		if (q == end || *q != '.')
			return (size_t)(q - p);
		q++;
	}
}

/*
 * v is "<dot-atom@dot-atom>" and nothing else: GMime's addr-spec reader takes
 * every atom and dot as they are, so its result is the text between the
 * brackets.  (A trailing or doubled dot in the domain is where it is not:
 * GMime drops the rest, hence dot-atoms only.)
 */
static char *
message_id_fast(const char *v)
{
	size_t n = strlen(v), l;
	const char *end;

	if (n < 5 || v[0] != '<' || v[n - 1] != '>')
		return NULL;
	end = v + n - 1;
	l = message_dot_atom(v + 1, end);
	if (l == 0 || v[1 + l] != '@')
		return NULL;
	if (v + 2 + l == end || message_dot_atom(v + 2 + l, end) != (size_t)(end - (v + 2 + l)))
		return NULL;
	return g_strndup(v + 1, n - 2);
}

/* Exactly n digits at *pp as a number, 0 < n <= 4; -1 if not. */
static int
message_num(const char **pp, int n)
{
	const char *p = *pp;
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	*pp = p + n;
	return v;
}

/* Index of the three letters at p in names (lower case), -1 if none. */
static int
message_name3(const char *p, const char *names, int count)
{
	int i;

	/* c | 0x20 is a lower-case letter only for that letter in either case. */
	for (i = 0; i < count; i++) {
		const char *n = names + 3 * i;

		if ((p[0] | 0x20) == n[0] && (p[1] | 0x20) == n[1] && (p[2] | 0x20) == n[2])
			return i;
	}
	return -1;
}

/* Skip blanks at *pp; non-zero if there was at least one. */
static int
message_blanks(const char **pp)
{
	const char *p = *pp;

	while (*p == ' ' || *p == '\t')
		p++;
	if (p == *pp)
		return 0;
	*pp = p;
	return 1;
}

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar. */
static long long
message_days(int y, int m, int d)
{
	/* Count years from March so that Feb 29 is the last day of a year. */
	long long yy = m <= 2 ? y - 1 : y, era = yy / 400; /* yy >= 1968 */
	long long yoe = yy - era * 400, mp = (m + 9) % 12;
	long long doy = (153 * mp + 2) / 5 + d - 1;
	long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

/*
 * "[Day, ]D[D] Mon YYYY HH:MM[:SS] (+|-)HHMM[ (comment)]" as a time_t.
 * Where GMime's answer is not the plain reading, the input is left to it:
 * years before 1969 (GMime gives no date), second 60 and days past the
 * month's end (GLib refuses them and GMime falls back to guessing), zones of
 * 24 hours or more or minutes over 59 (GMime reads them as UTC).  GMime
 * ignores the day name, so a wrong one is ignored here too.
 */
static int
message_date_fast(const char *v, long long *date_r)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	static const char wdays[] = "sunmontuewedthufrisat";
	static const unsigned char mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	const char *p = v;
	int day, mon, year, hour, min, sec = 0, zh, zm, sign;
	long long zone;

	if (g_ascii_isalpha(*p)) {
		if (message_name3(p, wdays, 7) < 0 || p[3] != ',')
			return 0;
		p += 4;
		message_blanks(&p);
	}
	if ((day = message_num(&p, 1)) < 0)
		return 0;
	if (*p >= '0' && *p <= '9')
		day = day * 10 + (*p++ - '0');
	if (!message_blanks(&p) || (mon = message_name3(p, months, 12)) < 0)
		return 0;
	p += 3;
	if (!message_blanks(&p) || (year = message_num(&p, 4)) < 1969 || !message_blanks(&p))
		return 0;
	if ((hour = message_num(&p, 2)) < 0 || hour > 23 || *p++ != ':' ||
	    (min = message_num(&p, 2)) < 0 || min > 59)
		return 0;
	if (*p == ':' && (p++, (sec = message_num(&p, 2)) < 0 || sec > 59))
		return 0;
	if (!message_blanks(&p) || (*p != '+' && *p != '-'))
		return 0;
	sign = *p++ == '-' ? -1 : 1;
	if ((zh = message_num(&p, 2)) < 0 || zh > 23 || (zm = message_num(&p, 2)) < 0 || zm > 59)
		return 0;
	if (message_blanks(&p) && *p == '(') {
		const char *close = strchr(p + 1, ')');

		/* One flat comment, last: GMime never looks past the zone. */
		if (close == NULL || close[1] != '\0' || memchr(p + 1, '(', (size_t)(close - p - 1)))
			return 0;
		p = close + 1;
	}
	if (*p != '\0')
		return 0;
	if (day < 1 || day > mdays[mon] ||
	    (mon == 1 && day == 29 && (year % 4 != 0 || (year % 100 == 0 && year % 400 != 0))))
		return 0;
	zone = sign * (zh * 3600LL + zm * 60LL);
	*date_r = message_days(year, mon + 1, day) * 86400 + hour * 3600LL + min * 60LL + sec - zone;
	return 1;
}

void
message_head(const char *raw, size_t len, char **message_id_r, long long *date_r)
{
	size_t hlen = message_header_len(raw, len);
	const char *p = raw, *end = raw + (hlen > MESSAGE_MAX_HEADER ? MESSAGE_MAX_HEADER : hlen);
	int have_id = 0, have_date = 0;

	*message_id_r = NULL;
	while (p < end && !(have_id && have_date)) {
		const char *next;
		char *v;

		/* The first letter first: a call per line and field name adds up. */
		if (!have_id && (*p | 0x20) == 'm' && end - p > 11 &&
		    g_ascii_strncasecmp(p, "Message-ID:", 11) == 0) {
			v = g_strstrip(message_value(p, end, 11, &next));
			if ((*message_id_r = message_id_fast(v)) == NULL)
				*message_id_r = g_mime_utils_decode_message_id(v);
			have_id = 1;
			g_free(v);
		} else if (!have_date && (*p | 0x20) == 'd' && end - p > 5 &&
			   g_ascii_strncasecmp(p, "Date:", 5) == 0) {
			GDateTime *dt;

			v = g_strstrip(message_value(p, end, 5, &next));
			if (message_date_fast(v, date_r)) {
				/* read */
			} else if ((dt = g_mime_utils_header_decode_date(v)) != NULL) {
				*date_r = (long long)g_date_time_to_unix(dt);
				g_date_time_unref(dt);
			}
			have_date = 1;
			g_free(v);
		} else {
			const char *nl = memchr(p, '\n', (size_t)(end - p));

			next = nl != NULL ? nl + 1 : end;
		}
		p = next;
	}
}

/* Append v[0..n) to out without its line breaks, for an unfolded value. */
static void
message_unfold(GString *out, const char *v, size_t n)
{
	const char *p = v, *end = v + n;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl != NULL ? nl : end;
		size_t span = (size_t)(le - p);

		if (span > 0 && nl != NULL && le[-1] == '\r')
			span--;
		g_string_append_len(out, p, (gssize)span);
		p = nl != NULL ? nl + 1 : end;
	}
}

/* Trim out in place and hand (name, out->str) to fn. */
static int
message_emit(message_field_fn fn, void *arg, const char *name, GString *out)
{
	size_t a = 0, b = out->len;

	while (a < b && g_ascii_isspace(out->str[a]))
		a++;
	while (b > a && g_ascii_isspace(out->str[b - 1]))
		b--;
	out->str[b] = '\0';
	return fn(name, out->str + a, arg);
}

int
message_headers(const char *raw, size_t len, message_field_fn fn, void *arg)
{
	size_t hlen = message_header_len(raw, len);
	const char *p = raw, *end = raw + (hlen > MESSAGE_MAX_HEADER ? MESSAGE_MAX_HEADER : hlen);
	GString *v = g_string_sized_new(256);
	char name[256];
	int rc = 0;

	while (p < end && rc == 0) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl != NULL ? nl : end, *colon = memchr(p, ':', (size_t)(le - p));
		size_t nlen = colon != NULL ? (size_t)(colon - p) : 0;
		const char *q;

		/* Continuation lines belong to the field before and were read with it. */
		q = nl != NULL ? nl + 1 : end;
		while (q < end && (*q == ' ' || *q == '\t')) {
			const char *n2 = memchr(q, '\n', (size_t)(end - q));

			q = n2 != NULL ? n2 + 1 : end;
		}
		if (nlen > 0 && nlen < sizeof(name) && p[0] != ' ' && p[0] != '\t' &&
		    memchr(p, ' ', nlen) == NULL && memchr(p, '\t', nlen) == NULL) {
			memcpy(name, p, nlen);
			name[nlen] = '\0';
			g_string_truncate(v, 0);
			message_unfold(v, colon + 1, (size_t)(q - colon - 1));
			rc = message_emit(fn, arg, name, v);
		}
		p = q;
	}
	g_string_free(v, TRUE);
	return rc;
}

int
message_headers_mime(GMimeMessage *m, message_field_fn fn, void *arg)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(m));
	int i, n = g_mime_header_list_get_count(hl), rc = 0;
	GString *v = g_string_sized_new(256);

	for (i = 0; i < n && rc == 0; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		const char *raw = g_mime_header_get_raw_value(h);

		g_string_truncate(v, 0);
		if (raw != NULL)
			message_unfold(v, raw, strlen(raw));
		rc = message_emit(fn, arg, g_mime_header_get_name(h), v);
	}
	g_string_free(v, TRUE);
	return rc;
}

GMimeMessage *
message_parse(const char *raw, size_t len, const char **note_r)
{
	GMimeMessage *m;
	const char *note = message_scan(raw, len);
	size_t parse_len = len;

	if (note != NULL) {
		parse_len = message_header_len(raw, len);
		if (parse_len > MESSAGE_MAX_HEADER)
			parse_len = MESSAGE_MAX_HEADER;
	}
	m = message_construct(raw, parse_len);
	if (m == NULL) {
		m = g_mime_message_new(TRUE);
		if (note == NULL)
			note = "GMime could not parse it";
	}
	*note_r = note;
	return m;
}

long long
message_date(GMimeMessage *m, long long fallback)
{
	GDateTime *dt = g_mime_message_get_date(m);

	return dt != NULL ? (long long)g_date_time_to_unix(dt) : fallback;
}

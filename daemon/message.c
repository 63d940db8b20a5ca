/* mailmill - ISC licence, see LICENSE */
#include <string.h>
#include <strings.h>
#include "daemon/message.h"

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

const char *
message_limits(const char *raw, size_t len)
{
	return message_scan(raw, len);
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
	GString *v = g_string_new(NULL);
	const char *q = p + name_len;

	for (;;) {
		const char *nl = memchr(q, '\n', (size_t)(end - q));
		const char *le = nl != NULL ? nl : end;

		g_string_append_len(v, q, le - q);
		q = nl != NULL ? nl + 1 : end;
		if (q >= end || (*q != ' ' && *q != '\t'))
			break;
	}
	*next_r = q;
	return g_string_free(v, FALSE);
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

		if (!have_id && end - p > 11 && g_ascii_strncasecmp(p, "Message-ID:", 11) == 0) {
			v = message_value(p, end, 11, &next);
			*message_id_r = g_mime_utils_decode_message_id(g_strstrip(v));
			have_id = 1;
			g_free(v);
		} else if (!have_date && end - p > 5 && g_ascii_strncasecmp(p, "Date:", 5) == 0) {
			GDateTime *dt;

			v = message_value(p, end, 5, &next);
			if ((dt = g_mime_utils_header_decode_date(g_strstrip(v))) != NULL) {
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

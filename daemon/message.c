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
		if (n > 13 && strncasecmp(p, "content-type:", 13) == 0) {
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

GMimeMessage *
message_parse(const char *raw, size_t len, const char **note_r)
{
	GMimeMessage *m;
	GMimeParser *parser;
	GMimeStream *stream;
	const char *note = message_scan(raw, len);
	size_t parse_len = len;

	if (note != NULL) {
		parse_len = message_header_len(raw, len);
		if (parse_len > MESSAGE_MAX_HEADER)
			parse_len = MESSAGE_MAX_HEADER;
	}
	stream = g_mime_stream_mem_new_with_buffer(raw, parse_len);
	parser = g_mime_parser_new_with_stream(stream);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	m = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	g_object_unref(stream);
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

/* mailmill - ISC licence, see LICENSE */
/*
 * JSON string escaping for the ticket documents.  A hand-written escaper
 * instead of json-glib: the documents are flat and write-only, and this is
 * all of the JSON they need (RFC 8259 section 7).
 */
#include <string.h>
#include "ticket.h"

void
tj_str(GString *out, const char *s)
{
	/* Mail is full of broken charsets: U+FFFD rather than invalid JSON. */
	char *valid = g_utf8_make_valid(s != NULL ? s : "", -1);

	g_string_append_c(out, '"');
	for (const unsigned char *p = (const unsigned char *)valid; *p; p++) {
		switch (*p) {
		case '"': g_string_append(out, "\\\""); break;
		case '\\': g_string_append(out, "\\\\"); break;
		case '\n': g_string_append(out, "\\n"); break;
		case '\r': g_string_append(out, "\\r"); break;
		case '\t': g_string_append(out, "\\t"); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				g_string_append_printf(out, "\\u%04x", *p);
			else
				g_string_append_c(out, (char)*p);
		}
	}
	g_string_append_c(out, '"');
	g_free(valid);
}

void
tj_key(GString *out, const char *key, int *first)
{
	if (!*first)
		g_string_append_c(out, ',');
	*first = 0;
	tj_str(out, key);
	g_string_append_c(out, ':');
}

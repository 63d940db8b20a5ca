/* mailmill - ISC licence, see LICENSE */
/*
 * A mutated message through message_parse (GMime within the caps), then what
 * plugins look at: headers, addresses, subject, date, every part's content
 * type and decoded text.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <gmime/gmime.h>
#include "daemon/message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_part(GMimeObject *parent, GMimeObject *part, gpointer arg)
{
	GMimeContentType *ct = g_mime_object_get_content_type(part);
	size_t *n = arg;

	(void)parent;
	if (ct != NULL)
		g_free(g_mime_content_type_get_mime_type(ct));
	if (GMIME_IS_TEXT_PART(part) && (*n)++ < 50)
		g_free(g_mime_text_part_get_text(GMIME_TEXT_PART(part)));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int inited;
	const char *note = NULL;
	GMimeMessage *m;
	InternetAddressList *from;
	size_t n = 0;

	if (!inited) {
		g_mime_init();
		inited = 1;
	}
	m = message_parse((const char *)data, size, &note);
	if (m == NULL)
		__builtin_trap();
	(void)message_date(m, 0);
	(void)g_mime_message_get_subject(m);
	(void)g_mime_message_get_message_id(m);
	from = g_mime_message_get_from(m);
	if (from != NULL)
		g_free(internet_address_list_to_string(from, NULL, FALSE));
	g_mime_message_foreach(m, fuzz_part, &n);
	g_object_unref(m);
	return 0;
}

/* mailmill - ISC licence, see LICENSE */
/*
 * A mutated message through message_parse (GMime within the caps), then what
 * plugins look at: headers, addresses, subject, date, every part's content
 * type and decoded text.  Also the readers that skip GMime: message_head
 * (run for every fetched message) and the mbox archive's From reader, which
 * must give GMime's answer whenever it gives one.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <gmime/gmime.h>
#include "daemon/run/message.h"
#include "plugins/archive.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_part(GMimeObject *parent, GMimeObject *part, gpointer arg)
{
	GMimeContentType *ct;
	size_t *n = arg;

	(void)parent;
	/* A message without a MIME part (what message_parse gives for what
	 * GMime cannot read, an empty message) is visited with part NULL. */
	if (!GMIME_IS_OBJECT(part))
		return;
	ct = g_mime_object_get_content_type(part);
	if (ct != NULL)
		g_free(g_mime_content_type_get_mime_type(ct));
	if (GMIME_IS_TEXT_PART(part) && (*n)++ < 50)
		g_free(g_mime_text_part_get_text(GMIME_TEXT_PART(part)));
}

/*
 * message_head's fast paths give GMime's answer: a header of just this
 * Message-ID or Date value, read by message_head, against GMime's reader of
 * the same value (what message_head falls back to).
 */
static void
fuzz_head(const char *name, const char *value)
{
	GString *h;
	char *mid = NULL, *want_id, *v;
	long long date = -1, want_date = -1;
	GDateTime *dt;

	if (strpbrk(value, "\r\n") != NULL)
		return;
	h = g_string_new(NULL);
	g_string_printf(h, "%s: %s\n\n", name, value);
	message_head(h->str, h->len, &mid, &date);
	v = g_strstrip(g_strdup(value));
	if (g_ascii_strcasecmp(name, "Message-ID") == 0) {
		want_id = g_mime_utils_decode_message_id(v);
		if (g_strcmp0(mid, want_id) != 0)
			__builtin_trap();
		g_free(want_id);
	} else {
		if ((dt = g_mime_utils_header_decode_date(v)) != NULL) {
			want_date = (long long)g_date_time_to_unix(dt);
			g_date_time_unref(dt);
		}
		if (date != want_date)
			__builtin_trap();
	}
	g_free(v);
	g_free(mid);
	g_string_free(h, TRUE);
}

/* Message-ID and Date fields as above; the first From: the plain reader
 * and GMime's parser agree. */
static int
fuzz_fields(const char *name, const char *value, void *arg)
{
	InternetAddressList *l;
	char plain[256];

	(void)arg;
	if (g_ascii_strcasecmp(name, "Message-ID") == 0 || g_ascii_strcasecmp(name, "Date") == 0)
		fuzz_head(name, value);
	if (g_ascii_strcasecmp(name, "From") != 0)
		return 0;
	if (archive_sender_plain(value, plain, sizeof plain)) {
		InternetAddress *ia;

		l = internet_address_list_parse(NULL, value);
		if (l == NULL || internet_address_list_length(l) < 1 ||
		    !INTERNET_ADDRESS_IS_MAILBOX(ia = internet_address_list_get_address(l, 0)) ||
		    strcmp(plain, internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia))) != 0)
			__builtin_trap();
		g_object_unref(l);
	}
	return 1;
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
	{
		char *mid = NULL;
		long long date = 0;

		message_head((const char *)data, size, &mid, &date);
		g_free(mid);
		(void)message_headers((const char *)data, size, fuzz_fields, NULL);
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

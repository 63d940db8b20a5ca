/* mailmill - ISC licence, see LICENSE */
/*
 * How the `filter` plugin's conditions read a message.  Everything comes from
 * the parsed GMimeMessage: header values are unfolded and RFC 2047-decoded,
 * bodies decoded from base64/quoted-printable and their charset to UTF-8.
 */
#include <string.h>
#include <strings.h>
#include "filter.h"

void
filter_msg_init(filter_msg *fm, GMimeMessage *m, size_t size)
{
	memset(fm, 0, sizeof *fm);
	fm->m = m;
	fm->size = size;
	fm->attach = -1;
}

void
filter_msg_clear(filter_msg *fm)
{
	g_free(fm->body);
	g_strfreev(fm->senders);
	g_strfreev(fm->rcpts);
	memset(fm, 0, sizeof *fm);
}

int
filter_regex_compile(regex_t *re, const char *pattern, int nocase, char **err_r)
{
	int rc = regcomp(re, pattern, REG_EXTENDED | REG_NOSUB | (nocase ? REG_ICASE : 0));

	if (rc != 0) {
		char text[256];

		regerror(rc, re, text, sizeof text);
		*err_r = g_strdup(text);
		return -1;
	}
	return 0;
}

int
filter_header_matches(GMimeMessage *m, const char *name, const regex_t *re)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(m));
	int i, n = hl != NULL ? g_mime_header_list_get_count(hl) : 0;

	for (i = 0; i < n; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		const char *hn = g_mime_header_get_name(h), *raw = g_mime_header_get_raw_value(h);
		char *unfolded, *text;
		int hit;

		if (hn == NULL || g_ascii_strcasecmp(hn, name) != 0)
			continue;
		unfolded = g_mime_utils_header_unfold(raw != NULL ? raw : "");
		text = g_mime_utils_header_decode_text(NULL, g_strstrip(unfolded));
		hit = regexec(re, text != NULL ? text : unfolded, 0, NULL, 0) == 0;
		g_free(text);
		g_free(unfolded);
		if (hit)
			return 1;
	}
	return 0;
}

int
filter_addr_listed(const char *const *list, const char *addr)
{
	const char *at = addr != NULL ? strrchr(addr, '@') : NULL;
	const char *dom = at != NULL ? at + 1 : NULL;
	size_t dl = dom != NULL ? strlen(dom) : 0;

	for (; list != NULL && *list != NULL; list++) {
		const char *e = *list;

		if (e[0] == '.') {
			size_t el = strlen(e);

			if (dom != NULL && dl > el && g_ascii_strcasecmp(dom + dl - el, e) == 0)
				return 1;
		} else if (strchr(e + 1, '@') != NULL) {
			if (g_ascii_strcasecmp(e, addr) == 0)
				return 1;
		} else if (dom != NULL && g_ascii_strcasecmp(e[0] == '@' ? e + 1 : e, dom) == 0) {
			return 1;
		}
	}
	return 0;
}

static void
filter_addrs_add(GPtrArray *out, InternetAddressList *l, int depth)
{
	int i, n = l != NULL ? internet_address_list_length(l) : 0;

	for (i = 0; i < n && out->len < 1000; i++) {
		InternetAddress *ia = internet_address_list_get_address(l, i);

		if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
			const char *a = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));

			if (a != NULL && *a != '\0')
				g_ptr_array_add(out, g_ascii_strdown(a, -1));
		} else if (INTERNET_ADDRESS_IS_GROUP(ia) && depth < 4) {
			filter_addrs_add(out, internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)),
					 depth + 1);
		}
	}
}

/* Every address in the top-level headers named in names. */
static char **
filter_addrs(GMimeMessage *m, const char *const *names)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(m));
	int i, n = hl != NULL ? g_mime_header_list_get_count(hl) : 0;
	GPtrArray *out = g_ptr_array_new();

	for (i = 0; i < n; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		const char *hn = g_mime_header_get_name(h), *raw = g_mime_header_get_raw_value(h);
		const char *const *w;
		InternetAddressList *l;

		for (w = names; *w != NULL && (hn == NULL || g_ascii_strcasecmp(hn, *w) != 0); w++)
			;
		if (*w == NULL || raw == NULL)
			continue;
		l = internet_address_list_parse(NULL, raw);
		if (l != NULL) {
			filter_addrs_add(out, l, 0);
			g_object_unref(l);
		}
	}
	g_ptr_array_add(out, NULL);
	return (char **)g_ptr_array_free(out, FALSE);
}

char **
filter_msg_senders(filter_msg *fm)
{
	static const char *const names[] = { "Return-Path", "From", "Sender", NULL };

	if (fm->senders == NULL)
		fm->senders = filter_addrs(fm->m, names);
	return fm->senders;
}

char **
filter_msg_rcpts(filter_msg *fm)
{
	static const char *const names[] = { "To", "Cc", "Delivered-To", "X-Original-To", NULL };

	if (fm->rcpts == NULL)
		fm->rcpts = filter_addrs(fm->m, names);
	return fm->rcpts;
}

static int
filter_is_attachment(GMimeObject *part)
{
	if (GMIME_IS_MESSAGE_PART(part))
		return 1;
	if (!GMIME_IS_PART(part))
		return 0;
	return g_mime_part_is_attachment(GMIME_PART(part)) ||
	       g_mime_part_get_filename(GMIME_PART(part)) != NULL;
}

static void
filter_attach_cb(GMimeObject *parent, GMimeObject *part, gpointer data)
{
	(void)parent;
	if (filter_is_attachment(part))
		*(int *)data = 1;
}

int
filter_msg_has_attachment(filter_msg *fm)
{
	if (fm->attach < 0) {
		int found = 0;

		g_mime_message_foreach(fm->m, filter_attach_cb, &found);
		fm->attach = found;
	}
	return fm->attach;
}

/* Append one text part, decoded, to the GByteArray data (bounded). */
static void
filter_body_cb(GMimeObject *parent, GMimeObject *part, gpointer data)
{
	GByteArray *out = data;
	GMimeContentType *ct;
	GMimeDataWrapper *dw;
	GMimeStream *mem, *fs;
	GByteArray *got;
	const char *cs;

	(void)parent;
	if (out->len >= FILTER_BODY_MAX || !GMIME_IS_PART(part) ||
	    g_mime_part_is_attachment(GMIME_PART(part)))
		return;
	ct = g_mime_object_get_content_type(part);
	if (ct == NULL || !g_mime_content_type_is_type(ct, "text", "*"))
		return;
	dw = g_mime_part_get_content(GMIME_PART(part));
	if (dw == NULL)
		return;
	mem = g_mime_stream_mem_new();
	fs = g_mime_stream_filter_new(mem);
	cs = g_mime_content_type_get_parameter(ct, "charset");
	if (cs != NULL && g_ascii_strcasecmp(cs, "utf-8") != 0 && g_ascii_strcasecmp(cs, "us-ascii") != 0) {
		GMimeFilter *cf = g_mime_filter_charset_new(cs, "UTF-8");

		/* An unknown charset: the bytes as they are. */
		if (cf != NULL) {
			g_mime_stream_filter_add(GMIME_STREAM_FILTER(fs), cf);
			g_object_unref(cf);
		}
	}
	if (g_mime_data_wrapper_write_to_stream(dw, fs) >= 0 && g_mime_stream_flush(fs) == 0) {
		got = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
		if (got != NULL) {
			guint room = FILTER_BODY_MAX - out->len, n = got->len < room ? got->len : room;

			if (out->len > 0)
				g_byte_array_append(out, (const guint8 *)"\n", 1);
			g_byte_array_append(out, got->data, n);
		}
	}
	g_object_unref(fs);
	g_object_unref(mem);
}

const char *
filter_msg_body(filter_msg *fm)
{
	if (fm->body == NULL) {
		GByteArray *out = g_byte_array_new();

		/* foreach visits the top-level part too, then every part below it. */
		g_mime_message_foreach(fm->m, filter_body_cb, out);
		for (guint i = 0; i < out->len; i++)
			if (out->data[i] == '\0')
				out->data[i] = ' ';
		g_byte_array_append(out, (const guint8 *)"", 1);
		fm->body = (char *)g_byte_array_free(out, FALSE);
	}
	return fm->body;
}

static int
filter_any_listed(char *const *addrs, const char *const *list)
{
	for (; addrs != NULL && *addrs != NULL; addrs++)
		if (filter_addr_listed(list, *addrs))
			return 1;
	return 0;
}

int
filter_rule_matches(const filter_rule *r, filter_msg *fm)
{
	if (r->size_over >= 0 && !((long long)fm->size > r->size_over))
		return 0;
	if (r->size_under >= 0 && !((long long)fm->size < r->size_under))
		return 0;
	if (r->header != NULL && !filter_header_matches(fm->m, r->header, &r->header_re))
		return 0;
	if (r->from != NULL &&
	    !filter_any_listed(filter_msg_senders(fm), (const char *const *)r->from))
		return 0;
	if (r->to != NULL && !filter_any_listed(filter_msg_rcpts(fm), (const char *const *)r->to))
		return 0;
	if (r->attachment >= 0 && filter_msg_has_attachment(fm) != r->attachment)
		return 0;
	if (r->has_body && regexec(&r->body_re, filter_msg_body(fm), 0, NULL, 0) != 0)
		return 0;
	return 1;
}

void
filter_rule_clear(filter_rule *r)
{
	g_free(r->name);
	if (r->header != NULL)
		regfree(&r->header_re);
	g_free(r->header);
	if (r->has_body)
		regfree(&r->body_re);
	g_strfreev(r->from);
	g_strfreev(r->to);
	g_free(r->add_name);
	g_free(r->add_value);
	g_free(r->goto_stage);
	memset(r, 0, sizeof *r);
}

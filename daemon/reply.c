/* mailmill - ISC licence, see LICENSE */
#include <string.h>
#include <unistd.h>
#include "daemon/reply.h"

#define REPLY_MAX_REFERENCES 20
#define REPLY_MAX_ADDR 254

/* A bare address fit for an envelope: one '@', no spaces, controls or <>. */
static int
reply_addr_ok(const char *a)
{
	const char *at;

	if (a == NULL || *a == '\0' || strlen(a) > REPLY_MAX_ADDR)
		return 0;
	at = strchr(a, '@');
	if (at == NULL || at == a || at[1] == '\0' || strchr(at + 1, '@') != NULL)
		return 0;
	for (const unsigned char *p = (const unsigned char *)a; *p; p++)
		if (*p <= ' ' || *p == 0x7f || *p == '<' || *p == '>' || *p == '"')
			return 0;
	return 1;
}

/* The first mailbox of a list (groups are looked into), or NULL. */
static const char *
reply_first_mailbox(InternetAddressList *list)
{
	int i, n = list != NULL ? internet_address_list_length(list) : 0;

	for (i = 0; i < n; i++) {
		InternetAddress *ia = internet_address_list_get_address(list, i);

		if (INTERNET_ADDRESS_IS_MAILBOX(ia))
			return internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
		if (INTERNET_ADDRESS_IS_GROUP(ia)) {
			const char *a = reply_first_mailbox(
				internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)));
			if (a != NULL)
				return a;
		}
	}
	return NULL;
}

char *
reply_recipient(GMimeMessage *orig, const char **why_r)
{
	const char *rp = g_mime_object_get_header(GMIME_OBJECT(orig), "Return-Path");
	const char *a;

	if (rp != NULL) {
		char *v = g_strstrip(g_strdup(rp));
		size_t n = strlen(v);

		if (n >= 2 && v[0] == '<' && v[n - 1] == '>') {
			memmove(v, v + 1, n - 2);
			v[n - 2] = '\0';
			g_strstrip(v);
		}
		if (*v == '\0') {
			g_free(v);
			*why_r = "null sender (Return-Path: <>)";
			return NULL;
		}
		if (reply_addr_ok(v))
			return v;
		g_free(v);
		*why_r = "the Return-Path is not a usable address";
		return NULL;
	}
	a = reply_first_mailbox(g_mime_message_get_reply_to(orig));
	if (a == NULL)
		a = reply_first_mailbox(g_mime_message_get_from(orig));
	if (a == NULL) {
		*why_r = "no Return-Path, Reply-To or From address";
		return NULL;
	}
	if (!reply_addr_ok(a)) {
		*why_r = "the sender's address is not usable";
		return NULL;
	}
	return g_strdup(a);
}

/* "Re: " + subject, unless it already starts with "Re:" (any case). */
static char *
reply_subject(const char *subject)
{
	const char *s = subject != NULL ? subject : "";

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '\0')
		return g_strdup("Re: (no subject)");
	if (g_ascii_strncasecmp(s, "re:", 3) == 0)
		return g_strdup(s);
	return g_strdup_printf("Re: %s", s);
}

static char *
reply_references(GMimeMessage *orig, const char *mid)
{
	const char *refs = g_mime_object_get_header(GMIME_OBJECT(orig), "References");
	GMimeReferences *list = refs != NULL ? g_mime_references_parse(NULL, refs) : NULL;
	GString *out = g_string_new(NULL);
	int i, n = list != NULL ? g_mime_references_length(list) : 0;

	/* The newest ones: a long thread must not grow the reply without bound. */
	for (i = n > REPLY_MAX_REFERENCES ? n - REPLY_MAX_REFERENCES : 0; i < n; i++) {
		const char *r = g_mime_references_get_message_id(list, i);

		if (r != NULL && strcmp(r, mid) != 0)
			g_string_append_printf(out, "%s<%s>", out->len ? " " : "", r);
	}
	g_string_append_printf(out, "%s<%s>", out->len ? " " : "", mid);
	if (list != NULL)
		g_mime_references_free(list);
	return g_string_free(out, FALSE);
}

static char *
reply_domain(InternetAddressList *from)
{
	const char *a = reply_first_mailbox(from), *at = a != NULL ? strrchr(a, '@') : NULL;
	char host[256];

	if (at != NULL && at[1] != '\0')
		return g_strdup(at + 1);
	if (gethostname(host, sizeof(host)) < 0)
		return g_strdup("localhost");
	host[sizeof(host) - 1] = '\0';
	return g_strdup(host);
}

GMimeMessage *
reply_new(GMimeMessage *orig, const char *from, char **rcpt_r, const char **why_r)
{
	InternetAddressList *fl;
	GMimeMessage *r;
	GDateTime *now;
	const char *mid;
	char *rcpt, *subj, *dom, *id;

	*rcpt_r = NULL;
	if (from == NULL || (fl = internet_address_list_parse(NULL, from)) == NULL ||
	    reply_first_mailbox(fl) == NULL) {
		*why_r = "the reply's From address is not valid";
		return NULL;
	}
	if ((rcpt = reply_recipient(orig, why_r)) == NULL) {
		g_object_unref(fl);
		return NULL;
	}
	r = g_mime_message_new(TRUE);
	internet_address_list_append(g_mime_message_get_from(r), fl);
	internet_address_list_add(g_mime_message_get_addresses(r, GMIME_ADDRESS_TYPE_TO),
				  internet_address_mailbox_new(NULL, rcpt));
	subj = reply_subject(g_mime_message_get_subject(orig));
	g_mime_message_set_subject(r, subj, "utf-8");
	g_free(subj);
	mid = g_mime_message_get_message_id(orig);
	if (mid != NULL && *mid != '\0') {
		char *irt = g_strdup_printf("<%s>", mid), *refs = reply_references(orig, mid);

		g_mime_object_set_header(GMIME_OBJECT(r), "In-Reply-To", irt, NULL);
		g_mime_object_set_header(GMIME_OBJECT(r), "References", refs, NULL);
		g_free(irt);
		g_free(refs);
	}
	g_mime_object_set_header(GMIME_OBJECT(r), "Auto-Submitted", "auto-replied", NULL);
	dom = reply_domain(fl);
	id = g_mime_utils_generate_message_id(dom);
	g_mime_message_set_message_id(r, id);
	g_free(id);
	g_free(dom);
	now = g_date_time_new_now_local();
	g_mime_message_set_date(r, now);
	g_date_time_unref(now);
	g_object_unref(fl);
	*rcpt_r = rcpt;
	return r;
}

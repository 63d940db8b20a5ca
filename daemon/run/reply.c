/* mailmill - ISC licence, see LICENSE */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "daemon/run/reply.h"

#define REPLY_MAX_REFERENCES 20
#define REPLY_MAX_ADDR 254
#define REPLY_MAX_SUBJECT 512 /* bytes of the original's subject kept in "Re: " */
#define REPLY_FOLD 78

int
reply_orig_field(const char *name, const char *value, void *arg)
{
	static const struct {
		const char *name;
		size_t off;
	} want[] = {
		{ "Return-Path", offsetof(reply_orig, return_path) },
		{ "Reply-To", offsetof(reply_orig, reply_to) },
		{ "From", offsetof(reply_orig, from) },
		{ "Subject", offsetof(reply_orig, subject) },
		{ "Message-ID", offsetof(reply_orig, message_id) },
		{ "References", offsetof(reply_orig, references) },
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		char **slot = (char **)((char *)arg + want[i].off);

		if (*slot == NULL && g_ascii_strcasecmp(name, want[i].name) == 0) {
			*slot = g_strdup(value);
			break;
		}
	}
	return 0;
}

void
reply_orig_clear(reply_orig *o)
{
	g_free(o->return_path);
	g_free(o->reply_to);
	g_free(o->from);
	g_free(o->subject);
	g_free(o->message_id);
	g_free(o->references);
	memset(o, 0, sizeof(*o));
}

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

/* A Message-ID fit to be written back between <>: no spaces, controls or <>. */
static int
reply_id_ok(const char *id)
{
	if (id == NULL || *id == '\0' || strlen(id) > 998 - 20)
		return 0;
	for (const unsigned char *p = (const unsigned char *)id; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || *p == '<' || *p == '>')
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

/* The first mailbox of an address field's raw value, g_strdup'd, or NULL. */
static char *
reply_field_mailbox(const char *raw)
{
	InternetAddressList *l = raw != NULL ? internet_address_list_parse(NULL, raw) : NULL;
	const char *a = reply_first_mailbox(l);
	char *r = a != NULL ? g_strdup(a) : NULL;

	if (l != NULL)
		g_object_unref(l);
	return r;
}

char *
reply_recipient(const reply_orig *o, const char **why_r)
{
	char *a;

	if (o->return_path != NULL) {
		char *v = g_strstrip(g_strdup(o->return_path));
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
	a = reply_field_mailbox(o->reply_to);
	if (a == NULL)
		a = reply_field_mailbox(o->from);
	if (a == NULL) {
		*why_r = "no Return-Path, Reply-To or From address";
		return NULL;
	}
	if (!reply_addr_ok(a)) {
		g_free(a);
		*why_r = "the sender's address is not usable";
		return NULL;
	}
	return a;
}

/* "Re: " + the original's decoded subject, unless it already starts with
 * "Re:" (any case); long subjects are cut at a character boundary. */
static char *
reply_subject(const reply_orig *o)
{
	char *dec = o->subject != NULL ? g_mime_utils_header_decode_text(NULL, o->subject) : NULL;
	char *valid = dec != NULL ? g_utf8_make_valid(dec, -1) : g_strdup(""), *s = valid, *r;

	g_free(dec);
	while (*s == ' ' || *s == '\t')
		s++;
	if (strlen(s) > REPLY_MAX_SUBJECT)
		*g_utf8_find_prev_char(s, s + REPLY_MAX_SUBJECT + 1) = '\0';
	if (*s == '\0')
		r = g_strdup("Re: (no subject)");
	else if (g_ascii_strncasecmp(s, "re:", 3) == 0)
		r = g_strdup(s);
	else
		r = g_strdup_printf("Re: %s", s);
	g_free(valid);
	return r;
}

/* In-Reply-To and References of the reply (both NULL if the original has
 * no usable Message-ID).  g_free both. */
static void
reply_thread(const reply_orig *o, char **irt_r, char **refs_r)
{
	char *mid = o->message_id != NULL ? g_mime_utils_decode_message_id(o->message_id) : NULL;
	GMimeReferences *list;
	GString *out;
	int i, n;

	*irt_r = *refs_r = NULL;
	if (!reply_id_ok(mid)) {
		g_free(mid);
		return;
	}
	list = o->references != NULL ? g_mime_references_parse(NULL, o->references) : NULL;
	n = list != NULL ? g_mime_references_length(list) : 0;
	out = g_string_new(NULL);
	/* The newest ones: a long thread must not grow the reply without bound. */
	for (i = n > REPLY_MAX_REFERENCES ? n - REPLY_MAX_REFERENCES : 0; i < n; i++) {
		const char *r = g_mime_references_get_message_id(list, i);

		if (reply_id_ok(r) && strcmp(r, mid) != 0)
			g_string_append_printf(out, "%s<%s>", out->len ? " " : "", r);
	}
	g_string_append_printf(out, "%s<%s>", out->len ? " " : "", mid);
	if (list != NULL)
		g_mime_references_free(list);
	*irt_r = g_strdup_printf("<%s>", mid);
	*refs_r = g_string_free(out, FALSE);
	g_free(mid);
}

char *
reply_message_id(const char *from_addr)
{
	static unsigned long counter;
	const char *at = from_addr != NULL ? strrchr(from_addr, '@') : NULL;
	char host[256];

	if (at == NULL || !reply_id_ok(at + 1)) {
		if (gethostname(host, sizeof(host)) < 0)
			g_strlcpy(host, "localhost", sizeof(host));
		host[sizeof(host) - 1] = '\0';
		at = NULL;
	}
	return g_strdup_printf("mm.%llx.%lx.%lu.%08x%08x@%s", (long long)g_get_real_time(),
			       (long)getpid(), ++counter, g_random_int(), g_random_int(),
			       at != NULL ? at + 1 : (reply_id_ok(host) ? host : "localhost"));
}

/* The parsed From of the reply and its bare address, or NULL. */
static InternetAddressList *
reply_from(const char *from, const char **addr_r)
{
	InternetAddressList *fl = from != NULL ? internet_address_list_parse(NULL, from) : NULL;

	*addr_r = reply_first_mailbox(fl);
	if (*addr_r == NULL || !reply_addr_ok(*addr_r)) {
		if (fl != NULL)
			g_object_unref(fl);
		return NULL;
	}
	return fl;
}

/*
 * reply_format's From: the text and the bare address of `from`, kept for the
 * next call (every reply of a stage has the same From, and formatting it
 * with GMime's address code was a third of reply_format).  0, or -1 if
 * `from` is not an address.  The strings live until the next call.
 */
static int
reply_from_text(const char *from, const char **text_r, const char **addr_r)
{
	static struct {
		char *from, *text, *addr;
	} memo;
	InternetAddressList *fl;
	const char *a;

	if (from == NULL)
		return -1;
	if (memo.from == NULL || strcmp(memo.from, from) != 0) {
		if ((fl = reply_from(from, &a)) == NULL)
			return -1;
		g_free(memo.from);
		g_free(memo.text);
		g_free(memo.addr);
		memo.from = g_strdup(from);
		memo.text = internet_address_list_to_string(fl, NULL, TRUE);
		memo.addr = g_strdup(a);
		g_object_unref(fl);
	}
	*text_r = memo.text;
	*addr_r = memo.addr;
	return 0;
}

GMimeMessage *
reply_new(const reply_orig *o, const char *from, char **rcpt_r, const char **why_r)
{
	InternetAddressList *fl;
	GMimeMessage *r;
	GDateTime *now;
	const char *faddr;
	char *rcpt, *subj, *id, *irt, *refs;

	*rcpt_r = NULL;
	if ((fl = reply_from(from, &faddr)) == NULL) {
		*why_r = "the reply's From address is not valid";
		return NULL;
	}
	if ((rcpt = reply_recipient(o, why_r)) == NULL) {
		g_object_unref(fl);
		return NULL;
	}
	r = g_mime_message_new(TRUE);
	internet_address_list_append(g_mime_message_get_from(r), fl);
	internet_address_list_add(g_mime_message_get_addresses(r, GMIME_ADDRESS_TYPE_TO),
				  internet_address_mailbox_new(NULL, rcpt));
	subj = reply_subject(o);
	g_mime_message_set_subject(r, subj, "utf-8");
	g_free(subj);
	reply_thread(o, &irt, &refs);
	if (irt != NULL) {
		g_mime_object_set_header(GMIME_OBJECT(r), "In-Reply-To", irt, NULL);
		g_mime_object_set_header(GMIME_OBJECT(r), "References", refs, NULL);
		g_free(irt);
		g_free(refs);
	}
	g_mime_object_set_header(GMIME_OBJECT(r), "Auto-Submitted", "auto-replied", NULL);
	id = reply_message_id(faddr);
	g_mime_message_set_message_id(r, id);
	g_free(id);
	now = g_date_time_new_now_local();
	g_mime_message_set_date(r, now);
	g_date_time_unref(now);
	g_object_unref(fl);
	*rcpt_r = rcpt;
	return r;
}

/* ------------------------------------------------------------ as text */

/* "Name: value\n", folded before white space to keep lines near 78. */
static void
reply_put(GString *t, const char *name, const char *value)
{
	size_t col = strlen(name) + 2;

	g_string_append_printf(t, "%s: ", name);
	for (const char *p = value; *p;) {
		size_t word = strcspn(p + 1, " \t") + 1;

		if ((*p == ' ' || *p == '\t') && col + word > REPLY_FOLD && col > strlen(name) + 2) {
			g_string_append_c(t, '\n');
			col = 0;
		}
		g_string_append_len(t, p, (gssize)word);
		col += word;
		p += word;
	}
	g_string_append_c(t, '\n');
}

/* RFC 5322 date-time of now, local time, English names whatever the locale. */
static void
reply_put_date(GString *t)
{
	static const char *const wd[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const mo[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t now = time(NULL);
	struct tm tm;
	long off;

	if (localtime_r(&now, &tm) == NULL)
		gmtime_r(&now, &tm);
	off = tm.tm_gmtoff / 60;
	g_string_append_printf(t, "Date: %s, %d %s %d %02d:%02d:%02d %c%02ld%02ld\n",
			       wd[tm.tm_wday % 7], tm.tm_mday, mo[tm.tm_mon % 12], tm.tm_year + 1900,
			       tm.tm_hour, tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+',
			       labs(off) / 60, labs(off) % 60);
}

/* "Name: value" with a name of printable ASCII and a value on one line. */
static int
reply_extra_ok(const char *f)
{
	const char *colon = f != NULL ? strchr(f, ':') : NULL;

	if (colon == NULL || colon == f || strlen(f) > 998)
		return 0;
	for (const char *p = f; p < colon; p++)
		if (*p <= ' ' || *p >= 0x7f)
			return 0;
	return strpbrk(colon, "\r\n") == NULL;
}

/* 1 if body may go as 7bit: ASCII without NUL or bare CR, lines <= 998. */
static int
reply_7bit(const char *body)
{
	size_t line = 0;

	for (const unsigned char *p = (const unsigned char *)body; *p; p++) {
		if (*p >= 0x80 || *p == '\r')
			return 0;
		line = *p == '\n' ? 0 : line + 1;
		if (line > 998)
			return 0;
	}
	return 1;
}

char *
reply_format(const reply_orig *o, const char *from, const char *rcpt, const char *subject,
	     const char *const *extra, const char *body, size_t *len_r, const char **why_r)
{
	const char *ftext, *faddr;
	char *s, *irt, *refs;
	GString *t;
	size_t blen;

	*len_r = 0;
	if (reply_from_text(from, &ftext, &faddr) < 0) {
		*why_r = "the reply's From address is not valid";
		return NULL;
	}
	if (!reply_addr_ok(rcpt)) {
		*why_r = "the reply's recipient is not a usable address";
		return NULL;
	}
	for (const char *const *e = extra; e != NULL && *e != NULL; e++) {
		if (!reply_extra_ok(*e)) {
			*why_r = "an extra header field is not \"Name: value\" on one line";
			return NULL;
		}
	}
	t = g_string_sized_new(1024);
	reply_put(t, "From", ftext);
	g_string_append_printf(t, "To: %s\n", rcpt);
	{
		char *plain = subject != NULL ? g_utf8_make_valid(subject, -1) : reply_subject(o);
		char *enc = g_mime_utils_header_encode_text(NULL, plain, "utf-8");

		reply_put(t, "Subject", enc);
		g_free(enc);
		g_free(plain);
	}
	reply_put_date(t);
	s = reply_message_id(faddr);
	g_string_append_printf(t, "Message-ID: <%s>\n", s);
	g_free(s);
	reply_thread(o, &irt, &refs);
	if (irt != NULL) {
		g_string_append_printf(t, "In-Reply-To: %s\n", irt);
		reply_put(t, "References", refs);
		g_free(irt);
		g_free(refs);
	}
	g_string_append(t, "Auto-Submitted: auto-replied\n");
	for (const char *const *e = extra; e != NULL && *e != NULL; e++)
		g_string_append_printf(t, "%s\n", *e);
	g_string_append(t, "MIME-Version: 1.0\n");
	body = body != NULL ? body : "";
	blen = strlen(body);
	if (reply_7bit(body)) {
		g_string_append(t, "Content-Type: text/plain; charset=us-ascii\n"
			        "Content-Transfer-Encoding: 7bit\n\n");
		g_string_append_len(t, body, (gssize)blen);
	} else {
		GMimeEncoding enc;
		char *valid = g_utf8_make_valid(body, (gssize)blen), *qp;
		size_t vlen = strlen(valid), n;

		g_mime_encoding_init_encode(&enc, GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
		qp = g_malloc(g_mime_encoding_outlen(&enc, vlen) + 1);
		n = g_mime_encoding_flush(&enc, valid, vlen, qp);
		g_string_append(t, "Content-Type: text/plain; charset=utf-8\n"
			        "Content-Transfer-Encoding: quoted-printable\n\n");
		g_string_append_len(t, qp, (gssize)n);
		g_free(qp);
		g_free(valid);
	}
	if (t->str[t->len - 1] != '\n')
		g_string_append_c(t, '\n');
	*len_r = t->len;
	return g_string_free(t, FALSE);
}

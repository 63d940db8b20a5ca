/* mailmill - ISC licence, see LICENSE */
/*
 * The ticket plugin's threading and numbering: which ticket a message
 * belongs to (our X-Loop marker, Message-ID, In-Reply-To and References,
 * the subject's tag with its participants), the claim that gives a message
 * its number, and the state a new ticket or a follow-up records.  The keys
 * and the claim are described at the top of ticket.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "ticket.h"

#define TICKET_CLAIM_TTL (7LL * 86400)

/* The ticket number in the subject's tag (ours: this prefix), or 0. */
long long
ticket_tag_find(const struct ticket *t, const char *subject)
{
	size_t np = strlen(t->tag_pre), nq = strlen(t->tag_post);

	for (const char *p = subject; p != NULL && *p; p++) {
		const char *d = p + np, *e;
		long long n = 0;

		if (g_ascii_strncasecmp(p, t->tag_pre, np) != 0)
			continue;
		while (*d == ' ')
			d++;
		for (e = d; g_ascii_isdigit(*e) && e - d < 18; e++)
			n = n * 10 + (*e - '0');
		if (e > d && n > 0 && g_ascii_strncasecmp(e, t->tag_post, nq) == 0)
			return n;
	}
	return 0;
}

char *
ticket_tag(const struct ticket *t, long long n)
{
	/* tag_fmt was checked in init to hold one %d and nothing else. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	return g_strdup_printf(t->tag_fmt, (int)n);
#pragma GCC diagnostic pop
}

/* 1 if the message carries our X-Loop marker. */
int
ticket_ours(const struct ticket *t, GMimeMessage *m)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(m));
	int count = g_mime_header_list_get_count(hl);

	for (int i = 0; i < count; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		char *v;
		int hit;

		if (g_ascii_strcasecmp(g_mime_header_get_name(h), "X-Loop") != 0)
			continue;
		v = g_strstrip(g_strdup(g_mime_header_get_value(h) != NULL ? g_mime_header_get_value(h) : ""));
		hit = g_ascii_strcasecmp(v, t->marker) == 0;
		g_free(v);
		if (hit)
			return 1;
	}
	return 0;
}

/* The ticket a Message-ID belongs to, or 0. */
long long
ticket_by_id(struct ticket *t, mm_ctx *ctx, const char *id)
{
	char *key = g_strdup_printf("mid:%s", id), *v = mm_kv_get_ns(ctx, t->ns, key);
	long long n = v != NULL ? strtoll(v, NULL, 10) : 0;

	g_free(key);
	g_free(v);
	return n > 0 ? n : 0;
}

/* Threading by In-Reply-To, then References rightmost first. */
long long
ticket_by_refs(struct ticket *t, mm_ctx *ctx, GMimeMessage *m, const char **how)
{
	static const char *const hdrs[] = { "In-Reply-To", "References" };
	long long n = 0;

	for (size_t h = 0; h < 2 && n == 0; h++) {
		const char *v = g_mime_object_get_header(GMIME_OBJECT(m), hdrs[h]);
		GMimeReferences *refs = v != NULL ? g_mime_references_parse(NULL, v) : NULL;
		int cnt = refs != NULL ? g_mime_references_length(refs) : 0;

		for (int i = cnt - 1; i >= 0 && i >= cnt - 100 && n == 0; i--)
			n = ticket_by_id(t, ctx, g_mime_references_get_message_id(refs, i));
		if (n > 0)
			*how = h == 0 ? "in-reply-to" : "references";
		if (refs != NULL)
			g_mime_references_free(refs);
	}
	return n;
}

/* 1 if addr is the requester or a participant of ticket n. */
int
ticket_member(struct ticket *t, mm_ctx *ctx, long long n, const char *addr)
{
	char *key = g_strdup_printf("p:%lld:%s", n, addr), *v = mm_kv_get_ns(ctx, t->ns, key);
	int ok = v != NULL;

	g_free(key);
	g_free(v);
	return ok;
}

int
ticket_put(struct ticket *t, mm_ctx *ctx, mm_msg *msg, const char *value, const char *fmt, ...)
{
	va_list ap;
	char *key;
	int rc;

	va_start(ap, fmt);
	key = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	rc = mm_kv_put_ns(ctx, msg, t->ns, key, value, 0);
	g_free(key);
	return rc;
}

/* Participants of a new ticket: the requester, and whoever is in Cc. */
int
ticket_record_open(struct ticket *t, mm_ctx *ctx, mm_msg *msg, long long n, const char *sender)
{
	InternetAddressList *cc = g_mime_message_get_cc(mm_msg_mime(msg));
	int len = cc != NULL ? internet_address_list_length(cc) : 0, rc = 0;
	char *info = g_strdup_printf("%lld %s %s", (long long)time(NULL), mm_msg_account(msg),
				     sender != NULL ? sender : "");

	rc |= ticket_put(t, ctx, msg, info, "t:%lld", n);
	g_free(info);
	if (sender != NULL)
		rc |= ticket_put(t, ctx, msg, "requester", "p:%lld:%s", n, sender);
	for (int i = 0; i < len && i < 50; i++) {
		InternetAddress *ia = internet_address_list_get_address(cc, i);

		if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
			char *a = g_ascii_strdown(internet_address_mailbox_get_addr(
							  INTERNET_ADDRESS_MAILBOX(ia)), -1);

			if (strchr(a, '@') != NULL && g_ascii_strcasecmp(a, t->from_addr) != 0 &&
			    (sender == NULL || strcmp(a, sender) != 0))
				rc |= ticket_put(t, ctx, msg, "participant", "p:%lld:%s", n, a);
			g_free(a);
		}
	}
	return rc;
}

/*
 * Who is taking this message in: our own earlier claim (a retry: same
 * number), a fresh one, or somebody else's (-1: defer).  *n_io: the number
 * threading chose (0: a new ticket); replaced by the claim's.
 */
int
ticket_claim(struct ticket *t, mm_ctx *ctx, mm_msg *msg, const char *ckey, long long *n_io,
	     int *opened_io)
{
	char *me = g_strdup_printf("%s\t%s\t", mm_msg_account(msg), mm_msg_uid(msg));
	char *holder = mm_kv_get_ns(ctx, t->ns, ckey), *value;
	int rc = 0;

	if (holder == NULL) {
		if (*n_io == 0 && mm_seq_next(ctx, t->ns, "number", n_io) < 0) {
			g_free(me);
			return -2;
		}
		value = g_strdup_printf("%s%lld\t%s", me, *n_io, *opened_io ? "opened" : "followup");
		rc = mm_kv_claim_ns(ctx, t->ns, ckey, value, (long long)time(NULL) + TICKET_CLAIM_TTL,
				    &holder);
		g_free(value);
		if (rc < 0) {
			g_free(me);
			return -2;
		}
	}
	if (holder != NULL) {
		if (strncmp(holder, me, strlen(me)) == 0) {
			char *end = NULL;
			long long n = strtoll(holder + strlen(me), &end, 10);

			if (n > 0 && end != NULL && *end == '\t') {
				*n_io = n;
				*opened_io = strcmp(end + 1, "opened") == 0;
			} else
				rc = -2;
		} else {
			mm_log(ctx, MM_LOG_INFO, "uid %s: being taken in by %s: deferred until that"
			       " commits", mm_msg_uid(msg), holder);
			rc = -1;
		}
		g_free(holder);
	}
	g_free(me);
	return rc;
}

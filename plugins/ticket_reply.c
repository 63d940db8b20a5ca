/* mailmill - ISC licence, see LICENSE */
/*
 * The ticket plugin's outgoing mail: the acknowledgement of a new ticket
 * (RFC 3834 rules, through autoreply_rules) and the staff notification,
 * each with a Message-ID recorded so that replies to it thread into the
 * ticket.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ticket.h"

#define TICKET_NOTIFY_BODY_MAX (64 * 1024)

/* {ticket} and {tag}, then autoreply's {subject} and {sender}.  g_free. */
static char *
ticket_expand(const char *tmpl, long long n, const char *tag, const char *subject,
	      const char *sender)
{
	GString *s = g_string_new(NULL);
	char *out;

	for (const char *p = tmpl; *p; p++) {
		if (strncmp(p, "{ticket}", 8) == 0) {
			g_string_append_printf(s, "%lld", n);
			p += 7;
		} else if (strncmp(p, "{tag}", 5) == 0) {
			g_string_append(s, tag);
			p += 4;
		} else
			g_string_append_c(s, *p);
	}
	out = autoreply_expand(s->str, subject, sender);
	g_string_free(s, TRUE);
	return out;
}

static GMimeObject *
ticket_text_part(const char *text)
{
	GMimeTextPart *p = g_mime_text_part_new_with_subtype("plain");

	g_mime_text_part_set_text(p, text);
	g_mime_object_encode(GMIME_OBJECT(p), GMIME_ENCODING_CONSTRAINT_7BIT);
	return GMIME_OBJECT(p);
}

/* A new Message-ID in our domain, set on mail; returns it (borrowed from mail). */
static const char *
ticket_set_id(const struct ticket *t, GMimeMessage *mail)
{
	const char *at = strrchr(t->from_addr, '@');
	char *id = g_mime_utils_generate_message_id(at != NULL ? at + 1 : "localhost");

	g_mime_message_set_message_id(mail, id);
	g_free(id);
	return g_mime_message_get_message_id(mail);
}

/* autoreply_walk_fn over the daemon's header fields. */
int
ticket_walk_headers(void *msg, autoreply_field_fn fn, void *arg)
{
	return mm_msg_headers(msg, fn, arg);
}

/* Acknowledge a new ticket (RFC 3834 rules).  The ack's Message-ID is
 * recorded so that a reply to it threads into the ticket. */
void
ticket_ack(struct ticket *t, mm_ctx *ctx, mm_msg *msg, long long n, const char *tag)
{
	GMimeMessage *orig = mm_msg_mime(msg), *ack;
	const char *why = NULL, *osubj = g_mime_message_get_subject(orig), *rcpts[1], *id;
	char buf[400], *rcpt = NULL, *lrcpt = NULL, *txt;

	ack = mm_reply_new(ctx, msg, t->from, &rcpt, &why);
	if (ack == NULL) {
		mm_log(ctx, MM_LOG_INFO, "uid %s: ticket %lld: no acknowledgement: %s",
		       mm_msg_uid(msg), n, why);
		return;
	}
	lrcpt = g_ascii_strdown(rcpt, -1);
	if ((why = autoreply_skip(&t->rules, ticket_walk_headers, msg, lrcpt, buf, sizeof(buf))) != NULL) {
		mm_log(ctx, MM_LOG_INFO, "uid %s: ticket %lld: no acknowledgement to <%s>: %s",
		       mm_msg_uid(msg), n, rcpt, why);
		goto out;
	}
	g_mime_object_set_header(GMIME_OBJECT(ack), "X-Loop", t->marker, NULL);
	txt = ticket_expand(t->ack_subject, n, tag, osubj, rcpt);
	g_mime_message_set_subject(ack, txt, "utf-8");
	g_free(txt);
	txt = ticket_expand(t->ack_body, n, tag, osubj, rcpt);
	{
		GMimeObject *body = ticket_text_part(txt);

		g_mime_message_set_mime_part(ack, body);
		g_object_unref(body);
	}
	g_free(txt);
	id = ticket_set_id(t, ack);
	rcpts[0] = rcpt;
	if (mm_queue(ctx, msg, ack, "", rcpts, 1, MM_QUEUE_DSN_NEVER) < 0)
		goto out;
	if (id != NULL) {
		char *key = g_strdup_printf("mid:%s", id), *nstr = g_strdup_printf("%lld", n);

		(void)mm_kv_put_ns(ctx, msg, t->ns, key, nstr, 0);
		g_free(key);
		g_free(nstr);
	}
	mm_log(ctx, MM_LOG_INFO, "uid %s: ticket %lld: acknowledging to <%s>", mm_msg_uid(msg), n,
	       rcpt);
out:
	g_object_unref(ack);
	g_free(rcpt);
	g_free(lrcpt);
}

/* Tell the staff (except the sender); their replies thread by References. */
void
ticket_notify(struct ticket *t, mm_ctx *ctx, mm_msg *msg, const ticket_event *ev)
{
	GMimeMessage *orig = mm_msg_mime(msg), *mail;
	const char *rcpts[TICKET_MAX_NOTIFY], *id, *oid = g_mime_message_get_message_id(orig);
	size_t n = 0;
	GString *body;
	char *text, *subj;

	for (char **a = t->notify; a != NULL && *a != NULL && n < TICKET_MAX_NOTIFY; a++)
		if (ev->from == NULL || strcmp(*a, ev->from) != 0)
			rcpts[n++] = *a;
	if (n == 0)
		return;
	mail = g_mime_message_new(TRUE);
	g_mime_message_add_mailbox(mail, GMIME_ADDRESS_TYPE_FROM, NULL, t->from_addr);
	g_mime_message_add_mailbox(mail, GMIME_ADDRESS_TYPE_REPLY_TO, NULL, t->from_addr);
	for (size_t i = 0; i < n; i++)
		g_mime_message_add_mailbox(mail, GMIME_ADDRESS_TYPE_TO, NULL, rcpts[i]);
	subj = g_strdup_printf("%s %s: %s", ev->tag, ev->event, ev->subject != NULL ? ev->subject : "");
	g_mime_message_set_subject(mail, subj, "utf-8");
	g_free(subj);
	g_mime_object_set_header(GMIME_OBJECT(mail), "Auto-Submitted", "auto-generated", NULL);
	g_mime_object_set_header(GMIME_OBJECT(mail), "X-Loop", t->marker, NULL);
	if (oid != NULL) {
		char *ref = g_strdup_printf("<%s>", oid);

		g_mime_object_set_header(GMIME_OBJECT(mail), "References", ref, NULL);
		g_free(ref);
	}
	body = g_string_new(NULL);
	g_string_append_printf(body, "Ticket %lld (%s) %s by %s via %s.\nSubject: %s\n\n",
			       ev->number, ev->tag, ev->event, ev->from != NULL ? ev->from : "?",
			       ev->account, ev->subject != NULL ? ev->subject : "");
	{
		GMimeObject *b = g_mime_message_get_body(orig);

		text = b != NULL && GMIME_IS_TEXT_PART(b) ? g_mime_text_part_get_text(GMIME_TEXT_PART(b))
							 : NULL;
	}
	if (text != NULL) {
		char *valid = g_utf8_make_valid(text, (gssize)MIN(strlen(text), TICKET_NOTIFY_BODY_MAX));

		g_string_append(body, valid);
		g_free(valid);
		g_free(text);
	}
	{
		GMimeObject *part = ticket_text_part(body->str);

		g_mime_message_set_mime_part(mail, part);
		g_object_unref(part);
	}
	g_string_free(body, TRUE);
	id = ticket_set_id(t, mail);
	if (mm_queue(ctx, msg, mail, "", rcpts, n, MM_QUEUE_DSN_NEVER) == 0 && id != NULL) {
		char *key = g_strdup_printf("mid:%s", id), *nstr = g_strdup_printf("%lld", ev->number);

		(void)mm_kv_put_ns(ctx, msg, t->ns, key, nstr, 0);
		g_free(key);
		g_free(nstr);
	}
	g_object_unref(mail);
}

/* mailmill - ISC licence, see LICENSE */
#ifndef MM_REPLY_H
#define MM_REPLY_H
/*
 * Building an automatic reply the RFC 3834 way (behind mm_reply_new,
 * mm_reply_rcpt and mm_reply_queue).  Everything is read from the
 * original's raw header fields, so that a responder never needs the MIME
 * tree of the message it answers.
 */
#include <stddef.h>
#include <gmime/gmime.h>

/* The first of each field of the original, unfolded and not decoded
 * (g_malloc'd, NULL if absent): fill with reply_orig_field, free with
 * reply_orig_clear. */
typedef struct reply_orig {
	char *return_path, *reply_to, *from, *subject, *message_id, *references;
} reply_orig;

/* A message_field_fn (daemon/run/message.h) collecting into arg, a reply_orig *. */
int reply_orig_field(const char *name, const char *value, void *arg);
void reply_orig_clear(reply_orig *o);

/*
 * The bare address a reply goes to: the Return-Path, else the first
 * mailbox of Reply-To, else of From; g_free.  NULL and *why_r (static) when
 * there is nobody to reply to: a null Return-Path (<>, a bounce), or no
 * usable address.
 */
char *reply_recipient(const reply_orig *o, const char **why_r);

/*
 * A reply to o: To the recipient above, From `from` (an RFC 5322 address,
 * e.g. "Help Desk <help@example.org>"), Subject "Re: " + the original's (not
 * doubled), In-Reply-To the original's Message-ID, References the original's
 * References (the last 20) and its Message-ID, Auto-Submitted: auto-replied,
 * a new Message-ID (in the domain of `from`) and Date.  No body: the caller
 * sets one.
 *
 * Returns a new reference and *rcpt_r (g_free) the bare address to send to;
 * or NULL and *why_r (static) when there is nobody to reply to or `from` is
 * not an address.
 */
GMimeMessage *reply_new(const reply_orig *o, const char *from, char **rcpt_r, const char **why_r);

/*
 * The same reply as text, built without GMime objects (they cost more than
 * the rest of an auto-responder's work per message): the headers above with
 * To `rcpt`, Subject `subject` (UTF-8; NULL: "Re: " + the original's),
 * then the `extra` fields ("Name: value", NULL-terminated, may be NULL),
 * MIME-Version and a text/plain body from `body` (UTF-8): 7bit when it is
 * ASCII in lines of at most 998 bytes, else quoted-printable.  "\n" line
 * ends.  Returns the text (g_free) and *len_r; or NULL and *why_r (static)
 * when `from`, `rcpt` or an extra field is not acceptable.
 */
char *reply_format(const reply_orig *o, const char *from, const char *rcpt, const char *subject,
		   const char *const *extra, const char *body, size_t *len_r, const char **why_r);
/* A new Message-ID (without <>, g_free) in the domain of the address
 * from_addr, or of this host when it has none (NULL or "" for <>). */
char *reply_message_id(const char *from_addr);
#endif

/* mailmill - ISC licence, see LICENSE */
#ifndef MM_REPLY_H
#define MM_REPLY_H
/*
 * Building an automatic reply the RFC 3834 way (behind mm_reply_new).
 */
#include <gmime/gmime.h>

/*
 * A reply to orig: To the Return-Path (else Reply-To, else From), From
 * `from` (an RFC 5322 address, e.g. "Help Desk <help@example.org>"),
 * Subject "Re: " + the original's (not doubled), In-Reply-To the original's
 * Message-ID, References the original's References (the last 20) and its
 * Message-ID, Auto-Submitted: auto-replied, a new Message-ID (in the domain of
 * `from`) and Date.  No body: the caller sets one.
 *
 * Returns a new reference and *rcpt_r (allocated with g_malloc: g_free) the
 * bare address to send to; or NULL and *why_r (static) when there is nobody
 * to reply to: a null Return-Path (<>, a bounce), or no usable address.
 */
GMimeMessage *reply_new(GMimeMessage *orig, const char *from, char **rcpt_r, const char **why_r);

/* The bare address of the reply's recipient without building a reply (the
 * same rules); NULL and *why_r as above.  g_free the result. */
char *reply_recipient(GMimeMessage *orig, const char **why_r);
#endif

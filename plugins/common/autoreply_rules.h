/* mailmill - ISC licence, see LICENSE */
#ifndef MM_AUTOREPLY_RULES_H
#define MM_AUTOREPLY_RULES_H
/*
 * The decisions of the autoreply plugin that need no daemon (unit-tested in
 * tests/unit/test_autoreply.c): should a message get an automatic reply at
 * all (RFC 3834 section 2, RFC 5230 section 4.6)?  autoreply_rules.c is
 * in plugins/common (libmmplugin), shared with the ticket plugin: its
 * acknowledgements and its robot check (autoreply_robot_mail).
 */
#include <stddef.h>
#include <gmime/gmime.h>

typedef struct autoreply_rules {
	char **addresses;        /* ours, NULL-terminated, lower case */
	const char *loop_marker; /* our X-Loop value */
	const char *spam_header; /* header name, or NULL */
	const char *spam_value;  /* substring of its value (case-insensitive), NULL: any */
	int any_recipient;       /* 1: skip the "addressed to us" rule (ticket: Bcc is fine) */
} autoreply_rules;

/* The header fields of a message: walk(src, fn, arg) calls fn per top-level
 * field (name, unfolded value), stopping at the first non-zero return, which
 * it returns (mm_msg_headers' shape, so the rules need no daemon). */
typedef int (*autoreply_field_fn)(const char *name, const char *value, void *arg);
typedef int (*autoreply_walk_fn)(void *src, autoreply_field_fn fn, void *arg);
/*
 * NULL if the message whose fields walk(src) gives, from `sender` (the
 * reply's recipient, a bare address), may get a reply; else why not, as text
 * for the log: static, or written to buf.
 */
const char *autoreply_skip(const autoreply_rules *r, autoreply_walk_fn walk, void *src,
			   const char *sender, char *buf, size_t n);
/* 1 if the address's local part is one that never gets automatic replies
 * (MAILER-DAEMON, postmaster, owner-*, *-request, noreply and the like). */
int autoreply_robot_sender(const char *addr);
/*
 * NULL if the message whose fields walk(src) gives was written by a person;
 * else why it comes from a robot, as text for the log (static, or in buf):
 * a bounce (Return-Path <>, From MAILER-DAEMON, multipart/report with
 * report-type delivery-status), Auto-Submitted other than "no", list mail
 * (any List-* field), Precedence bulk, junk or list.  `top`, the message's
 * parsed top-level part or NULL, is checked too: once parsed, GMime keeps
 * Content-Type with the part, not among the message's header fields.
 */
const char *autoreply_robot_mail(autoreply_walk_fn walk, void *src, GMimeObject *top, char *buf,
				 size_t n);
/* Template expansion: {subject} and {sender}; other text as is.  g_free. */
char *autoreply_expand(const char *tmpl, const char *subject, const char *sender);
#endif

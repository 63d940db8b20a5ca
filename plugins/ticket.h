/* mailmill - ISC licence, see LICENSE */
#ifndef MM_TICKET_H
#define MM_TICKET_H
/*
 * The ticket plugin's parts: ticket.c (settings, taking a message in),
 * ticket_thread.c (threading, numbering, the claim, recorded state),
 * ticket_reply.c (acknowledgement, staff notification), ticket_export.c
 * (the JSON document, attachments, files renamed in sync(), the webhook),
 * ticket_json.c (string escaping).
 */
#include <stddef.h>
#include <glib.h>
#include <mailmill/plugin.h>
#include "common/autoreply_rules.h"
#include "common/perms.h"

struct ticket {
	char *queue, *ns;          /* ns: "ticket:<queue>", shared by every stage naming it */
	char *tag_pre, *tag_post;  /* the subject tag's text around the number (%% undone) */
	char *tag_fmt;             /* the subject_tag as configured, for snprintf */
	char *from, *from_addr, *marker;
	int acknowledge;
	char *ack_subject, *ack_body;
	char **notify;             /* NULL-terminated, lower case; NULL: none */
	autoreply_rules rules;
	char *json_dir;
	perms perms;               /* json_dir files: mode and group */
	int open_for_robots;       /* 1: bounces, lists, auto-replies open tickets too */
	char *webhook_url, *webhook_ca_file;
	long long webhook_timeout; /* seconds */
	mm_verdict verdict;
	GPtrArray *pending;        /* ticket_file *: written, not yet durable (sync()) */
	int curl_ready;
};

/* Most notify addresses (and of `addresses`). */
#define TICKET_MAX_NOTIFY 50

/* One ticket event, as exported. */
typedef struct ticket_event {
	long long number;
	const char *tag, *event, *threaded_by;
	const char *account, *uid, *message_id, *from, *subject;
	long long received, date;
} ticket_event;

/* ---- ticket_thread.c ---- */
/* The ticket number in the subject's tag (ours: this prefix), or 0. */
long long ticket_tag_find(const struct ticket *t, const char *subject);
/* The tag of ticket n.  g_free. */
char *ticket_tag(const struct ticket *t, long long n);
/* 1 if the message carries our X-Loop marker. */
int ticket_ours(const struct ticket *t, GMimeMessage *m);
/* The ticket a Message-ID belongs to, or 0. */
long long ticket_by_id(struct ticket *t, mm_ctx *ctx, const char *id);
/* Threading by In-Reply-To, then References rightmost first; *how: which. */
long long ticket_by_refs(struct ticket *t, mm_ctx *ctx, GMimeMessage *m, const char **how);
/* 1 if addr is the requester or a participant of ticket n. */
int ticket_member(struct ticket *t, mm_ctx *ctx, long long n, const char *addr);
/* Stage value under the key fmt makes, in the ticket namespace (mm_kv_put_ns). */
int ticket_put(struct ticket *t, mm_ctx *ctx, mm_msg *msg, const char *value, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Participants of a new ticket: the requester, and whoever is in Cc. */
int ticket_record_open(struct ticket *t, mm_ctx *ctx, mm_msg *msg, long long n, const char *sender);
/*
 * Who is taking this message in: our own earlier claim (a retry: same
 * number), a fresh one (0), or somebody else's (-1: defer; -2: failed).
 * *n_io: the number threading chose (0: a new ticket); replaced by the
 * claim's, and *opened_io with it.
 */
int ticket_claim(struct ticket *t, mm_ctx *ctx, mm_msg *msg, const char *ckey, long long *n_io,
		 int *opened_io);

/* ---- ticket_reply.c ---- */
/* autoreply_walk_fn over the daemon's header fields. */
int ticket_walk_headers(void *msg, autoreply_field_fn fn, void *arg);
/* Acknowledge a new ticket (RFC 3834 rules); the ack's Message-ID is recorded. */
void ticket_ack(struct ticket *t, mm_ctx *ctx, mm_msg *msg, long long n, const char *tag);
/* Tell the staff (except the sender); their replies thread by References. */
void ticket_notify(struct ticket *t, mm_ctx *ctx, mm_msg *msg, const ticket_event *ev);

/* ---- ticket_json.c ---- */
/* Append s as a JSON string (quotes included); invalid UTF-8 is replaced. */
void tj_str(GString *out, const char *s);
/* Append "key": (with a comma before unless first). */
void tj_key(GString *out, const char *key, int *first);

/* ---- ticket_export.c ---- */
/*
 * The event's JSON document (g_free): keys ticket, tag, queue, event,
 * threaded_by, account, uid, message_id, from, subject, received, date,
 * headers, body, body_truncated, attachments.  With json_dir set, the
 * attachments are written to temporary files beside it (made durable and
 * renamed by ticket_sync); `base` names the event's files.  NULL and a log
 * line when a file cannot be written.
 */
char *ticket_export_build(struct ticket *t, mm_ctx *ctx, GMimeMessage *m,
			  const ticket_event *ev, const char *base);
/* Write the document as base.json (temporary until ticket_sync).  0 / -1. */
int ticket_export_file(struct ticket *t, mm_ctx *ctx, const char *base, const char *json);
/* POST the document to webhook_url.  0 on 2xx, -1 (logged) otherwise. */
int ticket_export_post(struct ticket *t, mm_ctx *ctx, const char *json, const char *idem_key);
/* The plugin's sync(): fsync + rename every pending file, fsync json_dir. */
int ticket_sync(void *state, mm_ctx *ctx);
/* Where the pending files stand now; undo: forget (and unlink) those written
 * since the mark, i.e. one message's, leaving the rest of the batch alone. */
guint ticket_export_mark(const struct ticket *t);
void ticket_export_undo(struct ticket *t, guint mark);
/* Forget pending files (unlinking the temporaries). */
void ticket_export_drop(struct ticket *t);
/* A file name made of [A-Za-z0-9._-] only, never starting with '.', at most
 * 80 bytes, "attachment" if nothing is left.  g_free. */
char *ticket_safe_name(const char *name);
int ticket_curl_init(struct ticket *t, mm_ctx *ctx);
void ticket_curl_fini(struct ticket *t);
#endif

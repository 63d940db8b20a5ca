/* mailmill - ISC licence, see LICENSE */
#ifndef MM_IMAP_H
#define MM_IMAP_H
/*
 * An IMAP4rev1 client library (RFC 3501, with LITERAL+ 7888, SASL-IR 4959,
 * UIDPLUS 4315, MOVE 6851, IDLE 2177) in the style of proto/pop3: it knows
 * nothing of the daemon and never logs; a trace callback (imap_set_trace)
 * sees the protocol with secrets redacted and literal bodies left out.
 *
 * Error contract: every verb returns an imap_status.  IMAP_OK is success.
 * On any other status *err_r (when err_r is not NULL) is set to an
 * allocated message (caller frees with free()) that starts with the command
 * ("LOGIN: NO [AUTHENTICATIONFAILED] Authentication failed.") and includes
 * the server's text, bounded and stripped of control bytes; imap_last_code()
 * gives the response code of the last tagged NO/BAD ("" if none).
 * After IMAP_EIO, IMAP_EPROTO or IMAP_ETLS the session is unusable (later
 * verbs give IMAP_EUSAGE): call imap_close only.  IMAP_ENO, IMAP_EBAD,
 * IMAP_EAUTH, IMAP_ETOOBIG, IMAP_EGONE and IMAP_EUSAGE leave it usable.
 * A BYE from the server (outside LOGOUT) ends the session: IMAP_EIO with
 * the BYE text in *err_r, and imap_counters()->bye set.
 *
 * Numbers from the server are parsed with overflow checks and never
 * trusted: a literal's size allocates nothing (message bodies go into the
 * caller's capped buf, other literals are bounded by max_literal), counts
 * and UIDs are range-checked, lists are bounded by the caller's max_count.
 *
 * Mailbox names are passed as UTF-8 and sent in modified UTF-7 (RFC 3501
 * 5.1.3; "&" becomes "&-"), quoted, or as a literal when they need it.
 * Untagged responses may come at any time (EXISTS, EXPUNGE, RECENT, FETCH
 * for other messages, FLAGS, OK [ALERT], BYE): every verb takes them into
 * the session's counters (imap_counters) and never mistakes them for the
 * answer it is reading.
 */
#include <stddef.h>
#include <stdint.h>
#include "proto/buf.h"

typedef enum {
	IMAP_OK = 0,
	IMAP_ENO,     /* the server answered NO (imap_last_code says why) */
	IMAP_EBAD,    /* the server answered BAD (it did not understand us) */
	IMAP_EIO,     /* connection failed, closed, timed out, or the server said BYE */
	IMAP_EPROTO,  /* the server broke the protocol (bad syntax, over a bound, ...) */
	IMAP_ETLS,    /* TLS failed, STARTTLS not offered / refused, or injection */
	IMAP_EAUTH,   /* authentication refused (NO to LOGIN or AUTHENTICATE) */
	IMAP_ETOOBIG, /* a message (or a listing) larger than the caller's cap */
	IMAP_EUSAGE,  /* caller error (bad argument, capability not offered, wrong state) */
	IMAP_EGONE    /* UID FETCH: the message is no longer there (expunged by
		       * another client): the tagged OK/NO came without its body */
} imap_status;

const char *imap_status_name(imap_status st); /* "IMAP_ENO"... static */

/*
 * 1 if a NO with this response code (imap_last_code, RFC 5530) is worth
 * retrying later unchanged: UNAVAILABLE, INUSE, LIMIT, SERVERBUG,
 * OVERQUOTA, EXPUNGEISSUED... 0 for AUTHENTICATIONFAILED, AUTHORIZATIONFAILED,
 * NONEXISTENT, TRYCREATE, CANNOT, NOPERM, PRIVACYREQUIRED... and "".
 */
int imap_code_is_temporary(const char *code);

typedef struct imap_session imap_session;
/* See imap_set_trace.  line is borrowed for the call only, not NUL-terminated. */
typedef void imap_trace_fn(void *arg, char dir, const char *line, size_t len);

typedef enum { IMAP_TLS_NONE = 0, IMAP_TLS_IMPLICIT, IMAP_TLS_STARTTLS } imap_tls_mode;

typedef struct imap_options {
	const char *host;
	const char *port;         /* service or number */
	imap_tls_mode tls;
	const char *ca_file;      /* NULL: the system store */
	int connect_timeout_ms;   /* default 30000 (0) */
	int command_timeout_ms;   /* whole-command deadline; default 60000 (0).
	                           * One UID FETCH receive, one IDLE read step,
	                           * one listing each get their own. */
	size_t max_line;          /* default 65536 (0): the text of one response,
	                           * without its literals (a CAPABILITY, a FETCH
	                           * line with many flags) */
	size_t max_literal;       /* default 65536 (0): a literal that is not a
	                           * message body (a mailbox name, a quoted item);
	                           * a larger one is IMAP_EPROTO.  Bodies are
	                           * bounded by the caller's buf instead. */
	int lf_line_ends;         /* (added) 1: fetched bodies get "\n" line ends,
	                           * as pop3_retr gives them (each CR LF becomes
	                           * LF; a CR alone stays); out->max still bounds
	                           * the size on the wire.  0: bytes as sent. */
} imap_options;

/*
 * Connect, do implicit TLS if asked, read the greeting: "* OK" (then
 * CAPABILITY unless the greeting carried [CAPABILITY ...]), "* PREAUTH"
 * (already authenticated: imap_is_authenticated), "* BYE" (IMAP_ENO, the
 * server's text in *err_r).  With IMAP_TLS_STARTTLS: STARTTLS if the
 * capability is offered, else IMAP_ETLS and nothing more is sent (never a
 * fallback); a PREAUTH greeting with IMAP_TLS_STARTTLS is IMAP_ETLS too (a
 * stripping attack: STARTTLS is not allowed once authenticated).  Anything
 * the server sends after its OK to STARTTLS and before the handshake is an
 * injection: IMAP_ETLS.  After the handshake the capabilities are read
 * again and only that set counts.  On any failure *s_r is NULL.
 * *s_r is owned by the caller (imap_close).
 */
imap_status imap_connect(const imap_options *opt, imap_session **s_r, char **err_r);
/* Run over an already connected fd (tests; takes the fd); reads the greeting. */
imap_status imap_from_fd(int fd, const imap_options *opt, imap_session **s_r, char **err_r);
/* As above, with a trace callback in place from the first byte. */
imap_status imap_connect_trace(const imap_options *opt, imap_trace_fn *fn, void *arg,
			       imap_session **s_r, char **err_r);
imap_status imap_from_fd_trace(int fd, const imap_options *opt, imap_trace_fn *fn, void *arg,
			       imap_session **s_r, char **err_r);
/* Sends nothing; closes the socket; sets *s to NULL (NULL is fine). */
void imap_close(imap_session **s);

/* Trace: dir 'C' (client) or 'S' (server).  The LOGIN password and every
 * AUTHENTICATE payload are shown as "<redacted>"; literal bodies of FETCH
 * as "{N bytes}"; other literals are traced. */
void imap_set_trace(imap_session *s, imap_trace_fn *fn, void *arg);

const char *imap_greeting(const imap_session *s);     /* borrowed, sanitised */
int imap_is_tls(const imap_session *s);
const char *imap_tls_describe(const imap_session *s); /* borrowed */
const char *imap_tls_cert(const imap_session *s);     /* borrowed */
/* 1 once LOGIN/AUTHENTICATE succeeded or the greeting was PREAUTH. */
int imap_is_authenticated(const imap_session *s);
/* Response code atom of the last tagged NO/BAD ("" if none; borrowed). */
const char *imap_last_code(const imap_session *s);
/* Text of the last [ALERT] the server sent (RFC 3501 7.1: must be shown
 * to the user), sanitised; "" if none; borrowed. */
const char *imap_alert(const imap_session *s);

/* What untagged responses said, kept as they arrive (during any verb). */
typedef struct imap_counters {
	uint32_t exists;          /* last EXISTS of the selected mailbox */
	uint32_t recent;          /* last RECENT */
	int exists_known;         /* an EXISTS came since the last SELECT/EXAMINE */
	unsigned long n_exists;   /* EXISTS responses since connect */
	unsigned long n_expunge;  /* EXPUNGE responses since connect */
	unsigned long n_fetch;    /* FETCH responses nobody asked for (flag changes) */
	unsigned long n_dropped;  /* FETCH bodies for UIDs not being fetched, dropped */
	int bye;                  /* the server said BYE */
} imap_counters;
const imap_counters *imap_counters_get(const imap_session *s); /* borrowed */

/* CAPABILITY: refreshes the session's set (connect, STARTTLS and login do
 * it themselves, from a [CAPABILITY ...] response code when there is one). */
imap_status imap_capability(imap_session *s, char **err_r);
/* 1 if the capability set holds `name` (case-insensitive): "IMAP4REV1",
 * "STARTTLS", "LOGINDISABLED", "MOVE", "UIDPLUS", "IDLE", "SASL-IR",
 * "LITERAL+", "AUTH=PLAIN"... */
int imap_has_capa(const imap_session *s, const char *name);
/* 1 if "AUTH=<mech>" is offered. */
int imap_has_auth(const imap_session *s, const char *mech);
/* The capabilities, space-separated, into out (len bytes, NUL-terminated,
 * cut to fit); its length.  "" before any. */
size_t imap_capa_text(const imap_session *s, char *out, size_t len);

/* STARTTLS, handshake, CAPABILITY again.  IMAP_ETLS if not offered. */
imap_status imap_starttls(imap_session *s, char **err_r);

/*
 * Authentication.  A NO is IMAP_EAUTH (the session stays usable);
 * imap_last_code() then tells a temporary refusal (UNAVAILABLE) from bad
 * credentials (AUTHENTICATIONFAILED).  Capabilities are read again after
 * success (from [CAPABILITY ...] in the OK when present).
 * Policy: whether a password may cross a link without TLS is the caller's
 * decision (imap_is_tls); OAuth tokens are refused here without TLS.
 *
 * LOGIN: IMAP_EUSAGE, nothing sent, if the server says LOGINDISABLED, or
 * for an empty user, CR/LF/NUL in either, or either over 1024 bytes.
 * Arguments are sent quoted, or as a literal when they hold 8-bit bytes
 * or quotes call for it (LITERAL+ when offered, else waiting for "+").
 */
imap_status imap_login(imap_session *s, const char *user, const char *password, char **err_r);
/*
 * AUTHENTICATE mech "PLAIN" or "LOGIN" (proto/sasl.c).  IMAP_EUSAGE if
 * AUTH=<mech> is not offered, or sasl_response refuses the credentials.
 * With SASL-IR offered (and the command line within 8192 bytes) the initial
 * response rides on the AUTHENTICATE line, else it follows the "+".
 */
imap_status imap_authenticate(imap_session *s, const char *mech, const char *user,
			      const char *password, char **err_r);
/*
 * OAuth 2.0 over SASL: mech "XOAUTH2" or "OAUTHBEARER" (sent with the host
 * and port of imap_options), or NULL: OAUTHBEARER if offered, else XOAUTH2,
 * else IMAP_EUSAGE.  Refused (IMAP_EUSAGE, nothing sent) when the session is
 * not TLS.  SASL-IR as imap_authenticate.  A refused token: the server's
 * error challenge ("+ <base64 JSON>") is answered (XOAUTH2 an empty line,
 * OAUTHBEARER "AQ==") and the result is IMAP_EAUTH with *err_r holding the
 * tagged NO and the decoded challenge, never the token.  *mech_used_r (may
 * be NULL) gets the static name of the mechanism chosen, NULL if none was.
 */
imap_status imap_auth_oauth(imap_session *s, const char *mech, const char *user,
			    const char *token, const char **mech_used_r, char **err_r);

/* What SELECT / EXAMINE learnt of a mailbox. */
typedef struct imap_mailbox {
	uint32_t exists;       /* messages in it */
	uint32_t uidvalidity;  /* 0 if the server sent none (then UIDs are not
	                        * stable: callers must not key on them) */
	uint32_t uidnext;      /* 0 if the server sent none */
	int read_only;         /* [READ-ONLY] in the tagged OK (or EXAMINE) */
} imap_mailbox;

/*
 * SELECT / EXAMINE the mailbox (UTF-8 name).  A NO is IMAP_ENO
 * (NONEXISTENT...), the session stays authenticated with nothing
 * selected.  IMAP_EUSAGE before authentication or for a bad name (empty,
 * CR/LF/NUL, invalid UTF-8, over 1000 bytes).
 */
imap_status imap_select(imap_session *s, const char *mailbox, imap_mailbox *info_r,
			char **err_r);
imap_status imap_examine(imap_session *s, const char *mailbox, imap_mailbox *info_r,
			 char **err_r);
/* The mailbox currently selected (UTF-8 as given; NULL if none; borrowed). */
const char *imap_selected(const imap_session *s);
/* CREATE; a NO with [ALREADYEXISTS] (or a NO while LIST shows it exists)
 * is IMAP_OK. */
imap_status imap_create(imap_session *s, const char *mailbox, char **err_r);
/* LIST "" mailbox: *exists_r 1 if the server lists it (and it is not
 * \NoSelect / \NonExistent), else 0. */
imap_status imap_mailbox_exists(imap_session *s, const char *mailbox, int *exists_r,
				char **err_r);

/* One message of a listing. */
typedef struct imap_entry {
	uint32_t uid;              /* 1 .. 2^32-1 */
	unsigned long long size;   /* RFC822.SIZE; 0 if size_known is 0 */
	int size_known;
} imap_entry;

/*
 * UID FETCH first_uid:* (UID RFC822.SIZE) in the selected mailbox (nothing
 * is sent when it is known to be empty): *entries_r gets an array (caller
 * frees with free(); NULL when empty) of *n_r entries sorted by UID, each
 * UID once (a UID listed twice keeps its first size), only UIDs >= first_uid
 * (the server answers "n:*" with the last message even when its UID is
 * below n).  first_uid 0 or 1: all.  More than max_count entries (0 means
 * 1000000): the rest of the answer is read and dropped and the result is
 * IMAP_ETOOBIG with *entries_r NULL, the session usable (ask again with a
 * higher first_uid or a larger max_count).  FETCH lines without a valid UID
 * are ignored (counted in n_fetch).
 */
imap_status imap_uid_list(imap_session *s, uint32_t first_uid, unsigned long max_count,
			  imap_entry **entries_r, size_t *n_r, char **err_r);
/*
 * UID SEARCH <criteria> (printable ASCII, no CR/LF, e.g. "ALL", "UNSEEN",
 * "UID 100:*"): *uids_r (caller frees; NULL when none) of *n_r UIDs, sorted,
 * each once, bounded by max_count as imap_uid_list.
 */
imap_status imap_uid_search(imap_session *s, const char *criteria, unsigned long max_count,
			    uint32_t **uids_r, size_t *n_r, char **err_r);

/*
 * Fetching bodies: UID FETCH <set> (BODY.PEEK[]) (never RFC822, which sets
 * \Seen or is refused by some servers).  imap_fetch is one message; the
 * send/flush/recv trio pipelines them: imap_send_fetch queues a UID,
 * imap_flush sends the queue as few commands as it can (one set per
 * ascending run of at most 256 UIDs, its set within 1000 bytes; the caller
 * bounds the bytes it asks for by its window).  At most 1024 UIDs in
 * flight (the caller keeps its window smaller), and while any are, other
 * verbs refuse with IMAP_EUSAGE.  imap_recv_fetch gives the oldest
 * outstanding UID's message as soon as it came (a set's tagged answer is
 * not awaited but for its last UID) into out (appended; out->max bounds it):
 *   IMAP_OK       the body is in out, *uid_r (may be NULL) its UID.
 *   IMAP_ETOOBIG  the body was larger than out->max: it was read and
 *                 dropped within the deadline; the session is usable.
 *   IMAP_EGONE    its command's tagged OK (or NO) came without the body:
 *                 another client expunged it; nothing in out; usable.
 *   IMAP_ENO / IMAP_EBAD  its command refused for another reason (every
 *                 UID of the set without a body gets it); usable.
 *   IMAP_EIO / IMAP_EPROTO  broken (a connection lost inside the literal...)
 * A body for a UID not in flight is dropped (counted in n_dropped); one
 * without a UID item is taken only by a command of one UID.
 * BODY[] is accepted in place of BODY.PEEK[]'s answer (iCloud), other items
 * (FLAGS, UID, ...) in any order, and untagged responses for other messages
 * in between.  A body is never allocated by the literal's size: it grows
 * as bytes arrive.  On failure out may hold part of the message.
 * Servers may run pipelined fetches at once and send every body before the
 * first tagged OK (Dovecot does): a body that arrives before its turn is
 * kept in the session until its imap_recv_fetch, bounded by the out->max
 * of the imap_recv_fetch that read it, so the window times out->max bounds
 * the memory.
 */
imap_status imap_fetch(imap_session *s, uint32_t uid, buf *out, char **err_r);
imap_status imap_send_fetch(imap_session *s, uint32_t uid, char **err_r);
imap_status imap_flush(imap_session *s, char **err_r);
imap_status imap_recv_fetch(imap_session *s, buf *out, uint32_t *uid_r, char **err_r);
/* Commands sent and not yet received. */
size_t imap_in_flight(const imap_session *s);

/*
 * Changes, each on a set of UIDs (any order, duplicates and 0 ignored;
 * sent as compact sets "1:5,7,9:12", split into several commands so that
 * no command line passes 1000 bytes).  n == 0 sends nothing and is IMAP_OK.
 *
 * imap_uid_store_flags: UID STORE <set> +FLAGS.SILENT (<flags>); flags is a
 * space-separated list of system flags ("\\Seen", "\\Deleted"...) or
 * keywords (atoms); anything else is IMAP_EUSAGE.
 * imap_uid_move: UID MOVE (RFC 6851); IMAP_EUSAGE when MOVE is not offered.
 * imap_uid_copy: UID COPY.  A NO [TRYCREATE] to MOVE or COPY is IMAP_ENO
 * with imap_last_code() "TRYCREATE": create the mailbox and try again.
 * imap_uid_expunge: UID EXPUNGE (RFC 4315), which removes only these UIDs'
 * \Deleted messages; IMAP_EUSAGE when UIDPLUS is not offered.  There is no
 * bare EXPUNGE (it would remove other clients' deleted mail), nor CLOSE.
 * On a failure part of the set may already be done (commands before it
 * succeeded): each of these is idempotent, so the caller repeats them all.
 */
imap_status imap_uid_store_flags(imap_session *s, const uint32_t *uids, size_t n,
				 const char *flags, char **err_r);
imap_status imap_uid_move(imap_session *s, const uint32_t *uids, size_t n, const char *mailbox,
			  char **err_r);
imap_status imap_uid_copy(imap_session *s, const uint32_t *uids, size_t n, const char *mailbox,
			  char **err_r);
imap_status imap_uid_expunge(imap_session *s, const uint32_t *uids, size_t n, char **err_r);

/*
 * The same changes pipelined, also while fetches are in flight, so that the
 * server works on one batch's change while it sends the next bodies:
 * imap_send_change queues the command(s) of one change after the fetches
 * queued before it (imap_flush sends them); imap_recv_change reads the
 * answers of the oldest change not yet read: IMAP_OK when every command of
 * it was answered OK, else the first refusal (IMAP_ENO, IMAP_EBAD: the
 * session is usable) or a broken session.  Bodies of fetches in flight that
 * come meanwhile wait for their imap_recv_fetch (bounded by the out->max of
 * the last one), and a change's answer that comes while imap_recv_fetch
 * reads waits for its imap_recv_change.  The server's EXPUNGE responses
 * renumber messages, never their UIDs, and bodies are matched by UID.
 * IMAP_CHANGE_FLAGS: UID STORE +FLAGS.SILENT (arg: flags, as
 * imap_uid_store_flags); IMAP_CHANGE_MOVE: UID MOVE to arg;
 * IMAP_CHANGE_EXPUNGE: UID EXPUNGE (arg NULL).  No COPY: a copy must be
 * confirmed before the originals go, so nothing may ride behind it.  While
 * changes are in flight, other verbs than these, the fetch trio and
 * imap_close are IMAP_EUSAGE.
 */
typedef enum { IMAP_CHANGE_FLAGS = 0, IMAP_CHANGE_MOVE, IMAP_CHANGE_EXPUNGE } imap_change;
imap_status imap_send_change(imap_session *s, imap_change kind, const uint32_t *uids, size_t n,
			     const char *arg, char **err_r);
imap_status imap_recv_change(imap_session *s, char **err_r);
/* Changes sent and not yet read. */
size_t imap_changes_in_flight(const imap_session *s);

/*
 * IDLE (RFC 2177), for a caller that watches many sessions with poll():
 * imap_idle_start sends IDLE and waits (command deadline) for the "+".
 * Then poll imap_fd() for POLLIN, but first check imap_idle_pending(): bytes
 * may already be buffered (in the session or inside TLS) that poll cannot
 * see.  When either says so, imap_idle_read takes what is there without
 * waiting for more than the rest of a response already begun (bounded by
 * the command deadline), handles every complete response and sets
 * *events_r to IMAP_IDLE_* bits (0: nothing yet).  imap_idle_wait is the
 * same with its own poll, up to timeout_ms (0 events on timeout: the
 * session is fine).  A BYE is IMAP_EIO (server going away: reconnect).
 * imap_idle_done sends DONE and reads the tagged OK (untagged responses in
 * between are counted as usual); the session is usable for other verbs
 * again.  Servers drop an IDLE after 30 minutes: re-issue before 29.
 * During IDLE, verbs other than these, imap_counters_get, imap_fd and
 * imap_close are IMAP_EUSAGE.
 */
enum {
	IMAP_IDLE_EXISTS = 1,   /* new mail (an EXISTS, or RECENT went up) */
	IMAP_IDLE_EXPUNGE = 2,  /* a message went away */
	IMAP_IDLE_FETCH = 4,    /* flags changed */
	IMAP_IDLE_OTHER = 8     /* any other untagged response (OK, ALERT...) */
};
imap_status imap_idle_start(imap_session *s, char **err_r);
int imap_fd(const imap_session *s);
int imap_idle_pending(const imap_session *s);
imap_status imap_idle_read(imap_session *s, unsigned *events_r, char **err_r);
imap_status imap_idle_wait(imap_session *s, int timeout_ms, unsigned *events_r, char **err_r);
imap_status imap_idle_done(imap_session *s, char **err_r);
/* 1 while IDLE is running. */
int imap_idling(const imap_session *s);

imap_status imap_noop(imap_session *s, char **err_r);
/* LOGOUT and read its BYE and tagged OK.  Use imap_close afterwards. */
imap_status imap_logout(imap_session *s, char **err_r);

/* ---- helpers and the parser without I/O (exposed for tests and fuzzing) ---- */

/*
 * The compact UID set of the longest prefix of uids (ascending, no
 * duplicates, none 0) that fits into cap - 1 bytes ("1:5,7,9:12", NUL
 * written); returns how many UIDs it covers (0 if cap cannot hold even the
 * first).  Callers sort and dedupe first (imap_uids_sort).
 */
size_t imap_uidset(const uint32_t *uids, size_t n, char *out, size_t cap);
/* Sort ascending, drop 0 and duplicates; the new count. */
size_t imap_uids_sort(uint32_t *uids, size_t n);
/* UTF-8 to modified UTF-7 (RFC 3501 5.1.3): allocated (caller frees), or
 * NULL with errno EINVAL (invalid UTF-8, control bytes) or ENOMEM. */
char *imap_utf7_encode(const char *utf8);

/* One token of a data response, in preorder: a list is followed by its
 * items; `end` is the index just past its last descendant. */
typedef enum {
	IMAP_T_ATOM = 0, /* atom or number (also BODY[...]<n> as one atom) */
	IMAP_T_STRING,   /* quoted string (unescaped) or literal */
	IMAP_T_NIL,
	IMAP_T_LIST,     /* ( ... ) */
	IMAP_T_BODY      /* a streamed body literal: s NULL, len its size */
} imap_tok_type;
typedef struct imap_token {
	imap_tok_type type;
	const char *s;   /* borrowed from the response; NOT NUL-terminated */
	size_t len;
	size_t end;      /* IMAP_T_LIST: index past its items; else index + 1 */
} imap_token;

typedef enum {
	IMAP_R_CONTINUE = 0, /* "+ text" */
	IMAP_R_UNTAGGED,     /* "* ..." */
	IMAP_R_TAGGED        /* "tag ..." */
} imap_resp_kind;
typedef enum {
	IMAP_C_NONE = 0,     /* a data response (CAPABILITY, n EXISTS, n FETCH, LIST...) */
	IMAP_C_OK, IMAP_C_NO, IMAP_C_BAD, IMAP_C_PREAUTH, IMAP_C_BYE
} imap_cond;

/* A whole response; every pointer is borrowed from the parser until its
 * next feed. */
typedef struct imap_response {
	imap_resp_kind kind;
	const char *tag; size_t tag_len;      /* IMAP_R_TAGGED */
	imap_cond cond;                       /* status responses */
	int has_number; uint32_t number;      /* "* 23 EXISTS" */
	const char *name; size_t name_len;    /* "EXISTS", "FETCH", "CAPABILITY", "OK"... */
	const char *code; size_t code_len;    /* response code atom: "UIDVALIDITY" */
	const char *code_arg; size_t code_arg_len; /* rest inside [ ]: "3857529045" */
	const char *text; size_t text_len;    /* human text, or "+" text */
	const imap_token *toks; size_t n_toks; /* data after the name */
} imap_response;

typedef struct imap_parser imap_parser;
typedef struct imap_parser_limits {
	size_t max_line;     /* text of one response without literals (0: 65536) */
	size_t max_literal;  /* a literal that is not a body (0: 65536) */
	size_t max_depth;    /* list nesting (0: 16) */
	size_t max_tokens;   /* tokens of one response (0: 100000) */
} imap_parser_limits;

/* What imap_parser_feed found. */
typedef enum {
	IMAP_P_MORE = 0,  /* all input used: feed more */
	IMAP_P_RESPONSE,  /* a response is complete: imap_parser_response */
	IMAP_P_BODY,      /* *chunk_r / *chunk_len_r: the next bytes of a body literal */
	IMAP_P_ERROR      /* broken input: imap_parser_error; the stream is lost */
} imap_parse_event;

/* NULL on ENOMEM. */
imap_parser *imap_parser_new(const imap_parser_limits *lim);
void imap_parser_free(imap_parser **p);
/*
 * Feed bytes of any chunking; *used_r says how many were taken (stop after
 * an event that is not IMAP_P_MORE; feed the rest again).  A literal after
 * "BODY[<section>]<origin>", "BINARY[...]" or "RFC822" in a FETCH response
 * is a body: it is not kept but handed out in chunks (IMAP_P_BODY, pointing
 * into data), then its token is IMAP_T_BODY with its size.  Any other
 * literal longer than max_literal, a line longer than max_line, nesting or
 * token counts over their limits, a literal size over 2^63, or bad syntax:
 * IMAP_P_ERROR.
 */
imap_parse_event imap_parser_feed(imap_parser *p, const char *data, size_t len, size_t *used_r,
				  const char **chunk_r, size_t *chunk_len_r);
const imap_response *imap_parser_response(const imap_parser *p);
const char *imap_parser_error(const imap_parser *p); /* static text */
/* 1 while in the middle of a response (bytes of it taken, not complete). */
int imap_parser_busy(const imap_parser *p);
/* The size of the body literal being streamed, and bytes of it left. */
unsigned long long imap_parser_body_left(const imap_parser *p);

/* A token's number: 0 and *v_r for a plain number within max, else -1. */
int imap_tok_number(const imap_token *t, unsigned long long max, unsigned long long *v_r);
/* 1 if an atom token equals name (case-insensitive). */
int imap_tok_is(const imap_token *t, const char *name);
#endif

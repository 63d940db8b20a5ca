/* mailmill - ISC licence, see LICENSE */
#ifndef MM_POP3_H
#define MM_POP3_H
/*
 * A POP3 client library (RFC 1939, 2449, 2595, 3206, 5034) whose verbs mirror
 * Python's poplib.  It knows nothing of the daemon and never logs; a trace
 * callback (pop3_set_trace) sees the protocol with secrets redacted.
 *
 * Error contract: every verb returns a pop3_status.  POP3_OK is success.  On
 * any other status *err_r (when err_r is not NULL) is set to an allocated
 * message (caller frees) that includes the server's text where there was one,
 * and pop3_last_code() gives the RFC 2449 response code of the last -ERR.
 * After POP3_EIO, POP3_EPROTO or POP3_ETLS the session is unusable (later
 * verbs give POP3_EUSAGE): call pop3_close only.  POP3_ENEG (a plain -ERR),
 * POP3_EAUTH, POP3_EUSAGE and POP3_ETOOBIG (the rest of the message was read
 * and dropped) leave it usable.  Error
 * messages start with the command ("PASS: -ERR [AUTH] Authentication
 * failed."); server text in them is bounded and stripped of control bytes.
 *
 * Numbers from the server are parsed with overflow checks; nothing is
 * allocated by a size the server claims.
 */
#include <stddef.h>
#include "proto/buf.h"

typedef enum {
	POP3_OK = 0,
	POP3_ENEG,    /* the server said -ERR */
	POP3_EIO,     /* connection failed, closed, timed out */
	POP3_EPROTO,  /* the server broke the protocol (bad reply, too long, ...) */
	POP3_ETLS,    /* TLS failed, or STLS not offered / refused, or injection */
	POP3_EAUTH,   /* authentication refused */
	POP3_ETOOBIG, /* message larger than the caller's cap */
	POP3_EUSAGE   /* caller error (bad argument, mechanism not offered) */
} pop3_status;

/* RFC 2449 / RFC 3206 extended response codes of the last -ERR. */
typedef enum {
	POP3_RC_NONE = 0,
	POP3_RC_IN_USE,       /* [IN-USE]      temporary */
	POP3_RC_LOGIN_DELAY,  /* [LOGIN-DELAY] temporary */
	POP3_RC_SYS_TEMP,     /* [SYS/TEMP]    temporary */
	POP3_RC_SYS_PERM,     /* [SYS/PERM]    permanent */
	POP3_RC_AUTH,         /* [AUTH]        permanent: credentials */
	POP3_RC_OTHER         /* some other [CODE] */
} pop3_rcode;

/* 1 if a failure with this code is worth retrying later unchanged. */
int pop3_rcode_is_temporary(pop3_rcode rc);
const char *pop3_rcode_name(pop3_rcode rc);

typedef struct pop3_session pop3_session;
/* See pop3_set_trace.  line is borrowed for the call only, not NUL-terminated. */
typedef void pop3_trace_fn(void *arg, char dir, const char *line, size_t len);

typedef enum { POP3_TLS_NONE = 0, POP3_TLS_IMPLICIT, POP3_TLS_STLS } pop3_tls_mode;

typedef struct pop3_options {
	const char *host;
	const char *port;         /* service or number */
	pop3_tls_mode tls;
	const char *ca_file;      /* NULL: the system store */
	int connect_timeout_ms;   /* default 30000 */
	int command_timeout_ms;   /* whole-command deadline; default 60000 */
	size_t max_line;          /* default 8192; RFC 1939 says 512 for replies.
	                           * Bounds status and listing lines; body lines
	                           * have no bound but the message's (read in
	                           * pieces of max(max_line, 1 MiB)). */
} pop3_options;

/*
 * Connect, do implicit TLS if asked, read the greeting (and keep its APOP
 * timestamp), then CAPA (a -ERR to it is not an error: the capability set
 * stays empty).  With POP3_TLS_STLS, CAPA and STLS: if STLS is not offered
 * or refused the result is POP3_ETLS and nothing more is sent; after the
 * handshake CAPA again, and only that set counts.
 * *s_r is owned by the caller (pop3_close).
 */
pop3_status pop3_connect(const pop3_options *opt, pop3_session **s_r, char **err_r);
/* Run over an already connected fd (tests); reads the greeting. */
pop3_status pop3_from_fd(int fd, const pop3_options *opt, pop3_session **s_r, char **err_r);
/*
 * As above, with a trace callback in place from the first byte (so the
 * greeting, CAPA and STLS of the connect are traced too).  On any failure
 * *s_r is NULL and *err_r carries the server's text (e.g. a -ERR greeting).
 */
pop3_status pop3_connect_trace(const pop3_options *opt, pop3_trace_fn *fn, void *arg,
			       pop3_session **s_r, char **err_r);
pop3_status pop3_from_fd_trace(int fd, const pop3_options *opt, pop3_trace_fn *fn, void *arg,
			       pop3_session **s_r, char **err_r);
/*
 * pop3_connect_trace in two steps: pop3_dial opens the TCP connection only,
 * so the caller can work while the server prepares its greeting (Dovecot
 * starts a login process first: docs/design.md, "Measurements behind the
 * interfaces"); pop3_connect_dial does
 * the rest on it with the same options, and takes the dial over whatever
 * it returns.  pop3_dial_close drops one that is not used.
 */
typedef struct pop3_dial pop3_dial;
pop3_status pop3_dial_open(const pop3_options *opt, pop3_dial **d_r, char **err_r);
pop3_status pop3_connect_dial(pop3_dial *d, const pop3_options *opt, pop3_trace_fn *fn,
			      void *arg, pop3_session **s_r, char **err_r);
void pop3_dial_close(pop3_dial **d);
/* Sends nothing; closes the socket; sets *s to NULL. */
void pop3_close(pop3_session **s);

/* Trace: dir is 'C' (client) or 'S' (server); PASS and AUTH payloads are
 * shown as "PASS <redacted>" etc.  Message bodies are not traced. */
void pop3_set_trace(pop3_session *s, pop3_trace_fn *fn, void *arg);

pop3_rcode pop3_last_code(const pop3_session *s);
const char *pop3_greeting(const pop3_session *s);       /* borrowed */
int pop3_is_tls(const pop3_session *s);
const char *pop3_tls_describe(const pop3_session *s);   /* borrowed */
const char *pop3_tls_cert(const pop3_session *s);       /* tls_cert; borrowed */

/* CAPA: fills the session's capability set (also done by stls/connect). */
pop3_status pop3_capa(pop3_session *s, char **err_r);
/* 1 if the last CAPA listed `name` (e.g. "UIDL", "PIPELINING", "STLS", "TOP"). */
int pop3_has_capa(const pop3_session *s, const char *name);
/* The capability lines, ", "-separated, into out (len bytes, NUL-terminated,
 * cut to fit, non-printable bytes as '?'); its length.  "" before CAPA. */
size_t pop3_capa_text(const pop3_session *s, char *out, size_t len);
/* 1 if SASL mechanism `mech` is in the CAPA SASL line. */
int pop3_has_sasl(const pop3_session *s, const char *mech);
/* 1 if the greeting carried an APOP timestamp. */
int pop3_has_apop(const pop3_session *s);

pop3_status pop3_stls(pop3_session *s, char **err_r); /* STLS, handshake, CAPA again */
/*
 * Authentication: a -ERR to USER, PASS, APOP or AUTH is POP3_EAUTH (the
 * session stays usable); pop3_last_code() then tells a temporary refusal
 * ([IN-USE], [LOGIN-DELAY], [SYS/TEMP]) from bad credentials ([AUTH]).
 * Arguments with CR/LF or over 255 bytes (or a user name with a space) are
 * POP3_EUSAGE, and nothing is sent.
 */
pop3_status pop3_user(pop3_session *s, const char *user, char **err_r);
pop3_status pop3_pass(pop3_session *s, const char *password, char **err_r);
pop3_status pop3_apop(pop3_session *s, const char *user, const char *password, char **err_r);
/*
 * SASL: mech "PLAIN" or "LOGIN"; POP3_EUSAGE if the last CAPA did not offer
 * it, for an empty user name, or a user name or password over 1024 bytes
 * (base64 lines are not bound by RFC 2449's 255: proto/sasl.h's limits).
 */
pop3_status pop3_auth(pop3_session *s, const char *mech, const char *user,
		      const char *password, char **err_r);
/*
 * OAuth 2.0 over SASL.  mech "XOAUTH2" or "OAUTHBEARER" (RFC 7628, sent with
 * the host and port of pop3_options), or NULL: OAUTHBEARER if the CAPA SASL
 * line offers it, else XOAUTH2, else POP3_EUSAGE.  Refused (POP3_EUSAGE,
 * nothing sent) when the session is not TLS.  user is the mailbox address,
 * token the access token (an RFC 6750 b64token of any length up to 64 KB).
 * The response always follows "AUTH MECH" on a continuation line, never on
 * the AUTH line (RFC 5034 SASL-IR), which Exchange Online refuses.  A
 * refused token: the server's error challenge is answered (XOAUTH2 an empty
 * line, OAUTHBEARER %x01) and the result is POP3_EAUTH with *err_r holding
 * the -ERR and the decoded challenge ({"status":"invalid_token",...}),
 * never the token.  *mech_used_r (may be NULL) gets the static name of the
 * mechanism chosen, NULL if none was.
 */
pop3_status pop3_auth_oauth(pop3_session *s, const char *mech, const char *user,
			    const char *token, const char **mech_used_r, char **err_r);

pop3_status pop3_stat(pop3_session *s, unsigned long *count_r, unsigned long long *octets_r,
		      char **err_r);

/* One message of a scan listing. */
typedef struct pop3_entry {
	unsigned long msgno;
	unsigned long long size;  /* from LIST */
	char uid[71];             /* from UIDL; "" when unknown or invalid */
	int uid_state;            /* POP3_UID_OK, POP3_UID_MISSING, _INVALID, _DUPLICATE */
	int size_state;           /* POP3_SIZE_OK, or _UNKNOWN (bad LIST line: size 0) */
} pop3_entry;
enum { POP3_UID_OK = 0, POP3_UID_MISSING, POP3_UID_INVALID, POP3_UID_DUPLICATE };
enum { POP3_SIZE_OK = 0, POP3_SIZE_UNKNOWN };

/*
 * LIST (all): *entries_r gets an array (caller frees with free()) of *n_r
 * entries, sizes filled, uid "" / POP3_UID_MISSING, sorted by msgno.  The
 * array grows as lines arrive and is capped at max_count entries (POP3_EPROTO
 * beyond; 0 means 1000000).  A bad line costs only its message
 * (pop3_list_add): a number listed twice, or without a valid size, is one
 * entry of POP3_SIZE_UNKNOWN; a line naming no message (or a line longer
 * than max_line, unless it starts with a message number) is left out and
 * counted in pop3_listing_ignored.
 */
pop3_status pop3_list(pop3_session *s, unsigned long max_count, pop3_entry **entries_r,
		      size_t *n_r, char **err_r);
pop3_status pop3_list_one(pop3_session *s, unsigned long msgno, unsigned long long *size_r,
			  char **err_r);
/*
 * UIDL (all) merged into entries from pop3_list (matched by msgno): valid
 * UIDs (1-70 chars of 0x21-0x7E) set uid and POP3_UID_OK; invalid or absent
 * ones ("N", "N ") POP3_UID_INVALID, and so does a message listed twice;
 * every entry of a UID that appears twice POP3_UID_DUPLICATE (uid kept for
 * logging: never use it as an identity).  Entries UIDL did not mention stay
 * POP3_UID_MISSING, unless a line named no message (counted in
 * pop3_listing_ignored): then they are POP3_UID_INVALID, since that line may
 * have been theirs.  UIDL lines for messages not in entries are ignored.
 */
pop3_status pop3_uidl(pop3_session *s, pop3_entry *entries, size_t n, char **err_r);
/* Lines of the last LIST or UIDL that named no message and were left out. */
unsigned long pop3_listing_ignored(const pop3_session *s);
/* An invalid UID gives POP3_EPROTO and uid_r "" (here the session stays usable). */
pop3_status pop3_uidl_one(pop3_session *s, unsigned long msgno, char uid_r[71], char **err_r);

/*
 * RETR / TOP: the message appended to `out`, dot-unstuffed, each line
 * ending in "\n", whatever its lines' lengths (a long line is read in
 * pieces: memory stays bounded).  out->max bounds its size: beyond it the
 * rest is read and dropped (within the command deadline) and the result is
 * POP3_ETOOBIG, the session still usable.  On failure out may hold part of
 * the message.  A -ERR (no such message) is POP3_ENEG and leaves the
 * session usable.
 */
pop3_status pop3_retr(pop3_session *s, unsigned long msgno, buf *out, char **err_r);
pop3_status pop3_top(pop3_session *s, unsigned long msgno, unsigned long lines, buf *out,
		     char **err_r);
pop3_status pop3_dele(pop3_session *s, unsigned long msgno, char **err_r);
pop3_status pop3_rset(pop3_session *s, char **err_r);
pop3_status pop3_noop(pop3_session *s, char **err_r);
/* QUIT and read its reply; POP3_OK means the server committed the deletions. */
pop3_status pop3_quit(pop3_session *s, char **err_r);
/* The same in two halves, so the caller can work while the server deletes
 * (docs/design.md, "Measurements behind the interfaces"): after pop3_quit_send the
 * session takes only pop3_quit_recv and pop3_close. */
pop3_status pop3_quit_send(pop3_session *s, char **err_r);
pop3_status pop3_quit_recv(pop3_session *s, char **err_r);

/*
 * Pipelining (RFC 2449 PIPELINING): send commands ahead and read their
 * replies in order.  The caller keeps the window bounded; pop3_send_*
 * only buffer, pop3_flush sends.  Without the PIPELINING capability,
 * callers send one and receive one.  At most 1024 commands may be in
 * flight (about 14 KB, well inside any TCP receive buffer, so a flush
 * cannot block on a server that waits for us to read); while any are,
 * synchronous verbs refuse with POP3_EUSAGE.  pop3_recv_* flush what is
 * still buffered.
 */
pop3_status pop3_send_retr(pop3_session *s, unsigned long msgno, char **err_r);
pop3_status pop3_send_dele(pop3_session *s, unsigned long msgno, char **err_r);
pop3_status pop3_flush(pop3_session *s, char **err_r);
/* Read the reply of the oldest outstanding RETR into out (as pop3_retr). */
pop3_status pop3_recv_retr(pop3_session *s, buf *out, char **err_r);
/* Read the reply of the oldest outstanding DELE. */
pop3_status pop3_recv_dele(pop3_session *s, char **err_r);

/* ---- parsers without I/O (exposed for tests and fuzzing) ---- */
/*
 * A status line: 1 for "+OK", 0 for "-ERR" (then *code_r from a leading
 * [CODE]), -1 for anything else.  *text_r points after the status word.
 */
int pop3_parse_status(const char *line, size_t len, pop3_rcode *code_r, const char **text_r);
/* "N SIZE" of a LIST line; 0 or -1 (bad syntax or overflow). */
int pop3_parse_list_line(const char *line, size_t len, unsigned long *msgno_r,
			 unsigned long long *size_r);
/* "N UID" of a UIDL line; 0, or -1 for bad syntax; *uid_ok_r 1 if the UID is valid. */
int pop3_parse_uidl_line(const char *line, size_t len, unsigned long *msgno_r,
			 char uid_r[71], int *uid_ok_r);
/* 1 if uid is 1-70 chars of 0x21-0x7E. */
int pop3_uid_valid(const char *uid, size_t len);
/*
 * One line of a multi-line body: 0 if it is the terminating ".", else 1 and
 * *data_r, *len_r the line with one leading dot removed if it was stuffed.
 */
int pop3_ml_line(const char *line, size_t len, const char **data_r, size_t *len_r);
/*
 * A piece of a line (without its line end; net_getline_part) of a RETR/TOP
 * body: 0 at the terminating ".", 1 after appending the unstuffed piece (and
 * "\n" when it ends the line) to out, -1 if out refused it (errno EFBIG past
 * out->max, or ENOMEM).  first says the piece starts a line (only then is a
 * dot unstuffed or the end seen), whole that it ends one; a whole line is
 * (1, 1).  The session reads bodies through this, so feeding it from a
 * linebuf tests the real path.
 */
int pop3_body_piece(const char *line, size_t len, int first, int whole, buf *out);
/*
 * The message number a listing line starts with, followed by a space or the
 * end: 0, or -1 if the line names no message.  For a line that is otherwise
 * malformed, so that only its message suffers.
 */
int pop3_msgno_prefix(const char *line, size_t len, unsigned long *msgno_r);
/*
 * The listing line by line, as pop3_list and pop3_uidl build it.
 * pop3_list_add: one LIST line into *v (n used, cap allocated; the caller
 * frees *v): 0, or -1 with errno E2BIG (more than max_count; 0 means
 * 1000000) or ENOMEM.  A line naming no message adds 1 to *ignored_r.
 * pop3_list_end: sort by msgno, merge numbers listed twice (size unknown).
 * pop3_uidl_begin: clear the UIDs; 1 if entries are sorted by msgno (pass
 * it to pop3_uidl_add).  pop3_uidl_end: the rules of pop3_uidl for missing
 * and duplicate UIDs; 0, or -1 (ENOMEM).
 */
int pop3_list_add(pop3_entry **v, size_t *n, size_t *cap, unsigned long max_count,
		  const char *line, size_t len, unsigned long *ignored_r);
void pop3_list_end(pop3_entry *v, size_t *n);
int pop3_uidl_begin(pop3_entry *entries, size_t n);
void pop3_uidl_add(pop3_entry *entries, size_t n, int sorted, const char *line, size_t len,
		   unsigned long *ignored_r);
int pop3_uidl_end(pop3_entry *entries, size_t n, unsigned long ignored);
/* "+OK nn mm" text of STAT (after the status word); 0 or -1. */
int pop3_parse_stat(const char *text, size_t len, unsigned long *count_r,
		    unsigned long long *octets_r);
#endif

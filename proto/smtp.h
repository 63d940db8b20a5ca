/* mailmill - ISC licence, see LICENSE */
#ifndef MM_SMTP_H
#define MM_SMTP_H
/*
 * An SMTP submission client (RFC 5321, 3207, 4954, 2920, 1870, 6152, 6531,
 * 3461, 2034/3463) whose verbs mirror Python's smtplib.  It knows nothing of
 * the daemon and never logs; a trace callback (smtp_set_trace) sees the
 * protocol with AUTH data redacted.  One session carries many messages.
 *
 * Error contract: every verb returns an smtp_status.  SMTP_OK is success.  On
 * any other status *err_r (when err_r is not NULL) is set to an allocated
 * message (caller frees) that includes the server's reply where there was
 * one; smtp_last_reply() gives that reply.  After SMTP_EIO, SMTP_EUNKNOWN,
 * SMTP_EPROTO or SMTP_ETLS the session is unusable: call smtp_close only.
 * SMTP_ETEMP / SMTP_EPERM (a 4xx / 5xx reply) leave the session usable,
 * except after a 421 (the server is closing), which makes it unusable too
 * (smtp_usable() says which).
 *
 * Replies are parsed with bounded line length and line count; the server's
 * numbers (SIZE) are parsed with overflow checks.  Every command has a
 * deadline (net_deadline); the end of DATA has its own, longer one.
 */
#include <stddef.h>

typedef enum {
	SMTP_OK = 0,
	SMTP_ETEMP,    /* 4xx reply: try again later, unchanged */
	SMTP_EPERM,    /* 5xx reply, or a need the server cannot meet (SMTPUTF8) */
	SMTP_EIO,      /* connection failed, closed or timed out (nothing accepted) */
	SMTP_EUNKNOWN, /* connection lost or timed out after the final dot: the
			* server may or may not have taken the message; retry
			* with the same Message-ID */
	SMTP_EPROTO,   /* the server broke the protocol (bad reply, too long, ...) */
	SMTP_ETLS,     /* TLS failed, STARTTLS not offered / refused, or injection */
	SMTP_EAUTH,    /* authentication refused (5xx to AUTH) */
	SMTP_ETOOBIG,  /* message larger than the server's SIZE: refused before MAIL */
	SMTP_EUSAGE    /* caller error: bad argument, mechanism not offered, ... */
} smtp_status;

const char *smtp_status_name(smtp_status st);  /* "ok", "temporary", ... */
/* 1 if a message that failed with st is worth retrying later unchanged
 * (ETEMP, EIO, EUNKNOWN, ETLS: a handshake may fail transiently). */
int smtp_status_is_temporary(smtp_status st);

/*
 * One reply.  text holds the lines' text joined by "\n", without the code,
 * the separator, and the enhanced status code when the reply had one.
 */
typedef struct smtp_reply {
	int code;            /* 200..599; 0 when there is no reply */
	char enhanced[12];   /* RFC 3463 "5.1.1", "" if none */
	char *text;          /* allocated (smtp_reply_clear), "" when empty */
	size_t nlines;
} smtp_reply;
void smtp_reply_clear(smtp_reply *r);  /* frees text, zeroes *r */

typedef struct smtp_session smtp_session;

typedef enum { SMTP_TLS_NONE = 0, SMTP_TLS_IMPLICIT, SMTP_TLS_STARTTLS } smtp_tls_mode;

typedef struct smtp_options {
	const char *host;          /* also the name checked in the certificate */
	const char *port;          /* service or number */
	smtp_tls_mode tls;
	const char *ca_file;       /* NULL: the system store */
	const char *helo;          /* EHLO/HELO name; NULL: gethostname() */
	int connect_timeout_ms;    /* default 30000 */
	int command_timeout_ms;    /* per command (and per 64K of data); default 300000 */
	int data_end_timeout_ms;   /* wait for the reply to the final dot; default 600000 */
	size_t max_line;           /* reply line bound; default 2048 */
	int allow_plaintext_auth;  /* smtp_auth without TLS refused unless set */
} smtp_options;

/*
 * Connect, do implicit TLS if asked, read the greeting, EHLO (HELO if the
 * server refuses EHLO with 5xx).  With SMTP_TLS_STARTTLS, also STARTTLS and
 * EHLO again: if STARTTLS is not offered or refused the result is SMTP_ETLS
 * and nothing more is sent.  *s_r is owned by the caller (smtp_close).  The
 * strings of opt are copied.
 */
smtp_status smtp_connect(const smtp_options *opt, smtp_session **s_r, char **err_r);
/* The same over an already connected fd (tests); takes the fd. */
smtp_status smtp_from_fd(int fd, const smtp_options *opt, smtp_session **s_r, char **err_r);
/* Sends nothing; closes the socket; sets *s to NULL. */
void smtp_close(smtp_session **s);
int smtp_usable(const smtp_session *s);

/*
 * Trace: dir is 'C' (client) or 'S' (server).  AUTH arguments and the
 * client's SASL responses are shown as "<redacted>"; message data is shown
 * only as a byte count.  line is borrowed for the call.
 */
typedef void smtp_trace_fn(void *arg, char dir, const char *line, size_t len);
void smtp_set_trace(smtp_session *s, smtp_trace_fn *fn, void *arg);

const smtp_reply *smtp_last_reply(const smtp_session *s);  /* borrowed */
const char *smtp_greeting(const smtp_session *s);          /* borrowed */
int smtp_is_tls(const smtp_session *s);
const char *smtp_tls_describe(const smtp_session *s);      /* borrowed */

/* EHLO; on a 5xx reply, HELO (no extensions then).  Forgets earlier extensions. */
smtp_status smtp_ehlo(smtp_session *s, char **err_r);
smtp_status smtp_helo(smtp_session *s, char **err_r);
/* 1 if the last EHLO listed keyword `name` (case-insensitive, e.g. "PIPELINING"). */
int smtp_has_ext(const smtp_session *s, const char *name);
/* The parameters of EHLO keyword `name` ("" if none), NULL if not listed; borrowed. */
const char *smtp_ext_param(const smtp_session *s, const char *name);
/* SIZE limit from EHLO; 0 when there is none. */
unsigned long long smtp_max_size(const smtp_session *s);
/* 1 if SASL mechanism `mech` is in the EHLO AUTH line. */
int smtp_has_auth(const smtp_session *s, const char *mech);

/*
 * STARTTLS (must be offered: SMTP_ETLS otherwise), the handshake (with
 * certificate and host-name verification), then EHLO again.  Anything the
 * server sent after its go-ahead in plain text is an injection: SMTP_ETLS.
 */
smtp_status smtp_starttls(smtp_session *s, char **err_r);
/*
 * AUTH with mech "PLAIN" or "LOGIN", or NULL for the best one offered
 * (smtplib's login); user name and password up to 1024 bytes each.  The mechanism list is the one of the last EHLO, which
 * after STARTTLS is the encrypted one.  Without TLS, refused (SMTP_EUSAGE)
 * unless allow_plaintext_auth.  A 5xx refusal is SMTP_EAUTH, 4xx SMTP_ETEMP.
 */
smtp_status smtp_auth(smtp_session *s, const char *mech, const char *user,
		      const char *password, char **err_r);
smtp_status smtp_login(smtp_session *s, const char *user, const char *password, char **err_r);
/*
 * OAuth 2.0 over SASL.  mech "XOAUTH2" or "OAUTHBEARER" (RFC 7628, sent with
 * the host and port of smtp_options), or NULL: OAUTHBEARER if the last EHLO
 * offers it, else XOAUTH2, else SMTP_EUSAGE.  Refused (SMTP_EUSAGE, nothing
 * sent) without TLS, whatever allow_plaintext_auth says.  user is the
 * mailbox address, token the access token (an RFC 6750 b64token up to
 * 64 KB).  The response rides on the AUTH line only within RFC 5321's 512
 * octets, else follows the server's 334 (RFC 4954 4.).  A refused token:
 * the error challenge is answered (XOAUTH2 an empty line, OAUTHBEARER
 * %x01), and a 5xx is SMTP_EAUTH (4xx SMTP_ETEMP) with *err_r holding the
 * reply and the decoded challenge ({"status":"invalid_token",...}), never
 * the token.  *mech_used_r (may be NULL) gets the static name of the
 * mechanism chosen, NULL if none was.
 */
smtp_status smtp_auth_oauth(smtp_session *s, const char *mech, const char *user,
			    const char *token, const char **mech_used_r, char **err_r);

/* What happened to one recipient. */
typedef struct smtp_rcpt_result {
	smtp_status status;  /* SMTP_OK: the server took the message for it */
	int code;            /* the deciding reply (RCPT or end of data); 0: none */
	char enhanced[12];
	char *text;          /* allocated, NULL when code is 0 */
} smtp_rcpt_result;
void smtp_results_clear(smtp_rcpt_result *results, size_t n);

/*
 * Send one message (a transaction): MAIL FROM, RCPT TO each of rcpts, DATA.
 * from "" is the null sender <>.  msg uses "\n" line ends (CRLF and a bare
 * CR are taken as line ends too, RFC 5321 2.3.8); it is sent with CRLF line
 * ends and dot-stuffed, without a copy.  mail_options and rcpt_options are
 * NULL-terminated arrays of ESMTP parameters ("RET=HDRS", "NOTIFY=NEVER") or
 * NULL; DSN parameters (RET, ENVID, NOTIFY, ORCPT) are dropped when the
 * server does not offer DSN.  Added on their own when offered and needed:
 * SIZE=, BODY=8BITMIME (8-bit bytes in msg; without 8BITMIME such a message
 * is sent as it is, as other clients do), SMTPUTF8 (non-ASCII envelope,
 * which without SMTPUTF8 is SMTP_EPERM before anything is sent, or 8-bit
 * header fields).  A message over the server's SIZE is SMTP_ETOOBIG before
 * MAIL.  With PIPELINING, MAIL, the RCPTs and DATA go in one write (RFC 2920).
 *
 * results (NULL or nrcpts entries, cleared first; smtp_results_clear after)
 * get one result per recipient.  Return: SMTP_OK if the server took the
 * message for at least one recipient (some may still be refused: look at
 * results, like smtplib's refused dict); SMTP_ETEMP / SMTP_EPERM when MAIL,
 * every RCPT, DATA or the end of data was refused (ETEMP when any refusal
 * was 4xx); SMTP_EUNKNOWN when the connection was lost or timed out after
 * the final dot.  After a refusal the transaction is reset (RSET) so the
 * session can carry the next message.
 */
smtp_status smtp_sendmail(smtp_session *s, const char *from, const char *const *rcpts,
			  size_t nrcpts, const char *msg, size_t msg_len,
			  const char *const *mail_options, const char *const *rcpt_options,
			  smtp_rcpt_result *results, char **err_r);

smtp_status smtp_rset(smtp_session *s, char **err_r);
smtp_status smtp_noop(smtp_session *s, char **err_r);
/* QUIT and read its reply (the session stays to be closed with smtp_close). */
smtp_status smtp_quit(smtp_session *s, char **err_r);

/* ---- without I/O (exposed for tests and fuzzing) ---- */

/*
 * Reply parser.  Lines are "CODE-text" (more follow) or "CODE text" / "CODE"
 * (the last); every line of a reply must carry the same code; at most
 * max_lines lines of at most max_line bytes (without CRLF).  NUL bytes are an
 * error.
 */
typedef struct smtp_reply_parser {
	size_t max_line, max_lines;
	/* private */
	char *line;          /* max_line + 1 bytes */
	size_t line_len;
	int code;
	size_t nlines;
	char enhanced[12];
	char *text;
	size_t text_len, text_cap;
	int failed;
} smtp_reply_parser;

/* max_line 0: 2048; max_lines 0: 128.  -1 on ENOMEM. */
int smtp_reply_parser_init(smtp_reply_parser *p, size_t max_line, size_t max_lines);
void smtp_reply_parser_free(smtp_reply_parser *p);
/*
 * Feed bytes.  1: one whole reply in *reply_r (caller clears it), *used_r
 * bytes consumed (the rest belongs to the next reply); 0: all consumed, need
 * more; -1: error, *error_r a static description (the parser then refuses
 * everything).
 */
int smtp_reply_parse(smtp_reply_parser *p, const char *data, size_t len, size_t *used_r,
		     smtp_reply *reply_r, const char **error_r);
/* Feed one line without its line end (as net_getline gives it); same returns. */
int smtp_reply_parse_line(smtp_reply_parser *p, const char *line, size_t len,
			  smtp_reply *reply_r, const char **error_r);
/*
 * RFC 3463 "class.subject.detail" at the start of text, followed by a space
 * or the end: its length, or 0 if there is none.
 */
size_t smtp_parse_enhanced(const char *text, size_t len);

/*
 * DATA encoder: "\n" (or CRLF, or bare CR) line ends become CRLF, lines
 * starting with "." get another.  A line longer than RFC 5321's limit of
 * SMTP_DATA_LINE_MAX octets (without CRLF) is folded there with CRLF SPACE,
 * as Postfix's smtp_line_length_limit does: in a header that is a folding
 * point, in a body it adds a line break and a space, where a server might
 * refuse the whole message otherwise (aiosmtpd and others say 500).  Chunks
 * may split anywhere.  emit returns
 * 0 or -1 (then the encoder returns -1 at once).
 */
typedef int smtp_emit_fn(void *arg, const char *data, size_t len);
typedef struct smtp_data_enc {
	int at_line_start;   /* initially 1 */
	int after_cr;        /* a CR ended the last chunk: swallow a following LF */
	unsigned long long out;  /* bytes emitted so far */
	size_t col;          /* octets on the current wire line (appended) */
} smtp_data_enc;
#define SMTP_DATA_LINE_MAX 998
void smtp_data_init(smtp_data_enc *e);
int smtp_data_encode(smtp_data_enc *e, const char *in, size_t len, smtp_emit_fn *emit,
		     void *arg);
/* The final CRLF if the message did not end a line, then ".\r\n". */
int smtp_data_finish(smtp_data_enc *e, smtp_emit_fn *emit, void *arg);
/* Bytes smtp_data_encode + smtp_data_finish would emit for msg (for SIZE=). */
unsigned long long smtp_data_wire_size(const char *msg, size_t len);
#endif

/* mailmill - ISC licence, see LICENSE */
#ifndef MM_IMAP_INT_H
#define MM_IMAP_INT_H
/*
 * Shared by the imap*.c files only: the session and the helpers every
 * command is built from.  Not part of the library's interface.
 */
#include <stddef.h>
#include <stdint.h>

#include "proto/buf.h"
#include "proto/err.h"
#include "proto/imap.h"
#include "proto/net.h"

/* The window is the caller's to bound; this only stops a runaway caller. */
#define IMAP_PIPE_MAX 1024
/* UIDs by hash: a power of two, over IMAP_PIPE_MAX (chains of about one) */
#define IMAP_PIPE_HASH 2048
/* Messages a UID FETCH set asks for at most: the caller bounds their bytes */
#define IMAP_FETCH_SET_MAX 256
#define IMAP_CAPA_MAX 16384
/* RFC 7162 section 4 asks clients to keep command lines under 8192 bytes;
 * UID sets are cut far below it. */
#define IMAP_SET_LINE_MAX 1000
#define IMAP_SASL_IR_MAX 8192
#define IMAP_ARG_MAX 1024
#define IMAP_MAILBOX_MAX 1000
/* net's own line cap: we frame the stream ourselves (net_peek), so this only
 * sizes its buffer's growth. */
#define IMAP_NET_LINE (1024 * 1024)

struct imap_session {
	net_conn *conn;
	char *host, *port, *ca_file;
	int command_timeout_ms;
	int lf_line_ends;
	imap_trace_fn *trace;
	void *trace_arg;
	imap_parser *parser;
	char *greeting;
	buf capa;            /* " CAP1 CAP2 ", upper case */
	int capa_known;
	char last_code[64];
	char alert[ERR_QUOTE_MAX + 4];
	imap_counters ctr;
	int broken, authenticated, idling, logging_out;
	char *idle_tag;
	char *selected;
	unsigned long tagno;
	/*
	 * Fetches in flight.  A server may run pipelined commands at once and
	 * send every body before the first tagged OK (Dovecot does): a body
	 * that comes before its turn waits in its slot (early: 1 kept, 2 over
	 * the cap).
	 */
	struct imap_slot {
		uint32_t uid;
		char tag[16];       /* of the command that asks for it */
		int early;
		int next;           /* the next slot in its hash chain, -1 none */
		unsigned char sent, first, last; /* its place in its command's set */
		unsigned char done; /* its command's tagged answer came: see set_done */
		imap_status done_st; /* then: what the slot gets without its body */
		buf body;
	} *pipe;            /* IMAP_PIPE_MAX slots, allocated by the first fetch
	                     * (an idling session never needs them) */
	int *pipe_hash;     /* IMAP_PIPE_HASH chain heads: slot by UID in O(1) */
	size_t pipe_head, pipe_n;
	size_t pipe_unsent; /* the last pipe_unsent slots wait for imap_flush */
	size_t body_max;    /* out->max of the last imap_recv_fetch: bounds a
	                     * body that comes while a change is awaited */
	/* Changes sent and not yet read (imap_send_change), oldest first; the
	 * commands of one change share its group. */
	struct imap_chg {
		char tag[16];
		const char *label;  /* static */
		unsigned long group;
		int answered;
		imap_status st;
		char *err;
	} *chg;
	size_t chg_n, chg_cap;
	unsigned long chg_group;
	/* the body sink of the response being read (imap_read, imap_sink_open) */
	buf *sink;
	int sink_full;
	unsigned long long sink_raw; /* bytes as sent: the cap counts these */
	int sink_cr;        /* a chunk ended in CR: kept or dropped by the next byte */
	buf scratch;        /* where a body goes until its UID is known */
};

/* An untagged response during a command: 1 taken, 0 leave it to the
 * default handling, -1 failure (the status is in *st). */
typedef int imap_untagged_fn(imap_session *s, const imap_response *r, void *arg,
			     imap_status *st, char **err_r);

/* ---- the wire (imap.c) ---- */
imap_status imap_fail(imap_session *s, imap_status st, char **err_r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
imap_status imap_net_fail(imap_session *s, imap_status st, const char *label, char *nerr,
			  char **err_r);
void imap_trace(imap_session *s, char dir, const char *line, size_t len);
/* A usable session, no pipelined command pending, not idling, a fresh
 * deadline; need_auth: authenticated too. */
imap_status imap_begin(imap_session *s, const char *label, int need_auth, char **err_r);
/* The next tag into tag (16 bytes). */
void imap_next_tag(imap_session *s, char tag[16]);
/* Queue "tag line\r\n" (trace shows `shown` when given); flush if asked. */
imap_status imap_send(imap_session *s, const char *label, const char *tag, const char *line,
		      const char *shown, int flush, char **err_r);
/* Queue raw bytes (the rest of a command; not traced). */
imap_status imap_send_raw(imap_session *s, const char *label, const void *data, size_t len,
			  int flush, char **err_r);
/* Empty b and make it the sink of the bodies that imap_read reads next. */
void imap_sink_open(imap_session *s, buf *b);
/* The next response; body literals go to s->sink when set (else dropped). */
imap_status imap_read(imap_session *s, const char *label, const imap_response **r_r,
		      char **err_r);
/* Counters, CAPABILITY, [ALERT], BYE...: for untagged responses nobody took.
 * A BYE (not while logging out) is IMAP_EIO. */
imap_status imap_untagged(imap_session *s, const char *label, const imap_response *r,
			  char **err_r);
/* Response codes of any status response ([CAPABILITY ...], [ALERT]). */
void imap_note_code(imap_session *s, const imap_response *r);
/* A tagged response to a status: OK, ENO or EBAD (code kept). */
imap_status imap_tagged_status(imap_session *s, const char *label, const imap_response *r,
			       char **err_r);
/* Read until the response tagged `tag`: untagged go to fn first; a "+"
 * is IMAP_EPROTO.  The tagged one is judged by imap_tagged_status; *r_r
 * (may be NULL) gets it. */
imap_status imap_wait(imap_session *s, const char *label, const char *tag, imap_untagged_fn *fn,
		      void *arg, const imap_response **r_r, char **err_r);
/* imap_begin, send `args` with a new tag, imap_wait. */
imap_status imap_simple(imap_session *s, const char *label, int need_auth, const char *args,
			imap_untagged_fn *fn, void *arg, char **err_r);
/* Set the capabilities from tokens (CAPABILITY response) or code_arg text. */
int imap_set_capa(imap_session *s, const char *text, size_t len);
/* Append str as a quoted string to line; -1 if it cannot be quoted
 * (8-bit, CR, LF, NUL) or line is full. */
int imap_append_quoted(buf *line, const char *str);
/* The mailbox name as the wire wants it: modified UTF-7, quoted, into line. */
imap_status imap_append_mailbox(imap_session *s, const char *label, buf *line,
				const char *mailbox, char **err_r);
/* Bounded, control-stripped server text. */
void imap_quote(char dst[ERR_QUOTE_MAX + 4], const char *src, size_t len);
/* ---- pipelined fetches and changes (imap_fetch.c, imap_change.c) ---- */
/* Send the fetches queued so far (not flushed): what was queued before a
 * change goes out before it. */
imap_status imap_fetch_send_queued(imap_session *s, char **err_r);
/* The next response while fetches may be in flight and no body is awaited:
 * a body goes to its slot (or is dropped), other untagged responses and a
 * fetch set's tagged answer are handled; *r_r NULL then, else the tagged
 * response nobody here took. */
imap_status imap_fetch_read_other(imap_session *s, const char *label, const imap_response **r_r,
				  char **err_r);
/* A tagged answer to a change in flight: kept for its imap_recv_change, 1;
 * 0 if r answers no change. */
int imap_change_answer(imap_session *s, const imap_response *r);

/* The size the server gave the body literal being read ("{n}"): a claim. */
unsigned long long imap_parser_body_size(const imap_parser *p);
/* The parser's kept text of the last response (for traces). */
size_t imap_parser_raw(const imap_parser *p, const char **raw_r);
#endif

/* mailmill - ISC licence, see LICENSE */
#ifndef MM_RUN_SOURCE_H
#define MM_RUN_SOURCE_H
/*
 * A mail source: what the account run (run.c) needs from a server, as a
 * table (fdm's `struct fetch`).  The run drives listing, the plan against
 * the journal, the pipelined fetch, the pipeline, group commit, quarantine,
 * --limit, --dry-run, stop and progress the same way for every source; a
 * source says how to list a mailbox, how to fetch, and what a message's
 * effect is once its verdict is durable (POP3: DELE, confirmed by QUIT;
 * IMAP: expunge, move or flag, confirmed by the tagged OK).
 *
 * Fetches and effects are pipelined: the run sends several of either before
 * it reads their replies, in the order sent.  Every function gets the run;
 * the source keeps its state in r->sd.  Errors: -1 with *err_r (allocated)
 * where there is one, else already logged.
 */
#include "daemon/run/run_int.h"

typedef enum {
	RUN_GOT_OK = 0,   /* body holds the message */
	RUN_GOT_NEG,      /* the server refused it (*err_r its words); the session goes on */
	RUN_GOT_TOOBIG,   /* larger than body->max: read and dropped; the session goes on */
	RUN_GOT_GONE,     /* another client removed it meanwhile: nothing to do */
	RUN_GOT_FAIL      /* the session is gone (*err_r) */
} run_got;

struct run_source_ops {
	const char *name;
	/* Connect (over dial, taken over) and sign in; r->sd set, *how_r the
	 * mechanism (static).  0, or -1 (logged; r->stats->fail set). */
	int (*open)(run *r, run_dial *dial, const char **how_r);
	/* How many mailboxes the account reads (POP3 1; IMAP its folders). */
	size_t (*n_mailboxes)(const run *r);
	/* Select mailbox i and list it: r->entries, n_entries, listing_partial,
	 * key_prefix.  0, or -1 (logged). */
	int (*list)(run *r, size_t i);
	/* Commands in flight at most (1: no pipelining). */
	int (*window)(const run *r);
	int (*send_fetch)(run *r, size_t ei, char **err_r);
	int (*flush)(run *r, char **err_r);
	run_got (*recv_fetch)(run *r, size_t ei, buf *body, char **err_r);
	/* Send the effect of entries dele[from..from+n) (n > 0): the number of
	 * them the command(s) sent cover (1..n), or -1. */
	long (*send_effect)(run *r, size_t from, size_t n, char **err_r);
	/* Read the replies to what send_effect sent for dele[from..from+n): the
	 * keys (borrowed from r->entries) the server confirmed into done; a
	 * refusal is logged and counted (unsettled).  0, or -1 (session gone). */
	int (*recv_effect)(run *r, size_t from, size_t n, GPtrArray *done, char **err_r);
	/* Every effect of the mailbox is sent and every verdict committed:
	 * read what is still in flight (IMAP: the last UID EXPUNGE, into
	 * done), settle the journal (run_journal_settle) and end the mailbox
	 * (POP3: QUIT, which is what deletes).  r->stats->deleted counted
	 * here.  0, or -1 (logged). */
	int (*finish)(run *r, size_t i, GPtrArray *done);
	/* Log out (if still connected) and free r->sd; also after a failure. */
	void (*close)(run *r);
	/* A row in DELETED whose message is still listed: its effect is done
	 * again (POP3: a QUIT that did not complete rolled the DELE back). */
	int redo_deleted;
	/* Messages are recognised by digest across keys (IMAP): fill
	 * run_item.digest and look the digest up before the pipeline. */
	int digests;
	/* 1 if the mailbox's effects must wait until its fetches are done
	 * (IMAP: a COPY must be confirmed before the originals go); NULL or 0:
	 * they ride with the fetches.  Asked once the mailbox is listed. */
	int (*effects_after_fetch)(const run *r);
	/* Bytes (by the listed sizes) of fetches in flight at most; 0: no
	 * bound but the window (POP3: the socket holds back what is unread). */
	unsigned long long window_bytes;
	/* For the log: "delete", "deleting", "deleted"; the fetch command
	 * ("RETR") and why a refused fetch counts toward quarantine. */
	const char *verb, *verbing, *verbed, *fetch_cmd, *fetch_refused;
};

extern const run_source_ops run_source_pop3;
extern const run_source_ops run_source_imap;
#endif

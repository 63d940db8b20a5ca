/* mailmill - ISC licence, see LICENSE */
/*
 * The transaction state: STAT, LIST, UIDL, RETR, TOP, DELE, RSET, NOOP,
 * QUIT, and the pipelined queue of RETR and DELE (RFC 2449 PIPELINING).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/net.h"
#include "proto/pop3.h"
#include "proto/pop3_int.h"

pop3_status
pop3_stat(pop3_session *s, unsigned long *count_r, unsigned long long *octets_r, char **err_r)
{
	const char *text;
	size_t tlen;
	char q[QUOTE_MAX + 4];
	pop3_status st;

	if ((st = pop3_simple(s, "STAT", "STAT", NULL, &text, &tlen, err_r)) != POP3_OK)
		return st;
	if (pop3_parse_stat(text, tlen, count_r, octets_r) < 0) {
		err_quote(q, text, tlen);
		return pop3_fail(s, POP3_EPROTO, err_r, "STAT: bad reply \"+OK %s\"", q);
	}
	return POP3_OK;
}

pop3_status
pop3_list(pop3_session *s, unsigned long max_count, pop3_entry **entries_r, size_t *n_r,
	  char **err_r)
{
	pop3_entry *v = NULL;
	size_t n = 0, cap = 0, len;
	const char *line;
	pop3_status st;
	int r;

	*entries_r = NULL;
	*n_r = 0;
	s->ignored = 0;
	if ((st = pop3_simple(s, "LIST", "LIST", NULL, NULL, NULL, err_r)) != POP3_OK)
		return st;
	while ((r = pop3_listing_next(s, "LIST", &line, &len, &st, err_r)) > 0) {
		if (pop3_list_add(&v, &n, &cap, max_count, line, len, &s->ignored) < 0) {
			free(v);
			if (errno == E2BIG)
				return pop3_fail(s, POP3_EPROTO, err_r, "LIST: more than %lu messages",
					    max_count != 0 ? max_count : LIST_DEFAULT_MAX);
			return pop3_fail(s, POP3_EIO, err_r, "LIST: out of memory");
		}
	}
	if (r < 0) {
		free(v);
		return st;
	}
	pop3_list_end(v, &n);
	*entries_r = v;
	*n_r = n;
	return POP3_OK;
}

pop3_status
pop3_list_one(pop3_session *s, unsigned long msgno, unsigned long long *size_r, char **err_r)
{
	char line[64], label[64], q[QUOTE_MAX + 4];
	const char *text;
	size_t tlen;
	unsigned long got;
	pop3_status st;

	snprintf(line, sizeof(line), "LIST %lu", msgno);
	snprintf(label, sizeof(label), "LIST %lu", msgno);
	if ((st = pop3_simple(s, label, line, NULL, &text, &tlen, err_r)) != POP3_OK)
		return st;
	if (pop3_parse_list_line(text, tlen, &got, size_r) < 0 || got != msgno) {
		err_quote(q, text, tlen);
		return pop3_fail(s, POP3_EPROTO, err_r, "%s: bad reply \"+OK %s\"", label, q);
	}
	return POP3_OK;
}

pop3_status
pop3_uidl(pop3_session *s, pop3_entry *entries, size_t n, char **err_r)
{
	const char *line;
	size_t len;
	pop3_status st;
	int r, sorted = pop3_uidl_begin(entries, n);

	s->ignored = 0;
	if ((st = pop3_simple(s, "UIDL", "UIDL", NULL, NULL, NULL, err_r)) != POP3_OK)
		return st;
	while ((r = pop3_listing_next(s, "UIDL", &line, &len, &st, err_r)) > 0)
		pop3_uidl_add(entries, n, sorted, line, len, &s->ignored);
	if (r < 0)
		return st;
	if (pop3_uidl_end(entries, n, s->ignored) < 0)
		return pop3_fail(s, POP3_EIO, err_r, "UIDL: out of memory");
	return POP3_OK;
}

unsigned long
pop3_listing_ignored(const pop3_session *s)
{
	return s != NULL ? s->ignored : 0;
}

pop3_status
pop3_uidl_one(pop3_session *s, unsigned long msgno, char uid_r[71], char **err_r)
{
	char line[64], label[64], q[QUOTE_MAX + 4];
	const char *text;
	size_t tlen;
	unsigned long got;
	pop3_status st;
	int ok;

	uid_r[0] = '\0';
	snprintf(line, sizeof(line), "UIDL %lu", msgno);
	snprintf(label, sizeof(label), "UIDL %lu", msgno);
	if ((st = pop3_simple(s, label, line, NULL, &text, &tlen, err_r)) != POP3_OK)
		return st;
	if (pop3_parse_uidl_line(text, tlen, &got, uid_r, &ok) < 0 || got != msgno || !ok) {
		uid_r[0] = '\0';
		err_quote(q, text, tlen);
		/* The reply was read whole: the session stays usable. */
		err_set(err_r, "%s: bad or invalid UID in \"+OK %s\"", label, q);
		return POP3_EPROTO;
	}
	return POP3_OK;
}

static pop3_status
fetch(pop3_session *s, const char *line, const char *label, buf *out, char **err_r)
{
	pop3_status st;

	if ((st = pop3_simple(s, label, line, NULL, NULL, NULL, err_r)) != POP3_OK)
		return st;
	return pop3_read_body(s, label, out, err_r);
}

pop3_status
pop3_retr(pop3_session *s, unsigned long msgno, buf *out, char **err_r)
{
	char line[64];

	snprintf(line, sizeof(line), "RETR %lu", msgno);
	return fetch(s, line, line, out, err_r);
}

pop3_status
pop3_top(pop3_session *s, unsigned long msgno, unsigned long lines, buf *out, char **err_r)
{
	char line[80];

	snprintf(line, sizeof(line), "TOP %lu %lu", msgno, lines);
	return fetch(s, line, line, out, err_r);
}

pop3_status
pop3_dele(pop3_session *s, unsigned long msgno, char **err_r)
{
	char line[64];

	snprintf(line, sizeof(line), "DELE %lu", msgno);
	return pop3_simple(s, line, line, NULL, NULL, NULL, err_r);
}

pop3_status
pop3_rset(pop3_session *s, char **err_r)
{
	return pop3_simple(s, "RSET", "RSET", NULL, NULL, NULL, err_r);
}

pop3_status
pop3_noop(pop3_session *s, char **err_r)
{
	return pop3_simple(s, "NOOP", "NOOP", NULL, NULL, NULL, err_r);
}

pop3_status
pop3_quit(pop3_session *s, char **err_r)
{
	pop3_status st = pop3_quit_send(s, err_r);

	return st == POP3_OK ? pop3_quit_recv(s, err_r) : st;
}

pop3_status
pop3_quit_send(pop3_session *s, char **err_r)
{
	pop3_status st;

	if ((st = pop3_begin(s, "QUIT", err_r)) != POP3_OK)
		return st;
	st = pop3_send_line(s, "QUIT", "QUIT", NULL, 1, err_r);
	/* After QUIT the server closes: only its reply, then pop3_close. */
	s->broken = 1;
	if (st == POP3_OK)
		s->quit_sent = 1;
	return st;
}

pop3_status
pop3_quit_recv(pop3_session *s, char **err_r)
{
	if (s == NULL || !s->quit_sent) {
		err_set(err_r, "QUIT: not sent");
		return POP3_EUSAGE;
	}
	s->quit_sent = 0;
	return pop3_read_status(s, "QUIT", NULL, NULL, err_r);
}

/* ------------------------------------------------------------ pipelining */

/*
 * "VERB N" into out (64 bytes hold any unsigned long): per message, snprintf
 * cost more than reading a small body's lines.
 */
static void
verb_number(char out[64], const char *verb, unsigned long n)
{
	char digits[3 * sizeof(n)];
	size_t len = strlen(verb), nd = 0;

	do {
		digits[nd++] = (char)('0' + n % 10);
		n /= 10;
	} while (n != 0);
	memcpy(out, verb, len);
	out[len++] = ' ';
	while (nd > 0)
		out[len++] = digits[--nd];
	out[len] = '\0';
}

static pop3_status
pipe_send(pop3_session *s, int verb, unsigned long msgno, char **err_r)
{
	char line[64];
	const char *name = verb == PIPE_RETR ? "RETR" : "DELE";
	pop3_status st;

	if (s == NULL || s->conn == NULL) {
		err_set(err_r, "%s: no session", name);
		return POP3_EUSAGE;
	}
	if (s->broken)
		return pop3_fail(s, POP3_EUSAGE, err_r,
			    "%s: the session is unusable after an earlier error or QUIT", name);
	if (s->pipe_n == PIPE_MAX)
		return pop3_fail(s, POP3_EUSAGE, err_r, "%s: more than %d commands in flight", name,
			    PIPE_MAX);
	verb_number(line, name, msgno);
	net_deadline(s->conn, s->command_timeout_ms);
	if ((st = pop3_send_line(s, line, line, NULL, 0, err_r)) != POP3_OK)
		return st;
	s->pipe[(s->pipe_head + s->pipe_n) % PIPE_MAX].verb = verb;
	s->pipe[(s->pipe_head + s->pipe_n) % PIPE_MAX].msgno = msgno;
	s->pipe_n++;
	return POP3_OK;
}

pop3_status
pop3_send_retr(pop3_session *s, unsigned long msgno, char **err_r)
{
	return pipe_send(s, PIPE_RETR, msgno, err_r);
}

pop3_status
pop3_send_dele(pop3_session *s, unsigned long msgno, char **err_r)
{
	return pipe_send(s, PIPE_DELE, msgno, err_r);
}

pop3_status
pop3_flush(pop3_session *s, char **err_r)
{
	char *nerr = NULL;

	if (s == NULL || s->conn == NULL || s->broken) {
		err_set(err_r, "flush: the session is unusable");
		return POP3_EUSAGE;
	}
	net_deadline(s->conn, s->command_timeout_ms);
	if (net_flush(s->conn, &nerr) < 0)
		return pop3_net_fail(s, POP3_EIO, "flush", nerr, err_r);
	s->unflushed = 0;
	return POP3_OK;
}

/* Take the oldest outstanding command, which must be `verb`; label it. */
static pop3_status
pipe_recv(pop3_session *s, int verb, char label[64], char **err_r)
{
	const char *name = verb == PIPE_RETR ? "RETR" : "DELE";
	pop3_status st;

	if (s == NULL || s->conn == NULL || s->broken) {
		err_set(err_r, "%s: the session is unusable", name);
		return POP3_EUSAGE;
	}
	if (s->pipe_n == 0 || s->pipe[s->pipe_head].verb != verb)
		return pop3_fail(s, POP3_EUSAGE, err_r, "%s: no %s reply is next in the pipeline", name,
			    name);
	if (s->unflushed && (st = pop3_flush(s, err_r)) != POP3_OK)
		return st;
	verb_number(label, name, s->pipe[s->pipe_head].msgno);
	s->pipe_head = (s->pipe_head + 1) % PIPE_MAX;
	s->pipe_n--;
	s->last_code = POP3_RC_NONE;
	/* Each reply gets the whole command deadline, measured from now. */
	net_deadline(s->conn, s->command_timeout_ms);
	return pop3_read_status(s, label, NULL, NULL, err_r);
}

pop3_status
pop3_recv_retr(pop3_session *s, buf *out, char **err_r)
{
	char label[64];
	pop3_status st;

	if ((st = pipe_recv(s, PIPE_RETR, label, err_r)) != POP3_OK)
		return st;
	return pop3_read_body(s, label, out, err_r);
}

pop3_status
pop3_recv_dele(pop3_session *s, char **err_r)
{
	char label[64];

	return pipe_recv(s, PIPE_DELE, label, err_r);
}

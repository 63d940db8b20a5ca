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

static int
entry_cmp(const void *a, const void *b)
{
	const pop3_entry *x = a, *y = b;

	return x->msgno < y->msgno ? -1 : x->msgno > y->msgno;
}

pop3_status
pop3_list(pop3_session *s, unsigned long max_count, pop3_entry **entries_r, size_t *n_r,
	  char **err_r)
{
	pop3_entry *v = NULL, *nv;
	size_t n = 0, cap = 0, len, i;
	const char *line;
	char q[QUOTE_MAX + 4];
	pop3_status st;
	int r;

	*entries_r = NULL;
	*n_r = 0;
	if (max_count == 0)
		max_count = LIST_DEFAULT_MAX;
	if ((st = pop3_simple(s, "LIST", "LIST", NULL, NULL, NULL, err_r)) != POP3_OK)
		return st;
	while ((r = pop3_ml_next(s, "LIST", &line, &len, &st, err_r)) > 0) {
		if (n >= max_count) {
			free(v);
			return pop3_fail(s, POP3_EPROTO, err_r, "LIST: more than %lu messages",
				    max_count);
		}
		if (n == cap) {
			/* Grown as lines arrive: the server's count is never trusted. */
			size_t ncap = cap == 0 ? 64 : cap * 2;

			if (ncap > max_count)
				ncap = max_count;
			if (ncap > ((size_t)-1) / sizeof(*v) ||
			    (nv = realloc(v, ncap * sizeof(*v))) == NULL) {
				free(v);
				return pop3_fail(s, POP3_EIO, err_r, "LIST: out of memory");
			}
			v = nv;
			cap = ncap;
		}
		memset(&v[n], 0, sizeof(v[n]));
		v[n].uid_state = POP3_UID_MISSING;
		if (pop3_parse_list_line(line, len, &v[n].msgno, &v[n].size) < 0) {
			free(v);
			err_quote(q, line, len);
			return pop3_fail(s, POP3_EPROTO, err_r, "LIST: bad line \"%s\"", q);
		}
		n++;
	}
	if (r < 0) {
		free(v);
		return st;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), entry_cmp);
	for (i = 1; i < n; i++)
		if (v[i].msgno == v[i - 1].msgno) {
			unsigned long dup = v[i].msgno;

			free(v);
			return pop3_fail(s, POP3_EPROTO, err_r, "LIST: message %lu listed twice", dup);
		}
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

static int
entry_msgno_cmp(const void *key, const void *elt)
{
	unsigned long k = *(const unsigned long *)key;
	const pop3_entry *e = elt;

	return k < e->msgno ? -1 : k > e->msgno;
}

static int
entry_uid_cmp(const void *a, const void *b)
{
	const pop3_entry *x = *(pop3_entry *const *)a, *y = *(pop3_entry *const *)b;

	return strcmp(x->uid, y->uid);
}

/* Every entry sharing a UID with another is marked: neither may become a path. */
static pop3_status
mark_duplicates(pop3_session *s, pop3_entry *entries, size_t n, char **err_r)
{
	pop3_entry **p;
	size_t m = 0, i, j;

	if (n < 2)
		return POP3_OK;
	if (n > ((size_t)-1) / sizeof(*p) || (p = malloc(n * sizeof(*p))) == NULL)
		return pop3_fail(s, POP3_EIO, err_r, "UIDL: out of memory");
	for (i = 0; i < n; i++)
		if (entries[i].uid_state == POP3_UID_OK)
			p[m++] = &entries[i];
	qsort(p, m, sizeof(*p), entry_uid_cmp);
	for (i = 0; i < m; i = j) {
		for (j = i + 1; j < m && strcmp(p[i]->uid, p[j]->uid) == 0; j++)
			;
		if (j - i > 1)
			while (i < j)
				p[i++]->uid_state = POP3_UID_DUPLICATE;
	}
	free(p);
	return POP3_OK;
}

pop3_status
pop3_uidl(pop3_session *s, pop3_entry *entries, size_t n, char **err_r)
{
	const char *line;
	char uid[71], q[QUOTE_MAX + 4];
	unsigned long msgno;
	size_t len, i;
	pop3_entry *e;
	pop3_status st;
	int r, ok, sorted = 1;

	for (i = 0; i < n; i++) {
		entries[i].uid[0] = '\0';
		entries[i].uid_state = POP3_UID_MISSING;
		if (i > 0 && entries[i].msgno <= entries[i - 1].msgno)
			sorted = 0;
	}
	if ((st = pop3_simple(s, "UIDL", "UIDL", NULL, NULL, NULL, err_r)) != POP3_OK)
		return st;
	while ((r = pop3_ml_next(s, "UIDL", &line, &len, &st, err_r)) > 0) {
		if (pop3_parse_uidl_line(line, len, &msgno, uid, &ok) < 0) {
			err_quote(q, line, len);
			return pop3_fail(s, POP3_EPROTO, err_r, "UIDL: bad line \"%s\"", q);
		}
		e = NULL;
		if (sorted) {
			/* bsearch wants a valid array even for n == 0 (LIST may be empty). */
			if (n > 0)
				e = bsearch(&msgno, entries, n, sizeof(*entries), entry_msgno_cmp);
		} else {
			for (i = 0; i < n && e == NULL; i++)
				if (entries[i].msgno == msgno)
					e = &entries[i];
		}
		/* A message LIST did not show (deleted meanwhile?) is not ours to judge. */
		if (e == NULL)
			continue;
		if (e->uid_state != POP3_UID_MISSING)
			return pop3_fail(s, POP3_EPROTO, err_r, "UIDL: message %lu listed twice", msgno);
		if (ok) {
			memcpy(e->uid, uid, sizeof(e->uid));
			e->uid_state = POP3_UID_OK;
		} else {
			e->uid_state = POP3_UID_INVALID;
		}
	}
	if (r < 0)
		return st;
	return mark_duplicates(s, entries, n, err_r);
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

/* mailmill - ISC licence, see LICENSE */
/*
 * The changes on sets of UIDs (UID STORE, UID MOVE, UID COPY, UID
 * EXPUNGE), as compact sets cut to keep command lines short: one at a time
 * (imap_uid_*), or pipelined behind fetches in flight (imap_send_change,
 * imap_recv_change).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/imap.h"
#include "proto/imap_int.h"

/* Commands of changes in flight at most: a caller sends one change per
 * committed batch, each a few sets long. */
#define IMAP_CHG_MAX 4096


static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

size_t
imap_uids_sort(uint32_t *uids, size_t n)
{
	size_t i, w = 0;

	qsort(uids, n, sizeof(*uids), cmp_u32);
	for (i = 0; i < n; i++)
		if (uids[i] != 0 && (w == 0 || uids[w - 1] != uids[i]))
			uids[w++] = uids[i];
	return w;
}

size_t
imap_uidset(const uint32_t *uids, size_t n, char *out, size_t cap)
{
	size_t i = 0, len = 0;

	if (cap == 0)
		return 0;
	out[0] = '\0';
	while (i < n) {
		size_t j = i;
		char piece[32];
		int k;

		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		if (j > i)
			k = snprintf(piece, sizeof(piece), "%s%lu:%lu", len ? "," : "",
				     (unsigned long)uids[i], (unsigned long)uids[j]);
		else
			k = snprintf(piece, sizeof(piece), "%s%lu", len ? "," : "",
				     (unsigned long)uids[i]);
		if (k < 0 || len + (size_t)k + 1 > cap)
			break; /* the rest goes into the next command */
		memcpy(out + len, piece, (size_t)k + 1);
		len += (size_t)k;
		i = j + 1;
	}
	return i;
}

/* One more change command in flight, tagged tag; -1 over IMAP_CHG_MAX or
 * out of memory. */
static int
chg_add(imap_session *s, const char *label, const char *tag)
{
	struct imap_chg *c;

	if (s->chg_n >= IMAP_CHG_MAX)
		return -1;
	if (s->chg_n == s->chg_cap) {
		size_t nc = s->chg_cap == 0 ? 16 : s->chg_cap * 2;

		if ((c = realloc(s->chg, nc * sizeof(*c))) == NULL)
			return -1;
		s->chg = c;
		s->chg_cap = nc;
	}
	c = &s->chg[s->chg_n++];
	memcpy(c->tag, tag, sizeof(c->tag));
	c->label = label;
	c->group = s->chg_group;
	c->answered = 0;
	c->st = IMAP_OK;
	c->err = NULL;
	return 0;
}

/*
 * "UID <verb> <set><after>" for every piece of the set, one after another
 * (after is appended as given, already encoded): each answered before the
 * next is sent, or (pipelined) all sent, unflushed, as one change whose
 * answers imap_recv_change reads.
 */
static imap_status
uid_sets(imap_session *s, const char *label, const char *verb, const uint32_t *uids_in, size_t n,
	 const char *after, int pipelined, char **err_r)
{
	uint32_t *uids;
	char set[IMAP_SET_LINE_MAX], tag[16];
	size_t done = 0, k;
	imap_status st = IMAP_OK;

	if (!pipelined && (st = imap_begin(s, label, 1, err_r)) != IMAP_OK)
		return st;
	if (s->selected == NULL)
		return imap_fail(s, IMAP_EUSAGE, err_r, "%s: no mailbox selected", label);
	if (n == 0)
		return IMAP_OK;
	if (pipelined && (st = imap_fetch_send_queued(s, err_r)) != IMAP_OK)
		return st;
	if ((uids = malloc(n * sizeof(*uids))) == NULL)
		return imap_fail(s, IMAP_EIO, err_r, "%s: out of memory", label);
	memcpy(uids, uids_in, n * sizeof(*uids));
	n = imap_uids_sort(uids, n);
	s->chg_group++;
	while (st == IMAP_OK && done < n) {
		char *line;

		k = imap_uidset(uids + done, n - done, set, sizeof(set));
		if (k == 0 || (line = err_fmt("UID %s %s%s", verb, set, after)) == NULL) {
			st = imap_fail(s, IMAP_EIO, err_r, "%s: out of memory", label);
			break;
		}
		imap_next_tag(s, tag);
		if (pipelined && chg_add(s, label, tag) < 0) {
			/* what went out already is read by imap_recv_change */
			free(line);
			st = imap_fail(s, IMAP_EIO, err_r, "%s: too many changes in flight", label);
			break;
		}
		if (!pipelined)
			net_deadline(s->conn, s->command_timeout_ms);
		st = imap_send(s, label, tag, line, NULL, !pipelined, err_r);
		free(line);
		if (st == IMAP_OK && !pipelined)
			st = imap_wait(s, label, tag, NULL, NULL, NULL, err_r);
		done += k;
	}
	free(uids);
	return st;
}

static int
flag_list_ok(const char *f)
{
	const unsigned char *p = (const unsigned char *)f;
	int at_start = 1;

	if (*p == '\0' || strlen(f) > 512)
		return 0;
	for (; *p != '\0'; p++) {
		if (*p == ' ') {
			if (at_start)
				return 0;
			at_start = 1;
			continue;
		}
		if (*p == '\\' && at_start) {
			at_start = 0;
			continue;
		}
		if (*p <= 0x20 || *p >= 0x7f || strchr("(){%*\"\\]", *p) != NULL)
			return 0;
		at_start = 0;
	}
	return !at_start;
}

static imap_status
store_flags(imap_session *s, const uint32_t *uids, size_t n, const char *flags, int pipelined,
	    char **err_r)
{
	char after[600];

	if (flags == NULL || !flag_list_ok(flags)) {
		err_set(err_r, "UID STORE: bad flag list");
		return IMAP_EUSAGE;
	}
	snprintf(after, sizeof(after), " +FLAGS.SILENT (%s)", flags);
	return uid_sets(s, "UID STORE", "STORE", uids, n, after, pipelined, err_r);
}

imap_status
imap_uid_store_flags(imap_session *s, const uint32_t *uids, size_t n, const char *flags,
		     char **err_r)
{
	return store_flags(s, uids, n, flags, 0, err_r);
}

static imap_status
copy_or_move(imap_session *s, const char *label, const char *verb, const uint32_t *uids, size_t n,
	     const char *mailbox, int pipelined, char **err_r)
{
	buf mb = { 0 };
	imap_status st;

	if (s == NULL || s->broken) {
		err_set(err_r, "%s: the session is no longer usable", label);
		return IMAP_EUSAGE;
	}
	if (buf_append(&mb, " ", 1) < 0)
		return imap_fail(s, IMAP_EIO, err_r, "%s: out of memory", label);
	mb.max = 16 * IMAP_MAILBOX_MAX;
	if ((st = imap_append_mailbox(s, label, &mb, mailbox, err_r)) == IMAP_OK)
		st = uid_sets(s, label, verb, uids, n, mb.data, pipelined, err_r);
	buf_free(&mb);
	return st;
}

static imap_status
uid_move(imap_session *s, const uint32_t *uids, size_t n, const char *mailbox, int pipelined,
	 char **err_r)
{
	if (s != NULL && !imap_has_capa(s, "MOVE")) {
		err_set(err_r, "UID MOVE: the server does not offer MOVE");
		return IMAP_EUSAGE;
	}
	return copy_or_move(s, "UID MOVE", "MOVE", uids, n, mailbox, pipelined, err_r);
}

imap_status
imap_uid_move(imap_session *s, const uint32_t *uids, size_t n, const char *mailbox, char **err_r)
{
	return uid_move(s, uids, n, mailbox, 0, err_r);
}

imap_status
imap_uid_copy(imap_session *s, const uint32_t *uids, size_t n, const char *mailbox, char **err_r)
{
	return copy_or_move(s, "UID COPY", "COPY", uids, n, mailbox, 0, err_r);
}

static imap_status
uid_expunge(imap_session *s, const uint32_t *uids, size_t n, int pipelined, char **err_r)
{
	if (s != NULL && !imap_has_capa(s, "UIDPLUS")) {
		err_set(err_r, "UID EXPUNGE: the server does not offer UIDPLUS");
		return IMAP_EUSAGE;
	}
	return uid_sets(s, "UID EXPUNGE", "EXPUNGE", uids, n, "", pipelined, err_r);
}

imap_status
imap_uid_expunge(imap_session *s, const uint32_t *uids, size_t n, char **err_r)
{
	return uid_expunge(s, uids, n, 0, err_r);
}

/* ------------------------------------------------------------ pipelined */

imap_status
imap_send_change(imap_session *s, imap_change kind, const uint32_t *uids, size_t n,
		 const char *arg, char **err_r)
{
	if (s == NULL || s->broken || s->conn == NULL) {
		err_set(err_r, "UID STORE/MOVE/EXPUNGE: the session is no longer usable");
		return IMAP_EUSAGE;
	}
	if (s->idling || !s->authenticated)
		return imap_fail(s, IMAP_EUSAGE, err_r, "UID STORE/MOVE/EXPUNGE: %s",
				 s->idling ? "IDLE is running" : "not logged in");
	switch (kind) {
	case IMAP_CHANGE_FLAGS: return store_flags(s, uids, n, arg, 1, err_r);
	case IMAP_CHANGE_MOVE: return uid_move(s, uids, n, arg, 1, err_r);
	case IMAP_CHANGE_EXPUNGE: return uid_expunge(s, uids, n, 1, err_r);
	}
	return imap_fail(s, IMAP_EUSAGE, err_r, "UID STORE/MOVE/EXPUNGE: unknown change");
}

int
imap_change_answer(imap_session *s, const imap_response *r)
{
	for (size_t i = 0; i < s->chg_n; i++) {
		struct imap_chg *c = &s->chg[i];

		if (c->answered || r->tag_len != strlen(c->tag) ||
		    memcmp(r->tag, c->tag, r->tag_len) != 0)
			continue;
		c->answered = 1;
		c->st = imap_tagged_status(s, c->label, r, &c->err);
		return 1;
	}
	return 0;
}

/* 1 once every command of the oldest change is answered. */
static int
group_answered(const imap_session *s)
{
	for (size_t i = 0; i < s->chg_n && s->chg[i].group == s->chg[0].group; i++)
		if (!s->chg[i].answered)
			return 0;
	return 1;
}

imap_status
imap_recv_change(imap_session *s, char **err_r)
{
	const imap_response *r;
	imap_status st = IMAP_OK;
	size_t i, k;
	char q[ERR_QUOTE_MAX + 4];

	if (s == NULL || s->broken || s->conn == NULL) {
		err_set(err_r, "UID STORE/MOVE/EXPUNGE: the session is no longer usable");
		return IMAP_EUSAGE;
	}
	if (s->chg_n == 0)
		return imap_fail(s, IMAP_EUSAGE, err_r, "UID STORE/MOVE/EXPUNGE: nothing in flight");
	if ((st = imap_fetch_send_queued(s, err_r)) != IMAP_OK ||
	    (st = imap_send_raw(s, s->chg[0].label, NULL, 0, 1, err_r)) != IMAP_OK)
		return st;
	net_deadline(s->conn, s->command_timeout_ms);
	while (!group_answered(s)) {
		if ((st = imap_fetch_read_other(s, s->chg[0].label, &r, err_r)) != IMAP_OK)
			return st;
		if (r == NULL || imap_change_answer(s, r))
			continue;
		imap_quote(q, r->tag, r->tag_len);
		return imap_fail(s, IMAP_EPROTO, err_r, "%s: answer with unknown tag \"%s\"",
				 s->chg[0].label, q);
	}
	/* the first refusal of the change is its result */
	for (k = 0; k < s->chg_n && s->chg[k].group == s->chg[0].group; k++)
		if (st == IMAP_OK && s->chg[k].st != IMAP_OK) {
			st = s->chg[k].st;
			if (err_r != NULL) {
				*err_r = s->chg[k].err;
				s->chg[k].err = NULL;
			}
		}
	for (i = 0; i < k; i++)
		free(s->chg[i].err);
	memmove(s->chg, s->chg + k, (s->chg_n - k) * sizeof(*s->chg));
	s->chg_n -= k;
	return st;
}

size_t
imap_changes_in_flight(const imap_session *s)
{
	return s->chg_n;
}

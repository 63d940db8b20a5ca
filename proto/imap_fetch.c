/* mailmill - ISC licence, see LICENSE */
/*
 * Listing (UID FETCH n:* (UID RFC822.SIZE), UID SEARCH) and fetching bodies
 * (pipelined UID FETCH <set> (BODY.PEEK[])).  Every number is the server's,
 * so each is range-checked and nothing is sized by it: listings grow as
 * lines arrive up to the caller's max_count, bodies as bytes arrive up to
 * the caller's buf.max.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/imap.h"
#include "proto/imap_int.h"
#include "proto/net.h"

#define LIST_DEFAULT_MAX 1000000UL

/* The value token of item `name` in a FETCH response's list; NULL if absent. */
static const imap_token *
fetch_item(const imap_response *r, const char *name)
{
	size_t i, end;

	if (r->n_toks == 0 || r->toks[0].type != IMAP_T_LIST)
		return NULL;
	end = r->toks[0].end;
	for (i = 1; i + 1 < end; i = r->toks[i + 1].end)
		if (imap_tok_is(&r->toks[i], name))
			return &r->toks[i + 1];
	return NULL;
}

static int
is_fetch(const imap_response *r)
{
	return r->cond == IMAP_C_NONE && r->has_number && r->name_len == 5 &&
	       strncasecmp(r->name, "FETCH", 5) == 0;
}

/* A UID token: 1 .. 2^32-1, else 0. */
static uint32_t
tok_uid(const imap_token *t)
{
	unsigned long long v;

	return t != NULL && imap_tok_number(t, UINT32_MAX, &v) == 0 ? (uint32_t)v : 0;
}

struct listing {
	imap_entry *v;
	size_t n, cap;
	unsigned long max;
	uint32_t first;
	int over;
};

static int
list_untagged(imap_session *s, const imap_response *r, void *arg, imap_status *st, char **err_r)
{
	struct listing *l = arg;
	const imap_token *size;
	unsigned long long v;
	uint32_t uid;

	if (!is_fetch(r))
		return 0;
	if ((uid = tok_uid(fetch_item(r, "UID"))) == 0 || uid < l->first) {
		s->ctr.n_fetch++;
		return 1;
	}
	if (l->over || l->n >= l->max) {
		l->over = 1;
		return 1;
	}
	if (l->n == l->cap) {
		size_t nc = l->cap == 0 ? 256 : l->cap * 2;
		imap_entry *nv;

		if (nc > l->max)
			nc = l->max;
		if ((nv = realloc(l->v, nc * sizeof(*nv))) == NULL) {
			*st = imap_fail(s, IMAP_EIO, err_r, "UID FETCH: out of memory");
			return -1;
		}
		l->v = nv;
		l->cap = nc;
	}
	size = fetch_item(r, "RFC822.SIZE");
	l->v[l->n].uid = uid;
	l->v[l->n].size_known = size != NULL && imap_tok_number(size, 1ULL << 62, &v) == 0;
	l->v[l->n].size = l->v[l->n].size_known ? v : 0;
	l->n++;
	return 1;
}

struct keyed {
	imap_entry e;
	size_t idx;
};

static int
cmp_keyed(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;

	if (x->e.uid != y->e.uid)
		return x->e.uid < y->e.uid ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Sort by UID, each UID once (the first size the server sent); -1 ENOMEM. */
static int
entries_end(imap_entry *v, size_t *n)
{
	struct keyed *k;
	size_t i, w = 0;

	if (*n == 0)
		return 0;
	if ((k = malloc(*n * sizeof(*k))) == NULL)
		return -1;
	for (i = 0; i < *n; i++) {
		k[i].e = v[i];
		k[i].idx = i;
	}
	qsort(k, *n, sizeof(*k), cmp_keyed);
	for (i = 0; i < *n; i++)
		if (w == 0 || v[w - 1].uid != k[i].e.uid)
			v[w++] = k[i].e;
	free(k);
	*n = w;
	return 0;
}

static imap_status
need_selected(imap_session *s, const char *label, char **err_r)
{
	imap_status st = imap_begin(s, label, 1, err_r);

	if (st == IMAP_OK && s->selected == NULL)
		return imap_fail(s, IMAP_EUSAGE, err_r, "%s: no mailbox selected", label);
	return st;
}

imap_status
imap_uid_list(imap_session *s, uint32_t first_uid, unsigned long max_count,
	      imap_entry **entries_r, size_t *n_r, char **err_r)
{
	struct listing l = { NULL, 0, 0, max_count ? max_count : LIST_DEFAULT_MAX,
			     first_uid ? first_uid : 1, 0 };
	char line[80], tag[16];
	imap_status st;

	*entries_r = NULL;
	*n_r = 0;
	if ((st = need_selected(s, "UID FETCH", err_r)) != IMAP_OK)
		return st;
	if (s->ctr.exists_known && s->ctr.exists == 0)
		return IMAP_OK;
	snprintf(line, sizeof(line), "UID FETCH %lu:* (UID RFC822.SIZE)", (unsigned long)l.first);
	imap_next_tag(s, tag);
	if ((st = imap_send(s, "UID FETCH", tag, line, NULL, 1, err_r)) == IMAP_OK)
		st = imap_wait(s, "UID FETCH", tag, list_untagged, &l, NULL, err_r);
	if (st == IMAP_OK && l.over)
		st = imap_fail(s, IMAP_ETOOBIG, err_r, "UID FETCH: more than %lu messages", l.max);
	if (st != IMAP_OK) {
		free(l.v);
		return st;
	}
	if (entries_end(l.v, &l.n) < 0) {
		free(l.v);
		return imap_fail(s, IMAP_EIO, err_r, "UID FETCH: out of memory");
	}
	*n_r = l.n;
	*entries_r = *n_r > 0 ? l.v : NULL;
	if (*n_r == 0)
		free(l.v);
	return IMAP_OK;
}

struct search {
	uint32_t *v;
	size_t n, cap;
	unsigned long max;
	int over;
};

static int
search_untagged(imap_session *s, const imap_response *r, void *arg, imap_status *st,
		char **err_r)
{
	struct search *sr = arg;
	size_t i;

	if (r->cond != IMAP_C_NONE || r->has_number || r->name_len != 6 ||
	    strncasecmp(r->name, "SEARCH", 6) != 0)
		return 0;
	for (i = 0; i < r->n_toks; i++) {
		uint32_t uid = tok_uid(&r->toks[i]);

		if (uid == 0)
			continue;
		if (sr->n >= sr->max) {
			sr->over = 1;
			break;
		}
		if (sr->n == sr->cap) {
			size_t nc = sr->cap == 0 ? 256 : sr->cap * 2;
			uint32_t *nv;

			if (nc > sr->max)
				nc = sr->max;
			if ((nv = realloc(sr->v, nc * sizeof(*nv))) == NULL) {
				*st = imap_fail(s, IMAP_EIO, err_r, "UID SEARCH: out of memory");
				return -1;
			}
			sr->v = nv;
			sr->cap = nc;
		}
		sr->v[sr->n++] = uid;
	}
	return 1;
}

imap_status
imap_uid_search(imap_session *s, const char *criteria, unsigned long max_count, uint32_t **uids_r,
		size_t *n_r, char **err_r)
{
	struct search sr = { NULL, 0, 0, max_count ? max_count : LIST_DEFAULT_MAX, 0 };
	char tag[16], *line;
	const unsigned char *p;
	imap_status st;

	*uids_r = NULL;
	*n_r = 0;
	if ((st = need_selected(s, "UID SEARCH", err_r)) != IMAP_OK)
		return st;
	if (criteria == NULL || criteria[0] == '\0' || strlen(criteria) > IMAP_SET_LINE_MAX)
		return imap_fail(s, IMAP_EUSAGE, err_r, "UID SEARCH: bad criteria");
	for (p = (const unsigned char *)criteria; *p != '\0'; p++)
		if (*p < 0x20 || *p > 0x7e)
			return imap_fail(s, IMAP_EUSAGE, err_r, "UID SEARCH: bad criteria");
	if ((line = err_fmt("UID SEARCH %s", criteria)) == NULL)
		return imap_fail(s, IMAP_EIO, err_r, "UID SEARCH: out of memory");
	imap_next_tag(s, tag);
	st = imap_send(s, "UID SEARCH", tag, line, NULL, 1, err_r);
	free(line);
	if (st == IMAP_OK)
		st = imap_wait(s, "UID SEARCH", tag, search_untagged, &sr, NULL, err_r);
	if (st == IMAP_OK && sr.over)
		st = imap_fail(s, IMAP_ETOOBIG, err_r, "UID SEARCH: more than %lu messages", sr.max);
	if (st != IMAP_OK) {
		free(sr.v);
		return st;
	}
	*n_r = imap_uids_sort(sr.v, sr.n);
	*uids_r = *n_r > 0 ? sr.v : NULL;
	if (*n_r == 0)
		free(sr.v);
	return IMAP_OK;
}

/* ------------------------------------------------------------ bodies */

/*
 * imap_send_fetch only queues a slot; imap_flush (or the next
 * imap_recv_fetch) asks for the queued UIDs with as few commands as it
 * can: one "UID FETCH <set> (BODY.PEEK[])" per ascending run of at most
 * IMAP_FETCH_SET_MAX UIDs whose set fits IMAP_SET_LINE_MAX.  A command per
 * message costs Dovecot about 80 % more CPU (bench/README.md).  The
 * answers of a set come as the server likes; each is matched to its slot
 * by UID (pipe_hash), and a UID that never comes before its command's
 * tagged answer is gone.
 */

static size_t
slot_at(const imap_session *s, size_t i)
{
	return (s->pipe_head + i) % IMAP_PIPE_MAX;
}

static void
hash_add(imap_session *s, size_t k)
{
	int *h = &s->pipe_hash[s->pipe[k].uid & (IMAP_PIPE_HASH - 1)];

	s->pipe[k].next = *h;
	*h = (int)k;
}

static void
hash_del(imap_session *s, size_t k)
{
	int *h = &s->pipe_hash[s->pipe[k].uid & (IMAP_PIPE_HASH - 1)];

	while (*h >= 0 && *h != (int)k)
		h = &s->pipe[*h].next;
	if (*h >= 0)
		*h = s->pipe[k].next;
}

/* The slot of a fetch sent and waiting for its body for uid; -1 if none. */
static long
pipe_slot(const imap_session *s, uint32_t uid)
{
	int k;

	for (k = s->pipe_hash[uid & (IMAP_PIPE_HASH - 1)]; k >= 0; k = s->pipe[k].next)
		if (s->pipe[k].uid == uid && s->pipe[k].early == 0 && s->pipe[k].sent &&
		    !s->pipe[k].done)
			return k;
	return -1;
}

/* 1 if a fetch in flight for uid already holds a body that came early: a
 * second body for one message means the server cannot be trusted with
 * either (one of them may be unsolicited, and keeping the wrong one loses
 * the message once its effect runs). */
static int
pipe_has_early(const imap_session *s, uint32_t uid)
{
	int k;

	for (k = s->pipe_hash[uid & (IMAP_PIPE_HASH - 1)]; k >= 0; k = s->pipe[k].next)
		if (s->pipe[k].uid == uid && s->pipe[k].early != 0 && s->pipe[k].sent &&
		    !s->pipe[k].done)
			return 1;
	return 0;
}

/* Send every queued slot, a set a command (not flushed). */
static imap_status
send_sets(imap_session *s, char **err_r)
{
	while (s->pipe_unsent > 0) {
		size_t base = s->pipe_n - s->pipe_unsent, n = 0, k, i;
		uint32_t uids[IMAP_FETCH_SET_MAX];
		char set[IMAP_SET_LINE_MAX], line[IMAP_SET_LINE_MAX + 32], tag[16];
		imap_status st;

		while (n < s->pipe_unsent && n < IMAP_FETCH_SET_MAX) {
			uint32_t uid = s->pipe[slot_at(s, base + n)].uid;

			if (n > 0 && uid <= uids[n - 1])
				break;
			uids[n++] = uid;
		}
		if ((k = imap_uidset(uids, n, set, sizeof(set))) == 0)
			return imap_fail(s, IMAP_EIO, err_r, "UID FETCH: set does not fit");
		imap_next_tag(s, tag);
		for (i = 0; i < k; i++) {
			struct imap_slot *p = &s->pipe[slot_at(s, base + i)];

			memcpy(p->tag, tag, sizeof(tag));
			p->sent = 1;
			p->first = i == 0;
			p->last = i + 1 == k;
		}
		snprintf(line, sizeof(line), "UID FETCH %s (BODY.PEEK[])", set);
		if (base == 0)
			net_deadline(s->conn, s->command_timeout_ms);
		if ((st = imap_send(s, "UID FETCH", tag, line, NULL, 0, err_r)) != IMAP_OK)
			return st;
		s->pipe_unsent -= k;
	}
	return IMAP_OK;
}

imap_status
imap_fetch_send_queued(imap_session *s, char **err_r)
{
	return s->pipe == NULL ? IMAP_OK : send_sets(s, err_r);
}

imap_status
imap_send_fetch(imap_session *s, uint32_t uid, char **err_r)
{
	struct imap_slot *p;
	size_t slot;

	if (s == NULL || s->broken || s->conn == NULL) {
		err_set(err_r, "UID FETCH: the session is no longer usable");
		return IMAP_EUSAGE;
	}
	if (s->idling || !s->authenticated || s->selected == NULL || uid == 0)
		return imap_fail(s, IMAP_EUSAGE, err_r, "UID FETCH: %s",
				 uid == 0 ? "UID 0" : s->idling ? "IDLE is running" :
				 "no mailbox selected");
	if (s->pipe_n >= IMAP_PIPE_MAX)
		return imap_fail(s, IMAP_EUSAGE, err_r, "UID FETCH: %d commands already in flight",
				 IMAP_PIPE_MAX);
	if (s->pipe == NULL) {
		if ((s->pipe = calloc(IMAP_PIPE_MAX, sizeof(*s->pipe))) == NULL ||
		    (s->pipe_hash = malloc(IMAP_PIPE_HASH * sizeof(*s->pipe_hash))) == NULL) {
			free(s->pipe);
			s->pipe = NULL;
			return imap_fail(s, IMAP_EIO, err_r, "UID FETCH: out of memory");
		}
		memset(s->pipe_hash, 0xff, IMAP_PIPE_HASH * sizeof(*s->pipe_hash));
	}
	slot = slot_at(s, s->pipe_n);
	p = &s->pipe[slot];
	p->uid = uid;
	p->early = 0;
	p->sent = p->first = p->last = p->done = 0;
	p->done_st = IMAP_OK;
	hash_add(s, slot);
	s->pipe_n++;
	s->pipe_unsent++;
	return IMAP_OK;
}

imap_status
imap_flush(imap_session *s, char **err_r)
{
	imap_status st;

	if (s == NULL || s->broken || s->conn == NULL) {
		err_set(err_r, "flush: the session is no longer usable");
		return IMAP_EUSAGE;
	}
	if ((st = send_sets(s, err_r)) != IMAP_OK)
		return st;
	return imap_send_raw(s, "UID FETCH", NULL, 0, 1, err_r);
}

size_t
imap_in_flight(const imap_session *s)
{
	return s->pipe_n + s->chg_n;
}

/* What one slot's answer brought (imap_recv_fetch). */
struct got {
	uint32_t uid;
	int body, toobig;
	int alone;       /* the only UID of its command: a body without UID is its */
};

/*
 * A whole body into out, its line ends already as the caller asked
 * (sink_chunk): the bytes themselves when out is empty (the buffers trade
 * their memory), else a copy; 0 or -1 (out refused it).
 */
static int
deliver(buf *out, buf *body)
{
	if (out->len == 0 && (out->max == 0 || body->len <= out->max)) {
		buf_trade(out, body);
		buf_reset(body);
		return 0;
	}
	return buf_append(out, body->data, body->len);
}

/*
 * One untagged response while our body is awaited.  A body literal went
 * to s->scratch before its UID could be known (UID may follow BODY[]):
 * now it goes to out (ours), to its slot (a later fetch's, come early), or
 * nowhere (nobody asked for it).
 */
static imap_status
fetch_response(imap_session *s, const imap_response *r, struct got *g, buf *out,
	       char **err_r)
{
	size_t i, nbody = 0;
	uint32_t uid;
	long k;

	for (i = 0; i < r->n_toks; i++)
		nbody += r->toks[i].type == IMAP_T_BODY;
	if (!is_fetch(r) || nbody == 0)
		return imap_untagged(s, "UID FETCH", r, err_r);
	if (nbody > 1)
		return imap_fail(s, IMAP_EPROTO, err_r, "UID FETCH: several bodies in one answer");
	uid = tok_uid(fetch_item(r, "UID"));
	if (uid != 0 && ((g->body && uid == g->uid) || pipe_has_early(s, uid)))
		return imap_fail(s, IMAP_EPROTO, err_r, "UID FETCH %lu: the server sent two bodies"
				 " for one message", (unsigned long)uid);
	if (!g->body && (uid == g->uid || (uid == 0 && g->alone))) {
		g->body = 1;
		if (s->sink_full || deliver(out, &s->scratch) < 0)
			g->toobig = 1;
	} else if (uid != 0 && (k = pipe_slot(s, uid)) >= 0) {
		s->pipe[k].early = s->sink_full ? 2 : 1;
		/* Hand the bytes over without copying them.  Only the bytes: the
		 * scratch keeps its cap for the next body of this read. */
		if (!s->sink_full)
			buf_trade(&s->pipe[k].body, &s->scratch);
	} else {
		s->ctr.n_dropped++;
	}
	buf_reset(&s->scratch);
	return IMAP_OK;
}

/* A slot's result once its body came (before its command's tagged answer). */
static imap_status
got_body(imap_session *s, const struct got *g, const buf *out, char **err_r)
{
	if (g->toobig)
		return imap_fail(s, IMAP_ETOOBIG, err_r, "UID FETCH %lu: message larger than %zu "
				 "bytes", (unsigned long)g->uid, out->max);
	return IMAP_OK;
}

/* A tagged NO without a body: the message was expunged meanwhile? */
static int
no_is_gone(const imap_session *s)
{
	return s->last_code[0] == '\0' || strcasecmp(s->last_code, "EXPUNGEISSUED") == 0 ||
	       strcasecmp(s->last_code, "NONEXISTENT") == 0;
}

/*
 * The tagged answer of a set came (while its first slot was read, or a
 * later set's before its turn, while a change was awaited): its slots still
 * in flight get the verdict for a UID without a body.  OK, or NO for
 * messages expunged meanwhile: the message is gone.  1 if tag is a set's.
 */
static int
set_done(imap_session *s, const char *tag, imap_status st)
{
	size_t i;
	int any = 0;

	if (st == IMAP_OK || (st == IMAP_ENO && no_is_gone(s)))
		st = IMAP_EGONE;
	for (i = 0; i < s->pipe_n; i++) {
		struct imap_slot *p = &s->pipe[slot_at(s, i)];

		if (p->sent && !p->done && strcmp(p->tag, tag) == 0) {
			p->done = 1;
			p->done_st = st;
			any = 1;
		}
	}
	return any;
}

/* A tagged answer that is not the one awaited: a change's (kept for its
 * imap_recv_change) or a later set's (its slots done); 0 if neither. */
static int
other_tagged(imap_session *s, const imap_response *r)
{
	char tag[16];

	if (imap_change_answer(s, r))
		return 1;
	if (r->tag_len >= sizeof(tag))
		return 0;
	memcpy(tag, r->tag, r->tag_len);
	tag[r->tag_len] = '\0';
	return set_done(s, tag, imap_tagged_status(s, "UID FETCH", r, NULL));
}

imap_status
imap_fetch_read_other(imap_session *s, const char *label, const imap_response **r_r,
		      char **err_r)
{
	struct got g = { 0, 1, 0, 0 };   /* no body awaited: every one goes to its slot */
	const imap_response *r;
	imap_status st;

	*r_r = NULL;
	/* no imap_recv_fetch yet gave a cap: a body now counts as over it */
	s->scratch.max = s->body_max != 0 ? s->body_max : 1;
	imap_sink_open(s, &s->scratch);
	st = imap_read(s, label, &r, err_r);
	s->sink = NULL;
	if (st != IMAP_OK)
		return st;
	if (r->kind == IMAP_R_UNTAGGED)
		return fetch_response(s, r, &g, NULL, err_r);
	if (r->kind == IMAP_R_CONTINUE)
		return imap_fail(s, IMAP_EPROTO, err_r, "%s: unexpected continuation", label);
	if (!other_tagged(s, r))
		*r_r = r;
	return IMAP_OK;
}

imap_status
imap_recv_fetch(imap_session *s, buf *out, uint32_t *uid_r, char **err_r)
{
	struct got g = { 0, 0, 0, 0 };
	const imap_response *r;
	char tag[16];
	imap_status st;
	imap_status done_st;
	size_t h;
	int last, done;

	if (s == NULL || s->broken || s->conn == NULL) {
		err_set(err_r, "UID FETCH: the session is no longer usable");
		return IMAP_EUSAGE;
	}
	if (s->pipe_n == 0)
		return imap_fail(s, IMAP_EUSAGE, err_r, "UID FETCH: nothing in flight");
	if ((st = send_sets(s, err_r)) != IMAP_OK)
		return st;
	h = s->pipe_head;
	g.uid = s->pipe[h].uid;
	g.alone = s->pipe[h].first && s->pipe[h].last;
	last = s->pipe[h].last;
	done = s->pipe[h].done;
	done_st = s->pipe[h].done_st;
	memcpy(tag, s->pipe[h].tag, sizeof(tag));
	hash_del(s, h);
	if (s->pipe[h].early != 0) {
		g.body = 1;
		g.toobig = s->pipe[h].early == 2 || deliver(out, &s->pipe[h].body) < 0;
		s->pipe[h].early = 0;
	}
	/* The slot may now hold out's old memory: the scratch reuses it rather
	 * than grow afresh for the next body (it holds nothing between reads). */
	if (s->pipe[h].body.cap > s->scratch.cap)
		buf_trade(&s->scratch, &s->pipe[h].body);
	buf_free(&s->pipe[h].body);
	s->pipe_head = (s->pipe_head + 1) % IMAP_PIPE_MAX;
	s->pipe_n--;
	if (uid_r != NULL)
		*uid_r = g.uid;
	/* Nothing of a command is handed over before its tagged answer: until
	 * then a second body for one of its UIDs may come, and which one is the
	 * message cannot be known (pipe_has_early).  Its other bodies wait in
	 * their slots, so the set's later UIDs return from here. */
	if (g.body && done)
		return got_body(s, &g, out, err_r);
	if (done)
		return done_st == IMAP_EGONE ?
		       imap_fail(s, IMAP_EGONE, err_r, "UID FETCH %lu: the message is gone "
				 "(expunged by another client)", (unsigned long)g.uid) :
		       imap_fail(s, done_st, err_r, "UID FETCH %lu: the server refused the "
				 "set", (unsigned long)g.uid);
	s->last_code[0] = '\0';
	net_deadline(s->conn, s->command_timeout_ms);
	/* a body is bounded by the caller's cap wherever it waits */
	s->scratch.max = out->max;
	s->body_max = out->max;
	for (;;) {
		imap_sink_open(s, &s->scratch);
		st = imap_read(s, "UID FETCH", &r, err_r);
		s->sink = NULL;
		if (st != IMAP_OK)
			return st;
		if (r->kind == IMAP_R_UNTAGGED) {
			if ((st = fetch_response(s, r, &g, out, err_r)) != IMAP_OK)
				return st;
			continue;
		}
		if (r->kind == IMAP_R_CONTINUE)
			return imap_fail(s, IMAP_EPROTO, err_r, "UID FETCH: unexpected continuation");
		if (r->tag_len == strlen(tag) && memcmp(r->tag, tag, r->tag_len) == 0)
			break;
		if (!other_tagged(s, r))
			return imap_fail(s, IMAP_EPROTO, err_r, "UID FETCH %lu: answer out of order",
					 (unsigned long)g.uid);
	}
	st = imap_tagged_status(s, "UID FETCH", r, err_r);
	if (!last)
		set_done(s, tag, st);
	if (st == IMAP_OK && g.toobig)
		return imap_fail(s, IMAP_ETOOBIG, err_r, "UID FETCH %lu: message larger than %zu "
				 "bytes", (unsigned long)g.uid, out->max);
	if (st == IMAP_OK && !g.body)
		return imap_fail(s, IMAP_EGONE, err_r, "UID FETCH %lu: the message is gone "
				 "(expunged by another client)", (unsigned long)g.uid);
	if (st == IMAP_ENO && !g.body && no_is_gone(s)) {
		char *e = err_r != NULL ? *err_r : NULL;

		st = imap_fail(s, IMAP_EGONE, err_r, "%s (the message is gone)",
			       e != NULL ? e : "UID FETCH: NO");
		free(e);
	}
	return st;
}

imap_status
imap_fetch(imap_session *s, uint32_t uid, buf *out, char **err_r)
{
	imap_status st;

	if ((st = need_selected(s, "UID FETCH", err_r)) != IMAP_OK)
		return st;
	if ((st = imap_send_fetch(s, uid, err_r)) != IMAP_OK)
		return st;
	return imap_recv_fetch(s, out, NULL, err_r);
}

/* mailmill - ISC licence, see LICENSE */
/*
 * The store's outbox and key-value functions against a real SQLite file:
 * queued with the verdict's transaction, gone with its rollback, the
 * queued / sent / dead transitions with per-recipient outcomes, and kv
 * expiry and scoping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/store/store.h"
#include "tests/unit/store_backend.h"

/* The key-value scope of a stage of an account. */
#define KV(account, stage) (&(store_kv_scope){ (account), (stage), NULL })

static char tmpdir[256];
static char statedir[512];
static int case_no;
static store *st;

static int
setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/mm-test-outbox.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static int
each_setup(void **state)
{
	char *err = NULL;

	snprintf(statedir, sizeof(statedir), "%s/s%d", tmpdir, ++case_no);
	st = NULL;
	tsb_reset();
	if (tsb_open(statedir, 0, &st, &err) < 0) {
		fprintf(stderr, "store_open: %s\n", err);
		free(err);
		return -1;
	}
	return 0;
}

static int
each_teardown(void **state)
{
	store_close(&st);
	return 0;
}

static void
ok_or_fail(int rc, char *err, const char *what)
{
	if (rc < 0)
		fail_msg("%s: %s", what, err ? err : "?");
	free(err);
}

static long long
add(const char *uid, const char *rcpts, const char *msg, long long now)
{
	store_outbox_row row = { 0 };
	char *err = NULL;
	long long *ids = NULL, id;
	size_t n = 0;

	row.account = "acct";
	row.uid = uid;
	row.stage = "autoreply";
	row.env_from = "";
	row.rcpts = rcpts;
	row.message = msg;
	row.len = strlen(msg);
	row.message_id = "mid@example.org";
	ok_or_fail(store_outbox_add(st, &row, now, &err), err, "add");
	/* the newest row is the highest id */
	ok_or_fail(store_outbox_due(st, -1, 1000, &ids, &n, &err), NULL, "due");
	assert_true(n > 0);
	id = ids[n - 1];
	free(ids);
	return id;
}

/* What fn saw, copied out of the borrowed row. */
struct seen {
	int calls;
	long long id;
	char *rcpts, *message, *outcomes, *last_error, *uid, *env_from;
	size_t len;
	outbox_state state;
	int attempts, unknown;
	long long next_attempt;
};

static void
seen_clear(struct seen *s)
{
	free(s->rcpts);
	free(s->message);
	free(s->outcomes);
	free(s->last_error);
	free(s->uid);
	free(s->env_from);
	memset(s, 0, sizeof(*s));
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static int
seen_fn(void *arg, const store_outbox_row *row)
{
	struct seen *s = arg;

	seen_clear(s);
	s->calls = 1;
	s->id = row->id;
	s->rcpts = dup_or_null(row->rcpts);
	s->outcomes = dup_or_null(row->outcomes);
	s->last_error = dup_or_null(row->last_error);
	s->uid = dup_or_null(row->uid);
	s->env_from = dup_or_null(row->env_from);
	if (row->message != NULL) {
		s->message = malloc(row->len + 1);
		memcpy(s->message, row->message, row->len);
		s->message[row->len] = '\0';
	}
	s->len = row->len;
	s->state = row->state;
	s->attempts = row->attempts;
	s->unknown = row->unknown_outcomes;
	s->next_attempt = row->next_attempt;
	return 0;
}

static void
get(long long id, struct seen *s)
{
	char *err = NULL;
	int rc = store_outbox_get(st, id, seen_fn, s, &err);

	if (rc != 1)
		fail_msg("get %lld: %d %s", id, rc, err ? err : "");
}

static size_t
due_count(long long due)
{
	long long *ids = NULL;
	size_t n = 0;
	char *err = NULL;

	ok_or_fail(store_outbox_due(st, due, 1000, &ids, &n, &err), err, "due");
	free(ids);
	return n;
}

static void
test_add_in_transaction(void **state)
{
	char *err = NULL;
	struct seen s = { 0 };
	long long id;

	ok_or_fail(store_begin(st, &err), err, "begin");
	id = add("u1", "a@x\nb@x", "Subject: hi\n\n.dot\n8bit \xc3\xa9\n", 100);
	ok_or_fail(store_commit(st, &err), err, "commit");
	get(id, &s);
	assert_int_equal(s.state, OUTBOX_QUEUED);
	assert_string_equal(s.rcpts, "a@x\nb@x");
	assert_string_equal(s.message, "Subject: hi\n\n.dot\n8bit \xc3\xa9\n");
	assert_string_equal(s.uid, "u1");
	assert_string_equal(s.env_from, "");
	assert_int_equal(s.attempts, 0);
	assert_int_equal(s.next_attempt, 100);
	assert_null(s.outcomes);
	seen_clear(&s);
	assert_int_equal(due_count(100), 1);
	assert_int_equal(due_count(99), 0);
	/* a missing id is 0, not an error */
	assert_int_equal(store_outbox_get(st, id + 1000, seen_fn, &s, &err), 0);
	assert_int_equal(s.calls, 0);
}

static void
test_rollback_leaves_nothing(void **state)
{
	char *err = NULL;
	char *v = NULL;

	ok_or_fail(store_begin(st, &err), err, "begin");
	(void)add("u1", "a@x", "m\n", 100);
	ok_or_fail(store_kv_put(st, KV("acct", "autoreply"), "k", "v", 0, 100, &err), err, "put");
	store_rollback(st);
	assert_int_equal(due_count(-1), 0);
	assert_int_equal(store_kv_get(st, KV("acct", "autoreply"), "k", 100, &v, &err), 0);
	assert_null(v);
}

static void
test_invalid_rows(void **state)
{
	store_outbox_row row = { 0 };
	char *err = NULL;

	row.account = "acct";
	row.env_from = "";
	row.rcpts = "";
	row.message = "m";
	row.len = 1;
	assert_int_equal(store_outbox_add(st, &row, 1, &err), -1);
	assert_non_null(err);
	free(err);
	err = NULL;
	row.rcpts = "a@x";
	row.env_from = NULL;
	assert_int_equal(store_outbox_add(st, &row, 1, &err), -1);
	free(err);
	assert_int_equal(due_count(-1), 0);
}

static void
test_retry_then_sent(void **state)
{
	char *err = NULL;
	struct seen s = { 0 };
	long long id = add("u1", "a@x\nb@x", "m\n", 100);

	/* a@x refused for good, b@x deferred */
	ok_or_fail(store_outbox_retry(st, id, "b@x", 400, "451 4.3.0 later",
				      "a@x 550 no such user\n", 110, &err), err, "retry");
	get(id, &s);
	assert_int_equal(s.state, OUTBOX_QUEUED);
	assert_string_equal(s.rcpts, "b@x");
	assert_int_equal(s.attempts, 1);
	assert_int_equal(s.next_attempt, 400);
	assert_string_equal(s.last_error, "451 4.3.0 later");
	assert_string_equal(s.outcomes, "a@x 550 no such user\n");
	seen_clear(&s);
	assert_int_equal(due_count(399), 0);
	assert_int_equal(due_count(400), 1);
	/* a retry with no new error keeps the last one; NULL rcpts keeps them */
	ok_or_fail(store_outbox_retry(st, id, NULL, 500, NULL, NULL, 410, &err), err, "retry2");
	get(id, &s);
	assert_string_equal(s.rcpts, "b@x");
	assert_string_equal(s.last_error, "451 4.3.0 later");
	assert_int_equal(s.attempts, 2);
	seen_clear(&s);
	ok_or_fail(store_outbox_sent(st, id, "b@x 250 ok\n", 500, &err), err, "sent");
	get(id, &s);
	assert_int_equal(s.state, OUTBOX_SENT);
	assert_int_equal(s.attempts, 3);
	/* both recipients' outcomes, in order */
	assert_string_equal(s.outcomes, "a@x 550 no such user\nb@x 250 ok\n");
	seen_clear(&s);
	assert_int_equal(due_count(-1), 0);
	/* a retry with an empty recipient list is refused */
	assert_int_equal(store_outbox_retry(st, id, "", 1, "x", NULL, 1, &err), -1);
	free(err);
	err = NULL;
	/* no such row */
	assert_int_equal(store_outbox_sent(st, id + 99, NULL, 1, &err), -1);
	assert_non_null(err);
	free(err);
}

/* The metrics' gauges: rows by state, and those that needed another try. */
static void
test_counts(void **state)
{
	char *err = NULL;
	unsigned long long n[3], retried;
	long long q1 = add("u1", "a@x", "m\n", 100), q2 = add("u2", "a@x", "m\n", 100);
	long long s1 = add("u3", "a@x", "m\n", 100), s2 = add("u4", "a@x", "m\n", 100);
	long long d1 = add("u5", "a@x", "m\n", 100);

	ok_or_fail(store_outbox_counts(st, n, &retried, &err), err, "counts");
	assert_true(n[OUTBOX_QUEUED] == 5 && n[OUTBOX_SENT] == 0 && n[OUTBOX_DEAD] == 0);
	assert_true(retried == 0);
	/* queued after one try, sent at once, sent at the second, dead at once */
	ok_or_fail(store_outbox_retry(st, q2, NULL, 400, "451 later", NULL, 110, &err), err, "r");
	ok_or_fail(store_outbox_sent(st, s1, NULL, 110, &err), err, "s1");
	ok_or_fail(store_outbox_retry(st, s2, NULL, 400, "451 later", NULL, 110, &err), err, "r2");
	ok_or_fail(store_outbox_sent(st, s2, NULL, 400, &err), err, "s2");
	ok_or_fail(store_outbox_dead(st, d1, "550 no", NULL, 110, &err), err, "d1");
	ok_or_fail(store_outbox_counts(st, n, &retried, &err), err, "counts");
	assert_true(n[OUTBOX_QUEUED] == 2 && n[OUTBOX_SENT] == 2 && n[OUTBOX_DEAD] == 1);
	assert_true(retried == 2);   /* q2 (queued, one try) and s2 (two tries) */
	(void)q1;
}

static void
test_dead(void **state)
{
	char *err = NULL;
	struct seen s = { 0 };
	long long id = add("u1", "a@x", "m\n", 100);

	ok_or_fail(store_outbox_dead(st, id, "554 5.7.1 refused", "a@x 554 refused\n", 120, &err),
		   err, "dead");
	get(id, &s);
	assert_int_equal(s.state, OUTBOX_DEAD);
	assert_string_equal(s.last_error, "554 5.7.1 refused");
	assert_string_equal(s.outcomes, "a@x 554 refused\n");
	seen_clear(&s);
	assert_int_equal(due_count(-1), 0);
}

/* RFC 1047 outcomes: counted on the row and in a total that outlives the
 * row; a rolled-back count is no count (it commits with the retry mark). */
static void
test_unknown_counted(void **state)
{
	char *err = NULL;
	struct seen s = { 0 };
	long long id = add("u1", "a@x", "m\n", 100), total = -1;

	ok_or_fail(store_counter_get(st, STORE_COUNTER_UNKNOWN, &total, &err), err, "counter");
	assert_int_equal(total, 0);
	ok_or_fail(store_begin(st, &err), err, "begin");
	ok_or_fail(store_outbox_unknown(st, id, &err), err, "unknown");
	ok_or_fail(store_outbox_retry(st, id, NULL, 200, "lost after the dot", NULL, 110, &err),
		   err, "retry");
	ok_or_fail(store_commit(st, &err), err, "commit");
	ok_or_fail(store_begin(st, &err), err, "begin");
	ok_or_fail(store_outbox_unknown(st, id, &err), err, "unknown");
	store_rollback(st);
	get(id, &s);
	assert_int_equal(s.state, OUTBOX_QUEUED);
	assert_int_equal(s.unknown, 1);
	assert_int_equal(s.attempts, 1);
	seen_clear(&s);
	ok_or_fail(store_outbox_unknown(st, id, &err), err, "unknown");
	ok_or_fail(store_counter_get(st, STORE_COUNTER_UNKNOWN, &total, &err), err, "counter");
	assert_int_equal(total, 2);
	/* the total stays when the sent row is pruned */
	ok_or_fail(store_outbox_sent(st, id, "a@x sent: 250 ok\n", 300, &err), err, "sent");
	ok_or_fail(store_outbox_prune(st, 301, &err), err, "prune");
	assert_int_equal(store_outbox_get(st, id, seen_fn, &s, &err), 0);
	ok_or_fail(store_counter_get(st, STORE_COUNTER_UNKNOWN, &total, &err), err, "counter");
	assert_int_equal(total, 2);
	/* no such row: an error, nothing counted */
	assert_int_equal(store_outbox_unknown(st, id, &err), -1);
	assert_non_null(err);
	free(err);
	err = NULL;
	ok_or_fail(store_counter_get(st, STORE_COUNTER_UNKNOWN, &total, &err), err, "counter");
	assert_int_equal(total, 2);
}

struct listed {
	int n;
	long long ids[8];
	outbox_state states[8];
	int with_bytes;
	size_t lens[8];
};

static int
list_fn(void *arg, const store_outbox_row *row)
{
	struct listed *l = arg;

	if (l->n >= 8)
		return 1;
	l->ids[l->n] = row->id;
	l->states[l->n] = row->state;
	l->lens[l->n] = row->len;
	l->with_bytes |= row->message != NULL;
	l->n++;
	return 0;
}

static void
test_list_and_prune(void **state)
{
	char *err = NULL;
	struct listed l = { 0 };
	long long q = add("u1", "a@x", "queued\n", 100);
	long long s = add("u2", "a@x", "sent!\n", 100);
	long long d = add("u3", "a@x", "dead\n", 100);

	ok_or_fail(store_outbox_sent(st, s, NULL, 200, &err), err, "sent");
	ok_or_fail(store_outbox_dead(st, d, "5xx", NULL, 200, &err), err, "dead");
	ok_or_fail(store_outbox_list(st, (1U << OUTBOX_QUEUED) | (1U << OUTBOX_DEAD), list_fn, &l,
				     &err), err, "list");
	assert_int_equal(l.n, 2);
	assert_int_equal(l.ids[0], q);
	assert_int_equal(l.states[0], OUTBOX_QUEUED);
	assert_int_equal(l.lens[0], 7);
	assert_int_equal(l.ids[1], d);
	assert_int_equal(l.states[1], OUTBOX_DEAD);
	assert_false(l.with_bytes);
	/* prune forgets old sent rows only */
	ok_or_fail(store_outbox_prune(st, 200, &err), err, "prune");
	memset(&l, 0, sizeof(l));
	ok_or_fail(store_outbox_list(st, 7, list_fn, &l, &err), err, "list");
	assert_int_equal(l.n, 3);
	ok_or_fail(store_outbox_prune(st, 201, &err), err, "prune");
	memset(&l, 0, sizeof(l));
	ok_or_fail(store_outbox_list(st, 7, list_fn, &l, &err), err, "list");
	assert_int_equal(l.n, 2);
	assert_int_equal(l.ids[0], q);
	assert_int_equal(l.ids[1], d);
}

static void
test_due_order_and_max(void **state)
{
	long long a = add("u1", "a@x", "1\n", 300), b = add("u2", "a@x", "2\n", 100);
	long long *ids = NULL;
	size_t n = 0;
	char *err = NULL;

	(void)add("u3", "a@x", "3\n", 100);
	ok_or_fail(store_outbox_due(st, -1, 2, &ids, &n, &err), err, "due");
	assert_int_equal(n, 2);
	/* oldest first (by id), at most max */
	assert_int_equal(ids[0], a);
	assert_int_equal(ids[1], b);
	free(ids);
	ids = NULL;
	ok_or_fail(store_outbox_due(st, 0, 10, &ids, &n, &err), err, "due");
	assert_int_equal(n, 0);
	assert_null(ids);
	assert_int_equal(due_count(100), 2);
}

/* --retry and --drop: a dead or queued row made due now; one row removed. */
static void
test_wake_and_drop(void **state)
{
	char *err = NULL;
	struct seen s = { 0 };
	long long a = add("u1", "a@x\nb@x", "1\n", 100), b = add("u2", "c@x", "2\n", 100), n = 0;
	long long c = add("u3", "d@x", "3\n", 100);

	ok_or_fail(store_outbox_dead(st, a, "554 refused", NULL, 110, &err), err, "dead");
	ok_or_fail(store_outbox_retry(st, b, NULL, 5000, "451 later", NULL, 110, &err), err, "retry");
	ok_or_fail(store_outbox_sent(st, c, NULL, 110, &err), err, "sent");
	ok_or_fail(store_outbox_wake(st, a, 200, &n, &err), err, "wake");
	assert_int_equal(n, 1);
	get(a, &s);
	assert_int_equal(s.state, OUTBOX_QUEUED);
	assert_int_equal(s.next_attempt, 200);
	assert_int_equal(s.attempts, 1);
	assert_string_equal(s.rcpts, "a@x\nb@x");
	seen_clear(&s);
	/* a sent row is not woken; all: every queued or dead row */
	ok_or_fail(store_outbox_wake(st, c, 200, &n, &err), err, "wake sent");
	assert_int_equal(n, 0);
	ok_or_fail(store_outbox_wake(st, -1, 300, &n, &err), err, "wake all");
	assert_int_equal(n, 2);
	assert_int_equal(due_count(300), 2);
	assert_int_equal(store_outbox_drop(st, b, &err), 1);
	assert_int_equal(store_outbox_drop(st, b, &err), 0);
	assert_int_equal(due_count(300), 1);
	assert_int_equal(store_outbox_get(st, b, seen_fn, &s, &err), 0);
}

/* One claim wins in either kind of scope; an expired claim is free again. */
static void
test_kv_claim(void **state)
{
	const store_kv_scope ns = { .ns = "ticket:q" };
	char *err = NULL, *holder = NULL, *v = NULL;

	assert_int_equal(store_kv_claim(st, &ns, "t1", "me", 0, 100, &holder, &err), 1);
	assert_null(holder);
	assert_int_equal(store_kv_claim(st, &ns, "t1", "you", 0, 100, &holder, &err), 0);
	assert_string_equal(holder, "me");
	free(holder);
	holder = NULL;
	/* a namespace and a stage scope never share keys */
	assert_int_equal(store_kv_get(st, KV("acct", "ticket"), "t1", 100, &v, &err), 0);
	assert_int_equal(store_kv_claim(st, KV("acct", "ticket"), "t1", "s", 150, 100, &holder,
					&err), 1);
	assert_int_equal(store_kv_claim(st, KV("acct", "ticket"), "t1", "s2", 0, 120, &holder,
					&err), 0);
	assert_string_equal(holder, "s");
	free(holder);
	holder = NULL;
	assert_int_equal(store_kv_claim(st, KV("acct", "ticket"), "t1", "s3", 0, 150, &holder,
					&err), 1);
	assert_int_equal(store_kv_get(st, KV("acct", "ticket"), "t1", 150, &v, &err), 1);
	assert_string_equal(v, "s3");
	free(v);
	/* a scope must name a stage of an account or a namespace */
	assert_int_equal(store_kv_get(st, &(store_kv_scope){ .account = "acct" }, "k", 1, &v, &err),
			 -1);
	free(err);
	err = NULL;
	/* never inside a transaction */
	ok_or_fail(store_begin(st, &err), err, "begin");
	assert_int_equal(store_kv_claim(st, &ns, "t2", "me", 0, 100, &holder, &err), -1);
	free(err);
	store_rollback(st);
}

static void
test_kv(void **state)
{
	char *err = NULL, *v = NULL;

	ok_or_fail(store_kv_put(st, KV("acct", "autoreply"), "k", "v1", 0, 100, &err), err, "put");
	assert_int_equal(store_kv_get(st, KV("acct", "autoreply"), "k", 100, &v, &err), 1);
	assert_string_equal(v, "v1");
	free(v);
	/* scoped by account and by stage */
	assert_int_equal(store_kv_get(st, KV("other", "autoreply"), "k", 100, &v, &err), 0);
	assert_int_equal(store_kv_get(st, KV("acct", "forward"), "k", 100, &v, &err), 0);
	ok_or_fail(store_kv_put(st, KV("other", "autoreply"), "k", "o", 0, 100, &err), err, "put");
	assert_int_equal(store_kv_get(st, KV("acct", "autoreply"), "k", 100, &v, &err), 1);
	assert_string_equal(v, "v1");
	free(v);
	/* replace */
	ok_or_fail(store_kv_put(st, KV("acct", "autoreply"), "k", "v2", 0, 101, &err), err, "put");
	assert_int_equal(store_kv_get(st, KV("acct", "autoreply"), "k", 101, &v, &err), 1);
	assert_string_equal(v, "v2");
	free(v);
	/* expiry: present before, missing at and after expires_at */
	ok_or_fail(store_kv_put(st, KV("acct", "autoreply"), "e", "x", 200, 100, &err), err, "put");
	assert_int_equal(store_kv_get(st, KV("acct", "autoreply"), "e", 199, &v, &err), 1);
	free(v);
	assert_int_equal(store_kv_get(st, KV("acct", "autoreply"), "e", 200, &v, &err), 0);
	assert_null(v);
	/* a later put forgets the scope's expired keys: even an earlier `now`
	 * no longer finds it */
	ok_or_fail(store_kv_put(st, KV("acct", "autoreply"), "f", "y", 0, 250, &err), err, "put");
	assert_int_equal(store_kv_get(st, KV("acct", "autoreply"), "e", 150, &v, &err), 0);
	/* bad arguments */
	assert_int_equal(store_kv_put(st, KV("acct", "autoreply"), NULL, "x", 0, 1, &err), -1);
	free(err);
	err = NULL;
	assert_int_equal(store_kv_put(st, KV("acct", "autoreply"), "k", "x", -1, 1, &err), -1);
	free(err);
}

/* The kv write commits with the caller's transaction, together with the row. */
static void
test_kv_commit_together(void **state)
{
	char *err = NULL, *v = NULL;

	ok_or_fail(store_begin(st, &err), err, "begin");
	ok_or_fail(store_kv_put(st, KV("acct", "autoreply"), "rate", "1", 0, 100, &err), err, "put");
	(void)add("u1", "a@x", "m\n", 100);
	ok_or_fail(store_commit(st, &err), err, "commit");
	store_close(&st);
	ok_or_fail(tsb_open(statedir, 0, &st, &err), err, "reopen");
	assert_int_equal(store_kv_get(st, KV("acct", "autoreply"), "rate", 100, &v, &err), 1);
	assert_string_equal(v, "1");
	free(v);
	assert_int_equal(due_count(-1), 1);
}

/* A read-only store (dry run) checks arguments and writes nothing. */
static void
test_readonly(void **state)
{
	store *ro = NULL;
	store_outbox_row row = { 0 };
	char *err = NULL, *v = NULL;

	(void)add("u1", "a@x", "m\n", 100);
	ok_or_fail(tsb_open(statedir, 1, &ro, &err), err, "open ro");
	row.account = "acct";
	row.env_from = "";
	row.rcpts = "a@x";
	row.message = "m2\n";
	row.len = 3;
	ok_or_fail(store_outbox_add(ro, &row, 100, &err), err, "add ro");
	ok_or_fail(store_kv_put(ro, KV("acct", "s"), "k", "v", 0, 100, &err), err, "put ro");
	store_close(&ro);
	assert_int_equal(due_count(-1), 1);
	assert_int_equal(store_kv_get(st, KV("acct", "s"), "k", 100, &v, &err), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_add_in_transaction, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_rollback_leaves_nothing, each_setup,
						each_teardown),
		cmocka_unit_test_setup_teardown(test_invalid_rows, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_retry_then_sent, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_dead, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_counts, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_unknown_counted, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_list_and_prune, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_due_order_and_max, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_kv, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_wake_and_drop, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_kv_claim, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_kv_commit_together, each_setup, each_teardown),
		cmocka_unit_test_setup_teardown(test_readonly, each_setup, each_teardown),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

/* mailmill - ISC licence, see LICENSE */
#include <config.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>
#include "daemon/sched/metrics.h"
#include "proto/err.h"

typedef struct metrics_acct {
	char *label;           /* the account name, escaped for a label value */
	unsigned long long fetched, fetched_bytes;
	unsigned long long processed, processed_bytes;
	unsigned long long deleted, deleted_bytes;
	unsigned long long moved, flagged;
	unsigned long long kept, kept_bytes;
	unsigned long long deferred, deferred_bytes;
	unsigned long long skipped;
	unsigned long long quarantined, quarantined_bytes;
	unsigned long long runs, runs_failed;
	long long last_success, last_run;
	double last_seconds;
	int needs_signin;      /* -1: not an OAuth sign-in (no gauge); 0; 1 */
	int lease;             /* -1: never said (no gauge); 0; 1 held */
} metrics_acct;

struct metrics {
	GHashTable *accts;     /* name -> metrics_acct */
	GPtrArray *sorted;     /* metrics_acct *, by name: kept sorted on insert (rare) */
	GHashTable *verdicts;  /* "account\tstage\tverdict" -> count (guint64 *) */
	int dirty;
	char *owner;           /* the lease owner (metrics_lease), escaped; NULL before */
};

static void
metrics_acct_free(gpointer p)
{
	metrics_acct *a = p;

	g_free(a->label);
	g_free(a);
}

metrics *
metrics_new(void)
{
	metrics *m = g_new0(metrics, 1);

	m->accts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, metrics_acct_free);
	m->sorted = g_ptr_array_new();
	m->verdicts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	m->dirty = 1;
	return m;
}

void
metrics_free(metrics **mp)
{
	if (mp == NULL || *mp == NULL)
		return;
	g_ptr_array_free((*mp)->sorted, TRUE);
	g_hash_table_destroy((*mp)->accts);
	g_hash_table_destroy((*mp)->verdicts);
	g_free((*mp)->owner);
	g_free(*mp);
	*mp = NULL;
}

/* Label values: account and stage names are already [A-Za-z0-9._-]; escape anyway. */
static void
metrics_label(GString *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			g_string_append_c(out, '\\');
		if (*v == '\n')
			g_string_append(out, "\\n");
		else
			g_string_append_c(out, *v);
	}
}

static metrics_acct *
metrics_acct_get(metrics *m, const char *account)
{
	metrics_acct *a = g_hash_table_lookup(m->accts, account);
	GString *l;
	guint lo = 0, hi;

	m->dirty = 1;
	if (a != NULL)
		return a;
	a = g_new0(metrics_acct, 1);
	a->needs_signin = -1;
	a->lease = -1;
	l = g_string_new(NULL);
	metrics_label(l, account);
	a->label = g_string_free(l, FALSE);
	g_hash_table_insert(m->accts, g_strdup(account), a);
	/* A new account (start, reload): a binary search and one move. */
	hi = m->sorted->len;
	while (lo < hi) {
		guint mid = lo + (hi - lo) / 2;

		if (strcmp(((metrics_acct *)m->sorted->pdata[mid])->label, a->label) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	g_ptr_array_insert(m->sorted, (gint)lo, a);
	return a;
}

void
metrics_verdict(metrics *m, const char *account, const char *stage, const char *verdict,
		unsigned long long bytes)
{
	metrics_acct *a = metrics_acct_get(m, account);
	/* Looked up in a buffer on the stack: this runs for every message, and
	 * the key is allocated only the first time it is seen. */
	char buf[512];
	const char *st = stage != NULL && *stage ? stage : "";
	size_t la = strlen(account), ls = strlen(st), lv = strlen(verdict);
	char *key = buf;
	guint64 *n;

	if (la + ls + lv + 3 <= sizeof buf) {
		memcpy(buf, account, la);
		buf[la] = '\t';
		memcpy(buf + la + 1, st, ls);
		buf[la + 1 + ls] = '\t';
		memcpy(buf + la + 2 + ls, verdict, lv + 1);
	} else {
		key = g_strdup_printf("%s\t%s\t%s", account, st, verdict);
	}
	n = g_hash_table_lookup(m->verdicts, key);

	if (n == NULL) {
		n = g_new0(guint64, 1);
		g_hash_table_insert(m->verdicts, key == buf ? g_strdup(buf) : key, n);
	} else if (key != buf) {
		g_free(key);
	}
	(*n)++;
	a->processed++;
	a->processed_bytes += bytes;
	if (strcmp(verdict, "defer") == 0) {
		a->deferred++;
		a->deferred_bytes += bytes;
	} else if (strcmp(verdict, "keep") == 0) {
		a->kept++;
		a->kept_bytes += bytes;
	}
}

void
metrics_quarantined(metrics *m, const char *account, unsigned long long bytes)
{
	metrics_acct *a = metrics_acct_get(m, account);

	a->quarantined++;
	a->quarantined_bytes += bytes;
}

void
metrics_signin(metrics *m, const char *account, int needs)
{
	metrics_acct_get(m, account)->needs_signin = needs ? 1 : 0;
}

void
metrics_lease(metrics *m, const char *account, const char *owner, int held)
{
	metrics_acct *a = metrics_acct_get(m, account);

	if (m->owner == NULL) {
		GString *l = g_string_new(NULL);

		metrics_label(l, owner);
		m->owner = g_string_free(l, FALSE);
	}
	a->lease = held ? 1 : 0;
}

void
metrics_run(metrics *m, const char *account, const run_stats *s, int ok, long long now,
	    double seconds)
{
	metrics_acct *a = metrics_acct_get(m, account);

	a->runs++;
	a->last_run = now;
	a->last_seconds = seconds;
	if (ok)
		a->last_success = now;
	else
		a->runs_failed++;
	if (s == NULL)
		return;
	a->fetched += s->fetched;
	a->fetched_bytes += s->bytes;
	a->deleted += s->deleted;
	a->deleted_bytes += s->deleted_bytes;
	a->moved += s->moved;
	a->flagged += s->flagged;
	a->skipped += s->skipped;
}

int
metrics_dirty(const metrics *m)
{
	return m->dirty;
}

/* One sample line, name{account="label"} value: rendering ten thousand
 * accounts is a couple of hundred thousand of these, so appends into a
 * string sized once rather than a printf into a growing one. */
static void
metrics_line(GString *out, const char *name, const char *label, unsigned long long v)
{
	char num[24];
	int n = snprintf(num, sizeof num, "%llu\n", v);

	g_string_append(out, name);
	g_string_append(out, "{account=\"");
	g_string_append(out, label);
	g_string_append(out, "\"} ");
	g_string_append_len(out, num, n);
}

static void
metrics_quarantine_row(void *arg, const store_quarantine_row *row)
{
	GHashTable *counts = arg;
	gpointer v = g_hash_table_lookup(counts, row->account);

	g_hash_table_replace(counts, g_strdup(row->account), GINT_TO_POINTER(GPOINTER_TO_INT(v) + 1));
}

static gint
metrics_cmp(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

#define METRICS_COUNTERS(X) \
	X(fetched, "mailmill_messages_fetched_total", "Messages fetched from the server") \
	X(processed, "mailmill_messages_processed_total", "Messages the pipeline decided") \
	X(deleted, "mailmill_messages_deleted_total", "Messages deleted from the server") \
	X(moved, "mailmill_messages_moved_total", "IMAP: messages moved to move_to") \
	X(flagged, "mailmill_messages_flagged_total", \
	  "IMAP: messages flagged (after = flag; delete without UIDPLUS)") \
	X(kept, "mailmill_messages_kept_total", "Messages decided KEEP (left on the server)") \
	X(deferred, "mailmill_messages_deferred_total", "Messages decided DEFER (retried next run)") \
	X(skipped, "mailmill_messages_skipped_total", "Messages skipped (too big, bad UID)") \
	X(quarantined, "mailmill_messages_quarantined_total", "Messages put in quarantine") \
	X(fetched_bytes, "mailmill_fetched_bytes_total", "Bytes fetched") \
	X(processed_bytes, "mailmill_processed_bytes_total", "Bytes of messages the pipeline decided") \
	X(deleted_bytes, "mailmill_deleted_bytes_total", "Bytes deleted from the server (LIST sizes)") \
	X(kept_bytes, "mailmill_kept_bytes_total", "Bytes of messages decided KEEP") \
	X(deferred_bytes, "mailmill_deferred_bytes_total", "Bytes of messages decided DEFER") \
	X(quarantined_bytes, "mailmill_quarantined_bytes_total", "Bytes of messages put in quarantine") \
	X(runs, "mailmill_runs_total", "Account runs") \
	X(runs_failed, "mailmill_runs_failed_total", "Account runs that failed, crashed or timed out")

static void
metrics_render_verdicts(metrics *m, GString *out)
{
	GPtrArray *keys = g_ptr_array_new();
	GHashTableIter it;
	gpointer k, v;
	guint i;

	g_hash_table_iter_init(&it, m->verdicts);
	while (g_hash_table_iter_next(&it, &k, &v))
		g_ptr_array_add(keys, k);
	g_ptr_array_sort(keys, metrics_cmp);
	g_string_append(out, "# HELP mailmill_stage_verdicts_total Verdicts by the stage that"
			" decided (stage \"\": the pipeline end).\n"
			"# TYPE mailmill_stage_verdicts_total counter\n");
	for (i = 0; i < keys->len; i++) {
		char **f = g_strsplit(keys->pdata[i], "\t", 3);
		guint64 *n = g_hash_table_lookup(m->verdicts, keys->pdata[i]);

		g_string_append(out, "mailmill_stage_verdicts_total{account=\"");
		metrics_label(out, f[0]);
		g_string_append(out, "\",stage=\"");
		metrics_label(out, f[1]);
		g_string_append(out, "\",verdict=\"");
		metrics_label(out, f[2]);
		g_string_append_printf(out, "\"} %" G_GUINT64_FORMAT "\n", *n);
		g_strfreev(f);
	}
	g_ptr_array_free(keys, TRUE);
}

/* The gauges that live in the store: aggregate queries, not one per account. */
static int
metrics_render_store(GString *out, store *st)
{
	unsigned long long n[3] = { 0, 0, 0 }, retried = 0;
	long long unknown = 0;
	GHashTable *q = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	GHashTableIter it;
	gpointer k, v;
	char *err = NULL;
	int ok = 1;

	if (store_quarantine_list(st, NULL, metrics_quarantine_row, q, &err) == 0) {
		g_string_append(out, "# HELP mailmill_quarantine_messages Messages in quarantine"
				" now (left on the server, skipped).\n"
				"# TYPE mailmill_quarantine_messages gauge\n");
		g_hash_table_iter_init(&it, q);
		while (g_hash_table_iter_next(&it, &k, &v)) {
			g_string_append(out, "mailmill_quarantine_messages{account=\"");
			metrics_label(out, k);
			g_string_append_printf(out, "\"} %d\n", GPOINTER_TO_INT(v));
		}
	} else {
		ok = 0;
	}
	free(err);
	err = NULL;
	g_hash_table_destroy(q);
	if (store_outbox_counts(st, n, &retried, &err) == 0) {
		g_string_append_printf(out,
			"# HELP mailmill_outbox_messages Outgoing messages in the outbox by state.\n"
			"# TYPE mailmill_outbox_messages gauge\n"
			"mailmill_outbox_messages{state=\"queued\"} %llu\n"
			"mailmill_outbox_messages{state=\"sent\"} %llu\n"
			"mailmill_outbox_messages{state=\"dead\"} %llu\n"
			"# HELP mailmill_outbox_retried_messages Outbox messages that needed"
			" more than one attempt.\n"
			"# TYPE mailmill_outbox_retried_messages gauge\n"
			"mailmill_outbox_retried_messages %llu\n",
			n[OUTBOX_QUEUED], n[OUTBOX_SENT], n[OUTBOX_DEAD], retried);
	} else {
		ok = 0;
	}
	free(err);
	err = NULL;
	if (store_counter_get(st, STORE_COUNTER_UNKNOWN, &unknown, &err) == 0)
		g_string_append_printf(out,
			"# HELP mailmill_outbox_unknown_outcome_total Outbox sends whose end"
			" of data went unanswered (connection lost, reset or timed out after"
			" the final dot): retried, the relay may deliver them twice (RFC 1047).\n"
			"# TYPE mailmill_outbox_unknown_outcome_total counter\n"
			"mailmill_outbox_unknown_outcome_total %lld\n", unknown);
	else
		ok = 0;
	free(err);
	return ok;
}

char *
metrics_render(metrics *m, store *st, size_t *len_r, int *store_ok_r)
{
	GPtrArray *as = m->sorted;
	/* About 20 lines of 60 bytes per account: sized once, not grown. */
	GString *out = g_string_sized_new(1024 + (gsize)as->len * 1400);
	int store_ok = 1;
	guint i;

#define X(field, name, help) \
	g_string_append(out, "# HELP " name " " help ".\n# TYPE " name " counter\n"); \
	for (i = 0; i < as->len; i++) { \
		const metrics_acct *a = as->pdata[i]; \
		metrics_line(out, name, a->label, a->field); \
	}
	METRICS_COUNTERS(X)
#undef X
	g_string_append(out, "# HELP mailmill_last_success_timestamp_seconds Unix time of the last"
			" run that completed.\n# TYPE mailmill_last_success_timestamp_seconds gauge\n");
	for (i = 0; i < as->len; i++) {
		const metrics_acct *a = as->pdata[i];

		metrics_line(out, "mailmill_last_success_timestamp_seconds", a->label,
			     a->last_success > 0 ? (unsigned long long)a->last_success : 0);
	}
	g_string_append(out, "# HELP mailmill_last_run_duration_seconds How long the last run"
			" took.\n# TYPE mailmill_last_run_duration_seconds gauge\n");
	for (i = 0; i < as->len; i++) {
		const metrics_acct *a = as->pdata[i];

		g_string_append_printf(out, "mailmill_last_run_duration_seconds{account=\"%s\"} %.3f\n",
				       a->label, a->last_seconds);
	}
	g_string_append(out, "# HELP mailmill_account_needs_signin 1 when the account's OAuth"
			" sign-in was refused or never made: run mailmilld --sign-in.\n"
			"# TYPE mailmill_account_needs_signin gauge\n");
	for (i = 0; i < as->len; i++) {
		const metrics_acct *a = as->pdata[i];

		if (a->needs_signin >= 0)
			metrics_line(out, "mailmill_account_needs_signin", a->label,
				     (unsigned long long)a->needs_signin);
	}
	g_string_append(out, "# HELP mailmill_account_lease 1 while this daemon (owner) holds the"
			" account's lease: it runs the account, or keeps it until its next run.\n"
			"# TYPE mailmill_account_lease gauge\n");
	for (i = 0; i < as->len && m->owner != NULL; i++) {
		const metrics_acct *a = as->pdata[i];

		if (a->lease >= 0)
			g_string_append_printf(out, "mailmill_account_lease{account=\"%s\",owner=\"%s\"}"
					       " %d\n", a->label, m->owner, a->lease);
	}
	metrics_render_verdicts(m, out);
	if (st != NULL)
		store_ok = metrics_render_store(out, st);
	m->dirty = 0;
	if (store_ok_r != NULL)
		*store_ok_r = store_ok;
	*len_r = out->len;
	return g_string_free(out, FALSE);
}

int
metrics_write_text(const char *state_dir, const char *text, size_t len, char **err_r)
{
	char *path = g_strdup_printf("%s/metrics.prom", state_dir);
	char *tmp = g_strdup_printf("%s/.metrics.prom.tmp", state_dir);
	int fd, rc = -1;
	size_t off = 0;

	/* No fsync (metrics.h says why); rename makes it whole to readers. */
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		*err_r = err_fmt("cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*err_r = err_fmt("cannot write %s: %s", tmp, strerror(errno));
			close(fd);
			unlink(tmp);
			goto out;
		}
		off += (size_t)n;
	}
	/* The umask may have narrowed the mode: the file is for other readers. */
	if (fchmod(fd, 0644) < 0) {
		*err_r = err_fmt("cannot chmod %s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		goto out;
	}
	if (close(fd) < 0) {
		*err_r = err_fmt("cannot write %s: %s", tmp, strerror(errno));
		unlink(tmp);
		goto out;
	}
	if (rename(tmp, path) < 0) {
		*err_r = err_fmt("cannot rename %s to %s: %s", tmp, path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	rc = 0;
out:
	g_free(tmp);
	g_free(path);
	return rc;
}

int
metrics_write(metrics *m, const char *state_dir, store *st, char **err_r)
{
	size_t len;
	char *text = metrics_render(m, st, &len, NULL);
	int rc = metrics_write_text(state_dir, text, len, err_r);

	g_free(text);
	return rc;
}

/* mailmill - ISC licence, see LICENSE */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <glib.h>
#include <mailmill/plugin.h>
#include "proto/smtp.h"
#include "daemon/run/outbox.h"
#include "daemon/run/outbox_int.h"
#include "daemon/run/run.h"
#include "daemon/core/crash.h"
#include "daemon/core/log.h"

#define OUTBOX_MAX_PER_FLUSH 10000
#define OUTBOX_BACKOFF_FIRST 60LL
#define OUTBOX_BACKOFF_MAX (4LL * 3600)
#define OUTBOX_KEEP_SENT (30LL * 86400)
#define OUTBOX_TEXT_MAX 300

/* One row copied out of the store for the time it is being sent. */
typedef struct outbox_item {
	long long id, created;
	int attempts;
	unsigned flags;
	char *account, *env_from, *rcpts, *message_id, *data;
	size_t len;
} outbox_item;

long long
outbox_backoff(int n)
{
	long long d = OUTBOX_BACKOFF_FIRST;

	for (int i = 1; i < n && d < OUTBOX_BACKOFF_MAX; i++)
		d *= 2;
	return d < OUTBOX_BACKOFF_MAX ? d : OUTBOX_BACKOFF_MAX;
}

static int
outbox_copy(void *arg, const store_outbox_row *row)
{
	outbox_item *it = arg;

	it->id = row->id;
	it->created = row->created;
	it->attempts = row->attempts;
	it->flags = row->flags;
	it->account = g_strdup(row->account);
	it->env_from = g_strdup(row->env_from);
	it->rcpts = g_strdup(row->rcpts);
	it->message_id = g_strdup(row->message_id);
	it->data = row->message != NULL ? g_memdup2(row->message, row->len) : g_strdup("");
	it->len = row->message != NULL ? row->len : 0;
	return 0;
}

static void
outbox_item_clear(outbox_item *it)
{
	g_free(it->account);
	g_free(it->env_from);
	g_free(it->rcpts);
	g_free(it->message_id);
	g_free(it->data);
	memset(it, 0, sizeof(*it));
}

/* A reply's text on one line, bounded, for the log and the store. */
static char *
outbox_oneline(const char *text)
{
	char *t = g_strndup(text != NULL ? text : "", OUTBOX_TEXT_MAX);

	for (char *p = t; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	return t;
}

/* "\n"-separated recipients as the log shows them, "a, b" (g_free). */
static char *
outbox_rcpt_list(const char *rcpts)
{
	gchar **v = g_strsplit(rcpts, "\n", -1);
	char *s = g_strjoinv(", ", v);

	g_strfreev(v);
	return s;
}

/* A temporary failure of the whole row: retry later, or give up when it
 * has been queued for max_queue_time. */
static void
outbox_temp(const cfg_smtp *m, store *st, outbox_item *it, const char *rcpts, const char *error,
	    const char *outcomes, long long now, outbox_stats *stats, int quiet)
{
	char *err = NULL, *to = outbox_rcpt_list(rcpts);
	int rc;

	if (now - it->created >= m->max_queue_time_s) {
		char *why = g_strdup_printf("gave up after %lld s in the queue: %s",
					    now - it->created, error);

		log_error("outbox: #%lld <%s> to %s: dead: %s", it->id,
			  it->message_id != NULL ? it->message_id : "", to, why);
		rc = store_outbox_dead(st, it->id, why, outcomes, now, &err);
		g_free(why);
		stats->dead++;
	} else {
		long long next = now + outbox_backoff(it->attempts + 1);

		if (next > it->created + m->max_queue_time_s)
			next = it->created + m->max_queue_time_s;
		log_msg(quiet ? LOG_LVL_DEBUG : LOG_LVL_WARNING,
			"outbox: #%lld <%s> to %s: deferred (%s), next try in %lld s", it->id,
			it->message_id != NULL ? it->message_id : "", to, error, next - now);
		rc = store_outbox_retry(st, it->id, rcpts, next, error, outcomes, now, &err);
		stats->retried++;
	}
	g_free(to);
	if (rc < 0) {
		log_error("outbox: #%lld: cannot record the outcome: %s", it->id, err);
		free(err);
	}
}

/*
 * The connection was lost, reset or timed out after the final dot: the relay
 * may have stored the message or not (RFC 1047).  The row stays queued with
 * the same stored bytes, hence the same Message-ID; the relay may deliver it
 * twice, which is counted (store_outbox_unknown) and said, never lost.  The
 * count and the retry mark commit together.
 */
static void
outbox_unknown(const cfg_smtp *m, store *st, outbox_item *it, const char *rcpts,
	       const char *error, const char *outcomes, long long now, outbox_stats *stats)
{
	const char *mid = it->message_id != NULL ? it->message_id : "";
	char *err = NULL, *to = outbox_rcpt_list(rcpts);
	int tx = store_begin(st, &err) == 0;

	if (!tx) {
		/* Each write below then commits on its own. */
		log_warn("outbox: #%lld: %s", it->id, err != NULL ? err : "cannot begin");
		free(err);
		err = NULL;
	}
	if (now - it->created >= m->max_queue_time_s)
		log_warn("outbox: #%lld <%s> to %s: outcome unknown after end of data; not retried"
			 " (max_queue_time), the relay may have delivered it (RFC 1047)", it->id,
			 mid, to);
	else
		log_warn("outbox: #%lld <%s> to %s: outcome unknown after end of data; will retry,"
			 " the relay may deliver it twice (RFC 1047)", it->id, mid, to);
	g_free(to);
	stats->unknown++;
	if (store_outbox_unknown(st, it->id, &err) < 0) {
		log_error("outbox: #%lld: cannot count the unknown outcome: %s", it->id, err);
		free(err);
		err = NULL;
	}
	outbox_temp(m, st, it, rcpts, error, outcomes, now, stats, 0);
	if (tx && store_commit(st, &err) < 0) {
		log_error("outbox: #%lld: cannot record the unknown outcome: %s", it->id, err);
		store_rollback(st);
		free(err);
	}
}

/*
 * Send one row and record what happened.  Returns 0, or -1 when the
 * session is no longer usable (the rest waits for the next flush).
 */
static int
outbox_send(const cfg_smtp *m, smtp_session *s, store *st, outbox_item *it,
	    outbox_stats *stats)
{
	static const char *const dsn_never[] = { "NOTIFY=NEVER", NULL };
	gchar **rcpts = g_strsplit(it->rcpts, "\n", -1);
	size_t n = g_strv_length(rcpts), i;
	smtp_rcpt_result *res = g_new0(smtp_rcpt_result, n ? n : 1);
	GString *outcomes = g_string_new(NULL), *left = g_string_new(NULL);
	GString *sent_to = g_string_new(NULL), *refused = g_string_new(NULL);
	unsigned long sent = 0, unknown = 0;
	long long now;
	char *err = NULL, *e1, *serr = NULL;
	smtp_status rc;
	int ret = 0;

	rc = smtp_sendmail(s, it->env_from, (const char *const *)rcpts, n, it->data, it->len,
			   NULL, (it->flags & MM_QUEUE_DSN_NEVER) ? dsn_never : NULL, res, &err);
	now = (long long)time(NULL);
	e1 = outbox_oneline(err != NULL ? err : smtp_status_name(rc));
	for (i = 0; i < n; i++) {
		/* A result the client never filled in (refused before MAIL) takes
		 * the status of the whole transaction. */
		int filled = res[i].code != 0 || res[i].status != SMTP_OK;
		smtp_status rs = filled ? res[i].status : rc;
		char *text = outbox_oneline(filled && res[i].text != NULL ? res[i].text : e1);

		if (rs == SMTP_OK) {
			sent++;
			g_string_append_printf(sent_to, "%s%s", sent_to->len ? ", " : "", rcpts[i]);
			g_string_append_printf(outcomes, "%s sent: %d %s%s%s\n", rcpts[i], res[i].code,
					       res[i].enhanced, res[i].enhanced[0] ? " " : "", text);
		} else if (rs == SMTP_EPERM || rs == SMTP_ETOOBIG || rs == SMTP_EUSAGE ||
			   rs == SMTP_EAUTH) {
			stats->refused_rcpts++;
			g_string_append_printf(outcomes, "%s refused: %d %s%s%s\n", rcpts[i],
					       res[i].code, res[i].enhanced,
					       res[i].enhanced[0] ? " " : "", text);
			g_string_append_printf(refused, "%s%s (%d %s%s%s)", refused->len ? ", " : "",
					       rcpts[i], res[i].code, res[i].enhanced,
					       res[i].enhanced[0] ? " " : "", text);
		} else {
			unknown += rs == SMTP_EUNKNOWN;
			g_string_append_printf(left, "%s%s", left->len ? "\n" : "", rcpts[i]);
		}
		g_free(text);
	}
	/* Refusals are said once: here, or in the "dead" line when every
	 * recipient was refused. */
	if (refused->len > 0 && (sent > 0 || left->len > 0))
		log_warn("outbox: #%lld <%s>: refused for %s", it->id,
			 it->message_id != NULL ? it->message_id : "", refused->str);
	if (unknown > 0) {
		outbox_unknown(m, st, it, left->str, e1, outcomes->len ? outcomes->str : NULL, now,
			       stats);
	} else if (left->len > 0) {
		outbox_temp(m, st, it, left->str, e1, outcomes->len ? outcomes->str : NULL, now,
			    stats, 0);
	} else if (sent > 0) {
		log_info("outbox: #%lld <%s> from <%s>: sent to %s (%lu of %zu recipient(s))",
			 it->id, it->message_id != NULL ? it->message_id : "", it->env_from,
			 sent_to->str, sent, n);
		if (store_outbox_sent(st, it->id, outcomes->str, now, &serr) < 0)
			log_error("outbox: #%lld: sent, but cannot record it: %s", it->id, serr);
		stats->sent++;
	} else {
		log_error("outbox: #%lld <%s>: dead: %s%s", it->id,
			  it->message_id != NULL ? it->message_id : "",
			  refused->len > 0 ? "refused for " : "", refused->len > 0 ? refused->str : e1);
		if (store_outbox_dead(st, it->id, e1, outcomes->str, now, &serr) < 0)
			log_error("outbox: #%lld: cannot record it: %s", it->id, serr);
		stats->dead++;
	}
	if (!smtp_usable(s))
		ret = -1;
	free(serr);
	free(err);
	g_free(e1);
	smtp_results_clear(res, n);
	g_free(res);
	g_string_free(outcomes, TRUE);
	g_string_free(left, TRUE);
	g_string_free(sent_to, TRUE);
	g_string_free(refused, TRUE);
	g_strfreev(rcpts);
	return ret;
}

/* 0 while the lease (if any) is still ours, else -1 (logged). */
static int
outbox_lease_renew(const struct run_lease *lease, store *st, size_t left)
{
	char *err = NULL;

	if (lease == NULL ||
	    store_lease_renew(st, OUTBOX_LEASE, lease->owner, lease->fence, lease->ttl_s, &err) == 0)
		return 0;
	log_warn("outbox: the lease on the outbox is lost (%s): %zu message(s) left to the"
		 " daemon that holds it", err != NULL ? err : "error", left);
	free(err);
	return -1;
}

int
outbox_flush(const cfg *c, store *st, int all, int trace, const struct run_lease *lease,
	     outbox_stats *stats)
{
	long long now = (long long)time(NULL), *ids = NULL;
	smtp_session *s = NULL;
	outbox_tracer tracer = { 0, 0 };
	size_t n = 0, i;
	char *err = NULL;
	smtp_status rc;
	const char *how = NULL;
	int ret = 0, signin = 0;

	memset(stats, 0, sizeof(*stats));
	if (store_outbox_due(st, all ? -1 : now, OUTBOX_MAX_PER_FLUSH, &ids, &n, &err) < 0) {
		log_error("outbox: %s", err);
		free(err);
		return -1;
	}
	stats->due = n;
	if (n == 0)
		goto prune;
	if (c->smtp == NULL) {
		log_warn("outbox: %zu message(s) queued, but there is no 'smtp' relay in the"
			 " configuration: not sent", n);
		free(ids);
		return -1;
	}
	crash_point("flush");
	tracer.log = trace;
	rc = outbox_connect(c, st, &tracer, &s, &how, &signin, &err);
	if (rc != SMTP_OK) {
		char *e1 = outbox_oneline(err != NULL ? err : smtp_status_name(rc));

		if (signin)
			log_error("outbox: no access token for the relay: nothing sent, %zu "
				  "message(s) stay queued", n);
		else
			log_error("outbox: relay %s:%s: %s: nothing sent, %zu message(s) stay queued",
				  c->smtp->host, c->smtp->port, e1, n);
		free(err);
		err = NULL;
		/* Every due row waited for this relay: each counts the attempt and
		 * eventually expires like any other temporary failure.  One
		 * transaction for them all (not a disk flush per row), and the
		 * line above says it once rather than once per row. */
		int tx = store_begin(st, &err) == 0;

		if (!tx) {
			log_warn("outbox: %s", err);
			free(err);
			err = NULL;
		}
		for (i = 0; i < n; i++) {
			outbox_item it = { 0 };

			int got = store_outbox_get(st, ids[i], outbox_copy, &it, &err);

			if (got == 1)
				outbox_temp(c->smtp, st, &it, it.rcpts, e1, NULL, now, stats, 1);
			else if (got < 0) {
				log_warn("outbox: %s", err);
				free(err);
				err = NULL;
			}
			outbox_item_clear(&it);
		}
		if (tx && store_commit(st, &err) < 0) {
			log_error("outbox: cannot record the deferrals: %s", err);
			store_rollback(st);
		}
		g_free(e1);
		free(err);
		smtp_close(&s);
		free(ids);
		return -1;
	}
	log_debug("outbox: %zu message(s) due; relay %s:%s%s%s", n, c->smtp->host, c->smtp->port,
		  smtp_is_tls(s) ? ", TLS" : "",
		  smtp_has_ext(s, "PIPELINING") ? ", pipelining" : "");
	/* The marks of this flush survive a crash without a disk flush each
	 * (store_durability says what a power cut may cost). */
	if (store_durability(st, 0, &err) < 0) {
		log_warn("outbox: %s: marks are flushed one by one", err);
		free(err);
		err = NULL;
	}
	for (i = 0; i < n; i++) {
		outbox_item it = { 0 };
		int got;

		got = store_outbox_get(st, ids[i], outbox_copy, &it, &err);
		if (got < 0) {
			log_error("outbox: %s", err);
			free(err);
			err = NULL;
			ret = -1;
			break;
		}
		/* Checked last thing before the send: a flush paused past its
		 * lease (another daemon has the outbox now and sends these rows)
		 * sends nothing more, so at most the message in flight when the
		 * lease was lost goes out twice (SMTP has no idempotency). */
		if (got == 1 && outbox_lease_renew(lease, st, n - i) < 0) {
			outbox_item_clear(&it);
			ret = -1;
			break;
		}
		if (got == 1 && outbox_send(c->smtp, s, st, &it, stats) < 0) {
			outbox_item_clear(&it);
			log_warn("outbox: the relay connection is gone: %zu message(s) wait for the"
				 " next flush", n - i - 1);
			ret = -1;
			break;
		}
		outbox_item_clear(&it);
	}
	if (smtp_usable(s) && smtp_quit(s, &err) != SMTP_OK) {
		log_debug("outbox: QUIT: %s", err != NULL ? err : "failed");
		free(err);
		err = NULL;
	}
	smtp_close(&s);
	free(ids);
	if (store_durability(st, 1, &err) < 0) {
		log_error("outbox: %s", err);
		free(err);
		err = NULL;
		ret = -1;
	}
	log_info("outbox: %lu due, %lu sent, %lu deferred, %lu dead, %lu outcome(s) unknown",
		 stats->due, stats->sent, stats->retried, stats->dead, stats->unknown);
prune:
	if (store_outbox_prune(st, now - OUTBOX_KEEP_SENT, &err) < 0) {
		log_warn("outbox: cannot prune sent mail: %s", err);
		free(err);
	}
	return ret;
}

int
outbox_settled(const outbox_stats *s)
{
	return s->retried == 0 && s->dead == 0 && s->refused_rcpts == 0;
}

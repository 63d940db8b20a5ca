/* mailmill - ISC licence, see LICENSE */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <glib.h>
#include <mailmill/plugin.h>
#include "proto/smtp.h"
#include "daemon/run/outbox.h"
#include "daemon/core/crash.h"
#include "daemon/core/log.h"
#include "daemon/core/secret.h"
#include "daemon/oauth/oauth.h"
#include "daemon/run/run.h"

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

/* What the trace callback of one session needs. */
typedef struct outbox_tracer {
	int log;       /* the operator asked for a protocol trace */
	int dot_sent;  /* the final dot is out; the next server line is its reply */
} outbox_tracer;

/*
 * Installed on every session: the crash points of DATA must fire whether or
 * not the operator asked for a trace.  "smtpdata" fires on the 354 go-ahead,
 * before any message data; "smtpdot" fires when the reply to the final dot
 * arrives, before it is read: the relay has the message and the outbox does
 * not know it (the RFC 1047 window).  The trace of "." itself comes before
 * the data is flushed, so it cannot be that point.
 */
static void
outbox_trace(void *arg, char dir, const char *line, size_t len)
{
	outbox_tracer *t = arg;

	if (dir == 'S' && t->dot_sent) {
		t->dot_sent = 0;
		crash_point("smtpdot");
	} else if (dir == 'S' && len >= 3 && strncmp(line, "354", 3) == 0) {
		crash_point("smtpdata");
	} else if (dir == 'C' && len == 1 && line[0] == '.') {
		t->dot_sent = 1;
	}
	if (t->log)
		log_debug("smtp: %s %.*s", dir == 'C' ? "C:" : "S:",
			  (int)(len > 300 ? 300 : len), line);
}

static smtp_status
outbox_connect_once(const cfg_smtp *m, outbox_tracer *tr, smtp_session **s_r, char **err_r)
{
	smtp_options o;
	smtp_status rc;

	memset(&o, 0, sizeof(o));
	o.host = m->host;
	o.port = m->port;
	o.tls = m->tls == CFG_TLS_IMPLICIT ? SMTP_TLS_IMPLICIT :
		m->tls == CFG_TLS_STARTTLS ? SMTP_TLS_STARTTLS : SMTP_TLS_NONE;
	o.ca_file = m->ca_file;
	o.helo = m->helo;
	o.connect_timeout_ms = (int)(m->connect_timeout_s * 1000);
	o.command_timeout_ms = (int)(m->timeout_s * 1000);
	o.data_end_timeout_ms = (int)(m->timeout_s * 2000 < 600000 ? m->timeout_s * 2000 : 600000);
	o.allow_plaintext_auth = m->allow_plaintext_password;
	rc = smtp_connect(&o, s_r, err_r);
	if (rc != SMTP_OK)
		return rc;
	smtp_set_trace(*s_r, outbox_trace, tr);
	if (smtp_is_tls(*s_r))
		log_debug("outbox: %s", smtp_tls_describe(*s_r));
	return SMTP_OK;
}

/*
 * OAuth: the token before the connection; a cached token the relay refuses
 * is refreshed once and tried once more on a new connection.  *signin_r:
 * the token could not be had (logged here, with what to run).
 */
static smtp_status
outbox_connect_oauth(const cfg *c, store *st, outbox_tracer *tr, smtp_session **s_r,
		     const char **how_r, int *signin_r, char **err_r)
{
	const cfg_smtp *m = c->smtp;
	const char *mech = m->auth == CFG_SMTP_AUTH_XOAUTH2 ? "XOAUTH2" :
			   m->auth == CFG_SMTP_AUTH_OAUTHBEARER ? "OAUTHBEARER" : NULL;
	const char *used = NULL;
	smtp_status rc = SMTP_EUSAGE;
	char *token = NULL;
	int cached = 0;

	for (int attempt = 0; attempt < 2; attempt++) {
		oauth_status os = oauth_token_get(st, m->oauth, m->user, attempt > 0, &token,
						  &cached, err_r);

		if (os != OAUTH_OK) {
			run_oauth_failed(c->path, "smtp", (int)os, *err_r);
			*signin_r = 1;
			return SMTP_EUSAGE;
		}
		if ((rc = outbox_connect_once(m, tr, s_r, err_r)) != SMTP_OK)
			break;
		rc = smtp_auth_oauth(*s_r, mech, m->user, token, &used, err_r);
		*how_r = used;
		secret_wipe(&token);
		if (rc == SMTP_OK) {
			log_debug("outbox: signed in with %s as %s", used != NULL ? used : "-", m->user);
			break;
		}
		if (rc == SMTP_EAUTH && cached && attempt == 0) {
			char *e2 = NULL;

			log_info("outbox: the relay refused the cached access token (%s): getting a new"
				 " one and trying once more", *err_r != NULL ? *err_r : "refused");
			free(*err_r);
			*err_r = NULL;
			if (oauth_token_refused(st, m->oauth, m->user, &e2) < 0) {
				log_warn("outbox: cannot forget the refused token: %s", e2);
				free(e2);
			}
			smtp_close(s_r);
			continue;
		}
		break;
	}
	secret_wipe(&token);
	return rc;
}

static smtp_status
outbox_connect(const cfg *c, store *st, outbox_tracer *tr, smtp_session **s_r,
	       const char **how_r, int *signin_r, char **err_r)
{
	const cfg_smtp *m = c->smtp;
	smtp_status rc;
	char *pw = NULL;

	*signin_r = 0;
	*how_r = m->user == NULL ? "no AUTH" : m->auth == CFG_SMTP_AUTH_PLAIN ? "PLAIN" :
		 m->auth == CFG_SMTP_AUTH_LOGIN ? "LOGIN" : "a password";
	if (m->oauth != NULL)
		return outbox_connect_oauth(c, st, tr, s_r, how_r, signin_r, err_r);
	rc = outbox_connect_once(m, tr, s_r, err_r);
	if (rc != SMTP_OK || m->user == NULL)
		return rc;
	if (secret_get(&m->secret, &pw, err_r) < 0)
		return SMTP_EUSAGE;
	rc = smtp_auth(*s_r, m->auth == CFG_SMTP_AUTH_PLAIN ? "PLAIN" :
		       m->auth == CFG_SMTP_AUTH_LOGIN ? "LOGIN" : NULL, m->user, pw, err_r);
	secret_wipe(&pw);
	return rc;
}

int
outbox_flush(const cfg *c, store *st, int all, int trace, outbox_stats *stats)
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

			if (store_outbox_get(st, ids[i], outbox_copy, &it, &err) == 1)
				outbox_temp(c->smtp, st, &it, it.rcpts, e1, NULL, now, stats, 1);
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
		int got = store_outbox_get(st, ids[i], outbox_copy, &it, &err);

		if (got < 0) {
			log_error("outbox: %s", err);
			free(err);
			err = NULL;
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

static void
outbox_time(long long t, char *buf, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL || strftime(buf, n, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, n, "%lld", t);
}

typedef struct outbox_show_arg {
	FILE *f;
	int n;
} outbox_show_arg;

static int
outbox_show_row(void *arg, const store_outbox_row *row)
{
	outbox_show_arg *a = arg;
	char created[32], next[32];
	char *rcpts = g_strdup(row->rcpts);

	for (char *p = rcpts; *p; p++)
		if (*p == '\n')
			*p = ',';
	outbox_time(row->created, created, sizeof(created));
	outbox_time(row->next_attempt, next, sizeof(next));
	fprintf(a->f, "#%lld %s  account %s%s%s  queued %s  attempts %d%s%s\n", row->id,
		outbox_state_name(row->state), row->account, row->uid != NULL ? " uid " : "",
		row->uid != NULL ? row->uid : "", created, row->attempts,
		row->state == OUTBOX_QUEUED ? "  next " : "", row->state == OUTBOX_QUEUED ? next : "");
	fprintf(a->f, "    <%s> -> %s  %zu bytes  <%s>\n", row->env_from, rcpts, row->len,
		row->message_id != NULL ? row->message_id : "");
	if (row->last_error != NULL && row->last_error[0] != '\0')
		fprintf(a->f, "    reason: %s\n", row->last_error);
	if (row->unknown_outcomes > 0)
		fprintf(a->f, "    outcome unknown after end of data %d time(s): the relay may"
			" deliver it twice (RFC 1047)\n", row->unknown_outcomes);
	if (row->outcomes != NULL && row->outcomes[0] != '\0') {
		gchar **lines = g_strsplit(row->outcomes, "\n", -1);

		for (gchar **l = lines; *l != NULL; l++)
			if (**l != '\0')
				fprintf(a->f, "    %s\n", *l);
		g_strfreev(lines);
	}
	g_free(rcpts);
	a->n++;
	return 0;
}

int
outbox_show(store *st, FILE *f, char **err_r)
{
	outbox_show_arg a = { f, 0 };

	if (store_outbox_list(st, (1U << OUTBOX_QUEUED) | (1U << OUTBOX_DEAD), outbox_show_row, &a,
			      err_r) < 0)
		return -1;
	if (a.n == 0)
		fprintf(f, "outbox: nothing queued, nothing dead\n");
	return a.n;
}

int
outbox_check_login(const cfg *c, store *st, int trace, FILE *out)
{
	outbox_tracer tracer = { 0, 0 };
	smtp_session *s = NULL;
	const char *how = NULL;
	char *err = NULL;
	int signin = 0, rc = 0;

	tracer.log = trace;
	if (outbox_connect(c, st, &tracer, &s, &how, &signin, &err) != SMTP_OK) {
		if (!signin)
			log_error("smtp: relay %s:%s: %s", c->smtp->host, c->smtp->port,
				  err != NULL ? err : "login failed");
		fprintf(out, "smtp relay %s:%s: login FAILED (see the log above)\n", c->smtp->host,
			c->smtp->port);
		rc = -1;
	} else {
		fprintf(out, "smtp relay %s:%s, %s, signed in with %s%s%s; nothing sent\n",
			c->smtp->host, c->smtp->port, smtp_is_tls(s) ? smtp_tls_describe(s) : "no TLS",
			how != NULL ? how : "-", c->smtp->user != NULL ? " as " : "",
			c->smtp->user != NULL ? c->smtp->user : "");
		if (smtp_quit(s, &err) != SMTP_OK)
			log_debug("smtp: QUIT: %s", err != NULL ? err : "failed");
	}
	free(err);
	smtp_close(&s);
	return rc;
}

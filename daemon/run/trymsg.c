/* mailmill - ISC licence, see LICENSE */
/*
 * --test: what a pipeline would do with one message, told stage by stage.
 * The run context (api_batch) is the account run's, so the plugins see
 * what they see in a run: the store (read-only unless --commit), the keys
 * staged by this message; a hook on the batch hands over their log lines,
 * and one on the pipeline reports each stage as it returns.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>
#include <glib.h>
#include "daemon/run/trymsg.h"
#include "daemon/run/api.h"
#include "daemon/run/message.h"
#include "daemon/run/pipeline.h"
#include "daemon/core/log.h"
#include "daemon/core/privs.h"
#include "daemon/core/statelock.h"
#include "daemon/store/store.h"
#include "proto/err.h"

/* The largest message read: a mailbox export's, not a mailbox's. */
#define TRYMSG_MAX (256U * 1024 * 1024)

typedef struct trymsg {
	FILE *out;
	GPtrArray *before;     /* the header before the stage, "name: value" (g_free) */
	GString *notes;        /* what the stage logged, one line each */
} trymsg;

/* The message in path ("-": stdin), line ends as a POP3 fetch gives them
 * (LF).  0 and *data_r (g_string_free), or -1 and *err_r (free). */
static int
trymsg_read(const char *path, GString **data_r, char **err_r)
{
	int is_stdin = strcmp(path, "-") == 0;
	FILE *f = is_stdin ? stdin : fopen(path, "rb");
	GString *d;
	char chunk[65536];
	size_t n, i, j;

	if (f == NULL) {
		*err_r = err_fmt("%s: %s", path, strerror(errno));
		return -1;
	}
	d = g_string_sized_new(sizeof chunk);
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (d->len + n > TRYMSG_MAX) {
			*err_r = err_fmt("%s: larger than %u bytes", path, TRYMSG_MAX);
			break;
		}
		g_string_append_len(d, chunk, (gssize)n);
	}
	if (*err_r == NULL && ferror(f))
		*err_r = err_fmt("%s: %s", is_stdin ? "standard input" : path, strerror(errno));
	if (!is_stdin)
		fclose(f);
	if (*err_r == NULL && d->len == 0)
		*err_r = err_fmt("%s: empty", is_stdin ? "standard input" : path);
	if (*err_r != NULL) {
		g_string_free(d, TRUE);
		return -1;
	}
	for (i = j = 0; i < d->len; i++)
		if (!(d->str[i] == '\r' && i + 1 < d->len && d->str[i + 1] == '\n'))
			d->str[j++] = d->str[i];
	g_string_truncate(d, j);
	*data_r = d;
	return 0;
}

static int
trymsg_field(const char *name, const char *value, void *arg)
{
	g_ptr_array_add(arg, g_strdup_printf("%s: %s", name, value));
	return 0;
}

static GPtrArray *
trymsg_headers(mm_msg *msg)
{
	GPtrArray *h = g_ptr_array_new_with_free_func(g_free);

	mm_msg_headers(msg, trymsg_field, h);
	return h;
}

static void
trymsg_note(void *arg, const char *stage, mm_log_level level, const char *text)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	trymsg *t = arg;

	(void)stage;
	if (level <= MM_LOG_INFO)
		g_string_append_printf(t->notes, "  %s: %s\n", names[level], text);
}

/* After each stage: its verdict, what it logged, the header fields it added. */
static void
trymsg_stage(void *arg, const char *stage, mm_msg *msg, mm_verdict v)
{
	trymsg *t = arg;
	GPtrArray *after = trymsg_headers(msg);

	fprintf(t->out, "stage %s: %s", stage, mm_verdict_name(v));
	if (v == MM_PASS && msg->goto_stage != NULL)
		fprintf(t->out, " (on to stage %s)", msg->goto_stage);
	fprintf(t->out, "\n%s", t->notes->str);
	g_string_truncate(t->notes, 0);
	for (guint i = 0; i < after->len; i++) {
		const char *h = g_ptr_array_index(after, i);
		guint j;

		/* Each field of before matches one of after at most. */
		if (g_ptr_array_find_with_equal_func(t->before, h, g_str_equal, &j))
			g_ptr_array_remove_index(t->before, j);
		else
			fprintf(t->out, "  header added: %s\n", h);
	}
	g_ptr_array_unref(t->before);
	t->before = after;
}

/* Every mail in full, then the plugins' state, as staged. */
static void
trymsg_effects(FILE *out, const GPtrArray *effects, int commit)
{
	guint n = 0, k = 0;

	for (guint i = 0; effects != NULL && i < effects->len; i++)
		n += !((const api_effect *)g_ptr_array_index(effects, i))->is_kv;
	for (guint i = 0; effects != NULL && i < effects->len; i++) {
		const api_effect *e = g_ptr_array_index(effects, i);
		char *to;

		if (e->is_kv)
			continue;
		to = g_strdelimit(g_strdup(e->rcpts), "\n", ',');
		fprintf(out, "%s mail %u of %u (stage %s): from <%s> to %s\n",
			commit ? "queued" : "would queue", ++k, n, e->stage, e->env_from, to);
		g_free(to);
		fputs("-----\n", out);
		fwrite(e->data, 1, e->len, out);
		if (e->len > 0 && e->data[e->len - 1] != '\n')
			fputc('\n', out);
		fputs("-----\n", out);
	}
	if (n == 0)
		fprintf(out, "no mail %s\n", commit ? "queued" : "would be queued");
	for (guint i = 0; effects != NULL && i < effects->len; i++) {
		const api_effect *e = g_ptr_array_index(effects, i);

		if (e->is_kv)
			fprintf(out, "state (stage %s): %s%s%s = %s\n", e->stage,
				e->ns != NULL ? e->ns : "", e->ns != NULL ? " " : "", e->key, e->value);
	}
}

/* --commit: what a run does for a batch of one.  0, or -1 and *err_r (free). */
static int
trymsg_commit(store *st, api_batch *b, pipeline *pl, const store_record *rec,
	      GPtrArray *effects, char **err_r)
{
	if (pipeline_sync(pl) < 0) {
		*err_r = strdup("a stage could not make its work durable");
		return -1;
	}
	if (store_begin(st, err_r) < 0)
		return -1;
	api_batch_add(b, effects);
	if (store_ledger_put(st, rec, err_r) < 0 || api_batch_commit(b, effects, err_r) < 0 ||
	    store_commit(st, err_r) < 0) {
		store_rollback(st);
		api_batch_clear(b);
		return -1;
	}
	api_batch_clear(b);
	return 0;
}

static const char *
trymsg_meaning(const cfg_account *a, mm_verdict v)
{
	switch (v) {
	case MM_DONE:
		return a->keep ? "handled; left on the server (keep = true)" :
			"handled; deleted from the server";
	case MM_KEEP:
		return "handled; left on the server, never processed again";
	case MM_DEFER:
		return "left on the server and tried again on the next run; nothing of it is committed";
	default:
		return "a failed attempt (quarantined after max_attempts); nothing of it is committed";
	}
}

/* The account --test runs: the one named, else the only one; NULL: usage. */
static const cfg_account *
trymsg_account(const cfg *c, char **only, int n_only)
{
	if (n_only > 1) {
		fprintf(stderr, "mailmilld: --test takes one --account\n");
		return NULL;
	}
	if (n_only == 1)
		return cfg_find_account(c, only[0]);
	if (c->n_accounts == 1)
		return &c->accounts[0];
	fprintf(stderr, "mailmilld: --test: %s has %zu accounts: say which with --account NAME\n",
		c->path, c->n_accounts);
	return NULL;
}

/* Run the message through; returns the exit status.  st may be NULL in a
 * test before the first run (nothing decided yet). */
static int
trymsg_process(trymsg *t, const cfg_account *a, pipeline *pl, store *st, const GString *data,
	       int commit)
{
	api_batch *b = api_batch_new(st);
	gchar *hex = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)data->str,
						 data->len);
	char *uid = g_strdup_printf("sha256:%.63s", hex), *mid = NULL, *err = NULL;
	const char *stage = NULL;
	long long date = (long long)time(NULL);
	mm_msg msg;
	mm_verdict v;
	int rc;

	g_free(hex);
	if (commit) {
		/* Fed twice (a mailbox export again): done once. */
		ledger_state known = LEDGER_NEW;

		if (store_ledger_get(st, a->name, uid, &known, NULL, &err) < 0 || known != LEDGER_NEW) {
			if (err != NULL)
				log_error("%s: cannot read the journal: %s", a->name, err);
			else
				fprintf(t->out, "account %s: uid %s was processed before (%s): nothing"
					" done\n", a->name, uid, ledger_state_name(known));
			rc = err != NULL ? EX_TEMPFAIL : EX_OK;
			free(err);
			g_free(uid);
			api_batch_free(&b);
			return rc;
		}
	}
	api_batch_notes(b, trymsg_note, t);
	pipeline_watch(pl, trymsg_stage, t);
	message_head(data->str, data->len, &mid, &date);
	api_msg_init(&msg, b, data->str, data->len, uid, a->name, date);
	fprintf(t->out, "account %s: message <%s>, %zu bytes, uid %s\n", a->name,
		mid != NULL ? mid : "", data->len, uid);
	if (a->max_size != 0 && data->len > a->max_size)
		fprintf(t->out, "note: over max_size (%llu bytes): a run would leave it on the server"
			" unfetched\n", a->max_size);
	t->before = trymsg_headers(&msg);
	v = pipeline_run(pl, &msg, &stage);
	api_msg_release(&msg);
	if (v == MM_PASS)
		v = a->end == CFG_END_DONE ? MM_DONE : a->end == CFG_END_DEFER ? MM_DEFER : MM_KEEP;
	fprintf(t->out, "verdict: %s (%s%s): %s\n", mm_verdict_name(v), stage != NULL ? "stage " : "",
		stage != NULL ? stage : "pipeline_end", trymsg_meaning(a, v));
	commit = commit && (v == MM_DONE || v == MM_KEEP);
	trymsg_effects(t->out, msg.effects, commit);
	rc = v == MM_DONE || v == MM_KEEP ? EX_OK : EX_TEMPFAIL;
	if (commit) {
		store_record rec = {
			.account = a->name, .uid = uid, .message_id = mid, .size = data->len,
			.stage = stage, .verdict = mm_verdict_name(v),
			.state = v == MM_DONE && !a->keep ? LEDGER_DELETE : LEDGER_KEEP,
		};

		if (msg.mime != NULL && g_mime_message_get_message_id(msg.mime) != NULL)
			rec.message_id = g_mime_message_get_message_id(msg.mime);
		if (trymsg_commit(st, b, pl, &rec, msg.effects, &err) < 0) {
			log_error("%s: %s: not committed: %s", a->name, uid, err != NULL ? err : "error");
			free(err);
			rc = EX_TEMPFAIL;
		} else {
			fprintf(t->out, "committed\n");
		}
	} else {
		fprintf(t->out, "nothing committed%s\n", v == MM_DONE || v == MM_KEEP ?
			" (a test: --commit runs it for real)" : "");
	}
	if (msg.mime != NULL)
		g_object_unref(msg.mime);
	api_effects_free(&msg.effects);
	api_batch_free(&b);
	g_free(mid);
	g_free(uid);
	return rc;
}

/* What --test does once the message is read: as the invoker, or for
 * --commit as `user` (privs_run_as), so that what the stages create is
 * the workers' as in a run. */
typedef struct trymsg_job {
	const cfg *c;
	const cfg_account *a;
	const GString *data;
	int commit;
	FILE *out;
} trymsg_job;

static int
trymsg_job_run(void *arg)
{
	const trymsg_job *j = arg;
	trymsg t = { .out = j->out };
	pipeline *pl = NULL;
	store *st = NULL;
	char *err = NULL;
	int rc;

	if (pipeline_build(j->c, j->a, !j->commit, &pl, &err) < 0) {
		fprintf(stderr, "mailmilld: configuration error:\n%s\n", err);
		free(err);
		return EX_CONFIG;
	}
	if (store_open_cfg(j->c, !j->commit, &st, &err) < 0) {
		log_error("cannot %s: %s", j->commit ? "commit" : "open the store", err);
		free(err);
		pipeline_free(&pl);
		return EX_TEMPFAIL;
	}
	t.notes = g_string_new(NULL);
	rc = trymsg_process(&t, j->a, pl, st, j->data, j->commit);
	g_string_free(t.notes, TRUE);
	if (t.before != NULL)
		g_ptr_array_unref(t.before);
	store_close(&st);
	pipeline_free(&pl);
	return rc;
}

static void
trymsg_drop_error(const char *err)
{
	log_error("--test --commit: %s", err);
}

/* --commit as root with `user`: the state is made and handed over as the
 * daemon and --once do (store created, chowned, checked), then the run is
 * the user's.  0; or the exit status (as --once's) and *err_r (free). */
static int
trymsg_prepare_state(const cfg *c, char **err_r)
{
	store *st = NULL;

	if (store_open_cfg(c, 0, &st, err_r) < 0)
		return EX_TEMPFAIL;
	store_close(&st);
	return privs_chown_state(c, err_r) < 0 || privs_check_access(c, err_r) < 0 ? EX_CONFIG : 0;
}

int
trymsg_main(const cfg *c, char **only, int n_only, const char *path, int commit, FILE *out)
{
	trymsg_job j = { .c = c, .a = trymsg_account(c, only, n_only), .commit = commit,
			 .out = out };
	GString *data = NULL;
	char *err = NULL;
	int rc, lock_fd = -1;

	if (j.a == NULL)
		return EX_USAGE;
	if (trymsg_read(path, &data, &err) < 0) {
		fprintf(stderr, "mailmilld: --test: %s\n", err);
		free(err);
		return EX_NOINPUT;
	}
	j.data = data;
	if (!commit) {
		rc = trymsg_job_run(&j);
		g_string_free(data, TRUE);
		return rc;
	}
	/* --commit writes the store, so not next to a daemon or a run; the
	 * lock stays with this process while the run (perhaps a child) works. */
	if (statelock_take(c->state_dir, &lock_fd, &err) < 0)
		rc = EX_TEMPFAIL;
	else if ((rc = trymsg_prepare_state(c, &err)) == 0 &&
		 (rc = privs_run_as(c->user, trymsg_job_run, trymsg_drop_error, &j, &err)) < 0)
		rc = EX_TEMPFAIL;
	if (err != NULL) {
		log_error("cannot commit: %s", err);
		free(err);
	}
	if (lock_fd >= 0)
		close(lock_fd);
	g_string_free(data, TRUE);
	return rc;
}

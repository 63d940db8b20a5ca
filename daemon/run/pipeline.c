/* mailmill - ISC licence, see LICENSE */
#include <stdlib.h>
#include <string.h>
#include <glib.h>
#include "daemon/run/pipeline.h"
#include "daemon/core/plugin.h"
#include "daemon/core/log.h"
#include "daemon/core/crash.h"
#include "proto/err.h"

typedef struct pipeline_stage {
	const struct mailmill_plugin *plugin;
	void *state;
	int inited;
	mm_ctx ctx;
} pipeline_stage;

struct pipeline {
	pipeline_stage *stages;
	size_t n;
	const char **names;    /* the stages' names, for mm_ctx_has_stage */
	pipeline_watch_fn *watch;
	void *watch_arg;
};

void
pipeline_watch(pipeline *pl, pipeline_watch_fn *fn, void *arg)
{
	pl->watch = fn;
	pl->watch_arg = arg;
}

const char *
mm_verdict_name(mm_verdict v)
{
	switch (v) {
	case MM_PASS: return "pass";
	case MM_DONE: return "done";
	case MM_KEEP: return "keep";
	case MM_DEFER: return "defer";
	case MM_FAIL: return "fail";
	}
	return "invalid";
}

int
pipeline_build(const cfg *c, const cfg_account *a, int dry_run, pipeline **pl_r, char **err_r)
{
	pipeline *pl = g_new0(pipeline, 1);
	size_t i;

	pl->stages = g_new0(pipeline_stage, a->n_stages);
	pl->n = a->n_stages;
	pl->names = g_new0(const char *, a->n_stages + 1);
	for (i = 0; i < a->n_stages; i++)
		pl->names[i] = a->stages[i].name;
	for (i = 0; i < a->n_stages; i++) {
		const cfg_stage *cs = &a->stages[i];
		pipeline_stage *st = &pl->stages[i];
		char *err = NULL;

		st->ctx.account = a->name;
		st->ctx.stage = cs->name;
		st->ctx.dry_run = dry_run;
		st->ctx.stage_names = pl->names;
		st->ctx.n_stages = a->n_stages;
		st->ctx.index = i;
		if (plugin_load(c->plugin_dir, cs->plugin, &st->plugin, &err) < 0) {
			*err_r = err_fmt("%s:%d: account %s, stage %s: %s", cs->file, cs->line,
					 a->name, cs->name, err);
			free(err);
			goto fail;
		}
		if (st->plugin->init(&st->ctx, cs->settings, &st->state) < 0) {
			/* A plugin that said why (mm_ctx_error, with file:line) is
			 * not followed by a second line saying that it refused. */
			if (st->ctx.errors > 0) {
				*err_r = NULL;
				goto fail;
			}
			*err_r = err_fmt("%s:%d: account %s, stage %s: plugin %s refused its settings",
					 cs->file, cs->line, a->name, cs->name, st->plugin->name);
			goto fail;
		}
		st->inited = 1;
	}
	*pl_r = pl;
	return 0;
fail:
	pipeline_free(&pl);
	return -1;
}

void
pipeline_free(pipeline **plp)
{
	pipeline *pl = *plp;
	size_t i;

	if (pl == NULL)
		return;
	for (i = 0; i < pl->n; i++)
		if (pl->stages[i].inited && pl->stages[i].plugin->fini != NULL)
			pl->stages[i].plugin->fini(pl->stages[i].state);
	g_free(pl->stages);
	g_free(pl->names);
	g_free(pl);
	*plp = NULL;
}

/* Index of the first stage named `name` after stage i, or 0 if none (0 is
 * never after anything). */
static size_t
pipeline_find_after(const pipeline *pl, size_t i, const char *name)
{
	for (size_t j = i + 1; j < pl->n; j++)
		if (pl->names[j] != NULL && strcmp(pl->names[j], name) == 0)
			return j;
	return 0;
}

mm_verdict
pipeline_run(pipeline *pl, mm_msg *msg, const char **stage_r)
{
	size_t i;

	for (i = 0; i < pl->n; i++) {
		pipeline_stage *st = &pl->stages[i];
		mm_verdict v;
		char *jump;

		g_free(msg->goto_stage);
		msg->goto_stage = NULL;
		st->ctx.msg = msg;
		v = st->plugin->process(st->state, msg, &st->ctx);
		st->ctx.msg = NULL;
		/* The stage has acted (a ticket opened, a reply queued) but the
		 * message's verdict is not recorded yet. */
		crash_point("plugin");
		if (pl->watch != NULL)
			pl->watch(pl->watch_arg, st->ctx.stage, msg, v);
		jump = msg->goto_stage;
		msg->goto_stage = NULL;
		if (v == MM_PASS && jump != NULL) {
			size_t j = pipeline_find_after(pl, i, jump);

			if (j == 0) {
				log_error("%s: stage %s jumps to \"%s\", which is not a later stage:"
					  " deferring", st->ctx.account, st->ctx.stage, jump);
				g_free(jump);
				*stage_r = st->ctx.stage;
				return MM_DEFER;
			}
			log_debug("%s: stage %s: on to stage %s", st->ctx.account, st->ctx.stage,
				  jump);
			i = j - 1;   /* the loop's i++ lands on j */
		}
		g_free(jump);
		if (v == MM_PASS)
			continue;
		if (v != MM_DONE && v != MM_KEEP && v != MM_DEFER && v != MM_FAIL) {
			log_error("%s: stage %s returned an invalid verdict %d: deferring",
				  st->ctx.account, st->ctx.stage, (int)v);
			v = MM_DEFER;
		}
		*stage_r = st->ctx.stage;
		return v;
	}
	*stage_r = NULL;
	return MM_PASS;
}

int
pipeline_sync(pipeline *pl)
{
	int rc = 0;
	size_t i;

	for (i = 0; i < pl->n; i++) {
		pipeline_stage *st = &pl->stages[i];

		if (st->plugin->sync != NULL && st->plugin->sync(st->state, &st->ctx) < 0)
			rc = -1;
	}
	return rc;
}

/* mailmill - ISC licence, see LICENSE */
/*
 * SIGHUP: read the configuration file again.  Everything is checked before
 * anything changes (the file, the state directory, every selected account's
 * pipeline, as the workers' user like at the start): a broken file leaves the old configuration running and the log
 * says why, with file:line.  Running workers keep their copy of the old one;
 * new ones are forked from a new spawner that read the new one.
 */
#include <config.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/sched/sched_int.h"
#include "daemon/core/log.h"
#include "daemon/run/pipeline.h"
#include "daemon/core/plugin.h"
#include "daemon/core/privs.h"

#define RELOAD_FAILED "reload failed, still running the previous configuration"

typedef struct reload_check {
	const sched *s;
	const cfg *c;
} reload_check;

/* Load and check every selected account's pipeline, then let them go:
 * 0, or 1 after logging why one was refused. */
static int
reload_build(void *p)
{
	const reload_check *a = p;
	char *err = NULL;
	size_t k;
	int rc = 0;

	for (k = 0; k < a->c->n_accounts && rc == 0; k++) {
		pipeline *pl = NULL;

		if (!sched_selected(a->s, a->c->accounts[k].name))
			continue;
		if (pipeline_build(a->c, &a->c->accounts[k], 0, &pl, &err) < 0) {
			log_error(RELOAD_FAILED ":%s%s", err != NULL ? "\n" : " the error above",
				  err != NULL ? err : "");
			free(err);
			rc = 1;
		}
		pipeline_free(&pl);
	}
	/* Workers load their plugins themselves: a rebuilt plugin takes effect. */
	plugin_unload_all();
	return rc;
}

static void
reload_drop_error(const char *err)
{
	log_error(RELOAD_FAILED ": %s", err);
}

/* As the workers' user, like the start (daemon/main.c): 0, or -1 (logged). */
static int
reload_check_pipelines(const sched *s, const cfg *c)
{
	reload_check a = { s, c };
	char *err = NULL;
	int rc = privs_run_as(c->user, reload_build, reload_drop_error, &a, &err);

	if (rc < 0) {
		log_error(RELOAD_FAILED ": %s", err);
		free(err);
	}
	return rc == 0 ? 0 : -1;
}

/* The new configuration, or NULL (logged) if it cannot replace the old. */
static cfg *
reload_load(const sched *s)
{
	cfg *n = NULL;
	char *err = NULL;
	int i;

	if (cfg_load(s->o->config_path, &n, &err) < 0) {
		log_error("reload failed, still running the previous configuration:\n%s", err);
		free(err);
		return NULL;
	}
	if (strcmp(n->state_dir, s->c->state_dir) != 0) {
		log_error("reload failed, still running the previous configuration: %s: state_dir"
			  " changed (%s -> %s); that needs a restart", s->o->config_path,
			  s->c->state_dir, n->state_dir);
		cfg_free(&n);
		return NULL;
	}
	for (i = 0; i < s->o->n_only; i++) {
		if (cfg_find_account(n, s->o->only[i]) == NULL)
			log_warn("reload: %s no longer has account '%s'", s->o->config_path,
				 s->o->only[i]);
	}
	if (reload_check_pipelines(s, n) < 0) {
		cfg_free(&n);
		return NULL;
	}
	return n;
}

void
reload_config(sched *s)
{
	cfg *n;

	log_info("SIGHUP: reloading %s", s->o->config_path);
	if ((n = reload_load(s)) == NULL)
		return;
	cfg_free(&s->c);
	s->c = n;
	log_open(n->log_target, s->o->log_level >= 0 ? s->o->log_level : n->log_level);
	spawnctl_renew(s);   /* its workers run the new configuration */
	sched_sync_accounts(s);
	flushtimer_start(s);
	log_info("reloaded %s: %zu account(s), %d worker(s) at most", s->o->config_path,
		 n->n_accounts, n->workers);
	sched_try_start(s);
}

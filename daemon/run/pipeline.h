/* mailmill - ISC licence, see LICENSE */
#ifndef MM_PIPELINE_H
#define MM_PIPELINE_H
/*
 * An account's pipeline: its stages, each a loaded plugin with the state its
 * init returned.  Built (and so validated) before anything runs.
 */
#include <stddef.h>
#include "daemon/run/api.h"
#include "daemon/core/cfg.h"

typedef struct pipeline pipeline;

/*
 * Load the plugins of every stage and init them with their settings.
 * 0 and *pl_r (caller frees with pipeline_free), or -1 and *err_r (allocated),
 * or -1 and *err_r NULL when a plugin has logged its own file:line errors
 * (mm_ctx_error): nothing more to say.
 */
int pipeline_build(const cfg *c, const cfg_account *a, int dry_run, pipeline **pl_r,
		   char **err_r);
void pipeline_free(pipeline **pl);

/*
 * Run msg through the stages until one says DONE, KEEP, DEFER or FAIL; a
 * stage that passes after mm_msg_goto continues at the named later stage.  *stage_r:
 * the deciding stage's name (borrowed), NULL when every stage passed; the
 * verdict is then MM_PASS and the account's pipeline_end applies.
 */
mm_verdict pipeline_run(pipeline *pl, mm_msg *msg, const char **stage_r);
/*
 * --test: fn is called after each stage that processed a message, with the
 * stage's name (borrowed), the message and what the stage returned (before a
 * jump or an invalid verdict is handled).  fn NULL: none.
 */
typedef void pipeline_watch_fn(void *arg, const char *stage, mm_msg *msg, mm_verdict v);
void pipeline_watch(pipeline *pl, pipeline_watch_fn *fn, void *arg);
/* Call every stage's sync hook; -1 if any failed (all are still called). */
int pipeline_sync(pipeline *pl);
const char *mm_verdict_name(mm_verdict v);
#endif

/* mailmill - ISC licence, see LICENSE */
/*
 * A plugin whose init always fails, as one with a bad setting would: the
 * daemon must refuse to start (or --check-config must fail) with this
 * message at the stage's file:line, and never run a message through it.
 */
#include <mailmill/plugin.h>

static int
failinit_init(mm_ctx *ctx, const config_setting_t *settings, void **state)
{
	mm_ctx_error(ctx, settings, "failinit: refusing to start (test plugin)");
	return -1;
}

static mm_verdict
failinit_process(void *state, mm_msg *msg, mm_ctx *ctx)
{
	return MM_DONE;
}

const struct mailmill_plugin mailmill_plugin = {
	.abi = MAILMILL_PLUGIN_ABI,
	.name = "failinit",
	.version = "0",
	.init = failinit_init,
	.process = failinit_process,
};

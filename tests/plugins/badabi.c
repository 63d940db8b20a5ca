/* mailmill - ISC licence, see LICENSE */
/*
 * A plugin built for an ABI that does not exist: the loader must refuse it
 * at start, naming this file and both numbers, and never call its hooks.
 */
#include <mailmill/plugin.h>

static int
badabi_init(mm_ctx *ctx, const config_setting_t *settings, void **state)
{
	*state = NULL;
	return 0;
}

static mm_verdict
badabi_process(void *state, mm_msg *msg, mm_ctx *ctx)
{
	return MM_DONE; /* would delete mail if the loader wrongly ran it */
}

const struct mailmill_plugin mailmill_plugin = {
	.abi = MAILMILL_PLUGIN_ABI + 41,
	.name = "badabi",
	.version = "0",
	.init = badabi_init,
	.process = badabi_process,
};

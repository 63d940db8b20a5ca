/* mailmill - ISC licence, see LICENSE */
/* Reading a stage's settings: shared by the plugins built from this tree. */
#include <glib.h>
#include <mailmill/plugin.h>
#include "settings.h"

int
settings_str(mm_ctx *ctx, const config_setting_t *g, const char *key, char **out)
{
	const config_setting_t *s = config_setting_get_member(g, key);

	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_STRING || *config_setting_get_string(s) == '\0') {
		mm_ctx_error(ctx, s, "`%s` must be a non-empty string", key);
		return -1;
	}
	*out = g_strdup(config_setting_get_string(s));
	return 1;
}

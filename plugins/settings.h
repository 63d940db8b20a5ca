/* mailmill - ISC licence, see LICENSE */
#ifndef MM_PLUGIN_SETTINGS_H
#define MM_PLUGIN_SETTINGS_H
/* Reading a stage's settings, for the plugins built from this tree (each
 * links settings.c in; plugins still see only the public header). */
#include <mailmill/plugin.h>

/* A non-empty string setting: 1 and *out (g_strdup) if set, 0 if absent,
 * -1 (reported with mm_ctx_error at its file:line) if of another type. */
int settings_str(mm_ctx *ctx, const config_setting_t *g, const char *key, char **out);
#endif

/* mailmill - ISC licence, see LICENSE */
#ifndef MM_PLUGIN_LOADER_H
#define MM_PLUGIN_LOADER_H
/*
 * The plugin loader: dlopen(RTLD_NOW | RTLD_LOCAL), look up `mailmill_plugin`,
 * check the ABI number.  A library is loaded once per process however many
 * stages use it; plugin_unload_all() closes them all at exit.
 */
#include <mailmill/plugin.h>

/*
 * `name` is a plugin name looked up as plugin_dir/NAME.so, or a path when it
 * contains '/'.  0 and *desc_r (borrowed until plugin_unload_all), or -1 and
 * *err_r naming the file (allocated, caller frees).
 */
int plugin_load(const char *plugin_dir, const char *name, const struct mailmill_plugin **desc_r,
		char **err_r);
void plugin_unload_all(void);
#endif

/* mailmill - ISC licence, see LICENSE */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>
#include "daemon/core/plugin.h"
#include "daemon/core/trust.h"
#include "proto/err.h"

typedef struct plugin_lib {
	char *path;
	void *handle;
	const struct mailmill_plugin *desc;
	struct plugin_lib *next;
} plugin_lib;

static plugin_lib *plugin_libs;

/* Plugin names are plain words; anything else must be given as a path. */
static int
plugin_name_ok(const char *name)
{
	const char *p;

	if (*name == '\0' || *name == '.')
		return 0;
	for (p = name; *p != '\0'; p++)
		if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-' && *p != '.')
			return 0;
	return 1;
}

int
plugin_load(const char *plugin_dir, const char *name, const struct mailmill_plugin **desc_r,
	    char **err_r)
{
	const struct mailmill_plugin *desc;
	plugin_lib *lib;
	char *path;
	void *h;

	if (strchr(name, '/') != NULL)
		path = g_strdup(name);
	else if (!plugin_name_ok(name)) {
		*err_r = err_fmt("plugin name '%s' is not a plain name; give a path", name);
		return -1;
	} else
		path = g_strdup_printf("%s/%s.so", plugin_dir, name);

	for (lib = plugin_libs; lib != NULL; lib = lib->next) {
		if (strcmp(lib->path, path) == 0) {
			g_free(path);
			*desc_r = lib->desc;
			return 0;
		}
	}
	/* Code we run as root: nobody else's file, in nobody else's directory.
	 * A missing file is refused here, not left to dlopen: in a directory
	 * someone else can write, it could appear between the two. */
	if ((strchr(name, '/') == NULL &&
	     trust_check_dir(plugin_dir, "plugin_dir", err_r) < 0) ||
	    trust_check_path(path, "plugin", err_r) < 0) {
		g_free(path);
		return -1;
	}
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		*err_r = err_fmt("plugin %s: cannot load: %s", path, dlerror());
		g_free(path);
		return -1;
	}
	desc = dlsym(h, "mailmill_plugin");
	if (desc == NULL) {
		*err_r = err_fmt("plugin %s: no symbol 'mailmill_plugin': not a mailmill plugin",
				 path);
		goto fail;
	}
	if (desc->abi != MAILMILL_PLUGIN_ABI) {
		*err_r = err_fmt("plugin %s: built for plugin ABI %u, this mailmilld speaks ABI %u;"
				 " rebuild the plugin", path, desc->abi, MAILMILL_PLUGIN_ABI);
		goto fail;
	}
	if (desc->name == NULL || desc->init == NULL || desc->process == NULL) {
		*err_r = err_fmt("plugin %s: descriptor lacks name, init or process", path);
		goto fail;
	}
	lib = g_new0(plugin_lib, 1);
	lib->path = path;
	lib->handle = h;
	lib->desc = desc;
	lib->next = plugin_libs;
	plugin_libs = lib;
	*desc_r = desc;
	return 0;
fail:
	dlclose(h);
	g_free(path);
	return -1;
}

void
plugin_unload_all(void)
{
	while (plugin_libs != NULL) {
		plugin_lib *lib = plugin_libs;

		plugin_libs = lib->next;
		dlclose(lib->handle);
		g_free(lib->path);
		g_free(lib);
	}
}

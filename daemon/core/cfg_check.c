/* mailmill - ISC licence, see LICENSE */
/*
 * What cannot work although every setting is valid (cfg_check.h).  The core
 * knows the shipped plugins' names and the few of their settings that decide
 * whether a stage queues mail or writes files; a third-party plugin is not
 * judged here (its own init checks what it needs).
 */
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>

#include "daemon/core/cfg_check.h"

typedef struct cfg_check {
	GString *errors, *warnings;
	int n_errors;
	const char *user;       /* the worker user, for messages */
	const char *path;       /* the configuration, for settings with no file */
} cfg_check;

static void cfg_check_add(cfg_check *k, int error, const config_setting_t *s, const char *where,
			  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* One line "file:line: where: message" at setting s. */
static void
cfg_check_add(cfg_check *k, int error, const config_setting_t *s, const char *where,
	      const char *fmt, ...)
{
	GString *out = error ? k->errors : k->warnings;
	const char *file = config_setting_source_file(s);
	va_list ap;

	g_string_append_printf(out, "%s%s:%u: %s: ", out->len > 0 ? "\n" : "",
			       file != NULL ? file : k->path, config_setting_source_line(s), where);
	va_start(ap, fmt);
	g_string_append_vprintf(out, fmt, ap);
	va_end(ap);
	k->n_errors += error;
}

/* The plugin's name: "autoreply" for "autoreply" and "/x/autoreply.so". */
static char *
cfg_check_plugin_name(const char *plugin)
{
	const char *base = strrchr(plugin, '/') != NULL ? strrchr(plugin, '/') + 1 : plugin;
	size_t n = strlen(base);

	if (n > 3 && strcmp(base + n - 3, ".so") == 0)
		n -= 3;
	return g_strndup(base, n);
}

static int
cfg_check_bool(const config_setting_t *g, const char *key, int def)
{
	const config_setting_t *s = config_setting_get_member(g, key);

	return s != NULL && config_setting_type(s) == CONFIG_TYPE_BOOL ?
	       config_setting_get_bool(s) != 0 : def;
}

/* The setting that makes stage g queue mail, or NULL when it queues none. */
static const config_setting_t *
cfg_check_queues(const char *plugin, const config_setting_t *g)
{
	const config_setting_t *s = config_setting_get_member(g, "plugin");

	if (strcmp(plugin, "autoreply") == 0 || strcmp(plugin, "forward") == 0)
		return s;
	if (strcmp(plugin, "ticket") != 0)
		return NULL;
	if (cfg_check_bool(g, "acknowledge", 1))
		return config_setting_get_member(g, "acknowledge") != NULL ?
		       config_setting_get_member(g, "acknowledge") : s;
	s = config_setting_get_member(g, "notify");
	if (s != NULL && (config_setting_type(s) == CONFIG_TYPE_STRING ||
			  config_setting_length(s) > 0))
		return s;
	return NULL;
}

/* A CA file the worker must read: there, a regular file, readable. */
static void
cfg_check_ca(cfg_check *k, const config_setting_t *s, const char *where)
{
	const char *path;
	struct stat sb;

	if (s == NULL || config_setting_type(s) != CONFIG_TYPE_STRING)
		return;
	path = config_setting_get_string(s);
	if ((stat(path, &sb) < 0 || access(path, R_OK) < 0) && errno == ENOENT)
		cfg_check_add(k, 1, s, where, "'%s' %s does not exist: no TLS connection could "
			      "be verified", config_setting_name(s), path);
	else if (errno = 0, stat(path, &sb) < 0 || access(path, R_OK) < 0)
		cfg_check_add(k, 1, s, where, "'%s' %s: user \"%s\" cannot read it (%s)",
			      config_setting_name(s), path, k->user, strerror(errno));
	else if (!S_ISREG(sb.st_mode))
		cfg_check_add(k, 1, s, where, "'%s' %s is not a file", config_setting_name(s),
			      path);
}

/* A directory the worker writes into: writable if it is there, else its
 * nearest existing parent must let the worker create it. */
static void
cfg_check_dir(cfg_check *k, const config_setting_t *s, const char *where)
{
	const char *path;
	char *dir;
	struct stat sb;

	if (s == NULL || config_setting_type(s) != CONFIG_TYPE_STRING ||
	    config_setting_get_string(s)[0] != '/')
		return;
	path = config_setting_get_string(s);
	if (stat(path, &sb) == 0) {
		if (S_ISDIR(sb.st_mode) && access(path, W_OK | X_OK) < 0)
			cfg_check_add(k, 1, s, where, "'%s' %s: user \"%s\" cannot write it (%s)",
				      config_setting_name(s), path, k->user, strerror(errno));
		return;
	}
	dir = g_path_get_dirname(path);
	while (stat(dir, &sb) < 0 && strcmp(dir, "/") != 0) {
		char *up = g_path_get_dirname(dir);

		g_free(dir);
		dir = up;
	}
	if (S_ISDIR(sb.st_mode) && access(dir, W_OK | X_OK) < 0)
		cfg_check_add(k, 1, s, where, "'%s' %s cannot be created: user \"%s\" cannot "
			      "write %s (%s)", config_setting_name(s), path, k->user, dir,
			      strerror(errno));
	g_free(dir);
}

/* http:// carries every ticket (mail text, attachments) in the clear. */
static void
cfg_check_webhook(cfg_check *k, const config_setting_t *s, const char *where)
{
	const char *url, *host;
	size_t n;

	if (s == NULL || config_setting_type(s) != CONFIG_TYPE_STRING)
		return;
	url = config_setting_get_string(s);
	if (g_ascii_strncasecmp(url, "http://", 7) != 0)
		return;
	host = url + 7;
	if (strchr(host, '@') != NULL && strchr(host, '@') < host + strcspn(host, "/"))
		host = strchr(host, '@') + 1;
	n = host[0] == '[' ? strcspn(host, "]") + 1 : strcspn(host, ":/?#");
	if ((n == 9 && g_ascii_strncasecmp(host, "localhost", 9) == 0) ||
	    (n >= 4 && strncmp(host, "127.", 4) == 0) || (n == 5 && strncmp(host, "[::1]", 5) == 0))
		return;
	cfg_check_add(k, 0, s, where, "'%s' %s is plain http: every ticket (the mail's text "
		      "and attachments) crosses the network unencrypted; use https://",
		      config_setting_name(s), url);
}

static void
cfg_check_stage(cfg_check *k, const cfg *c, const cfg_account *a, const cfg_stage *st)
{
	char *plugin = cfg_check_plugin_name(st->plugin);
	char *where = g_strdup_printf("account %s, stage %s", a->name, st->name);
	const config_setting_t *q = cfg_check_queues(plugin, st->settings);

	if (q != NULL && c->smtp == NULL)
		cfg_check_add(k, 1, q, where, "%s queues mail for the smtp relay, but there is no "
			      "'smtp' group: that mail would wait in the outbox for ever; "
			      "add smtp = { host = \"...\"; } (mailmill.conf(5))",
			      strcmp(plugin, "ticket") == 0 ? "the ticket's acknowledgement or "
			      "notification" : plugin);
	if (strcmp(plugin, "ticket") == 0) {
		cfg_check_dir(k, config_setting_get_member(st->settings, "json_dir"), where);
		cfg_check_ca(k, config_setting_get_member(st->settings, "webhook_ca_file"), where);
		cfg_check_webhook(k, config_setting_get_member(st->settings, "webhook_url"), where);
	}
	g_free(where);
	g_free(plugin);
}

/* A server group's CA files: its own and its oauth2 group's. */
static void
cfg_check_server(cfg_check *k, const config_setting_t *g, const char *where)
{
	const config_setting_t *o = config_setting_get_member(g, "oauth2");

	cfg_check_ca(k, config_setting_get_member(g, "ca_file"), where);
	if (o != NULL && config_setting_type(o) == CONFIG_TYPE_GROUP)
		cfg_check_ca(k, config_setting_get_member(o, "ca_file"), where);
}

int
cfg_check_setup(const cfg *c, char **errors_r, char **warnings_r)
{
	const config_setting_t *accounts = config_lookup(&c->lc, "accounts");
	const config_setting_t *smtp = config_lookup(&c->lc, "smtp");
	struct passwd *pw = getpwuid(geteuid());
	cfg_check k = { g_string_new(NULL), g_string_new(NULL), 0, NULL, c->path };

	k.user = pw != NULL ? pw->pw_name : "?";
	for (size_t i = 0; i < c->n_accounts; i++) {
		const cfg_account *a = &c->accounts[i];
		char *where = g_strdup_printf("account \"%s\"", a->name);

		/* cfg_load refused a list with anything but groups: the same order. */
		if (accounts != NULL)
			cfg_check_server(&k, config_setting_get_elem(accounts, (unsigned)i), where);
		for (size_t j = 0; j < a->n_stages; j++)
			cfg_check_stage(&k, c, a, &a->stages[j]);
		g_free(where);
	}
	if (smtp != NULL)
		cfg_check_server(&k, smtp, "smtp");
	*errors_r = g_string_free(k.errors, k.errors->len == 0);
	*warnings_r = g_string_free(k.warnings, k.warnings->len == 0);
	return k.n_errors;
}

/* mailmill - ISC licence, see LICENSE */
/*
 * Loading the configuration: the file's trust and @includes, libconfig's
 * parse, then the top level read against its table (cfg_schema.c) by the
 * walker (cfg_value.c); accounts and the relay in cfg_account.c.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "daemon/core/cfg_include.h"
#include "daemon/core/cfg_int.h"
#include "daemon/core/log.h"
#include "daemon/core/trust.h"
#include "proto/err.h"

_Static_assert(LOG_LVL_ERROR == 0 && LOG_LVL_DEBUG == 3, "log.level's names are the levels");

static void
cfg_top(cfg_errs *e, cfg *c)
{
	const config_setting_t *root = config_root_setting(&c->lc);
	cfg_walk w = { .e = e, .ctx = "", .obj = c };

	cfg_walk_group(&w, root, cfg_keys_top);
	cfg_store_check(e, c);
	if (config_setting_get_member(root, "accounts") == NULL)
		cfg_err(e, NULL, "", "no 'accounts' defined: nothing to do");
}

/* The defaults that depend on other settings. */
static int
cfg_defaults(cfg *c)
{
	const char *name = "/mailmilld.pid";

	if (c->pid_file == NULL) {
		size_t n = strlen(c->state_dir) + strlen(name) + 1;

		if ((c->pid_file = malloc(n)) == NULL)
			return -1;
		snprintf(c->pid_file, n, "%s%s", c->state_dir, name);
	}
	return 0;
}

/* @include "x" in the file is relative to the file's directory, not the cwd. */
static int
cfg_set_include_dir(cfg *c)
{
	const char *slash = strrchr(c->path, '/');
	char *dir;

	if (slash == NULL)
		return 0;
	dir = strndup(c->path, slash == c->path ? 1 : (size_t)(slash - c->path));
	if (dir == NULL)
		return -1;
	config_set_include_dir(&c->lc, dir);
	free(dir);
	return 0;
}

int
cfg_load(const char *path, cfg **cfg_r, char **err_r)
{
	cfg_errs e = { .path = path };
	char *why = NULL;
	struct stat sb;
	FILE *fp;
	cfg *c;

	*cfg_r = NULL;
	*err_r = NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL || (c->path = strdup(path)) == NULL) {
		free(c);
		*err_r = strdup("out of memory");
		return -1;
	}
	config_init(&c->lc);
	if (cfg_walk_defaults(cfg_keys_top, c) < 0 || cfg_set_include_dir(c) < 0) {
		cfg_free(&c);
		*err_r = strdup("out of memory");
		return -1;
	}

	/* Nobody else's files, and only a regular one (before opening: a FIFO
	 * would block, a directory ends libconfig's scanner with exit()). */
	if (stat(path, &sb) < 0) {
		cfg_err(&e, NULL, "", "cannot read: %s", strerror(errno));
		goto fail;
	}
	if (trust_check_path(path, "configuration file", &why) < 0) {
		cfg_err_at(&e, NULL, 0, "%s", why != NULL ? why : "out of memory");
		free(why);
		goto fail;
	}
	/* libconfig reports an unreadable file without the reason: say it here. */
	fp = fopen(path, "r");
	if (fp == NULL) {
		cfg_err(&e, NULL, "", "cannot read: %s", strerror(errno));
		goto fail;
	}
	fclose(fp);
	/* No @include that libconfig's scanner would exit() on: it never sees
	 * one that is not a readable regular file. */
	if (cfginclude_check(path, config_get_include_dir(&c->lc), &why) < 0) {
		cfg_err_at(&e, NULL, 0, "%s", why != NULL ? why : "out of memory");
		free(why);
		goto fail;
	}
	if (config_read_file(&c->lc, path) != CONFIG_TRUE) {
		const char *file = config_error_file(&c->lc);
		cfg_err_at(&e, file ? file : path, config_error_line(&c->lc), "%s",
			   config_error_text(&c->lc) ? config_error_text(&c->lc) : "cannot read");
		goto fail;
	}
	e.incdir = config_get_include_dir(&c->lc);
	cfg_top(&e, c);
	if (e.n == 0 && cfg_defaults(c) < 0)
		cfg_err(&e, NULL, "", "out of memory");
	if (e.n > 0)
		goto fail;
	*cfg_r = c;
	return 0;
fail:
	cfg_free(&c);
	if (e.buf != NULL && e.len > 0 && e.buf[e.len - 1] == '\n')
		e.buf[--e.len] = '\0';
	*err_r = e.buf != NULL ? e.buf : strdup("out of memory");
	return -1;
}

void
cfg_free(cfg **cp)
{
	cfg *c;

	if (cp == NULL || (c = *cp) == NULL)
		return;
	for (size_t i = 0; i < c->n_accounts; i++)
		cfg_account_free(&c->accounts[i]);
	free(c->accounts);
	cfg_smtp_free(&c->smtp);
	free(c->path);
	cfg_walk_free(cfg_keys_top, c);
	config_destroy(&c->lc);
	free(c);
	*cp = NULL;
}

const cfg_account *
cfg_find_account(const cfg *c, const char *name)
{
	for (size_t i = 0; i < c->n_accounts; i++) {
		if (c->accounts[i].name != NULL && strcmp(c->accounts[i].name, name) == 0)
			return &c->accounts[i];
	}
	return NULL;
}

int
cfg_listen_addr(const char *addr, struct sockaddr_storage *sa_r, char **err_r)
{
	const char *colon = strrchr(addr, ':'), *h = addr;
	struct addrinfo hints, *ai = NULL;
	char host[64];
	size_t hl;
	int e;

	if (colon == NULL || colon == addr || colon[1] == '\0') {
		*err_r = err_fmt("\"%s\": want address:port, e.g. \"127.0.0.1:9101\"", addr);
		return -1;
	}
	hl = (size_t)(colon - addr);
	if (addr[0] == '[' && hl >= 2 && addr[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl >= sizeof host) {
		*err_r = err_fmt("\"%s\": not a numeric address", addr);
		return -1;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	e = getaddrinfo(host, colon + 1, &hints, &ai);
	if (e != 0) {
		*err_r = err_fmt("\"%s\": %s (want a numeric address and port)", addr,
				 gai_strerror(e));
		return -1;
	}
	memset(sa_r, 0, sizeof *sa_r);
	memcpy(sa_r, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	return 0;
}

int
cfg_hook_listen(cfg_walk *w, const cfg_key *k, const config_setting_t *s, void *field)
{
	struct sockaddr_storage sa;
	char **out = field, *err = NULL;

	(void)k;
	if (cfg_get_str(w->e, s, w->ctx, out) < 0)
		return -1;
	if (cfg_listen_addr(*out, &sa, &err) < 0) {
		cfg_err(w->e, s, w->ctx, "'metrics_listen' %s", err);
		free(err);
		return -1;
	}
	return 0;
}

int
cfg_selected(const char *name, char *const *only, int n_only)
{
	for (int i = 0; i < n_only; i++)
		if (strcmp(only[i], name) == 0)
			return 1;
	return n_only == 0;
}

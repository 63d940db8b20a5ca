/* mailmill - ISC licence, see LICENSE */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/oauth/oauth_config.h"
#include "daemon/core/units.h"

#define OAUTH_TIMEOUT_MAX 600LL
/* Access tokens of 2-4 KB are normal; one this long is a mistake. */
#define OAUTH_TOKEN_MAX (64 * 1024)

/* The providers' endpoints and default scopes (their documentation, 2026). */
#define MS_BASE "https://login.microsoftonline.com/"
#define MS_SCOPE_POP3 "https://outlook.office.com/POP.AccessAsUser.All offline_access"
#define MS_SCOPE_SMTP "https://outlook.office.com/SMTP.Send offline_access"
#define MS_SCOPE_IMAP "https://outlook.office.com/IMAP.AccessAsUser.All offline_access"
#define MS_SCOPE_APP "https://outlook.office365.com/.default"
#define GOOGLE_TOKEN "https://oauth2.googleapis.com/token"
#define GOOGLE_DEVICE "https://oauth2.googleapis.com/device/code"
#define GOOGLE_AUTH "https://accounts.google.com/o/oauth2/v2/auth"
#define GOOGLE_SCOPE "https://mail.google.com/"

static const char *const oauth_provider_names[] = { "microsoft", "google", "generic", NULL };
static const char *const oauth_grant_names[] = { "refresh_token", "client_credentials", NULL };

const char *
oauth_provider_name(oauth_provider p)
{
	return (unsigned)p < 3 ? oauth_provider_names[p] : "?";
}

typedef struct oauth_ctx {
	oauth_cfg_err_fn *fn;
	void *arg;
} oauth_ctx;

static void oauth_err(const oauth_ctx *c, const config_setting_t *s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
oauth_err(const oauth_ctx *c, const config_setting_t *s, const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	c->fn(c->arg, s, msg);
}

/* A non-empty string into *out (replacing what was there): 0, or -1 reported. */
static int
oauth_str(const oauth_ctx *c, const config_setting_t *s, char **out)
{
	const char *v;

	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		oauth_err(c, s, "oauth2: '%s' must be a string", config_setting_name(s));
		return -1;
	}
	v = config_setting_get_string(s);
	if (v == NULL || *v == '\0') {
		oauth_err(c, s, "oauth2: '%s' must not be empty", config_setting_name(s));
		return -1;
	}
	free(*out);
	if ((*out = strdup(v)) == NULL) {
		oauth_err(c, s, "out of memory");
		return -1;
	}
	return 0;
}

static int
oauth_enum(const oauth_ctx *c, const config_setting_t *s, const char *const *names, int *out)
{
	if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		for (int i = 0; names[i] != NULL; i++) {
			if (strcmp(config_setting_get_string(s), names[i]) == 0) {
				*out = i;
				return 0;
			}
		}
	}
	oauth_err(c, s, "oauth2: '%s' must be one of \"%s\", \"%s\"%s%s%s",
		  config_setting_name(s), names[0], names[1], names[2] ? ", \"" : "",
		  names[2] ? names[2] : "", names[2] ? "\"" : "");
	return -1;
}

/* Tokens and client secrets go only over verified TLS: https, a host, no
 * spaces or user info that would hide where they go. */
static int
oauth_url(const oauth_ctx *c, const config_setting_t *s, char **out)
{
	const char *host;

	if (oauth_str(c, s, out) < 0)
		return -1;
	host = *out + strlen("https://");
	if (strncmp(*out, "https://", strlen("https://")) != 0 || *host == '\0' || *host == '/' ||
	    strpbrk(*out, " \t\r\n\"") != NULL || memchr(host, '@', strcspn(host, "/")) != NULL) {
		oauth_err(c, s, "oauth2: '%s' \"%s\" must be an https:// URL (tokens never go "
			  "over plain http)", config_setting_name(s), *out);
		return -1;
	}
	return 0;
}

static int
oauth_path(const oauth_ctx *c, const config_setting_t *s, char **out)
{
	if (oauth_str(c, s, out) < 0)
		return -1;
	if ((*out)[0] != '/') {
		oauth_err(c, s, "oauth2: '%s' must be an absolute path, not \"%s\"",
			  config_setting_name(s), *out);
		return -1;
	}
	return 0;
}

const char *const oauth_cfg_keys[] = { "provider", "client_id", "client_secret",
				       "client_secret_file", "tenant", "token_url",
				       "device_url", "auth_url", "scope", "grant",
				       "ca_file", "timeout", NULL };

static int
oauth_known_key(const char *k)
{
	for (const char *const *p = oauth_cfg_keys; *p != NULL; p++)
		if (strcmp(*p, k) == 0)
			return 1;
	return 0;
}

static void
oauth_group(const oauth_ctx *c, const config_setting_t *g, oauth_cfg *o)
{
	int v, n_secret = 0;

	if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
		oauth_err(c, g, "'oauth2' must be a group: { provider = \"microsoft\"; "
			  "client_id = \"...\"; }");
		return;
	}
	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
		const char *k = config_setting_name(s);

		/* The table is what the group accepts (the manual's check reads
		 * it): a branch below for a key not in it is never reached. */
		if (!oauth_known_key(k)) {
			oauth_err(c, s, "oauth2: unknown setting '%s'", k);
		} else if (strcmp(k, "provider") == 0) {
			if (oauth_enum(c, s, oauth_provider_names, &v) == 0)
				o->provider = (oauth_provider)v;
		} else if (strcmp(k, "client_id") == 0) {
			oauth_str(c, s, &o->client_id);
		} else if (strcmp(k, "client_secret") == 0) {
			if (n_secret++ == 0 && oauth_str(c, s, &o->client_secret.value) == 0)
				o->client_secret.kind = SECRET_INLINE;
		} else if (strcmp(k, "client_secret_file") == 0) {
			if (n_secret++ == 0 && oauth_path(c, s, &o->client_secret.value) == 0) {
				char *why = NULL;

				o->client_secret.kind = SECRET_FILE;
				o->client_secret.key = "client_secret_file";
				if (secret_check_file_as("client_secret_file", o->client_secret.value,
							 &why) < 0) {
					oauth_err(c, s, "oauth2: %s", why != NULL ? why : "out of memory");
					free(why);
				}
			}
		} else if (strcmp(k, "tenant") == 0) {
			if (oauth_str(c, s, &o->tenant) == 0 &&
			    strspn(o->tenant, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				   "0123456789.-") != strlen(o->tenant))
				oauth_err(c, s, "oauth2: 'tenant' \"%s\" is not a tenant id or domain",
					  o->tenant);
		} else if (strcmp(k, "token_url") == 0) {
			oauth_url(c, s, &o->token_url);
		} else if (strcmp(k, "device_url") == 0) {
			oauth_url(c, s, &o->device_url);
		} else if (strcmp(k, "auth_url") == 0) {
			oauth_url(c, s, &o->auth_url);
		} else if (strcmp(k, "scope") == 0) {
			oauth_str(c, s, &o->scope);
		} else if (strcmp(k, "grant") == 0) {
			if (oauth_enum(c, s, oauth_grant_names, &v) == 0)
				o->grant = (oauth_grant)v;
		} else if (strcmp(k, "ca_file") == 0) {
			oauth_path(c, s, &o->ca_file);
		} else if (strcmp(k, "timeout") == 0) {
			long long t = -1;

			if (config_setting_type(s) == CONFIG_TYPE_INT ||
			    config_setting_type(s) == CONFIG_TYPE_INT64)
				t = config_setting_get_int64(s);
			else if (config_setting_type(s) == CONFIG_TYPE_STRING &&
				 units_duration(config_setting_get_string(s), &t) < 0)
				t = -1;
			if (t < 1 || t > OAUTH_TIMEOUT_MAX)
				oauth_err(c, s, "oauth2: 'timeout' must be a duration between 1s "
					  "and %llds (like \"30s\")", OAUTH_TIMEOUT_MAX);
			else
				o->timeout_s = t;
		} else {
			oauth_err(c, s, "oauth2: '%s' is in oauth_cfg_keys but not read", k);
		}
	}
	if (n_secret > 1)
		oauth_err(c, g, "oauth2: set only one of 'client_secret', 'client_secret_file'");
}

/* token_command = [ "/path/helper", "arg" ]: the argv, no shell. */
static void
oauth_command(const oauth_ctx *c, const config_setting_t *s, oauth_cfg *o)
{
	int n = config_setting_length(s);

	if ((config_setting_type(s) != CONFIG_TYPE_ARRAY &&
	     config_setting_type(s) != CONFIG_TYPE_LIST) || n < 1) {
		oauth_err(c, s, "'token_command' must be a non-empty list of strings (the argv, "
			  "run without a shell), like [\"/usr/local/bin/get-token\", \"pop\"]");
		return;
	}
	if ((o->token.argv = calloc((size_t)n + 1, sizeof(char *))) == NULL) {
		oauth_err(c, s, "out of memory");
		return;
	}
	o->token.kind = SECRET_COMMAND;
	o->token.key = "token_command";
	o->token.max = OAUTH_TOKEN_MAX + 1;
	o->token.want_stderr = 1;
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *v = config_setting_type(e) == CONFIG_TYPE_STRING ?
				config_setting_get_string(e) : NULL;

		if (v == NULL || *v == '\0') {
			oauth_err(c, s, "'token_command': element %d must be a non-empty string",
				  i + 1);
			return;
		}
		if ((o->token.argv[i] = strdup(v)) == NULL) {
			oauth_err(c, s, "out of memory");
			return;
		}
	}
	if (o->token.argv[0][0] != '/')
		oauth_err(c, s, "'token_command': the program must be an absolute path, not \"%s\"",
			  o->token.argv[0]);
}

int
oauth_cfg_setting(const config_setting_t *s, oauth_cfg **op, oauth_cfg_err_fn *err, void *arg)
{
	const oauth_ctx c = { err, arg };
	const char *k = config_setting_name(s);
	int cmd;

	if (strcmp(k, "oauth2") != 0 && strcmp(k, "token_command") != 0)
		return 0;
	cmd = k[0] == 't';
	if (*op != NULL) {
		oauth_err(&c, s, "set only one of 'oauth2' and 'token_command'");
		return 1;
	}
	if ((*op = calloc(1, sizeof(**op))) == NULL) {
		oauth_err(&c, s, "out of memory");
		return 1;
	}
	(*op)->file = config_setting_source_file(s);
	(*op)->line = config_setting_source_line(s);
	(*op)->timeout_s = 30;
	(*op)->command = cmd;
	if (cmd)
		oauth_command(&c, s, *op);
	else
		oauth_group(&c, s, *op);
	return 1;
}

static int
oauth_default(char **field, const char *value)
{
	if (*field != NULL || value == NULL)
		return 0;
	return (*field = strdup(value)) == NULL ? -1 : 0;
}

void
oauth_cfg_finish(const config_setting_t *g, oauth_cfg *o, oauth_for what, int has_password,
		 oauth_cfg_err_fn *err, void *arg)
{
	const oauth_ctx c = { err, arg };
	const config_setting_t *og = config_setting_get_member(g, "oauth2");
	const config_setting_t *at = og != NULL ? og : g;
	int app = o->grant == OAUTH_GRANT_CLIENT, nomem = 0;
	char url[512];

	if (has_password)
		oauth_err(&c, g, "%s and a password key both set: OAuth needs no password; "
			  "remove 'password', 'password_file' or 'password_command'",
			  o->command ? "'token_command'" : "'oauth2'");
	if (o->command)
		return;
	if (o->client_id == NULL && config_setting_get_member(at, "client_id") == NULL)
		oauth_err(&c, at, "oauth2: missing required setting 'client_id'");
	if (o->provider == OAUTH_GENERIC) {
		if (o->token_url == NULL && config_setting_get_member(at, "token_url") == NULL)
			oauth_err(&c, at, "oauth2: provider \"generic\" needs 'token_url'");
		if (o->scope == NULL && config_setting_get_member(at, "scope") == NULL)
			oauth_err(&c, at, "oauth2: provider \"generic\" needs 'scope'");
	}
	if (app && o->client_secret.kind == SECRET_NONE)
		oauth_err(&c, at, "oauth2: grant \"client_credentials\" needs 'client_secret' or "
			  "'client_secret_file'");
	if (o->provider == OAUTH_GOOGLE && app)
		oauth_err(&c, at, "oauth2: Google has no client credentials grant for Gmail; use "
			  "grant = \"refresh_token\" and mailmilld --sign-in");
	if (o->provider == OAUTH_MICROSOFT) {
		if (app && (o->tenant == NULL || strcmp(o->tenant, "common") == 0 ||
			    strcmp(o->tenant, "organizations") == 0 ||
			    strcmp(o->tenant, "consumers") == 0))
			oauth_err(&c, at, "oauth2: grant \"client_credentials\" needs 'tenant': your "
				  "directory (tenant) id or domain, not \"%s\"",
				  o->tenant != NULL ? o->tenant : "common");
		nomem |= oauth_default(&o->tenant, "common");
		snprintf(url, sizeof url, MS_BASE "%s/oauth2/v2.0/token", o->tenant ? o->tenant : "");
		nomem |= oauth_default(&o->token_url, url);
		snprintf(url, sizeof url, MS_BASE "%s/oauth2/v2.0/devicecode",
			 o->tenant ? o->tenant : "");
		nomem |= oauth_default(&o->device_url, url);
		nomem |= oauth_default(&o->scope, app ? MS_SCOPE_APP :
				       what == OAUTH_FOR_SMTP ? MS_SCOPE_SMTP :
				       what == OAUTH_FOR_IMAP ? MS_SCOPE_IMAP : MS_SCOPE_POP3);
	} else if (o->provider == OAUTH_GOOGLE) {
		nomem |= oauth_default(&o->token_url, GOOGLE_TOKEN);
		nomem |= oauth_default(&o->device_url, GOOGLE_DEVICE);
		nomem |= oauth_default(&o->auth_url, GOOGLE_AUTH);
		nomem |= oauth_default(&o->scope, GOOGLE_SCOPE);
	}
	if (nomem)
		oauth_err(&c, at, "out of memory");
}

void
oauth_cfg_free(oauth_cfg **op)
{
	oauth_cfg *o;

	if (op == NULL || (o = *op) == NULL)
		return;
	secret_clear(&o->token);
	secret_clear(&o->client_secret);
	free(o->client_id);
	free(o->tenant);
	free(o->token_url);
	free(o->device_url);
	free(o->auth_url);
	free(o->scope);
	free(o->ca_file);
	free(o);
	*op = NULL;
}

int
oauth_cfg_pin_secret(const oauth_cfg *o, oauth_cfg *copy, char **secret_r, char **err_r)
{
	*secret_r = NULL;
	if (o == NULL || o->command || o->client_secret.kind != SECRET_FILE)
		return 0;
	if (secret_get(&o->client_secret, secret_r, err_r) < 0)
		return -1;
	*copy = *o;
	memset(&copy->client_secret, 0, sizeof copy->client_secret);
	copy->client_secret.kind = SECRET_INLINE;
	copy->client_secret.value = *secret_r;
	return 1;
}

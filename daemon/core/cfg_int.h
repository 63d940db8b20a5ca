/* mailmill - ISC licence, see LICENSE */
#ifndef MM_CFG_INT_H
#define MM_CFG_INT_H
/*
 * Inside the configuration parser (cfg*.c): the list of problems found, the
 * typed getters and the walker that reads a group against its schema table.
 * Every getter reports its own problem (with the context, e.g. "account
 * \"a\": ") and returns 0 or -1; the value is stored only when valid.
 */
#include <stdarg.h>
#include "daemon/core/cfg.h"
#include "daemon/core/cfg_schema.h"

/* Upper bounds that keep later arithmetic (deadlines in ms, now + interval)
 * far from overflow; none is a limit a real setup comes near. */
#define CFG_INTERVAL_MAX (366LL * 86400)
#define CFG_TIMEOUT_MAX  86400LL
#define CFG_MAX_SIZE_MAX (2LL << 30)
#define CFG_QUEUE_TIME_MAX (60LL * 86400)
#define CFG_WORKER_MEMORY_MAX (1LL << 40)
#define CFG_NAME_MAX 64

/* Every problem found, one "file:line: message" per line. */
typedef struct cfg_errs {
	char *buf;
	size_t len, cap;
	unsigned n;
	const char *path;    /* for problems with no setting to point at */
	const char *incdir;  /* where libconfig resolves @include names */
} cfg_errs;

/* Point at setting s (or at the file when s is NULL); ctx goes first. */
void cfg_err(cfg_errs *e, const config_setting_t *s, const char *ctx, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* At file:line (file NULL: the message names its file itself). */
void cfg_err_at(cfg_errs *e, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
const char *cfg_file_of(const cfg_errs *e, const config_setting_t *s);

/* Typed getters: *out replaced only when s is valid. */
int cfg_is_int(const config_setting_t *s);
int cfg_get_str(cfg_errs *e, const config_setting_t *s, const char *ctx, char **out);
int cfg_get_path(cfg_errs *e, const config_setting_t *s, const char *ctx, char **out);
int cfg_get_enum(cfg_errs *e, const config_setting_t *s, const char *ctx,
		 const char *const *names, int *out);
/* Letters, digits, '.', '_', '-', at most CFG_NAME_MAX, not starting with '.' or '-'. */
int cfg_name_ok(const char *s);

/* The values of tls and auth (cfg_schema.c), for messages. */
extern const char *const cfg_tls_names[], *const cfg_auth_names[], *const cfg_smtp_auth_names[];

/* How a group is being read: handed to every getter and hook. */
struct cfg_walk {
	cfg_errs *e;
	const char *ctx;         /* in front of every message: "account \"a\": " */
	void *obj;               /* the struct the rows' offsets are in */
	const char *in;          /* a nested group's name ("log"): unknown keys say "in log" */
	const char *outer_ctx;   /* ... with the enclosing group's context */
	int n_secret;            /* password keys seen so far (the secret hooks) */
};

/* Set every row's default in obj (before the walk); 0, or -1: out of memory or
 * a default that does not parse as its type (a bug test_cfg_schema catches). */
int cfg_walk_defaults(const cfg_key *keys, void *obj);
/* Read group g against keys into w->obj, in the file's order; then report
 * the CFG_REQUIRED keys that are absent (except CFG_FIRST ones). */
void cfg_walk_group(cfg_walk *w, const config_setting_t *g, const cfg_key *keys);
/* One key's value into its field (its hook, or by its type). */
int cfg_walk_key(cfg_walk *w, const cfg_key *k, const config_setting_t *s);
/* Free what the rows' string fields hold (CFG_STR, CFG_PATH, CFG_NAMED, CFG_STRLIST). */
void cfg_walk_free(const cfg_key *keys, void *obj);

/* The hooks the tables name (cfg_account.c, cfg.c). */
cfg_hook cfg_hook_port, cfg_hook_password, cfg_hook_password_file, cfg_hook_password_command,
	cfg_hook_oauth, cfg_hook_helo, cfg_hook_pipeline, cfg_hook_accounts, cfg_hook_smtp,
	cfg_hook_schedule, cfg_hook_listen;

/* cfg_store.c: the `store` group's keys checked together, after the walk. */
void cfg_store_check(cfg_errs *e, cfg *c);

/* What an account and the relay hold (cfg_account.c). */
void cfg_account_free(cfg_account *a);
void cfg_smtp_free(cfg_smtp **m);
#endif

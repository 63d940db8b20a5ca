/* mailmill - ISC licence, see LICENSE */
#ifndef MM_CONFIG_H
#define MM_CONFIG_H
/*
 * The configuration file (libconfig syntax), validated completely before
 * anything runs.  Every problem found is reported, each as "file:line:
 * message"; nothing is applied unless the whole file is valid.
 *
 * Ownership: cfg_load returns a cfg the caller frees with cfg_free; every
 * string and the settings pointers inside it live as long as the cfg.
 *
 * Every key, its type, default, range and manual line: cfg_schema.c (a new
 * key is a row there, its field here, its entry in mailmill.conf(5)).
 */
#include <stddef.h>
#include <libconfig.h>
#include "daemon/core/secret.h"
#include "daemon/oauth/oauth_config.h"

typedef enum { CFG_TLS_IMPLICIT = 0, CFG_TLS_STARTTLS, CFG_TLS_NONE } cfg_tls;
typedef enum {
	CFG_AUTH_AUTO = 0, CFG_AUTH_USER, CFG_AUTH_APOP, CFG_AUTH_PLAIN, CFG_AUTH_LOGIN,
	CFG_AUTH_XOAUTH2, CFG_AUTH_OAUTHBEARER
} cfg_auth;
/* What happens to a message that no stage claimed (DONE/KEEP/DEFER). */
typedef enum { CFG_END_KEEP = 0, CFG_END_DONE, CFG_END_DEFER } cfg_end;
/* The mail source of an account. */
typedef enum { CFG_PROTO_POP3 = 0, CFG_PROTO_IMAP } cfg_protocol;
/* What a source does with a message the pipeline finished (verdict done),
 * once its verdict is durable: POP3 knows only delete (and keep). */
typedef enum { CFG_AFTER_DELETE = 0, CFG_AFTER_MOVE, CFG_AFTER_FLAG, CFG_AFTER_KEEP } cfg_after;

typedef struct cfg_stage {
	char *plugin;                      /* `plugin`: a name in plugin_dir, or a path with '/' */
	char *name;                        /* `name`, default: the plugin name */
	const config_setting_t *settings;  /* the whole group, for the plugin's init */
	const char *file;                  /* borrowed from libconfig */
	int line;
} cfg_stage;

typedef struct cfg_account {
	char *name;
	cfg_protocol protocol;             /* `protocol`, default pop3 */
	char *host;
	char *port;                        /* default 995/993 for tls, else 110/143 */
	cfg_tls tls;                       /* default implicit */
	char *ca_file;                     /* NULL: system store */
	char *user;
	secret secret;                     /* SECRET_NONE when oauth is set */
	oauth_cfg *oauth;                  /* `oauth2` or `token_command`; NULL: a password */
	cfg_auth auth;                     /* with oauth: auto, xoauth2 or oauthbearer */
	int allow_plaintext_password;      /* default 0 */
	long long interval_s;              /* default 300 */
	int keep;                          /* default 0; set too by after = "keep" */
	/* IMAP (protocol = "imap"); cfg_account.c refuses them for POP3. */
	char **folders;                    /* `folders`, NULL-terminated; default { "INBOX" } */
	size_t n_folders;
	cfg_after after;                   /* `after`, default delete; keep = true is keep */
	char *move_to;                     /* `move_to`, default "Processed" (after = "move") */
	char *flag;                        /* `flag`, default "\\Seen" (after = "flag") */
	int idle;                          /* `idle`, default 0: IMAP IDLE in the daemon */
	unsigned long long max_size;       /* default 50M; 0 = no limit */
	long long timeout_s;               /* per-command deadline, default 60 */
	long long connect_timeout_s;       /* default 30 */
	cfg_end end;                       /* `pipeline_end` = "keep"|"done"|"defer", default keep */
	int max_attempts;                  /* failed tries on one message before quarantine, default 3 */
	/* Schedule and ageing (daemon/core/cfg_schedule.c). */
#define CFG_AT_MAX 48
	int at[CFG_AT_MAX];                /* `at`: minutes after local midnight, ascending */
	size_t n_at;                       /* 0: no `at`, the account runs every interval */
	int at_only;                       /* `at` without `interval`: runs only at those times */
	long long delete_after_s;          /* `delete_after`: done mail stays this long; 0: unset */
	cfg_stage *stages;
	size_t n_stages;
	const char *file;                  /* where the account is defined */
	int line;
} cfg_account;

/* Where the store lives: the top-level `store` group (daemon/store). */
typedef enum { CFG_STORE_SQLITE = 0, CFG_STORE_POSTGRESQL } cfg_store_driver;

/* The relay queued mail goes out through: the top-level `smtp` group. */
typedef enum {
	CFG_SMTP_AUTH_AUTO = 0, CFG_SMTP_AUTH_PLAIN, CFG_SMTP_AUTH_LOGIN,
	CFG_SMTP_AUTH_XOAUTH2, CFG_SMTP_AUTH_OAUTHBEARER
} cfg_smtp_auth;

typedef struct cfg_smtp {
	char *host;
	char *port;                        /* default "465" for tls, "587" starttls, "25" none */
	cfg_tls tls;                       /* default starttls */
	char *ca_file;                     /* NULL: system store */
	char *user;                        /* NULL: no AUTH */
	secret secret;                     /* kind SECRET_NONE without user or with oauth */
	oauth_cfg *oauth;                  /* `oauth2` or `token_command`; NULL: a password */
	cfg_smtp_auth auth;                /* "auto"|"plain"|"login"|"xoauth2"|"oauthbearer" */
	char *helo;                        /* NULL: the host name */
	int allow_plaintext_password;      /* default 0 */
	long long max_queue_time_s;        /* default 5d: then dead-lettered */
	long long timeout_s;               /* per-command deadline, default 300 */
	long long connect_timeout_s;       /* default 30 */
	const char *file;
	int line;
} cfg_smtp;

typedef struct cfg {
	config_t lc;                       /* kept: stages point into it */
	char *path;
	char *state_dir;                   /* default LOCALSTATEDIR "/lib/mailmill" */
	char *plugin_dir;                  /* default PKGLIBDIR */
	int log_level;                     /* LOG_LVL_*, from log.level; default info */
	char *log_target;                  /* "stderr" | "syslog" */
	/* The long-running daemon (daemon/sched/scheduler.c). */
	int workers;                       /* account runs at once, default 4 */
	char *user;                        /* workers run as this user when started as root; NULL */
	char *pid_file;                    /* when detached; default state_dir/mailmilld.pid */
	long long run_timeout_s;           /* a worker's whole run, default 1800 */
	long long message_timeout_s;       /* one message in a worker, default 300 */
	long long max_backoff_s;           /* cap of the failure back-off, default 3600 */
	unsigned long long worker_memory;  /* RLIMIT_AS of a worker, 0 = unlimited (default) */
	long long outbox_interval_s;       /* the daemon flushes the outbox this often, default 60 */
	long long lease_ttl_s;             /* a run's lease on a shared store (daemon/sched/claim.h), default 30 */
	/* `store` group: SQLite in state_dir (default) or PostgreSQL (cfg_store.c). */
	int store_driver;                  /* cfg_store_driver, default sqlite */
	char *store_conninfo;              /* libpq conninfo, never with a password */
	char *store_password_file;         /* the database password, first line; NULL */
	char *store_sslmode;               /* libpq's sslmode, default "verify-full" */
	char *store_sslrootcert;           /* CA certificates of the server; NULL */
	char *metrics_listen;              /* "addr:port" for /metrics and /healthz; NULL: none */
	cfg_account *accounts;
	size_t n_accounts;
	cfg_smtp *smtp;                    /* NULL: no `smtp` group, nothing can be sent */
} cfg;

/*
 * Parse and validate.  0 and *cfg_r, or -1 and *err_r: every problem, one
 * per line, "file:line: message" (allocated, caller frees).  A file holding
 * an inline password that group or others can read is refused.
 */
int cfg_load(const char *path, cfg **cfg_r, char **err_r);
void cfg_free(cfg **c);
const cfg_account *cfg_find_account(const cfg *c, const char *name);
/*
 * metrics_listen's value: "127.0.0.1:9101" or "[::1]:9101", a numeric
 * address and port, into *sa_r.  0, or -1 and *err_r (allocated).
 */
struct sockaddr_storage;
int cfg_listen_addr(const char *addr, struct sockaddr_storage *sa_r, char **err_r);
/* 1 if name is among the n_only names of --account (or none was given). */
int cfg_selected(const char *name, char *const *only, int n_only);
#endif

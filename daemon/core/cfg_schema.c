/* mailmill - ISC licence, see LICENSE */
/*
 * The configuration's keys, one row each (cfg_schema.h): type, default,
 * range, and what mailmill.conf(5) says.  tests/unit/test_cfg_schema holds
 * the manual to these rows: every key has its entry there, with its default,
 * its range and its values.
 */
#include "daemon/core/cfg_int.h"

#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR "/var"
#endif
#ifndef PKGLIBDIR
#define PKGLIBDIR "/usr/local/lib/mailmill"
#endif

/* Enums are stored through an int (cfg_walk_key). */
_Static_assert(sizeof(cfg_tls) == sizeof(int) && sizeof(cfg_auth) == sizeof(int) &&
	       sizeof(cfg_end) == sizeof(int) && sizeof(cfg_smtp_auth) == sizeof(int),
	       "an enum the walker stores is not an int");

const char *const cfg_tls_names[] = { "tls", "starttls", "none", NULL };
const char *const cfg_auth_names[] = { "auto", "user", "apop", "plain", "login", "xoauth2",
				       "oauthbearer", NULL };
const char *const cfg_smtp_auth_names[] = { "auto", "plain", "login", "xoauth2", "oauthbearer",
					    NULL };
static const char *const cfg_end_names[] = { "keep", "done", "defer", NULL };
const char *const cfg_protocol_names[] = { "pop3", "imap", NULL };
const char *const cfg_after_names[] = { "delete", "move", "flag", "keep", NULL };
/* In the order of LOG_LVL_* (log.h): the index is the level. */
static const char *const cfg_level_names[] = { "error", "warning", "info", "debug", NULL };
static const char *const cfg_target_names[] = { "stderr", "syslog", NULL };

const cfg_key cfg_keys_log[] = {
	CFG_KENUM("level", cfg, log_level, "info", cfg_level_names, 0,
		  "How much is logged"),
	CFG_KENUM("target", cfg, log_target, "stderr", cfg_target_names, CFG_NAMED,
		  "Where the log goes (syslog: facility mail)"),
	CFG_END
};

static const char *const cfg_store_driver_names[] = { "sqlite", "postgresql", NULL };
/* libpq's values of sslmode. */
static const char *const cfg_sslmode_names[] = { "disable", "allow", "prefer", "require",
					       "verify-ca", "verify-full", NULL };

/* Checked together by cfg_store.c (conninfo needs driver "postgresql"). */
const cfg_key cfg_keys_store[] = {
	CFG_KENUM("driver", cfg, store_driver, "sqlite", cfg_store_driver_names, 0,
		  "\"sqlite\" (state_dir/mailmill.db) or \"postgresql\" (several daemons)"),
	CFG_KSTR("conninfo", cfg, store_conninfo, 0,
		 "postgresql: libpq's connection string, without password or ssl settings"),
	CFG_KPATH("password_file", cfg, store_password_file, NULL, 0,
		  "postgresql: a file whose first line is the password, mode 0600 or stricter"),
	CFG_KENUM("sslmode", cfg, store_sslmode, "verify-full", cfg_sslmode_names, CFG_NAMED,
		  "postgresql: TLS to the server, as libpq's sslmode"),
	CFG_KPATH("sslrootcert", cfg, store_sslrootcert, NULL, 0,
		  "postgresql: CA certificates the server's certificate is checked against"),
	CFG_END
};

const cfg_key cfg_keys_top[] = {
	CFG_KPATH("state_dir", cfg, state_dir, LOCALSTATEDIR "/lib/mailmill", CFG_BUILD_DEF,
		  "Journal, lock, pid and metrics files; created 0700"),
	CFG_KPATH("plugin_dir", cfg, plugin_dir, PKGLIBDIR, CFG_BUILD_DEF,
		  "Where plugins named without '/' are found"),
	CFG_K_("log", CFG_GROUP, cfg, log_level, .sub = cfg_keys_log,
	       .doc = "Group: level and target of the log"),
	CFG_K_("store", CFG_GROUP, cfg, store_driver, .sub = cfg_keys_store,
	       .doc = "Group: where the journal lives; default SQLite in state_dir"),
	CFG_KINT("workers", cfg, workers, "4", 1, 256, "Account runs at once in the daemon"),
	CFG_KSTR("user", cfg, user, 0,
		 "When started as root, workers and the outbox flush run as this user"),
	CFG_KPATH("pid_file", cfg, pid_file, NULL, 0,
		  "Written by a detached daemon; default state_dir/mailmilld.pid"),
	CFG_KDUR("run_timeout", cfg, run_timeout_s, "30m", 1, CFG_TIMEOUT_MAX,
		 "A worker running longer is killed"),
	CFG_KDUR("message_timeout", cfg, message_timeout_s, "5m", 1, CFG_TIMEOUT_MAX,
		 "A worker spending longer on one message is killed, charged to the message"),
	CFG_KDUR("max_backoff", cfg, max_backoff_s, "1h", 1, CFG_INTERVAL_MAX,
		 "Cap of the delay after failed runs"),
	CFG_KSIZE("worker_memory", cfg, worker_memory, "0", 64LL << 20, CFG_WORKER_MEMORY_MAX,
		  "RLIMIT_AS of each worker and outbox flush; 0 is no limit"),
	CFG_KDUR("outbox_interval", cfg, outbox_interval_s, "1m", 1, CFG_INTERVAL_MAX,
		 "How often the daemon flushes the outbox"),
	CFG_KDUR("lease_ttl", cfg, lease_ttl_s, "30s", 3, 3600,
		 "Daemons sharing a database: a run's lease, renewed every third of it"),
	CFG_KHOOK("metrics_listen", cfg, CFG_STR, metrics_listen, cfg_hook_listen, 0,
		  "address:port where the daemon serves /metrics and /healthz over HTTP; default none"),
	CFG_KHOOK("smtp", cfg, CFG_GROUP, smtp, cfg_hook_smtp, 0,
		  "The relay for outgoing mail (group, below)"),
	CFG_KHOOK("accounts", cfg, CFG_LIST, accounts, cfg_hook_accounts, 0,
		  "A list of account groups; required"),
	CFG_END
};

/* How an account and the relay sign in: one password key, or OAuth. */
#define CFG_SIGN_IN_ROWS(st) \
	CFG_KHOOK("password", st, CFG_STR, secret, cfg_hook_password, 0, \
		  "The password, inline (one password key at most; none with OAuth)"), \
	CFG_KHOOK("password_file", st, CFG_PATH, secret, cfg_hook_password_file, 0, \
		  "A file whose first line is the password, mode 0600 or stricter"), \
	CFG_KHOOK("password_command", st, CFG_STRLIST, secret, cfg_hook_password_command, 0, \
		  "An argv list run without a shell; the first line of its output"), \
	CFG_KHOOK("oauth2", st, CFG_GROUP, oauth, cfg_hook_oauth, 0, \
		  "OAuth 2.0 sign-in instead of a password (group)"), \
	CFG_KHOOK("token_command", st, CFG_STRLIST, oauth, cfg_hook_oauth, 0, \
		  "Instead of oauth2: an argv that prints an access token for every connection")

#define SMTP(kind, n, f, ...) CFG_K##kind(n, cfg_smtp, f, __VA_ARGS__)
const cfg_key cfg_keys_smtp[] = {
	SMTP(STR, "host", host, CFG_REQUIRED, "The relay's host name or address; required"),
	SMTP(HOOK, "port", CFG_STR, port, cfg_hook_port, 0,
	     "Number or service name; default 465 for tls, 587 starttls, 25 none"),
	SMTP(ENUM, "tls", tls, "starttls", cfg_tls_names, 0,
	     "\"tls\" (implicit), \"starttls\" (refused if not offered), \"none\""),
	SMTP(PATH, "ca_file", ca_file, NULL, 0, "CA certificates; default the system store"),
	SMTP(STR, "user", user, 0, "Log in as this user (AUTH); without it, no AUTH"),
	CFG_SIGN_IN_ROWS(cfg_smtp),
	SMTP(ENUM, "auth", auth, "auto", cfg_smtp_auth_names, 0, "The SASL mechanism"),
	SMTP(HOOK, "helo", CFG_STR, helo, cfg_hook_helo, 0,
	     "The name sent in EHLO/HELO; default the host name"),
	SMTP(BOOL, "allow_plaintext_password", allow_plaintext_password, "false",
	     "Needed for a password with tls = \"none\""),
	SMTP(DUR, "max_queue_time", max_queue_time_s, "5d", 60, CFG_QUEUE_TIME_MAX,
	     "Queued mail older than this is dead-lettered"),
	SMTP(DUR, "timeout", timeout_s, "5m", 1, CFG_TIMEOUT_MAX,
	     "Per SMTP command; the final dot of DATA gets twice that, at most 10 minutes"),
	SMTP(DUR, "connect_timeout", connect_timeout_s, "30s", 1, CFG_TIMEOUT_MAX,
	     "Deadline of the connection"),
	CFG_END
};

#define ACCT(kind, n, f, ...) CFG_K##kind(n, cfg_account, f, __VA_ARGS__)
const cfg_key cfg_keys_account[] = {
	/* CFG_FIRST: read before the others, so that every message names the account. */
	ACCT(STR, "name", name, CFG_REQUIRED | CFG_FIRST,
	     "Required, unique; letters, digits, '.', '_', '-'"),
	ACCT(ENUM, "protocol", protocol, "pop3", cfg_protocol_names, 0,
	     "The mail source: \"pop3\" or \"imap\""),
	ACCT(STR, "host", host, CFG_REQUIRED, "The POP3 or IMAP server; required"),
	ACCT(HOOK, "port", CFG_STR, port, cfg_hook_port, 0,
	     "Number or service name; default 995 (IMAP 993) with tls = \"tls\", else 110 (143)"),
	ACCT(ENUM, "tls", tls, "tls", cfg_tls_names, 0,
	     "\"tls\" (implicit), \"starttls\" (refused if STLS is not offered), \"none\""),
	ACCT(PATH, "ca_file", ca_file, NULL, 0, "CA certificates; default the system store"),
	ACCT(STR, "user", user, CFG_REQUIRED, "The user name to sign in with; required"),
	CFG_SIGN_IN_ROWS(cfg_account),
	ACCT(ENUM, "auth", auth, "auto", cfg_auth_names, 0, "The sign-in mechanism"),
	ACCT(BOOL, "allow_plaintext_password", allow_plaintext_password, "false",
	     "Needed for a password with tls = \"none\""),
	ACCT(DUR, "interval", interval_s, "5m", 1, CFG_INTERVAL_MAX, "How often the daemon polls"),
	ACCT(BOOL, "keep", keep, "false", "Leave mail on the server (never processed twice)"),
	CFG_K_("folders", CFG_STRLIST, cfg_account, folders,
	       .doc = "IMAP: the folders read, in order; default [ \"INBOX\" ]"),
	ACCT(ENUM, "after", after, "delete", cfg_after_names, 0,
	     "IMAP: what happens to done mail: \"delete\", \"move\", \"flag\" or \"keep\""),
	CFG_K_("move_to", CFG_STR, cfg_account, move_to, .def = "Processed",
	       .doc = "IMAP, after = \"move\": the folder, created if missing"),
	CFG_K_("flag", CFG_STR, cfg_account, flag, .def = "\\Seen",
	       .doc = "IMAP, after = \"flag\": a system flag or a keyword"),
	ACCT(BOOL, "idle", idle, "false", "IMAP: the daemon watches each folder with IDLE"),
	ACCT(HOOK, "at", CFG_STRLIST, at, cfg_hook_schedule, 0,
	     "Local times (\"HH:MM\") the daemon runs the account; without interval, only then"),
	ACCT(HOOK, "delete_after", CFG_DURATION, delete_after_s, cfg_hook_schedule, 0,
	     "Done mail stays on the server this long after it was first seen, then is deleted"),
	ACCT(SIZE, "max_size", max_size, "50M", 0, CFG_MAX_SIZE_MAX,
	     "Bigger messages are not fetched, left and reported; 0 no limit"),
	ACCT(DUR, "timeout", timeout_s, "60s", 1, CFG_TIMEOUT_MAX, "Per POP3 or IMAP command"),
	ACCT(DUR, "connect_timeout", connect_timeout_s, "30s", 1, CFG_TIMEOUT_MAX,
	     "Deadline of the connection"),
	ACCT(ENUM, "pipeline_end", end, "keep", cfg_end_names, 0,
	     "What happens when every stage passes"),
	ACCT(INT, "max_attempts", max_attempts, "3", 1, 100,
	     "Failures on one message before it is quarantined"),
	ACCT(HOOK, "pipeline", CFG_LIST, stages, cfg_hook_pipeline, CFG_REQUIRED,
	     "A list of stage groups: plugin, optional name, the plugin's settings"),
	CFG_END
};

const cfg_schema_group cfg_schema_groups[] = {
	{ "top", cfg_keys_top, "TOP-LEVEL SETTINGS", NULL },
	{ "log", cfg_keys_log, "TOP-LEVEL SETTINGS", "log" },
	{ "smtp", cfg_keys_smtp, "TOP-LEVEL SETTINGS", "smtp" },
	{ "store", cfg_keys_store, "TOP-LEVEL SETTINGS", "store" },
	{ "account", cfg_keys_account, "ACCOUNT SETTINGS", NULL },
	{ NULL, NULL, NULL, NULL }
};

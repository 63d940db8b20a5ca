/* mailmill - ISC licence, see LICENSE */
#ifndef MAILMILL_PLUGIN_H
#define MAILMILL_PLUGIN_H
/*
 * The mailmill plugin ABI, version 1.  This header is the whole contract
 * between mailmilld and a plugin; a plugin includes nothing else of mailmill.
 *
 * A plugin is a shared object exporting one symbol, `mailmill_plugin`, a
 * constant struct mailmill_plugin whose first member is MAILMILL_PLUGIN_ABI as
 * the plugin was built.  mailmilld loads it with dlopen(RTLD_NOW|RTLD_LOCAL)
 * and refuses a different ABI number, naming the file and both numbers.
 *
 * The functions declared below are provided by mailmilld itself and resolved
 * when the plugin is loaded; link plugins with undefined symbols allowed.
 *
 * Growth rule: the struct and the function list only grow at the end.  A
 * change to anything that exists bumps MAILMILL_PLUGIN_ABI.
 *
 * Lifetimes: every pointer a getter returns is borrowed and valid until the
 * handle it came from goes away (mm_msg: until process() returns; mm_ctx:
 * until fini() returns).  Do not free them.
 *
 * Threads: call the mm_* functions only from the thread that calls the
 * plugin's own functions; a plugin's helper threads must not.
 */
#include <stddef.h>
#include <stdarg.h>
#include <libconfig.h>
#include <gmime/gmime.h>

#define MAILMILL_PLUGIN_ABI 1

#ifdef __cplusplus
extern "C" {
#endif

/* What a stage decides about a message. */
typedef enum {
	MM_PASS = 0,  /* not mine: hand it to the next stage */
	MM_DONE = 1,  /* handled: delete from the server (unless the account keeps mail) */
	MM_KEEP = 2,  /* handled: leave on the server, never process it again */
	MM_DEFER = 3, /* temporary failure: leave it, try again on the next run */
	/* appended (still ABI 1): */
	MM_FAIL = 4   /* failed: leave on the server, count an attempt; quarantined
		       * (skipped from then on) after the account's max_attempts */
} mm_verdict;

typedef enum { MM_LOG_ERROR = 0, MM_LOG_WARNING = 1, MM_LOG_INFO = 2, MM_LOG_DEBUG = 3 } mm_log_level;

typedef struct mm_ctx mm_ctx; /* one pipeline stage: its account, name, logging */
typedef struct mm_msg mm_msg; /* one message in the pipeline */

struct mailmill_plugin {
	unsigned abi;             /* MAILMILL_PLUGIN_ABI */
	const char *name;         /* e.g. "archive" */
	const char *version;      /* the plugin's own version string */
	/*
	 * Called once per pipeline stage that names this plugin, at start-up and
	 * on --check-config, with the stage's settings (the group holding
	 * `plugin = "..."`).  Validate every setting here (mm_settings_check
	 * reports unknown keys with file:line); report problems with
	 * mm_ctx_error() and return -1.  On success store the stage's state in
	 * *state and return 0.
	 */
	int (*init)(mm_ctx *ctx, const config_setting_t *settings, void **state);
	/*
	 * Decide about one message.  Must not keep `msg` or anything borrowed
	 * from it after returning.  In a dry run (mm_ctx_dry_run) change
	 * nothing outside the process: say what would happen with mm_log().
	 */
	mm_verdict (*process)(void *state, mm_msg *msg, mm_ctx *ctx);
	/*
	 * Optional (may be NULL).  Make every side effect of the process() calls
	 * since the last sync durable (fsync and the like).  The core calls it
	 * for a batch of messages before it commits their verdicts to the
	 * journal, and deletes nothing from the server before that commit.
	 * Return -1 (after mm_log) if anything could not be made durable: every
	 * message of the batch is then deferred and stays on the server.
	 */
	int (*sync)(void *state, mm_ctx *ctx);
	/* Free the stage's state.  May be NULL. */
	void (*fini)(void *state);
};

/* ---- the stage context ---- */
const char *mm_ctx_account(const mm_ctx *ctx);  /* account name */
const char *mm_ctx_stage(const mm_ctx *ctx);    /* stage name ("archive", or its `name` setting) */
int mm_ctx_dry_run(const mm_ctx *ctx);          /* 1 in --dry-run: change nothing */
void mm_log(mm_ctx *ctx, mm_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Report a configuration error at `setting`'s file:line (setting may be NULL). */
void mm_ctx_error(mm_ctx *ctx, const config_setting_t *setting, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/*
 * Check that every member of the group `settings` is named in `allowed`
 * (NULL-terminated; "plugin" and "name" are always allowed).  Reports each
 * unknown key with mm_ctx_error and returns -1, else 0.
 */
int mm_settings_check(mm_ctx *ctx, const config_setting_t *settings, const char *const *allowed);

/* ---- the message ---- */
/*
 * The parsed message; never NULL.  A stage may change it (e.g. add a header)
 * and later stages see the change; the raw bytes (mm_msg_raw), which the
 * archive stores, never change.
 */
GMimeMessage *mm_msg_mime(mm_msg *msg);
/* The message as fetched, line ends as "\n" (the POP3 CRLF removed). */
const char *mm_msg_raw(mm_msg *msg, size_t *len_r);
const char *mm_msg_uid(mm_msg *msg);             /* the server's UID, or "sha256:<hex>" */
const char *mm_msg_account(mm_msg *msg);
size_t mm_msg_size(mm_msg *msg);                 /* length of mm_msg_raw */
/* The message's Date header as a time_t, or the time it was fetched if it has none. */
long long mm_msg_date(mm_msg *msg);

/* ---- outgoing mail and plugin state (appended; still ABI 1) ----
 *
 * Mail a stage queues and key-value changes it makes while processing a
 * message are staged with that message and committed in the same store
 * transaction as its verdict.  If the message ends DEFER, or its batch
 * cannot be made durable, they are discarded: a message processed again
 * never queues twice.  Queued mail goes out over SMTP after the account run.
 */
#define MM_QUEUE_DSN_NEVER 0x1   /* ask for NOTIFY=NEVER where the relay offers DSN */

/*
 * A reply to msg the RFC 3834 way: To the Return-Path (else Reply-To, else
 * From), From `from`, Subject "Re: " + the original's (not doubled),
 * In-Reply-To and References, Auto-Submitted: auto-replied, a new
 * Message-ID and Date.  The caller adds the body (g_mime_message_set_mime_part)
 * and queues it with a null envelope sender.  Returns a new reference (caller
 * g_object_unref's it) and *rcpt_r (allocated, g_free) the address to send to;
 * or NULL and *why_r (static text) when there is nobody to reply to.
 */
GMimeMessage *mm_reply_new(mm_ctx *ctx, mm_msg *msg, const char *from, char **rcpt_r,
			   const char **why_r);
/*
 * Queue `mail` (serialised as it is now) for SMTP.  env_from NULL or "" is
 * the null reverse-path <>.  0, or -1 after logging why.
 */
int mm_queue(mm_ctx *ctx, mm_msg *msg, GMimeMessage *mail, const char *env_from,
	     const char *const *rcpts, size_t n_rcpts, unsigned flags);
/* The same for bytes already formatted ("\n" line ends), e.g. a redirect. */
int mm_queue_raw(mm_ctx *ctx, mm_msg *msg, const char *data, size_t len, const char *env_from,
		 const char *const *rcpts, size_t n_rcpts, unsigned flags);
/*
 * A small durable key-value store scoped to the stage (account and stage
 * name).  mm_kv_get sees this run's staged changes too.  Returns an allocated
 * value (g_free) or NULL if missing or expired.  expires_at: a time_t after
 * which the key reads as missing (0 = never).
 */
char *mm_kv_get(mm_ctx *ctx, const char *key);
int mm_kv_put(mm_ctx *ctx, mm_msg *msg, const char *key, const char *value, long long expires_at);

/* ---- routing (appended; still ABI 1) ---- */
/*
 * Where a stage named `stage` sits in this account's pipeline relative to
 * the calling stage: 1 if one comes after it (mm_msg_goto may jump there),
 * -1 if the only such stages are this one or earlier ones (a jump backwards:
 * refused, it could loop), 0 if there is none.  Meant for init(), so that a
 * wrong name is a configuration error with file:line.
 */
int mm_ctx_has_stage(const mm_ctx *ctx, const char *stage);
/*
 * From process(): when this stage returns MM_PASS, continue with the first
 * stage named `stage` after it, skipping those in between.  The name is
 * copied.  Any other verdict ends the pipeline as usual and the jump is
 * forgotten.  A name with no stage after this one (mm_ctx_has_stage not 1)
 * defers the message with an error in the log.  The last call wins.
 */
void mm_msg_goto(mm_msg *msg, const char *stage);

/* ---- state shared across accounts, sequences (appended; still ABI 1) ----
 *
 * A namespace `ns` is any string the plugin chooses (e.g. "ticket:default"):
 * unlike mm_kv_get/mm_kv_put it is not scoped to the account or the stage,
 * so the stages of several accounts naming the same namespace share it.
 * Account runs may go on in parallel worker processes: what one of them
 * stages becomes visible to the others when its batch commits.
 * Keys up to 512 bytes, values up to 4096; ns up to 256.
 */
/* Like mm_kv_get, in namespace ns (this run's staged puts included). */
char *mm_kv_get_ns(mm_ctx *ctx, const char *ns, const char *key);
/* Like mm_kv_put: staged with msg, committed with its verdict. */
int mm_kv_put_ns(mm_ctx *ctx, mm_msg *msg, const char *ns, const char *key, const char *value,
		 long long expires_at);
/*
 * Take `key` in ns for `value` unless somebody holds it, committed at once
 * (not with a verdict): of two processes claiming one key, exactly one gets
 * it.  An expired claim (expires_at a time_t, 0 = never) is free again.
 * Returns 1 if this call took it; 0 and *holder_r (allocated, g_free) the
 * holder's value if it was taken (perhaps by this plugin in an earlier run
 * that deferred or crashed: compare the value); -1 after logging an error.
 * In a dry run nothing is written: 1 if the key is free.
 */
int mm_kv_claim_ns(mm_ctx *ctx, const char *ns, const char *key, const char *value,
		   long long expires_at, char **holder_r);
/*
 * The next number (1, 2, ...) of the sequence `name` in ns, committed at once
 * in a transaction of its own, so no two calls ever get the same number, in
 * any process; a number taken for a message that is then deferred or lost in
 * a crash is not handed out again (a gap).  In a dry run: the number a real
 * run would get, nothing taken.  0, or -1 after logging an error.
 */
int mm_seq_next(mm_ctx *ctx, const char *ns, const char *name, long long *value_r);

/* ---- header fields and replies without the MIME tree (appended; still ABI 1) ----
 *
 * mm_msg_mime parses the whole message, and for small messages that costs
 * more than everything else a stage does with it.  These read the header
 * fields as they are now: the raw header until a stage calls mm_msg_mime,
 * the parsed (and perhaps changed) header after.
 */
/* fn(name, value, arg) per top-level field in order: value unfolded and
 * trimmed, not decoded (RFC 2047 words stay encoded).  Stops at the first fn
 * returning non-zero and returns that; 0 after the last field. */
typedef int (*mm_header_fn)(const char *name, const char *value, void *arg);
int mm_msg_headers(mm_msg *msg, mm_header_fn fn, void *arg);
/* The first field named `name` (any case), as above; g_free; NULL if none. */
char *mm_msg_header(mm_msg *msg, const char *name);
/*
 * The bare address an automatic reply to msg goes to, by mm_reply_new's
 * rules (g_free); or NULL and *why_r (static text) when there is nobody to
 * reply to (a null Return-Path, no usable address).
 */
char *mm_reply_rcpt(mm_ctx *ctx, mm_msg *msg, const char **why_r);
/*
 * Queue a reply to msg, to `rcpt` (from mm_reply_rcpt), with mm_reply_new's
 * headers; `subject` (UTF-8) or NULL for "Re: " + the original's; then the
 * `extra` fields ("Name: value" on one line, NULL-terminated array, or NULL),
 * and a text/plain body of `body` (UTF-8), with a null envelope sender, as
 * mm_queue does.  0, or -1 after logging why.
 */
int mm_reply_queue(mm_ctx *ctx, mm_msg *msg, const char *from, const char *rcpt,
		   const char *subject, const char *const *extra, const char *body,
		   unsigned flags);

/* ---- setting helpers (appended; still ABI 1) ----
 *
 * Typed readers for a stage's settings, with the core's rules and messages:
 * durations "90s", "5m", "2h", "7d" (a bare number is seconds), sizes
 * "512K", "50M", "2G" (a bare number is bytes, powers of 1024).  Each reads
 * the member `key` of the group `g` and returns
 *    1  present and valid: *out set (replacing what it held);
 *    0  absent: *out untouched, so set the default before calling;
 *   -1  present but wrong: reported with mm_ctx_error at its file:line
 *       ("`key` must be ..."), *out untouched.
 * Strings come back allocated (g_free, or g_strfreev for lists); the string
 * or list *out held is freed when replaced, so start it as NULL or as a
 * g_malloc'd default.
 *
 * ABI: additive.  These are new functions, nothing existing changed, so
 * MAILMILL_PLUGIN_ABI stays 1 and every version-1 plugin loads as before; a
 * plugin that calls them on a daemon without them fails at dlopen (RTLD_NOW)
 * naming the missing mm_setting_* symbol.  Test MAILMILL_PLUGIN_SETTINGS at
 * compile time to build against older headers.
 */
#define MAILMILL_PLUGIN_SETTINGS 1
/* A non-empty string. */
int mm_setting_string(mm_ctx *ctx, const config_setting_t *g, const char *key, char **out);
/* true or false. */
int mm_setting_bool(mm_ctx *ctx, const config_setting_t *g, const char *key, int *out);
/* A whole number in [min, max]. */
int mm_setting_int(mm_ctx *ctx, const config_setting_t *g, const char *key, long long min,
		   long long max, long long *out);
/* A duration in [min, max] seconds: "90s", "5m", "2h", "7d" or a number of seconds. */
int mm_setting_duration(mm_ctx *ctx, const config_setting_t *g, const char *key,
			long long min, long long max, long long *seconds_r);
/* A size of at most max bytes: "512K", "50M", "2G" or a number of bytes. */
int mm_setting_size(mm_ctx *ctx, const config_setting_t *g, const char *key,
		    unsigned long long max, unsigned long long *bytes_r);
/* A list (or array) of 1 to max non-empty strings, NULL-terminated (g_strfreev). */
int mm_setting_strings(mm_ctx *ctx, const config_setting_t *g, const char *key, size_t max,
		       char ***out);
/* A list of 1 to max bare addresses ("a@b.example": one '@', no blanks or
 * angle brackets), lower-cased, NULL-terminated (g_strfreev). */
int mm_setting_addresses(mm_ctx *ctx, const config_setting_t *g, const char *key, size_t max,
			 char ***out);
/* A verdict by name: "pass", "done", "keep", "defer" or "fail", limited to
 * those whose bit (1u << MM_x) is set in `allowed`. */
#define MM_VERDICT_BIT(v) (1u << (unsigned)(v))
int mm_setting_verdict(mm_ctx *ctx, const config_setting_t *g, const char *key,
		       unsigned allowed, mm_verdict *out);
/* A file mode, octal as chmod(1) writes it: a string ("0640", "640") or a
 * number read as those digits (0640 and 640 both mean rw-r-----: libconfig
 * has no octal numbers); bits outside `allowed_bits` (e.g. 0777) are refused. */
int mm_setting_mode(mm_ctx *ctx, const config_setting_t *g, const char *key,
		    unsigned allowed_bits, unsigned *mode_r);

#ifdef __cplusplus
}
#endif
#endif

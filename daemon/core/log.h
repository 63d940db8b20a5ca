/* mailmill - ISC licence, see LICENSE */
#ifndef MM_LOG_H
#define MM_LOG_H
/*
 * Logging for the daemon: stderr (with a timestamp) or syslog.  proto/ never
 * logs; daemon/ and plugins (through mm_log) do.  Never pass a secret.
 */
#include <stdarg.h>

enum { LOG_LVL_ERROR = 0, LOG_LVL_WARNING = 1, LOG_LVL_INFO = 2, LOG_LVL_DEBUG = 3 };

/* target: "stderr" or "syslog".  Safe to call again (reload). */
void log_open(const char *target, int level);
int log_level(void);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(int level, const char *fmt, va_list ap);
/* The text of the last error logged in this process ("" if none): a worker
 * reports it to the daemon as the reason its run failed. */
const char *log_last_error(void);
/* A line kept at the bottom of the terminal (a progress meter; stderr, not
 * syslog): log lines are written above it.  NULL or "": wipe it. */
void log_status(const char *text);
#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#endif

/* mailmill - ISC licence, see LICENSE */
#ifndef MM_ERR_H
#define MM_ERR_H
/*
 * The one error convention of proto/: an allocated, human-readable message
 * handed to the caller (who frees it with free()).  A NULL message means the
 * allocation itself failed; callers print "out of memory" for it.
 */
#include <stdarg.h>
#include <stddef.h>

char *err_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* *err_r = the formatted message, when err_r is not NULL. */
void err_set(char **err_r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void err_vset(char **err_r, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Server text bound for a log line: control characters become '?', at most
 * ERR_QUOTE_MAX bytes, then "...". */
#define ERR_QUOTE_MAX 200
void err_quote(char dst[ERR_QUOTE_MAX + 4], const char *src, size_t len);
#endif

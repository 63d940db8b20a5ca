/* mailmill - ISC licence, see LICENSE */
#ifndef MM_MESSAGE_H
#define MM_MESSAGE_H
/*
 * Parse a fetched message with GMime, within bounds.  GMime's parser recurses
 * once per nested multipart and keeps every part: a hostile message with
 * thousands of levels or parts must not exhaust the stack or the memory, so
 * a cheap scan of the raw bytes decides first whether the whole structure
 * may be parsed.  A message over the caps is parsed as its top-level header
 * only (the raw bytes are still what plugins archive).
 */
#include <stddef.h>
#include <gmime/gmime.h>

#define MESSAGE_MAX_MULTIPARTS 64       /* "multipart/" Content-Type headers */
#define MESSAGE_MAX_PARTS 2000          /* boundary-like lines */
#define MESSAGE_MAX_HEADER (1024 * 1024) /* bytes of the top-level header */

/*
 * Never fails: a message GMime cannot parse gives an empty message.
 * Returns a new reference (caller g_object_unref's it); *note_r is NULL or
 * a static string saying what was cut, for the log.
 */
GMimeMessage *message_parse(const char *raw, size_t len, const char **note_r);
/* The Date header as a time_t, or `fallback`. */
long long message_date(GMimeMessage *m, long long fallback);
#endif

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
/*
 * What run.c needs of every message, read from the top-level header without
 * GMime's parser (whose fixed cost per message is most of the CPU of an
 * archive run): the first Message-ID, decoded as GMime does (g_malloc'd, or
 * NULL), and the first Date as a time_t (*date_r untouched if none or
 * unreadable).  The MIME tree is parsed only when a stage asks for it
 * (mm_msg_mime).
 */
void message_head(const char *raw, size_t len, char **message_id_r, long long *date_r);
/*
 * The top-level header fields of raw in order, without GMime's parser:
 * fn(name, value, arg) per field, the value unfolded (line breaks removed,
 * the white space after them kept) and trimmed, not decoded.  A line that is
 * not "name:" is skipped; so are names over 255 bytes.  Reads at most
 * MESSAGE_MAX_HEADER bytes.  Stops at the first fn returning non-zero and
 * returns that; 0 after the last field.
 */
typedef int (*message_field_fn)(const char *name, const char *value, void *arg);
int message_headers(const char *raw, size_t len, message_field_fn fn, void *arg);
/* The same over a parsed message's header list (what stages changed included). */
int message_headers_mime(GMimeMessage *m, message_field_fn fn, void *arg);
/* The Date header as a time_t, or `fallback`. */
long long message_date(GMimeMessage *m, long long fallback);
#endif

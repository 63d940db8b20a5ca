/* mailmill - ISC licence, see LICENSE */
#ifndef MM_PROGRESS_H
#define MM_PROGRESS_H
/*
 * How a worker tells the daemon what it is doing, over a pipe, one line
 * per event:
 *
 *   S uid size                      a message went into the pipeline
 *   D uid size verdict stage        it was decided (stage "-": the pipeline end)
 *   E text                          the last error logged (once, before R)
 *   T listed failed unsettled moved flagged   the rest of the run's counts (before R)
 *   R fetched deleted kept deferred skipped bytes deleted_bytes fail stopped
 *
 * so the daemon knows which message was in hand when the worker died or
 * passed a deadline.  UIDs, verdicts and stage names hold no spaces (POP3
 * UIDs are printable ASCII without spaces; stage names are plugin names).
 * The parser trusts nothing: a worker runs plugins, and a plugin may have
 * scribbled over it before it died.
 */
#include <stddef.h>
#include "daemon/run/run.h"

#define PROGRESS_UID_MAX 72       /* POP3 allows 70 characters */
#define PROGRESS_STAGE_MAX 72
#define PROGRESS_VERDICT_MAX 16
#define PROGRESS_ERROR_MAX 512
#define PROGRESS_LINE_MAX 768     /* the longest line progress_format_* writes */

typedef enum {
	PROGRESS_START, PROGRESS_DONE, PROGRESS_ERROR, PROGRESS_RESULT, PROGRESS_TOTALS
} progress_kind;

typedef struct progress_event {
	progress_kind kind;
	char uid[PROGRESS_UID_MAX];
	unsigned long long size;
	char verdict[PROGRESS_VERDICT_MAX];
	char stage[PROGRESS_STAGE_MAX];    /* "" for the pipeline end */
	char error[PROGRESS_ERROR_MAX];
	run_stats stats;                   /* PROGRESS_RESULT; listed, failed and
					    * unsettled, moved, flagged:
					    * PROGRESS_TOTALS */
} progress_event;

/* One line (without its '\n'): 0 and *ev, or -1 if it is malformed (an
 * unknown kind, a missing or extra field, a field too long, a number that is
 * not all digits or overflows, fail or stopped out of range). */
int progress_parse(const char *line, progress_event *ev);

/*
 * The lines, '\n'-terminated, into buf (len bytes): their length, or -1 if
 * they do not fit (the event is then not reported).  verdict NULL: an S
 * line; stage NULL: "-".  The error text has its line breaks replaced by
 * spaces and is cut to PROGRESS_ERROR_MAX - 1 bytes.
 */
int progress_format_message(char *buf, size_t len, const char *uid, unsigned long long size,
			    const char *verdict, const char *stage);
int progress_format_error(char *buf, size_t len, const char *text);
int progress_format_result(char *buf, size_t len, const run_stats *s);
int progress_format_totals(char *buf, size_t len, const run_stats *s);

/*
 * The progress line --once draws on a terminal for an account's run:
 * "NAME: n/N messages, R msg/s, ETA m:ss" (the rate and ETA once a message
 * is done).  Its length, cut to fit len.
 */
int progress_format_meter(char *buf, size_t len, const char *account, unsigned long done,
			  unsigned long total, double seconds);
/* Whether to draw it: stderr is a terminal and not systemd's journal
 * (JOURNAL_STREAM, INVOCATION_ID unset). */
int progress_meter_wanted(void);
#endif

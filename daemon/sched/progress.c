/* mailmill - ISC licence, see LICENSE */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "daemon/sched/progress.h"

#define PROGRESS_RESULT_FIELDS 10

static int
progress_fits(int n, size_t len)
{
	return n > 0 && (size_t)n < len ? n : -1;
}

/* Appends s (a word of n bytes) and the separator sep to buf at *at;
 * -1 once it does not fit, room left for the terminating NUL. */
static int
progress_put(char *buf, size_t len, size_t *at, const char *s, size_t n, char sep)
{
	if (*at >= len || len - *at < n + 2)
		return -1;
	memcpy(buf + *at, s, n);
	buf[*at + n] = sep;
	*at += n + 1;
	buf[*at] = '\0';
	return 0;
}

static int
progress_put_number(char *buf, size_t len, size_t *at, unsigned long long v, char sep)
{
	char d[24];
	size_t i = sizeof d;

	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return progress_put(buf, len, at, d + i, sizeof d - i, sep);
}

/* Written twice for every message: built by hand rather than by snprintf,
 * which cost the worker more than the rest of its report (bench/README.md). */
int
progress_format_message(char *buf, size_t len, const char *uid, unsigned long long size,
			const char *verdict, const char *stage)
{
	size_t at = 0;

	if (stage == NULL)
		stage = "-";
	if (progress_put(buf, len, &at, verdict == NULL ? "S" : "D", 1, ' ') < 0 ||
	    progress_put(buf, len, &at, uid, strlen(uid), ' ') < 0 ||
	    progress_put_number(buf, len, &at, size, verdict == NULL ? '\n' : ' ') < 0)
		return -1;
	if (verdict != NULL &&
	    (progress_put(buf, len, &at, verdict, strlen(verdict), ' ') < 0 ||
	     progress_put(buf, len, &at, stage, strlen(stage), '\n') < 0))
		return -1;
	return (int)at;
}

int
progress_format_error(char *buf, size_t len, const char *text)
{
	char clean[PROGRESS_ERROR_MAX];
	size_t i;

	snprintf(clean, sizeof clean, "%s", text);
	for (i = 0; clean[i] != '\0'; i++)
		if (clean[i] == '\n' || clean[i] == '\r')
			clean[i] = ' ';
	return progress_fits(snprintf(buf, len, "E %s\n", clean), len);
}

int
progress_format_result(char *buf, size_t len, const run_stats *s)
{
	return progress_fits(snprintf(buf, len, "R %lu %lu %lu %lu %lu %llu %llu %d %d %d\n",
				      s->fetched, s->deleted, s->kept, s->deferred, s->skipped,
				      s->bytes, s->deleted_bytes, (int)s->fail, s->stopped,
				      s->journal_empty), len);
}

int
progress_format_totals(char *buf, size_t len, const run_stats *s)
{
	return progress_fits(snprintf(buf, len, "T %lu %lu %lu %lu %lu\n", s->listed, s->failed,
				      s->unsettled, s->moved, s->flagged), len);
}

int
progress_format_meter(char *buf, size_t len, const char *account, unsigned long done,
		      unsigned long total, double seconds)
{
	int n;

	if (done == 0 || seconds <= 0)
		n = snprintf(buf, len, "%s: %lu/%lu messages", account, done, total);
	else {
		double rate = (double)done / seconds;
		double eta = done < total ? (double)(total - done) / rate : 0;
		unsigned long e = eta > 359999 ? 359999 : (unsigned long)(eta + 0.5);

		if (e >= 3600)
			n = snprintf(buf, len, "%s: %lu/%lu messages, %.1f msg/s, ETA %lu:%02lu:%02lu",
				     account, done, total, rate, e / 3600, e / 60 % 60, e % 60);
		else
			n = snprintf(buf, len, "%s: %lu/%lu messages, %.1f msg/s, ETA %lu:%02lu",
				     account, done, total, rate, e / 60, e % 60);
	}
	if (n < 0)
		return 0;
	return (size_t)n < len ? n : (int)len - 1;
}

int
progress_meter_wanted(void)
{
	return isatty(STDERR_FILENO) && getenv("JOURNAL_STREAM") == NULL &&
	       getenv("INVOCATION_ID") == NULL;
}

/* The next space-separated word into out (max bytes with its NUL). */
static int
progress_word(const char **p, char *out, size_t max)
{
	size_t n = strcspn(*p, " ");

	if (n == 0 || n >= max)
		return -1;
	memcpy(out, *p, n);
	out[n] = '\0';
	*p += n;
	if (**p == ' ')
		(*p)++;
	return 0;
}

static int
progress_number(const char **p, unsigned long long *out)
{
	char w[24], *end;

	if (progress_word(p, w, sizeof w) < 0 || w[0] < '0' || w[0] > '9')
		return -1;
	errno = 0;
	*out = strtoull(w, &end, 10);
	return errno != 0 || *end != '\0' ? -1 : 0;
}

static int
progress_parse_result(const char *p, progress_event *ev)
{
	unsigned long long v[PROGRESS_RESULT_FIELDS];
	int i;

	for (i = 0; i < PROGRESS_RESULT_FIELDS; i++)
		if (progress_number(&p, &v[i]) < 0)
			return -1;
	if (*p != '\0' || v[7] > RUN_FAIL_AUTH || v[8] > 1 || v[9] > 1)
		return -1;
	for (i = 0; i < 5; i++)
		if (v[i] > (unsigned long long)(unsigned long)-1)
			return -1;
	ev->stats.fetched = (unsigned long)v[0];
	ev->stats.deleted = (unsigned long)v[1];
	ev->stats.kept = (unsigned long)v[2];
	ev->stats.deferred = (unsigned long)v[3];
	ev->stats.skipped = (unsigned long)v[4];
	ev->stats.bytes = v[5];
	ev->stats.deleted_bytes = v[6];
	ev->stats.fail = (run_fail)v[7];
	ev->stats.stopped = (int)v[8];
	ev->stats.journal_empty = (int)v[9];
	return 0;
}

int
progress_parse(const char *line, progress_event *ev)
{
	const char *p = line + 2;

	memset(ev, 0, sizeof *ev);
	if (line[0] == '\0' || line[1] != ' ')
		return -1;
	switch (line[0]) {
	case 'S':
		ev->kind = PROGRESS_START;
		return progress_word(&p, ev->uid, sizeof ev->uid) < 0 ||
		       progress_number(&p, &ev->size) < 0 || *p != '\0' ? -1 : 0;
	case 'D':
		ev->kind = PROGRESS_DONE;
		if (progress_word(&p, ev->uid, sizeof ev->uid) < 0 ||
		    progress_number(&p, &ev->size) < 0 ||
		    progress_word(&p, ev->verdict, sizeof ev->verdict) < 0 ||
		    progress_word(&p, ev->stage, sizeof ev->stage) < 0 || *p != '\0')
			return -1;
		if (strcmp(ev->stage, "-") == 0)
			ev->stage[0] = '\0';
		return 0;
	case 'E':
		ev->kind = PROGRESS_ERROR;
		snprintf(ev->error, sizeof ev->error, "%s", p);
		return 0;
	case 'R':
		ev->kind = PROGRESS_RESULT;
		return progress_parse_result(p, ev);
	case 'T': {
		unsigned long long v[5];

		ev->kind = PROGRESS_TOTALS;
		for (int i = 0; i < 5; i++)
			if (progress_number(&p, &v[i]) < 0 || v[i] > (unsigned long)-1)
				return -1;
		ev->stats.listed = (unsigned long)v[0];
		ev->stats.failed = (unsigned long)v[1];
		ev->stats.unsettled = (unsigned long)v[2];
		ev->stats.moved = (unsigned long)v[3];
		ev->stats.flagged = (unsigned long)v[4];
		return *p != '\0' ? -1 : 0;
	}
	default:
		return -1;
	}
}

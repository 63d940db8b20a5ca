/* mailmill - ISC licence, see LICENSE */
/* --outbox: the queued and dead rows, with their reasons. */
#include <stdio.h>
#include <time.h>
#include <glib.h>
#include "daemon/run/outbox.h"

static void
outbox_time(long long t, char *buf, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL || strftime(buf, n, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, n, "%lld", t);
}

typedef struct outbox_show_arg {
	FILE *f;
	int n;
} outbox_show_arg;

static int
outbox_show_row(void *arg, const store_outbox_row *row)
{
	outbox_show_arg *a = arg;
	char created[32], next[32];
	char *rcpts = g_strdup(row->rcpts);

	for (char *p = rcpts; *p; p++)
		if (*p == '\n')
			*p = ',';
	outbox_time(row->created, created, sizeof(created));
	outbox_time(row->next_attempt, next, sizeof(next));
	fprintf(a->f, "#%lld %s  account %s%s%s  queued %s  attempts %d%s%s\n", row->id,
		outbox_state_name(row->state), row->account, row->uid != NULL ? " uid " : "",
		row->uid != NULL ? row->uid : "", created, row->attempts,
		row->state == OUTBOX_QUEUED ? "  next " : "", row->state == OUTBOX_QUEUED ? next : "");
	fprintf(a->f, "    <%s> -> %s  %zu bytes  <%s>\n", row->env_from, rcpts, row->len,
		row->message_id != NULL ? row->message_id : "");
	if (row->last_error != NULL && row->last_error[0] != '\0')
		fprintf(a->f, "    reason: %s\n", row->last_error);
	if (row->unknown_outcomes > 0)
		fprintf(a->f, "    outcome unknown after end of data %d time(s): the relay may"
			" deliver it twice (RFC 1047)\n", row->unknown_outcomes);
	if (row->outcomes != NULL && row->outcomes[0] != '\0') {
		gchar **lines = g_strsplit(row->outcomes, "\n", -1);

		for (gchar **l = lines; *l != NULL; l++)
			if (**l != '\0')
				fprintf(a->f, "    %s\n", *l);
		g_strfreev(lines);
	}
	g_free(rcpts);
	a->n++;
	return 0;
}

int
outbox_show(store *st, FILE *f, char **err_r)
{
	outbox_show_arg a = { f, 0 };

	if (store_outbox_list(st, (1U << OUTBOX_QUEUED) | (1U << OUTBOX_DEAD), outbox_show_row, &a,
			      err_r) < 0)
		return -1;
	if (a.n == 0)
		fprintf(f, "outbox: nothing queued, nothing dead\n");
	return a.n;
}

/* mailmill - ISC licence, see LICENSE */
/*
 * IDLE (RFC 2177) for a caller that watches many sessions with one poll():
 * the session never blocks waiting for news, only for the rest of a
 * response that has begun (within the command deadline).
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/clock.h"
#include "proto/imap.h"
#include "proto/imap_int.h"
#include "proto/net.h"

imap_status
imap_idle_start(imap_session *s, char **err_r)
{
	const imap_response *r;
	char tag[16];
	imap_status st;

	if ((st = imap_begin(s, "IDLE", 1, err_r)) != IMAP_OK)
		return st;
	if (!imap_has_capa(s, "IDLE"))
		return imap_fail(s, IMAP_EUSAGE, err_r, "IDLE: the server does not offer IDLE");
	imap_next_tag(s, tag);
	if ((st = imap_send(s, "IDLE", tag, "IDLE", NULL, 1, err_r)) != IMAP_OK)
		return st;
	for (;;) {
		if ((st = imap_read(s, "IDLE", &r, err_r)) != IMAP_OK)
			return st;
		if (r->kind == IMAP_R_CONTINUE)
			break;
		if (r->kind == IMAP_R_TAGGED) {
			if (r->tag_len != strlen(tag) || memcmp(r->tag, tag, r->tag_len) != 0)
				return imap_fail(s, IMAP_EPROTO, err_r, "IDLE: answer with unknown tag");
			st = imap_tagged_status(s, "IDLE", r, err_r);
			return st == IMAP_OK ? imap_fail(s, IMAP_EPROTO, err_r,
							 "IDLE: OK without a continuation") : st;
		}
		if ((st = imap_untagged(s, "IDLE", r, err_r)) != IMAP_OK)
			return st;
	}
	free(s->idle_tag);
	if ((s->idle_tag = strdup(tag)) == NULL)
		return imap_fail(s, IMAP_EIO, err_r, "IDLE: out of memory");
	s->idling = 1;
	return IMAP_OK;
}

int
imap_fd(const imap_session *s)
{
	return s->conn != NULL ? net_fd(s->conn) : -1;
}

int
imap_idle_pending(const imap_session *s)
{
	return s->conn != NULL && !s->broken && net_pending(s->conn) > 0;
}

int
imap_idling(const imap_session *s)
{
	return s->idling;
}

static unsigned
event_of(const imap_response *r)
{
	if (r->cond != IMAP_C_NONE || !r->has_number)
		return IMAP_IDLE_OTHER;
	if (r->name_len == 6 && strncasecmp(r->name, "EXISTS", 6) == 0)
		return IMAP_IDLE_EXISTS;
	if (r->name_len == 6 && strncasecmp(r->name, "RECENT", 6) == 0)
		return r->number > 0 ? IMAP_IDLE_EXISTS : IMAP_IDLE_OTHER;
	if (r->name_len == 7 && strncasecmp(r->name, "EXPUNGE", 7) == 0)
		return IMAP_IDLE_EXPUNGE;
	if (r->name_len == 5 && strncasecmp(r->name, "FETCH", 5) == 0)
		return IMAP_IDLE_FETCH;
	return IMAP_IDLE_OTHER;
}

static imap_status
check_idling(imap_session *s, const char *label, char **err_r)
{
	if (s == NULL || s->broken || s->conn == NULL) {
		err_set(err_r, "%s: the session is no longer usable", label);
		return IMAP_EUSAGE;
	}
	if (!s->idling)
		return imap_fail(s, IMAP_EUSAGE, err_r, "%s: IDLE is not running", label);
	return IMAP_OK;
}

imap_status
imap_idle_read(imap_session *s, unsigned *events_r, char **err_r)
{
	const imap_response *r;
	imap_status st;
	char *nerr = NULL;

	*events_r = 0;
	if ((st = check_idling(s, "IDLE", err_r)) != IMAP_OK)
		return st;
	net_deadline(s->conn, s->command_timeout_ms);
	/* what is buffered first: a BYE may sit there right before the EOF */
	if (net_pending(s->conn) == 0 && net_read_ready(s->conn, &nerr) < 0)
		return imap_net_fail(s, IMAP_EIO, "IDLE", nerr, err_r);
	/* every response already begun, none we would have to wait for */
	while (net_pending(s->conn) > 0 || imap_parser_busy(s->parser)) {
		if ((st = imap_read(s, "IDLE", &r, err_r)) != IMAP_OK)
			return st;
		if (r->kind == IMAP_R_CONTINUE)
			continue;
		if (r->kind == IMAP_R_TAGGED)
			return imap_fail(s, IMAP_EPROTO, err_r, "IDLE: tagged answer before DONE");
		*events_r |= event_of(r);
		if ((st = imap_untagged(s, "IDLE", r, err_r)) != IMAP_OK)
			return st;
	}
	return IMAP_OK;
}

imap_status
imap_idle_wait(imap_session *s, int timeout_ms, unsigned *events_r, char **err_r)
{
	long long end = clock_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	imap_status st;

	*events_r = 0;
	if ((st = check_idling(s, "IDLE", err_r)) != IMAP_OK)
		return st;
	for (;;) {
		struct pollfd pfd = { .fd = net_fd(s->conn), .events = POLLIN };
		long long left = end - clock_now_ms();
		int r;

		if (!imap_idle_pending(s)) {
			r = poll(&pfd, 1, left > 0 ? (int)(left > 1000000 ? 1000000 : left) : 0);
			if (r < 0 && errno != EINTR)
				return imap_fail(s, IMAP_EIO, err_r, "IDLE: poll: %s", strerror(errno));
			if (r <= 0) {
				if (left <= 0)
					return IMAP_OK;
				continue;
			}
		}
		if ((st = imap_idle_read(s, events_r, err_r)) != IMAP_OK || *events_r != 0)
			return st;
		if (clock_now_ms() >= end)
			return IMAP_OK;
	}
}

imap_status
imap_idle_done(imap_session *s, char **err_r)
{
	imap_status st;

	if ((st = check_idling(s, "DONE", err_r)) != IMAP_OK)
		return st;
	net_deadline(s->conn, s->command_timeout_ms);
	imap_trace(s, 'C', "DONE", 4);
	s->idling = 0;
	if ((st = imap_send_raw(s, "DONE", "DONE\r\n", 6, 1, err_r)) != IMAP_OK)
		return st;
	return imap_wait(s, "DONE", s->idle_tag, NULL, NULL, NULL, err_r);
}

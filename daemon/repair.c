/* mailmill - ISC licence, see LICENSE */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "daemon/core/log.h"
#include "daemon/repair.h"
#include "daemon/store/store.h"

/* The store for one repair; NULL after logging why. */
static store *
repair_open(const cfg *c)
{
	store *st = NULL;
	char *err = NULL;

	if (store_open_cfg(c, 0, &st, &err) < 0) {
		log_error("cannot open the store: %s", err);
		free(err);
		return NULL;
	}
	return st;
}

/* An outbox id as --outbox shows it ("12" or "#12"): 0, or -1 if it is not one. */
static int
repair_id(const char *s, long long *id_r)
{
	char *end;

	if (s[0] == '#')
		s++;
	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	*id_r = strtoll(s, &end, 10);
	return errno != 0 || *end != '\0' || *id_r <= 0 ? -1 : 0;
}

int
repair_release(const cfg *c, const char *account, const char *uid)
{
	store *st;
	char *err = NULL;
	int rc;

	if (cfg_find_account(c, account) == NULL) {
		log_error("--release: no account '%s' in the configuration", account);
		return EX_DATAERR;
	}
	if ((st = repair_open(c)) == NULL)
		return EX_TEMPFAIL;
	rc = store_quarantine_release(st, account, uid, &err);
	store_close(&st);
	if (rc < 0) {
		log_error("--release: %s", err);
		free(err);
		return EX_TEMPFAIL;
	}
	if (rc == 0) {
		log_error("%s: uid %s is not in quarantine (see mailmilld --status)", account, uid);
		return EX_DATAERR;
	}
	log_warn("%s: uid %s released from quarantine by the administrator: processed again on "
		 "the next run", account, uid);
	return EX_OK;
}

int
repair_retry(const cfg *c, const char *what)
{
	long long id = -1, n = 0;
	store *st;
	char *err = NULL;

	if (strcmp(what, "all") != 0 && repair_id(what, &id) < 0) {
		log_error("--retry: '%s' is not an outbox id (see mailmilld --outbox) or \"all\"",
			  what);
		return EX_USAGE;
	}
	if ((st = repair_open(c)) == NULL)
		return EX_TEMPFAIL;
	if (store_outbox_wake(st, id, (long long)time(NULL), &n, &err) < 0) {
		log_error("--retry: %s", err);
		free(err);
		store_close(&st);
		return EX_TEMPFAIL;
	}
	store_close(&st);
	if (id >= 0 && n == 0) {
		log_error("outbox: no queued or dead mail #%lld (see mailmilld --outbox)", id);
		return EX_DATAERR;
	}
	if (id >= 0)
		log_warn("outbox: #%lld due now (--retry by the administrator)", id);
	else
		log_warn("outbox: %lld queued or dead message(s) due now (--retry all by the "
			 "administrator)", n);
	return EX_OK;
}

/* store_outbox_get's callback: a copy of the row's recipients, one line. */
static int
repair_rcpts(void *arg, const store_outbox_row *row)
{
	char **rcpts = arg;

	if ((*rcpts = strdup(row->rcpts)) != NULL)
		for (char *p = *rcpts; *p != '\0'; p++)
			if (*p == '\n')
				*p = ',';
	return 0;
}

int
repair_drop(const cfg *c, const char *what)
{
	long long id;
	char *err = NULL, *rcpts = NULL;
	store *st;
	int rc;

	if (repair_id(what, &id) < 0) {
		log_error("--drop: '%s' is not an outbox id (see mailmilld --outbox)", what);
		return EX_USAGE;
	}
	if ((st = repair_open(c)) == NULL)
		return EX_TEMPFAIL;
	/* The recipients first: the log line is the only trace of the mail. */
	rc = store_outbox_get(st, id, repair_rcpts, &rcpts, &err);
	if (rc > 0)
		rc = store_outbox_drop(st, id, &err);
	store_close(&st);
	if (rc < 0) {
		log_error("--drop: %s", err);
		free(err);
		free(rcpts);
		return EX_TEMPFAIL;
	}
	if (rc == 0) {
		log_error("outbox: no mail #%lld (see mailmilld --outbox)", id);
		free(rcpts);
		return EX_DATAERR;
	}
	log_warn("outbox: #%lld to %s dropped by the administrator: it will not be sent", id,
		 rcpts != NULL ? rcpts : "?");
	free(rcpts);
	return EX_OK;
}

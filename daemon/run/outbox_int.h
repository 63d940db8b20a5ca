/* mailmill - ISC licence, see LICENSE */
#ifndef MM_OUTBOX_INT_H
#define MM_OUTBOX_INT_H
/*
 * Shared by the files of the outbox (outbox.c: the flush; outbox_relay.c:
 * the connection; outbox_show.c: the listing).  outbox.h is the interface.
 */
#include "proto/smtp.h"
#include "daemon/core/cfg.h"
#include "daemon/store/store.h"

/* What the trace callback of one session needs. */
typedef struct outbox_tracer {
	int log;       /* the operator asked for a protocol trace */
	int dot_sent;  /* the final dot is out; the next server line is its reply */
} outbox_tracer;

/*
 * Connect to c's relay and sign in; the session traces through tr (which
 * outlives it).  *how_r: the login used (not to be freed); *signin_r: no OAuth token
 * could be had (already logged).  SMTP_OK, or the failure with *err_r.
 */
smtp_status outbox_connect(const cfg *c, store *st, outbox_tracer *tr, smtp_session **s_r,
			   const char **how_r, int *signin_r, char **err_r);
#endif

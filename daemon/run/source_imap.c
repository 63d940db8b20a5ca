/* mailmill - ISC licence, see LICENSE */
/*
 * The IMAP mail source (source.h).
 */
#include "daemon/run/source.h"
#include "daemon/core/log.h"

static int
imap_src_open(run *r, run_dial *dial)
{
	run_dial_free(&dial);
	log_error("%s: protocol \"imap\" is not built into this mailmilld yet", r->a->name);
	r->stats->fail = RUN_FAIL_AUTH;
	return -1;
}

const run_source_ops run_source_imap = {
	.name = "imap",
	.open = imap_src_open,
	.verb = "finish", .verbing = "finishing", .verbed = "finished",
	.fetch_cmd = "UID FETCH", .fetch_refused = "the server refused UID FETCH",
};

/* mailmill - ISC licence, see LICENSE */
#ifndef MM_STATUS_H
#define MM_STATUS_H
/*
 * mailmilld --status: what the store says, read-only, so it works while
 * the daemon runs: whether a daemon holds the state directory, and per
 * account its last run (when, result, error, counts), its next run, its
 * quarantined messages; then the outbox.
 */
#include <stdio.h>
#include "daemon/core/cfg.h"

/* Exit status: 0 all well, 75 a last run failed or messages are in
 * quarantine, 69 the store cannot be read. */
int status_print(const cfg *c, FILE *out);
#endif

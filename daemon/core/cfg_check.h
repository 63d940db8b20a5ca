/* mailmill - ISC licence, see LICENSE */
#ifndef MM_CFG_CHECK_H
#define MM_CFG_CHECK_H
/*
 * --check-config's second half: a configuration whose every setting is
 * valid (cfg_load) but that cannot work once it runs.  Run it as the
 * workers will run (main.c calls it as `user` when started as root), so
 * that "cannot read" and "cannot write" are said for them.
 *
 * Errors (the setup cannot work):
 *  - a stage that queues mail (autoreply, forward; ticket with
 *    acknowledgements or notify) and no `smtp` relay: the replies would
 *    wait for ever while their messages are deleted;
 *  - a `ca_file` (an account's, the relay's, an oauth2 group's, a ticket
 *    stage's `webhook_ca_file`) that is missing, not a file, or unreadable;
 *  - a ticket stage's `json_dir` the worker cannot write or create.
 * Warnings (it works, but an administrator would want to know):
 *  - a ticket `webhook_url` over plain http:// to a host other than loopback.
 * (An archive path the worker cannot create or write, and a webhook URL
 * that is not http(s), are refused by those plugins' own checks.)
 *
 * Each finding is one line "file:line: where: what", pointing at the
 * offending setting.  Returns the number of errors; *errors_r and
 * *warnings_r (g_malloc'd, caller g_frees; NULL when none) hold the lines.
 */
#include "daemon/core/cfg.h"

int cfg_check_setup(const cfg *c, char **errors_r, char **warnings_r);
#endif

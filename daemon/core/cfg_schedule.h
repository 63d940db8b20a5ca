/* mailmill - ISC licence, see LICENSE */
#ifndef MM_CFG_SCHEDULE_H
#define MM_CFG_SCHEDULE_H
/*
 * The account keys of archiving on a schedule (mailmill.conf(5)):
 *   at = [ "02:00", "14:00" ];   local times, 24-hour HH:MM
 *   delete_after = "30d";        done mail stays on the server that long
 * into the cfg_account fields n_at, at[], at_only and delete_after_s.
 */
#include <libconfig.h>
#include "daemon/core/cfg.h"

/* How cfg.c is told of a problem: s is the setting to point at, msg one
 * line without the account context (the signature of oauth_cfg_err_fn). */
typedef void cfg_schedule_err_fn(void *arg, const config_setting_t *s, const char *msg);

/*
 * Called by cfg.c for each setting s of an account group: 1 if s is one of
 * these keys (taken, problems reported through err), 0 if it is not.  It
 * looks at s's siblings for what decides with it: `at` without `interval`
 * sets at_only; `delete_after` with `keep = true` is refused (keep never
 * deletes).
 */
int cfg_schedule_setting(const config_setting_t *s, cfg_account *a, cfg_schedule_err_fn *err,
			 void *arg);
#endif

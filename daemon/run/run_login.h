/* mailmill - ISC licence, see LICENSE */
#ifndef MM_RUN_LOGIN_H
#define MM_RUN_LOGIN_H
/* Connecting and signing in, shared by run_account and run_check_login. */
#include "proto/pop3.h"
#include "daemon/run/run.h"

void run_pop3_options(const cfg_account *a, pop3_options *po);
/*
 * Connect (over dial when given: taken over) and authenticate as a says:
 * 0 and *s_r (close with pop3_close), *how_r the mechanism used (static);
 * -1 (logged; *s_r may hold a session to close) and *fail_r.  OAuth tokens
 * are cached in `tokens`; config_path goes into the "needs sign-in" line.
 */
int run_sign_in(const cfg_account *a, store *tokens, const char *config_path, run_dial *dial,
		pop3_trace_fn *trace, void *targ, pop3_session **s_r, const char **how_r,
		run_fail *fail_r);
#endif

/* mailmill - ISC licence, see LICENSE */
#ifndef MM_RUN_LOGIN_H
#define MM_RUN_LOGIN_H
/* Connecting and signing in, shared by run_account and run_check_login. */
#include "proto/pop3.h"
#include "proto/imap.h"
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

/*
 * IMAP: connect (implicit TLS, STARTTLS or none as a->tls says) and sign in
 * as a says: LOGIN or AUTHENTICATE PLAIN with the password (never over a
 * link without TLS unless allow_plaintext_password), or XOAUTH2 /
 * OAUTHBEARER with the token cached in `tokens` (refreshed once and tried
 * once more if the server refuses a cached one).  For the account run and
 * for daemon/sched's IDLE watchers.  0 and *s_r (close with imap_close),
 * *how_r the mechanism (static); -1 (logged; *s_r NULL) and *fail_r.
 * trace may be NULL.
 */
int run_imap_sign_in(const cfg_account *a, store *tokens, const char *config_path,
		     imap_trace_fn *trace, void *targ, imap_session **s_r, const char **how_r,
		     run_fail *fail_r);
/* --check-login's protocol trace (arg: the run_opts), for POP3 and IMAP. */
void run_check_trace(void *arg, char dir, const char *line, size_t len);
/* run_check_login for an IMAP account: the certificate, CAPABILITY, each
 * folder's EXISTS, UIDVALIDITY and UIDNEXT (EXAMINE: nothing changes). */
int run_check_login_imap(const cfg *c, const cfg_account *a, store *st, const run_opts *o,
			 FILE *out);
/* The options proto/imap connects with for a. */
void run_imap_options(const cfg_account *a, imap_options *io);

/* One protocol's side of an OAuth sign-in (run_oauth_sign_in). */
typedef struct run_signin_ops {
	int (*connect)(void *ctx);   /* 0, or -1 (logged) */
	/* 0 signed in; 1 the server refused the token; -1 another failure;
	 * *how_r the mechanism, *err_r why. */
	int (*oauth)(void *ctx, const char *token, const char **how_r, char **err_r);
	run_fail (*refused)(void *ctx, const char *how, const char *err);  /* logs */
	void (*disconnect)(void *ctx);
} run_signin_ops;
/* Get a token, connect, present it; a cached token refused is refreshed
 * once and tried once more on a new connection.  0, or -1 (logged, *fail_r). */
int run_oauth_sign_in(const cfg_account *a, store *tokens, const char *config_path,
		      const run_signin_ops *ops, void *ctx, const char **how_r,
		      run_fail *fail_r);
#endif

/* mailmill - ISC licence, see LICENSE */
/*
 * Connecting and signing in to an IMAP server (run_login.h): for the
 * account run (source_imap.c), --check-login, and daemon/sched's IDLE
 * watchers.  The rules are POP3's: TLS as the account says and never a
 * fallback, no password over a link without TLS unless
 * allow_plaintext_password, OAuth through the token cache with one refresh
 * and one retry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "proto/imap.h"
#include "daemon/run/run.h"
#include "daemon/run/run_login.h"
#include "daemon/core/log.h"
#include "daemon/core/secret.h"

void
run_imap_options(const cfg_account *a, imap_options *io)
{
	memset(io, 0, sizeof *io);
	io->host = a->host;
	io->port = a->port;
	io->tls = a->tls == CFG_TLS_IMPLICIT ? IMAP_TLS_IMPLICIT :
		  a->tls == CFG_TLS_STARTTLS ? IMAP_TLS_STARTTLS : IMAP_TLS_NONE;
	io->ca_file = a->ca_file;
	io->connect_timeout_ms = (int)(a->connect_timeout_s * 1000);
	io->command_timeout_ms = (int)(a->timeout_s * 1000);
	/* Messages as POP3 gives them: archives, plugins and digests see the
	 * same bytes whichever protocol fetched. */
	io->lf_line_ends = 1;
}

typedef struct imap_signin {
	const cfg_account *a;
	imap_trace_fn *trace;
	void *targ;
	imap_session **s_r;
	imap_status st;
} imap_signin;

static int
imap_signin_connect(void *ctx)
{
	imap_signin *p = ctx;
	imap_options io;
	char *err = NULL;

	run_imap_options(p->a, &io);
	if (imap_connect_trace(&io, p->trace, p->targ, p->s_r, &err) != IMAP_OK) {
		if (err != NULL && strstr(err, p->a->host) != NULL)
			log_error("%s: cannot connect: %s", p->a->name, err);
		else
			log_error("%s: cannot connect to %s:%s: %s", p->a->name, p->a->host,
				  p->a->port, err != NULL ? err : "out of memory");
		free(err);
		return -1;
	}
	if (imap_is_tls(*p->s_r))
		log_debug("%s: %s", p->a->name, imap_tls_describe(*p->s_r));
	if (imap_alert(*p->s_r)[0] != '\0')
		log_warn("%s: the server says: %s", p->a->name, imap_alert(*p->s_r));
	return 0;
}

/* A refusal's run_fail: permanent unless the server said it is temporary. */
static run_fail
imap_signin_refused(void *ctx, const char *how, const char *err)
{
	imap_signin *p = ctx;
	const char *code = *p->s_r != NULL ? imap_last_code(*p->s_r) : "";

	if (p->st == IMAP_EAUTH) {
		int temp = imap_code_is_temporary(code);

		log_error("%s: authentication failed (%s as %s): %s%s", p->a->name, how,
			  p->a->user, err != NULL ? err : "refused",
			  temp ? " (temporary, the server says)" : "");
		return temp ? RUN_FAIL_TEMP : RUN_FAIL_AUTH;
	}
	log_error("%s: login (%s) failed: %s", p->a->name, how, err != NULL ? err : "error");
	return p->st == IMAP_EUSAGE ? RUN_FAIL_AUTH : RUN_FAIL_TEMP;
}

static int
imap_signin_oauth(void *ctx, const char *token, const char **how_r, char **err_r)
{
	imap_signin *p = ctx;
	const char *mech = p->a->auth == CFG_AUTH_XOAUTH2 ? "XOAUTH2" :
			   p->a->auth == CFG_AUTH_OAUTHBEARER ? "OAUTHBEARER" : NULL;

	p->st = imap_auth_oauth(*p->s_r, mech, p->a->user, token, how_r, err_r);
	return p->st == IMAP_OK ? 0 : p->st == IMAP_EAUTH ? 1 : -1;
}

static void
imap_signin_disconnect(void *ctx)
{
	imap_signin *p = ctx;

	imap_close(p->s_r);
}

static const run_signin_ops imap_signin_ops = {
	imap_signin_connect, imap_signin_oauth, imap_signin_refused, imap_signin_disconnect,
};

/* A password: AUTHENTICATE PLAIN when asked for or offered, else LOGIN. */
static int
imap_login_password(imap_signin *p, const char **how_r, run_fail *fail_r)
{
	const cfg_account *a = p->a;
	imap_session *s = *p->s_r;
	char *err = NULL, *password = NULL;
	const char *how;

	if (!imap_is_tls(s) && !a->allow_plaintext_password) {
		log_error("%s: refusing to send the password over a connection without TLS (set"
			  " tls, or allow_plaintext_password = true)", a->name);
		*fail_r = RUN_FAIL_AUTH;
		return -1;
	}
	if (secret_get(&a->secret, &password, &err) < 0) {
		log_error("%s: cannot get the password: %s", a->name, err != NULL ? err : "error");
		free(err);
		*fail_r = RUN_FAIL_TEMP;
		return -1;
	}
	if (a->auth == CFG_AUTH_PLAIN || (a->auth == CFG_AUTH_AUTO && imap_has_auth(s, "PLAIN")))
		how = "PLAIN";
	else
		how = "LOGIN";
	if (strcmp(how, "PLAIN") == 0)
		p->st = imap_authenticate(s, "PLAIN", a->user, password, &err);
	else
		p->st = imap_login(s, a->user, password, &err);
	secret_wipe(&password);
	*how_r = how;
	if (p->st == IMAP_OK)
		return 0;
	*fail_r = imap_signin_refused(p, how, err);
	free(err);
	return -1;
}

int
run_imap_sign_in(const cfg_account *a, store *tokens, const char *config_path,
		 imap_trace_fn *trace, void *targ, imap_session **s_r, const char **how_r,
		 run_fail *fail_r)
{
	imap_signin p = { a, trace, targ, s_r, IMAP_OK };
	int rc;

	*s_r = NULL;
	*how_r = NULL;
	*fail_r = RUN_FAIL_TEMP;
	if (a->oauth != NULL) {
		/* The token first (run_oauth_sign_in connects after it). */
		rc = run_oauth_sign_in(a, tokens, config_path, &imap_signin_ops, &p, how_r,
				       fail_r);
	} else if (imap_signin_connect(&p) < 0) {
		rc = -1;
	} else if (imap_is_authenticated(*s_r)) {
		*how_r = "PREAUTH";
		rc = 0;
	} else {
		rc = imap_login_password(&p, how_r, fail_r);
	}
	if (rc < 0)
		imap_close(s_r);
	return rc;
}

int
run_check_login_imap(const cfg *c, const cfg_account *a, store *st, const run_opts *o,
		     FILE *out)
{
	imap_session *s = NULL;
	const char *how = NULL;
	run_fail fail;
	char *err = NULL, capa[1024];
	int rc = -1;

	if (run_imap_sign_in(a, st, c->path, run_check_trace, (void *)o, &s, &how,
			     &fail) < 0) {
		fprintf(out, "account %s: %s:%s: login FAILED (see the log above)\n", a->name,
			a->host, a->port);
		return -1;
	}
	if (imap_capability(s, &err) != IMAP_OK) {
		log_error("%s: after the login: %s", a->name, err != NULL ? err : "error");
		fprintf(out, "account %s: signed in, but CAPABILITY failed\n", a->name);
		free(err);
		goto out;
	}
	imap_capa_text(s, capa, sizeof capa);
	fprintf(out, "account %s: %s:%s, %s, signed in with %s as %s; nothing changed\n",
		a->name, a->host, a->port, imap_is_tls(s) ? imap_tls_describe(s) : "no TLS",
		how != NULL ? how : "-", a->user);
	fprintf(out, "  connect:  %s:%s (IMAP)\n", a->host, a->port);
	if (imap_is_tls(s))
		fprintf(out, "  TLS:      %s; certificate %s\n", imap_tls_describe(s),
			imap_tls_cert(s));
	else
		fprintf(out, "  TLS:      none\n");
	fprintf(out, "  login:    %s as %s\n", how != NULL ? how : "-", a->user);
	fprintf(out, "  CAPABILITY: %s\n", capa[0] != '\0' ? capa : "(none)");
	rc = 0;
	/* EXAMINE: read-only, so not even \Recent changes. */
	for (size_t i = 0; i < a->n_folders; i++) {
		imap_mailbox info;

		if (imap_examine(s, a->folders[i], &info, &err) != IMAP_OK) {
			fprintf(out, "  folder:   %s: cannot be opened: %s\n", a->folders[i],
				err != NULL ? err : "error");
			free(err);
			err = NULL;
			rc = -1;
			continue;
		}
		fprintf(out, "  folder:   %s: %u message(s), UIDVALIDITY %u, UIDNEXT %u\n",
			a->folders[i], (unsigned)info.exists, (unsigned)info.uidvalidity,
			(unsigned)info.uidnext);
	}
	if (a->after == CFG_AFTER_MOVE || a->after == CFG_AFTER_DELETE)
		fprintf(out, "  after:    %s%s%s\n", a->after == CFG_AFTER_MOVE ? "move" : "delete",
			imap_has_capa(s, "UIDPLUS") ? "" : " (no UIDPLUS: flagged \\Deleted only)",
			a->after == CFG_AFTER_MOVE && !imap_has_capa(s, "MOVE") ?
			" (no MOVE: UID COPY, then \\Deleted)" : "");
	if (imap_logout(s, &err) != IMAP_OK) {
		log_debug("%s: LOGOUT: %s", a->name, err != NULL ? err : "failed");
		free(err);
	}
out:
	imap_close(&s);
	return rc;
}

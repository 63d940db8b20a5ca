/* mailmill - ISC licence, see LICENSE */
/*
 * Connect and sign in for an account run and for --check-login: a password
 * (USER/PASS, APOP, SASL PLAIN/LOGIN) or an OAuth access token (XOAUTH2,
 * OAUTHBEARER).  A cached token the server refuses is refreshed once and
 * tried once more on a new connection, never in a loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "proto/pop3.h"
#include "daemon/run/run.h"
#include "daemon/run/run_login.h"
#include "daemon/core/log.h"
#include "daemon/oauth/oauth.h"

struct run_dial {
	pop3_dial *d;
	char *err;    /* why the connect failed (free), or NULL */
};

void
run_pop3_options(const cfg_account *a, pop3_options *po)
{
	memset(po, 0, sizeof *po);
	po->host = a->host;
	po->port = a->port;
	po->tls = a->tls == CFG_TLS_IMPLICIT ? POP3_TLS_IMPLICIT :
		  a->tls == CFG_TLS_STARTTLS ? POP3_TLS_STLS : POP3_TLS_NONE;
	po->ca_file = a->ca_file;
	po->connect_timeout_ms = (int)(a->connect_timeout_s * 1000);
	po->command_timeout_ms = (int)(a->timeout_s * 1000);
}

run_dial *
run_dial_start(const cfg_account *a)
{
	run_dial *d;
	pop3_options po;

	/* IMAP connects when it signs in (run_imap_sign_in). */
	if (a->protocol != CFG_PROTO_POP3 || (d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	run_pop3_options(a, &po);
	if (pop3_dial_open(&po, &d->d, &d->err) != POP3_OK && d->err == NULL)
		d->err = strdup("out of memory");
	return d;
}

void
run_dial_free(run_dial **d)
{
	if (*d == NULL)
		return;
	pop3_dial_close(&(*d)->d);
	free((*d)->err);
	free(*d);
	*d = NULL;
}

run_fail
run_oauth_failed(const char *config_path, const char *what, int status, const char *err)
{
	const char *why = err != NULL ? err : "error";

	switch ((oauth_status)status) {
	case OAUTH_SIGNIN:
		log_error("%s: needs sign-in (%s): nothing is fetched or sent for it until someone "
			  "runs: mailmilld -c %s --sign-in %s", what, why,
			  config_path != NULL ? config_path : "FILE", what);
		return RUN_FAIL_AUTH;
	case OAUTH_REFUSED:
		log_error("%s: cannot get an access token: %s (check the oauth2 settings)", what, why);
		return RUN_FAIL_AUTH;
	default:
		log_error("%s: cannot get an access token: %s: tried again on the next run", what, why);
		return RUN_FAIL_TEMP;
	}
}

/* Whether err names the server already: its host, or ":port" on its own. */
static int
run_names_server(const char *err, const cfg_account *a)
{
	size_t n = strlen(a->port);

	if (strstr(err, a->host) != NULL)
		return 1;
	for (const char *p = strchr(err, ':'); p != NULL; p = strchr(p + 1, ':'))
		if (strncmp(p + 1, a->port, n) == 0 && (p[1 + n] < '0' || p[1 + n] > '9'))
			return 1;
	return 0;
}

static int
run_connect_once(const cfg_account *a, run_dial **dial, pop3_trace_fn *trace, void *targ,
		 pop3_session **s_r)
{
	pop3_options po;
	pop3_status ps;
	char *err = NULL;

	run_pop3_options(a, &po);
	if (*dial == NULL) {
		ps = pop3_connect_trace(&po, trace, targ, s_r, &err);
	} else if ((*dial)->d == NULL) {
		ps = POP3_EIO;
		err = (*dial)->err;
		(*dial)->err = NULL;
	} else {
		ps = pop3_connect_dial((*dial)->d, &po, trace, targ, s_r, &err);
		(*dial)->d = NULL;
	}
	run_dial_free(dial);
	if (ps != POP3_OK) {
		/* Most of proto/'s errors name the address already: said once. */
		if (err != NULL && run_names_server(err, a))
			log_error("%s: cannot connect: %s", a->name, err);
		else
			log_error("%s: cannot connect to %s:%s: %s", a->name, a->host, a->port,
				  err != NULL ? err : "out of memory");
		free(err);
		return -1;
	}
	if (pop3_is_tls(*s_r))
		log_debug("%s: %s", a->name, pop3_tls_describe(*s_r));
	return 0;
}

/* A refusal's run_fail: permanent unless the server said it is temporary. */
static run_fail
run_refused(const cfg_account *a, pop3_session *s, pop3_status ps, const char *how,
	    const char *err)
{
	if (ps == POP3_EAUTH || ps == POP3_ENEG) {
		pop3_rcode rc = pop3_last_code(s);

		log_error("%s: authentication failed (%s as %s): %s%s", a->name, how, a->user,
			  err != NULL ? err : "refused",
			  pop3_rcode_is_temporary(rc) ? " (temporary, the server says)" : "");
		return pop3_rcode_is_temporary(rc) ? RUN_FAIL_TEMP : RUN_FAIL_AUTH;
	}
	log_error("%s: login (%s) failed: %s", a->name, how, err != NULL ? err : "error");
	return ps == POP3_EUSAGE ? RUN_FAIL_AUTH : RUN_FAIL_TEMP;
}

static int
run_login_password(const cfg_account *a, pop3_session *s, const char **how_r, run_fail *fail_r)
{
	const char *how;
	char *err = NULL, *password = NULL;
	pop3_status ps;

	if (secret_get(&a->secret, &password, &err) < 0) {
		log_error("%s: cannot get the password: %s", a->name, err != NULL ? err : "error");
		free(err);
		*fail_r = RUN_FAIL_TEMP;
		return -1;
	}
	switch (a->auth) {
	case CFG_AUTH_USER: how = "USER"; break;
	case CFG_AUTH_APOP: how = "APOP"; break;
	case CFG_AUTH_PLAIN: how = "PLAIN"; break;
	case CFG_AUTH_LOGIN: how = "LOGIN"; break;
	default:
		if (pop3_has_sasl(s, "PLAIN"))
			how = "PLAIN";
		else if (pop3_has_sasl(s, "LOGIN"))
			how = "LOGIN";
		else if (!pop3_is_tls(s) && pop3_has_apop(s))
			how = "APOP";
		else
			how = "USER";
	}
	if (strcmp(how, "USER") == 0) {
		ps = pop3_user(s, a->user, &err);
		if (ps == POP3_OK)
			ps = pop3_pass(s, password, &err);
	} else if (strcmp(how, "APOP") == 0) {
		ps = pop3_apop(s, a->user, password, &err);
	} else {
		ps = pop3_auth(s, how, a->user, password, &err);
	}
	secret_wipe(&password);
	*how_r = how;
	if (ps == POP3_OK)
		return 0;
	*fail_r = run_refused(a, s, ps, how, err);
	free(err);
	return -1;
}

int
run_oauth_sign_in(const cfg_account *a, store *tokens, const char *config_path,
		  const run_signin_ops *ops, void *ctx, const char **how_r, run_fail *fail_r)
{
	char *token = NULL, *err = NULL;
	int cached = 0, rc = -1;

	/* The token first: an endpoint that is down fails the run before the
	 * server sees a login. */
	for (int attempt = 0; attempt < 2; attempt++) {
		oauth_status os = oauth_token_get(tokens, a->oauth, a->user, attempt > 0, &token,
						  &cached, &err);
		int r;

		if (os != OAUTH_OK) {
			*fail_r = run_oauth_failed(config_path, a->name, (int)os, err);
			free(err);
			break;
		}
		if (ops->connect(ctx) < 0)
			break;
		r = ops->oauth(ctx, token, how_r, &err);
		secret_wipe(&token);
		if (r == 0) {
			rc = 0;
			break;
		}
		if (r == 1 && cached && attempt == 0) {
			char *e2 = NULL;

			log_info("%s: the server refused the cached access token (%s): getting a new "
				 "one and trying once more", a->name, err != NULL ? err : "refused");
			free(err);
			err = NULL;
			if (oauth_token_refused(tokens, a->oauth, a->user, &e2) < 0) {
				log_warn("%s: cannot forget the refused token: %s", a->name, e2);
				free(e2);
			}
			ops->disconnect(ctx);
			continue;
		}
		*fail_r = ops->refused(ctx, *how_r != NULL ? *how_r : "OAuth", err);
		free(err);
		break;
	}
	secret_wipe(&token);
	return rc;
}

/* run_sign_in's side of run_oauth_sign_in. */
typedef struct pop3_signin {
	const cfg_account *a;
	run_dial **dial;
	pop3_trace_fn *trace;
	void *targ;
	pop3_session **s_r;
	pop3_status ps;
} pop3_signin;

static int
pop3_signin_connect(void *ctx)
{
	pop3_signin *p = ctx;

	return run_connect_once(p->a, p->dial, p->trace, p->targ, p->s_r);
}

static int
pop3_signin_oauth(void *ctx, const char *token, const char **how_r, char **err_r)
{
	pop3_signin *p = ctx;
	const char *mech = p->a->auth == CFG_AUTH_XOAUTH2 ? "XOAUTH2" :
			   p->a->auth == CFG_AUTH_OAUTHBEARER ? "OAUTHBEARER" : NULL;

	p->ps = pop3_auth_oauth(*p->s_r, mech, p->a->user, token, how_r, err_r);
	return p->ps == POP3_OK ? 0 : p->ps == POP3_EAUTH ? 1 : -1;
}

static run_fail
pop3_signin_refused(void *ctx, const char *how, const char *err)
{
	pop3_signin *p = ctx;

	return run_refused(p->a, *p->s_r, p->ps, how, err);
}

static void
pop3_signin_disconnect(void *ctx)
{
	pop3_signin *p = ctx;

	pop3_close(p->s_r);
}

static const run_signin_ops pop3_signin_ops = {
	pop3_signin_connect, pop3_signin_oauth, pop3_signin_refused, pop3_signin_disconnect,
};

int
run_sign_in(const cfg_account *a, store *tokens, const char *config_path, run_dial *dial,
	    pop3_trace_fn *trace, void *targ, pop3_session **s_r, const char **how_r,
	    run_fail *fail_r)
{
	pop3_signin p = { a, &dial, trace, targ, s_r, POP3_OK };
	int rc;

	*s_r = NULL;
	*how_r = NULL;
	*fail_r = RUN_FAIL_TEMP;
	if (a->oauth == NULL) {
		if (run_connect_once(a, &dial, trace, targ, s_r) < 0)
			return -1;
		return run_login_password(a, *s_r, how_r, fail_r);
	}
	rc = run_oauth_sign_in(a, tokens, config_path, &pop3_signin_ops, &p, how_r, fail_r);
	run_dial_free(&dial);
	return rc;
}

void
run_check_trace(void *arg, char dir, const char *line, size_t len)
{
	const run_opts *o = arg;

	if (o->trace)
		log_debug("check-login: %s %.*s", dir == 'C' ? "C:" : "S:",
			  (int)(len > 300 ? 300 : len), line);
}

int
run_check_login(const cfg *c, const cfg_account *a, store *st, const run_opts *o, FILE *out)
{
	pop3_session *s = NULL;
	const char *how = NULL;
	run_fail fail;
	unsigned long count = 0;
	unsigned long long octets = 0;
	char *err = NULL, capa[1024];
	int rc = -1;

	if (a->protocol == CFG_PROTO_IMAP)
		return run_check_login_imap(c, a, st, o, out);
	if (run_sign_in(a, st, c->path, NULL, run_check_trace, (void *)o, &s, &how, &fail) < 0) {
		fprintf(out, "account %s: %s:%s: login FAILED (see the log above)\n", a->name,
			a->host, a->port);
		goto out;
	}
	if (pop3_capa(s, &err) != POP3_OK || pop3_stat(s, &count, &octets, &err) != POP3_OK) {
		log_error("%s: after the login: %s", a->name, err != NULL ? err : "error");
		fprintf(out, "account %s: signed in, but CAPA/STAT failed\n", a->name);
		free(err);
		goto out;
	}
	pop3_capa_text(s, capa, sizeof capa);
	fprintf(out, "account %s: %s:%s, %s, signed in with %s as %s; %lu message(s), %llu "
		"bytes; nothing changed\n", a->name, a->host, a->port,
		pop3_is_tls(s) ? pop3_tls_describe(s) : "no TLS", how != NULL ? how : "-", a->user,
		count, octets);
	/* The details, one per line, for a person checking a new setup. */
	fprintf(out, "  connect:  %s:%s\n", a->host, a->port);
	if (pop3_is_tls(s))
		fprintf(out, "  TLS:      %s; certificate %s\n", pop3_tls_describe(s), pop3_tls_cert(s));
	else
		fprintf(out, "  TLS:      none\n");
	fprintf(out, "  login:    %s as %s\n", how != NULL ? how : "-", a->user);
	fprintf(out, "  CAPA:     %s\n", capa[0] != '\0' ? capa : "(none)");
	fprintf(out, "  STAT:     %lu message(s), %llu bytes\n", count, octets);
	if (pop3_quit(s, &err) != POP3_OK) {
		log_debug("%s: QUIT: %s", a->name, err != NULL ? err : "failed");
		free(err);
	}
	rc = 0;
out:
	pop3_close(&s);
	return rc;
}

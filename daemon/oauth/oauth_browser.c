/* mailmill - ISC licence, see LICENSE */
/*
 * The browser sign-in (RFC 6749 4.1 with PKCE, RFC 7636, and a loopback
 * redirect, RFC 8252 7.3) for providers whose device sign-in does not allow
 * mail scopes: Google refuses https://mail.google.com/ there.  mailmilld
 * listens on 127.0.0.1 for the one redirect; a browser on another machine
 * reaches it through `ssh -L PORT:127.0.0.1:PORT host`.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <glib.h>

#include "daemon/oauth/oauth.h"
#include "proto/err.h"

#define BROWSER_WAIT_S 600
#define BROWSER_REQUEST_MAX 8192

/* base64url without padding (RFC 7636 appendix A). */
static char *
browser_b64url(const guchar *data, size_t len)
{
	gchar *b = g_base64_encode(data, len);
	char *p;

	for (p = b; *p; p++) {
		if (*p == '+')
			*p = '-';
		else if (*p == '/')
			*p = '_';
		else if (*p == '=') {
			*p = '\0';
			break;
		}
	}
	return b;
}

static char *
browser_random(size_t n)
{
	guchar buf[64];

	if (n > sizeof buf || getrandom(buf, n, 0) != (ssize_t)n)
		return NULL;
	return browser_b64url(buf, n);
}

/* The PKCE challenge of a verifier: base64url(SHA-256(verifier)). */
char *
oauth_pkce_challenge(const char *verifier)
{
	GChecksum *c = g_checksum_new(G_CHECKSUM_SHA256);
	guchar digest[32];
	gsize len = sizeof digest;
	char *out;

	g_checksum_update(c, (const guchar *)verifier, (gssize)strlen(verifier));
	g_checksum_get_digest(c, digest, &len);
	g_checksum_free(c);
	out = browser_b64url(digest, len);
	return out;
}

/* One query parameter of "GET /?a=b&c=d HTTP/1.1" (decoded, g_free), or NULL. */
char *
oauth_redirect_param(const char *request, const char *name)
{
	const char *q = strchr(request, '?'), *end;
	size_t n = strlen(name);

	if (strncmp(request, "GET /", 5) != 0 || q == NULL)
		return NULL;
	end = q + strcspn(q, " \r\n");
	for (const char *p = q + 1; p < end;) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp != NULL ? amp : end;

		if ((size_t)(stop - p) > n && strncmp(p, name, n) == 0 && p[n] == '=') {
			char *raw = g_strndup(p + n + 1, (gsize)(stop - p - (ptrdiff_t)n - 1));
			char *v;

			for (char *r = raw; *r; r++)
				if (*r == '+')
					*r = ' ';
			v = g_uri_unescape_string(raw, NULL);
			g_free(raw);
			return v;
		}
		p = stop + 1;
	}
	return NULL;
}

static int
browser_listen(int *port_r, char **err_r)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(fd, 4) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
		err_set(err_r, "cannot listen on 127.0.0.1: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port_r = ntohs(sin.sin_port);
	return fd;
}

/* Wait for the redirect: the request line (g_free), or NULL at the deadline. */
static char *
browser_wait(int lfd, long long deadline)
{
	for (;;) {
		long long left = deadline - (long long)time(NULL);
		struct pollfd pfd = { .fd = lfd, .events = POLLIN };
		char buf[BROWSER_REQUEST_MAX];
		size_t len = 0;
		int fd;

		if (left <= 0)
			return NULL;
		if (poll(&pfd, 1, (int)(left > 60 ? 60000 : left * 1000)) <= 0)
			continue;
		if ((fd = accept(lfd, NULL, NULL)) < 0)
			continue;
		/* The request line is all we need; a browser sends it at once. */
		while (len + 1 < sizeof buf) {
			struct pollfd cp = { .fd = fd, .events = POLLIN };
			ssize_t r;

			if (poll(&cp, 1, 5000) <= 0 || (r = read(fd, buf + len, sizeof buf - 1 - len)) <= 0)
				break;
			len += (size_t)r;
			if (memchr(buf, '\n', len) != NULL)
				break;
		}
		buf[len] = '\0';
		if (strncmp(buf, "GET /", 5) == 0 && strchr(buf, '?') != NULL) {
			static const char page[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
				"Connection: close\r\n\r\nmailmill: you can close this window.\r\n";

			if (write(fd, page, sizeof page - 1) < 0)
				(void)0;  /* the browser went away: the code is in hand anyway */
			char *line;

			close(fd);
			buf[strcspn(buf, "\r\n")] = '\0';
			line = g_strdup(buf);
			/* It holds the authorization code. */
			explicit_bzero(buf, sizeof buf);
			return line;
		}
		/* favicon.ico and the like */
		static const char nf[] = "HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n";
		if (write(fd, nf, sizeof nf - 1) < 0)
			(void)0;
		close(fd);
	}
}

oauth_status
oauth_sign_in_browser(store *st, const oauth_cfg *o, const char *user, FILE *out, char **err_r)
{
	char *verifier = browser_random(48), *state = browser_random(16), *challenge = NULL;
	char *redirect = NULL, *url = NULL, *req = NULL, *code = NULL, *err = NULL, *rkey = NULL;
	char *token = NULL, *why = NULL;
	const char *auth = o->auth_url;
	oauth_status rc = OAUTH_TEMP;
	oauth_answer a;
	long status;
	int port = 0, lfd = -1;

	*err_r = NULL;
	if (auth == NULL) {
		err_set(err_r, "oauth2 of %s has no 'auth_url'", user);
		rc = OAUTH_REFUSED;
		goto out;
	}
	if (verifier == NULL || state == NULL) {
		err_set(err_r, "no random numbers: %s", strerror(errno));
		goto out;
	}
	if ((lfd = browser_listen(&port, err_r)) < 0)
		goto out;
	challenge = oauth_pkce_challenge(verifier);
	redirect = g_strdup_printf("http://127.0.0.1:%d/", port);
	{
		char *e_id = g_uri_escape_string(o->client_id, NULL, FALSE);
		char *e_red = g_uri_escape_string(redirect, NULL, FALSE);
		char *e_scope = g_uri_escape_string(o->scope, NULL, FALSE);
		char *e_user = g_uri_escape_string(user, NULL, FALSE);

		url = g_strdup_printf("%s?response_type=code&client_id=%s&redirect_uri=%s&scope=%s"
				      "&code_challenge=%s&code_challenge_method=S256&state=%s"
				      "&access_type=offline&prompt=consent&login_hint=%s", auth, e_id,
				      e_red, e_scope, challenge, state, e_user);
		g_free(e_id);
		g_free(e_red);
		g_free(e_scope);
		g_free(e_user);
	}
	fprintf(out, "To sign in %s, open this address in a browser:\n\n%s\n\n"
		"The browser comes back to %s, where mailmilld waits (for %d minutes).\n"
		"If the browser runs on another machine, first run there:\n"
		"  ssh -N -L %d:127.0.0.1:%d THIS-HOST\n", user, url, redirect, BROWSER_WAIT_S / 60,
		port, port);
	fflush(out);
	req = browser_wait(lfd, (long long)time(NULL) + BROWSER_WAIT_S);
	if (req == NULL) {
		err_set(err_r, "nobody came back from the browser within %d minutes; run "
			  "--sign-in again", BROWSER_WAIT_S / 60);
		rc = OAUTH_SIGNIN;
		goto out;
	}
	{
		char *got_state = oauth_redirect_param(req, "state");

		err = oauth_redirect_param(req, "error");
		code = oauth_redirect_param(req, "code");
		if (got_state == NULL || strcmp(got_state, state) != 0) {
			err_set(err_r, "the browser came back without this sign-in's state: "
				  "ignored; run --sign-in again");
			g_free(got_state);
			rc = OAUTH_SIGNIN;
			goto out;
		}
		g_free(got_state);
	}
	if (err != NULL || code == NULL) {
		err_set(err_r, "the sign-in was refused (%.100s)", err != NULL ? err : "no code");
		rc = OAUTH_SIGNIN;
		goto out;
	}
	{
		const char *kv[] = { "grant_type", "authorization_code", "code", code,
				     "redirect_uri", redirect, "code_verifier", verifier };

		rc = oauth_post(o, o->token_url, kv, 8, &a, &status, err_r);
	}
	if (rc != OAUTH_OK)
		goto out;
	if (status != 200 || a.access_token == NULL || a.refresh_token == NULL) {
		err_set(err_r, "token endpoint: HTTP %ld: %s%s%.300s", status,
			  a.error != NULL ? a.error : "no refresh token in the answer",
			  a.error_description != NULL ? ": " : "",
			  a.error_description != NULL ? a.error_description : "");
		rc = status >= 500 ? OAUTH_TEMP : OAUTH_REFUSED;
	} else {
		oauth_keys(o, user, &rkey, NULL);
		if (store_token_signed_in(st, rkey, a.refresh_token, (long long)time(NULL), &why) < 0) {
			err_set(err_r, "signed in, but the token cannot be stored: %s",
				  why != NULL ? why : "error");
			free(why);
			rc = OAUTH_TEMP;
		} else if ((rc = oauth_keep(st, o, user, &a, &token, err_r)) == OAUTH_OK) {
			fprintf(out, "Signed in: the refresh token for %s is stored in the state "
				"directory; mailmill refreshes it from now on.\n", user);
		}
		secret_wipe(&token);
		free(rkey);
	}
	oauth_answer_clear(&a);
out:
	if (lfd >= 0)
		close(lfd);
	if (verifier != NULL)
		explicit_bzero(verifier, strlen(verifier));
	if (code != NULL)
		explicit_bzero(code, strlen(code));
	g_free(verifier);
	g_free(state);
	g_free(challenge);
	g_free(redirect);
	g_free(url);
	if (req != NULL)
		explicit_bzero(req, strlen(req));
	g_free(req);
	g_free(code);
	g_free(err);
	return rc;
}

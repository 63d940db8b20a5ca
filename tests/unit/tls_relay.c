/* mailmill - ISC licence, see LICENSE */
#include <config.h>

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "proto/b64.h"
#include "tests/unit/tls_relay.h"

static char certdir[] = "/tmp/mm-test-tls-XXXXXX";
static char ca_path[sizeof(certdir) + 16];
static int made;

int
tls_relay_certs(const char *srcdir)
{
	char cmd[4096];

	if (mkdtemp(certdir) == NULL)
		return -1;
	made = 1;
	snprintf(ca_path, sizeof(ca_path), "%s/ca.crt", certdir);
	snprintf(cmd, sizeof(cmd), "sh '%s/tests/data/tls/mkcerts.sh' '%s'", srcdir, certdir);
	return system(cmd) == 0 ? 0 : -1;
}

const char *
tls_relay_ca(void)
{
	return ca_path;
}

void
tls_relay_cleanup(void)
{
	char cmd[256];

	if (!made)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", certdir);
	if (system(cmd) != 0)
		fprintf(stderr, "# cannot remove %s\n", certdir);
}

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Until the script side closes: TLS records in, plain text out, and back. */
static int
relay(SSL *ssl, int tls_fd, int plain_fd)
{
	char b[16384];
	int tls_open = 1;

	for (;;) {
		struct pollfd p[2] = { { .fd = plain_fd, .events = POLLIN },
				       { .fd = tls_fd, .events = tls_open ? POLLIN : 0 } };
		int n;

		if (!(tls_open && SSL_pending(ssl) > 0) && poll(p, 2, 60000) <= 0)
			return 1;
		if (tls_open && (SSL_pending(ssl) > 0 || (p[1].revents & (POLLIN | POLLHUP)))) {
			n = SSL_read(ssl, b, sizeof(b));
			if (n <= 0) {
				/* The client is gone: the script sees EOF. */
				tls_open = 0;
				shutdown(plain_fd, SHUT_WR);
			} else if (write_all(plain_fd, b, (size_t)n) < 0) {
				return 1;
			}
			continue;
		}
		if (p[0].revents & (POLLIN | POLLHUP)) {
			ssize_t r = read(plain_fd, b, sizeof(b));

			if (r <= 0)
				break;
			if (tls_open && SSL_write(ssl, b, (int)r) != (int)r)
				return 1;
		}
	}
	if (tls_open)
		SSL_shutdown(ssl);
	return 0;
}

int
tls_relay_start(int tls_fd, pid_t *pid_r)
{
	char crt[sizeof(certdir) + 16], key[sizeof(certdir) + 16];
	int q[2], rc = 1;
	SSL_CTX *ctx;
	SSL *ssl;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, q) < 0)
		return -1;
	if ((*pid_r = fork()) < 0)
		return -1;
	if (*pid_r > 0) {
		close(q[0]);
		close(tls_fd);
		return q[1];
	}
	close(q[1]);
	signal(SIGPIPE, SIG_IGN);
	snprintf(crt, sizeof(crt), "%s/good.crt", certdir);
	snprintf(key, sizeof(key), "%s/good.key", certdir);
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx != NULL && SSL_CTX_use_certificate_chain_file(ctx, crt) == 1 &&
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1 &&
	    (ssl = SSL_new(ctx)) != NULL && SSL_set_fd(ssl, tls_fd) == 1) {
		if (SSL_accept(ssl) == 1)
			rc = relay(ssl, tls_fd, q[0]);
		else
			ERR_print_errors_fp(stderr);
	}
	_exit(rc);
}

char *
tls_relay_token(size_t n)
{
	char *t = malloc(n + 9);
	size_t i;

	if (t == NULL)
		abort();
	memcpy(t, "eyJ0eXAi", 8);
	for (i = 8; i < n; i++)
		t[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"[i % 66];
	t[n] = '\0';
	return t;
}

char *
tls_relay_oauth_line(const char *prefix, int bearer, const char *user, const char *token,
		     const char *port)
{
	char *raw, *b, *line;
	int n = bearer ? asprintf(&raw, "n,a=%s,\001host=localhost\001port=%s\001auth=Bearer "
				  "%s\001\001", user, port, token) :
		asprintf(&raw, "user=%s\001auth=Bearer %s\001\001", user, token);

	if (n < 0 || (b = b64_encode(raw, (size_t)n, NULL)) == NULL ||
	    asprintf(&line, "%s%s", prefix, b) < 0)
		abort();
	free(raw);
	free(b);
	return line;
}

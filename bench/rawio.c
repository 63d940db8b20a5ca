/* mailmill - ISC licence, see LICENSE */
/* See rawio.h: the raw benchmark clients' shared connection and Maildir. */
#define _GNU_SOURCE
#include "rawio.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RBUF_SIZE (256 * 1024)
#define MAX_LINE (200 * 1024)

const char *rawio_name = "rawio";
char *rawio_msg;
size_t rawio_msg_len;

static int sock = -1;
static SSL *ssl;
static char rbuf[RBUF_SIZE];
static size_t rpos, rlen;
static size_t msg_cap;
static int tmpfd = -1, newfd = -1, nullfd = -1, mdfd = -1;
static const char *mdname;

void rawio_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", rawio_name);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

void rawio_write(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w;
		if (ssl) {
			int r = SSL_write(ssl, p, n > 1 << 30 ? 1 << 30 : (int)n);
			if (r <= 0)
				rawio_die("SSL_write failed");
			w = r;
		} else {
			w = send(sock, p, n, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				rawio_die("send: %s", strerror(errno));
		}
		p += w;
		n -= (size_t)w;
	}
}

void rawio_command(const char *fmt, ...)
{
	char b[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b, sizeof b, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof b)
		rawio_die("command too long");
	rawio_write(b, (size_t)n);
}

static void net_fill(void)
{
	ssize_t r;
	if (rpos > 0) {
		memmove(rbuf, rbuf + rpos, rlen - rpos);
		rlen -= rpos;
		rpos = 0;
	}
	if (rlen == sizeof rbuf)
		rawio_die("line longer than %zu bytes", sizeof rbuf);
	do {
		if (ssl) {
			int n = SSL_read(ssl, rbuf + rlen, (int)(sizeof rbuf - rlen));
			r = n > 0 ? n : -1;
			if (n <= 0 && SSL_get_error(ssl, n) == SSL_ERROR_ZERO_RETURN)
				r = 0;
		} else {
			r = recv(sock, rbuf + rlen, sizeof rbuf - rlen, 0);
		}
	} while (r < 0 && !ssl && errno == EINTR);
	if (r < 0)
		rawio_die("read failed");
	if (r == 0)
		rawio_die("server closed the connection");
	rlen += (size_t)r;
}

char *rawio_line(size_t *len)
{
	for (;;) {
		char *s = rbuf + rpos;
		char *e = memchr(s, '\n', rlen - rpos);
		if (e != NULL) {
			size_t n = (size_t)(e - s);
			rpos += n + 1;
			if (n > 0 && s[n - 1] == '\r')
				n--;
			s[n] = '\0';
			*len = n;
			return s;
		}
		if (rlen - rpos > MAX_LINE)
			rawio_die("line too long");
		net_fill();
	}
}

static void msg_reserve(size_t n)
{
	if (n > SIZE_MAX / 2 - rawio_msg_len)
		rawio_die("message too large");
	if (rawio_msg_len + n <= msg_cap)
		return;
	size_t cap = msg_cap ? msg_cap : 65536;
	while (cap < rawio_msg_len + n)
		cap *= 2;
	char *m = realloc(rawio_msg, cap);
	if (m == NULL)
		rawio_die("out of memory");
	rawio_msg = m;
	msg_cap = cap;
}

void rawio_msg_reset(void)
{
	rawio_msg_len = 0;
}

/* Appends a line and its LF. */
void rawio_msg_add(const char *p, size_t n)
{
	msg_reserve(n + 1);
	memcpy(rawio_msg + rawio_msg_len, p, n);
	rawio_msg_len += n;
	rawio_msg[rawio_msg_len++] = '\n';
}

void rawio_read_msg(size_t n)
{
	msg_reserve(n);
	while (n > 0) {
		if (rpos == rlen) {
			rpos = rlen = 0;
			net_fill();
		}
		size_t k = rlen - rpos < n ? rlen - rpos : n;
		memcpy(rawio_msg + rawio_msg_len, rbuf + rpos, k);
		rawio_msg_len += k;
		rpos += k;
		n -= k;
	}
}

void rawio_msg_to_lf(size_t from)
{
	size_t o = from;
	for (size_t i = from; i < rawio_msg_len; i++) {
		if (rawio_msg[i] == '\r' && i + 1 < rawio_msg_len && rawio_msg[i + 1] == '\n')
			continue;
		rawio_msg[o++] = rawio_msg[i];
	}
	rawio_msg_len = o;
}

static void write_all(int fd, const char *p, size_t n, const char *what)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			rawio_die("write %s: %s", what, strerror(errno));
		p += w;
		n -= (size_t)w;
	}
}

void rawio_store_open(const char *maildir)
{
	mdname = maildir;
	if (maildir == NULL) {
		if ((nullfd = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0)
			rawio_die("/dev/null: %s", strerror(errno));
		return;
	}
	mdfd = open(maildir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mdfd < 0 || (tmpfd = openat(mdfd, "tmp", O_RDONLY | O_DIRECTORY)) < 0 ||
	    (newfd = openat(mdfd, "new", O_RDONLY | O_DIRECTORY)) < 0)
		rawio_die("%s: not a Maildir", maildir);
}

void rawio_store(long i)
{
	char name[128];
	if (tmpfd < 0) {
		write_all(nullfd, rawio_msg, rawio_msg_len, "/dev/null");
		return;
	}
	snprintf(name, sizeof name, "%ld.R%ldP%ld.%s", (long)time(NULL), i, (long)getpid(),
		 rawio_name);
	int fd = openat(tmpfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		rawio_die("open tmp/%s: %s", name, strerror(errno));
	write_all(fd, rawio_msg, rawio_msg_len, name);
	if (close(fd) != 0)
		rawio_die("close %s: %s", name, strerror(errno));
	if (renameat(tmpfd, name, newfd, name) != 0)
		rawio_die("rename %s: %s", name, strerror(errno));
}

void rawio_store_flush(void)
{
	if (mdfd >= 0 && (syncfs(mdfd) != 0 || fsync(newfd) != 0))
		rawio_die("flush %s: %s", mdname, strerror(errno));
}

void rawio_connect(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	int r = getaddrinfo(host, port, &hints, &res);
	if (r != 0)
		rawio_die("%s: %s", host, gai_strerror(r));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		sock = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (sock < 0)
			continue;
		if (connect(sock, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(sock);
		sock = -1;
	}
	freeaddrinfo(res);
	if (sock < 0)
		rawio_die("cannot connect to %s:%s", host, port);
	int one = 1;
	setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void rawio_tls(const char *cafile, const char *name)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		rawio_die("SSL_CTX_new failed");
	if ((cafile ? SSL_CTX_load_verify_locations(ctx, cafile, NULL)
		    : SSL_CTX_set_default_verify_paths(ctx)) != 1)
		rawio_die("cannot load CA %s", cafile ? cafile : "(default)");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	ssl = SSL_new(ctx);
	if (ssl == NULL || SSL_set_fd(ssl, sock) != 1 ||
	    SSL_set_tlsext_host_name(ssl, name) != 1 || SSL_set1_host(ssl, name) != 1)
		rawio_die("SSL setup failed");
	if (SSL_connect(ssl) != 1) {
		ERR_print_errors_fp(stderr);
		rawio_die("TLS handshake with %s failed", name);
	}
}

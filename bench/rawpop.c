/* mailmill - ISC licence, see LICENSE */
/*
 * rawpop: the benchmark's reference POP3 client, a measuring tool, not part
 * of mailmill.  One connection, USER/PASS, STAT, then RETR i + DELE i for
 * every message, pipelined with a bounded window, then QUIT.
 *
 *   rawpop [-t] [-C cafile] [-N name] [-w window] [-d maildir] host port user pass
 *
 * Without -d every message is written to /dev/null: the server's limit.
 * With -d each message (dot-unstuffed, LF line ends) becomes a file in
 * maildir/tmp, renamed into maildir/new; before QUIT the whole batch is made
 * durable with one flush (syncfs, then fsync of new/): the durable-write
 * limit that no safe Maildir archiver can beat by much.
 * Prints "messages=N bytes=B" (B = message bytes as stored).
 */
#define _GNU_SOURCE
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
#define MAX_LINE (64 * 1024)
#define MAX_MSGS 10000000L

static int sock = -1;
static SSL *ssl;
static char rbuf[RBUF_SIZE];
static size_t rpos, rlen;

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("rawpop: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void net_write(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w;
		if (ssl) {
			int r = SSL_write(ssl, p, n > 1 << 30 ? 1 << 30 : (int)n);
			if (r <= 0)
				die("SSL_write failed");
			w = r;
		} else {
			w = send(sock, p, n, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				die("send: %s", strerror(errno));
		}
		p += w;
		n -= (size_t)w;
	}
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
		die("line longer than %zu bytes", sizeof rbuf);
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
		die("read failed");
	if (r == 0)
		die("server closed the connection");
	rlen += (size_t)r;
}

/* Returns the next line without CRLF (NUL-terminated in place); valid until
 * the next call. */
static char *net_line(size_t *len)
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
			die("line too long");
		net_fill();
	}
}

static void expect_ok(const char *what)
{
	size_t n;
	char *l = net_line(&n);
	if (strncmp(l, "+OK", 3) != 0)
		die("%s: %s", what, l);
}

static void command(const char *fmt, ...)
{
	char b[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b, sizeof b, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof b)
		die("command too long");
	net_write(b, (size_t)n);
}

/* The current message, dot-unstuffed, LF line ends. */
static char *msg;
static size_t msg_len, msg_cap;

static void msg_add(const char *p, size_t n)
{
	if (n + 1 > SIZE_MAX / 2 - msg_len)
		die("message too large");
	if (msg_len + n + 1 > msg_cap) {
		size_t cap = msg_cap ? msg_cap : 65536;
		while (cap < msg_len + n + 1)
			cap *= 2;
		char *m = realloc(msg, cap);
		if (m == NULL)
			die("out of memory");
		msg = m;
		msg_cap = cap;
	}
	memcpy(msg + msg_len, p, n);
	msg_len += n;
	msg[msg_len++] = '\n';
}

static void read_message(void)
{
	size_t n;
	msg_len = 0;
	for (;;) {
		char *l = net_line(&n);
		if (l[0] == '.') {
			if (n == 1)
				return;
			l++;
			n--;
		}
		msg_add(l, n);
	}
}

static void write_all(int fd, const char *p, size_t n, const char *what)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			die("write %s: %s", what, strerror(errno));
		p += w;
		n -= (size_t)w;
	}
}

static void store(int tmpfd, int newfd, int nullfd, long i)
{
	char name[128];
	if (tmpfd < 0) {
		write_all(nullfd, msg, msg_len, "/dev/null");
		return;
	}
	snprintf(name, sizeof name, "%ld.R%ldP%ld.rawpop", (long)time(NULL), i, (long)getpid());
	int fd = openat(tmpfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		die("open tmp/%s: %s", name, strerror(errno));
	write_all(fd, msg, msg_len, name);
	if (close(fd) != 0)
		die("close %s: %s", name, strerror(errno));
	if (renameat(tmpfd, name, newfd, name) != 0)
		die("rename %s: %s", name, strerror(errno));
}

static void connect_to(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	int r = getaddrinfo(host, port, &hints, &res);
	if (r != 0)
		die("%s: %s", host, gai_strerror(r));
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
		die("cannot connect to %s:%s", host, port);
	int one = 1;
	setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void tls_start(const char *cafile, const char *name)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		die("SSL_CTX_new failed");
	if ((cafile ? SSL_CTX_load_verify_locations(ctx, cafile, NULL)
		    : SSL_CTX_set_default_verify_paths(ctx)) != 1)
		die("cannot load CA %s", cafile ? cafile : "(default)");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	ssl = SSL_new(ctx);
	if (ssl == NULL || SSL_set_fd(ssl, sock) != 1 ||
	    SSL_set_tlsext_host_name(ssl, name) != 1 || SSL_set1_host(ssl, name) != 1)
		die("SSL setup failed");
	if (SSL_connect(ssl) != 1) {
		ERR_print_errors_fp(stderr);
		die("TLS handshake with %s failed", name);
	}
}

int main(int argc, char **argv)
{
	const char *cafile = NULL, *name = "localhost", *maildir = NULL;
	long window = 256;
	int c, use_tls = 0;
	while ((c = getopt(argc, argv, "tC:N:w:d:")) != -1) {
		switch (c) {
		case 't': use_tls = 1; break;
		case 'C': cafile = optarg; break;
		case 'N': name = optarg; break;
		case 'w': window = strtol(optarg, NULL, 10); break;
		case 'd': maildir = optarg; break;
		default: return 2;
		}
	}
	if (argc - optind != 4 || window < 2 || window > 4096) {
		fprintf(stderr, "usage: rawpop [-t] [-C cafile] [-N name] [-w 2..4096] "
				"[-d maildir] host port user pass\n");
		return 2;
	}
	int tmpfd = -1, newfd = -1, nullfd = -1, mdfd = -1;
	if (maildir != NULL) {
		mdfd = open(maildir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (mdfd < 0 || (tmpfd = openat(mdfd, "tmp", O_RDONLY | O_DIRECTORY)) < 0 ||
		    (newfd = openat(mdfd, "new", O_RDONLY | O_DIRECTORY)) < 0)
			die("%s: not a Maildir", maildir);
	} else if ((nullfd = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0) {
		die("/dev/null: %s", strerror(errno));
	}

	connect_to(argv[optind], argv[optind + 1]);
	if (use_tls)
		tls_start(cafile, name);
	expect_ok("greeting");
	command("USER %s\r\n", argv[optind + 2]);
	expect_ok("USER");
	command("PASS %s\r\n", argv[optind + 3]);
	expect_ok("PASS");
	command("STAT\r\n");
	size_t n;
	char *l = net_line(&n);
	long total;
	if (sscanf(l, "+OK %ld", &total) != 1 || total < 0 || total > MAX_MSGS)
		die("STAT: %s", l);

	/* Commands are RETR 1, DELE 1, RETR 2, ...; command k is RETR for even k.
	 * At most `window` commands are unanswered, so our writes never block
	 * while the server waits for us to read. */
	long ncmd = 2 * total, sent = 0, done = 0, bytes = 0;
	while (done < ncmd) {
		if (sent < ncmd && sent - done <= window / 2) {
			char b[64 * 1024];
			size_t bl = 0;
			while (sent < ncmd && sent - done < window && bl + 32 < sizeof b) {
				int w = snprintf(b + bl, sizeof b - bl, "%s %ld\r\n",
						 sent % 2 ? "DELE" : "RETR", sent / 2 + 1);
				bl += (size_t)w;
				sent++;
			}
			net_write(b, bl);
		}
		l = net_line(&n);
		if (strncmp(l, "+OK", 3) != 0)
			die("%s %ld: %s", done % 2 ? "DELE" : "RETR", done / 2 + 1, l);
		if (done % 2 == 0) {
			read_message();
			store(tmpfd, newfd, nullfd, done / 2 + 1);
			bytes += (long)msg_len;
		}
		done++;
	}
	if (mdfd >= 0) {
		/* one flush for the whole batch, then the names in new/ */
		if (syncfs(mdfd) != 0 || fsync(newfd) != 0)
			die("flush %s: %s", maildir, strerror(errno));
	}
	command("QUIT\r\n");
	expect_ok("QUIT");
	printf("messages=%ld bytes=%ld\n", total, bytes);
	return 0;
}

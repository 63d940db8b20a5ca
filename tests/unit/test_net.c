/* mailmill - ISC licence, see LICENSE */
/*
 * net over socketpairs (lines, buffering, deadlines, EOF, injection before
 * STLS, SIGPIPE) and TLS against `openssl s_server` on loopback with a CA
 * and certificates made for this run by tests/data/tls/mkcerts.sh.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/clock.h"
#include "proto/net.h"

#ifndef MM_TEST_SRCDIR
#define MM_TEST_SRCDIR "."
#endif

/* ------------------------------------------------------------ helpers */

static net_conn *
make_pair(size_t max_line, int *peer)
{
	net_conn *c = NULL;
	char *err = NULL;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(net_from_fd(sv[0], max_line, &c, &err), 0);
	assert_null(err);
	*peer = sv[1];
	return c;
}

static void
write_all(int fd, const char *s, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, s, len);
		assert_true(n > 0);
		s += n;
		len -= (size_t)n;
	}
}

static void
peer_says(int fd, const char *s)
{
	write_all(fd, s, strlen(s));
}

static void
expect_line(net_conn *c, const char *want)
{
	const char *line = NULL;
	size_t len = 0;
	char *err = NULL;

	assert_int_equal(net_getline(c, &line, &len, &err), 1);
	assert_null(err);
	assert_int_equal(len, strlen(want));
	assert_string_equal(line, want);
}

/* The next line must fail with a message containing `what`. */
static void
expect_fail(net_conn *c, const char *what)
{
	const char *line;
	size_t len;
	char *err = NULL;

	assert_int_equal(net_getline(c, &line, &len, &err), -1);
	assert_non_null(err);
	if (strstr(err, what) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\"", err, what);
	free(err);
}

static void
reap(pid_t pid)
{
	int st;

	kill(pid, SIGTERM);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
}

/* ------------------------------------------------------------ plain */

static void
test_lines(void **state)
{
	int peer;
	net_conn *c = make_pair(64, &peer);

	peer_says(peer, "+OK ready\r\nsecond\nthi");
	expect_line(c, "+OK ready");
	expect_line(c, "second");
	assert_int_equal(net_pending(c), 3);
	peer_says(peer, "rd\r\n\r\n");
	expect_line(c, "third");
	expect_line(c, "");
	assert_int_equal(net_is_tls(c), 0);
	assert_string_equal(net_tls_describe(c), "");
	close(peer);
	expect_fail(c, "closed");
	net_close(&c);
	assert_null(c);
}

/*
 * net_peek shows what is buffered without reading; net_consume drops a part
 * of it, and net_getline carries on right after, a partial line included.
 */
static void
test_peek_consume(void **state)
{
	const char *data;
	char *err = NULL;
	int peer;
	net_conn *c = make_pair(16, &peer);

	assert_int_equal(net_line_cap(c), 16);
	assert_int_equal(net_peek(c, &data), 0); /* nothing read yet, and no read */
	peer_says(peer, "+OK\r\none\r\ntwo\r\nthr");
	expect_line(c, "+OK");
	assert_int_equal(net_peek(c, &data), 13);
	assert_memory_equal(data, "one\r\ntwo\r\nthr", 13);
	net_consume(c, 5);
	assert_int_equal(net_pending(c), 8);
	expect_line(c, "two");
	peer_says(peer, "ee\r\n");
	expect_line(c, "three");
	assert_int_equal(net_peek(c, &data), 0);
	net_consume(c, 1); /* past the end: ignored */
	assert_int_equal(net_pending(c), 0);
	/* A dead connection shows nothing. */
	peer_says(peer, "0123456789abcdefXYZ\r\nrest\r\n");
	expect_fail(c, "longer than 16");
	assert_int_equal(net_peek(c, &data), 0);
	assert_int_equal(net_getline(c, &data, &(size_t){ 0 }, &err), -1);
	free(err);
	close(peer);
	net_close(&c);
}

/* Megabytes of lines from a child: every one arrives, in order, intact. */
static void
test_bulk(void **state)
{
	enum { NLINES = 100000 };
	const char *line;
	char want[64], *err = NULL;
	size_t len;
	int peer, i;
	pid_t pid;
	net_conn *c = make_pair(1000, &peer);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char chunk[8192];
		size_t used = 0;

		for (i = 0; i < NLINES; i++) {
			used += (size_t)snprintf(chunk + used, sizeof(chunk) - used,
						 "line %06d of the bulk test%s", i,
						 i % 2 ? "\r\n" : "\n");
			if (used > sizeof(chunk) - 64 || i == NLINES - 1) {
				if (write(peer, chunk, used) != (ssize_t)used)
					_exit(1);
				used = 0;
			}
		}
		_exit(0);
	}
	close(peer);
	net_deadline(c, 20000);
	for (i = 0; i < NLINES; i++) {
		assert_int_equal(net_getline(c, &line, &len, &err), 1);
		snprintf(want, sizeof(want), "line %06d of the bulk test", i);
		assert_string_equal(line, want);
	}
	expect_fail(c, "closed");
	net_close(&c);
	reap(pid);
}

static void
test_write_buffered_until_flush(void **state)
{
	char got[64], *err = NULL;
	ssize_t n;
	int peer;
	net_conn *c = make_pair(64, &peer);

	assert_int_equal(net_write(c, "USER a\r\n", 8, &err), 0);
	assert_int_equal(net_printf(c, &err, "RETR %d\r\n", 42), 0);
	/* Nothing has left yet: commands are batched for pipelining. */
	n = recv(peer, got, sizeof(got), MSG_DONTWAIT);
	assert_int_equal(n, -1);
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
	assert_int_equal(net_flush(c, &err), 0);
	n = recv(peer, got, sizeof(got), 0);
	assert_int_equal(n, 17);
	assert_memory_equal(got, "USER a\r\nRETR 42\r\n", 17);

	/* Reading a reply sends what is queued first. */
	assert_int_equal(net_printf(c, &err, "NOOP\r\n"), 0);
	peer_says(peer, "+OK\r\n");
	expect_line(c, "+OK");
	n = recv(peer, got, sizeof(got), MSG_DONTWAIT);
	assert_int_equal(n, 6);
	assert_memory_equal(got, "NOOP\r\n", 6);
	close(peer);
	net_close(&c);
}

/* A write larger than the buffer, and a long printf, arrive whole and in order. */
static void
test_write_large(void **state)
{
	enum { BIG = 200000, TOTAL = 10 + BIG + 992 };
	char *big, *err = NULL;
	int peer, st;
	pid_t pid;
	net_conn *c = make_pair(64, &peer);

	big = malloc(BIG);
	assert_non_null(big);
	for (size_t i = 0; i < BIG; i++)
		big[i] = (char)('a' + i % 26);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* A reader in another process: the writer would block on a full socket. */
		char *got = malloc(TOTAL + 1);
		size_t have = 0, i;
		ssize_t n;

		close(net_fd(c)); /* else our copy keeps the connection open: no EOF */
		if (got == NULL)
			_exit(2);
		while ((n = read(peer, got + have, TOTAL + 1 - have)) > 0)
			have += (size_t)n;
		if (have != TOTAL || memcmp(got, big, 10) != 0 || memcmp(got + 10, big, BIG) != 0)
			_exit(3);
		for (i = 10 + BIG; i < TOTAL - 2; i++)
			if (got[i] != '0')
				_exit(4);
		_exit(memcmp(got + TOTAL - 2, "\r\n", 2) == 0 ? 0 : 5);
	}
	close(peer);
	net_deadline(c, 10000);
	assert_int_equal(net_write(c, big, 10, &err), 0);
	assert_int_equal(net_write(c, big, BIG, &err), 0);
	assert_int_equal(net_printf(c, &err, "%0990d\r\n", 0), 0);
	assert_int_equal(net_flush(c, &err), 0);
	net_close(&c);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	free(big);
}

static void
test_overlong_line(void **state)
{
	int peer;
	net_conn *c = make_pair(16, &peer);

	peer_says(peer, "0123456789abcdef\r\n0123456789abcdefX\r\n");
	expect_line(c, "0123456789abcdef");
	expect_fail(c, "longer than 16");
	close(peer);
	net_close(&c);
}

static void
test_eof_mid_line(void **state)
{
	int peer;
	net_conn *c = make_pair(64, &peer);

	peer_says(peer, "+OK whole\r\n+OK cut sho");
	close(peer);
	expect_line(c, "+OK whole");
	expect_fail(c, "middle of a line");
	/* The connection is dead now: no further I/O. */
	expect_fail(c, "already failed");
	net_close(&c);
}

static void
test_deadline_silent_peer(void **state)
{
	long long t0, took;
	int peer;
	net_conn *c = make_pair(64, &peer);

	net_deadline(c, 300);
	t0 = clock_now_ms();
	expect_fail(c, "timed out");
	took = clock_now_ms() - t0;
	assert_true(took >= 250);
	assert_true(took < 3000);
	assert_int_equal(net_last_timeout(c), 1);
	close(peer);
	net_close(&c);
}

/* One byte every 50 ms, never a line end: the deadline still ends it. */
static void
test_deadline_slow_drip(void **state)
{
	long long t0, took;
	int peer;
	pid_t pid;
	net_conn *c = make_pair(1000, &peer);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGPIPE, SIG_IGN);
		for (int i = 0; i < 200; i++) {
			if (write(peer, "x", 1) != 1)
				_exit(0);
			usleep(50000);
		}
		_exit(0);
	}
	close(peer);
	net_deadline(c, 500);
	t0 = clock_now_ms();
	expect_fail(c, "timed out");
	took = clock_now_ms() - t0;
	assert_true(took >= 450);
	assert_true(took < 3000);
	assert_int_equal(net_last_timeout(c), 1);
	assert_true(net_pending(c) > 3); /* it did receive the drip */
	net_close(&c);
	reap(pid);
}

static void
test_no_deadline_after_reset(void **state)
{
	int peer;
	net_conn *c = make_pair(64, &peer);

	net_deadline(c, 1);
	net_deadline(c, 0);
	usleep(20000);
	peer_says(peer, "late\r\n");
	expect_line(c, "late");
	assert_int_equal(net_last_timeout(c), 0);
	close(peer);
	net_close(&c);
}

/* A peer that has gone: the write fails, the process is not killed by SIGPIPE. */
static void
test_sigpipe(void **state)
{
	char chunk[4096], *err = NULL;
	int peer, i, r = 0;
	net_conn *c = make_pair(64, &peer);

	memset(chunk, 'p', sizeof(chunk));
	close(peer);
	for (i = 0; i < 64 && r == 0; i++) {
		r = net_write(c, chunk, sizeof(chunk), &err);
		if (r == 0)
			r = net_flush(c, &err);
	}
	assert_int_equal(r, -1);
	assert_non_null(err);
	assert_non_null(strstr(err, "write to"));
	free(err);
	net_close(&c);
}

/* Plain text after the STLS go-ahead, already read with the go-ahead. */
static void
test_injection_buffered(void **state)
{
	char *err = NULL;
	int peer;
	net_conn *c = make_pair(512, &peer);

	peer_says(peer, "+OK Begin TLS negotiation\r\n+OK injected\r\n");
	expect_line(c, "+OK Begin TLS negotiation");
	assert_true(net_pending(c) > 0);
	net_deadline(c, 2000); /* a regression must fail, not hang in a handshake */
	assert_int_equal(net_starttls(c, "localhost", NULL, &err), -1);
	assert_non_null(err);
	assert_non_null(strstr(err, "injection"));
	free(err);
	err = NULL;
	/* No fallback: the connection refuses to carry anything more. */
	assert_int_equal(net_write(c, "PASS secret\r\n", 13, &err), -1);
	free(err);
	assert_int_equal(net_is_tls(c), 0);
	close(peer);
	net_close(&c);
}

/* Plain text after the go-ahead that is still in the socket, not yet read. */
static void
test_injection_in_socket(void **state)
{
	char *err = NULL;
	int peer;
	net_conn *c = make_pair(512, &peer);

	peer_says(peer, "+OK go ahead\r\n");
	expect_line(c, "+OK go ahead");
	assert_int_equal(net_pending(c), 0);
	peer_says(peer, "X");
	net_deadline(c, 2000);
	assert_int_equal(net_starttls(c, "localhost", NULL, &err), -1);
	assert_non_null(err);
	assert_non_null(strstr(err, "injection"));
	free(err);
	close(peer);
	net_close(&c);
}

static void
test_starttls_handshake_deadline(void **state)
{
	char *err = NULL;
	long long t0;
	int peer;
	net_conn *c = make_pair(512, &peer);

	net_deadline(c, 300);
	t0 = clock_now_ms();
	assert_int_equal(net_starttls(c, "localhost", NULL, &err), -1);
	assert_true(clock_now_ms() - t0 < 3000);
	assert_non_null(err);
	assert_non_null(strstr(err, "timed out"));
	assert_int_equal(net_last_timeout(c), 1);
	free(err);
	close(peer);
	net_close(&c);
}

static void
test_connect_refused(void **state)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	net_conn *c = NULL;
	char port[16], *err = NULL;
	int fd;

	/* A port that was just free: bind, learn it, close it again. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	{
		struct sockaddr_in sin = { .sin_family = AF_INET };

		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	}
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
	snprintf(port, sizeof(port), "%u", ntohs(((struct sockaddr_in *)&ss)->sin_port));
	close(fd);
	assert_int_equal(net_connect("127.0.0.1", port, 2000, 512, &c, &err), -1);
	assert_null(c);
	assert_non_null(err);
	assert_non_null(strstr(err, "127.0.0.1"));
	assert_non_null(strstr(err, "refused"));
	free(err);
	err = NULL;
	assert_int_equal(net_connect("name.invalid", "110", 2000, 512, &c, &err), -1);
	assert_non_null(err);
	assert_non_null(strstr(err, "resolve"));
	free(err);
}

/* ------------------------------------------------------------ TLS */

static char certdir[] = "/tmp/mm-test-net-XXXXXX";
static int have_certs;

static int
tls_group_setup(void **state)
{
	char cmd[1024];
	const char *src = getenv("MM_SRCDIR");

	if (src == NULL || src[0] == '\0')
		src = MM_TEST_SRCDIR;
	if (system("command -v openssl >/dev/null 2>&1") != 0)
		return 0;
	if (mkdtemp(certdir) == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd), "sh '%s/tests/data/tls/mkcerts.sh' '%s'", src, certdir);
	have_certs = system(cmd) == 0;
	return 0;
}

static int
tls_group_teardown(void **state)
{
	char cmd[1024];

	if (strstr(certdir, "XXXXXX") == NULL) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", certdir);
		if (system(cmd) != 0)
			return -1;
	}
	return 0;
}

static char *
cert_path(const char *name, const char *ext)
{
	char *p;

	assert_true(asprintf(&p, "%s/%s.%s", certdir, name, ext) > 0);
	return p;
}

/* Start s_server on addr ("127.0.0.1:0", "[::1]:0") with cert NAME; *port_r
 * is the port it got.  Returns the pid, or -1 if it would not start. */
static pid_t
server_start_mode(const char *name, const char *addr, const char *mode, char *port_r,
		  size_t portlen)
{
	char *crt = cert_path(name, "crt"), *key = cert_path(name, "key");
	char out[512];
	size_t have = 0;
	struct pollfd pfd;
	char *nl, *colon;
	ssize_t n;
	int p[2], devnull;
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		devnull = open("/dev/null", O_RDWR);
		dup2(devnull, 0);
		dup2(p[1], 1);
		dup2(devnull, 2);
		close(p[0]);
		if (chdir(certdir) != 0) /* -WWW serves files from here */
			_exit(126);
		execlp("openssl", "openssl", "s_server", "-accept", addr, "-cert", crt, "-key",
		       key, mode, "-naccept", "1", (char *)NULL);
		_exit(127);
	}
	free(crt);
	free(key);
	close(p[1]);
	/* It prints "ACCEPT 127.0.0.1:PORT" once it listens. */
	pfd.fd = p[0];
	pfd.events = POLLIN;
	for (;;) {
		if (poll(&pfd, 1, 10000) <= 0)
			break;
		n = read(p[0], out + have, sizeof(out) - 1 - have);
		if (n <= 0)
			break;
		have += (size_t)n;
		out[have] = '\0';
		nl = strstr(out, "ACCEPT ");
		if (nl != NULL && strchr(nl, '\n') != NULL) {
			*strchr(nl, '\n') = '\0';
			colon = strrchr(nl, ':');
			if (colon == NULL)
				break;
			snprintf(port_r, portlen, "%s", colon + 1);
			close(p[0]);
			return pid;
		}
	}
	close(p[0]);
	reap(pid);
	return -1;
}

static pid_t
server_start(const char *name, const char *addr, char *port_r, size_t portlen)
{
	return server_start_mode(name, addr, "-www", port_r, portlen);
}

/* Connect to the server and try TLS as `host` against our CA (or ca). */
static int
tls_try(const char *connect_host, const char *port, const char *tls_host, const char *ca,
	net_conn **c_r, char **err_r)
{
	net_conn *c = NULL;

	if (net_connect(connect_host, port, 5000, 4096, &c, err_r) < 0)
		return -2;
	net_deadline(c, 10000);
	if (net_starttls(c, tls_host, ca, err_r) < 0) {
		net_close(&c);
		return -1;
	}
	*c_r = c;
	return 0;
}

#define NEED_CERTS()                                       \
	do {                                               \
		if (!have_certs)                           \
			skip(); /* no openssl command */   \
	} while (0)

static void
test_tls_ok(void **state)
{
	char port[16], *ca, *err = NULL;
	net_conn *c = NULL;
	const char *line;
	size_t len;
	pid_t pid;

	NEED_CERTS();
	ca = cert_path("ca", "crt");
	pid = server_start("good", "127.0.0.1:0", port, sizeof(port));
	assert_true(pid > 0);
	if (tls_try("127.0.0.1", port, "127.0.0.1", ca, &c, &err) != 0)
		fail_msg("TLS to 127.0.0.1 failed: %s", err);
	assert_int_equal(net_is_tls(c), 1);
	assert_non_null(strstr(net_tls_describe(c), "TLSv1."));
	assert_int_equal(net_printf(c, &err, "GET / HTTP/1.0\r\n\r\n"), 0);
	assert_int_equal(net_getline(c, &line, &len, &err), 1);
	assert_non_null(strstr(line, "HTTP/1.0 200"));
	net_close(&c);
	reap(pid);
	free(ca);
}

/* Many TLS records in a row: lines cross record boundaries, none is lost. */
static void
test_tls_bulk(void **state)
{
	enum { NLINES = 50000 };
	char port[16], want[64], *ca, *path, *err = NULL;
	net_conn *c = NULL;
	const char *line;
	size_t len;
	FILE *f;
	pid_t pid;
	int i;

	NEED_CERTS();
	path = cert_path("bulk", "txt");
	f = fopen(path, "w");
	assert_non_null(f);
	for (i = 0; i < NLINES; i++)
		fprintf(f, "line %06d through TLS\r\n", i);
	assert_int_equal(fclose(f), 0);
	ca = cert_path("ca", "crt");
	pid = server_start_mode("good", "127.0.0.1:0", "-WWW", port, sizeof(port));
	assert_true(pid > 0);
	if (tls_try("127.0.0.1", port, "127.0.0.1", ca, &c, &err) != 0)
		fail_msg("TLS to 127.0.0.1 failed: %s", err);
	assert_int_equal(net_printf(c, &err, "GET /bulk.txt HTTP/1.0\r\n\r\n"), 0);
	assert_int_equal(net_getline(c, &line, &len, &err), 1);
	assert_non_null(strstr(line, "200"));
	do
		assert_int_equal(net_getline(c, &line, &len, &err), 1);
	while (len > 0);
	for (i = 0; i < NLINES; i++) {
		if (net_getline(c, &line, &len, &err) != 1)
			fail_msg("line %d: %s", i, err);
		snprintf(want, sizeof(want), "line %06d through TLS", i);
		assert_string_equal(line, want);
	}
	expect_fail(c, "closed");
	net_close(&c);
	reap(pid);
	free(ca);
	free(path);
}

/* "localhost" may resolve to ::1 first while the server is on 127.0.0.1
 * only: every address is tried, and the name (SNI, DNS SAN) is verified. */
static void
test_tls_name_localhost(void **state)
{
	char port[16], *ca, *err = NULL;
	net_conn *c = NULL;
	const char *line;
	size_t len;
	pid_t pid;

	NEED_CERTS();
	ca = cert_path("ca", "crt");
	pid = server_start("good", "127.0.0.1:0", port, sizeof(port));
	assert_true(pid > 0);
	if (tls_try("localhost", port, "localhost", ca, &c, &err) != 0)
		fail_msg("TLS to localhost failed: %s", err);
	assert_int_equal(net_printf(c, &err, "GET / HTTP/1.0\r\n\r\n"), 0);
	assert_int_equal(net_getline(c, &line, &len, &err), 1);
	assert_non_null(strstr(line, "200"));
	net_close(&c);
	reap(pid);
	free(ca);
}

static void
test_tls_ipv6(void **state)
{
	char port[16], *ca, *err = NULL;
	net_conn *c = NULL;
	pid_t pid;

	NEED_CERTS();
	ca = cert_path("ca", "crt");
	pid = server_start("good", "[::1]:0", port, sizeof(port));
	if (pid < 0) {
		free(ca);
		skip(); /* no IPv6 loopback here */
	}
	if (tls_try("::1", port, "::1", ca, &c, &err) != 0)
		fail_msg("TLS to ::1 failed: %s", err);
	assert_int_equal(net_is_tls(c), 1);
	net_close(&c);
	reap(pid);
	free(ca);
}

/* Each bad certificate is refused with a message an operator understands. */
static void
expect_tls_refused(const char *certname, const char *tls_host, int use_ca, const char *what)
{
	char port[16], *ca, *err = NULL;
	net_conn *c = NULL;
	pid_t pid;

	ca = cert_path("ca", "crt");
	pid = server_start(certname, "127.0.0.1:0", port, sizeof(port));
	assert_true(pid > 0);
	assert_int_equal(tls_try("127.0.0.1", port, tls_host, use_ca ? ca : NULL, &c, &err), -1);
	assert_null(c);
	assert_non_null(err);
	if (strstr(err, what) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\"", err, what);
	if (strncmp(err, "TLS: ", 5) != 0)
		fail_msg("error \"%s\" does not say it is about TLS", err);
	free(err);
	reap(pid);
	free(ca);
}

static void
test_tls_wrong_host(void **state)
{
	NEED_CERTS();
	expect_tls_refused("wrong", "127.0.0.1", 1, "certificate verify failed: IP address mismatch (host 127.0.0.1)");
	expect_tls_refused("wrong", "localhost", 1, "certificate verify failed: hostname mismatch (host localhost)");
	/* good.crt names localhost and the loopback addresses, not other names */
	expect_tls_refused("good", "pop.example.org", 1, "mismatch");
}

static void
test_tls_expired(void **state)
{
	NEED_CERTS();
	expect_tls_refused("expired", "127.0.0.1", 1, "certificate has expired");
}

static void
test_tls_self_signed(void **state)
{
	NEED_CERTS();
	expect_tls_refused("self", "127.0.0.1", 1, "self-signed certificate");
}

/* Our test CA is not in the system store: without ca_file, refused. */
static void
test_tls_system_store(void **state)
{
	NEED_CERTS();
	expect_tls_refused("good", "127.0.0.1", 0, "certificate verify failed");
}

static void
test_tls_bad_ca_file(void **state)
{
	char port[16], *err = NULL;
	net_conn *c = NULL;
	pid_t pid;

	NEED_CERTS();
	pid = server_start("good", "127.0.0.1:0", port, sizeof(port));
	assert_true(pid > 0);
	assert_int_equal(tls_try("127.0.0.1", port, "127.0.0.1", "/nonexistent/ca.pem", &c, &err), -1);
	assert_non_null(strstr(err, "/nonexistent/ca.pem"));
	free(err);
	reap(pid);
}

/* A plain-text server on a TLS port: a handshake error, never plain text. */
static void
test_tls_plain_server(void **state)
{
	char hello[512], *err = NULL;
	int peer;
	pid_t pid;
	net_conn *c = make_pair(512, &peer);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (read(peer, hello, sizeof(hello)) <= 0)
			_exit(1);
		if (write(peer, "+OK POP3 ready\r\n", 16) != 16)
			_exit(1);
		_exit(0);
	}
	close(peer);
	net_deadline(c, 5000);
	assert_int_equal(net_starttls(c, "localhost", NULL, &err), -1);
	assert_non_null(err);
	if (strncmp(err, "TLS: ", 5) != 0 || strstr(err, "handshake") == NULL)
		fail_msg("unexpected error \"%s\"", err);
	assert_int_equal(net_last_timeout(c), 0);
	free(err);
	net_close(&c);
	reap(pid);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_bulk),
		cmocka_unit_test(test_peek_consume),
		cmocka_unit_test(test_write_buffered_until_flush),
		cmocka_unit_test(test_write_large),
		cmocka_unit_test(test_overlong_line),
		cmocka_unit_test(test_eof_mid_line),
		cmocka_unit_test(test_deadline_silent_peer),
		cmocka_unit_test(test_deadline_slow_drip),
		cmocka_unit_test(test_no_deadline_after_reset),
		cmocka_unit_test(test_sigpipe),
		cmocka_unit_test(test_injection_buffered),
		cmocka_unit_test(test_injection_in_socket),
		cmocka_unit_test(test_starttls_handshake_deadline),
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_tls_plain_server),
		cmocka_unit_test(test_tls_ok),
		cmocka_unit_test(test_tls_bulk),
		cmocka_unit_test(test_tls_name_localhost),
		cmocka_unit_test(test_tls_ipv6),
		cmocka_unit_test(test_tls_wrong_host),
		cmocka_unit_test(test_tls_expired),
		cmocka_unit_test(test_tls_self_signed),
		cmocka_unit_test(test_tls_system_store),
		cmocka_unit_test(test_tls_bad_ca_file),
	};
	/* One group: TAP allows one plan per run.  The setup makes the certificates. */
	return cmocka_run_group_tests(tests, tls_group_setup, tls_group_teardown);
}

/* mailmill - ISC licence, see LICENSE */
/*
 * Buffered client connections.  The socket is always non-blocking and every
 * wait is a poll() against one absolute deadline per command, checked before
 * each read and write too, so neither a silent server nor one that drips a
 * byte at a time can stretch a command past it.  Reads go in large chunks
 * straight into the line buffer; writes collect until net_flush or until the
 * next read (a reply cannot come before the command has left).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proto/buf.h"
#include "proto/clock.h"
#include "proto/linebuf.h"
#include "proto/err.h"
#include "proto/net.h"
#include "proto/tls.h"

#define NET_READ_CHUNK (64 * 1024)
#define NET_WBUF_SIZE (16 * 1024)
#define NET_CONNECT_ERRORS_MAX 1024 /* bytes of per-address reasons we keep */

struct net_conn {
	int fd;
	tls_conn *tls;
	linebuf in;
	char *out;
	size_t outlen;
	long long deadline; /* CLOCK_MONOTONIC ms, 0 = none */
	int timed_out;
	int dead; /* an earlier error: only net_close is allowed */
	char *peer; /* for messages */
};

/* Milliseconds poll() may wait before `deadline`: -1 forever, 0 expired. */
static int
net_poll_ms(long long deadline)
{
	long long left;

	if (deadline == 0)
		return -1;
	left = deadline - clock_now_ms();
	if (left <= 0)
		return 0;
	return left > INT32_MAX ? INT32_MAX : (int)left;
}

/* Wait for `events` on fd until deadline: 0 ready, -1 (errno ETIMEDOUT or poll's). */
static int
net_wait(int fd, short events, long long deadline)
{
	struct pollfd pfd;
	int ms, r;

	for (;;) {
		ms = net_poll_ms(deadline);
		if (ms == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		r = poll(&pfd, 1, ms);
		if (r > 0)
			return 0; /* POLLERR/POLLHUP: the next call reports the reason */
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

static int
net_expired(const net_conn *c)
{
	return c->deadline != 0 && clock_now_ms() >= c->deadline;
}

/* Mark the connection broken; *err_r gets msg (already allocated). */
static int
net_fail(net_conn *c, char **err_r, char *msg, int timeout)
{
	c->dead = 1;
	c->timed_out = timeout;
	*err_r = msg;
	return -1;
}

static int
net_check_alive(net_conn *c, char **err_r)
{
	if (!c->dead)
		return 0;
	*err_r = err_fmt("connection to %s already failed", c->peer);
	return -1;
}

/* ------------------------------------------------------------ setup */

static int
net_conn_new(int fd, size_t max_line, const char *peer, net_conn **conn_r, char **err_r)
{
	net_conn *c;

	*conn_r = NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto nomem;
	c->fd = fd;
	c->out = malloc(NET_WBUF_SIZE);
	c->peer = strdup(peer);
	if (c->out == NULL || c->peer == NULL)
		goto nomem;
	if (linebuf_init(&c->in, max_line) < 0) {
		if (errno == EINVAL) {
			*err_r = err_fmt("invalid maximum line length %zu", max_line);
			goto fail;
		}
		goto nomem;
	}
	*conn_r = c;
	return 0;
nomem:
	*err_r = err_fmt("out of memory");
fail:
	if (c != NULL) {
		free(c->out);
		free(c->peer);
		free(c);
	}
	close(fd);
	return -1;
}

int
net_from_fd(int fd, size_t max_line, net_conn **conn_r, char **err_r)
{
	int fl;

	*conn_r = NULL;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		*err_r = err_fmt("cannot use fd %d: %s", fd, strerror(errno));
		close(fd);
		return -1;
	}
	return net_conn_new(fd, max_line, "peer", conn_r, err_r);
}

/* "[::1]:110" / "127.0.0.1:110" for error messages. */
static void
net_addr_name(const struct addrinfo *ai, char *out, size_t outlen)
{
	char host[NI_MAXHOST], serv[NI_MAXSERV];

	if (getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof(host), serv, sizeof(serv),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(out, outlen, "(unprintable address)");
		return;
	}
	snprintf(out, outlen, ai->ai_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
}

/* One address: connected fd, or -1 with *why set (static text or strerror). */
static int
net_try_addr(const struct addrinfo *ai, long long deadline, const char **why)
{
	socklen_t len;
	int fd, soerr;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0) {
		*why = strerror(errno);
		return -1;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS && errno != EINTR) {
		*why = strerror(errno);
		close(fd);
		return -1;
	}
	if (net_wait(fd, POLLOUT, deadline) < 0) {
		*why = errno == ETIMEDOUT ? "timed out" : strerror(errno);
		close(fd);
		return -1;
	}
	len = sizeof(soerr);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		soerr = errno;
	if (soerr != 0) {
		*why = strerror(soerr);
		close(fd);
		return -1;
	}
	return fd;
}

int
net_connect(const char *host, const char *port, int timeout_ms, size_t max_line,
	    net_conn **conn_r, char **err_r)
{
	struct addrinfo hints, *res, *ai;
	buf why = { .max = NET_CONNECT_ERRORS_MAX };
	char name[NI_MAXHOST + NI_MAXSERV + 8];
	const char *reason;
	long long deadline, now, slice;
	size_t naddr = 0, i = 0;
	int r, fd = -1, one = 1;

	*conn_r = NULL;
	if (host == NULL || host[0] == '\0' || port == NULL || port[0] == '\0') {
		*err_r = err_fmt("connect: no host or port given");
		return -1;
	}
	deadline = timeout_ms > 0 ? clock_now_ms() + timeout_ms : 0;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	/* getaddrinfo itself has no timeout; the resolver's own limits apply. */
	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0) {
		*err_r = err_fmt("cannot resolve %s port %s: %s", host, port,
				  r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next)
		naddr++;
	for (ai = res; ai != NULL; ai = ai->ai_next, i++) {
		net_addr_name(ai, name, sizeof(name));
		now = clock_now_ms();
		if (deadline != 0 && now >= deadline) {
			reason = "not tried, out of time";
			slice = 0;
		} else {
			/* Share what is left, so one black-holed address cannot starve the rest. */
			slice = deadline == 0 || i + 1 == naddr ? deadline
							     : now + (deadline - now) / (long long)(naddr - i);
			fd = net_try_addr(ai, slice, &reason);
			if (fd >= 0)
				break;
		}
		if (why.len > 0)
			(void)buf_append(&why, "; ", 2);
		(void)buf_append(&why, name, strlen(name));
		(void)buf_append(&why, ": ", 2);
		(void)buf_append(&why, reason, strlen(reason));
	}
	freeaddrinfo(res);
	if (fd < 0) {
		/* Each address tried with its reason; callers name host and port. */
		*err_r = err_fmt("%s", why.data != NULL ? why.data : "no address");
		buf_free(&why);
		return -1;
	}
	buf_free(&why);
	/* Pipelined commands are small and waited for: do not let Nagle hold them. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (net_conn_new(fd, max_line, host, conn_r, err_r) < 0)
		return -1;
	(*conn_r)->deadline = deadline;
	return 0;
}

/* ------------------------------------------------------------ TLS */

int
net_starttls(net_conn *c, const char *host, const char *ca_file, char **err_r)
{
	size_t pending;
	ssize_t n;
	char ch;

	if (net_check_alive(c, err_r) < 0)
		return -1;
	if (c->tls != NULL)
		return net_fail(c, err_r, err_fmt("TLS: already active on the connection to %s",
						   c->peer), 0);
	if (c->outlen > 0)
		return net_fail(c, err_r, err_fmt("TLS: %zu bytes of unsent plain text queued "
						   "before the handshake", c->outlen), 0);
	pending = linebuf_pending(&c->in);
	if (pending == 0) {
		/* The server may not speak before our ClientHello: anything already
		 * waiting in the socket was sent before the handshake as well. */
		do
			n = recv(c->fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT);
		while (n < 0 && errno == EINTR);
		if (n == 0)
			return net_fail(c, err_r, err_fmt("TLS: %s closed the connection before "
							   "the handshake", c->peer), 0);
		if (n > 0)
			pending = 1;
	}
	if (pending > 0)
		return net_fail(c, err_r, err_fmt("TLS: %s sent plain text after its go-ahead, "
						   "before the handshake: possible injection "
						   "attack, connection dropped", c->peer), 0);
	if (tls_connect(c->fd, host, ca_file, c->deadline, &c->tls, err_r) < 0) {
		c->dead = 1;
		c->timed_out = errno == ETIMEDOUT;
		return -1;
	}
	return 0;
}

int
net_is_tls(const net_conn *c)
{
	return c->tls != NULL;
}

const char *
net_tls_describe(const net_conn *c)
{
	return c->tls != NULL ? tls_describe(c->tls) : "";
}

const char *
net_tls_cert(const net_conn *c)
{
	return c->tls != NULL ? tls_cert(c->tls) : "";
}

/* ------------------------------------------------------------ deadlines */

void
net_deadline(net_conn *c, int ms)
{
	c->deadline = ms > 0 ? clock_now_ms() + ms : 0;
}

int
net_last_timeout(const net_conn *c)
{
	return c->timed_out;
}

/* ------------------------------------------------------------ writing */

static int
net_send_all(net_conn *c, const char *p, size_t len, char **err_r)
{
	ssize_t n;

	if (net_expired(c))
		return net_fail(c, err_r, err_fmt("write to %s timed out", c->peer), 1);
	if (c->tls != NULL) {
		if (tls_write(c->tls, p, len, c->deadline, err_r) < 0) {
			c->dead = 1;
			c->timed_out = errno == ETIMEDOUT;
			return -1;
		}
		return 0;
	}
	while (len > 0) {
		n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return net_fail(c, err_r, err_fmt("write to %s: %s", c->peer,
							   strerror(errno)), 0);
		if (net_wait(c->fd, POLLOUT, c->deadline) < 0) {
			if (errno == ETIMEDOUT)
				return net_fail(c, err_r, err_fmt("write to %s timed out", c->peer), 1);
			return net_fail(c, err_r, err_fmt("write to %s: poll: %s", c->peer,
							   strerror(errno)), 0);
		}
	}
	return 0;
}

int
net_flush(net_conn *c, char **err_r)
{
	if (net_check_alive(c, err_r) < 0)
		return -1;
	if (c->outlen == 0)
		return 0;
	if (net_send_all(c, c->out, c->outlen, err_r) < 0)
		return -1;
	/* Sent lines may carry credentials (AUTH, PASS): none stays behind. */
	explicit_bzero(c->out, c->outlen);
	c->outlen = 0;
	return 0;
}

int
net_write(net_conn *c, const void *data, size_t len, char **err_r)
{
	if (net_check_alive(c, err_r) < 0)
		return -1;
	if (len <= NET_WBUF_SIZE - c->outlen) {
		memcpy(c->out + c->outlen, data, len);
		c->outlen += len;
		return 0;
	}
	if (net_flush(c, err_r) < 0)
		return -1;
	if (len >= NET_WBUF_SIZE)
		return net_send_all(c, data, len, err_r);
	memcpy(c->out, data, len);
	c->outlen = len;
	return 0;
}

int
net_printf(net_conn *c, char **err_r, const char *fmt, ...)
{
	char small[512], *big;
	va_list ap, ap2;
	int n, r;

	va_start(ap, fmt);
	va_copy(ap2, ap);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		va_end(ap2);
		*err_r = err_fmt("cannot format a command for %s", c->peer);
		return -1;
	}
	if ((size_t)n < sizeof(small)) {
		va_end(ap2);
		return net_write(c, small, (size_t)n, err_r);
	}
	big = malloc((size_t)n + 1);
	if (big == NULL) {
		va_end(ap2);
		*err_r = err_fmt("out of memory");
		return -1;
	}
	(void)vsnprintf(big, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	r = net_write(c, big, (size_t)n, err_r);
	free(big);
	return r;
}

/* ------------------------------------------------------------ reading */

/* One read into the line buffer: >0 bytes, 0 EOF, -1 error (connection dead). */
static ssize_t
net_fill(net_conn *c, char **err_r)
{
	size_t room;
	ssize_t n;
	char *p;

	if (net_expired(c))
		return net_fail(c, err_r, err_fmt("read from %s timed out", c->peer), 1);
	p = linebuf_space(&c->in, NET_READ_CHUNK, &room);
	if (p == NULL)
		return net_fail(c, err_r, err_fmt("out of memory"), 0);
	if (c->tls != NULL) {
		n = tls_read(c->tls, p, room, c->deadline, err_r);
		if (n < 0) {
			c->dead = 1;
			c->timed_out = errno == ETIMEDOUT;
			return -1;
		}
	} else {
		for (;;) {
			n = recv(c->fd, p, room, 0);
			if (n >= 0)
				break;
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return net_fail(c, err_r, err_fmt("read from %s: %s", c->peer,
								   strerror(errno)), 0);
			if (net_wait(c->fd, POLLIN, c->deadline) < 0) {
				if (errno == ETIMEDOUT)
					return net_fail(c, err_r, err_fmt("read from %s timed out",
									   c->peer), 1);
				return net_fail(c, err_r, err_fmt("read from %s: poll: %s",
								   c->peer, strerror(errno)), 0);
			}
		}
	}
	linebuf_commit(&c->in, (size_t)n);
	return n;
}

/* A line (whole, or a piece of one if parts) once one is buffered. */
static int
net_getline_any(net_conn *c, int parts, const char **line, size_t *len, int *whole,
		char **err_r)
{
	ssize_t n;
	int r;

	if (net_check_alive(c, err_r) < 0)
		return -1;
	for (;;) {
		*whole = 1;
		r = parts ? linebuf_next_part(&c->in, line, len, whole) :
			    linebuf_next(&c->in, line, len);
		if (r > 0)
			return 1;
		if (r < 0)
			return net_fail(c, err_r, err_fmt("line from %s longer than %zu bytes",
							   c->peer, c->in.max_line), 0);
		if (c->outlen > 0 && net_flush(c, err_r) < 0)
			return -1;
		n = net_fill(c, err_r);
		if (n < 0)
			return -1;
		if (n == 0) {
			if (linebuf_pending(&c->in) > 0)
				return net_fail(c, err_r, err_fmt("connection closed by %s in the "
								   "middle of a line", c->peer), 0);
			return net_fail(c, err_r, err_fmt("connection closed by %s", c->peer), 0);
		}
	}
}

int
net_getline(net_conn *c, const char **line, size_t *len, char **err_r)
{
	int whole;

	return net_getline_any(c, 0, line, len, &whole, err_r);
}

int
net_getline_part(net_conn *c, const char **line, size_t *len, int *whole, char **err_r)
{
	return net_getline_any(c, 1, line, len, whole, err_r);
}

int
net_read_more(net_conn *c, char **err_r)
{
	ssize_t n;

	if (net_check_alive(c, err_r) < 0)
		return -1;
	if (c->outlen > 0 && net_flush(c, err_r) < 0)
		return -1;
	n = net_fill(c, err_r);
	if (n < 0)
		return -1;
	if (n == 0)
		return net_fail(c, err_r, err_fmt("connection closed by %s", c->peer), 0);
	return (int)(n > INT32_MAX ? INT32_MAX : n);
}

int
net_read_ready(net_conn *c, char **err_r)
{
	struct pollfd pfd;
	int r;

	if (net_check_alive(c, err_r) < 0)
		return -1;
	if (c->tls == NULL || tls_pending(c->tls) == 0) {
		pfd.fd = c->fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		do
			r = poll(&pfd, 1, 0);
		while (r < 0 && errno == EINTR);
		if (r < 0)
			return net_fail(c, err_r, err_fmt("poll: %s", strerror(errno)), 0);
		if (r == 0)
			return 0;
	}
	return net_read_more(c, err_r);
}

size_t
net_peek(const net_conn *c, const char **data_r)
{
	if (c->dead) {
		*data_r = NULL;
		return 0;
	}
	return linebuf_peek(&c->in, data_r);
}

void
net_consume(net_conn *c, size_t n)
{
	linebuf_skip(&c->in, n);
}

size_t
net_line_cap(const net_conn *c)
{
	return c->in.max_line;
}

size_t
net_pending(const net_conn *c)
{
	return linebuf_pending(&c->in) + (c->tls != NULL ? tls_pending(c->tls) : 0);
}

int
net_fd(const net_conn *c)
{
	return c->fd;
}

void
net_close(net_conn **cp)
{
	net_conn *c = *cp;

	if (c == NULL)
		return;
	if (c->tls != NULL)
		tls_close(&c->tls);
	if (c->fd >= 0)
		close(c->fd);
	linebuf_free(&c->in);
	if (c->out != NULL)
		explicit_bzero(c->out, c->outlen);
	free(c->out);
	free(c->peer);
	free(c);
	*cp = NULL;
}

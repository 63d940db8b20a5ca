/* mailmill - ISC licence, see LICENSE */
#include <arpa/inet.h>
#include <netinet/in.h>
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

#include "tests/unit/script_server.h"
#include "tests/unit/tls_relay.h"

/* An OAuth response is 6 KB and more; message data a few KB. */
#define LINE_MAX_BYTES 65536

/* One line with its CRLF (bytes one at a time: nothing is read ahead of
 * what the step wants); its length, or -1 at EOF, error or overlong. */
static ssize_t
read_line(int fd, char *line, size_t size)
{
	size_t n = 0;
	char c;

	for (;;) {
		ssize_t r = read(fd, &c, 1);

		if (r <= 0 || n + 1 >= size)
			return -1;
		line[n++] = c;
		if (c == '\n')
			break;
	}
	line[n] = '\0';
	return (ssize_t)n;
}

static int
write_all(int fd, const char *p, size_t len, size_t chunk)
{
	while (len > 0) {
		size_t n = len < chunk ? len : chunk;
		ssize_t w = write(fd, p, n);

		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
		if (chunk < 64)
			usleep(300);
	}
	return 0;
}

static int
step_expect(int fd, char *line, const char *want, int step)
{
	ssize_t n = read_line(fd, line, LINE_MAX_BYTES);

	if (n < 2 || line[n - 2] != '\r' || line[n - 1] != '\n') {
		fprintf(stderr, "# server step %d: no CRLF line (wanted \"%s\")\n", step, want);
		return -1;
	}
	line[n - 2] = '\0';
	if (strcmp(line, want) != 0) {
		fprintf(stderr, "# server step %d: got \"%s\", wanted \"%s\"\n", step, line, want);
		return -1;
	}
	return 0;
}

/* Message data up to the "." line, compared without that line. */
static int
step_data(int fd, char *line, const char *want, int step)
{
	size_t have = 0, cap = LINE_MAX_BYTES;
	char *data = malloc(cap);
	int rc = -1;

	if (data == NULL)
		return -1;
	for (;;) {
		ssize_t n = read_line(fd, line, LINE_MAX_BYTES);

		if (n < 0)
			break;
		if (strcmp(line, ".\r\n") == 0) {
			rc = 0;
			break;
		}
		if (have + (size_t)n >= cap)
			break;
		memcpy(data + have, line, (size_t)n);
		have += (size_t)n;
	}
	data[have] = '\0';
	if (rc == 0 && (have != strlen(want) || memcmp(data, want, have) != 0))
		rc = -1;
	if (rc < 0)
		fprintf(stderr, "# server step %d: data differs: \"%s\"\n", step, data);
	free(data);
	return rc;
}

static int
run_steps(int fd, const char *const *script, char *line)
{
	int i;

	for (i = 0; script[i] != NULL; i++) {
		const char *st = script[i];
		int step = i + 1;
		char c;

		switch (st[0]) {
		case '<':
			if (step_expect(fd, line, st + 1, step) < 0)
				return step;
			break;
		case '>':
		case '}':
			if (write_all(fd, st + 1, strlen(st + 1), st[0] == '>' ? SIZE_MAX : 3) < 0)
				return step;
			break;
		case 'D':
			if (step_data(fd, line, st + 1, step) < 0)
				return step;
			break;
		case 'E':
			if (read(fd, &c, 1) != 0) {
				fprintf(stderr, "# server step %d: the client sent more\n", step);
				return step;
			}
			break;
		case 'H':
			while (read(fd, &c, 1) > 0)
				;
			break;
		case 'Z':
			usleep((useconds_t)atoi(st + 1) * 1000);
			break;
		case 'X':
			return 0;
		case 'T': {
			/* the rest behind a TLS relay on this connection (STARTTLS) */
			pid_t relay;
			int plain = tls_relay_start(fd, &relay), rc;

			if (plain < 0)
				return step;
			rc = run_steps(plain, script + i + 1, line);
			close(plain);
			waitpid(relay, NULL, 0);
			return rc > 0 ? rc + step : 0;
		}
		case 'R': {
			struct linger lg = { 1, 0 };

			if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
				return step;
			return 0;
		}
		default:
			fprintf(stderr, "# server step %d: unknown step \"%s\"\n", step, st);
			return step;
		}
	}
	return 0;
}

int
script_server_run(int fd, const char *const *script)
{
	char *line = malloc(LINE_MAX_BYTES);
	int rc;

	if (line == NULL)
		return 255;
	rc = run_steps(fd, script, line);
	free(line);
	close(fd); /* after "R" this is the reset */
	return rc > 255 ? 255 : rc;
}

/* Fork; in the child, ignore SIGPIPE (a failed write is a failed step). */
static pid_t
fork_server(unsigned alarm_s)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGPIPE, SIG_IGN);
		alarm(alarm_s); /* never outlive a test that went wrong */
	}
	return pid;
}

/* A socketpair and a child: the child keeps p[1], the parent p[0] (in fd). */
static script_server
pair_start(int *child_fd, unsigned alarm_s)
{
	script_server sv = { .fd = -1 };
	int p[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p), 0);
	sv.pid = fork_server(alarm_s);
	if (sv.pid == 0) {
		close(p[0]);
		*child_fd = p[1];
		return sv;
	}
	close(p[1]);
	sv.fd = p[0];
	return sv;
}

script_server
script_server_start(const char *const *script)
{
	int fd;
	script_server sv = pair_start(&fd, 30);

	if (sv.pid == 0)
		_exit(script_server_run(fd, script));
	return sv;
}

int
script_server_bind(char port[8])
{
	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(lfd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &salen), 0);
	snprintf(port, 8, "%u", (unsigned)ntohs(sa.sin_port));
	return lfd;
}

script_server
script_server_listen(const char *const *script)
{
	script_server sv = { .fd = -1 };
	int lfd = script_server_bind(sv.port);

	sv.pid = fork_server(30);
	if (sv.pid == 0) {
		int c = accept(lfd, NULL, NULL);

		close(lfd);
		_exit(c < 0 ? 255 : script_server_run(c, script));
	}
	close(lfd);
	return sv;
}

script_server
script_server_start_tcp(const char *const *script)
{
	script_server sv = script_server_listen(script);
	struct sockaddr_in sa;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)atoi(sv.port));
	sv.fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(sv.fd >= 0);
	assert_int_equal(connect(sv.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return sv;
}

script_server
script_server_start_tls(const char *const *script)
{
	int fd;
	script_server sv = pair_start(&fd, 90); /* a handshake under valgrind is slow */

	if (sv.pid == 0) {
		pid_t relay;
		int plain, rc;

		if ((plain = tls_relay_start(fd, &relay)) < 0)
			_exit(254);
		rc = script_server_run(plain, script);
		waitpid(relay, NULL, 0);
		_exit(rc);
	}
	return sv;
}

void
script_server_finish(script_server *sv)
{
	int status;

	assert_int_equal(waitpid(sv->pid, &status, 0), sv->pid);
	if (!WIFEXITED(status))
		fail_msg("the scripted server died (status %d)", status);
	if (WEXITSTATUS(status) != 0)
		fail_msg("the scripted server failed at step %d", WEXITSTATUS(status));
}

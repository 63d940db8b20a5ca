/* mailmill - ISC licence, see LICENSE */
/* The scripted server of script_server.h (moved out of test_pop3.c). */
#include <config.h>

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/script_server.h"
static int
srv_read_line(int fd, char *line, size_t size)
{
	size_t n = 0;
	char c;

	for (;;) {
		ssize_t r = read(fd, &c, 1);

		if (r <= 0)
			return -1;
		if (c == '\n')
			break;
		if (n + 1 >= size)
			return -1;
		line[n++] = c;
	}
	if (n == 0 || line[n - 1] != '\r')
		return -1; /* a client line must end in CRLF */
	line[n - 1] = '\0';
	return 0;
}

static int
srv_write(int fd, const char *p, size_t len, size_t chunk)
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

int
srv_run(int fd, const char *const *script)
{
	char line[16384], c; /* an OAuth response is 6 KB and more */
	int i;

	for (i = 0; script[i] != NULL; i++) {
		const char *st = script[i];

		switch (st[0]) {
		case '<':
			if (srv_read_line(fd, line, sizeof(line)) < 0) {
				fprintf(stderr, "server step %d: no line (wanted \"%s\")\n", i + 1,
					st + 1);
				return i + 1;
			}
			if (strcmp(line, st + 1) != 0) {
				fprintf(stderr, "server step %d: got \"%s\", wanted \"%s\"\n", i + 1,
					line, st + 1);
				return i + 1;
			}
			break;
		case '>':
		case '}':
			if (srv_write(fd, st + 1, strlen(st + 1), st[0] == '>' ? 65536 : 3) < 0)
				return i + 1;
			break;
		case 'E':
			if (read(fd, &c, 1) != 0) {
				fprintf(stderr, "server step %d: the client sent more\n", i + 1);
				return i + 1;
			}
			break;
		case 'Z':
			usleep((useconds_t)atoi(st + 1) * 1000);
			break;
		case 'X':
			close(fd);
			return 0;
		default:
			return i + 1;
		}
	}
	return 0;
}

server
server_start(const char *const *script)
{
	server sv;
	int p[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p), 0);
	sv.pid = fork();
	assert_true(sv.pid >= 0);
	if (sv.pid == 0) {
		close(p[0]);
		signal(SIGPIPE, SIG_IGN);
		alarm(20); /* never outlive a test that went wrong */
		_exit(srv_run(p[1], script));
	}
	close(p[1]);
	sv.fd = p[0];
	return sv;
}

void
server_done(server sv)
{
	int status;

	assert_int_equal(waitpid(sv.pid, &status, 0), sv.pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) != 0)
		fail_msg("the scripted server failed at step %d", WEXITSTATUS(status));
}


server
server_listen(const char *const *script, int *port_r)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof sin;
	server sv = { .fd = -1 };
	int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	assert_true(l >= 0);
	assert_int_equal(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(l, (struct sockaddr *)&sin, sizeof sin), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&sin, &sl), 0);
	*port_r = ntohs(sin.sin_port);
	sv.pid = fork();
	assert_true(sv.pid >= 0);
	if (sv.pid == 0) {
		int fd;

		signal(SIGPIPE, SIG_IGN);
		alarm(20); /* never outlive a test that went wrong */
		if ((fd = accept(l, NULL, NULL)) < 0)
			_exit(99);
		close(l);
		_exit(srv_run(fd, script));
	}
	close(l);
	return sv;
}

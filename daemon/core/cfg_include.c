/* mailmill - ISC licence, see LICENSE */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <glib.h>

#include "daemon/core/cfg_include.h"
#include "daemon/core/trust.h"
#include "proto/err.h"

/* A configuration file bigger than this is a mistake, not a configuration. */
#define CFGINCLUDE_MAX_SIZE (16 * 1024 * 1024)

/* libconfig's scanner states; the state is the scanner's, not a file's. */
typedef enum { INC_INITIAL, INC_COMMENT, INC_STRING, INC_NAME } inc_state;

typedef struct inc_scan {
	inc_state state;
	GString *name;                     /* the @include name being read */
	const char *incdir;
	struct { dev_t dev; ino_t ino; } open[CFGINCLUDE_MAX_DEPTH + 1];
	int depth;                         /* files open: 1 for the main file */
	unsigned files;                    /* includes followed in all */
	char *err;
} inc_scan;

static int inc_file(inc_scan *s, const char *file, const char *shown);

/* The whole file: it must be a regular file (a FIFO would block, a
 * directory is what ends libconfig's scanner). */
static int
inc_read(inc_scan *s, const char *file, const char *where, char **buf_r, size_t *len_r,
	 struct stat *sb)
{
	GString *b;
	char chunk[8192];
	int fd = open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);

	if (fd < 0) {
		s->err = err_fmt("%s%s: %s", where, file, strerror(errno));
		return -1;
	}
	if (fstat(fd, sb) < 0 || !S_ISREG(sb->st_mode)) {
		s->err = err_fmt("%s%s is not a regular file", where, file);
		close(fd);
		return -1;
	}
	b = g_string_sized_new((gsize)sb->st_size + 1);
	for (;;) {
		ssize_t r = read(fd, chunk, sizeof chunk);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			s->err = err_fmt("%s%s: %s", where, file, strerror(errno));
			break;
		}
		if (r == 0)
			break;
		if (b->len + (size_t)r > CFGINCLUDE_MAX_SIZE) {
			s->err = err_fmt("%s%s: larger than %d bytes", where, file,
					 CFGINCLUDE_MAX_SIZE);
			break;
		}
		g_string_append_len(b, chunk, r);
	}
	close(fd);
	if (s->err != NULL) {
		g_string_free(b, TRUE);
		return -1;
	}
	*len_r = b->len;
	*buf_r = g_string_free(b, FALSE);
	return 0;
}

/* At the start of a line in INITIAL: "[ \t]*@include[ \t]+\"" ?  The
 * length up to and with the quote, or 0. */
static size_t
inc_directive(const char *p, size_t n)
{
	static const char kw[] = "@include";
	size_t i = 0, blanks;

	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (n - i < sizeof kw - 1 || memcmp(p + i, kw, sizeof kw - 1) != 0)
		return 0;
	i += sizeof kw - 1;
	for (blanks = 0; i < n && (p[i] == ' ' || p[i] == '\t'); i++)
		blanks++;
	if (blanks == 0 || i >= n || p[i] != '"')
		return 0;
	return i + 1;
}

/* The name is complete: follow it as libconfig would. */
static int
inc_follow(inc_scan *s, const char *shown, int line)
{
	char *name = g_string_free(s->name, FALSE), *full, *where, *why = NULL;
	struct stat sb;
	int rc = -1;

	s->name = g_string_new(NULL);
	/* libconfig 1.5 puts include_dir in front of every name, even "/x". */
	full = s->incdir != NULL ? g_strdup_printf("%s/%s", s->incdir, name) : g_strdup(name);
	where = g_strdup_printf("%s:%d: @include \"%s\": ", shown, line, name);
	if (++s->files > CFGINCLUDE_MAX_FILES) {
		s->err = err_fmt("%smore than %d @include in all", where,
				 CFGINCLUDE_MAX_FILES);
	} else if (s->depth >= CFGINCLUDE_MAX_DEPTH) {
		s->err = err_fmt("%s@include nested more than %d deep", where,
				 CFGINCLUDE_MAX_DEPTH - 1);
	} else if (stat(full, &sb) < 0) {
		s->err = err_fmt("%s%s: %s", where, full, strerror(errno));
	} else if (S_ISDIR(sb.st_mode)) {
		s->err = err_fmt("%s%s is a directory, not a file", where, full);
	} else if (trust_check_path(full, "@include file", &why) < 0) {
		s->err = err_fmt("%s%s", where, why);
	} else {
		for (int i = 0; i < s->depth; i++) {
			if (s->open[i].dev == sb.st_dev && s->open[i].ino == sb.st_ino) {
				s->err = err_fmt("%s%s includes itself (a cycle)", where,
						 full);
				break;
			}
		}
		if (s->err == NULL)
			rc = inc_file(s, full, full);
	}
	free(why);
	g_free(where);
	g_free(full);
	g_free(name);
	return rc;
}

/* Scan one file, following its @include lines as they come (libconfig
 * reads an included file at the point of the directive). */
static int
inc_scan_buf(inc_scan *s, const char *shown, const char *p, size_t n)
{
	int line = 1, bol = 1;
	size_t i = 0;

	while (i < n) {
		char c = p[i];
		size_t k;

		switch (s->state) {
		case INC_INITIAL:
			if (bol && (k = inc_directive(p + i, n - i)) > 0) {
				s->state = INC_NAME;
				i += k;
				bol = 0;
				continue;
			}
			if (c == '"') {
				s->state = INC_STRING;
			} else if (c == '#' || (c == '/' && i + 1 < n && p[i + 1] == '/')) {
				while (i + 1 < n && p[i + 1] != '\n')
					i++;
			} else if (c == '/' && i + 1 < n && p[i + 1] == '*') {
				s->state = INC_COMMENT;
				i++;
			}
			break;
		case INC_COMMENT:
			if (c == '*' && i + 1 < n && p[i + 1] == '/') {
				s->state = INC_INITIAL;
				i++;
			}
			break;
		case INC_STRING:
			if (c == '\\' && i + 1 < n && (p[i + 1] == '"' || p[i + 1] == '\\'))
				i++;    /* the only escapes that can hide a quote */
			else if (c == '"')
				s->state = INC_INITIAL;
			break;
		case INC_NAME:
			if (c == '\\') {
				/* \\ and \" are escapes; any other backslash is dropped. */
				if (i + 1 < n && (p[i + 1] == '\\' || p[i + 1] == '"')) {
					g_string_append_c(s->name, p[i + 1]);
					i++;
				}
			} else if (c == '"') {
				s->state = INC_INITIAL;
				if (inc_follow(s, shown, line) < 0)
					return -1;
			} else {
				/* libconfig appends each run with strlen(): a NUL ends it. */
				size_t run = i;

				while (run < n && p[run] != '"' && p[run] != '\\')
					run++;
				g_string_append_len(s->name, p + i, (gssize)strnlen(p + i, run - i));
				for (; i < run; i++)
					line += p[i] == '\n';
				bol = p[run - 1] == '\n';
				continue;
			}
			break;
		}
		line += c == '\n';
		bol = p[i] == '\n';
		i++;
	}
	return 0;
}

static int
inc_file(inc_scan *s, const char *file, const char *shown)
{
	struct stat sb;
	char *buf = NULL;
	size_t len = 0;
	int rc;

	if (inc_read(s, file, s->depth > 0 ? "@include file " : "", &buf, &len, &sb) < 0)
		return -1;
	s->open[s->depth].dev = sb.st_dev;
	s->open[s->depth].ino = sb.st_ino;
	s->depth++;
	rc = inc_scan_buf(s, shown, buf, len);
	s->depth--;
	g_free(buf);
	return rc;
}

int
cfginclude_check(const char *path, const char *incdir, char **err_r)
{
	inc_scan s = { .state = INC_INITIAL, .incdir = incdir };
	int rc;

	s.name = g_string_new(NULL);
	rc = inc_file(&s, path, path);
	g_string_free(s.name, TRUE);
	/* A name may hold a newline or worse: the message stays one line. */
	for (char *q = s.err; q != NULL && *q != '\0'; q++)
		if ((unsigned char)*q < 0x20 || *q == 0x7f)
			*q = '?';
	*err_r = rc < 0 ? s.err : NULL;
	return rc;
}

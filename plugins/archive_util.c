/* mailmill - ISC licence, see LICENSE */
/*
 * The archive's shared file-system helpers, used by both formats
 * (archive_maildir.c, archive_mbox.c) and the plugin glue: errors, the
 * idempotency digest, folder patterns, durable mkdir -p, fsync of a
 * directory, write-all.  Nothing here calls mm_*.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* vasprintf */
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <glib.h>

#include "archive.h"

void
archive_seterr(char **err_r, const char *fmt, ...)
{
	va_list ap;

	if (err_r == NULL)
		return;
	va_start(ap, fmt);
	if (vasprintf(err_r, fmt, ap) < 0)
		*err_r = NULL; /* callers print "out of memory" for NULL */
	va_end(ap);
}

void
archive_digest(const char *account, const char *uid, char digest_r[ARCHIVE_DIGEST_LEN + 1])
{
	GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);

	/* The NUL keeps ("ab", "c") and ("a", "bc") apart. */
	g_checksum_update(ck, (const guchar *)account, (gssize)strlen(account));
	g_checksum_update(ck, (const guchar *)"", 1);
	g_checksum_update(ck, (const guchar *)uid, (gssize)strlen(uid));
	memcpy(digest_r, g_checksum_get_string(ck), ARCHIVE_DIGEST_LEN);
	digest_r[ARCHIVE_DIGEST_LEN] = '\0';
	g_checksum_free(ck);
}

int
archive_folder_check(const char *pattern, char **err_r)
{
	size_t len = strlen(pattern);
	char *probe;

	if (len == 0 || len > 255) {
		archive_seterr(err_r, "folder pattern must be 1 to 255 bytes");
		return -1;
	}
	if (pattern[0] == '/' || strstr(pattern, "..") != NULL || strchr(pattern, '\\') != NULL) {
		archive_seterr(err_r, "folder pattern \"%s\" must be relative, without \"..\" or '\\'", pattern);
		return -1;
	}
	for (const char *p = pattern; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			archive_seterr(err_r, "folder pattern holds a control character");
			return -1;
		}
	}
	/* Catch conversions that always make a bad name (%n, %t, a '.' first). */
	if (archive_folder_expand(pattern, 946684800LL, &probe, err_r) < 0)
		return -1;
	free(probe);
	return 0;
}

static int
folder_component_ok(const char *s, size_t n)
{
	if (n == 0 || s[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e || s[i] == '\\')
			return 0;
	return 1;
}

int
archive_folder_expand(const char *pattern, long long when, char **dir_r, char **err_r)
{
	char buf[512];
	struct tm tm;
	time_t t = (time_t)when;
	size_t n;

	if ((long long)t != when || localtime_r(&t, &tm) == NULL) {
		archive_seterr(err_r, "message date %lld out of range", when);
		return -1;
	}
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	n = strftime(buf, sizeof(buf), pattern, &tm);
#pragma GCC diagnostic pop
	if (n == 0) {
		archive_seterr(err_r, "folder pattern \"%s\" gives an empty or too long name", pattern);
		return -1;
	}
	for (const char *p = buf;;) {
		const char *slash = strchr(p, '/');
		size_t clen = slash != NULL ? (size_t)(slash - p) : strlen(p);

		if (!folder_component_ok(p, clen)) {
			archive_seterr(err_r, "folder pattern \"%s\" gives the unsafe name \"%s\"", pattern, buf);
			return -1;
		}
		if (slash == NULL)
			break;
		p = slash + 1;
	}
	if ((*dir_r = strdup(buf)) == NULL) {
		archive_seterr(err_r, "out of memory");
		return -1;
	}
	return 0;
}

int
archive_fsync_dir(const char *dir, char **err_r)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		archive_seterr(err_r, "open %s: %s", dir, strerror(errno));
		return -1;
	}
	if (fsync(fd) < 0) {
		int e = errno;

		(void)close(fd); /* the fsync error is the one to report */
		archive_seterr(err_r, "fsync %s: %s", dir, strerror(e));
		return -1;
	}
	if (close(fd) < 0) {
		archive_seterr(err_r, "close %s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

int
archive_mkdirs(const char *dir, const perms *pm, char **err_r)
{
	struct stat st;
	char *path;
	int ret = -1;

	if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	if ((path = strdup(dir)) == NULL) {
		archive_seterr(err_r, "out of memory");
		return -1;
	}
	for (char *p = path + 1;; p++) {
		char save = *p;

		if (save != '/' && save != '\0')
			continue;
		*p = '\0';
		if (mkdir(path, pm != NULL ? pm->dir_mode & 0777 : PERMS_DIR_MODE_DEFAULT) == 0) {
			char *parent = g_path_get_dirname(path);
			int r = perms_apply_path(path, pm, 1, err_r);

			if (r == 0)
				r = archive_fsync_dir(path, err_r);

			/* The new entry exists only once its parent is on disk. */
			if (r == 0)
				r = archive_fsync_dir(parent, err_r);
			g_free(parent);
			if (r < 0)
				goto out;
		} else if (errno != EEXIST) {
			archive_seterr(err_r, "mkdir %s: %s", path, strerror(errno));
			goto out;
		} else if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
			archive_seterr(err_r, "%s exists and is not a directory", path);
			goto out;
		}
		*p = save;
		if (save == '\0')
			break;
		while (p[1] == '/')
			p++;
		if (p[1] == '\0')
			break;
	}
	ret = 0;
out:
	free(path);
	return ret;
}

int
archive_write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

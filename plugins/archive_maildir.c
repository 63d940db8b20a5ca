/* mailmill - ISC licence, see LICENSE */
/*
 * Maildir delivery with group commit: each message is written into tmp/ and
 * moved into new/ at once; one flush makes a whole batch durable before its
 * journal commit.  qmail's protocol flushes each file before the move; that
 * order made the moves wait for the flushes and held a 10,000-message run
 * to 0.75 of the disk's limit.  A file moved before its flush is covered by
 * a marker that the next run checks after a crash (archive_recover.c).
 * The writer thread that creates the files is archive_maildir_write.c; the
 * flusher thread and the commit's flush are archive_maildir_flush.c.
 * Nothing here calls mm_*:
 * tests/unit/test_maildir links this file without the daemon.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* syncfs */
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <glib.h>

#include "archive.h"

char *
maildir_hostname(const char *host)
{
	size_t len = strlen(host);
	char *out, *o;

	if (len > 255)
		len = 255;
	if ((out = malloc(len * 4 + 1)) == NULL)
		return NULL;
	o = out;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)host[i];

		if (c == '/' || c == ':' || c == ',' || c == '\\' || c <= 0x20 || c >= 0x7f) {
			snprintf(o, 5, "\\%03o", c);
			o += 4;
		} else {
			*o++ = (char)c;
		}
	}
	*o = '\0';
	if (o == out) {
		free(out);
		return strdup("localhost");
	}
	return out;
}

/* Append the decimal digits of v at p; returns the end. */
static char *
maildir_put_num(char *p, unsigned long long v)
{
	char tmp[20];
	int n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

/* Built by hand: asprintf cost 2,500 instructions per message, a fifth of
 * the Maildir writer's own work. */
char *
maildir_name(const struct timeval *tv, pid_t pid, const char *digest, const char *host,
	     size_t size)
{
	size_t dlen = strlen(digest), hlen = strlen(host);
	/* sign, three numbers and the size of at most 20 digits, ".M" "P" "Q"
	 * "." ",S=" and the NUL */
	char *name = malloc(dlen + hlen + 1 + 4 * 20 + 10), *p = name;

	if (name == NULL)
		return NULL;
	if (tv->tv_sec < 0) /* not from gettimeofday, but keep the format whole */
		*p++ = '-';
	p = maildir_put_num(p, tv->tv_sec < 0 ? 0ULL - (unsigned long long)tv->tv_sec
					      : (unsigned long long)tv->tv_sec);
	*p++ = '.';
	*p++ = 'M';
	p = maildir_put_num(p, (unsigned long long)tv->tv_usec);
	*p++ = 'P';
	p = maildir_put_num(p, (unsigned long long)pid);
	*p++ = 'Q';
	memcpy(p, digest, dlen);
	p += dlen;
	*p++ = '.';
	memcpy(p, host, hlen);
	p += hlen;
	memcpy(p, ",S=", 3);
	p = maildir_put_num(p + 3, (unsigned long long)size);
	*p = '\0';
	return name;
}

int
maildir_name_digest(const char *name, char digest_r[ARCHIVE_DIGEST_LEN + 1])
{
	const char *seg = strchr(name, '.'), *end;

	if (seg == NULL || (end = strchr(++seg, '.')) == NULL)
		return -1;
	if (end - seg < ARCHIVE_DIGEST_LEN + 1 || end[-ARCHIVE_DIGEST_LEN - 1] != 'Q')
		return -1;
	for (const char *p = end - ARCHIVE_DIGEST_LEN; p < end; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return -1;
	memcpy(digest_r, end - ARCHIVE_DIGEST_LEN, ARCHIVE_DIGEST_LEN);
	digest_r[ARCHIVE_DIGEST_LEN] = '\0';
	return 0;
}

/* Add the digests of the file names in `dir` to md->known. */
static int
maildir_scan(struct maildir *md, const char *dir, char **err_r)
{
	char digest[ARCHIVE_DIGEST_LEN + 1];
	struct dirent *de;
	DIR *d = opendir(dir);

	if (d == NULL) {
		archive_seterr(err_r, "opendir %s: %s", dir, strerror(errno));
		return -1;
	}
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.' && maildir_name_digest(de->d_name, digest) == 0)
			g_hash_table_add(md->known, g_strdup(digest));
		errno = 0;
	}
	if (errno != 0) {
		archive_seterr(err_r, "readdir %s: %s", dir, strerror(errno));
		(void)closedir(d);
		return -1;
	}
	(void)closedir(d); /* read-only: nothing to lose */
	return 0;
}

/*
 * Remove our own tmp/ files a crashed run left behind, once they are older
 * than the 36 hours after which the Maildir convention lets anyone do so.
 * Best effort: they hide nothing (readers ignore tmp/).
 */
static void
maildir_clean_tmp(struct maildir *md)
{
	char digest[ARCHIVE_DIGEST_LEN + 1];
	time_t old = time(NULL) - 36 * 3600;
	struct dirent *de;
	struct stat st;
	DIR *d = opendir(md->tmp);

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || maildir_name_digest(de->d_name, digest) < 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode) && st.st_mtime < old)
			(void)unlinkat(dirfd(d), de->d_name, 0);
	}
	(void)closedir(d);
}

static void
maildir_staged_free(void *p)
{
	struct maildir_staged *s = p;

	free(s->name);
	free(s);
}

int
maildir_open(const char *dir, const char *host, struct maildir **md_r, char **err_r)
{
	return maildir_open_perms(dir, host, NULL, md_r, err_r);
}

int
maildir_open_perms(const char *dir, const char *host, const perms *p, struct maildir **md_r,
		   char **err_r)
{
	struct maildir *md = g_new0(struct maildir, 1);

	if (p != NULL)
		md->perms = *p;
	else
		perms_default(&md->perms);

	md->dir = g_strdup(dir);
	md->tmp = g_build_filename(dir, "tmp", NULL);
	md->new = g_build_filename(dir, "new", NULL);
	md->cur = g_build_filename(dir, "cur", NULL);
	md->pid = getpid();
	md->rootfd = md->tmpfd = md->newfd = md->flushfd = md->mark.fd = -1;
	md->known = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	md->staged = g_ptr_array_new_with_free_func(maildir_staged_free);
	pthread_mutex_init(&md->lock, NULL);
	pthread_cond_init(&md->cond, NULL);
	pthread_mutex_init(&md->wlock, NULL);
	pthread_cond_init(&md->wcond, NULL);
	pthread_cond_init(&md->wdone, NULL);
	g_queue_init(&md->jobs);
	if ((md->host = maildir_hostname(host)) == NULL) {
		archive_seterr(err_r, "out of memory");
		goto fail;
	}
	if (archive_maildir_usable(md->dir, err_r) < 0 ||
	    archive_mkdirs(md->tmp, &md->perms, err_r) < 0 ||
	    archive_mkdirs(md->new, &md->perms, err_r) < 0 ||
	    archive_mkdirs(md->cur, &md->perms, err_r) < 0)
		goto fail;
	if ((md->rootfd = open(md->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    (md->tmpfd = open(md->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    (md->newfd = open(md->new, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		archive_seterr(err_r, "open %s: %s",
			       md->rootfd < 0 ? md->dir : md->tmpfd < 0 ? md->tmp : md->new,
			       strerror(errno));
		goto fail;
	}
	/* Before the scans: a file a crash left short must not count as delivered. */
	if (archive_recover_scan(md->rootfd, md->tmpfd, md->dir, &md->recovered, err_r) < 0)
		goto fail;
	if (maildir_scan(md, md->new, err_r) < 0 || maildir_scan(md, md->cur, err_r) < 0)
		goto fail;
	maildir_clean_tmp(md);
	*md_r = md;
	return 0;
fail:
	maildir_close(&md);
	return -1;
}

size_t
maildir_recovered(const struct maildir *md)
{
	return md->recovered;
}

/*
 * The directory fds are opened once; before each batch uses one, make sure
 * it is still the directory at its path.  Someone may have removed or
 * replaced it: writing into a directory no longer reachable would lose mail
 * that the journal takes as archived.
 */
static int
maildir_dirfd_check(int *fd, const char *path, char **err_r)
{
	struct stat a, b;
	int nfd;

	if (stat(path, &a) < 0) {
		archive_seterr(err_r, "stat %s: %s", path, strerror(errno));
		return -1;
	}
	if (*fd >= 0 && fstat(*fd, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
		return 0;
	if ((nfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		archive_seterr(err_r, "open %s: %s", path, strerror(errno));
		return -1;
	}
	if (*fd >= 0)
		(void)close(*fd); /* read-only directory */
	*fd = nfd;
	return 0;
}

int
maildir_stage(struct maildir *md, const char *digest, const char *data, size_t len,
	      char **err_r)
{
	struct maildir_staged *s;
	char *werr;

	if (g_hash_table_contains(md->known, digest))
		return 1;
	/* A file of this batch could not be made: the batch will fail at its
	 * commit, so stage nothing more into it. */
	if ((werr = maildir_writer_failed(md)) != NULL) {
		archive_seterr(err_r, "%s", werr);
		free(werr);
		return -1;
	}
	/* A new batch: the directory fds may be renewed (and a marker in a
	 * root that is no longer the Maildir's would guard nothing). */
	if (md->staged->len == 0) {
		int root = md->rootfd;

		if (maildir_dirfd_check(&md->rootfd, md->dir, err_r) < 0 ||
		    maildir_dirfd_check(&md->tmpfd, md->tmp, err_r) < 0 ||
		    maildir_dirfd_check(&md->newfd, md->new, err_r) < 0)
			return -1;
		if (md->rootfd != root)
			archive_recover_unmark(-1, &md->mark, 1);
		/* Once per batch, not per message (getpid is a system call): a
		 * process forked since the last batch names files by its own pid. */
		md->pid = getpid();
	}
	/* The marker is durable before the first file goes into new/ unflushed.
	 * A forked child makes its own: the inherited one is its parent's. */
	if (md->mark.fd < 0 || md->mark.pid != md->pid) {
		struct archive_mark m;

		if (archive_recover_mark(md->rootfd, md->dir, md->host, &m, err_r) < 0)
			return -1;
		if (md->mark.fd >= 0)
			(void)close(md->mark.fd); /* the parent's: it stays locked by the parent */
		md->mark = m;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		archive_seterr(err_r, "out of memory");
		return -1;
	}
	memcpy(s->digest, digest, ARCHIVE_DIGEST_LEN + 1);
	maildir_flusher_start(md);
	if (maildir_writer_push(md, s, data, len, err_r) < 0) {
		free(s);
		return -1;
	}
	/* Known and staged from here on: a failure of its file fails the
	 * batch's commit, whose rollback forgets them. */
	g_ptr_array_add(md->staged, s);
	g_hash_table_add(md->known, g_strdup(digest));
	return 0;
}

size_t
maildir_pending(const struct maildir *md)
{
	return md->staged->len;
}

void
maildir_abort(struct maildir *md)
{
	maildir_rollback(md);
}

void
maildir_close(struct maildir **mdp)
{
	struct maildir *md = *mdp;

	if (md == NULL)
		return;
	maildir_abort(md);
	maildir_writer_stop(md);
	if (md->has_flusher && md->flusher_pid == getpid()) {
		pthread_mutex_lock(&md->lock);
		md->stop = 1;
		pthread_cond_broadcast(&md->cond);
		pthread_mutex_unlock(&md->lock);
		(void)pthread_join(md->flusher, NULL);
	}
	archive_recover_unmark(md->rootfd, &md->mark, md->unclean);
	pthread_mutex_destroy(&md->lock);
	pthread_cond_destroy(&md->cond);
	pthread_mutex_destroy(&md->wlock);
	pthread_cond_destroy(&md->wcond);
	pthread_cond_destroy(&md->wdone);
	free(md->werr);
	if (md->rootfd >= 0)
		(void)close(md->rootfd); /* directories opened read-only */
	if (md->flushfd >= 0)
		(void)close(md->flushfd);
	if (md->tmpfd >= 0)
		(void)close(md->tmpfd);
	if (md->newfd >= 0)
		(void)close(md->newfd);
	g_ptr_array_free(md->staged, TRUE);
	g_hash_table_destroy(md->known);
	g_free(md->dir);
	g_free(md->tmp);
	g_free(md->new);
	g_free(md->cur);
	free(md->host);
	g_free(md);
	*mdp = NULL;
}

/* ---- the format table (archive.h) ---- */

static int
maildir_fmt_open(const char *path, const char *host, const perms *p, void **t_r, char **err_r)
{
	return maildir_open_perms(path, host, p, (struct maildir **)t_r, err_r);
}

static int
maildir_fmt_stage(void *t, const char *digest, const char *sender, long long date,
		  const char *data, size_t len, char **err_r)
{
	return maildir_stage(t, digest, data, len, err_r);
}

static size_t
maildir_fmt_pending(const void *t)
{
	return maildir_pending(t);
}

static int
maildir_fmt_commit(void *t, char **err_r)
{
	return maildir_commit(t, err_r);
}

static size_t
maildir_fmt_recovered(const void *t)
{
	return maildir_recovered(t);
}

static void
maildir_fmt_close(void *t)
{
	struct maildir *md = t;

	maildir_close(&md);
}

const struct archive_format archive_format_maildir = {
	.name = "maildir",
	.kind = ARCHIVE_KIND_MAILDIR,
	.needs_sender = 0,
	.open = maildir_fmt_open,
	.stage = maildir_fmt_stage,
	.pending = maildir_fmt_pending,
	.commit = maildir_fmt_commit,
	.recovered = maildir_fmt_recovered,
	.close = maildir_fmt_close,
};

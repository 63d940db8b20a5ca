/* mailmill - ISC licence, see LICENSE */
/*
 * The archive plugin's file-system half: Maildir naming and delivery, the
 * digest that makes it idempotent, folder patterns, and mbox quoting,
 * index and roll-back.  Everything runs in a fresh temporary directory.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <gmime/gmime.h>

#include "plugins/archive.h"

static char topdir[] = "/tmp/test_maildir.XXXXXX";
#include "tests/unit/tmpdir.h"
static int subdir_seq;

/* A Maildir-shaped message: binary bytes, From_ lines, no final newline. */
static const char message[] =
	"Return-Path: <a@example.org>\n"
	"From: a@example.org\n"
	"Subject: bytes \xe2\x82\xac\n"
	"\n"
	"From the start\n"
	">From quoted\n"
	"tab\there\r\n"
	"nul\0byte\n"
	"no final newline";
#define MESSAGE_LEN (sizeof(message) - 1)

/* A fresh directory below topdir for one test. */
static char *
fresh_dir(void)
{
	return g_strdup_printf("%s/t%d", topdir, ++subdir_seq);
}

/* Entries of `dir` whose name starts with `prefix`, or (NULL) that do not
 * start with '.'. */
static int
count_matching(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (prefix != NULL ? strncmp(de->d_name, prefix, strlen(prefix)) == 0
				   : de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static int
count_files(const char *dir)
{
	return count_matching(dir, NULL);
}

/* Writers' markers in the Maildir `dir`. */
static int
count_markers(const char *dir)
{
	return count_matching(dir, "mailmill-unsynced.");
}

/* The one file in `dir`, its name in *name_r (g_free it). */
static char *
only_file(const char *dir, char **name_r)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char *path = NULL;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		assert_null(path);
		path = g_build_filename(dir, de->d_name, NULL);
		if (name_r != NULL)
			*name_r = g_strdup(de->d_name);
	}
	closedir(d);
	assert_non_null(path);
	return path;
}

static void
assert_file_is(const char *path, const char *data, size_t len)
{
	gchar *got;
	gsize got_len;

	assert_true(g_file_get_contents(path, &got, &got_len, NULL));
	assert_int_equal(got_len, len);
	assert_memory_equal(got, data, len);
	g_free(got);
}

static void
test_digest(void **unused)
{
	char a[ARCHIVE_DIGEST_LEN + 1], b[ARCHIVE_DIGEST_LEN + 1];

	/* python3: hashlib.sha256(b'support\0uid-1').hexdigest()[:16] */
	archive_digest("support", "uid-1", a);
	assert_string_equal(a, "69b430d096693c44");
	archive_digest("support", "uid-1", b);
	assert_string_equal(a, b);
	archive_digest("support", "uid-2", b);
	assert_string_not_equal(a, b);
	archive_digest("sales", "uid-1", b);
	assert_string_not_equal(a, b);
	/* The separator keeps the account/uid boundary. */
	archive_digest("ab", "c", a);
	archive_digest("a", "bc", b);
	assert_string_not_equal(a, b);
}

static void
test_hostname(void **unused)
{
	char *h;

	h = maildir_hostname("mx1.example.org");
	assert_string_equal(h, "mx1.example.org");
	free(h);
	h = maildir_hostname("a/b:c,d");
	assert_string_equal(h, "a\\057b\\072c\\054d");
	free(h);
	h = maildir_hostname("sp ace\x01");
	assert_string_equal(h, "sp\\040ace\\001");
	free(h);
	h = maildir_hostname("");
	assert_string_equal(h, "localhost");
	free(h);
}

static void
test_name(void **unused)
{
	struct timeval tv = { 1700000000, 42 };
	char d[ARCHIVE_DIGEST_LEN + 1], *name, *moved;

	name = maildir_name(&tv, 1234, "0123456789abcdef", "host\\072x", 99);
	assert_string_equal(name, "1700000000.M42P1234Q0123456789abcdef.host\\072x,S=99");
	assert_int_equal(maildir_name_digest(name, d), 0);
	assert_string_equal(d, "0123456789abcdef");
	/* A reader moved it to cur/ with flags: still ours. */
	moved = g_strdup_printf("%s:2,RS", name);
	memset(d, 0, sizeof(d));
	assert_int_equal(maildir_name_digest(moved, d), 0);
	assert_string_equal(d, "0123456789abcdef");
	g_free(moved);
	free(name);
	/* Built by hand: the same as printf at the ends of every field. */
	{
		const long long secs[] = { 0, 9, 10, 1700000000, 4102444800LL, 9223372036854775807LL };
		const size_t sizes[] = { 0, 1, 99, 100, (size_t)-1 };

		for (size_t i = 0; i < G_N_ELEMENTS(secs); i++) {
			for (size_t j = 0; j < G_N_ELEMENTS(sizes); j++) {
				struct timeval t = { (time_t)secs[i], (suseconds_t)(j * 249999) };
				pid_t pid = (pid_t)(i == 0 ? 1 : 4194304 - (int)j);
				char *want = g_strdup_printf("%lld.M%ldP%ldQ%s.%s,S=%zu", secs[i],
							     (long)t.tv_usec, (long)pid, "0123456789abcdef",
							     "h", sizes[j]);

				name = maildir_name(&t, pid, "0123456789abcdef", "h", sizes[j]);
				assert_string_equal(name, want);
				free(name);
				g_free(want);
			}
		}
	}
	/* Other programs' names are never taken for ours. */
	assert_int_equal(maildir_name_digest("1700000000.M1P2Q3.host,S=1", d), -1);
	assert_int_equal(maildir_name_digest("1700000000.M1P2Q0123456789ABCDEF.host", d), -1);
	assert_int_equal(maildir_name_digest("1700000000.M1P2Q0123456789abcdef", d), -1);
	assert_int_equal(maildir_name_digest("noname", d), -1);
}

static void
test_deliver_byte_exact(void **unused)
{
	char digest[ARCHIVE_DIGEST_LEN + 1], *dir = fresh_dir(), *err = NULL;
	char *newdir, *tmpdir, *path, *name, *size;
	struct maildir *md;

	assert_int_equal(maildir_open(dir, "host:1", &md, &err), 0);
	archive_digest("acct", "1", digest);
	assert_int_equal(maildir_stage(md, digest, message, MESSAGE_LEN, &err), 0);
	assert_int_equal(maildir_pending(md), 1);
	assert_null(maildir_writer_wait(md)); /* the writer thread has made it */
	newdir = g_build_filename(dir, "new", NULL);
	tmpdir = g_build_filename(dir, "tmp", NULL);
	/* In new/ at once, whole; durable only at the commit, so the writer's
	 * marker is in the root until it closes. */
	assert_int_equal(count_files(newdir), 1);
	assert_int_equal(count_files(tmpdir), 0);
	assert_int_equal(count_markers(dir), 1);
	assert_int_equal(maildir_commit(md, &err), 0);
	assert_int_equal(maildir_pending(md), 0);
	assert_int_equal(count_files(tmpdir), 0);
	path = only_file(newdir, &name);
	assert_file_is(path, message, MESSAGE_LEN);
	size = g_strdup_printf(".host\\072" "1,S=%zu", MESSAGE_LEN);
	assert_true(g_str_has_suffix(name, size));
	assert_non_null(strstr(name, digest));
	maildir_close(&md);
	assert_null(md);
	assert_int_equal(count_markers(dir), 0);
	g_free(size);
	g_free(name);
	g_free(path);
	g_free(newdir);
	g_free(tmpdir);
	g_free(dir);
}

/* The `mode`, `dir_mode` and `group` settings (perms): exact whatever the
 * umask, for a Maildir's directories and files and an mbox and its index. */
static void
test_perms(void **unused)
{
	char digest[ARCHIVE_DIGEST_LEN + 1], *dir = fresh_dir(), *err = NULL, *sub, *path, *name;
	char *file, *idx, *a, *nd;
	struct maildir *md;
	struct mbox *mb;
	struct stat st;
	perms p;
	mode_t old = umask(077);

	perms_default(&p);
	p.mode = 0640;
	p.dir_mode = 0750;
	p.gid = getegid(); /* a group this process may give: its own */
	sub = g_build_filename(dir, "a", "b", NULL);
	assert_int_equal(maildir_open_perms(sub, "h", &p, &md, &err), 0);
	archive_digest("acct", "p1", digest);
	assert_int_equal(maildir_stage(md, digest, message, MESSAGE_LEN, &err), 0);
	assert_int_equal(maildir_commit(md, &err), 0);
	maildir_close(&md);
	a = g_build_filename(dir, "a", NULL);
	nd = g_build_filename(sub, "new", NULL);
	assert_int_equal(stat(a, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0750);
	assert_int_equal(stat(nd, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0750);
	assert_int_equal(st.st_gid, getegid());
	path = only_file(nd, &name);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	g_free(path);
	g_free(name);
	g_free(a);
	g_free(nd);
	p.mode = 0660;
	file = g_build_filename(dir, "m", "box", NULL);
	idx = g_strdup_printf("%s.mailmill-idx", file);
	assert_int_equal(mbox_open_perms(file, &p, &mb, &err), 0);
	assert_int_equal(mbox_stage(mb, digest, "a@b.example", 0, message, MESSAGE_LEN, &err), 0);
	assert_int_equal(mbox_commit(mb, &err), 0);
	mbox_close(&mb);
	assert_int_equal(stat(file, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0660);
	assert_int_equal(stat(idx, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0660);
	umask(old);
	g_free(file);
	g_free(idx);
	g_free(sub);
	g_free(dir);
}

/* Many messages in one commit (the syncfs path), all distinct and exact. */
static void
test_unique_names_group_commit(void **unused)
{
	char digest[ARCHIVE_DIGEST_LEN + 1], uid[16], *dir = fresh_dir(), *err = NULL, *newdir;
	GHashTable *names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	struct maildir *md;
	struct dirent *de;
	DIR *d;

	assert_int_equal(maildir_open(dir, "h", &md, &err), 0);
	for (int i = 0; i < 200; i++) {
		snprintf(uid, sizeof(uid), "u%d", i);
		archive_digest("acct", uid, digest);
		assert_int_equal(maildir_stage(md, digest, uid, strlen(uid), &err), 0);
	}
	assert_int_equal(maildir_commit(md, &err), 0);
	newdir = g_build_filename(dir, "new", NULL);
	assert_int_equal(count_files(newdir), 200);
	d = opendir(newdir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		char got[ARCHIVE_DIGEST_LEN + 1], *path;
		gchar *body;

		if (de->d_name[0] == '.')
			continue;
		assert_int_equal(maildir_name_digest(de->d_name, got), 0);
		assert_true(g_hash_table_add(names, g_strdup(got)));
		path = g_build_filename(newdir, de->d_name, NULL);
		assert_true(g_file_get_contents(path, &body, NULL, NULL));
		archive_digest("acct", body, digest);
		assert_string_equal(got, digest); /* each file holds its own message */
		g_free(body);
		g_free(path);
	}
	closedir(d);
	assert_int_equal(g_hash_table_size(names), 200);
	g_hash_table_destroy(names);
	maildir_close(&md);
	g_free(newdir);
	g_free(dir);
}

static void
test_duplicate_after_crash(void **unused)
{
	char digest[ARCHIVE_DIGEST_LEN + 1], *dir = fresh_dir(), *err = NULL;
	char *newdir, *curdir, *tmpdir, *path, *name, *moved;
	struct maildir *md;

	archive_digest("acct", "uid-7", digest);
	assert_int_equal(maildir_open(dir, "h", &md, &err), 0);
	assert_int_equal(maildir_stage(md, digest, message, MESSAGE_LEN, &err), 0);
	/* Staged twice in one run: the second is a duplicate. */
	assert_int_equal(maildir_stage(md, digest, message, MESSAGE_LEN, &err), 1);
	assert_int_equal(maildir_commit(md, &err), 0);
	maildir_close(&md);

	/* The run died before its journal commit: the rerun sees the file. */
	newdir = g_build_filename(dir, "new", NULL);
	curdir = g_build_filename(dir, "cur", NULL);
	tmpdir = g_build_filename(dir, "tmp", NULL);
	assert_int_equal(maildir_open(dir, "h", &md, &err), 0);
	assert_int_equal(maildir_stage(md, digest, message, MESSAGE_LEN, &err), 1);
	assert_int_equal(maildir_pending(md), 0);
	assert_int_equal(count_files(tmpdir), 0);
	maildir_close(&md);

	/* Also once a reader has moved it to cur/ and flagged it. */
	path = only_file(newdir, &name);
	moved = g_strdup_printf("%s/%s:2,S", curdir, name);
	assert_int_equal(rename(path, moved), 0);
	assert_int_equal(maildir_open(dir, "h", &md, &err), 0);
	assert_int_equal(maildir_stage(md, digest, message, MESSAGE_LEN, &err), 1);
	maildir_close(&md);
	assert_int_equal(count_files(newdir) + count_files(curdir), 1);
	g_free(moved);
	g_free(name);
	g_free(path);
	g_free(newdir);
	g_free(curdir);
	g_free(tmpdir);
	g_free(dir);
}

/* A crashed run's tmp/ files go once older than 36 hours; others stay. */
static void
test_stale_tmp_cleanup(void **unused)
{
	char digest[ARCHIVE_DIGEST_LEN + 1], *dir = fresh_dir(), *err = NULL;
	char *tmpdir, *stale, *fresh, *foreign, *name;
	struct timeval tv = { 1700000000, 1 };
	struct timespec times[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
	struct maildir *md;
	FILE *f;

	assert_int_equal(maildir_open(dir, "h", &md, &err), 0);
	maildir_close(&md);
	tmpdir = g_build_filename(dir, "tmp", NULL);
	archive_digest("acct", "old", digest);
	name = maildir_name(&tv, 99, digest, "h", 1);
	stale = g_build_filename(tmpdir, name, NULL);
	free(name);
	tv.tv_usec = 2;
	name = maildir_name(&tv, 99, digest, "h", 1);
	fresh = g_build_filename(tmpdir, name, NULL);
	free(name);
	foreign = g_build_filename(tmpdir, "1000000000.M1P2Q3.other", NULL);
	assert_non_null(f = fopen(stale, "w"));
	fclose(f);
	assert_non_null(f = fopen(fresh, "w"));
	fclose(f);
	assert_non_null(f = fopen(foreign, "w"));
	fclose(f);
	assert_int_equal(utimensat(AT_FDCWD, stale, times, 0), 0);
	assert_int_equal(utimensat(AT_FDCWD, foreign, times, 0), 0);
	assert_int_equal(maildir_open(dir, "h", &md, &err), 0);
	maildir_close(&md);
	assert_int_equal(access(stale, F_OK), -1);
	assert_int_equal(access(fresh, F_OK), 0);
	assert_int_equal(access(foreign, F_OK), 0); /* not ours to remove */
	g_free(stale);
	g_free(fresh);
	g_free(foreign);
	g_free(tmpdir);
	g_free(dir);
}

/* The path of the file in `sub` whose name holds `digest` (g_free), or NULL. */
static char *
file_with(const char *dir, const char *sub, const char *digest)
{
	char *path = g_build_filename(dir, sub, NULL), *found = NULL;
	DIR *d = opendir(path);
	struct dirent *de;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (found == NULL && strstr(de->d_name, digest) != NULL)
			found = g_build_filename(path, de->d_name, NULL);
	closedir(d);
	g_free(path);
	return found;
}

/*
 * A writer killed before its commit: its files are in new/, the marker
 * says so.  The next open moves those a crash left short (in new/, or
 * moved to cur/ by a reader) to tmp/ and forgets them, keeps the whole one
 * and removes the marker; the short ones are delivered again.
 */
static void
test_crash_before_commit(void **unused)
{
	char da[ARCHIVE_DIGEST_LEN + 1], db[ARCHIVE_DIGEST_LEN + 1], dc[ARCHIVE_DIGEST_LEN + 1];
	char *dir = fresh_dir(), *err = NULL, *pb, *pc, *moved, *tmpdir, *newdir;
	struct maildir *md;
	int status;
	pid_t pid;

	archive_digest("acct", "a", da);
	archive_digest("acct", "b", db);
	archive_digest("acct", "c", dc);
	assert_int_equal(maildir_open(dir, "h", &md, &err), 0);
	maildir_close(&md);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (maildir_open(dir, "h", &md, &err) < 0 ||
		    maildir_stage(md, da, message, MESSAGE_LEN, &err) != 0 ||
		    maildir_stage(md, db, message, MESSAGE_LEN, &err) != 0 ||
		    maildir_stage(md, dc, message, MESSAGE_LEN, &err) != 0 ||
		    maildir_writer_wait(md) != NULL)
			_exit(1);
		_exit(0); /* as by kill -9: no commit, no close */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(count_markers(dir), 1);
	/* What a power loss can leave: b's data never written, c likewise
	 * after a reader moved it to cur/. */
	assert_non_null(pb = file_with(dir, "new", db));
	assert_int_equal(truncate(pb, 0), 0);
	assert_non_null(pc = file_with(dir, "new", dc));
	moved = g_strdup_printf("%s/cur/%s:2,S", dir, strrchr(pc, '/') + 1);
	assert_int_equal(rename(pc, moved), 0);
	assert_int_equal(truncate(moved, 10), 0);

	assert_int_equal(maildir_open(dir, "h", &md, &err), 0);
	assert_int_equal(maildir_recovered(md), 2);
	assert_int_equal(count_markers(dir), 0);
	tmpdir = g_build_filename(dir, "tmp", NULL);
	newdir = g_build_filename(dir, "new", NULL);
	assert_int_equal(count_files(tmpdir), 2);
	assert_int_equal(maildir_stage(md, da, message, MESSAGE_LEN, &err), 1);
	assert_int_equal(maildir_stage(md, db, message, MESSAGE_LEN, &err), 0);
	assert_int_equal(maildir_stage(md, dc, message, MESSAGE_LEN, &err), 0);
	assert_int_equal(maildir_commit(md, &err), 0);
	maildir_close(&md);
	assert_int_equal(count_files(newdir), 3);
	g_free(pc);
	pc = g_build_filename(dir, "cur", NULL);
	assert_int_equal(count_files(pc), 0);
	g_free(pb);
	pb = file_with(dir, "new", db);
	assert_file_is(pb, message, MESSAGE_LEN);
	g_free(pb);
	g_free(pc);
	g_free(moved);
	g_free(tmpdir);
	g_free(newdir);
	g_free(dir);
}

/* A live writer's marker and files are not touched; a torn marker (no
 * host: the crash cut it) has its pid's files checked whatever the host;
 * names no writer makes (a link, pid 0) are skipped, not an error. */
static void
test_recover_live_and_torn(void **unused)
{
	char dx[ARCHIVE_DIGEST_LEN + 1], dy[ARCHIVE_DIGEST_LEN + 1], *dir = fresh_dir();
	char *err = NULL, *px, *torn, *py, *name, *lnk, *zero;
	struct timeval tv = { 1700000000, 5 };
	struct maildir *md, *md2;
	FILE *f;

	archive_digest("acct", "x", dx);
	archive_digest("acct", "y", dy);
	assert_int_equal(maildir_open(dir, "h", &md, &err), 0);
	assert_int_equal(maildir_stage(md, dx, message, MESSAGE_LEN, &err), 0);
	assert_null(maildir_writer_wait(md));
	assert_non_null(px = file_with(dir, "new", dx));
	assert_int_equal(truncate(px, 1), 0); /* short, but its writer is alive */
	torn = g_strdup_printf("%s/mailmill-unsynced.999999", dir);
	assert_non_null(f = fopen(torn, "w"));
	fclose(f);
	/* Not a marker of ours, and not followed: it neither fails the open
	 * nor goes. */
	lnk = g_strdup_printf("%s/mailmill-unsynced.999998.1", dir);
	assert_int_equal(symlink("/etc/passwd", lnk), 0);
	zero = g_strdup_printf("%s/mailmill-unsynced.0", dir); /* no writer has pid 0 */
	assert_non_null(f = fopen(zero, "w"));
	fclose(f);
	name = maildir_name(&tv, 999999, dy, "elsewhere", MESSAGE_LEN);
	py = g_strdup_printf("%s/new/%s", dir, name);
	assert_non_null(f = fopen(py, "w"));
	fclose(f);

	assert_int_equal(maildir_open(dir, "h", &md2, &err), 0);
	assert_int_equal(maildir_recovered(md2), 1);
	assert_int_equal(access(torn, F_OK), -1);
	assert_int_equal(faccessat(AT_FDCWD, lnk, F_OK, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(access(zero, F_OK), 0);
	assert_int_equal(access(py, F_OK), -1);
	assert_int_equal(access(px, F_OK), 0);
	assert_int_equal(maildir_stage(md2, dx, message, MESSAGE_LEN, &err), 1);
	maildir_close(&md2);
	maildir_close(&md); /* uncommitted: its file goes, and its marker */
	assert_int_equal(access(px, F_OK), -1);
	free(name);
	g_free(px);
	g_free(py);
	g_free(torn);
	g_free(lnk);
	g_free(zero);
	g_free(dir);
}

/*
 * The writer thread and the stage's own writes for large messages, mixed
 * in one batch of more than the writer's queue holds (in messages and in
 * bytes): every message ends in its own file, byte for byte, and a buffer
 * the caller reuses at once after each stage changes nothing written.
 */
/* Message i of test_writer_queue into buf, its digest into digest: its
 * length. */
static size_t
writer_queue_message(int i, char *buf, char digest[ARCHIVE_DIGEST_LEN + 1])
{
	size_t len = i % 3 == 0 ? 70000 : i % 3 == 1 ? 4000 : 1;
	char uid[16];

	if (i % 50 == 7 || i % 50 == 8) /* written at once, queued */
		len = MAILDIR_WRITE_COPY_MAX + (size_t)(i % 50 == 7);
	snprintf(uid, sizeof(uid), "w%d", i);
	archive_digest("acct", uid, digest);
	memset(buf, 'a' + i % 26, len);
	memcpy(buf, uid, strlen(uid) < len ? strlen(uid) : len);
	return len;
}

static void
test_writer_queue(void **unused)
{
	enum { N = 600 };
	char digest[ARCHIVE_DIGEST_LEN + 1], *dir = fresh_dir(), *err = NULL, *path;
	char *buf = malloc(MAILDIR_WRITE_COPY_MAX + 1);
	struct maildir *md;

	assert_non_null(buf);
	assert_int_equal(maildir_open(dir, "h", &md, &err), 0);
	for (int i = 0; i < N; i++) {
		size_t len = writer_queue_message(i, buf, digest);

		assert_int_equal(maildir_stage(md, digest, buf, len, &err), 0);
		memset(buf, '#', len); /* the caller's buffer is gone after the stage */
	}
	/* An empty message, whose bytes may be NULL, goes through the queue too. */
	archive_digest("acct", "empty", digest);
	assert_int_equal(maildir_stage(md, digest, NULL, 0, &err), 0);
	assert_int_equal(maildir_pending(md), N + 1);
	assert_int_equal(maildir_commit(md, &err), 0);
	assert_non_null(path = file_with(dir, "new", digest));
	assert_file_is(path, "", 0);
	g_free(path);
	for (int i = 0; i < N; i++) {
		size_t len = writer_queue_message(i, buf, digest);

		assert_non_null(path = file_with(dir, "new", digest));
		assert_file_is(path, buf, len);
		g_free(path);
	}
	maildir_close(&md);
	free(buf);
	g_free(dir);
}

static void
test_stage_failure_cleanup(void **unused)
{
	char digest[ARCHIVE_DIGEST_LEN + 1], d2[ARCHIVE_DIGEST_LEN + 1], *dir = fresh_dir();
	char *err = NULL, *tmpdir, *failed = NULL;
	struct rlimit old, small;
	struct maildir *md;
	char big[8192];
	int r;

	memset(big, 'x', sizeof(big));
	archive_digest("acct", "uid-9", digest);
	archive_digest("acct", "uid-10", d2);
	assert_int_equal(maildir_open(dir, "h", &md, &err), 0);
	/*
	 * A write that fails half way, as on a full disk (EFBIG here), in the
	 * writer thread: the stage has handed it over; once the writer has
	 * failed, the batch takes no more, and its commit fails and leaves
	 * nothing behind.
	 */
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	small = old;
	small.rlim_cur = 4096;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	r = maildir_stage(md, digest, big, sizeof(big), &err);
	for (int i = 0; i < 1000 && (failed = maildir_writer_failed(md)) == NULL; i++)
		usleep(10000);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(r, 0);
	assert_non_null(failed);
	assert_non_null(strstr(failed, "write"));
	free(failed);
	assert_int_equal(maildir_stage(md, d2, "two\n", 4, &err), -1);
	assert_non_null(err);
	assert_non_null(strstr(err, "write"));
	free(err);
	err = NULL;
	assert_int_equal(maildir_pending(md), 1);
	assert_int_equal(maildir_commit(md, &err), -1);
	assert_non_null(err);
	assert_non_null(strstr(err, "write"));
	free(err);
	err = NULL;
	tmpdir = g_build_filename(dir, "tmp", NULL);
	assert_int_equal(count_files(tmpdir), 0);
	assert_int_equal(maildir_pending(md), 0);
	/* Not remembered as delivered: the retry works. */
	assert_int_equal(maildir_stage(md, digest, big, sizeof(big), &err), 0);
	assert_int_equal(maildir_commit(md, &err), 0);
	maildir_close(&md);
	g_free(tmpdir);
	g_free(dir);
}

/* Two writers on one Maildir in one process (a --once run whose accounts
 * archive into the same place): each has its own marker. */
static void
test_two_writers(void **unused)
{
	char d1[ARCHIVE_DIGEST_LEN + 1], d2[ARCHIVE_DIGEST_LEN + 1], *dir = fresh_dir();
	char *err = NULL, *newdir;
	struct maildir *a, *b;

	archive_digest("one", "1", d1);
	archive_digest("two", "1", d2);
	assert_int_equal(maildir_open(dir, "h", &a, &err), 0);
	assert_int_equal(maildir_open(dir, "h", &b, &err), 0);
	assert_int_equal(maildir_stage(a, d1, "one\n", 4, &err), 0);
	assert_int_equal(maildir_commit(a, &err), 0);
	assert_int_equal(maildir_stage(b, d2, "two\n", 4, &err), 0);
	assert_int_equal(maildir_commit(b, &err), 0);
	assert_int_equal(count_markers(dir), 2);
	maildir_close(&a);
	maildir_close(&b);
	assert_int_equal(count_markers(dir), 0);
	newdir = g_build_filename(dir, "new", NULL);
	assert_int_equal(count_files(newdir), 2);
	g_free(newdir);
	g_free(dir);
}

/* The files are in new/ before the commit, so a reader may move one to
 * cur/ first: the commit (one file: the per-file fsync path) still makes
 * it durable and succeeds. */
static void
test_reader_moves_before_commit(void **unused)
{
	char digest[ARCHIVE_DIGEST_LEN + 1], *dir = fresh_dir(), *err = NULL, *path, *moved;
	char *curdir;
	struct maildir *md;

	archive_digest("acct", "r", digest);
	assert_int_equal(maildir_open(dir, "h", &md, &err), 0);
	assert_int_equal(maildir_stage(md, digest, message, MESSAGE_LEN, &err), 0);
	assert_null(maildir_writer_wait(md));
	assert_non_null(path = file_with(dir, "new", digest));
	moved = g_strdup_printf("%s/cur/%s:2,S", dir, strrchr(path, '/') + 1);
	assert_int_equal(rename(path, moved), 0);
	assert_int_equal(maildir_commit(md, &err), 0);
	maildir_close(&md);
	assert_int_equal(count_markers(dir), 0);
	curdir = g_build_filename(dir, "cur", NULL);
	assert_int_equal(count_files(curdir), 1);
	assert_file_is(moved, message, MESSAGE_LEN);
	g_free(curdir);
	g_free(moved);
	g_free(path);
	g_free(dir);
}

/* new/ gone in the middle of a batch: the move fails, nothing is left in
 * tmp/, and the message is not remembered, so the retry delivers it. */
static void
test_move_failure_cleanup(void **unused)
{
	char d1[ARCHIVE_DIGEST_LEN + 1], d2[ARCHIVE_DIGEST_LEN + 1];
	char *dir = fresh_dir(), *err = NULL, *newdir, *tmpdir, *p1, *aside;
	struct maildir *md;

	archive_digest("acct", "a", d1);
	archive_digest("acct", "b", d2);
	assert_int_equal(maildir_open(dir, "h", &md, &err), 0);
	assert_int_equal(maildir_stage(md, d1, "one\n", 4, &err), 0);
	assert_null(maildir_writer_wait(md));
	newdir = g_build_filename(dir, "new", NULL);
	tmpdir = g_build_filename(dir, "tmp", NULL);
	aside = g_build_filename(dir, "aside", NULL);
	assert_non_null(p1 = file_with(dir, "new", d1));
	assert_int_equal(rename(p1, aside), 0);
	assert_int_equal(rmdir(newdir), 0);
	/* The writer's move fails; the commit says so. */
	assert_int_equal(maildir_stage(md, d2, "two\n", 4, &err), 0);
	assert_int_equal(maildir_pending(md), 2);
	assert_int_equal(maildir_commit(md, &err), -1);
	assert_non_null(err);
	assert_non_null(strstr(err, "rename"));
	free(err);
	err = NULL;
	assert_int_equal(count_files(tmpdir), 0);
	assert_int_equal(maildir_pending(md), 0);
	assert_int_equal(mkdir(newdir, 0700), 0);
	assert_int_equal(maildir_stage(md, d1, "one\n", 4, &err), 0);
	assert_int_equal(maildir_stage(md, d2, "two\n", 4, &err), 0);
	assert_int_equal(maildir_commit(md, &err), 0);
	assert_int_equal(count_files(newdir), 2);
	maildir_close(&md);
	g_free(p1);
	g_free(aside);
	g_free(newdir);
	g_free(tmpdir);
	g_free(dir);
}

/* new/ renamed away and made again while a batch is written: the files
 * went into the old directory, so the commit fails and removes them; the
 * next batch goes into the new one. */
static void
test_new_replaced_mid_batch(void **unused)
{
	char d[300][ARCHIVE_DIGEST_LEN + 1], uid[16];
	char *dir = fresh_dir(), *err = NULL, *newdir, *old;
	struct maildir *md;

	newdir = g_build_filename(dir, "new", NULL);
	old = g_build_filename(dir, "new.old", NULL);
	assert_int_equal(maildir_open(dir, "h", &md, &err), 0);
	for (int i = 0; i < 300; i++) {
		snprintf(uid, sizeof(uid), "%d", i);
		archive_digest("acct", uid, d[i]);
		assert_int_equal(maildir_stage(md, d[i], "m\n", 2, &err), 0);
		if (i == 10) {
			assert_int_equal(rename(newdir, old), 0);
			assert_int_equal(mkdir(newdir, 0700), 0);
		}
	}
	assert_int_equal(maildir_commit(md, &err), -1);
	assert_non_null(err);
	assert_non_null(strstr(err, "replaced"));
	free(err);
	err = NULL;
	assert_int_equal(count_files(newdir), 0);
	assert_int_equal(count_files(old), 0);
	assert_int_equal(maildir_stage(md, d[0], "m\n", 2, &err), 0);
	assert_int_equal(maildir_commit(md, &err), 0);
	assert_int_equal(count_files(newdir), 1);
	maildir_close(&md);
	g_free(newdir);
	g_free(old);
	g_free(dir);
}

static void
test_open_failure(void **unused)
{
	char *dir = fresh_dir(), *file, *err = NULL;
	struct maildir *md = NULL;
	FILE *f;

	assert_int_equal(archive_mkdirs(dir, NULL, &err), 0);
	file = g_build_filename(dir, "tmp", NULL);
	assert_non_null(f = fopen(file, "w"));
	fclose(f);
	assert_int_equal(maildir_open(dir, "h", &md, &err), -1);
	assert_null(md);
	assert_non_null(err);
	/* A `tmp` that is a file: not a Maildir, and not ours to fix. */
	assert_non_null(strstr(err, "is not a Maildir"));
	free(err);
	g_free(file);
	g_free(dir);
}

static void
test_mkdirs(void **unused)
{
	char *dir = fresh_dir(), *deep, *err = NULL;
	struct stat st;

	deep = g_strdup_printf("%s/a//b/c/", dir);
	assert_int_equal(archive_mkdirs(deep, NULL, &err), 0);
	assert_int_equal(stat(deep, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(archive_mkdirs(deep, NULL, &err), 0); /* exists: fine */
	g_free(deep);
	g_free(dir);
}

static void
test_folder(void **unused)
{
	static const char *const good[] = { "%Y/%m", "archive-%Y", "%Y/%m/%d", "x" };
	static const char *const bad[] = {
		"", "/abs", "../up", "a/../b", "%Y/..", "a\\b", "%n", "%t", ".hidden", "%Y/.x",
		"a//b", "%Y/", "ctl\x01", "sp\x7f",
	};
	char *err = NULL, *dir;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (archive_folder_check(good[i], &err) != 0)
			fail_msg("\"%s\" refused: %s", good[i], err);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (archive_folder_check(bad[i], &err) == 0)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_non_null(err);
		free(err);
		err = NULL;
	}
	/* TZ=UTC (main): 2023-11-14 22:13:20 */
	assert_int_equal(archive_folder_expand("%Y/%m", 1700000000LL, &dir, &err), 0);
	assert_string_equal(dir, "2023/11");
	free(dir);
	assert_int_equal(archive_folder_expand("%Y-%m-%d", 1700000000LL, &dir, &err), 0);
	assert_string_equal(dir, "2023-11-14");
	free(dir);
}

static void
test_mbox_format(void **unused)
{
	static const char body[] =
		"Subject: x\n\nFrom here\n>From there\n>>From far\nFromage\n From no\n>From";
	static const char want[] =
		"From a@example.org Thu Jan  1 00:00:00 1970\n"
		"Subject: x\n\n>From here\n>>From there\n>>>From far\nFromage\n From no\n>From\n\n";
	GString *out = g_string_new(NULL);

	mbox_format(out, "a@example.org", 0, body, sizeof(body) - 1);
	assert_string_equal(out->str, want);
	g_string_truncate(out, 0);
	mbox_format(out, "has space@x", 1700000000LL, "x\n", 2);
	assert_string_equal(out->str, "From MAILER-DAEMON Tue Nov 14 22:13:20 2023\nx\n\n");
	g_string_truncate(out, 0);
	mbox_format(out, "", 1700000000LL, "", 0);
	assert_string_equal(out->str, "From MAILER-DAEMON Tue Nov 14 22:13:20 2023\n\n\n");
	g_string_free(out, TRUE);
}

static void
test_mbox_deliver_and_rerun(void **unused)
{
	char d1[ARCHIVE_DIGEST_LEN + 1], d2[ARCHIVE_DIGEST_LEN + 1], d3[ARCHIVE_DIGEST_LEN + 1];
	char *dir = fresh_dir(), *file, *idx, *err = NULL;
	GString *want = g_string_new(NULL);
	struct mbox *mb;
	gchar *got;

	file = g_build_filename(dir, "sub", "archive.mbox", NULL);
	idx = g_strdup_printf("%s.mailmill-idx", file);
	archive_digest("acct", "1", d1);
	archive_digest("acct", "2", d2);
	archive_digest("acct", "3", d3);
	assert_int_equal(mbox_open(file, &mb, &err), 0);
	assert_int_equal(mbox_stage(mb, d1, "a@x", 0, message, MESSAGE_LEN, &err), 0);
	assert_int_equal(mbox_stage(mb, d2, "b@x", 0, "two\n", 4, &err), 0);
	assert_int_equal(mbox_stage(mb, d2, "b@x", 0, "two\n", 4, &err), 1);
	assert_int_equal(mbox_pending(mb), 2);
	assert_int_equal(mbox_commit(mb, &err), 0);
	assert_int_equal(mbox_pending(mb), 0);
	mbox_close(&mb);
	mbox_format(want, "a@x", 0, message, MESSAGE_LEN);
	mbox_format(want, "b@x", 0, "two\n", 4);
	assert_file_is(file, want->str, want->len);
	assert_true(g_file_get_contents(idx, &got, NULL, NULL));
	assert_int_equal(strncmp(got, d1, ARCHIVE_DIGEST_LEN), 0);
	assert_non_null(strstr(got, d2));
	g_free(got);

	/* A rerun skips both and appends only the new one. */
	assert_int_equal(mbox_open(file, &mb, &err), 0);
	assert_int_equal(mbox_stage(mb, d1, "a@x", 0, message, MESSAGE_LEN, &err), 1);
	assert_int_equal(mbox_stage(mb, d2, "b@x", 0, "two\n", 4, &err), 1);
	assert_int_equal(mbox_stage(mb, d3, "c@x", 0, "three\n", 6, &err), 0);
	assert_int_equal(mbox_commit(mb, &err), 0);
	mbox_close(&mb);
	mbox_format(want, "c@x", 0, "three\n", 6);
	assert_file_is(file, want->str, want->len);
	g_string_free(want, TRUE);
	g_free(idx);
	g_free(file);
	g_free(dir);
}

/* A batch larger than several chunks (each written after its index lines):
 * every message lands once, in order, and a rerun finds all of them. */
static void
test_mbox_many_chunks(void **unused)
{
	enum { N = 12, SIZE = 1536 * 1024 };
	char d[N][ARCHIVE_DIGEST_LEN + 1], uid[16];
	char *dir = fresh_dir(), *file, *err = NULL, *body = g_malloc(SIZE);
	GString *want = g_string_new(NULL);
	struct mbox *mb;

	/* lines of text, some of them From_ traps for the mboxrd quoting */
	for (size_t i = 0; i < SIZE; i++)
		body[i] = i % 80 == 79 ? '\n' : i % 800 < 5 ? "From "[i % 800] : 'a' + (char)(i % 26);
	file = g_build_filename(dir, "big.mbox", NULL);
	assert_int_equal(mbox_open(file, &mb, &err), 0);
	for (int i = 0; i < N; i++) {
		snprintf(uid, sizeof(uid), "%d", i);
		archive_digest("acct", uid, d[i]);
		body[0] = (char)('A' + i); /* each message its own */
		assert_int_equal(mbox_stage(mb, d[i], "a@x", 0, body, SIZE, &err), 0);
		mbox_format(want, "a@x", 0, body, SIZE);
	}
	assert_int_equal(mbox_commit(mb, &err), 0);
	mbox_close(&mb);
	assert_true(want->len > 4 * (2u << 20));
	assert_file_is(file, want->str, want->len);
	assert_int_equal(mbox_open(file, &mb, &err), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(mbox_stage(mb, d[i], "a@x", 0, "x\n", 2, &err), 1);
	assert_int_equal(mbox_pending(mb), 0);
	mbox_close(&mb);
	g_string_free(want, TRUE);
	g_free(body);
	g_free(file);
	g_free(dir);
}

/* Index durable, mbox not (crash between the two fsyncs): not archived. */
static void
test_mbox_torn_commit(void **unused)
{
	char d1[ARCHIVE_DIGEST_LEN + 1], d2[ARCHIVE_DIGEST_LEN + 1];
	char *dir = fresh_dir(), *file, *err = NULL;
	struct mbox *mb;
	struct stat st;
	off_t first;
	int fd;

	file = g_build_filename(dir, "m", NULL);
	archive_digest("acct", "1", d1);
	archive_digest("acct", "2", d2);
	assert_int_equal(mbox_open(file, &mb, &err), 0);
	assert_int_equal(mbox_stage(mb, d1, "a@x", 0, "one\n", 4, &err), 0);
	assert_int_equal(mbox_commit(mb, &err), 0);
	assert_int_equal(stat(file, &st), 0);
	first = st.st_size;
	assert_int_equal(mbox_stage(mb, d2, "b@x", 0, "two\n", 4, &err), 0);
	assert_int_equal(mbox_commit(mb, &err), 0);
	mbox_close(&mb);
	/* The second message's bytes never made it. */
	assert_int_equal(truncate(file, first), 0);
	assert_int_equal(mbox_open(file, &mb, &err), 0);
	assert_int_equal(mbox_stage(mb, d1, "a@x", 0, "one\n", 4, &err), 1);
	assert_int_equal(mbox_stage(mb, d2, "b@x", 0, "two\n", 4, &err), 0);
	mbox_close(&mb);
	/* Someone else's message now sits where ours should be. */
	assert_true((fd = open(file, O_WRONLY | O_APPEND)) >= 0);
	assert_int_equal(write(fd, "From z@y Thu Jan  1 00:00:00 1970\nzzz\n\n", 39), 39);
	close(fd);
	assert_int_equal(mbox_open(file, &mb, &err), 0);
	assert_int_equal(mbox_stage(mb, d2, "b@x", 0, "two\n", 4, &err), 0);
	mbox_close(&mb);
	g_free(file);
	g_free(dir);
}

static void
test_mbox_enospc_rollback(void **unused)
{
	char d1[ARCHIVE_DIGEST_LEN + 1], d2[ARCHIVE_DIGEST_LEN + 1];
	char *dir = fresh_dir(), *file, *idx, *err = NULL, big[16384];
	struct stat st, ist, st2, ist2;
	struct rlimit old, small;
	struct mbox *mb;

	memset(big, 'y', sizeof(big));
	big[sizeof(big) - 1] = '\n';
	file = g_build_filename(dir, "m", NULL);
	idx = g_strdup_printf("%s.mailmill-idx", file);
	archive_digest("acct", "1", d1);
	archive_digest("acct", "2", d2);
	assert_int_equal(mbox_open(file, &mb, &err), 0);
	assert_int_equal(mbox_stage(mb, d1, "a@x", 0, "one\n", 4, &err), 0);
	assert_int_equal(mbox_commit(mb, &err), 0);
	assert_int_equal(stat(file, &st), 0);
	assert_int_equal(stat(idx, &ist), 0);
	assert_int_equal(mbox_stage(mb, d2, "b@x", 0, big, sizeof(big), &err), 0);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	small = old;
	small.rlim_cur = (rlim_t)st.st_size + 4096;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	assert_int_equal(mbox_commit(mb, &err), -1);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_non_null(err);
	free(err);
	err = NULL;
	assert_int_equal(stat(file, &st2), 0);
	assert_int_equal(stat(idx, &ist2), 0);
	assert_int_equal(st2.st_size, st.st_size);
	assert_int_equal(ist2.st_size, ist.st_size);
	/* Forgotten: staged again, and this time it fits. */
	assert_int_equal(mbox_stage(mb, d2, "b@x", 0, big, sizeof(big), &err), 0);
	assert_int_equal(mbox_commit(mb, &err), 0);
	mbox_close(&mb);
	g_free(idx);
	g_free(file);
	g_free(dir);
}

/* A chunk the writer thread cannot write (a full disk in the middle of a
 * batch): the stage or the commit that learns of it fails, both files go
 * back to their lengths before the batch, and the batch can be redone. */
static void
test_mbox_writer_failure(void **unused)
{
	enum { N = 6, SIZE = 1024 * 1024 };
	char d[N][ARCHIVE_DIGEST_LEN + 1], uid[16];
	char *dir = fresh_dir(), *file, *idx, *err = NULL, *body = g_malloc(SIZE);
	struct stat st, ist, st2, ist2;
	struct rlimit old, small;
	struct mbox *mb;
	int failed = 0;

	memset(body, 'z', SIZE);
	body[SIZE - 1] = '\n';
	file = g_build_filename(dir, "m", NULL);
	idx = g_strdup_printf("%s.mailmill-idx", file);
	for (int i = 0; i < N; i++) {
		snprintf(uid, sizeof(uid), "%d", i);
		archive_digest("acct", uid, d[i]);
	}
	assert_int_equal(mbox_open(file, &mb, &err), 0);
	assert_int_equal(mbox_stage(mb, d[0], "a@x", 0, "one\n", 4, &err), 0);
	assert_int_equal(mbox_commit(mb, &err), 0);
	assert_int_equal(stat(file, &st), 0);
	assert_int_equal(stat(idx, &ist), 0);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	small = old;
	small.rlim_cur = (rlim_t)st.st_size + SIZE; /* the first chunk (2 MiB) cannot fit */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	for (int i = 1; i < N && !failed; i++)
		failed = mbox_stage(mb, d[i], "b@x", 0, body, SIZE, &err) < 0;
	if (!failed) {
		failed = mbox_commit(mb, &err) < 0;
	} else {
		/* the stage said why; the commit says it again */
		assert_non_null(err);
		free(err);
		err = NULL;
		assert_int_equal(mbox_commit(mb, &err), -1);
	}
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_true(failed);
	assert_non_null(err);
	free(err);
	err = NULL;
	assert_int_equal(stat(file, &st2), 0);
	assert_int_equal(stat(idx, &ist2), 0);
	assert_int_equal(st2.st_size, st.st_size);
	assert_int_equal(ist2.st_size, ist.st_size);
	/* Forgotten: all of them go in on the next try. */
	for (int i = 1; i < N; i++)
		assert_int_equal(mbox_stage(mb, d[i], "b@x", 0, body, SIZE, &err), 0);
	assert_int_equal(mbox_commit(mb, &err), 0);
	mbox_close(&mb);
	assert_int_equal(stat(file, &st2), 0);
	assert_true(st2.st_size > st.st_size + (N - 1) * SIZE);
	g_free(body);
	g_free(idx);
	g_free(file);
	g_free(dir);
}

/* What GMime's parser gives as the first mailbox's address, or "". */
static void
gmime_sender(const char *v, char *buf, size_t size)
{
	InternetAddressList *l = internet_address_list_parse(NULL, v);
	const char *a = NULL;

	buf[0] = '\0';
	if (l != NULL && internet_address_list_length(l) > 0) {
		InternetAddress *ia = internet_address_list_get_address(l, 0);

		if (INTERNET_ADDRESS_IS_MAILBOX(ia))
			a = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
	}
	if (a != NULL)
		snprintf(buf, size, "%s", a);
	if (l != NULL)
		g_object_unref(l);
}

static void
test_mbox_sender(void **unused)
{
	static const struct {
		const char *value;
		int fast; /* archive_sender_plain reads it (else GMime must) */
	} cases[] = {
		{ "alice@example.org", 1 },
		{ "  alice@example.org  ", 1 },
		{ "<alice@example.org>", 1 },
		{ "Alice <alice@example.org>", 1 },
		{ "Alice Q. Example <a.q.example@mail.example.org>", 1 },
		{ "\"Example, Alice\" <alice@example.org>", 1 },
		{ "\"Alice <the boss>\" <alice@example.org>", 1 },
		{ "=?iso-8859-1?q?J=F6rg?= <joerg@example.de>", 1 },
		{ "=?UTF-8?B?w4FsdmFybw==?= <alvaro@example.es>", 1 },
		{ "alice@example.org (Alice Example)", 1 },
		{ "(Alice) <alice@example.org>", 1 },
		{ "Alice\t<alice+tag@example.org>", 1 },
		{ "o'brien@example.ie", 1 },
		{ "Shop <no-reply@shop.example.net>", 1 },
		/* GMime's */
		{ "alice@example.org, bob@example.org", 0 },
		{ "Alice <alice@example.org>, Bob <bob@example.org>", 0 },
		{ "undisclosed-recipients:;", 0 },
		{ "Team: alice@example.org, bob@example.org;", 0 },
		{ "\"alice smith\"@example.org", 0 },
		{ "Alice <alice@[192.0.2.1]>", 0 },
		{ "Alice <alice@example..org>", 0 },
		{ "Alice <.alice@example.org>", 0 },
		{ "Alice <alice.@example.org>", 0 },
		{ "Alice <alice@example.org.>", 0 },
		{ "Alice <@relay.example:alice@example.org>", 0 },
		{ "Alice <alice@example.org> (work)", 0 },
		{ "Alice <alice@example.org", 0 },
		{ "alice@example.org (a (nested) comment)", 0 },
		{ "\"Al\\\"ice\" <alice@example.org>", 0 },
		{ "J\xc3\xb6rg <joerg@example.de>", 0 },
		{ "alice@b\xc3\xbc" "cher.example", 0 },
		{ "alice@example.org bob@example.org", 0 },
		{ "a@b <c@example.org>", 0 },
		{ "Alice", 0 },
		{ "", 0 },
		{ "<>", 0 },
		{ "alice@", 0 },
		{ "@example.org", 0 },
		/* malformed: quotes and comments that overlap or do not end */
		{ "a\"b(c\"@d.example", 0 },
		{ "alice@example.org (unclosed", 0 },
		{ "(unclosed <alice@example.org>", 0 },
		{ "\"unclosed <alice@example.org>", 0 },
		{ "alice@example.org )", 0 },
		{ "Ali)ce <alice@example.org>", 0 },   /* found by fuzz_message */
		{ "u@xn--examp.com", 0 },                /* found by fuzz_message */
		{ ".Jllyerd<james@example.net>", 0 },  /* found by fuzz_message */
		{ "(c) .x <a@example.org>", 0 },
		{ ". <a@example.org>", 0 },
		{ "\"\".x <a@example.org>", 1 },
		{ "\"x\"..<a@example.org>", 1 },
		{ "x (c) . <a@example.org>", 1 },
		{ "Bob <bob@mail.XN--bcher-kva.example>", 0 },
		{ "Bob <bob@xnxn--a.example>", 1 },
		{ "Alice <alice@example.org>>", 0 },
		{ "Alice <<alice@example.org>", 0 },
		{ "<alice@example.org", 0 },
		{ "(", 0 },
		{ "\"", 0 },
		{ "<", 0 },
	};
	char got[256], want[256];

	g_mime_init();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int fast = archive_sender_plain(cases[i].value, got, sizeof got);

		if (fast != cases[i].fast)
			fail_msg("\"%s\": fast path %d, want %d", cases[i].value, fast,
				 cases[i].fast);
		if (!fast)
			continue;
		gmime_sender(cases[i].value, want, sizeof want);
		if (strcmp(got, want) != 0)
			fail_msg("\"%s\": \"%s\", GMime says \"%s\"", cases[i].value, got, want);
	}
	/* Bounded: an address that does not fit is GMime's (and then cut). */
	assert_int_equal(archive_sender_plain("alice@example.org", got, 17), 0);
	assert_int_equal(archive_sender_plain("alice@example.org", got, 18), 1);
	assert_string_equal(got, "alice@example.org");
	g_mime_shutdown();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_digest),
		cmocka_unit_test(test_hostname),
		cmocka_unit_test(test_name),
		cmocka_unit_test(test_deliver_byte_exact),
		cmocka_unit_test(test_perms),
		cmocka_unit_test(test_unique_names_group_commit),
		cmocka_unit_test(test_duplicate_after_crash),
		cmocka_unit_test(test_crash_before_commit),
		cmocka_unit_test(test_recover_live_and_torn),
		cmocka_unit_test(test_two_writers),
		cmocka_unit_test(test_reader_moves_before_commit),
		cmocka_unit_test(test_stale_tmp_cleanup),
		cmocka_unit_test(test_writer_queue),
		cmocka_unit_test(test_stage_failure_cleanup),
		cmocka_unit_test(test_move_failure_cleanup),
		cmocka_unit_test(test_new_replaced_mid_batch),
		cmocka_unit_test(test_open_failure),
		cmocka_unit_test(test_mkdirs),
		cmocka_unit_test(test_folder),
		cmocka_unit_test(test_mbox_format),
		cmocka_unit_test(test_mbox_sender),
		cmocka_unit_test(test_mbox_deliver_and_rerun),
		cmocka_unit_test(test_mbox_many_chunks),
		cmocka_unit_test(test_mbox_torn_commit),
		cmocka_unit_test(test_mbox_enospc_rollback),
		cmocka_unit_test(test_mbox_writer_failure),
	};

	/* Folder names and From_ dates are local time: pin it. */
	setenv("TZ", "UTC", 1);
	tzset();
	/* A write over RLIMIT_FSIZE must fail with EFBIG, not kill us. */
	signal(SIGXFSZ, SIG_IGN);
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}

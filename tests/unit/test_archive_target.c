/* mailmill - ISC licence, see LICENSE */
/*
 * Safe archive targets (plugins/archive_target.c): which existing places a
 * Maildir or an mbox may be opened at, that a refused one is left exactly as
 * it was, and what archive_target_check says at init.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw */
#endif
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>

#include "plugins/archive.h"

static char topdir[] = "/tmp/test_archive_target.XXXXXX";
#include "tests/unit/tmpdir.h"
static int seq;

static char *
fresh(void)
{
	return g_strdup_printf("%s/t%d", topdir, ++seq);
}

static void
touch(const char *dir, const char *name)
{
	char *p = g_build_filename(dir, name, NULL);
	FILE *f = fopen(p, "w");

	assert_non_null(f);
	fputs("x\n", f);
	fclose(f);
	g_free(p);
}

static void
mkdir_in(const char *dir, const char *name)
{
	char *p = g_build_filename(dir, name, NULL);

	assert_int_equal(mkdir(p, 0700), 0);
	g_free(p);
}

/* Entries of dir, "." and ".." not counted. */
static int
entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(d);
	return n;
}

/* 0 or -1 from archive_maildir_usable; err freed, and present iff -1. */
static int
usable(const char *dir)
{
	char *err = NULL;
	int r = archive_maildir_usable(dir, &err);

	assert_true((r < 0) == (err != NULL));
	free(err);
	return r;
}

static void
test_maildir_accepted(void **unused)
{
	char *d = fresh(), *sub;

	assert_int_equal(usable(d), 0);                   /* missing: created later */
	assert_int_equal(mkdir(d, 0700), 0);
	assert_int_equal(usable(d), 0);                   /* empty */
	mkdir_in(d, "tmp");
	assert_int_equal(usable(d), 0);                   /* an interrupted creation */
	mkdir_in(d, "new");
	mkdir_in(d, "cur");
	touch(d, "dovecot-uidlist");
	mkdir_in(d, ".Sent");
	assert_int_equal(usable(d), 0);                   /* a Maildir, whatever else */
	/* A symbolic link to a Maildir is that Maildir. */
	sub = g_strdup_printf("%s-link", d);
	assert_int_equal(symlink(d, sub), 0);
	assert_int_equal(usable(sub), 0);
	g_free(sub);
	g_free(d);
}

static void
test_maildir_refused(void **unused)
{
	char *d = fresh(), *link, *err = NULL, *file;
	struct maildir *md = NULL;

	assert_int_equal(mkdir(d, 0700), 0);
	touch(d, "passwd");
	mkdir_in(d, "new");                               /* not enough to be one */
	assert_int_equal(usable(d), -1);
	assert_int_equal(maildir_open(d, "h", &md, &err), -1);
	assert_null(md);
	assert_non_null(strstr(err, "is not a Maildir (no tmp/, new/ and cur/) and not empty"));
	free(err);
	err = NULL;
	assert_int_equal(entries(d), 2);                  /* nothing created */
	link = g_strdup_printf("%s-link", d);
	assert_int_equal(symlink(d, link), 0);
	assert_int_equal(maildir_open(link, "h", &md, &err), -1);
	free(err);
	err = NULL;
	assert_int_equal(entries(d), 2);
	/* A regular file where the Maildir should be. */
	file = g_build_filename(d, "passwd", NULL);
	assert_int_equal(usable(file), -1);
	g_free(file);
	g_free(link);
	g_free(d);
}

static void
test_mbox_refused(void **unused)
{
	char *d = fresh(), *p, *err = NULL;
	struct mbox *mb = NULL;

	assert_int_equal(mkdir(d, 0700), 0);
	p = g_build_filename(d, "box", NULL);
	assert_int_equal(archive_mbox_usable(p, &err), 0);   /* missing */
	touch(d, "box");
	assert_int_equal(archive_mbox_usable(p, &err), 0);   /* a file */
	g_free(p);
	/* A directory: refused before anything is opened or written in it. */
	p = g_build_filename(d, "dir", NULL);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_equal(mbox_open(p, &mb, &err), -1);
	assert_null(mb);
	assert_non_null(strstr(err, "not a regular file (a directory)"));
	free(err);
	err = NULL;
	assert_int_equal(entries(p), 0);
	g_free(p);
	/* A FIFO: refused without blocking. */
	p = g_build_filename(d, "fifo", NULL);
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_int_equal(mbox_open(p, &mb, &err), -1);
	assert_non_null(strstr(err, "a device, FIFO or socket"));
	free(err);
	err = NULL;
	g_free(p);
	/* The index too. */
	p = g_build_filename(d, "other", NULL);
	mkdir_in(d, "other.mailmill-idx");
	assert_int_equal(mbox_open(p, &mb, &err), -1);
	free(err);
	g_free(p);
	g_free(d);
}

/* archive_target_check's answer, its message when wanted. */
static int
check(const char *path, enum archive_kind kind, const char *want)
{
	char *err = NULL;
	int r = archive_target_check(path, kind, &err);

	if (want != NULL) {
		assert_non_null(err);
		if (strstr(err, want) == NULL)
			fail_msg("\"%s\" lacks \"%s\"", err, want);
	}
	free(err);
	return r;
}

static void
test_target_check(void **unused)
{
	char *d = fresh(), *p;

	assert_int_equal(mkdir(d, 0700), 0);
	p = g_build_filename(d, "a/b/c", NULL);
	assert_int_equal(check(p, ARCHIVE_KIND_MAILDIR, NULL), 0);   /* creatable */
	assert_int_equal(check(p, ARCHIVE_KIND_MBOX, NULL), 0);
	assert_int_equal(check(p, ARCHIVE_KIND_FOLDERS, NULL), 0);
	assert_int_equal(entries(d), 0);                             /* nothing made */
	g_free(p);
	touch(d, "file");
	p = g_build_filename(d, "file/x/y", NULL);
	assert_int_equal(check(p, ARCHIVE_KIND_MAILDIR, "file is not a directory"), -1);
	assert_int_equal(check(p, ARCHIVE_KIND_MBOX, "file is not a directory"), -1);
	g_free(p);
	p = g_build_filename(d, "file", NULL);
	assert_int_equal(check(p, ARCHIVE_KIND_MAILDIR, "exists and is not a directory"), 1);
	assert_int_equal(check(p, ARCHIVE_KIND_MBOX, NULL), 0);
	assert_int_equal(check(p, ARCHIVE_KIND_FOLDERS, "is not a directory"), -1);
	g_free(p);
	assert_int_equal(check(d, ARCHIVE_KIND_MBOX, "not a regular file"), 1);
	assert_int_equal(check(d, ARCHIVE_KIND_MAILDIR, "is not a Maildir"), 1);
	assert_int_equal(check(d, ARCHIVE_KIND_FOLDERS, NULL), 0);
	g_free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_maildir_accepted),
		cmocka_unit_test(test_maildir_refused),
		cmocka_unit_test(test_mbox_refused),
		cmocka_unit_test(test_target_check),
	};

	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}

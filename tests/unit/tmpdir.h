/* mailmill - ISC licence, see LICENSE */
#ifndef MM_TEST_TMPDIR_H
#define MM_TEST_TMPDIR_H
/*
 * A temporary directory for a group of unit tests.  Include it after
 * defining `static char topdir[]`, a mkdtemp template, and pass
 * tmpdir_setup and tmpdir_teardown to cmocka_run_group_tests: the first
 * makes the directory, the second removes it with everything below it.
 * Define _GNU_SOURCE before any include (nftw).
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

static int
tmpdir_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
tmpdir_setup(void **unused)
{
	(void)unused;
	return mkdtemp(topdir) == NULL ? -1 : 0;
}

static int
tmpdir_teardown(void **unused)
{
	(void)unused;
	return nftw(topdir, tmpdir_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
#endif

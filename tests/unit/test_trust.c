/* mailmill - ISC licence, see LICENSE */
/*
 * daemon/trust (whose files may be trusted) and daemon/cfginclude (every
 * @include found and checked as libconfig 1.5's scanner would find it),
 * against real files in a temporary directory.  The include cases are also
 * read by libconfig itself, to hold the resolver to libconfig's answer.
 */
#include <limits.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <libconfig.h>

#include "daemon/core/cfg_include.h"
#include "daemon/core/trust.h"

static char tmpdir[256];

static void
put(const char *name, const char *text, size_t len, mode_t mode, char *path_r)
{
	FILE *fp;

	snprintf(path_r, PATH_MAX, "%s/%s", tmpdir, name);
	fp = fopen(path_r, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(path_r, mode), 0);
}

static void
sub(const char *name, mode_t mode, char *path_r)
{
	snprintf(path_r, PATH_MAX, "%s/%s", tmpdir, name);
	assert_int_equal(mkdir(path_r, 0700), 0);
	assert_int_equal(chmod(path_r, mode), 0);
}

/* err has every one of the NULL-terminated strings. */
static void
err_has(const char *err, ...)
{
	va_list ap;
	const char *want;

	assert_non_null(err);
	va_start(ap, err);
	while ((want = va_arg(ap, const char *)) != NULL) {
		if (strstr(err, want) == NULL)
			fail_msg("\"%s\" not in \"%s\"", want, err);
	}
	va_end(ap);
	assert_null(strchr(err, '\n'));   /* one line */
}

static int
setup(void **state)
{
	snprintf(tmpdir, sizeof tmpdir, "%s/mm-test-trust.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	return chmod(tmpdir, 0755);
}

static int
teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ trust */

static void
test_file_ok(void **state)
{
	char p[PATH_MAX], *err = NULL;

	put("ok", "x\n", 2, 0644, p);
	assert_int_equal(trust_check_path(p, "configuration file", &err), 0);
	assert_null(err);
}

static void
test_file_mode(void **state)
{
	char p[PATH_MAX], fix[PATH_MAX + 16], *err = NULL;

	put("gw", "x\n", 2, 0664, p);
	assert_int_equal(trust_check_path(p, "configuration file", &err), -1);
	snprintf(fix, sizeof fix, "run: chmod go-w %s", p);
	err_has(err, "configuration file ", p, "mode 0664", fix, NULL);
	free(err);
	err = NULL;
	put("ow", "x\n", 2, 0602, p);
	assert_int_equal(trust_check_path(p, "plugin", &err), -1);
	err_has(err, "plugin ", "mode 0602", "chmod go-w", NULL);
	free(err);
}

static void
test_file_owner(void **state)
{
	struct passwd *nobody = getpwnam("nobody");
	char p[PATH_MAX], fix[PATH_MAX + 32], *err = NULL;

	if (geteuid() != 0 || nobody == NULL)
		skip();
	put("nobody", "x\n", 2, 0600, p);
	assert_int_equal(chown(p, nobody->pw_uid, (gid_t)-1), 0);
	assert_int_equal(trust_check_path(p, "password_file", &err), -1);
	snprintf(fix, sizeof fix, "run: chown root:root %s", p);
	err_has(err, "password_file ", p, "owned by nobody", fix, NULL);
	free(err);
}

static void
test_kind(void **state)
{
	char d[PATH_MAX], p[PATH_MAX], *err = NULL;

	sub("kind", 0755, d);
	assert_int_equal(trust_check_path(d, "@include file", &err), -1);
	err_has(err, d, "is a directory", NULL);
	free(err);
	err = NULL;
	assert_int_equal(trust_check_dir(d, "plugin_dir", &err), 0);
	put("kind-file", "x", 1, 0644, p);
	assert_int_equal(trust_check_dir(p, "plugin_dir", &err), -1);
	err_has(err, p, "is not a directory", NULL);
	free(err);
	err = NULL;
	snprintf(p, sizeof p, "%s/missing", tmpdir);
	assert_int_equal(trust_check_path(p, "plugin", &err), -1);
	err_has(err, p, "No such file", NULL);
	free(err);
}

/* The directory itself may not be writable by others, sticky or not. */
static void
test_dir_modes(void **state)
{
	char d[PATH_MAX], *err = NULL;

	sub("pd-sticky", 01777, d);
	assert_int_equal(trust_check_dir(d, "plugin_dir", &err), -1);
	err_has(err, "plugin_dir ", d, "mode 1777", "chmod go-w", NULL);
	free(err);
	err = NULL;
	sub("pd-gw", 0775, d);
	assert_int_equal(trust_check_dir(d, "plugin_dir", &err), -1);
	err_has(err, "mode 0775", NULL);
	free(err);
}

/* Directories above: others' write needs the sticky bit. */
static void
test_parents(void **state)
{
	char d[PATH_MAX], p[PATH_MAX], fix[PATH_MAX + 16], *err = NULL;

	sub("ww", 0777, d);
	put("ww/f", "x", 1, 0644, p);
	assert_int_equal(trust_check_path(p, "configuration file", &err), -1);
	snprintf(fix, sizeof fix, "run: chmod go-w %s", d);
	err_has(err, p, "directory ", d, "mode 0777", fix, NULL);
	free(err);
	err = NULL;

	sub("st", 01777, d);
	put("st/f", "x", 1, 0644, p);
	assert_int_equal(trust_check_path(p, "configuration file", &err), 0);

	sub("st/gw", 0770, d);
	put("st/gw/f", "x", 1, 0600, p);
	assert_int_equal(trust_check_path(p, "configuration file", &err), -1);
	err_has(err, d, "mode 0770", NULL);
	free(err);
}

static void
test_parent_owner(void **state)
{
	struct passwd *nobody = getpwnam("nobody");
	char d[PATH_MAX], p[PATH_MAX], *err = NULL;

	if (geteuid() != 0 || nobody == NULL)
		skip();
	sub("nd", 0755, d);
	assert_int_equal(chown(d, nobody->pw_uid, (gid_t)-1), 0);
	put("nd/f", "x", 1, 0600, p);
	assert_int_equal(trust_check_path(p, "configuration file", &err), -1);
	err_has(err, p, "directory ", d, "owned by nobody", "chown root:root", NULL);
	free(err);
}

/* A link in a safe directory to a file in an unsafe one, and a relative path. */
static void
test_links_relative(void **state)
{
	char d[PATH_MAX], p[PATH_MAX], l[PATH_MAX], cwd[PATH_MAX], *err = NULL;

	sub("lww", 0777, d);
	put("lww/f", "x", 1, 0644, p);
	snprintf(l, sizeof l, "%s/link", tmpdir);
	assert_int_equal(symlink(p, l), 0);
	assert_int_equal(trust_check_path(l, "configuration file", &err), -1);
	err_has(err, l, d, "mode 0777", NULL);
	free(err);
	err = NULL;

	assert_non_null(getcwd(cwd, sizeof cwd));
	assert_int_equal(chdir(d), 0);
	assert_int_equal(trust_check_path("f", "configuration file", &err), -1);
	err_has(err, "configuration file f: directory ", d, NULL);
	free(err);
	err = NULL;
	assert_int_equal(chdir(tmpdir), 0);
	put("rel", "x", 1, 0600, p);
	assert_int_equal(trust_check_path("rel", "configuration file", &err), 0);
	assert_int_equal(chdir(cwd), 0);
}

/* --------------------------------------------------------------- includes */

/*
 * Write main.conf (len bytes), run the resolver with tmpdir as include dir,
 * and run libconfig on the same file: when the resolver found no bad include
 * libconfig must not fail on one; when the first bad one is a missing file
 * libconfig must fail too.  Returns the resolver's status; *err_r its error.
 */
static int
resolve(const char *text, size_t len, char **err_r)
{
	char p[PATH_MAX];
	config_t lc;
	int rc, lrc;

	put("main.conf", text, len, 0600, p);
	rc = cfginclude_check(p, tmpdir, err_r);
	if (rc < 0 && strstr(*err_r, "No such file") == NULL)
		return rc;   /* libconfig might exit() on it */
	config_init(&lc);
	config_set_include_dir(&lc, tmpdir);
	lrc = config_read_file(&lc, p);
	if (rc == 0 && lrc != CONFIG_TRUE && config_error_text(&lc) != NULL &&
	    strstr(config_error_text(&lc), "include") != NULL)
		fail_msg("resolver passed, libconfig: %s", config_error_text(&lc));
	if (rc < 0 && lrc == CONFIG_TRUE)
		fail_msg("resolver refused (%s), libconfig read it", *err_r);
	config_destroy(&lc);
	return rc;
}

#define RESOLVE(s, e) resolve((s), sizeof(s) - 1, (e))

static void
test_include_scan(void **state)
{
	char p[PATH_MAX], d[PATH_MAX], *err = NULL;

	put("part.conf", "b = 1;\n", 7, 0600, p);
	sub("incdir", 0755, d);
	assert_int_equal(RESOLVE("a = 1;\n@include \"part.conf\"\n", &err), 0);
	assert_int_equal(RESOLVE(" \t@include \t\"part.conf\"\n", &err), 0);
	/* Not an @include: inside a string, a block comment, a line comment,
	 * not at the start of a line. */
	assert_int_equal(RESOLVE("a = \"x\n@include \\\"missing\\\"\";\n", &err), 0);
	assert_int_equal(RESOLVE("/* x\n@include \"missing\" */\na = 1;\n", &err), 0);
	assert_int_equal(RESOLVE("# @include \"missing\"\na = 1;\n", &err), 0);
	assert_int_equal(RESOLVE("// @include \"missing\"\na = 1;\n", &err), 0);

	/* A quote inside a comment opens no string: the next line's include counts. */
	assert_int_equal(RESOLVE("# say \"hi\n@include \"missing\"\n", &err), -1);
	free(err);
	assert_int_equal(RESOLVE("/* \"x */\n@include \"missing\"\n", &err), -1);
	free(err);
	assert_int_equal(RESOLVE("a = 1;\n\n@include \"missing\"\n", &err), -1);
	err_has(err, "main.conf:3: @include \"missing\": ", "/missing: No such file", NULL);
	free(err);
	/* Escapes: \" and \\ are kept, any other backslash is dropped (libconfig
	 * echoes it to stdout, so it is not asked here). */
	put("esc.conf", "@include \"mi\\\"s\\\\s\\ing\"\n", 24, 0600, p);
	assert_int_equal(cfginclude_check(p, tmpdir, &err), -1);
	err_has(err, "@include \"mi\"s\\sing\"", NULL);
	free(err);
	/* libconfig appends each run of the name with strlen(): a NUL ends it. */
	assert_int_equal(RESOLVE("@include \"part.conf\0zz\"\n", &err), 0);
	/* A string with an escaped quote does not end early. */
	assert_int_equal(RESOLVE("a = \"\\\"\n@include \\\"missing\";\n", &err), 0);
}

static void
test_include_refused(void **state)
{
	char p[PATH_MAX], d[PATH_MAX], *err = NULL;

	sub("incsub", 0755, d);
	assert_int_equal(RESOLVE("@include \".\"\n", &err), -1);
	err_has(err, "main.conf:1: @include \".\": ", "is a directory", NULL);
	free(err);
	assert_int_equal(RESOLVE("@include \"\"\n", &err), -1);
	err_has(err, "is a directory", NULL);
	free(err);
	assert_int_equal(RESOLVE("@include \"incsub\"\n", &err), -1);
	err_has(err, d, "is a directory", NULL);
	free(err);

	put("open.conf", "b = 1;\n", 7, 0666, p);
	assert_int_equal(RESOLVE("\n@include \"open.conf\"\n", &err), -1);
	err_has(err, "main.conf:2: @include \"open.conf\": @include file ", p, "mode 0666",
		"chmod go-w", NULL);
	free(err);

	put("self.conf", "\n\n@include \"self.conf\"\n", 23, 0600, p);
	assert_int_equal(RESOLVE("@include \"self.conf\"\n", &err), -1);
	err_has(err, "self.conf:3: @include \"self.conf\"", "cycle", NULL);
	free(err);

	put("many.conf", "@include \"part.conf\"\n@include \"part.conf\"\n", 42, 0600, p);
	put("part.conf", "b = 1;\n", 7, 0600, p);
	assert_int_equal(RESOLVE("@include \"many.conf\"\n", &err), 0);
}

/* The scanner's state goes on from an included file into the one that
 * included it, as in libconfig: an open comment hides the next line. */
static void
test_include_state(void **state)
{
	char p[PATH_MAX], *err = NULL;

	put("opencomment.conf", "b = 1; /* open\n", 15, 0600, p);
	assert_int_equal(RESOLVE("@include \"opencomment.conf\"\n@include \"missing\" */\n", &err),
			 0);
	put("openname.conf", "b = 1;\n@include \"pa", 19, 0600, p);
	put("part.conf", "c = 1;\n", 7, 0600, p);
	assert_int_equal(RESOLVE("@include \"openname.conf\"\nrt.conf\"\n", &err), -1);
	err_has(err, "main.conf:2: @include \"pa?rt.conf\": ", NULL);
	free(err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_ok),
		cmocka_unit_test(test_file_mode),
		cmocka_unit_test(test_file_owner),
		cmocka_unit_test(test_kind),
		cmocka_unit_test(test_dir_modes),
		cmocka_unit_test(test_parents),
		cmocka_unit_test(test_parent_owner),
		cmocka_unit_test(test_links_relative),
		cmocka_unit_test(test_include_scan),
		cmocka_unit_test(test_include_refused),
		cmocka_unit_test(test_include_state),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

/* mailmill - ISC licence, see LICENSE */
/*
 * The @include resolver (daemon/core/cfg_include.c) on a main file holding the
 * fuzzer's bytes, in a directory of fixed files: a plain one, one that
 * includes it, one that includes itself, one ending inside a comment, one
 * ending inside an @include name, a world-writable one and a directory.
 * libconfig then reads the same file whenever that is safe, and the two
 * must agree: when the resolver passed, libconfig meets no include it
 * cannot open (it would exit() on the directory); when the resolver's
 * first bad include is a missing file, libconfig fails too.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <libconfig.h>
#include "daemon/core/cfg_include.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fz_dir[64];

static void
fz_put(const char *name, const char *text, mode_t mode)
{
	char p[128];
	FILE *f;

	snprintf(p, sizeof p, "%s/%s", fz_dir, name);
	f = fopen(p, "w");
	if (f == NULL)
		abort();
	fputs(text, f);
	fclose(f);
	chmod(p, mode);
}

static void
fz_cleanup(void)
{
	static const char *const names[] = { "a.conf", "b.conf", "loop.conf", "open.conf",
					     "name.conf", "ww.conf", "main.conf" };
	char p[128];

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", fz_dir, names[i]);
		unlink(p);
	}
	snprintf(p, sizeof p, "%s/d", fz_dir);
	rmdir(p);
	rmdir(fz_dir);
}

static void
fz_init(void)
{
	char p[128];

	snprintf(fz_dir, sizeof fz_dir, "/tmp/mm-fuzz-include.XXXXXX");
	if (mkdtemp(fz_dir) == NULL || chmod(fz_dir, 0755) < 0)
		abort();
	fz_put("a.conf", "x = 1;\n", 0600);
	fz_put("b.conf", "@include \"a.conf\"\ny = 2;\n", 0600);
	fz_put("loop.conf", "\n@include \"loop.conf\"\n", 0600);
	fz_put("open.conf", "z = 3; /* open\n", 0600);
	fz_put("name.conf", "w = 4;\n@include \"a.c", 0600);
	fz_put("ww.conf", "v = 5;\n", 0666);
	snprintf(p, sizeof p, "%s/d", fz_dir);
	if (mkdir(p, 0755) < 0)
		abort();
	atexit(fz_cleanup);
}

/* libconfig's scanner echoes stray characters to stdout: not into TAP. */
static int
fz_libconfig(const char *path, const char **err_r)
{
	config_t lc;
	int rc, saved, null_fd;

	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	null_fd = open("/dev/null", O_WRONLY);
	if (saved < 0 || null_fd < 0)
		abort();
	dup2(null_fd, STDOUT_FILENO);
	close(null_fd);
	config_init(&lc);
	config_set_include_dir(&lc, fz_dir);
	rc = config_read_file(&lc, path);
	*err_r = rc == CONFIG_TRUE ? NULL : config_error_text(&lc);
	/* The texts are static strings in libconfig 1.5: they outlive lc. */
	config_destroy(&lc);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	return rc == CONFIG_TRUE ? 0 : -1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[128];
	char *err = NULL;
	const char *lerr = NULL;
	FILE *f;
	int rc, lrc;

	if (fz_dir[0] == '\0')
		fz_init();
	snprintf(path, sizeof path, "%s/main.conf", fz_dir);
	f = fopen(path, "w");
	if (f == NULL)
		return 0;
	if (fwrite(data, 1, size, f) != size) {
		fclose(f);
		return 0;
	}
	fclose(f);
	chmod(path, 0600);

	rc = cfginclude_check(path, fz_dir, &err);
	if (rc < 0 && (err == NULL || strchr(err, '\n') != NULL))
		__builtin_trap();    /* every refusal says why, in one line */
	if (rc == 0 || strstr(err, "No such file") != NULL) {
		lrc = fz_libconfig(path, &lerr);
		if (rc == 0 && lrc < 0 && lerr != NULL &&
		    (strstr(lerr, "include") != NULL))
			__builtin_trap();    /* libconfig followed an include we did not */
		if (rc < 0 && lrc == 0)
			__builtin_trap();    /* we saw an include libconfig did not */
	}
	free(err);
	return 0;
}

/* mailmill - ISC licence, see LICENSE */
/*
 * A fuzz target built as a plain program for make check: runs every file
 * under FUZZ_CORPUS (the seeds and every input a fuzzer once crashed on) and
 * prints TAP.  A crash, a sanitizer report or a trap fails the test, and so
 * does a GLib critical (as G_DEBUG=fatal-criticals, which tests/fuzz/run.sh
 * sets for the fuzzers): a g_return_if_fail of GMime's is a caller's bug.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <glib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : FUZZ_CORPUS;
	char *names[4096];
	size_t n = 0, i;
	struct dirent *de;
	DIR *d = opendir(dir);

	g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
	if (d == NULL) {
		printf("Bail out! cannot open %s\n", dir);
		return 1;
	}
	while ((de = readdir(d)) != NULL && n < sizeof names / sizeof names[0])
		if (de->d_name[0] != '.')
			names[n++] = strdup(de->d_name);
	closedir(d);
	qsort(names, n, sizeof names[0], replay_cmp);
	printf("1..%zu\n", n);
	for (i = 0; i < n; i++) {
		char path[4096];
		struct stat st;
		FILE *f;
		uint8_t *data;

		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		f = fopen(path, "rb");
		if (f == NULL || fstat(fileno(f), &st) < 0 || st.st_size > 16 * 1024 * 1024) {
			printf("not ok %zu - %s: cannot read\n", i + 1, names[i]);
			if (f != NULL)
				fclose(f);
			continue;
		}
		data = malloc((size_t)st.st_size + 1);
		if (data == NULL || fread(data, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
			printf("not ok %zu - %s: cannot read\n", i + 1, names[i]);
		} else {
			fflush(stdout);
			LLVMFuzzerTestOneInput(data, (size_t)st.st_size);
			printf("ok %zu - %s\n", i + 1, names[i]);
		}
		free(data);
		fclose(f);
		free(names[i]);
	}
	return 0;
}

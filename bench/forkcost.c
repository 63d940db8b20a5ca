/* mailmill - ISC licence, see LICENSE */
/*
 * bench/forkcost.c: the CPU of fork + _exit against the size of the parent's
 * heap: the floor of a poll in mailmill's worker model (one fork per account
 * run), which grows with the daemon's resident size, so with its accounts.
 *
 *   cc -O2 -o forkcost bench/forkcost.c && ./forkcost 16 && ./forkcost 64
 *   GLIBC_TUNABLES=glibc.malloc.hugetlb=1 ./forkcost 64   # the heap on THP
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define FORKS 200
#define BLOCK (65536 - 64)      /* many mid-sized allocations, as a heap holds */

static double
forkcost_ms(const struct rusage *r)
{
	return (double)(r->ru_utime.tv_sec + r->ru_stime.tv_sec) * 1e3 +
	       (double)(r->ru_utime.tv_usec + r->ru_stime.tv_usec) / 1e3;
}

int
main(int argc, char **argv)
{
	struct rusage s0, s1, c0, c1;
	unsigned long mb;

	if (argc != 2 || (mb = strtoul(argv[1], NULL, 10)) == 0) {
		fprintf(stderr, "usage: forkcost MEGABYTES\n");
		return 64;
	}
	for (unsigned long i = 0; i < mb * 16; i++) {
		char *p = malloc(BLOCK);

		if (p == NULL)
			return 1;
		memset(p, 1, BLOCK);   /* resident, as a parsed configuration is */
	}
	getrusage(RUSAGE_SELF, &s0);
	getrusage(RUSAGE_CHILDREN, &c0);
	for (int i = 0; i < FORKS; i++) {
		pid_t pid = fork();

		if (pid < 0)
			return 1;
		if (pid == 0) {
			char *q = malloc(4096);   /* the child writes: copy on write */

			if (q != NULL)
				q[0] = 1;
			_exit(0);
		}
		if (waitpid(pid, NULL, 0) < 0)
			return 1;
	}
	getrusage(RUSAGE_SELF, &s1);
	getrusage(RUSAGE_CHILDREN, &c1);
	printf("%lu MB heap: parent %.3f ms per fork, child %.3f ms (fork to exit)\n", mb,
	       (forkcost_ms(&s1) - forkcost_ms(&s0)) / FORKS,
	       (forkcost_ms(&c1) - forkcost_ms(&c0)) / FORKS);
	return 0;
}

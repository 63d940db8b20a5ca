/* mailmill - ISC licence, see LICENSE */
/* Configuration loading (cfg_load) on a file holding the fuzzer's bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "daemon/core/cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[] = "/tmp/mm-fuzz-config.XXXXXX";
	cfg *c = NULL;
	char *err = NULL;
	int fd = mkstemp(path);

	if (fd < 0)
		return 0;
	if (write(fd, data, size) == (ssize_t)size) {
		if (cfg_load(path, &c, &err) == 0) {
			if (c == NULL)
				__builtin_trap();
			cfg_free(&c);
		} else if (err == NULL)
			__builtin_trap(); /* every failure says why */
	}
	free(err);
	close(fd);
	unlink(path);
	return 0;
}

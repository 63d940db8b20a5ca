/* mailmill - ISC licence, see LICENSE */
/* Token and device endpoint answers (daemon/oauth/oauth_json.c): whatever the bytes,
 * the parser returns an answer whose fields hold what their use allows, or
 * an error, and leaks nothing. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/oauth/oauth_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_check_token(const char *s)
{
	if (s == NULL)
		return;
	if (strlen(s) > OAUTH_JSON_TOKEN_MAX)
		__builtin_trap();
	for (; *s; s++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
			__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	oauth_answer a;
	char *err = NULL;

	if (oauth_json_parse((const char *)data, size, &a, &err) < 0) {
		if (err == NULL || a.access_token != NULL || a.refresh_token != NULL)
			__builtin_trap();
		free(err);
		return 0;
	}
	if (err != NULL)
		__builtin_trap();
	fuzz_check_token(a.access_token);
	fuzz_check_token(a.refresh_token);
	fuzz_check_token(a.device_code);
	if (a.expires_in < -1 || a.interval < -1 || a.expires_in > 366LL * 86400)
		__builtin_trap();
	oauth_answer_clear(&a);
	if (a.access_token != NULL || a.error != NULL)
		__builtin_trap();
	return 0;
}

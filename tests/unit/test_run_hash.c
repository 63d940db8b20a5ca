/* mailmill - ISC licence, see LICENSE */
/*
 * daemon/run/run_hash.c: the hasher's thread gives what hashing here gives
 * (and the known SHA-256 of "abc"), job after job, on data of every size
 * around a block; waiting without a job gives ""; freeing ends a thread
 * whose job is still running.
 */
#include <config.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "daemon/run/run_hash.h"

static void
test_known(void **state)
{
	EVP_MD *md = NULL;
	EVP_MD_CTX *ctx = NULL;
	run_hasher *h = run_hasher_new();
	char here[65], there[65];

	(void)state;
	assert_non_null(h);
	assert_int_equal(run_hash_sha256(&md, &ctx, "abc", 3, here), 0);
	assert_string_equal(here, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	run_hasher_wait(h, there);   /* no job yet */
	assert_string_equal(there, "");
	assert_int_equal(run_hasher_start(h, "abc", 3), 0);
	run_hasher_wait(h, there);
	assert_string_equal(there, here);
	assert_int_equal(run_hash_sha256(&md, &ctx, "", 0, here), 0);
	assert_string_equal(here, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	run_hasher_free(h);
	EVP_MD_CTX_free(ctx);
	EVP_MD_free(md);
}

/* Job after job, each compared with the digest made here; a job started
 * before the last was taken is waited for (one job at a time). */
static void
test_jobs(void **state)
{
	static const size_t sizes[] = { 0, 1, 55, 56, 63, 64, 65, 4095, 4096, 70000, 1 << 20 };
	EVP_MD *md = NULL;
	EVP_MD_CTX *ctx = NULL;
	run_hasher *h = run_hasher_new();
	char *data = malloc(1 << 20), here[65], there[65];

	(void)state;
	assert_non_null(h);
	assert_non_null(data);
	for (size_t i = 0; i < 1 << 20; i++)
		data[i] = (char)(i * 7 + (i >> 9));
	for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		assert_int_equal(run_hasher_start(h, data, sizes[k]), 0);
		assert_int_equal(run_hash_sha256(&md, &ctx, data, sizes[k], here), 0);
		run_hasher_wait(h, there);
		assert_string_equal(there, here);
	}
	assert_int_equal(run_hasher_start(h, data, 1000), 0);
	assert_int_equal(run_hasher_start(h, data + 1, 1000), 0);
	run_hasher_wait(h, there);
	assert_int_equal(run_hash_sha256(&md, &ctx, data + 1, 1000, here), 0);
	assert_string_equal(there, here);
	/* freed with a job running: it ends after the job */
	assert_int_equal(run_hasher_start(h, data, 1 << 20), 0);
	run_hasher_free(h);
	run_hasher_free(NULL);
	free(data);
	EVP_MD_CTX_free(ctx);
	EVP_MD_free(md);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known),
		cmocka_unit_test(test_jobs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* mailmill - ISC licence, see LICENSE */
/* Durations and sizes: what is accepted, what each becomes, what is refused. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon/core/units.h"

struct dur_case { const char *in; int rc; long long out; };
struct size_case { const char *in; int rc; unsigned long long out; };

static const struct dur_case dur_cases[] = {
	{ "0", 0, 0 },
	{ "90", 0, 90 },
	{ "90s", 0, 90 },
	{ "5m", 0, 300 },
	{ "2h", 0, 7200 },
	{ "7d", 0, 604800 },
	{ "007s", 0, 7 },
	{ "9223372036854775807", 0, LLONG_MAX },
	{ "9223372036854775807s", 0, LLONG_MAX },
	{ "9223372036854775808", -1, 0 },      /* one past LLONG_MAX */
	{ "153722867280912931m", -1, 0 },      /* multiplies past LLONG_MAX */
	{ "106751991167300d", 0, 106751991167300LL * 86400 },
	{ "106751991167301d", -1, 0 },
	{ "99999999999999999999999", -1, 0 },
	{ "", -1, 0 },
	{ "s", -1, 0 },
	{ "5x", -1, 0 },
	{ "5M", -1, 0 },                       /* minutes are lower case; M is a size */
	{ "-1", -1, 0 },
	{ "+5", -1, 0 },
	{ " 5m", -1, 0 },
	{ "5m ", -1, 0 },
	{ "5 m", -1, 0 },
	{ "5mm", -1, 0 },
	{ "1.5h", -1, 0 },
	{ "0x10", -1, 0 },
	{ "5m30s", -1, 0 },
};

static const struct size_case size_cases[] = {
	{ "0", 0, 0 },
	{ "512", 0, 512 },
	{ "512K", 0, 512ULL * 1024 },
	{ "512k", 0, 512ULL * 1024 },
	{ "50M", 0, 50ULL << 20 },
	{ "2G", 0, 2ULL << 30 },
	{ "18446744073709551615", 0, ULLONG_MAX },
	{ "18446744073709551616", -1, 0 },
	{ "17179869183G", 0, 17179869183ULL << 30 },
	{ "17179869184G", -1, 0 },             /* 2^64: overflow */
	{ "", -1, 0 },
	{ "K", -1, 0 },
	{ "5x", -1, 0 },
	{ "5KB", -1, 0 },
	{ "-1", -1, 0 },
	{ " 5M", -1, 0 },
	{ "5M ", -1, 0 },
	{ "1.5G", -1, 0 },
	{ "5T", -1, 0 },
};

static void
test_durations(void **state)
{
	for (size_t i = 0; i < sizeof(dur_cases) / sizeof(dur_cases[0]); i++) {
		const struct dur_case *c = &dur_cases[i];
		long long out = -42;
		int rc = units_duration(c->in, &out);
		if (rc != c->rc || (rc == 0 && out != c->out))
			fail_msg("duration \"%s\": rc %d out %lld, want rc %d out %lld", c->in, rc,
				 out, c->rc, c->out);
		if (rc < 0 && out != -42)
			fail_msg("duration \"%s\": output written on failure", c->in);
	}
	assert_int_equal(units_duration(NULL, &(long long){ 0 }), -1);
}

static void
test_sizes(void **state)
{
	for (size_t i = 0; i < sizeof(size_cases) / sizeof(size_cases[0]); i++) {
		const struct size_case *c = &size_cases[i];
		unsigned long long out = 42;
		int rc = units_size(c->in, &out);
		if (rc != c->rc || (rc == 0 && out != c->out))
			fail_msg("size \"%s\": rc %d out %llu, want rc %d out %llu", c->in, rc, out,
				 c->rc, c->out);
		if (rc < 0 && out != 42)
			fail_msg("size \"%s\": output written on failure", c->in);
	}
	assert_int_equal(units_size(NULL, &(unsigned long long){ 0 }), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_sizes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

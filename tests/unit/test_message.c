/* mailmill - ISC licence, see LICENSE */
/*
 * daemon/run/message.c: message_head reads the first Message-ID and Date of a
 * raw header with fast paths for their canonical forms and GMime for the
 * rest.  GMime is the oracle: for every input, fast path or not, the result
 * must be what GMime's decoders give for the same unfolded value.
 *
 * The test binary defines GMime's two decoders itself, forwarding to the
 * library's through dlsym(RTLD_NEXT): message.c (linked in statically from
 * libmmcore) then calls these, so the test can count how often message_head
 * left a value to GMime, and fails if a canonical value was not read by the
 * fast path.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <gmime/gmime.h>

#include "daemon/run/message.h"

static GDateTime *(*real_decode_date)(const char *);
static char *(*real_decode_message_id)(const char *);
static unsigned long gmime_date_calls, gmime_id_calls;

GDateTime *
g_mime_utils_header_decode_date(const char *str)
{
	gmime_date_calls++;
	return real_decode_date(str);
}

char *
g_mime_utils_decode_message_id(const char *message_id)
{
	gmime_id_calls++;
	return real_decode_message_id(message_id);
}

/* What message_head did before its fast paths: GMime on the unfolded value. */
static char *
unfold(const char *folded)
{
	GString *s = g_string_new(NULL);
	const char *p;

	for (p = folded; *p != '\0'; p++)
		if (*p != '\n')
			g_string_append_c(s, *p);
	return g_strstrip(g_string_free(s, FALSE));
}

static int
oracle_date(const char *folded, long long *t_r)
{
	char *v = unfold(folded);
	GDateTime *dt = real_decode_date(v);

	g_free(v);
	if (dt == NULL)
		return 0;
	*t_r = (long long)g_date_time_to_unix(dt);
	g_date_time_unref(dt);
	return 1;
}

static char *
oracle_id(const char *folded)
{
	char *v = unfold(folded), *id = real_decode_message_id(v);

	g_free(v);
	return id;
}

#define UNSET (-7777777LL) /* a date no input here gives */

/* message_head on a header with this Date value; GMime calls counted. */
static long long
head_date(const char *folded, unsigned long *calls_r)
{
	char *text = g_strdup_printf("From: a@example.org\nDate: %s\nSubject: x\n\nbody\n", folded);
	long long date = UNSET;
	char *id = NULL;
	unsigned long before = gmime_date_calls;

	message_head(text, strlen(text), &id, &date);
	*calls_r = gmime_date_calls - before;
	assert_null(id);
	g_free(text);
	return date;
}

static char *
head_id(const char *folded, unsigned long *calls_r)
{
	char *text = g_strdup_printf("From: a@example.org\nMessage-ID: %s\nSubject: x\n\nbody\n", folded);
	long long date = UNSET;
	char *id = NULL;
	unsigned long before = gmime_id_calls;

	message_head(text, strlen(text), &id, &date);
	*calls_r = gmime_id_calls - before;
	assert_true(date == UNSET);
	g_free(text);
	return id;
}

/* message_head agrees with GMime on this Date value; returns GMime calls made. */
static unsigned long
check_date(const char *folded)
{
	long long want = UNSET, got;
	unsigned long calls;

	oracle_date(folded, &want);
	got = head_date(folded, &calls);
	if (got != want)
		fail_msg("Date: %s: message_head %lld, GMime %lld", folded, got, want);
	return calls;
}

static unsigned long
check_id(const char *folded)
{
	unsigned long calls;
	char *want = oracle_id(folded), *got = head_id(folded, &calls);

	if (g_strcmp0(got, want) != 0)
		fail_msg("Message-ID: %s: message_head \"%s\", GMime \"%s\"", folded,
			 got != NULL ? got : "(null)", want != NULL ? want : "(null)");
	g_free(got);
	g_free(want);
	return calls;
}

/* fast: 1 if the fast path must read it (no GMime call), 0 if GMime must. */
struct message_case {
	const char *value;
	int fast;
};

static const struct message_case id_cases[] = {
	{ "<1234.5678@example.org>", 1 },
	{ "<a@b>", 1 },
	{ "<CAH+x=y_z-1~2@mail.gmail.com>", 1 },
	{ "<first.last.x@sub.example.co.uk>", 1 },
	{ "<!#$%&'*+-/=?^_`{|}~@example.org>", 1 },
	{ "<20240101120000.ABCDEF@host>", 1 },
	{ "   <pad@example.org>   ", 1 },
	{ "\n <folded@example.org>", 1 },
	{ "<a@b.c.d.e.f.g>", 1 },
	{ "<A1B2C3@EXAMPLE.ORG>", 1 },
	{ "<x@y>\t", 1 },
	{ "1234@example.org", 0 },               /* no brackets */
	{ "<1234@example.org", 0 },              /* no '>' */
	{ "1234@example.org>", 0 },
	{ "<>", 0 },
	{ "<@example.org>", 0 },
	{ "<local@>", 0 },
	{ "<local>", 0 },                        /* no '@' */
	{ "<a@b@c>", 0 },
	{ "<a b@example.org>", 0 },              /* white space */
	{ "<a@example .org>", 0 },
	{ "<a@exa\tmple.org>", 0 },
	{ "< a@example.org >", 0 },
	{ "<a(comment)@example.org>", 0 },
	{ "(c) <a@example.org>", 0 },
	{ "<a@example.org> (comment)", 0 },
	{ "<\"quoted local\"@example.org>", 0 },
	{ "<\"q\"@example.org>", 0 },
	{ "<a\\b@example.org>", 0 },
	{ "<a@[192.0.2.1]>", 0 },                /* domain literal */
	{ "<a,b@example.org>", 0 },
	{ "<a;b@example.org>", 0 },
	{ "<a:b@example.org>", 0 },
	{ "<a<b@example.org>", 0 },
	{ "<a@example.org><b@example.org>", 0 },
	{ "<a@b..c>", 0 },                       /* GMime stops at the empty atom */
	{ "<a@b.>", 0 },
	{ "<a@.b>", 0 },
	{ "<.a@b>", 0 },
	{ "<a.@b>", 0 },
	{ "<a..b@c>", 0 },
	{ "<caf\xc3\xa9@example.org>", 0 },      /* not ASCII */
	{ "<a\x01@example.org>", 0 },
	{ "<a@example.org\n >", 0 },             /* folded inside */
	{ "", 0 },
};

static const struct message_case date_cases[] = {
	{ "Mon, 1 Jan 2024 12:34:56 +0000", 1 },
	{ "Mon, 01 Jan 2024 12:34:56 +0000", 1 },
	{ "1 Jan 2024 12:34:56 +0000", 1 },                 /* no day name */
	{ "Tue, 2 Jan 2024 12:34 +0100", 1 },               /* no seconds */
	{ "Wed, 3 Jan 2024 23:59:59 -0800", 1 },
	{ "Fri, 15 Mar 2024 08:00:00 +0530", 1 },
	{ "Sat, 31 Dec 2022 00:00:00 +1400", 1 },
	{ "Sat, 31 Dec 2022 00:00:00 -1200", 1 },
	{ "Sun, 1 Jan 2023 00:00:00 -0000", 1 },
	{ "Thu, 29 Feb 2024 10:00:00 +0000", 1 },          /* leap year */
	{ "Tue, 29 Feb 2000 10:00:00 +0000", 1 },          /* 400-year rule */
	{ "Mon, 31 Dec 1969 23:59:59 +0000", 1 },          /* before 1970 */
	{ "Wed, 1 Jan 1969 00:00:00 +1400", 1 },
	{ "Thu, 1 Jan 1970 00:00:00 +0000", 1 },
	{ "Fri, 31 Dec 9999 23:59:59 +0000", 1 },
	{ "Mon, 1 Jan 2024 12:34:56 +0000 (UTC)", 1 },
	{ "Mon, 1 Jan 2024 12:34:56 -0500 (Eastern Standard Time)", 1 },
	{ "Mon, 1 Jan 2024 12:34:56 +0000\t(UTC)", 1 },
	{ "mon, 1 jan 2024 12:34:56 +0000", 1 },            /* lower case names */
	{ "MON, 1 JAN 2024 12:34:56 +0000", 1 },
	{ "Fri, 1 Jan 2024 12:34:56 +0000", 1 },            /* wrong day name */
	{ "Mon,1 Jan 2024 12:34:56 +0000", 1 },
	{ "Mon,   1  Jan\t2024  12:34:56   +0000", 1 },    /* odd spacing */
	{ "Mon, 1 Jan 2024\n 12:34:56 +0000", 1 },          /* folded */
	{ "Mon, 1 Jan 2024 12:34:56\n\t+0000", 1 },
	{ "Sun, 30 Apr 2023 12:00:00 +0200", 1 },
	{ "Sat, 30 Sep 2023 12:00:00 +0200", 1 },
	{ "Wed, 28 Feb 2100 12:00:00 +0000", 1 },
	{ "Mon, 1 Jan 2024 00:00:00 +2359", 1 },
	{ "Mon, 1 Jan 2024 00:00:00 -2359", 1 },
	{ "Sun, 31 Apr 2023 12:00:00 +0000", 0 },          /* no 31 April */
	{ "Fri, 29 Feb 2023 12:00:00 +0000", 0 },          /* not a leap year */
	{ "Mon, 29 Feb 2100 12:00:00 +0000", 0 },          /* 100-year rule */
	{ "Thu, 29 Feb 1900 12:00:00 +0000", 0 },
	{ "Fri, 30 Feb 2024 12:00:00 +0000", 0 },
	{ "Mon, 0 Jan 2024 12:00:00 +0000", 0 },
	{ "Mon, 32 Jan 2024 12:00:00 +0000", 0 },
	{ "Sat, 31 Dec 2016 23:59:60 +0000", 0 },          /* leap second */
	{ "Mon, 1 Jan 1900 12:00:00 +0000", 0 },           /* GMime: years before 1969 */
	{ "Tue, 31 Dec 1968 23:59:59 +0000", 0 },
	{ "Mon, 1 Jan 24 12:34:56 +0000", 0 },              /* two-digit year */
	{ "Mon, 1 Jan 99 12:34:56 +0000", 0 },
	{ "Mon, 1 Jan 2024 12:34:56 GMT", 0 },              /* obsolete zones */
	{ "Mon, 1 Jan 2024 12:34:56 UT", 0 },
	{ "Mon, 1 Jan 2024 12:34:56 EST", 0 },
	{ "Mon, 1 Jan 2024 12:34:56 Z", 0 },
	{ "Mon, 1 Jan 2024 12:34:56", 0 },                  /* no zone */
	{ "Mon, 1 Jan 2024 12:34:56 +2400", 0 },            /* GMime: UTC */
	{ "Mon, 1 Jan 2024 12:34:56 +0160", 0 },
	{ "Mon, 1 Jan 2024 12:34:56 +100", 0 },
	{ "Mon, 1 Jan 2024 12:34:56 +01000", 0 },
	{ "Mon, 1 Jan 2024 24:00:00 +0000", 0 },
	{ "Mon, 1 Jan 2024 12:60:00 +0000", 0 },
	{ "Mon, 1 Jan 2024 1:02:03 +0000", 0 },
	{ "Mon, 1 Jan 2024 12:34:5 +0000", 0 },
	{ "Mon, 1 Jan 2024 12:34:56:00 +0000", 0 },
	{ "Mon, 1 January 2024 12:34:56 +0000", 0 },        /* long month name */
	{ "Monday, 1 Jan 2024 12:34:56 +0000", 0 },
	{ "Mon 1 Jan 2024 12:34:56 +0000", 0 },             /* no comma */
	{ "Xyz, 1 Jan 2024 12:34:56 +0000", 0 },
	{ "Mon, 1 Foo 2024 12:34:56 +0000", 0 },
	{ "Mon, 1-Jan-2024 12:34:56 +0000", 0 },
	{ "Mon, 1 Jan 2024 12:34:56 +0000 garbage", 0 },
	{ "Mon, 1 Jan 2024 12:34:56 +0000 (UTC) x", 0 },
	{ "Mon, 1 Jan 2024 12:34:56 +0000 (a (nested) c)", 0 },
	{ "Mon, 1 Jan 2024 12:34:56 +0000 (unclosed", 0 },
	{ "Mon, 1 Jan 2024 12:34:56 +0000(UTC)", 0 },
	{ "Mon, 1 Jan 2024 12:34:56 -0500 (EST)", 1 },
	{ "2024-01-01T12:34:56Z", 0 },
	{ "Mon, 1 Jan 2024 12:34:56 +0000\r", 1 },          /* CR of a CRLF line */
	{ "Mon, 1 Jan 2024\r\n 12:34:56 +0000", 0 },
	{ "", 0 },
	{ "garbage", 0 },
};

/* Each case takes the path the table says: no GMime call on the fast one. */
static void
check_table(const char *what, const struct message_case *cases, size_t n,
	    unsigned long (*check)(const char *))
{
	for (size_t i = 0; i < n; i++) {
		unsigned long calls = check(cases[i].value);

		if (calls != (cases[i].fast ? 0UL : 1UL))
			fail_msg("%s: %s: %lu GMime calls, expected the %s path", what, cases[i].value,
				 calls, cases[i].fast ? "fast" : "GMime");
	}
}

static void
test_id_table(void **state)
{
	(void)state;
	check_table("Message-ID", id_cases, G_N_ELEMENTS(id_cases), check_id);
}

static void
test_date_table(void **state)
{
	(void)state;
	check_table("Date", date_cases, G_N_ELEMENTS(date_cases), check_date);
}

/* Every day (and the invalid 29th-31st) of 1969..2110 and 9990..9999. */
static void
test_date_calendar(void **state)
{
	static const char *mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
				     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	char buf[80];
	unsigned long fast = 0, n = 0;
	int y, m, d;

	(void)state;
	for (y = 1966; y <= 10000; y = (y == 2110 ? 9990 : y + 1))
		for (m = 0; m < 12; m++)
			for (d = 1; d <= 31; d++) {
				snprintf(buf, sizeof(buf), "%d %s %d %02d:%02d:%02d %c%02d%02d", d, mon[m], y,
					 (d * 7) % 24, (d * 13 + m) % 60, (y + d) % 60,
					 d % 2 ? '+' : '-', (d * 5 + m) % 15, (d % 4) * 15);
				fast += check_date(buf) == 0;
				n++;
			}
	/* Nearly all of them are canonical and valid. */
	assert_true(fast > n * 9 / 10);
}

/* Every zone offset a canonical Date can carry, and the ones past it. */
static void
test_date_zones(void **state)
{
	char buf[80];
	int h, m, s;

	(void)state;
	for (s = 0; s < 2; s++)
		for (h = 0; h < 100; h++)
			for (m = 0; m < 100; m += (h < 24 ? 1 : 7)) {
				snprintf(buf, sizeof(buf), "Sat, 1 Jan 2000 00:00:00 %c%02d%02d", s ? '-' : '+', h, m);
				if (check_date(buf) != (h < 24 && m < 60 ? 0UL : 1UL))
					fail_msg("Date: %s: wrong path", buf);
			}
	/* The edges of GMime's range, with zones pushing them further. */
	check_date("Fri, 31 Dec 9999 23:59:59 -2359");
	check_date("Wed, 1 Jan 1969 00:00:00 +2359");
	check_date("Wed, 1 Jan 1969 00:00:00 -2359");
}

/* The first Message-ID and Date win; the rest of the header is not read. */
static void
test_first_field(void **state)
{
	const char *text = "Date: Mon, 1 Jan 2024 00:00:00 +0000\nmessage-id: <first@x>\n"
			   "Message-ID: <second@x>\nDATE: Tue, 2 Jan 2024 00:00:00 +0000\n\n"
			   "Message-ID: <body@x>\n";
	const char *none = "Subject: x\n\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n";
	long long date = UNSET;
	char *id = NULL;

	(void)state;
	message_head(text, strlen(text), &id, &date);
	assert_string_equal(id, "first@x");
	assert_true(date == 1704067200LL);
	g_free(id);
	date = UNSET;
	message_head(none, strlen(none), &id, &date);
	assert_null(id);
	assert_true(date == UNSET); /* untouched */
}

/*
 * The first field of this name in GMime's parse of the header, decoded as
 * message_head decodes it.  GMime's message object keeps the last Date and
 * Message-ID instead, so it is the oracle only where there is one of each.
 */
static const char *
first_raw(GMimeMessage *m, const char *name, int *count_r)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(m));
	const char *raw = NULL;
	int i, n = g_mime_header_list_get_count(hl);

	*count_r = 0;
	for (i = 0; i < n; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);

		if (g_ascii_strcasecmp(g_mime_header_get_name(h), name) == 0 && (*count_r)++ == 0)
			raw = g_mime_header_get_raw_value(h);
	}
	return raw;
}

/* Each corpus message: message_head against GMime's parser. */
static void
test_corpus(void **state)
{
	const char *dir = MM_TEST_SRCDIR "/tests/data/corpus";
	GDir *d = g_dir_open(dir, 0, NULL);
	const char *name;
	int files = 0, whole = 0;

	(void)state;
	assert_non_null(d);
	while ((name = g_dir_read_name(d)) != NULL) {
		char *path, *raw, *id = NULL, *want_id;
		const char *note = NULL, *raw_id, *raw_date;
		gsize len;
		long long date = UNSET, want_date = UNSET;
		GMimeMessage *m;
		GDateTime *dt;
		int ids, dates;

		if (!g_str_has_suffix(name, ".eml"))
			continue;
		path = g_build_filename(dir, name, NULL);
		assert_true(g_file_get_contents(path, &raw, &len, NULL));
		message_head(raw, len, &id, &date);
		m = message_parse(raw, len, &note);
		raw_id = first_raw(m, "Message-ID", &ids);
		raw_date = first_raw(m, "Date", &dates);
		want_id = raw_id != NULL ? oracle_id(raw_id) : NULL;
		if (raw_date != NULL)
			oracle_date(raw_date, &want_date);
		if (g_strcmp0(id, want_id) != 0 || date != want_date)
			fail_msg("%s: message_head \"%s\" %lld, GMime \"%s\" %lld", name,
				 id != NULL ? id : "(null)", date, want_id != NULL ? want_id : "(null)", want_date);
		if (ids <= 1 && dates <= 1) {
			/* The message object agrees where it has no choice to make. */
			assert_int_equal(g_strcmp0(id, g_mime_message_get_message_id(m)), 0);
			dt = g_mime_message_get_date(m);
			assert_true(date == (dt != NULL ? (long long)g_date_time_to_unix(dt) : UNSET));
			whole++;
		}
		g_object_unref(m);
		g_free(want_id);
		g_free(id);
		g_free(raw);
		g_free(path);
		files++;
	}
	g_dir_close(d);
	assert_true(files >= 5);
	assert_true(whole >= 5);
}

static int
setup(void **state)
{
	(void)state;
	*(void **)&real_decode_date = dlsym(RTLD_NEXT, "g_mime_utils_header_decode_date");
	*(void **)&real_decode_message_id = dlsym(RTLD_NEXT, "g_mime_utils_decode_message_id");
	if (real_decode_date == NULL || real_decode_message_id == NULL)
		return -1;
	g_mime_init();
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	g_mime_shutdown();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id_table),
		cmocka_unit_test(test_date_table),
		cmocka_unit_test(test_date_calendar),
		cmocka_unit_test(test_date_zones),
		cmocka_unit_test(test_first_field),
		cmocka_unit_test(test_corpus),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

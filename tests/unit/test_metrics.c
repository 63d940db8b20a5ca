/* mailmill - ISC licence, see LICENSE */
/*
 * The daemon's metrics in memory (metrics.h): counters by account, the
 * rendered text, the dirty flag, the store's gauges from a real SQLite
 * store, the file written by rename; and /metrics and /healthz over real
 * HTTP on loopback (metrics_http.h), fetched with libcurl.
 */
#define _GNU_SOURCE
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
#include <curl/curl.h>
#include <glib.h>

#include "daemon/sched/metrics.h"
#include "daemon/sched/metrics_http.h"

static char topdir[] = "/tmp/mm-test-metrics.XXXXXX";
#include "tests/unit/tmpdir.h"

static void
assert_has(const char *text, const char *line)
{
	if (strstr(text, line) == NULL)
		fail_msg("missing: %s", line);
}

static void
test_counters(void **state)
{
	metrics *m = metrics_new();
	run_stats s;
	size_t len;
	char *t;

	(void)state;
	memset(&s, 0, sizeof s);
	s.fetched = 3;
	s.bytes = 300;
	s.deleted = 2;
	s.deleted_bytes = 200;
	s.moved = 4;
	s.flagged = 5;
	metrics_verdict(m, "zed", "archive", "done", 100);
	metrics_verdict(m, "zed", "archive", "done", 100);
	metrics_verdict(m, "zed", NULL, "keep", 10);
	metrics_verdict(m, "zed", "filter", "defer", 7);
	metrics_quarantined(m, "zed", 5);
	metrics_run(m, "zed", &s, 1, 1700000000, 1.25);
	metrics_run(m, "zed", NULL, 0, 1700000060, 0.5);
	metrics_signin(m, "alpha", 1);
	t = metrics_render(m, NULL, &len, NULL);
	assert_int_equal(strlen(t), len);
	assert_has(t, "mailmill_messages_fetched_total{account=\"zed\"} 3\n");
	assert_has(t, "mailmill_messages_deleted_total{account=\"zed\"} 2\n");
	assert_has(t, "mailmill_deleted_bytes_total{account=\"zed\"} 200\n");
	assert_has(t, "mailmill_messages_moved_total{account=\"zed\"} 4\n");
	assert_has(t, "mailmill_messages_flagged_total{account=\"zed\"} 5\n");
	assert_has(t, "mailmill_messages_processed_total{account=\"zed\"} 4\n");
	assert_has(t, "mailmill_messages_kept_total{account=\"zed\"} 1\n");
	assert_has(t, "mailmill_kept_bytes_total{account=\"zed\"} 10\n");
	assert_has(t, "mailmill_messages_deferred_total{account=\"zed\"} 1\n");
	assert_has(t, "mailmill_messages_quarantined_total{account=\"zed\"} 1\n");
	assert_has(t, "mailmill_runs_total{account=\"zed\"} 2\n");
	assert_has(t, "mailmill_runs_failed_total{account=\"zed\"} 1\n");
	/* the failed run does not move the last success */
	assert_has(t, "mailmill_last_success_timestamp_seconds{account=\"zed\"} 1700000000\n");
	assert_has(t, "mailmill_last_run_duration_seconds{account=\"zed\"} 0.500\n");
	assert_has(t, "mailmill_stage_verdicts_total{account=\"zed\",stage=\"archive\",verdict=\"done\"} 2\n");
	assert_has(t, "mailmill_stage_verdicts_total{account=\"zed\",stage=\"\",verdict=\"keep\"} 1\n");
	/* the gauge only for an account whose sign-in state was set */
	assert_has(t, "mailmill_account_needs_signin{account=\"alpha\"} 1\n");
	assert_null(strstr(t, "mailmill_account_needs_signin{account=\"zed\"}"));
	/* no store: no store gauges */
	assert_null(strstr(t, "mailmill_outbox_messages"));
	g_free(t);
	metrics_free(&m);
	assert_null(m);
}

/* Accounts come in any order (start, reload): the text is sorted, and a
 * label value is escaped. */
static void
test_sorted_and_escaped(void **state)
{
	metrics *m = metrics_new();
	const char *names[] = { "m", "c", "x", "a", "q\"uote", "b" };
	size_t len;
	char *t;
	const char *p, *prev = NULL;

	(void)state;
	for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
		metrics_run(m, names[i], NULL, 1, 1, 0.1);
	t = metrics_render(m, NULL, &len, NULL);
	assert_has(t, "mailmill_runs_total{account=\"q\\\"uote\"} 1\n");
	/* runs_total's lines in name order */
	for (p = strstr(t, "\nmailmill_runs_total{"); p != NULL;
	     p = strstr(p + 1, "\nmailmill_runs_total{")) {
		if (prev != NULL)
			assert_true(strcmp(prev, p) < 0);
		prev = p;
	}
	assert_non_null(prev);
	g_free(t);
	metrics_free(&m);
}

static void
test_dirty(void **state)
{
	metrics *m = metrics_new();
	size_t len;

	(void)state;
	assert_true(metrics_dirty(m));          /* never written */
	g_free(metrics_render(m, NULL, &len, NULL));
	assert_false(metrics_dirty(m));
	metrics_verdict(m, "a", "s", "done", 1);
	assert_true(metrics_dirty(m));
	g_free(metrics_render(m, NULL, &len, NULL));
	assert_false(metrics_dirty(m));
	metrics_signin(m, "a", 0);
	assert_true(metrics_dirty(m));
	metrics_free(&m);
}

/* A real store: the outbox and quarantine gauges, and the file written
 * whole (rename), mode 0644, no temporary file left. */
static void
test_store_and_file(void **state)
{
	metrics *m = metrics_new();
	store *st = NULL;
	char *err = NULL, *t, *path, *text = NULL;
	store_outbox_row row;
	struct stat sb;
	size_t len;
	int ok = -1, attempts = 0;

	(void)state;
	assert_int_equal(store_open(topdir, 0, &st, &err), 0);
	memset(&row, 0, sizeof row);
	row.account = "a";
	row.env_from = "";
	row.rcpts = "x@example.org";
	row.message = "Subject: x\r\n\r\nbody\r\n";
	row.len = strlen(row.message);
	assert_int_equal(store_outbox_add(st, &row, 1700000000, &err), 0);
	assert_int_equal(store_ledger_fail(st, "a", "uid1", "crashed", &attempts, &err), 0);
	assert_int_equal(store_ledger_quarantine(st, "a", "uid1", &err), 0);
	metrics_run(m, "a", NULL, 1, 1, 0.1);
	t = metrics_render(m, st, &len, &ok);
	assert_int_equal(ok, 1);
	assert_has(t, "mailmill_outbox_messages{state=\"queued\"} 1\n");
	assert_has(t, "mailmill_outbox_messages{state=\"sent\"} 0\n");
	assert_has(t, "mailmill_quarantine_messages{account=\"a\"} 1\n");
	assert_has(t, "mailmill_outbox_unknown_outcome_total 0\n");
	g_free(t);

	assert_int_equal(metrics_write(m, topdir, st, &err), 0);
	path = g_strdup_printf("%s/metrics.prom", topdir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0644);
	assert_true(g_file_get_contents(path, &text, &len, NULL));
	assert_has(text, "mailmill_runs_total{account=\"a\"} 1\n");
	g_free(text);
	g_free(path);
	path = g_strdup_printf("%s/.metrics.prom.tmp", topdir);
	assert_int_equal(access(path, F_OK), -1);
	g_free(path);

	/* a directory that is not there: an error naming the file */
	assert_int_equal(metrics_write_text("/nonexistent/mm-dir", "x\n", 2, &err), -1);
	assert_non_null(strstr(err, "/nonexistent/mm-dir/.metrics.prom.tmp"));
	free(err);
	store_close(&st);
	metrics_free(&m);
}

/* ------------------------------------------------------------ HTTP */

static size_t
test_curl_body(char *p, size_t sz, size_t n, void *arg)
{
	g_string_append_len(arg, p, (gssize)(sz * n));
	return sz * n;
}

/* GET (or POST) a path: the status code, the body into *body_r (g_free). */
static long
test_get(unsigned port, const char *path, int post, char **body_r)
{
	CURL *c = curl_easy_init();
	GString *body = g_string_new(NULL);
	char *url = g_strdup_printf("http://127.0.0.1:%u%s", port, path);
	long code = 0;

	assert_non_null(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, test_curl_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	if (post)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c);
	g_free(url);
	*body_r = g_string_free(body, FALSE);
	return code;
}

static void
test_http(void **state)
{
	metrics_http *h = NULL;
	metrics *m = metrics_new();
	char *err = NULL, *body, *text;
	unsigned port;
	size_t len;

	(void)state;
	assert_int_equal(metrics_http_start("127.0.0.1:0", &h, &err), 0);
	port = metrics_http_port(h);
	assert_true(port > 0);
	/* nothing published yet */
	assert_int_equal(test_get(port, "/metrics", 0, &body), 503);
	g_free(body);
	metrics_run(m, "acct", NULL, 1, 1700000000, 0.25);
	text = metrics_render(m, NULL, &len, NULL);
	metrics_http_publish(h, g_strdup(text), len);
	assert_int_equal(test_get(port, "/metrics", 0, &body), 200);
	assert_string_equal(body, text);
	g_free(body);
	/* a newer text replaces it */
	metrics_run(m, "acct", NULL, 1, 1700000060, 0.25);
	g_free(text);
	text = metrics_render(m, NULL, &len, NULL);
	metrics_http_publish(h, g_strdup(text), len);
	assert_int_equal(test_get(port, "/metrics", 0, &body), 200);
	assert_non_null(strstr(body, "mailmill_runs_total{account=\"acct\"} 2\n"));
	g_free(body);
	g_free(text);

	metrics_http_beat(h, 1);
	assert_int_equal(test_get(port, "/healthz", 0, &body), 200);
	assert_string_equal(body, "ok\n");
	g_free(body);
	metrics_http_beat(h, 0);
	assert_int_equal(test_get(port, "/healthz", 0, &body), 503);
	assert_non_null(strstr(body, "store"));
	g_free(body);
	assert_int_equal(test_get(port, "/other", 0, &body), 404);
	g_free(body);
	assert_int_equal(test_get(port, "/metrics", 1, &body), 405);
	g_free(body);
	metrics_http_stop(&h);
	assert_null(h);
	metrics_free(&m);
}

static void
test_http_bad_address(void **state)
{
	metrics_http *h = NULL;
	char *err = NULL;

	(void)state;
	assert_int_equal(metrics_http_start("localhost:9101", &h, &err), -1);
	assert_non_null(strstr(err, "metrics_listen"));
	free(err);
	assert_int_equal(metrics_http_start("127.0.0.1", &h, &err), -1);
	assert_non_null(strstr(err, "address:port"));
	free(err);
	assert_null(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_sorted_and_escaped),
		cmocka_unit_test(test_dirty),
		cmocka_unit_test(test_store_and_file),
		cmocka_unit_test(test_http),
		cmocka_unit_test(test_http_bad_address),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}

/* mailmill - ISC licence, see LICENSE */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <glib.h>

#include "daemon/oauth/http.h"
#include "proto/err.h"

typedef struct http_sink {
	GString *buf;
	size_t max;
	int too_big;
} http_sink;

static size_t
http_write(char *data, size_t size, size_t n, void *arg)
{
	http_sink *s = arg;
	size_t len;

	if (n != 0 && size > SIZE_MAX / n)
		return 0;
	len = size * n;
	if (s->buf->len + len > s->max) {
		s->too_big = 1;
		return 0;  /* libcurl stops with CURLE_WRITE_ERROR */
	}
	g_string_append_len(s->buf, data, (gssize)len);
	return len;
}

static int http_ready;

/* libcurl's global state, once per process (the daemon forks no threads). */
static int
http_init(char **err_r)
{
	if (!http_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			*err_r = strdup("libcurl could not be initialised");
			return -1;
		}
		http_ready = 1;
	}
	return 0;
}

/* The form body: name=value&..., each URL-encoded. */
static char *
http_form(CURL *c, const http_field *fields, size_t n)
{
	GString *body = g_string_new(NULL);

	for (size_t i = 0; i < n; i++) {
		char *k = curl_easy_escape(c, fields[i].name, 0);
		char *v = curl_easy_escape(c, fields[i].value, 0);

		if (k == NULL || v == NULL) {
			curl_free(k);
			curl_free(v);
			memset(body->str, 0, body->len);
			g_string_free(body, TRUE);
			return NULL;
		}
		g_string_append_printf(body, "%s%s=%s", i ? "&" : "", k, v);
		memset(v, 0, strlen(v));
		curl_free(k);
		curl_free(v);
	}
	return g_string_free(body, FALSE);
}

int
http_post_form(const char *url, const http_field *fields, size_t n_fields, const char *ca_file,
	       long timeout_s, size_t max_bytes, http_answer *ans, char **err_r)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	http_sink sink = { g_string_new(NULL), max_bytes, 0 };
	struct curl_slist *hdrs = NULL;
	char *body = NULL, *ct = NULL;
	CURLcode rc = CURLE_OK;
	CURL *c = NULL;
	int ok;

	memset(ans, 0, sizeof *ans);
	*err_r = NULL;
	if (strncmp(url, "https://", 8) != 0) {
		err_set(err_r, "%s: not an https URL", url);
		goto fail;
	}
	if (http_init(err_r) < 0)
		goto fail;
	if ((c = curl_easy_init()) == NULL || (body = http_form(c, fields, n_fields)) == NULL) {
		*err_r = strdup("out of memory");
		goto fail;
	}
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	hdrs = hdrs != NULL ? curl_slist_append(hdrs, "Expect:") : NULL;
	ok = hdrs != NULL &&
	     curl_easy_setopt(c, CURLOPT_URL, url) == CURLE_OK &&
	     curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https") == CURLE_OK &&
	     curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
	     curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
	     curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
	     curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
	     curl_easy_setopt(c, CURLOPT_VERBOSE, 0L) == CURLE_OK &&
	     curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s) == CURLE_OK &&
	     curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, timeout_s) == CURLE_OK &&
	     curl_easy_setopt(c, CURLOPT_USERAGENT, "mailmill") == CURLE_OK &&
	     curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs) == CURLE_OK &&
	     curl_easy_setopt(c, CURLOPT_POSTFIELDS, body) == CURLE_OK &&
	     curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body)) == CURLE_OK &&
	     curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_write) == CURLE_OK &&
	     curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink) == CURLE_OK &&
	     curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf) == CURLE_OK &&
	     (ca_file == NULL || curl_easy_setopt(c, CURLOPT_CAINFO, ca_file) == CURLE_OK);
	if (!ok) {
		*err_r = strdup("libcurl refused an option");
		goto fail;
	}
	rc = curl_easy_perform(c);
	if (sink.too_big) {
		err_set(err_r, "%s: the answer is larger than %zu bytes", url, max_bytes);
		goto fail;
	}
	if (rc != CURLE_OK) {
		/* libcurl's messages name the host and the cause, never the body. */
		err_set(err_r, "%s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
		goto fail;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &ans->status);
	if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct != NULL)
		ans->content_type = g_strdup(ct);
	ans->len = sink.buf->len;
	ans->body = g_string_free(sink.buf, FALSE);
	sink.buf = NULL;
	explicit_bzero(body, strlen(body));
	g_free(body);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	return 0;
fail:
	if (body != NULL) {
		explicit_bzero(body, strlen(body));
		g_free(body);
	}
	if (sink.buf != NULL)
		g_string_free(sink.buf, TRUE);
	curl_slist_free_all(hdrs);
	if (c != NULL)
		curl_easy_cleanup(c);
	if (*err_r == NULL)
		*err_r = strdup("out of memory");
	return -1;
}

void
http_answer_clear(http_answer *ans)
{
	if (ans->body != NULL) {
		explicit_bzero(ans->body, ans->len);
		g_free(ans->body);
	}
	g_free(ans->content_type);
	memset(ans, 0, sizeof *ans);
}

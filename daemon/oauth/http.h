/* mailmill - ISC licence, see LICENSE */
#ifndef MM_HTTP_H
#define MM_HTTP_H
/*
 * The daemon's one HTTP client (libcurl): a form POST to a token endpoint.
 * https only, TLS verified (system store or ca_file), no redirects, a
 * deadline for the whole request, an answer of bounded size.  Nothing of
 * the request (it holds secrets) goes into an error message, and libcurl's
 * verbose output is never switched on.
 */
#include <stddef.h>

typedef struct http_field {
	const char *name, *value;   /* URL-encoded by http_post_form */
} http_field;

typedef struct http_answer {
	long status;                /* HTTP status, e.g. 200, 400 */
	char *body;                 /* NUL-terminated, allocated (free); may be "" */
	size_t len;
	char *content_type;         /* allocated or NULL */
} http_answer;

/*
 * POST the fields as application/x-www-form-urlencoded to url.  0 when an
 * HTTP answer came (any status: the caller reads the OAuth error in it),
 * -1 and *err_r (allocated) when none did: refused, TLS failure, deadline
 * passed (timeout_s), answer larger than max_bytes.
 */
int http_post_form(const char *url, const http_field *fields, size_t n_fields,
		   const char *ca_file, long timeout_s, size_t max_bytes, http_answer *ans,
		   char **err_r);
void http_answer_clear(http_answer *ans);
#endif

/* mailmill - ISC licence, see LICENSE */
#include <config.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <glib.h>
#include <microhttpd.h>
#include "daemon/sched/metrics_http.h"
#include "daemon/core/cfg.h"
#include "proto/err.h"

typedef enum MHD_Result MHD_Result_t;   /* libmicrohttpd >= 0.9.73 (configure.ac) */

/* A published text, shared by the responses that still send it. */
typedef struct metrics_snap {
	gint ref;
	size_t len;
	char *text;
} metrics_snap;

struct metrics_http {
	struct MHD_Daemon *d;
	GMutex lock;
	metrics_snap *snap;     /* under lock */
	gint beat_s;            /* monotonic seconds of the last beat (atomic) */
	gint store_ok;          /* atomic */
};

static void
metrics_snap_unref(metrics_snap *s)
{
	if (s != NULL && g_atomic_int_dec_and_test(&s->ref)) {
		g_free(s->text);
		g_free(s);
	}
}

static void
metrics_http_free_snap(void *cls)
{
	metrics_snap_unref(cls);
}

static gint
metrics_http_now_s(void)
{
	return (gint)(g_get_monotonic_time() / G_USEC_PER_SEC);
}

/* Queue response r (NULL: it could not be made) and let go of it. */
static MHD_Result_t
metrics_http_send(struct MHD_Connection *conn, unsigned code, const char *type,
		  struct MHD_Response *r)
{
	MHD_Result_t rc;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	rc = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return rc;
}

static MHD_Result_t
metrics_http_text(struct MHD_Connection *conn, unsigned code, const char *text)
{
	return metrics_http_send(conn, code, "text/plain; charset=utf-8",
				 MHD_create_response_from_buffer(strlen(text), (void *)text,
								 MHD_RESPMEM_PERSISTENT));
}

static MHD_Result_t
metrics_http_metrics(metrics_http *h, struct MHD_Connection *conn)
{
	struct MHD_Response *r;
	metrics_snap *s;

	g_mutex_lock(&h->lock);
	s = h->snap;
	if (s != NULL)
		g_atomic_int_inc(&s->ref);
	g_mutex_unlock(&h->lock);
	if (s == NULL)
		return metrics_http_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "no metrics yet\n");
	r = MHD_create_response_from_buffer_with_free_callback_cls(s->len, s->text,
								   metrics_http_free_snap, s);
	if (r == NULL) {
		metrics_snap_unref(s);
		return MHD_NO;
	}
	return metrics_http_send(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", r);
}

static MHD_Result_t
metrics_http_health(metrics_http *h, struct MHD_Connection *conn)
{
	if (metrics_http_now_s() - g_atomic_int_get(&h->beat_s) > METRICS_HTTP_STALE_S)
		return metrics_http_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
					 "the scheduler loop does not answer\n");
	if (!g_atomic_int_get(&h->store_ok))
		return metrics_http_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
					 "the store does not answer\n");
	return metrics_http_text(conn, MHD_HTTP_OK, "ok\n");
}

static MHD_Result_t
metrics_http_handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
		    const char *version, const char *upload, size_t *upload_len, void **con_cls)
{
	metrics_http *h = cls;

	(void)version;
	(void)upload;
	(void)con_cls;
	if (*upload_len != 0)
		return MHD_NO;    /* a GET has no body: drop the connection */
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return metrics_http_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only\n");
	if (strcmp(url, "/metrics") == 0)
		return metrics_http_metrics(h, conn);
	if (strcmp(url, "/healthz") == 0)
		return metrics_http_health(h, conn);
	return metrics_http_text(conn, MHD_HTTP_NOT_FOUND, "/metrics or /healthz\n");
}

int
metrics_http_start(const char *addr, metrics_http **h_r, char **err_r)
{
	struct sockaddr_storage sa;
	metrics_http *h;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
	char *why = NULL;

	if (cfg_listen_addr(addr, &sa, &why) < 0) {
		*err_r = err_fmt("metrics_listen %s", why);
		free(why);
		return -1;
	}
	if (sa.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	h = g_new0(metrics_http, 1);
	g_mutex_init(&h->lock);
	h->beat_s = metrics_http_now_s();
	h->store_ok = 1;
	errno = 0;
	h->d = MHD_start_daemon(flags, 0, NULL, NULL, metrics_http_handle, h,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				/* A scraper or a probe, not a crowd. */
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)16,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
				MHD_OPTION_END);
	if (h->d == NULL) {
		*err_r = err_fmt("cannot listen on %s for metrics: %s", addr,
				 errno != 0 ? strerror(errno) : "libmicrohttpd refused");
		g_mutex_clear(&h->lock);
		g_free(h);
		return -1;
	}
	*h_r = h;
	return 0;
}

unsigned
metrics_http_port(const metrics_http *h)
{
	const union MHD_DaemonInfo *i = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);

	return i != NULL ? i->port : 0;
}

void
metrics_http_stop(metrics_http **hp)
{
	metrics_http *h;

	if (hp == NULL || *hp == NULL)
		return;
	h = *hp;
	MHD_stop_daemon(h->d);
	metrics_snap_unref(h->snap);
	g_mutex_clear(&h->lock);
	g_free(h);
	*hp = NULL;
}

void
metrics_http_publish(metrics_http *h, char *text, size_t len)
{
	metrics_snap *s = g_new(metrics_snap, 1), *old;

	s->ref = 1;
	s->len = len;
	s->text = text;
	g_mutex_lock(&h->lock);
	old = h->snap;
	h->snap = s;
	g_mutex_unlock(&h->lock);
	metrics_snap_unref(old);
}

void
metrics_http_beat(metrics_http *h, int store_ok)
{
	g_atomic_int_set(&h->beat_s, metrics_http_now_s());
	g_atomic_int_set(&h->store_ok, store_ok != 0);
}

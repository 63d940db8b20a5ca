/* mailmill - ISC licence, see LICENSE */
#ifndef MM_METRICS_HTTP_H
#define MM_METRICS_HTTP_H
/*
 * metrics_listen: the metrics over HTTP (libmicrohttpd, in a thread of its
 * own), for scrapers and container health checks:
 *
 *   GET /metrics   the latest text the main loop published (Prometheus)
 *   GET /healthz   200 "ok" while the scheduler's loop beats and the store
 *                  answered its last check, else 503 with the reason
 *
 * The HTTP thread never touches the store, a plugin or the scheduler: the
 * main loop hands it a snapshot (metrics_http_publish) and a heartbeat
 * (metrics_http_beat); it only copies pointers under a mutex.  Any other
 * path is 404, any other method 405.
 */
#include <stddef.h>

typedef struct metrics_http metrics_http;

/* The loop counts as dead when it has not beaten for this long. */
#define METRICS_HTTP_STALE_S 10

/*
 * Listen on addr ("127.0.0.1:9101", "[::1]:9101": cfg_listen_addr()).  0 and *h_r, or -1 and *err_r (allocated).
 */
int metrics_http_start(const char *addr, metrics_http **h_r, char **err_r);
/* The port it listens on (the one the kernel chose for port 0). */
unsigned metrics_http_port(const metrics_http *h);
/* Stop the thread and free; NULL is fine. */
void metrics_http_stop(metrics_http **h);
/* Serve this text from now on (taken over: g_free'd when no longer served). */
void metrics_http_publish(metrics_http *h, char *text, size_t len);
/* The main loop is alive; store_ok: its last store check succeeded. */
void metrics_http_beat(metrics_http *h, int store_ok);
#endif

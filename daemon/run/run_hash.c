/* mailmill - ISC licence, see LICENSE */
/*
 * A message's SHA-256, here or in a thread of its own (run_hash.h).  The
 * IMAP run needs every message's digest before its pipeline (a message seen
 * under another key is not processed again); on mixed messages hashing in
 * the worker's own thread cost about a tenth of the run (bench/README.md).
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include "daemon/run/run_hash.h"

struct run_hasher {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int started, stop;
	int busy;              /* a job is set and not yet done */
	const char *data;      /* the job, borrowed from the caller */
	size_t len;
	char hex[65];          /* the last job's result */
	EVP_MD *md;            /* the thread's own */
	EVP_MD_CTX *ctx;
};

int
run_hash_sha256(struct evp_md_st **md, struct evp_md_ctx_st **ctx, const char *data,
		size_t len, char hex[65])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char out[EVP_MAX_MD_SIZE];
	unsigned n = 0;

	if (*md == NULL)
		*md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (*ctx == NULL)
		*ctx = EVP_MD_CTX_new();
	if (*md == NULL || *ctx == NULL || EVP_DigestInit_ex2(*ctx, *md, NULL) != 1 ||
	    EVP_DigestUpdate(*ctx, data, len) != 1 || EVP_DigestFinal_ex(*ctx, out, &n) != 1 ||
	    n != 32) {
		hex[0] = '\0';
		return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		hex[2 * i] = digits[out[i] >> 4];
		hex[2 * i + 1] = digits[out[i] & 15];
	}
	hex[64] = '\0';
	return 0;
}

static void *
run_hasher_main(void *arg)
{
	run_hasher *h = arg;

	pthread_mutex_lock(&h->lock);
	for (;;) {
		while (!h->busy && !h->stop)
			pthread_cond_wait(&h->cond, &h->lock);
		if (!h->busy)
			break;
		pthread_mutex_unlock(&h->lock);
		/* data is the caller's and stays put until run_hasher_wait */
		(void)run_hash_sha256(&h->md, &h->ctx, h->data, h->len, h->hex);
		pthread_mutex_lock(&h->lock);
		h->busy = 0;
		pthread_cond_broadcast(&h->cond);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

run_hasher *
run_hasher_new(void)
{
	run_hasher *h = calloc(1, sizeof *h);

	if (h == NULL)
		return NULL;
	if (pthread_mutex_init(&h->lock, NULL) != 0) {
		free(h);
		return NULL;
	}
	if (pthread_cond_init(&h->cond, NULL) != 0) {
		pthread_mutex_destroy(&h->lock);
		free(h);
		return NULL;
	}
	return h;
}

/* The thread, with every signal blocked: a SIGTERM must reach the worker's
 * own thread, whose blocked read it interrupts. */
static int
run_hasher_thread(run_hasher *h)
{
	sigset_t all, old;
	int rc;

	if (h->started)
		return 0;
	sigfillset(&all);
	if (pthread_sigmask(SIG_SETMASK, &all, &old) != 0)
		return -1;
	rc = pthread_create(&h->thread, NULL, run_hasher_main, h);
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return -1;
	h->started = 1;
	return 0;
}

int
run_hasher_start(run_hasher *h, const char *data, size_t len)
{
	char spare[65];

	if (h == NULL || run_hasher_thread(h) < 0)
		return -1;
	run_hasher_wait(h, spare);
	pthread_mutex_lock(&h->lock);
	h->data = data;
	h->len = len;
	h->hex[0] = '\0';
	h->busy = 1;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	return 0;
}

void
run_hasher_wait(run_hasher *h, char hex[65])
{
	hex[0] = '\0';
	if (h == NULL || !h->started)
		return;
	pthread_mutex_lock(&h->lock);
	while (h->busy)
		pthread_cond_wait(&h->cond, &h->lock);
	memcpy(hex, h->hex, sizeof h->hex);
	h->data = NULL;
	pthread_mutex_unlock(&h->lock);
}

void
run_hasher_free(run_hasher *h)
{
	if (h == NULL)
		return;
	if (h->started) {
		pthread_mutex_lock(&h->lock);
		h->stop = 1;
		pthread_cond_broadcast(&h->cond);
		pthread_mutex_unlock(&h->lock);
		pthread_join(h->thread, NULL);
	}
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	EVP_MD_CTX_free(h->ctx);
	EVP_MD_free(h->md);
	free(h);
}

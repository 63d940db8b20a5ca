/* mailmill - ISC licence, see LICENSE */
#ifndef MM_RUN_HASH_H
#define MM_RUN_HASH_H
/*
 * A thread that computes a message's SHA-256 while the run does something
 * else (run_fetch: the next message's digest while this one goes through
 * the pipeline).  One job at a time.  The caller owns the data and must
 * not change or free it until run_hasher_wait has returned.
 */
#include <stddef.h>

typedef struct run_hasher run_hasher;

/* A hasher whose thread starts with its first job (allocated; NULL when
 * out of memory).  Free with run_hasher_free. */
run_hasher *run_hasher_new(void);
/* Start hashing data[0..len): 0, or -1 if no thread could be made (the
 * caller hashes the data itself).  Waits for a job still running first. */
int run_hasher_start(run_hasher *h, const char *data, size_t len);
/* Wait for the job started last: its lowercase hex digest into hex, or ""
 * if it failed or none was started. */
void run_hasher_wait(run_hasher *h, char hex[65]);
/* End the thread (after its job) and free h; NULL is fine. */
void run_hasher_free(run_hasher *h);
/* data[0..len)'s SHA-256 as lowercase hex into hex, in this thread: 0,
 * or -1 (hex "").  *md and *ctx are made on first use (OpenSSL looks the
 * algorithm up once, not on every digest); the caller frees them
 * (EVP_MD_free, EVP_MD_CTX_free). */
int run_hash_sha256(struct evp_md_st **md, struct evp_md_ctx_st **ctx, const char *data,
		    size_t len, char hex[65]);
#endif

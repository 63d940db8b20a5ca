/* mailmill - ISC licence, see LICENSE */
#ifndef MM_B64_H
#define MM_B64_H
/*
 * The one base64 of proto/ (RFC 4648 section 4, the standard alphabet with
 * padding), for SASL.  Encoding allocates exactly what the input needs;
 * decoding is strict (what a server sends us is checked, never repaired)
 * and bounded by the caller.  Secrets pass through both: free such results
 * with b64_free_secret, which wipes them first.
 */
#include <stddef.h>

/* Characters b64_encode makes of len bytes (without the NUL); 0 on overflow
 * for a non-empty input. */
size_t b64_encoded_len(size_t len);
/*
 * Encode: an allocated, NUL-terminated string (caller frees), its length in
 * *outlen_r when not NULL.  NULL when memory runs out (errno ENOMEM) or the
 * length would overflow (EOVERFLOW).  An empty input gives "".
 */
char *b64_encode(const void *data, size_t len, size_t *outlen_r);
/*
 * Decode exactly len characters: a multiple of 4, only the alphabet, "="
 * only as the padding of the last group and with zero bits under it.  No
 * white space is skipped.  The result (allocated, caller frees; one NUL
 * past *outlen_r so text can be used as a string) is at most max bytes.
 * 0, or -1 with errno EINVAL (not base64), EFBIG (over max) or ENOMEM.
 */
int b64_decode(const char *in, size_t len, size_t max, unsigned char **out_r, size_t *outlen_r);
/* explicit_bzero(p, len) then free(p); NULL is fine. */
void b64_free_secret(void *p, size_t len);
#endif

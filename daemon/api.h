/* mailmill - ISC licence, see LICENSE */
#ifndef MM_API_H
#define MM_API_H
/*
 * What stands behind the opaque handles of include/mailmill/plugin.h.  Only
 * daemon/ sees these structs; daemon/api.c implements the mm_* functions.
 */
#include <stddef.h>
#include <mailmill/plugin.h>

struct mm_ctx {
	const char *account;   /* borrowed from the configuration */
	const char *stage;     /* borrowed from the configuration */
	int dry_run;
	int errors;            /* mm_ctx_error calls so far */
};

struct mm_msg {
	GMimeMessage *mime;    /* owned by the run */
	const char *raw;       /* borrowed: the fetched bytes */
	size_t len;
	const char *uid;
	const char *account;
	long long date;
};
#endif

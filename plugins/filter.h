/* mailmill - ISC licence, see LICENSE */
#ifndef MM_FILTER_H
#define MM_FILTER_H
/*
 * The `filter` plugin's rules and how they match (filter_match.c).  Matching
 * reads only the parsed message and its size, and calls nothing of the
 * daemon, so tests/unit/test_filter.c runs it without one.
 */
#include <regex.h>
#include <stddef.h>
#include <mailmill/plugin.h>

/* Text of the decoded body read per message (the rest is not searched). */
#define FILTER_BODY_MAX (1024 * 1024)

typedef enum { FILTER_ACT_VERDICT, FILTER_ACT_HEADER, FILTER_ACT_GOTO } filter_action;

typedef struct filter_rule {
	char *name;               /* `name`, or "rule N" */
	/* Conditions: every one that is set must hold; at least one is set. */
	char *header;             /* header name (any case); NULL: no header test */
	regex_t header_re;        /* compiled `match`, valid when header != NULL */
	char **from;              /* NULL-terminated, lower case; NULL: no test */
	char **to;
	long long size_over;      /* -1: no test; else size > size_over */
	long long size_under;     /* -1: no test; else size < size_under */
	int attachment;           /* -1: no test; 0 / 1: must have none / some */
	int has_body;
	regex_t body_re;          /* compiled `body`, valid when has_body */
	/* The action. */
	filter_action act;
	mm_verdict verdict;
	char *add_name, *add_value;
	char *goto_stage;
} filter_rule;

/* What a message's rules look at, worked out once per message when first needed. */
typedef struct filter_msg {
	GMimeMessage *m;          /* borrowed */
	size_t size;
	int attach;               /* -1: not yet known */
	char *body;               /* NULL: not yet decoded (g_malloc'd) */
	char **senders, **rcpts;  /* NULL: not yet parsed (g_strfreev) */
} filter_msg;

void filter_msg_init(filter_msg *fm, GMimeMessage *m, size_t size);
void filter_msg_clear(filter_msg *fm);

/* Compile pattern as a POSIX extended regex; 0, or -1 and *err_r (g_malloc'd). */
int filter_regex_compile(regex_t *re, const char *pattern, int nocase, char **err_r);
/* 1 if some header called name (any case), unfolded and RFC 2047-decoded, matches re. */
int filter_header_matches(GMimeMessage *m, const char *name, const regex_t *re);
/* 1 if addr (any case) is named by list: "user@dom" the address, "dom" or
 * "@dom" its domain, ".dom" any domain below dom. */
int filter_addr_listed(const char *const *list, const char *addr);
/* The message's senders (Return-Path, From, Sender) and recipients (To, Cc,
 * Delivered-To, X-Original-To), lower case; borrowed from fm. */
char **filter_msg_senders(filter_msg *fm);
char **filter_msg_rcpts(filter_msg *fm);
/* 1 if some part is an attachment (disposition attachment, a file name, or an
 * attached message). */
int filter_msg_has_attachment(filter_msg *fm);
/* The text parts (text/any) that are not attachments, decoded from their transfer
 * encoding and charset to UTF-8, one after another (at most FILTER_BODY_MAX
 * bytes; NULs become spaces).  Borrowed from fm. */
const char *filter_msg_body(filter_msg *fm);
/* 1 if every condition of r holds for the message. */
int filter_rule_matches(const filter_rule *r, filter_msg *fm);
void filter_rule_clear(filter_rule *r);
#endif

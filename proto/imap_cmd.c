/* mailmill - ISC licence, see LICENSE */
/*
 * Mailbox verbs (SELECT, EXAMINE, CREATE, LIST), with the argument
 * encodings they need: quoted strings and modified UTF-7 mailbox names.
 * The changes on sets of UIDs are in imap_change.c.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/b64.h"
#include "proto/imap.h"
#include "proto/imap_int.h"

int
imap_append_quoted(buf *line, const char *str)
{
	const unsigned char *p;

	if (buf_append(line, "\"", 1) < 0)
		return -1;
	for (p = (const unsigned char *)str; *p != '\0'; p++) {
		if (*p < 0x20 || *p > 0x7e)
			return -1;
		if ((*p == '"' || *p == '\\') && buf_append(line, "\\", 1) < 0)
			return -1;
		if (buf_append(line, p, 1) < 0)
			return -1;
	}
	return buf_append(line, "\"", 1);
}

/* Next code point of UTF-8 at *p: the value, or -1 for invalid input. */
static long
utf8_next(const unsigned char **p)
{
	const unsigned char *s = *p;
	long cp;
	int n, i;

	if (s[0] < 0x80)
		n = 0, cp = s[0];
	else if ((s[0] & 0xe0) == 0xc0)
		n = 1, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 2, cp = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		n = 3, cp = s[0] & 0x07;
	else
		return -1;
	for (i = 1; i <= n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*p = s + n + 1;
	return cp;
}

/* A run of UTF-16 units as "&...-" (RFC 3501 5.1.3: base64 with ',' for '/', no '='). */
static int
flush_run(buf *out, const unsigned char *u16, size_t n)
{
	char *b;
	size_t len, i;
	int r;

	if (n == 0)
		return 0;
	if ((b = b64_encode(u16, n, &len)) == NULL)
		return -1;
	while (len > 0 && b[len - 1] == '=')
		len--;
	for (i = 0; i < len; i++)
		if (b[i] == '/')
			b[i] = ',';
	r = buf_append(out, "&", 1) < 0 || buf_append(out, b, len) < 0 ||
	    buf_append(out, "-", 1) < 0 ? -1 : 0;
	free(b);
	return r;
}

char *
imap_utf7_encode(const char *utf8)
{
	buf out = { .max = 8 * IMAP_MAILBOX_MAX + 16 };
	unsigned char run[4 * IMAP_MAILBOX_MAX];
	size_t nrun = 0;
	const unsigned char *p = (const unsigned char *)utf8;

	if (strlen(utf8) > IMAP_MAILBOX_MAX) {
		errno = EINVAL;
		return NULL;
	}
	while (*p != '\0') {
		long cp = utf8_next(&p);

		if (cp < 0 || cp < 0x20 || cp == 0x7f) {
			buf_free(&out);
			errno = EINVAL;
			return NULL;
		}
		if (cp < 0x7f) {
			if (flush_run(&out, run, nrun) < 0 ||
			    buf_append(&out, cp == '&' ? "&-" : (const char *)&(char){ (char)cp },
				       cp == '&' ? 2 : 1) < 0)
				goto nomem;
			nrun = 0;
			continue;
		}
		if (cp >= 0x10000) {
			long v = cp - 0x10000, hi = 0xd800 + (v >> 10), lo = 0xdc00 + (v & 0x3ff);

			run[nrun++] = (unsigned char)(hi >> 8);
			run[nrun++] = (unsigned char)hi;
			run[nrun++] = (unsigned char)(lo >> 8);
			run[nrun++] = (unsigned char)lo;
		} else {
			run[nrun++] = (unsigned char)(cp >> 8);
			run[nrun++] = (unsigned char)cp;
		}
	}
	if (flush_run(&out, run, nrun) < 0 || buf_append(&out, "", 0) < 0)
		goto nomem;
	if (out.data == NULL && (out.data = strdup("")) == NULL)
		goto nomem;
	return out.data;
nomem:
	buf_free(&out);
	errno = ENOMEM;
	return NULL;
}

imap_status
imap_append_mailbox(imap_session *s, const char *label, buf *line, const char *mailbox,
		    char **err_r)
{
	char *enc;
	int r;

	if (mailbox == NULL || mailbox[0] == '\0')
		return imap_fail(s, IMAP_EUSAGE, err_r, "%s: no mailbox name", label);
	if ((enc = imap_utf7_encode(mailbox)) == NULL)
		return imap_fail(s, errno == ENOMEM ? IMAP_EIO : IMAP_EUSAGE, err_r,
				 "%s: %s", label, errno == ENOMEM ? "out of memory" :
				 "bad mailbox name (invalid UTF-8, control bytes or too long)");
	r = imap_append_quoted(line, enc);
	free(enc);
	if (r < 0)
		return imap_fail(s, IMAP_EIO, err_r, "%s: out of memory", label);
	return IMAP_OK;
}

/* "VERB <mailbox>" into an allocated line. */
static imap_status
mailbox_cmd(imap_session *s, const char *label, const char *verb, const char *mailbox,
	    const char *after, buf *line, char **err_r)
{
	imap_status st;

	line->max = 16 * IMAP_MAILBOX_MAX;
	if (buf_append(line, verb, strlen(verb)) < 0 || buf_append(line, " ", 1) < 0)
		return imap_fail(s, IMAP_EIO, err_r, "%s: out of memory", label);
	if ((st = imap_append_mailbox(s, label, line, mailbox, err_r)) != IMAP_OK)
		return st;
	if (after != NULL && buf_append(line, after, strlen(after)) < 0)
		return imap_fail(s, IMAP_EIO, err_r, "%s: out of memory", label);
	return IMAP_OK;
}

static int
select_untagged(imap_session *s, const imap_response *r, void *arg, imap_status *st,
		char **err_r)
{
	imap_mailbox *info = arg;
	unsigned long long v;
	imap_token t = { IMAP_T_ATOM, r->code_arg, r->code_arg_len, 0 };

	(void)s;
	(void)st;
	(void)err_r;
	if (r->cond != IMAP_C_OK || r->code_len == 0)
		return 0;
	/* the code's argument is a number, nothing else */
	while (t.len > 0 && t.s[t.len - 1] == ' ')
		t.len--;
	if (imap_tok_number(&t, UINT32_MAX, &v) < 0)
		return 0;
	if (r->code_len == 11 && strncasecmp(r->code, "UIDVALIDITY", 11) == 0)
		info->uidvalidity = (uint32_t)v;
	else if (r->code_len == 7 && strncasecmp(r->code, "UIDNEXT", 7) == 0)
		info->uidnext = (uint32_t)v;
	return 0;
}

static imap_status
do_select(imap_session *s, const char *label, const char *mailbox, imap_mailbox *info_r,
	  char **err_r)
{
	buf line = { 0 };
	imap_mailbox info = { 0 };
	const imap_response *ok = NULL;
	char tag[16];
	imap_status st;

	if ((st = imap_begin(s, label, 1, err_r)) != IMAP_OK)
		return st;
	if ((st = mailbox_cmd(s, label, label, mailbox, NULL, &line, err_r)) != IMAP_OK)
		goto out;
	/* whatever happens now, the old mailbox is no longer selected */
	free(s->selected);
	s->selected = NULL;
	s->ctr.exists_known = 0;
	s->ctr.exists = 0;
	imap_next_tag(s, tag);
	if ((st = imap_send(s, label, tag, line.data, NULL, 1, err_r)) != IMAP_OK ||
	    (st = imap_wait(s, label, tag, select_untagged, &info, &ok, err_r)) != IMAP_OK)
		goto out;
	info.exists = s->ctr.exists;
	info.read_only = label[0] == 'E' ||
		(ok->code_len == 9 && strncasecmp(ok->code, "READ-ONLY", 9) == 0);
	if ((s->selected = strdup(mailbox)) == NULL) {
		st = imap_fail(s, IMAP_EIO, err_r, "%s: out of memory", label);
		goto out;
	}
	if (info_r != NULL)
		*info_r = info;
out:
	buf_free(&line);
	return st;
}

imap_status
imap_select(imap_session *s, const char *mailbox, imap_mailbox *info_r, char **err_r)
{
	return do_select(s, "SELECT", mailbox, info_r, err_r);
}

imap_status
imap_examine(imap_session *s, const char *mailbox, imap_mailbox *info_r, char **err_r)
{
	return do_select(s, "EXAMINE", mailbox, info_r, err_r);
}

const char *
imap_selected(const imap_session *s)
{
	return s->selected;
}

imap_status
imap_create(imap_session *s, const char *mailbox, char **err_r)
{
	buf line = { 0 };
	char tag[16];
	imap_status st;
	int exists = 0;

	if ((st = imap_begin(s, "CREATE", 1, err_r)) != IMAP_OK)
		return st;
	if ((st = mailbox_cmd(s, "CREATE", "CREATE", mailbox, NULL, &line, err_r)) != IMAP_OK)
		goto out;
	imap_next_tag(s, tag);
	if ((st = imap_send(s, "CREATE", tag, line.data, NULL, 1, err_r)) != IMAP_OK)
		goto out;
	st = imap_wait(s, "CREATE", tag, NULL, NULL, NULL, err_r);
	if (st == IMAP_ENO && strcasecmp(s->last_code, "ALREADYEXISTS") != 0) {
		/* servers without RFC 5530 codes: ask whether it is there */
		char *e2 = NULL;

		if (imap_mailbox_exists(s, mailbox, &exists, &e2) == IMAP_OK && exists)
			st = IMAP_OK;
		free(e2);
	} else if (st == IMAP_ENO) {
		st = IMAP_OK;
	}
	if (st == IMAP_OK && err_r != NULL) {
		free(*err_r);
		*err_r = NULL;
	}
out:
	buf_free(&line);
	return st;
}

struct list_ctx {
	const char *want; /* the encoded name */
	int found;
};

static int
list_untagged(imap_session *s, const imap_response *r, void *arg, imap_status *st, char **err_r)
{
	struct list_ctx *lc = arg;
	size_t i, n = strlen(lc->want);

	(void)s;
	(void)st;
	(void)err_r;
	if (r->cond != IMAP_C_NONE || r->name_len != 4 || strncasecmp(r->name, "LIST", 4) != 0 ||
	    r->n_toks < 3 || r->toks[0].type != IMAP_T_LIST)
		return 0;
	for (i = 1; i < r->toks[0].end; i++)
		if (imap_tok_is(&r->toks[i], "\\NoSelect") ||
		    imap_tok_is(&r->toks[i], "\\NonExistent"))
			return 1;
	i = r->toks[0].end + 1; /* past the delimiter */
	if (i < r->n_toks && (r->toks[i].type == IMAP_T_STRING || r->toks[i].type == IMAP_T_ATOM) &&
	    r->toks[i].len == n &&
	    (memcmp(r->toks[i].s, lc->want, n) == 0 ||
	     (n == 5 && strncasecmp(lc->want, "INBOX", 5) == 0 &&
	      strncasecmp(r->toks[i].s, "INBOX", 5) == 0)))
		lc->found = 1;
	return 1;
}

imap_status
imap_mailbox_exists(imap_session *s, const char *mailbox, int *exists_r, char **err_r)
{
	buf line = { 0 };
	struct list_ctx lc = { NULL, 0 };
	char tag[16], *enc = NULL;
	imap_status st;

	*exists_r = 0;
	if ((st = imap_begin(s, "LIST", 1, err_r)) != IMAP_OK)
		return st;
	if ((st = mailbox_cmd(s, "LIST", "LIST \"\"", mailbox, NULL, &line, err_r)) != IMAP_OK)
		goto out;
	if ((enc = imap_utf7_encode(mailbox)) == NULL) {
		st = imap_fail(s, IMAP_EIO, err_r, "LIST: out of memory");
		goto out;
	}
	lc.want = enc;
	imap_next_tag(s, tag);
	if ((st = imap_send(s, "LIST", tag, line.data, NULL, 1, err_r)) != IMAP_OK ||
	    (st = imap_wait(s, "LIST", tag, list_untagged, &lc, NULL, err_r)) != IMAP_OK)
		goto out;
	*exists_r = lc.found;
out:
	free(enc);
	buf_free(&line);
	return st;
}

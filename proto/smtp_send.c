/* mailmill - ISC licence, see LICENSE */
/*
 * The mail transaction: MAIL, RCPT and DATA (pipelined when the server
 * offers PIPELINING, RFC 2920), the dot-stuffed message, and a result per
 * recipient that knows "outcome unknown" after the final dot (RFC 1047).
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/smtp_int.h"

/* ESMTP parameters of one MAIL or RCPT command given by the caller. */
#define OPTS_MAX 16
#define LINE_MAX_SEND (ADDR_MAX + 64 + (OPTS_MAX + 4) * (PARAM_MAX + 1))

void
smtp_results_clear(smtp_rcpt_result *results, size_t n)
{
	size_t i;

	for (i = 0; results != NULL && i < n; i++) {
		free(results[i].text);
		memset(&results[i], 0, sizeof(results[i]));
	}
}

/* An address for <...>: no control characters, nothing that closes the path. */
static int
addr_ok(const char *a, int *utf8_r)
{
	size_t i, n = strlen(a);

	if (n > ADDR_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)a[i];

		if (c < 0x20 || c == 0x7f || c == '<' || c == '>')
			return 0;
		if (c >= 0x80)
			*utf8_r = 1;
	}
	return 1;
}

/* One "KEY=value" parameter: printable, no space (that would make two). */
static int
opts_ok(const char *const *opts)
{
	size_t i, j, n;

	for (i = 0; opts != NULL && opts[i] != NULL; i++) {
		n = strlen(opts[i]);
		if (i >= OPTS_MAX || n == 0 || n > PARAM_MAX)
			return 0;
		for (j = 0; j < n; j++) {
			unsigned char c = (unsigned char)opts[i][j];

			if (c <= 0x20 || c == 0x7f)
				return 0;
		}
	}
	return 1;
}

static int
param_is(const char *p, const char *name)
{
	size_t n = strlen(name);

	return strncasecmp(p, name, n) == 0 && (p[n] == '=' || p[n] == '\0');
}

static void
append(char *line, size_t *pos, const char *a, const char *b)
{
	int n = snprintf(line + *pos, LINE_MAX_SEND - *pos, "%s%s", a, b);

	if (n > 0)
		*pos += (size_t)n < LINE_MAX_SEND - *pos ? (size_t)n : LINE_MAX_SEND - *pos - 1;
}

/* Appends caller options, minus DSN ones the server did not offer and the
 * ones this library already set. */
static void
append_opts(char *line, size_t *pos, const char *const *opts, int dsn, int mail,
	    int have_size, int have_body, int have_utf8)
{
	size_t i;

	for (i = 0; opts != NULL && opts[i] != NULL; i++) {
		const char *o = opts[i];

		if (!dsn && (mail ? param_is(o, "RET") || param_is(o, "ENVID")
				  : param_is(o, "NOTIFY") || param_is(o, "ORCPT")))
			continue;
		if ((have_size && param_is(o, "SIZE")) || (have_body && param_is(o, "BODY")) ||
		    (have_utf8 && param_is(o, "SMTPUTF8")))
			continue;
		append(line, pos, " ", o);
	}
}

static int
has_8bit(const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)p[i] >= 0x80)
			return 1;
	return 0;
}

/* The header section: up to the first empty line. */
static size_t
header_len(const char *msg, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i++) {
		if (msg[i] == '\n' && msg[i + 1] == '\n')
			return i + 1;
		if (i + 2 < len && msg[i] == '\n' && msg[i + 1] == '\r' && msg[i + 2] == '\n')
			return i + 1;
	}
	return len;
}

static void
reply_copy(smtp_reply *dst, const smtp_reply *src)
{
	smtp_reply_clear(dst);
	dst->code = src->code;
	memcpy(dst->enhanced, src->enhanced, sizeof(dst->enhanced));
	dst->nlines = src->nlines;
	dst->text = strdup(src->text != NULL ? src->text : "");
}

static void
result_set(smtp_rcpt_result *r, smtp_status st, const smtp_reply *rep)
{
	if (r == NULL)
		return;
	free(r->text);
	r->status = st;
	r->code = rep->code;
	memcpy(r->enhanced, rep->enhanced, sizeof(r->enhanced));
	r->text = strdup(rep->text != NULL ? rep->text : "");
}

/*
 * A failed transaction delivered to nobody: a RCPT's 250 said the server
 * would take the message, not that it did (only the reply to the end of data
 * does), so no recipient may stay SMTP_OK.  After the final dot st is
 * SMTP_EUNKNOWN (RFC 1047): the caller must send the same bytes again.
 */
static void
results_undelivered(smtp_rcpt_result *results, size_t n, smtp_status st)
{
	size_t i;

	for (i = 0; results != NULL && i < n; i++) {
		if (results[i].status != SMTP_OK)
			continue;
		free(results[i].text);
		memset(&results[i], 0, sizeof(results[i]));
		results[i].status = st;
	}
}

static smtp_status
class_status(int code)
{
	switch (code / 100) {
	case 2: case 3: return SMTP_OK;
	case 4: return SMTP_ETEMP;
	case 5: return SMTP_EPERM;
	}
	return SMTP_EPROTO;
}

/* RSET after a refused transaction; s->last keeps the refusal. */
static void
rset_quiet(smtp_session *s)
{
	smtp_reply keep = s->last;

	memset(&s->last, 0, sizeof(s->last));
	if (!s->broken)
		(void)smtp_command(s, "RSET", NULL, 2, "SMTP: RSET", NULL);
	smtp_reply_clear(&s->last);
	s->last = keep;
}

static void
take_last(smtp_session *s, smtp_reply *r)
{
	smtp_reply_clear(&s->last);
	s->last = *r;
	memset(r, 0, sizeof(*r));
}

struct data_ctx {
	smtp_session *s;
	size_t since;
	char *neterr;
};

static int
data_emit(void *arg, const char *d, size_t len)
{
	struct data_ctx *c = arg;

	if (net_write(c->s->conn, d, len, &c->neterr) < 0)
		return -1;
	c->since += len;
	if (c->since >= DATA_BLOCK) {
		c->since = 0;
		net_deadline(c->s->conn, c->s->command_timeout_ms);
	}
	return 0;
}

/* After DATA's 354: the message, the final dot, and the verdict. */
static smtp_status
send_data(smtp_session *s, const char *msg, size_t msg_len, char **err_r)
{
	struct data_ctx ctx = { s, 0, NULL };
	smtp_data_enc enc;
	char shown[64];
	smtp_status st;

	net_deadline(s->conn, s->command_timeout_ms);
	smtp_data_init(&enc);
	if (smtp_data_encode(&enc, msg, msg_len, data_emit, &ctx) < 0 ||
	    smtp_data_finish(&enc, data_emit, &ctx) < 0)
		return smtp_fail_net(s, SMTP_EIO, err_r, "SMTP: sending message data", ctx.neterr);
	snprintf(shown, sizeof(shown), "<%llu bytes of message data>", enc.out - 3);
	smtp_trace_line(s, 'C', shown, strlen(shown));
	smtp_trace_line(s, 'C', ".", 1);
	/* From here on the server may have the whole message. */
	if (net_flush(s->conn, &ctx.neterr) < 0)
		return smtp_fail_net(s, SMTP_EUNKNOWN, err_r,
				     "SMTP: connection lost while sending the final dot, outcome unknown",
				     ctx.neterr);
	net_deadline(s->conn, s->data_end_timeout_ms);
	if ((st = smtp_read_reply(s, err_r)) != SMTP_OK) {
		char *e = err_r != NULL ? *err_r : NULL;

		if (err_r != NULL)
			*err_r = NULL;
		return smtp_fail_net(s, SMTP_EUNKNOWN, err_r,
				     "SMTP: no reply after the final dot, outcome unknown", e);
	}
	return SMTP_OK;
}

/* One transaction, from the envelope checks to the verdict. */
struct tx {
	smtp_session *s;
	const char *const *rcpts;
	const char *const *rcpt_options;
	smtp_rcpt_result *results; /* NULL: the caller wants none */
	size_t nrcpts;
	size_t total;              /* commands: MAIL, RCPT..., DATA */
	size_t sent, got, accepted, window;
	int bit8, utf8, dsn, pipelining;
	int any_temp, stop, data_sent;
	unsigned long long wire;   /* the message's size on the wire */
	smtp_status mail_st;
	smtp_reply mail_reply, refusal, data_reply;
	char *mail_line, *line;    /* LINE_MAX_SEND each */
};

/* The caller's envelope and options: refused before anything is sent. */
static smtp_status
tx_check_args(struct tx *t, const char *from, const char *msg, size_t msg_len,
	      const char *const *mail_options, int *utf8_env_r, char **err_r)
{
	smtp_session *s = t->s;
	size_t i;

	if (from == NULL || t->rcpts == NULL || t->nrcpts == 0 || (msg == NULL && msg_len > 0))
		return smtp_fail(s, SMTP_EUSAGE, err_r, "SMTP: sendmail needs a sender, "
				 "recipients and a message");
	if (!addr_ok(from, utf8_env_r))
		return smtp_fail(s, SMTP_EUSAGE, err_r, "SMTP: invalid sender address");
	for (i = 0; i < t->nrcpts; i++)
		if (t->rcpts[i] == NULL || *t->rcpts[i] == '\0' || !addr_ok(t->rcpts[i], utf8_env_r))
			return smtp_fail(s, SMTP_EUSAGE, err_r,
					 "SMTP: invalid recipient address #%zu", i + 1);
	if (!opts_ok(mail_options) || !opts_ok(t->rcpt_options))
		return smtp_fail(s, SMTP_EUSAGE, err_r, "SMTP: invalid ESMTP parameter");
	return SMTP_OK;
}

/* What the server's extensions allow for this message. */
static smtp_status
tx_plan(struct tx *t, const char *msg, size_t msg_len, int utf8_env, char **err_r)
{
	smtp_session *s = t->s;
	unsigned long long max;

	if (utf8_env && !smtp_has_ext(s, "SMTPUTF8"))
		return smtp_fail(s, SMTP_EPERM, err_r, "SMTP: the envelope has a non-ASCII "
				 "address and the server does not offer SMTPUTF8");
	t->bit8 = msg_len > 0 && has_8bit(msg, msg_len);
	t->utf8 = smtp_has_ext(s, "SMTPUTF8") &&
		  (utf8_env || (t->bit8 && has_8bit(msg, header_len(msg, msg_len))));
	t->wire = smtp_data_wire_size(msg != NULL ? msg : "", msg_len);
	max = smtp_max_size(s);
	if (max > 0 && t->wire > max)
		return smtp_fail(s, SMTP_ETOOBIG, err_r, "SMTP: message of %llu bytes is larger "
				 "than the server's limit of %llu", t->wire, max);
	t->dsn = smtp_has_ext(s, "DSN");
	t->pipelining = smtp_has_ext(s, "PIPELINING");
	t->window = t->pipelining ? PIPE_WINDOW : 1;
	if (t->nrcpts > (size_t)-1 - 2)
		return smtp_fail(s, SMTP_EUSAGE, err_r, "SMTP: too many recipients");
	t->total = t->nrcpts + 2;
	return SMTP_OK;
}

/* The line buffers, and MAIL FROM with the parameters this message needs. */
static smtp_status
tx_mail_line(struct tx *t, const char *from, const char *const *mail_options, char **err_r)
{
	smtp_session *s = t->s;
	int size = smtp_has_ext(s, "SIZE"), body = t->bit8 && smtp_has_ext(s, "8BITMIME");
	size_t pos = 0;

	t->mail_line = malloc(LINE_MAX_SEND);
	t->line = malloc(LINE_MAX_SEND);
	if (t->mail_line == NULL || t->line == NULL)
		return smtp_fail(s, SMTP_EUSAGE, err_r, "SMTP: out of memory");
	t->mail_line[0] = '\0';
	append(t->mail_line, &pos, "MAIL FROM:<", from);
	append(t->mail_line, &pos, ">", "");
	if (size) {
		char num[32];

		snprintf(num, sizeof(num), "%llu", t->wire);
		append(t->mail_line, &pos, " SIZE=", num);
	}
	if (body)
		append(t->mail_line, &pos, " BODY=8BITMIME", "");
	if (t->utf8)
		append(t->mail_line, &pos, " SMTPUTF8", "");
	append_opts(t->mail_line, &pos, mail_options, t->dsn, 1, size, body, t->utf8);
	return SMTP_OK;
}

/* Queue commands up to the window: MAIL, the RCPTs, then DATA. */
static smtp_status
tx_send_window(struct tx *t, char **err_r)
{
	smtp_status st;

	while (!t->stop && t->sent < t->total && t->sent - t->got < t->window) {
		const char *l = t->mail_line;

		if (t->sent == t->total - 1) {
			/* without PIPELINING, DATA only for someone to send to */
			if (!t->pipelining && (t->accepted == 0 || t->mail_st != SMTP_OK)) {
				t->stop = 1;
				break;
			}
			l = "DATA";
			t->data_sent = 1;
		} else if (t->sent > 0) {
			size_t pos = 0;

			t->line[0] = '\0';
			append(t->line, &pos, "RCPT TO:<", t->rcpts[t->sent - 1]);
			append(t->line, &pos, ">", "");
			append_opts(t->line, &pos, t->rcpt_options, t->dsn, 0, 0, 0, 0);
			l = t->line;
		}
		if ((st = smtp_send_line(t->s, l, NULL, err_r)) != SMTP_OK)
			return st;
		t->sent++;
	}
	return SMTP_OK;
}

/* The reply to command number t->got (MAIL, a RCPT or DATA), in s->last. */
static smtp_status
tx_take_reply(struct tx *t, char **err_r)
{
	smtp_session *s = t->s;
	smtp_rcpt_result *r = t->results != NULL && t->got > 0 ? &t->results[t->got - 1] : NULL;
	smtp_status st = class_status(s->last.code);
	size_t i;

	if (st == SMTP_EPROTO || (t->got < t->total - 1 && s->last.code / 100 == 3) ||
	    (t->got == t->total - 1 && s->last.code / 100 == 2))
		return smtp_fail_reply(s, SMTP_EPROTO, err_r, "SMTP: unexpected reply");
	if (t->got == 0) {
		reply_copy(&t->mail_reply, &s->last);
		t->mail_st = st;
		if (st != SMTP_OK && !t->pipelining)
			t->stop = 1;
	} else if (t->got < t->total - 1) {
		if (t->mail_st != SMTP_OK) {
			result_set(r, t->mail_st, &t->mail_reply);
		} else {
			result_set(r, st, &s->last);
			if (st == SMTP_OK)
				t->accepted++;
			else
				reply_copy(&t->refusal, &s->last);
			t->any_temp |= st == SMTP_ETEMP;
		}
	} else {
		reply_copy(&t->data_reply, &s->last);
	}
	t->got++;
	if (s->broken) {
		/* 421: the server is going away; what was not answered is temporary */
		for (i = t->got - 1; t->results != NULL && i < t->nrcpts; i++)
			if (t->results[i].code == 0)
				result_set(&t->results[i], SMTP_ETEMP, &s->last);
		return smtp_fail_reply(s, SMTP_ETEMP, err_r, "SMTP: the server is closing");
	}
	return SMTP_OK;
}

/* MAIL, RCPT and DATA with their replies, PIPE_WINDOW at a time (RFC 2920). */
static smtp_status
tx_envelope(struct tx *t, char **err_r)
{
	smtp_status st;

	while (t->got < t->sent || (!t->stop && t->sent < t->total)) {
		if ((st = tx_send_window(t, err_r)) != SMTP_OK)
			return st;
		if (t->got == t->sent)
			break;
		net_deadline(t->s->conn, t->s->command_timeout_ms);
		if ((st = smtp_flush(t->s, err_r)) != SMTP_OK ||
		    (st = smtp_read_reply(t->s, err_r)) != SMTP_OK ||
		    (st = tx_take_reply(t, err_r)) != SMTP_OK)
			return st;
	}
	return SMTP_OK;
}

/* The sender or every recipient refused: end the transaction, say why. */
static smtp_status
tx_refused(struct tx *t, char **err_r)
{
	smtp_session *s = t->s;
	smtp_status st;
	size_t i;

	if (t->data_sent && t->data_reply.code / 100 == 3) {
		/* RFC 2920 3.1: DATA accepted with nobody to send to: an empty message */
		net_deadline(s->conn, s->command_timeout_ms);
		if ((st = smtp_send_line(s, ".", NULL, err_r)) != SMTP_OK ||
		    (st = smtp_flush(s, err_r)) != SMTP_OK ||
		    (st = smtp_read_reply(s, err_r)) != SMTP_OK)
			return st;
	}
	if (t->mail_st != SMTP_OK) {
		for (i = 0; t->results != NULL && i < t->nrcpts; i++)
			if (t->results[i].code == 0)
				result_set(&t->results[i], t->mail_st, &t->mail_reply);
		take_last(s, &t->mail_reply);
		rset_quiet(s);
		return smtp_fail_reply(s, t->mail_st, err_r, "SMTP: sender refused");
	}
	take_last(s, &t->refusal);
	rset_quiet(s);
	return smtp_fail_reply(s, t->any_temp ? SMTP_ETEMP : SMTP_EPERM, err_r,
			       "SMTP: all recipients refused, the last");
}

/* DATA itself refused: every accepted recipient gets that reply. */
static smtp_status
tx_data_refused(struct tx *t, char **err_r)
{
	smtp_status st = class_status(t->data_reply.code);
	size_t i;

	for (i = 0; t->results != NULL && i < t->nrcpts; i++)
		if (t->results[i].status == SMTP_OK)
			result_set(&t->results[i], st, &t->data_reply);
	take_last(t->s, &t->data_reply);
	rset_quiet(t->s);
	return smtp_fail_reply(t->s, st, err_r, "SMTP: DATA refused");
}

/* The reply to the final dot, for every accepted recipient. */
static smtp_status
tx_verdict(struct tx *t, char **err_r)
{
	smtp_session *s = t->s;
	smtp_status st = class_status(s->last.code);
	size_t i;

	if (s->last.code / 100 == 3)
		st = SMTP_EPROTO;
	for (i = 0; t->results != NULL && i < t->nrcpts; i++)
		if (t->results[i].status == SMTP_OK)
			result_set(&t->results[i], st == SMTP_EPROTO ? SMTP_EUNKNOWN : st, &s->last);
	if (st == SMTP_EPROTO)
		return smtp_fail_reply(s, SMTP_EUNKNOWN, err_r, "SMTP: end of data, outcome unknown");
	if (st != SMTP_OK)
		return smtp_fail_reply(s, st, err_r, "SMTP: message refused at end of data");
	return SMTP_OK;
}

static smtp_status
tx_run(struct tx *t, const char *from, const char *msg, size_t msg_len,
       const char *const *mail_options, char **err_r)
{
	smtp_status st;

	if ((st = tx_mail_line(t, from, mail_options, err_r)) != SMTP_OK ||
	    (st = tx_envelope(t, err_r)) != SMTP_OK)
		return st;
	if (t->mail_st != SMTP_OK || t->accepted == 0)
		return tx_refused(t, err_r);
	if (t->data_reply.code / 100 != 3)
		return tx_data_refused(t, err_r);
	if ((st = send_data(t->s, msg != NULL ? msg : "", msg_len, err_r)) != SMTP_OK)
		return st;
	return tx_verdict(t, err_r);
}

smtp_status
smtp_sendmail(smtp_session *s, const char *from, const char *const *rcpts, size_t nrcpts,
	      const char *msg, size_t msg_len, const char *const *mail_options,
	      const char *const *rcpt_options, smtp_rcpt_result *results, char **err_r)
{
	struct tx t = { .s = s, .rcpts = rcpts, .rcpt_options = rcpt_options,
			.results = results, .nrcpts = nrcpts, .mail_st = SMTP_OK };
	int utf8_env = 0;
	smtp_status st;

	if ((st = smtp_check_usable(s, err_r)) != SMTP_OK)
		return st;
	if (results != NULL)
		memset(results, 0, nrcpts * sizeof(*results));
	/* Refused before the first command: the results stay as they are. */
	if ((st = tx_check_args(&t, from, msg, msg_len, mail_options, &utf8_env, err_r)) !=
	    SMTP_OK || (st = tx_plan(&t, msg, msg_len, utf8_env, err_r)) != SMTP_OK)
		return st;
	st = tx_run(&t, from, msg, msg_len, mail_options, err_r);
	if (st != SMTP_OK)
		results_undelivered(results, nrcpts, st);
	smtp_reply_clear(&t.mail_reply);
	smtp_reply_clear(&t.refusal);
	smtp_reply_clear(&t.data_reply);
	free(t.mail_line);
	free(t.line);
	return st;
}

/* mailmill - ISC licence, see LICENSE */
/*
 * A small SMTP client over proto/smtp for the hostile-server tests:
 *   smtpsend HOST PORT none|tls|starttls CAFILE|- MSGFILE FROM RCPT...
 * Connects (deadlines of 2 s), logs in when SMTP_USER / SMTP_PASS are set,
 * sends the message once and QUITs.  Prints "status NAME: error text" and a
 * line per recipient; the exit status is the smtp_status (0 = accepted).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "proto/smtp.h"

static char *
smtpsend_read(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (data = malloc((size_t)n + 1)) != NULL) {
		*len_r = fread(data, 1, (size_t)n, f);
		data[*len_r] = '\0';
	}
	fclose(f);
	return data;
}

static int
smtpsend_done(smtp_status st, char *err)
{
	printf("status %s: %s\n", smtp_status_name(st), err != NULL ? err : "");
	free(err);
	return (int)st;
}

int
main(int argc, char **argv)
{
	smtp_options o;
	smtp_session *s = NULL;
	smtp_rcpt_result *res;
	smtp_status st;
	char *err = NULL, *msg;
	const char *user = getenv("SMTP_USER"), *pass = getenv("SMTP_PASS");
	size_t len = 0, n, i;

	if (argc < 8) {
		fprintf(stderr, "usage: smtpsend HOST PORT none|tls|starttls CAFILE|- MSGFILE FROM RCPT...\n");
		return 64;
	}
	memset(&o, 0, sizeof o);
	o.host = argv[1];
	o.port = argv[2];
	o.tls = strcmp(argv[3], "tls") == 0 ? SMTP_TLS_IMPLICIT :
		strcmp(argv[3], "starttls") == 0 ? SMTP_TLS_STARTTLS : SMTP_TLS_NONE;
	o.ca_file = strcmp(argv[4], "-") == 0 ? NULL : argv[4];
	o.helo = "client.test";
	o.connect_timeout_ms = o.command_timeout_ms = o.data_end_timeout_ms = 2000;
	o.allow_plaintext_auth = 1;
	if ((msg = smtpsend_read(argv[5], &len)) == NULL) {
		perror(argv[5]);
		return 66;
	}
	st = smtp_connect(&o, &s, &err);
	if (st != SMTP_OK) {
		free(msg);
		return smtpsend_done(st, err);
	}
	if (user != NULL && user[0] != '\0' && (st = smtp_login(s, user, pass != NULL ? pass : "", &err)) != SMTP_OK) {
		smtp_close(&s);
		free(msg);
		return smtpsend_done(st, err);
	}
	n = (size_t)argc - 7;
	res = calloc(n, sizeof *res);
	if (res == NULL)
		return 70;
	st = smtp_sendmail(s, argv[6], (const char *const *)argv + 7, n, msg, len, NULL, NULL, res,
			   &err);
	for (i = 0; i < n; i++)
		printf("rcpt %s: %s %d %s\n", argv[7 + i], smtp_status_name(res[i].status), res[i].code,
		       res[i].text != NULL ? res[i].text : "");
	if (st == SMTP_OK || st == SMTP_ETEMP || st == SMTP_EPERM) {
		char *qerr = NULL;

		if (smtp_usable(s))
			(void)smtp_quit(s, &qerr);
		free(qerr);
	}
	smtp_results_clear(res, n);
	free(res);
	smtp_close(&s);
	free(msg);
	return smtpsend_done(st, err);
}

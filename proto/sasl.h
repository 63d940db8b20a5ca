/* mailmill - ISC licence, see LICENSE */
#ifndef MM_SASL_H
#define MM_SASL_H
/*
 * The client side of the SASL mechanisms mailmill speaks, for POP3 (RFC
 * 5034) and SMTP (RFC 4954) alike: PLAIN (RFC 4616), LOGIN, XOAUTH2
 * (Google's and Microsoft's) and OAUTHBEARER (RFC 7628).  No I/O and no
 * protocol knowledge: it builds the base64 responses and reads the
 * servers' error challenges.  Responses are allocated to the size of the
 * input (an access token is 2-4 KB in practice) and must be released with
 * sasl_free, which wipes them.
 */
#include <stddef.h>

typedef enum {
	SASL_PLAIN = 0,
	SASL_LOGIN,
	SASL_XOAUTH2,
	SASL_OAUTHBEARER
} sasl_mech;

/* Upper bounds of what we send (sasl_response refuses more). */
#define SASL_USER_MAX 1024      /* user name, and the password of PLAIN/LOGIN */
#define SASL_TOKEN_MAX 65536    /* an OAuth access token */
/* The decoded server challenge kept for an error message. */
#define SASL_CHALLENGE_MAX 4096
#define SASL_ERROR_TEXT_MAX 400

/* Case-insensitive name to mechanism: 0, or -1 for one we do not speak. */
int sasl_mech_parse(const char *name, sasl_mech *m_r);
/* The canonical (upper-case, static) name. */
const char *sasl_mech_name(sasl_mech m);
/* 1 for XOAUTH2 and OAUTHBEARER (the secret is a bearer token). */
int sasl_mech_is_oauth(sasl_mech m);
/* The number of client responses: PLAIN, XOAUTH2, OAUTHBEARER 1, LOGIN 2. */
int sasl_steps(sasl_mech m);

/*
 * The OAuth mechanism to use: mech when given (it must be XOAUTH2 or
 * OAUTHBEARER), else OAUTHBEARER when the server offers it, else XOAUTH2
 * when offered.  0, or -1 with *why_r a static reason.
 */
int sasl_oauth_pick(const char *mech, int offers_oauthbearer, int offers_xoauth2,
		    sasl_mech *m_r, const char **why_r);

typedef struct sasl_creds {
	const char *user;    /* authentication identity; the mailbox address for OAuth */
	const char *secret;  /* password, or access token */
	const char *host;    /* OAUTHBEARER: the server's host name (NULL: not sent) */
	const char *port;    /* OAUTHBEARER: its port, number or service name (NULL,
			      * or a name /etc/services does not know: not sent) */
} sasl_creds;

/*
 * The base64 client response of step `step` (0-based, < sasl_steps):
 *   PLAIN        "\0user\0password"                       (RFC 4616)
 *   LOGIN        step 0 the user name, step 1 the password
 *   XOAUTH2      "user=U\1auth=Bearer T\1\1"
 *   OAUTHBEARER  "n,a=U,\1host=H\1port=P\1auth=Bearer T\1\1" (RFC 7628 3.1;
 *                ',' and '=' in U escaped as RFC 5801 says)
 * Checked first: a user name that is empty or holds a control byte, a
 * password with CR, LF or NUL... (C strings cannot hold NUL), a token that
 * is not RFC 6750 b64token, a host that is not printable: NULL and *err_r
 * (allocated, never quoting the secret).  Otherwise an allocated string
 * (*len_r its length when not NULL): release it with sasl_free.
 */
char *sasl_response(sasl_mech m, int step, const sasl_creds *c, size_t *len_r, char **err_r);
/* Wipe and free a response (NULL is fine). */
void sasl_free(char *response);

/* The OAUTHBEARER answer to an error challenge: a single %x01 (RFC 7628
 * 3.2.3), base64; XOAUTH2 answers with an empty response (""). */
#define SASL_OAUTHBEARER_ABORT "AQ=="

/*
 * An error challenge of XOAUTH2 or OAUTHBEARER (the base64 of a JSON object
 * such as {"status":"invalid_token","scope":"..."}) as text fit for an error
 * message: decoded, every byte outside printable ASCII shown as '?', runs
 * of white space folded, at most SASL_ERROR_TEXT_MAX bytes then "...".  A
 * challenge that is not base64 is quoted the same way with a note saying
 * so.  Always an allocated string (NULL only when memory runs out).
 */
char *sasl_error_text(const char *challenge, size_t len);
#endif

/* mailmill - ISC licence, see LICENSE */
/*
 * The only file that includes OpenSSL headers.  The socket stays
 * non-blocking; every wait is a poll() bounded by the caller's absolute
 * deadline, so the handshake and each read/write share the command's budget.
 * Our own BIO sends with MSG_NOSIGNAL: a peer that hangs up must not kill the
 * daemon with SIGPIPE, and the library must not touch the process's signals.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "proto/clock.h"
#include "proto/err.h"
#include "proto/tls.h"

struct tls_conn {
	SSL_CTX *ctx;
	SSL *ssl;
	BIO_METHOD *meth;
	int fd;
	int eof;       /* the peer closed the TCP connection */
	int sys_errno; /* last socket error seen by the BIO */
	char *host;
	char desc[128];
	char cert[512];    /* the server certificate's subject and expiry */
};

/* ------------------------------------------------------------ socket BIO */

static int
tls_bio_write(BIO *b, const char *data, size_t len, size_t *written)
{
	tls_conn *t = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	do
		n = send(t->fd, data, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			BIO_set_retry_write(b);
		else
			t->sys_errno = errno;
		return 0;
	}
	*written = (size_t)n;
	return 1;
}

static int
tls_bio_read(BIO *b, char *data, size_t len, size_t *readbytes)
{
	tls_conn *t = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	do
		n = recv(t->fd, data, len, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			BIO_set_retry_read(b);
		else
			t->sys_errno = errno;
		return 0;
	}
	if (n == 0) {
		t->eof = 1;
		return 0;
	}
	*readbytes = (size_t)n;
	return 1;
}

static long
tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	tls_conn *t = BIO_get_data(b);

	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_EOF:
		/* OpenSSL asks this to tell a closed peer from "try again". */
		return t != NULL && t->eof;
	default:
		return 0;
	}
}

static int
tls_bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

/* ------------------------------------------------------------ helpers */

/* Wait until the socket is ready for what OpenSSL asked; -1 on deadline. */
static int
tls_wait(tls_conn *t, int ssl_err, long long deadline_ms)
{
	struct pollfd pfd;
	long long left;
	int r;

	pfd.fd = t->fd;
	pfd.events = ssl_err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
	for (;;) {
		if (deadline_ms == 0) {
			left = -1;
		} else {
			left = deadline_ms - clock_now_ms();
			if (left <= 0) {
				errno = ETIMEDOUT;
				return -1;
			}
			if (left > INT32_MAX)
				left = INT32_MAX;
		}
		pfd.revents = 0;
		r = poll(&pfd, 1, (int)left);
		if (r > 0)
			return 0; /* errors and hangups surface in the next call */
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

/* The most specific OpenSSL reason in the error queue, or NULL. */
static const char *
tls_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *s;

	if (e == 0)
		return NULL;
	s = ERR_reason_error_string(e);
	return s != NULL ? s : "unknown error";
}

/* Turn a failed SSL_* call into an operator message. */
static char *
tls_describe_failure(tls_conn *t, const char *what, int ssl_err)
{
	const char *reason;

	if (ssl_err == SSL_ERROR_ZERO_RETURN || (t->eof && ERR_peek_last_error() == 0))
		return err_fmt("TLS: connection closed by %s during %s", t->host, what);
	if (t->sys_errno != 0)
		return err_fmt("TLS: %s with %s: %s", what, t->host, strerror(t->sys_errno));
	reason = tls_reason();
	if (reason == NULL && t->eof)
		return err_fmt("TLS: connection closed by %s during %s", t->host, what);
	if (reason == NULL)
		return err_fmt("TLS: %s with %s failed", what, t->host);
	if (ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_WRONG_VERSION_NUMBER)
		return err_fmt("TLS: %s with %s failed: %s (is the server speaking TLS on this port?)",
				what, t->host, reason);
	return err_fmt("TLS: %s with %s failed: %s", what, t->host, reason);
}

/* "subject CN=..., expires Dec  4 21:00:00 2027 GMT" of the peer's
 * certificate into t->cert ("" if none or out of memory). */
static void
tls_cert_describe(tls_conn *t)
{
	X509 *x = SSL_get1_peer_certificate(t->ssl);
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL;
	long n;

	t->cert[0] = '\0';
	if (x != NULL && b != NULL && BIO_puts(b, "subject ") > 0 &&
	    X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_ONELINE) >= 0 &&
	    BIO_puts(b, ", expires ") > 0 && ASN1_TIME_print(b, X509_get0_notAfter(x)) &&
	    (n = BIO_get_mem_data(b, &p)) > 0)
		snprintf(t->cert, sizeof(t->cert), "%.*s", (int)n, p);
	BIO_free(b);
	X509_free(x);
}

static int
tls_is_ip(const char *host)
{
	unsigned char addr[16];

	return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

/* ------------------------------------------------------------ setup */

/* A CA store loaded by tls_preload: path "" is the system's (OpenSSL's
 * default file and directory); st: the file as it was then. */
typedef struct tls_ca {
	char *path;
	struct stat st;
	X509_STORE *store;
	struct tls_ca *next;
} tls_ca;
static tls_ca *tls_cas;

static int
tls_ca_stat(const char *path, struct stat *st)
{
	return stat(path[0] != '\0' ? path : X509_get_default_cert_file(), st);
}

/* The preloaded store of ca_file (NULL: the system's), if its file did not
 * change since; else NULL (loaded afresh, with its errors). */
static X509_STORE *
tls_ca_find(const char *ca_file)
{
	const char *path = ca_file != NULL ? ca_file : "";
	struct stat st;
	tls_ca *ca;

	for (ca = tls_cas; ca != NULL; ca = ca->next) {
		if (strcmp(ca->path, path) != 0)
			continue;
		if (ca->store == NULL || tls_ca_stat(path, &st) < 0 || st.st_ino != ca->st.st_ino ||
		    st.st_dev != ca->st.st_dev || st.st_size != ca->st.st_size ||
		    st.st_mtim.tv_sec != ca->st.st_mtim.tv_sec ||
		    st.st_mtim.tv_nsec != ca->st.st_mtim.tv_nsec)
			return NULL;
		return ca->store;
	}
	return NULL;
}

int
tls_preload(const char *ca_file, char **err_r)
{
	const char *path = ca_file != NULL && ca_file[0] != '\0' ? ca_file : "";
	SSL_CTX *ctx;
	tls_ca *ca;
	int ok;

	for (ca = tls_cas; ca != NULL; ca = ca->next) {
		if (strcmp(ca->path, path) == 0)
			return 0;
	}
	/* A context made and dropped: the library is initialised and its
	 * algorithms fetched, here and not in every process forked after. */
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		goto nomem;
	SSL_CTX_free(ctx);
	if ((ca = calloc(1, sizeof *ca)) == NULL || (ca->path = strdup(path)) == NULL ||
	    (ca->store = X509_STORE_new()) == NULL) {
		if (ca != NULL)
			free(ca->path);
		free(ca);
		goto nomem;
	}
	ok = tls_ca_stat(path, &ca->st) == 0 &&
	     (path[0] != '\0' ? X509_STORE_load_file(ca->store, path) :
				X509_STORE_set_default_paths(ca->store)) == 1;
	ERR_clear_error();
	ca->next = tls_cas;
	tls_cas = ca;
	if (!ok) {
		/* Left to each connection, which says why; not tried again. */
		X509_STORE_free(ca->store);
		ca->store = NULL;
		*err_r = err_fmt("TLS: cannot load CA file %s",
				 path[0] != '\0' ? path : X509_get_default_cert_file());
		return -1;
	}
	return 0;
nomem:
	*err_r = err_fmt("TLS: out of memory");
	return -1;
}

static int
tls_setup(tls_conn *t, const char *ca_file, char **err_r)
{
	X509_STORE *pre;
	const char *reason;
	BIO *bio;
	FILE *f;

	t->ctx = SSL_CTX_new(TLS_client_method());
	if (t->ctx == NULL)
		goto nomem;
	if (SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION) != 1) {
		*err_r = err_fmt("TLS: cannot require TLS 1.2 or newer");
		return -1;
	}
	/* A clean TCP close still ends the stream: POP3 and SMTP replies are
	 * self-delimiting, so truncation is caught one layer up. */
	SSL_CTX_set_options(t->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
					    SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
	/* Bulk downloads: pull many records per recv() instead of a header and
	 * a body read per record. */
	SSL_CTX_set_read_ahead(t->ctx, 1);
	SSL_CTX_set_default_read_buffer_len(t->ctx, 64 * 1024);
	if ((pre = tls_ca_find(ca_file != NULL && ca_file[0] != '\0' ? ca_file : NULL)) != NULL) {
		SSL_CTX_set1_cert_store(t->ctx, pre);
	} else if (ca_file != NULL && ca_file[0] != '\0') {
		/* fopen first, so that "no such file" is not reported as a PEM error. */
		f = fopen(ca_file, "r");
		if (f == NULL) {
			*err_r = err_fmt("TLS: cannot read CA file %s: %s", ca_file, strerror(errno));
			return -1;
		}
		fclose(f);
		if (SSL_CTX_load_verify_locations(t->ctx, ca_file, NULL) != 1) {
			reason = tls_reason();
			*err_r = err_fmt("TLS: cannot load CA file %s: %s", ca_file,
					  reason != NULL ? reason : "no certificates");
			return -1;
		}
	} else if (SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
		*err_r = err_fmt("TLS: cannot load the system CA store");
		return -1;
	}

	t->ssl = SSL_new(t->ctx);
	if (t->ssl == NULL)
		goto nomem;
	if (tls_is_ip(t->host)) {
		/* No SNI for addresses (RFC 6066); the certificate must name the IP. */
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), t->host) != 1) {
			*err_r = err_fmt("TLS: cannot verify against address %s", t->host);
			return -1;
		}
	} else {
		SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (SSL_set1_host(t->ssl, t->host) != 1 ||
		    SSL_set_tlsext_host_name(t->ssl, t->host) != 1) {
			*err_r = err_fmt("TLS: cannot use host name %s", t->host);
			return -1;
		}
	}

	t->meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "mailmill socket");
	if (t->meth == NULL || BIO_meth_set_write_ex(t->meth, tls_bio_write) != 1 ||
	    BIO_meth_set_read_ex(t->meth, tls_bio_read) != 1 ||
	    BIO_meth_set_ctrl(t->meth, tls_bio_ctrl) != 1 ||
	    BIO_meth_set_create(t->meth, tls_bio_create) != 1)
		goto nomem;
	bio = BIO_new(t->meth);
	if (bio == NULL)
		goto nomem;
	BIO_set_data(bio, t);
	SSL_set_bio(t->ssl, bio, bio); /* the SSL owns bio now */
	return 0;
nomem:
	*err_r = err_fmt("TLS: out of memory setting up the connection");
	return -1;
}

int
tls_connect(int fd, const char *host, const char *ca_file, long long deadline_ms,
	    tls_conn **tls_r, char **err_r)
{
	tls_conn *t;
	long vr;
	int r, e;

	*tls_r = NULL;
	if (host == NULL || host[0] == '\0') {
		*err_r = err_fmt("TLS: no host name to verify the certificate against");
		return -1;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL || (t->host = strdup(host)) == NULL) {
		free(t);
		*err_r = err_fmt("TLS: out of memory");
		return -1;
	}
	t->fd = fd;
	ERR_clear_error();
	if (tls_setup(t, ca_file, err_r) < 0)
		goto fail;

	for (;;) {
		ERR_clear_error();
		r = SSL_connect(t->ssl);
		if (r == 1)
			break;
		e = SSL_get_error(t->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			if (tls_wait(t, e, deadline_ms) == 0)
				continue;
			if (errno == ETIMEDOUT)
				*err_r = err_fmt("TLS: handshake with %s timed out", host);
			else
				*err_r = err_fmt("TLS: handshake with %s: poll: %s", host,
						  strerror(errno));
			goto fail_keep_errno;
		}
		vr = SSL_get_verify_result(t->ssl);
		if (vr != X509_V_OK) {
			*err_r = err_fmt("TLS: certificate verify failed: %s (host %s)",
					  X509_verify_cert_error_string(vr), host);
			goto fail;
		}
		*err_r = tls_describe_failure(t, "the handshake", e);
		goto fail;
	}
	/* SSL_VERIFY_PEER already fails the handshake, but never trust one check. */
	if (SSL_get_verify_result(t->ssl) != X509_V_OK) {
		*err_r = err_fmt("TLS: certificate verify failed: %s (host %s)",
				  X509_verify_cert_error_string(SSL_get_verify_result(t->ssl)), host);
		goto fail;
	}
	snprintf(t->desc, sizeof(t->desc), "%s %s", SSL_get_version(t->ssl),
		 SSL_CIPHER_get_name(SSL_get_current_cipher(t->ssl)));
	tls_cert_describe(t);
	*tls_r = t;
	return 0;
fail:
	errno = EPROTO;
fail_keep_errno:
	e = errno;
	tls_close(&t);
	errno = e;
	return -1;
}

/* After a successful read: also take records already received, without
 * waiting.  Errors are left for the next tls_read to report. */
static size_t
tls_read_more(tls_conn *t, char *p, size_t len)
{
	size_t got = 0, n;

	while (got < len && SSL_has_pending(t->ssl)) {
		ERR_clear_error();
		if (SSL_read_ex(t->ssl, p + got, len - got, &n) != 1)
			break;
		got += n;
	}
	ERR_clear_error();
	return got;
}

ssize_t
tls_read(tls_conn *t, void *buf, size_t len, long long deadline_ms, char **err_r)
{
	size_t n;
	int r, e;

	t->sys_errno = 0;
	for (;;) {
		ERR_clear_error();
		r = SSL_read_ex(t->ssl, buf, len, &n);
		if (r == 1)
			return (ssize_t)(n + tls_read_more(t, (char *)buf + n, len - n));
		e = SSL_get_error(t->ssl, r);
		if (e == SSL_ERROR_ZERO_RETURN)
			return 0;
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			if (tls_wait(t, e, deadline_ms) == 0)
				continue;
			if (errno == ETIMEDOUT) {
				*err_r = err_fmt("TLS: read from %s timed out", t->host);
				errno = ETIMEDOUT;
			} else {
				*err_r = err_fmt("TLS: read from %s: poll: %s", t->host,
						  strerror(errno));
			}
			return -1;
		}
		if (t->eof && t->sys_errno == 0 && ERR_peek_last_error() == 0)
			return 0;
		*err_r = tls_describe_failure(t, "read", e);
		errno = EPROTO;
		return -1;
	}
}

int
tls_write(tls_conn *t, const void *buf, size_t len, long long deadline_ms, char **err_r)
{
	const char *p = buf;
	size_t n;
	int r, e;

	t->sys_errno = 0;
	while (len > 0) {
		ERR_clear_error();
		r = SSL_write_ex(t->ssl, p, len, &n);
		if (r == 1) {
			p += n;
			len -= n;
			continue;
		}
		e = SSL_get_error(t->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			if (tls_wait(t, e, deadline_ms) == 0)
				continue;
			if (errno == ETIMEDOUT) {
				*err_r = err_fmt("TLS: write to %s timed out", t->host);
				errno = ETIMEDOUT;
			} else {
				*err_r = err_fmt("TLS: write to %s: poll: %s", t->host,
						  strerror(errno));
			}
			return -1;
		}
		*err_r = tls_describe_failure(t, "write", e);
		errno = EPROTO;
		return -1;
	}
	return 0;
}

size_t
tls_pending(tls_conn *t)
{
	int n = SSL_pending(t->ssl);

	return n > 0 ? (size_t)n : 0;
}

const char *
tls_describe(tls_conn *t)
{
	return t->desc;
}

const char *
tls_cert(tls_conn *t)
{
	return t->cert;
}

void
tls_close(tls_conn **tp)
{
	tls_conn *t = *tp;

	if (t == NULL)
		return;
	if (t->ssl != NULL) {
		/* One non-blocking attempt: a goodbye is not worth waiting for. */
		if (SSL_is_init_finished(t->ssl) && !t->eof && t->sys_errno == 0) {
			ERR_clear_error();
			(void)SSL_shutdown(t->ssl);
		}
		SSL_free(t->ssl);
	}
	SSL_CTX_free(t->ctx);
	BIO_meth_free(t->meth); /* after SSL_free: the BIO uses it until then */
	free(t->host);
	free(t);
	ERR_clear_error();
	*tp = NULL;
}

int
tls_md5_hex(const void *data, size_t len, char hex[33])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	EVP_MD *md5;
	int ok;

	hex[0] = '\0';
	md5 = EVP_MD_fetch(NULL, "MD5", NULL);
	if (md5 == NULL) {
		ERR_clear_error();
		return -1;
	}
	ok = EVP_Digest(data, len, md, &mdlen, md5, NULL) == 1 && mdlen == 16;
	EVP_MD_free(md5);
	if (!ok) {
		ERR_clear_error();
		return -1;
	}
	for (i = 0; i < 16; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 0x0f];
	}
	hex[32] = '\0';
	return 0;
}


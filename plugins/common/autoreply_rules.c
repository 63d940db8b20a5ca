/* mailmill - ISC licence, see LICENSE */
#include <stdio.h>
#include <string.h>
#include "autoreply_rules.h"

int
autoreply_robot_sender(const char *addr)
{
	static const char *const exact[] = {
		"mailer-daemon", "postmaster", "noreply", "no-reply", "no_reply", "donotreply",
		"do-not-reply", "do_not_reply", "bounce", "bounces", "listserv", "majordomo", NULL
	};
	const char *at = strrchr(addr, '@');
	size_t n = at != NULL ? (size_t)(at - addr) : strlen(addr);
	char local[256];

	if (n == 0 || n >= sizeof(local))
		return n == 0;
	for (size_t i = 0; i < n; i++)
		local[i] = g_ascii_tolower(addr[i]);
	local[n] = '\0';
	for (const char *const *e = exact; *e != NULL; e++)
		if (strcmp(local, *e) == 0)
			return 1;
	if (strncmp(local, "owner-", 6) == 0 || (n > 8 && strcmp(local + n - 8, "-request") == 0) ||
	    (n > 6 && strcmp(local + n - 6, "-owner") == 0) || strncmp(local, "bounce-", 7) == 0 ||
	    strncmp(local, "bounces+", 8) == 0)
		return 1;
	return 0;
}

static int
autoreply_ours(const autoreply_rules *r, const char *addr)
{
	for (char **a = r->addresses; a != NULL && *a != NULL; a++)
		if (g_ascii_strcasecmp(*a, addr) == 0)
			return 1;
	return 0;
}

/* 1 if a mailbox of list (groups looked into) is one of ours. */
static int
autoreply_list_ours(const autoreply_rules *r, InternetAddressList *list)
{
	int n = list != NULL ? internet_address_list_length(list) : 0;

	for (int i = 0; i < n; i++) {
		InternetAddress *ia = internet_address_list_get_address(list, i);

		if (INTERNET_ADDRESS_IS_MAILBOX(ia) &&
		    autoreply_ours(r, internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia))))
			return 1;
		if (INTERNET_ADDRESS_IS_GROUP(ia) &&
		    autoreply_list_ours(r, internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia))))
			return 1;
	}
	return 0;
}

/*
 * Why the field (name: v) marks mail sent by a program to many or to
 * nobody in particular (RFC 3834 section 2, RFC 2369, RFC 2076), written
 * to buf; NULL if it does not.
 */
static const char *
autoreply_robot_field(const char *name, const char *v, char *buf, size_t n)
{
	if (g_ascii_strcasecmp(name, "Auto-Submitted") == 0 &&
	    !(strcspn(v, " \t;(") == 2 && g_ascii_strncasecmp(v, "no", 2) == 0)) {
		/* Only the keyword "no" ("no; comment"), not "nothing". */
		snprintf(buf, n, "Auto-Submitted: %.100s", v);
		return buf;
	}
	if (g_ascii_strcasecmp(name, "Precedence") == 0 &&
	    (g_ascii_strcasecmp(v, "bulk") == 0 || g_ascii_strcasecmp(v, "list") == 0 ||
	     g_ascii_strcasecmp(v, "junk") == 0)) {
		snprintf(buf, n, "Precedence: %.20s", v);
		return buf;
	}
	if (g_ascii_strncasecmp(name, "List-", 5) == 0) {
		snprintf(buf, n, "mailing list mail (%.60s)", name);
		return buf;
	}
	return NULL;
}

struct autoreply_scan {
	const autoreply_rules *r;
	int addressed;
	const char *why;
	char *buf;
	size_t n;
};

/* An autoreply_field_fn: 1 (and scan->why) at the first field that rules
 * the reply out. */
static int
autoreply_field(const char *name, const char *v, void *arg)
{
	struct autoreply_scan *sc = arg;
	const autoreply_rules *r = sc->r;
	char *buf = sc->buf;
	size_t n = sc->n;

	if (g_ascii_strcasecmp(name, "X-Loop") == 0 && r->loop_marker != NULL &&
	    g_ascii_strcasecmp(v, r->loop_marker) == 0) {
		sc->why = "it carries our X-Loop marker (a loop)";
	} else if ((sc->why = autoreply_robot_field(name, v, buf, n)) != NULL) {
		/* that is the reason */
	} else if (g_ascii_strcasecmp(name, "X-Auto-Response-Suppress") == 0) {
		snprintf(buf, n, "X-Auto-Response-Suppress: %.60s", v);
		sc->why = buf;
	} else if (r->spam_header != NULL && g_ascii_strcasecmp(name, r->spam_header) == 0) {
		char *lv = g_ascii_strdown(v, -1), *want = r->spam_value != NULL ?
			g_ascii_strdown(r->spam_value, -1) : NULL;

		if (want == NULL || strstr(lv, want) != NULL) {
			snprintf(buf, n, "marked as spam (%.60s: %.60s)", name, v);
			sc->why = buf;
		}
		g_free(lv);
		g_free(want);
	} else if (!sc->addressed && (g_ascii_strcasecmp(name, "To") == 0 ||
				      g_ascii_strcasecmp(name, "Cc") == 0 ||
				      g_ascii_strcasecmp(name, "Resent-To") == 0 ||
				      g_ascii_strcasecmp(name, "Resent-Cc") == 0)) {
		InternetAddressList *l = internet_address_list_parse(NULL, v);

		sc->addressed = autoreply_list_ours(r, l);
		if (l != NULL)
			g_object_unref(l);
	}
	return sc->why != NULL;
}

const char *
autoreply_skip(const autoreply_rules *r, autoreply_walk_fn walk, void *src, const char *sender,
	       char *buf, size_t n)
{
	struct autoreply_scan sc = { r, 0, NULL, buf, n };

	if (walk(src, autoreply_field, &sc) != 0 && sc.why != NULL)
		return sc.why;
	if (!sc.addressed && !r->any_recipient)
		return "none of our addresses is in To, Cc, Resent-To or Resent-Cc";
	if (sender == NULL)
		return "no sender to reply to";
	if (autoreply_robot_sender(sender)) {
		snprintf(buf, n, "the sender <%.200s> is a robot or list address", sender);
		return buf;
	}
	if (autoreply_ours(r, sender))
		return "the sender is one of our own addresses";
	return NULL;
}

static const char autoreply_dsn_why[] = "a delivery status report (multipart/report)";

struct autoreply_robot_scan {
	const char *why;
	char *buf;
	size_t n;
};

/* 1 if the From value's (first) mailbox is MAILER-DAEMON@anywhere. */
static int
autoreply_from_daemon(const char *v)
{
	InternetAddressList *l = internet_address_list_parse(NULL, v);
	InternetAddress *ia = l != NULL && internet_address_list_length(l) > 0 ?
			      internet_address_list_get_address(l, 0) : NULL;
	const char *a = ia != NULL && INTERNET_ADDRESS_IS_MAILBOX(ia) ?
			internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)) : NULL;
	int hit = a != NULL && g_ascii_strncasecmp(a, "mailer-daemon", 13) == 0 &&
		  (a[13] == '@' || a[13] == '\0');

	if (l != NULL)
		g_object_unref(l);
	return hit;
}

/* 1 for multipart/report; report-type=delivery-status (RFC 3464). */
static int
autoreply_dsn_type(GMimeContentType *ct)
{
	const char *rt = ct != NULL ? g_mime_content_type_get_parameter(ct, "report-type") : NULL;

	return ct != NULL && g_mime_content_type_is_type(ct, "multipart", "report") && rt != NULL &&
	       g_ascii_strcasecmp(rt, "delivery-status") == 0;
}

/* An autoreply_field_fn for autoreply_robot_mail. */
static int
autoreply_robot_scan_field(const char *name, const char *v, void *arg)
{
	struct autoreply_robot_scan *sc = arg;

	if (g_ascii_strcasecmp(name, "Return-Path") == 0) {
		char *t = g_strstrip(g_strdup(v));

		if (strcmp(t, "<>") == 0)
			sc->why = "a bounce (null sender <>)";
		g_free(t);
	} else if (g_ascii_strcasecmp(name, "From") == 0 && autoreply_from_daemon(v)) {
		sc->why = "a bounce (from MAILER-DAEMON)";
	} else if (g_ascii_strcasecmp(name, "Content-Type") == 0) {
		GMimeContentType *ct = g_mime_content_type_parse(NULL, v);

		if (autoreply_dsn_type(ct))
			sc->why = autoreply_dsn_why;
		if (ct != NULL)
			g_object_unref(ct);
	} else {
		sc->why = autoreply_robot_field(name, v, sc->buf, sc->n);
	}
	return sc->why != NULL;
}

const char *
autoreply_robot_mail(autoreply_walk_fn walk, void *src, GMimeObject *top, char *buf, size_t n)
{
	struct autoreply_robot_scan sc = { NULL, buf, n };

	(void)walk(src, autoreply_robot_scan_field, &sc);
	if (sc.why == NULL && top != NULL && autoreply_dsn_type(g_mime_object_get_content_type(top)))
		sc.why = autoreply_dsn_why;
	return sc.why;
}

char *
autoreply_expand(const char *tmpl, const char *subject, const char *sender)
{
	GString *out = g_string_new(NULL);

	for (const char *p = tmpl; *p; p++) {
		if (strncmp(p, "{subject}", 9) == 0) {
			g_string_append(out, subject != NULL ? subject : "");
			p += 8;
		} else if (strncmp(p, "{sender}", 8) == 0) {
			g_string_append(out, sender != NULL ? sender : "");
			p += 7;
		} else {
			g_string_append_c(out, *p);
		}
	}
	return g_string_free(out, FALSE);
}

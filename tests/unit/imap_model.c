/* mailmill - ISC licence, see LICENSE */
/*
 * A model IMAP server for the account run's unit tests (imap_model.h):
 * only what the IMAP source uses, parsed loosely, with the state in a file.
 */
#define _GNU_SOURCE
#include <config.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>

#include "tests/unit/imap_model.h"
#include "tests/unit/script_server.h"

typedef struct mmsg {
	unsigned uid;
	char flags[128];   /* "," separated, "" none */
	char id[64];
} mmsg;

typedef struct mfolder {
	char name[128];
	unsigned uidvalidity;
	GArray *msgs;      /* mmsg */
} mfolder;

/* "drop CMD #N", "no CMD #N": the Nth command starting with CMD. */
typedef struct mmatch {
	char cmd[64];
	unsigned nth;       /* 1: the first */
} mmatch;

typedef struct model {
	char caps[512];
	mmatch drop, refuse;
	GPtrArray *folders; /* mfolder */
	mfolder *sel;
	int readonly;
	FILE *out;
	int fd;
	FILE *tr;
	char *rbuf;
	size_t rlen, rcap;
	int lazy_store;    /* "lazy-store": see imap_model.h */
	GPtrArray *stores; /* mstore: UID STORE not yet done */
	unsigned ncmd;     /* commands read */
} model;

/* A UID STORE still running while the commands behind it run. */
typedef struct mstore {
	char tag[64], set[256], flags[256];
	mfolder *f;
	unsigned ncmd;
} mstore;

char *
imap_model_body(const char *id)
{
	return g_strdup_printf("From: sender-%s@example.net\r\nTo: help@example.org\r\n"
			       "Subject: message %s\r\nMessage-ID: <%s@example.net>\r\n"
			       "Date: Fri, 04 Dec 2026 10:00:00 +0000\r\n\r\nbody of %s\r\n",
			       id, id, id, id);
}

static mfolder *
model_folder(model *m, const char *name)
{
	for (guint i = 0; i < m->folders->len; i++) {
		mfolder *f = g_ptr_array_index(m->folders, i);

		if (strcmp(f->name, name) == 0)
			return f;
	}
	return NULL;
}

static mfolder *
model_add_folder(model *m, const char *name, unsigned v)
{
	mfolder *f = g_new0(mfolder, 1);

	g_strlcpy(f->name, name, sizeof f->name);
	f->uidvalidity = v;
	f->msgs = g_array_new(FALSE, TRUE, sizeof(mmsg));
	g_ptr_array_add(m->folders, f);
	return f;
}

static void
match_load(mmatch *x, const char *spec)
{
	char *nth;

	g_strlcpy(x->cmd, spec, sizeof x->cmd);
	x->nth = 1;
	if ((nth = strstr(x->cmd, " #")) != NULL) {
		x->nth = (unsigned)strtoul(nth + 2, NULL, 10);
		*nth = '\0';
	}
}

/* 1 (once) when cmd is the one x waits for. */
static int
match_hit(mmatch *x, const char *cmd)
{
	if (x->cmd[0] == '\0' || strncmp(cmd, x->cmd, strlen(x->cmd)) != 0 || --x->nth != 0)
		return 0;
	x->cmd[0] = '\0';
	return 1;
}

static void
model_load(model *m, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512];
	mfolder *cur = NULL;

	m->folders = g_ptr_array_new();
	if (f == NULL)
		_exit(101);
	while (fgets(line, sizeof line, f) != NULL) {
		char a[256], b[256], c[256];
		unsigned n;

		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "caps ", 5) == 0)
			g_strlcpy(m->caps, line + 5, sizeof m->caps);
		else if (strcmp(line, "lazy-store") == 0)
			m->lazy_store = 1;
		else if (strncmp(line, "drop ", 5) == 0)
			match_load(&m->drop, line + 5);
		else if (strncmp(line, "no ", 3) == 0)
			match_load(&m->refuse, line + 3);
		else if (sscanf(line, "folder %255s %u", a, &n) == 2)
			cur = model_add_folder(m, a, n);
		else if (cur != NULL && sscanf(line, "msg %u %255s %255s", &n, b, c) == 3) {
			mmsg msg = { .uid = n };

			g_strlcpy(msg.flags, strcmp(b, "-") == 0 ? "" : b, sizeof msg.flags);
			g_strlcpy(msg.id, c, sizeof msg.id);
			g_array_append_val(cur->msgs, msg);
		}
	}
	fclose(f);
}

static void
model_save(model *m, const char *path)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		_exit(102);
	fprintf(f, "caps %s\n", m->caps);
	if (m->lazy_store)
		fprintf(f, "lazy-store\n");
	for (guint i = 0; i < m->folders->len; i++) {
		mfolder *fo = g_ptr_array_index(m->folders, i);

		fprintf(f, "folder %s %u\n", fo->name, fo->uidvalidity);
		for (guint j = 0; j < fo->msgs->len; j++) {
			mmsg *g = &g_array_index(fo->msgs, mmsg, j);

			fprintf(f, "msg %u %s %s\n", g->uid, g->flags[0] ? g->flags : "-", g->id);
		}
	}
	fclose(f);
}

static void
say(model *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(m->out, fmt, ap);
	va_end(ap);
}

/* One client line, literals folded in as quoted strings; NULL at EOF. */
static char *
model_read(model *m)
{
	GString *line = g_string_new(NULL);

	for (;;) {
		char ch;
		ssize_t k = read(m->fd, &ch, 1);
		size_t n;

		if (k <= 0) {
			g_string_free(line, TRUE);
			return NULL;
		}
		if (ch != '\n') {
			if (ch != '\r')
				g_string_append_c(line, ch);
			continue;
		}
		n = line->len;
		if (n > 2 && line->str[n - 1] == '}') {
			char *open = strrchr(line->str, '{');
			unsigned long size = strtoul(open + 1, NULL, 10);
			int plus = line->str[n - 2] == '+';
			char *lit = g_malloc(size + 1);
			size_t got = 0;

			if (!plus) {
				say(m, "+ go on\r\n");
				fflush(m->out);
			}
			while (got < size) {
				ssize_t r = read(m->fd, lit + got, size - got);

				if (r <= 0)
					_exit(103);
				got += (size_t)r;
			}
			lit[size] = '\0';
			g_string_truncate(line, (gsize)(open - line->str));
			g_string_append_printf(line, "\"%s\"", lit);
			g_free(lit);
			continue;
		}
		return g_string_free(line, FALSE);
	}
}

/* The next argument of *p: an atom, a quoted string (unquoted) or a
 * parenthesised list (as it is); allocated; NULL at the end. */
static char *
model_arg(const char **p)
{
	const char *s = *p, *e;

	while (*s == ' ')
		s++;
	if (*s == '\0')
		return NULL;
	if (*s == '"') {
		GString *g = g_string_new(NULL);

		for (e = s + 1; *e != '\0' && *e != '"'; e++) {
			if (*e == '\\' && e[1] != '\0')
				e++;
			g_string_append_c(g, *e);
		}
		*p = *e == '"' ? e + 1 : e;
		return g_string_free(g, FALSE);
	}
	if (*s == '(') {
		int depth = 0;

		for (e = s; *e != '\0'; e++) {
			depth += *e == '(' ? 1 : *e == ')' ? -1 : 0;
			if (depth == 0)
				break;
		}
		*p = *e != '\0' ? e + 1 : e;
		return g_strndup(s, (gsize)(e - s + (*e != '\0')));
	}
	for (e = s; *e != '\0' && *e != ' '; e++)
		;
	*p = e;
	return g_strndup(s, (gsize)(e - s));
}

/* Whether uid is in the UID set (against the folder's highest). */
static int
in_set(const char *set, unsigned uid, unsigned max)
{
	gchar **parts = g_strsplit(set, ",", -1);
	int hit = 0;

	for (int i = 0; parts[i] != NULL && !hit; i++) {
		char *colon = strchr(parts[i], ':');
		unsigned lo, hi;

		lo = parts[i][0] == '*' ? max : (unsigned)strtoul(parts[i], NULL, 10);
		hi = colon == NULL ? lo : colon[1] == '*' ? max : (unsigned)strtoul(colon + 1, NULL, 10);
		if (lo > hi) {
			unsigned t = lo;

			lo = hi;
			hi = t;
		}
		hit = uid >= lo && uid <= hi;
	}
	g_strfreev(parts);
	return hit;
}

static unsigned
max_uid(const mfolder *f)
{
	return f->msgs->len > 0 ? g_array_index(f->msgs, mmsg, f->msgs->len - 1).uid : 0;
}

static void
add_flags(mmsg *g, const char *list)
{
	gchar **fl = g_strsplit_set(list, "() ", -1);

	for (int i = 0; fl[i] != NULL; i++) {
		if (fl[i][0] == '\0' || strstr(g->flags, fl[i]) != NULL)
			continue;
		if (g->flags[0] != '\0')
			g_strlcat(g->flags, ",", sizeof g->flags);
		g_strlcat(g->flags, fl[i], sizeof g->flags);
	}
	g_strfreev(fl);
}

/* Remove messages of the selected folder for which keep() is false, with
 * an untagged EXPUNGE each. */
static void
expunge_where(model *m, const char *set)
{
	mfolder *f = m->sel;
	unsigned max = max_uid(f);

	for (guint i = 0; i < f->msgs->len;) {
		mmsg *g = &g_array_index(f->msgs, mmsg, i);

		if (strstr(g->flags, "\\Deleted") != NULL && (set == NULL || in_set(set, g->uid, max))) {
			say(m, "* %u EXPUNGE\r\n", i + 1);
			g_array_remove_index(f->msgs, i);
		} else {
			i++;
		}
	}
}

static void
copy_to(model *m, const char *set, mfolder *dst, int move)
{
	mfolder *f = m->sel;
	unsigned max = max_uid(f);

	for (guint i = 0; i < f->msgs->len;) {
		mmsg *g = &g_array_index(f->msgs, mmsg, i);

		if (in_set(set, g->uid, max)) {
			mmsg c = *g;

			c.uid = max_uid(dst) + 1;
			g_array_append_val(dst->msgs, c);
			if (move) {
				say(m, "* %u EXPUNGE\r\n", i + 1);
				g_array_remove_index(f->msgs, i);
				continue;
			}
		}
		i++;
	}
}

static void
model_fetch(model *m, const char *tag, const char *set, const char *items)
{
	mfolder *f = m->sel;
	unsigned max = max_uid(f);
	int body = strstr(items, "BODY.PEEK[]") != NULL || strstr(items, "BODY[]") != NULL;

	for (guint i = 0; i < f->msgs->len; i++) {
		mmsg *g = &g_array_index(f->msgs, mmsg, i);
		char *b;

		if (!in_set(set, g->uid, max))
			continue;
		b = imap_model_body(g->id);
		if (body)
			say(m, "* %u FETCH (UID %u BODY[] {%zu}\r\n%s)\r\n", i + 1, g->uid, strlen(b), b);
		else
			say(m, "* %u FETCH (UID %u RFC822.SIZE %zu)\r\n", i + 1, g->uid, strlen(b));
		g_free(b);
	}
	say(m, "%s OK FETCH done\r\n", tag);
}

/* The client has sent more than the server has read. */
static int
input_waits(model *m)
{
	struct pollfd p = { .fd = m->fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

/* The UID STOREs read before command number `before` finish: their flags
 * are set and they are answered. */
static void
stores_done(model *m, unsigned before)
{
	guint k = 0;

	while (k < m->stores->len) {
		mstore *w = g_ptr_array_index(m->stores, k);
		unsigned max = max_uid(w->f);

		if (w->ncmd >= before) {
			k++;
			continue;
		}
		for (guint i = 0; i < w->f->msgs->len; i++) {
			mmsg *g = &g_array_index(w->f->msgs, mmsg, i);

			if (in_set(w->set, g->uid, max))
				add_flags(g, w->flags);
		}
		say(m, "%s OK stored\r\n", w->tag);
		g_ptr_array_remove_index(m->stores, k);
		g_free(w);
	}
}

/* One command; 0 goes on, 1 ends the connection. */
static int
model_command(model *m, const char *line)
{
	const char *p = line;
	char *tag = model_arg(&p), *cmd = model_arg(&p), *a1 = NULL, *a2 = NULL, *a3 = NULL;
	int end = 0;

	if (tag == NULL || cmd == NULL) {
		say(m, "* BAD empty\r\n");
		goto out;
	}
	for (char *c = cmd; *c; c++)
		*c = (char)toupper((unsigned char)*c);
	if (strcmp(cmd, "UID") == 0) {
		char *sub = model_arg(&p);
		char *u = g_strdup_printf("UID %s", sub != NULL ? sub : "");

		for (char *c = u; *c; c++)
			*c = (char)toupper((unsigned char)*c);
		g_free(sub);
		g_free(cmd);
		cmd = u;
	}
	fprintf(m->tr, "%s%s\n", cmd, p);
	fflush(m->tr);
	if (match_hit(&m->drop, cmd)) {
		end = 1;
		goto out;
	}
	if (match_hit(&m->refuse, cmd)) {
		say(m, "%s NO refused\r\n", tag);
		goto out;
	}
	a1 = model_arg(&p);
	a2 = model_arg(&p);
	a3 = model_arg(&p);
	if (strcmp(cmd, "CAPABILITY") == 0) {
		say(m, "* CAPABILITY %s\r\n%s OK done\r\n", m->caps, tag);
	} else if (strcmp(cmd, "LOGIN") == 0) {
		say(m, "%s OK [CAPABILITY %s] logged in\r\n", tag, m->caps);
	} else if (strcmp(cmd, "AUTHENTICATE") == 0) {
		if (a2 == NULL) {
			char *resp;

			say(m, "+ \r\n");
			fflush(m->out);
			resp = model_read(m);
			if (resp == NULL)
				_exit(104);
			g_free(resp);
		}
		say(m, "%s OK [CAPABILITY %s] authenticated\r\n", tag, m->caps);
	} else if (strcmp(cmd, "SELECT") == 0 || strcmp(cmd, "EXAMINE") == 0) {
		mfolder *f = a1 != NULL ? model_folder(m, a1) : NULL;

		m->sel = f;
		if (f == NULL) {
			say(m, "%s NO [NONEXISTENT] no such folder\r\n", tag);
		} else {
			m->readonly = cmd[0] == 'E';
			say(m, "* %u EXISTS\r\n* 0 RECENT\r\n* FLAGS (\\Seen \\Deleted)\r\n"
			    "* OK [UIDVALIDITY %u] v\r\n* OK [UIDNEXT %u] n\r\n%s OK [%s] done\r\n",
			    f->msgs->len, f->uidvalidity, max_uid(f) + 1, tag,
			    m->readonly ? "READ-ONLY" : "READ-WRITE");
		}
	} else if (strcmp(cmd, "UID FETCH") == 0 && m->sel != NULL && a1 != NULL) {
		model_fetch(m, tag, a1, a2 != NULL ? a2 : "");
	} else if (strcmp(cmd, "UID STORE") == 0 && m->sel != NULL && a3 != NULL && !m->readonly) {
		mstore *w = g_new0(mstore, 1);

		g_strlcpy(w->tag, tag, sizeof w->tag);
		g_strlcpy(w->set, a1, sizeof w->set);
		g_strlcpy(w->flags, a3, sizeof w->flags);
		w->f = m->sel;
		w->ncmd = m->ncmd;
		g_ptr_array_add(m->stores, w);
		if (!m->lazy_store || !input_waits(m))
			stores_done(m, m->ncmd + 1);
	} else if (strcmp(cmd, "UID EXPUNGE") == 0 && m->sel != NULL && a1 != NULL &&
		   strstr(m->caps, "UIDPLUS") != NULL && !m->readonly) {
		expunge_where(m, a1);
		say(m, "%s OK expunged\r\n", tag);
	} else if (strcmp(cmd, "EXPUNGE") == 0 && m->sel != NULL && !m->readonly) {
		expunge_where(m, NULL);
		say(m, "%s OK expunged\r\n", tag);
	} else if ((strcmp(cmd, "UID MOVE") == 0 && strstr(m->caps, "MOVE") != NULL) ||
		   strcmp(cmd, "UID COPY") == 0) {
		mfolder *dst = a2 != NULL ? model_folder(m, a2) : NULL;

		if (m->sel == NULL || a1 == NULL || m->readonly)
			say(m, "%s BAD no\r\n", tag);
		else if (dst == NULL)
			say(m, "%s NO [TRYCREATE] no such folder\r\n", tag);
		else {
			copy_to(m, a1, dst, cmd[4] == 'M');
			say(m, "%s OK done\r\n", tag);
		}
	} else if (strcmp(cmd, "CREATE") == 0 && a1 != NULL) {
		if (model_folder(m, a1) != NULL) {
			say(m, "%s NO [ALREADYEXISTS] exists\r\n", tag);
		} else {
			model_add_folder(m, a1, 5000 + m->folders->len);
			say(m, "%s OK created\r\n", tag);
		}
	} else if (strcmp(cmd, "LIST") == 0 && a2 != NULL) {
		if (model_folder(m, a2) != NULL)
			say(m, "* LIST () \"/\" \"%s\"\r\n", a2);
		say(m, "%s OK listed\r\n", tag);
	} else if (strcmp(cmd, "NOOP") == 0 || strcmp(cmd, "UNSELECT") == 0) {
		say(m, "%s OK done\r\n", tag);
	} else if (strcmp(cmd, "LOGOUT") == 0) {
		say(m, "* BYE bye\r\n%s OK logged out\r\n", tag);
		end = 1;
	} else {
		say(m, "%s BAD not understood\r\n", tag);
	}
out:
	fflush(m->out);
	g_free(tag);
	g_free(cmd);
	g_free(a1);
	g_free(a2);
	g_free(a3);
	return end;
}

static void
model_serve(int fd, const char *state, const char *transcript)
{
	model m = { .fd = fd };
	char *line;

	model_load(&m, state);
	if ((m.out = fdopen(dup(fd), "w")) == NULL || (m.tr = fopen(transcript, "a")) == NULL)
		_exit(105);
	say(&m, "* OK [CAPABILITY %s] model ready\r\n", m.caps);
	fflush(m.out);
	m.stores = g_ptr_array_new();
	while ((line = model_read(&m)) != NULL) {
		int end;

		m.ncmd++;
		end = model_command(&m, line);
		/* a lazy UID STORE ends once the command behind it has run */
		stores_done(&m, m.ncmd);
		fflush(m.out);
		g_free(line);
		if (end)
			break;
	}
	stores_done(&m, m.ncmd + 1);
	g_ptr_array_free(m.stores, TRUE);
	model_save(&m, state);
	fclose(m.out);
	fclose(m.tr);
	close(fd);
}

imap_model
imap_model_start(const char *state_path, const char *transcript_path, int conns)
{
	imap_model mo = { 0 };
	int lfd = script_server_bind(mo.port);

	mo.pid = fork();
	assert_true(mo.pid >= 0);
	if (mo.pid == 0) {
		alarm(60);
		for (int i = 0; i < conns; i++) {
			int c = accept(lfd, NULL, NULL);

			if (c < 0)
				_exit(106);
			model_serve(c, state_path, transcript_path);
		}
		_exit(0);
	}
	close(lfd);
	return mo;
}

void
imap_model_finish(imap_model *m)
{
	int status = 0;

	assert_int_equal(waitpid(m->pid, &status, 0), m->pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

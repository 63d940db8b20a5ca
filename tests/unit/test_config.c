/* mailmill - ISC licence, see LICENSE */
/*
 * Configuration validation against real files in a temporary directory:
 * a full valid file, then one file per kind of mistake, each asserting the
 * exact "file:line: message" lines and that nothing else was reported.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/core/cfg.h"
#include "daemon/core/log.h"
#include "daemon/core/secret.h"

static char tmpdir[256];
static char pwfile[PATH_MAX];   /* a password file with mode 0600 */

/* Write text to dir/name with mode; "@D" in text becomes the directory. */
static void
write_file(const char *name, const char *text, mode_t mode, char *path_r, size_t size)
{
	FILE *fp;

	snprintf(path_r, size, "%s/%s", tmpdir, name);
	fp = fopen(path_r, "w");
	assert_non_null(fp);
	for (const char *p = text; *p; p++) {
		if (p[0] == '@' && p[1] == 'D') {
			fputs(tmpdir, fp);
			p++;
		} else {
			fputc(*p, fp);
		}
	}
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(path_r, mode), 0);
}

static int
setup(void **state)
{
	char path[PATH_MAX];

	snprintf(tmpdir, sizeof(tmpdir), "%s/mm-test-config.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	write_file("pw", "hunter2\n", 0600, pwfile, sizeof(pwfile));
	write_file("pw-open", "hunter2\n", 0644, path, sizeof(path));
	return 0;
}

static int
teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------ a valid file */

static const char full_conf[] =
	"state_dir = \"@D/state\";\n"
	"plugin_dir = \"@D/plugins\";\n"
	"log = { level = \"debug\"; target = \"syslog\"; };\n"
	"workers = 4; user = \"mail\";\n"               /* reserved */
	"smtp = { host = \"relay\"; };\n"               /* reserved */
	"accounts = (\n"
	"  { name = \"support\";\n"                     /* line 7 */
	"    host = \"pop.example.org\"; port = 1995;\n"
	"    tls = \"starttls\"; ca_file = \"/etc/ssl/ca.pem\";\n"
	"    user = \"support\"; password_file = \"@D/pw\";\n"
	"    auth = \"apop\"; allow_plaintext_password = false;\n"
	"    interval = \"2h\"; keep = true; max_size = \"512K\";\n"
	"    timeout = 90; connect_timeout = \"5s\"; pipeline_end = \"defer\";\n"
	"    max_attempts = 3;\n"                       /* reserved */
	"    pipeline = (\n"
	"      { plugin = \"archive\"; path = \"/srv/a\"; format = \"maildir\"; },\n"
	"      { plugin = \"./x/verdict.so\"; name = \"last\"; verdict = \"done\"; }\n"
	"    );\n"
	"  },\n"
	"  { name = \"min\"; host = \"h\"; user = \"u\";\n"   /* line 20 */
	"    password_command = [\"/bin/echo\", \"pw\"];\n"
	"    pipeline = ( { plugin = \"archive\"; } ); },\n"
	"  { name = \"plain\"; host = \"h\"; user = \"u\"; tls = \"none\";\n"
	"    password_command = (\"/bin/echo\", \"pw\"); allow_plaintext_password = true;\n"
	"    port = \"pop3\"; max_size = 0; pipeline_end = \"done\";\n"
	"    pipeline = ( { plugin = \"archive\"; } ); }\n"
	");\n";

static void
test_full(void **state)
{
	char path[PATH_MAX], *err = NULL;
	const cfg_account *a;
	cfg *c = NULL;

	write_file("full.conf", full_conf, 0600, path, sizeof(path));
	if (cfg_load(path, &c, &err) < 0)
		fail_msg("valid file refused:\n%s", err);
	assert_null(err);
	assert_string_equal(c->path, path);
	assert_non_null(strstr(c->state_dir, "/state"));
	assert_non_null(strstr(c->plugin_dir, "/plugins"));
	assert_int_equal(c->log_level, LOG_LVL_DEBUG);
	assert_string_equal(c->log_target, "syslog");
	assert_int_equal(c->n_accounts, 3);

	a = cfg_find_account(c, "support");
	assert_ptr_equal(a, &c->accounts[0]);
	assert_string_equal(a->file, path);
	assert_int_equal(a->line, 7);
	assert_string_equal(a->host, "pop.example.org");
	assert_string_equal(a->port, "1995");
	assert_int_equal(a->tls, CFG_TLS_STARTTLS);
	assert_string_equal(a->ca_file, "/etc/ssl/ca.pem");
	assert_string_equal(a->user, "support");
	assert_int_equal(a->secret.kind, SECRET_FILE);
	assert_string_equal(a->secret.value, pwfile);
	assert_int_equal(a->auth, CFG_AUTH_APOP);
	assert_int_equal(a->interval_s, 7200);
	assert_true(a->keep);
	assert_int_equal(a->max_size, 512 * 1024);
	assert_int_equal(a->timeout_s, 90);
	assert_int_equal(a->connect_timeout_s, 5);
	assert_int_equal(a->end, CFG_END_DEFER);
	assert_int_equal(a->n_stages, 2);
	assert_string_equal(a->stages[0].plugin, "archive");
	assert_string_equal(a->stages[0].name, "archive");
	assert_int_equal(a->stages[0].line, 16);
	assert_string_equal(config_setting_get_string(
		config_setting_get_member(a->stages[0].settings, "format")), "maildir");
	assert_string_equal(a->stages[1].plugin, "./x/verdict.so");
	assert_string_equal(a->stages[1].name, "last");

	/* Defaults of a minimal account. */
	a = cfg_find_account(c, "min");
	assert_non_null(a);
	assert_int_equal(a->line, 20);
	assert_string_equal(a->port, "995");
	assert_int_equal(a->tls, CFG_TLS_IMPLICIT);
	assert_null(a->ca_file);
	assert_int_equal(a->auth, CFG_AUTH_AUTO);
	assert_int_equal(a->interval_s, 300);
	assert_false(a->keep);
	assert_int_equal(a->max_size, 50 * 1024 * 1024);
	assert_int_equal(a->timeout_s, 60);
	assert_int_equal(a->connect_timeout_s, 30);
	assert_int_equal(a->end, CFG_END_KEEP);
	assert_int_equal(a->secret.kind, SECRET_COMMAND);
	assert_string_equal(a->secret.argv[0], "/bin/echo");
	assert_string_equal(a->secret.argv[1], "pw");
	assert_null(a->secret.argv[2]);

	a = cfg_find_account(c, "plain");
	assert_non_null(a);
	assert_int_equal(a->tls, CFG_TLS_NONE);
	assert_string_equal(a->port, "pop3");
	assert_int_equal(a->max_size, 0);
	assert_int_equal(a->end, CFG_END_DONE);
	assert_int_equal(a->secret.kind, SECRET_COMMAND);

	assert_null(cfg_find_account(c, "nobody"));
	cfg_free(&c);
	assert_null(c);
}

/* Top-level defaults, and the log defaults. */
static void
test_defaults(void **state)
{
	char path[PATH_MAX], *err = NULL;
	cfg *c = NULL;

	write_file("min.conf",
		   "accounts = ( { name = \"a\"; host = \"h\"; user = \"u\";\n"
		   "  password = \"x\"; pipeline = ( { plugin = \"archive\"; } ); } );\n",
		   0600, path, sizeof(path));
	if (cfg_load(path, &c, &err) < 0)
		fail_msg("minimal file refused:\n%s", err);
	assert_string_equal(c->state_dir, LOCALSTATEDIR "/lib/mailmill");
	assert_string_equal(c->plugin_dir, PKGLIBDIR);
	assert_int_equal(c->log_level, LOG_LVL_INFO);
	assert_string_equal(c->log_target, "stderr");
	assert_int_equal(c->accounts[0].secret.kind, SECRET_INLINE);
	assert_string_equal(c->accounts[0].secret.value, "x");
	cfg_free(&c);
}

/* --------------------------------------------------------- one per mistake */

struct bad_case {
	const char *what;
	const char *text;
	mode_t mode;
	const char *want[8];  /* each must appear as "<path>" + want[i] */
};

#define ACCT_OK "host = \"h\"; user = \"u\"; password_file = \"@D/pw\"; " \
		"pipeline = ( { plugin = \"archive\"; } );"

static const struct bad_case bad_cases[] = {
	{ "unknown keys", 
	  "sate_dir = \"/x\";\n"
	  "log = { level = \"info\"; colour = true; };\n"
	  "accounts = ( { name = \"a\"; " ACCT_OK "\n"
	  "  hots = \"x\"; } );\n", 0600,
	  { ":1: unknown setting 'sate_dir'",
	    ":2: unknown setting 'colour' in log",
	    ":4: account \"a\": unknown setting 'hots'" } },
	{ "wrong types",
	  "state_dir = 5;\n"
	  "log = \"debug\";\n"
	  "accounts = ( { name = \"a\"; " ACCT_OK "\n"
	  "  port = true;\n"
	  "  keep = \"yes\";\n"
	  "  tls = 1;\n"
	  "  password_command = \"/bin/pw\"; } );\n", 0600,
	  { ":1: 'state_dir' must be a string",
	    ":2: 'log' must be a group",
	    ":4: account \"a\": 'port' must be a number or a service name",
	    ":5: account \"a\": 'keep' must be true or false",
	    ":6: account \"a\": 'tls' must be one of \"tls\", \"starttls\", \"none\"",
	    ":3: account \"a\": set only one of 'password', 'password_file', 'password_command'" } },
	{ "store group",
	  "store = { driver = \"postgresql\";\n"
	  "  conninfo = \"host=db dbname=m password=hunter2 sslmode=disable\"; };\n"
	  "accounts = ( { name = \"a\"; " ACCT_OK " } );\n", 0600,
	  { ":2: store: conninfo must not set password; use store.password_file",
	    ":2: store: conninfo must not set sslmode; use store.sslmode" } },
	{ "store group without conninfo",
	  "store = { driver = \"postgresql\"; sslmode = \"maybe\"; };\n"
	  "accounts = ( { name = \"a\"; " ACCT_OK " } );\n", 0600,
	  { ":1: store: 'sslmode' must be one of",
	    ":1: store: driver \"postgresql\" needs a conninfo" } },
	{ "store URI with a password",
	  "store = { driver = \"postgresql\"; conninfo = \"postgresql://u:hunter2@db/m\";\n"
	  "  password_file = \"/nonexistent/pw\"; };\n"
	  "accounts = ( { name = \"a\"; " ACCT_OK " } );\n", 0600,
	  { ":1: store: conninfo must not set password; use store.password_file",
	    ":2: store.password_file /nonexistent/pw" } },
	{ "conninfo for sqlite",
	  "store = { conninfo = \"host=db\"; };\n"
	  "accounts = ( { name = \"a\"; " ACCT_OK " } );\n", 0600,
	  { ":1: store: conninfo and password_file need driver = \"postgresql\"" } },
	{ "not a list",
	  "accounts = { name = \"a\"; };\n", 0600,
	  { ":1: 'accounts' must be a list of groups" } },
	{ "duplicate account name",
	  "accounts = (\n"
	  "  { name = \"a\"; " ACCT_OK " },\n"
	  "  { name = \"b\"; " ACCT_OK " },\n"
	  "  {\n"
	  "    name = \"a\"; " ACCT_OK " }\n"
	  ");\n", 0600,
	  { ":5: duplicate account name \"a\" (first defined at @P:2)" } },
	{ "bad durations and sizes",
	  "accounts = ( { name = \"a\"; " ACCT_OK "\n"
	  "  interval = \"5x\";\n"
	  "  timeout = \"-1\";\n"
	  "  connect_timeout = \" 5m\";\n"
	  "  max_size = \"5Q\"; } );\n", 0600,
	  { ":2: account \"a\": 'interval': \"5x\" is not a duration",
	    ":3: account \"a\": 'timeout': \"-1\" is not a duration",
	    ":4: account \"a\": 'connect_timeout': \" 5m\" is not a duration",
	    ":5: account \"a\": 'max_size': \"5Q\" is not a size" } },
	{ "out of range",
	  "accounts = ( { name = \"a\"; " ACCT_OK "\n"
	  "  interval = 0;\n"
	  "  max_size = \"3G\";\n"
	  "  port = 70000;\n"
	  "  timeout = \"2d\"; } );\n", 0600,
	  { ":2: account \"a\": 'interval' must be between 1s and",
	    ":3: account \"a\": 'max_size' must be at most 2147483648 bytes (2G), not 3221225472",
	    ":4: account \"a\": 'port' must be between 1 and 65535, not 70000",
	    ":5: account \"a\": 'timeout' must be between 1s and 86400s, not 172800s" } },
	{ "tls none with a password",
	  "accounts = ( { name = \"a\"; " ACCT_OK "\n"
	  "  tls = \"none\"; } );\n", 0600,
	  { ":1: account \"a\": tls = \"none\" would send the password unencrypted" } },
	{ "inline password in a readable file",
	  "accounts = ( { name = \"a\"; host = \"h\"; user = \"u\";\n"
	  "  password = \"hunter2\";\n"
	  "  pipeline = ( { plugin = \"archive\"; } ); } );\n", 0640,
	  { ":2: account \"a\": inline 'password' in @P, which group or others can read "
	    "(mode 0640); run: chmod 600 @P" } },
	{ "password file readable by others",
	  "accounts = ( { name = \"a\"; host = \"h\"; user = \"u\";\n"
	  "  password_file = \"@D/pw-open\";\n"
	  "  pipeline = ( { plugin = \"archive\"; } ); } );\n", 0644,
	  { ":2: account \"a\": password_file @D/pw-open: mode 0644 lets group or others "
	    "read or change it; run: chmod 600 @D/pw-open" } },
	{ "missing required keys",
	  "accounts = (\n"
	  "  { tls = \"tls\"; },\n"
	  "  { name = \"b\"; host = \"h\"; password = \"x\"; pipeline = (); }\n"
	  ");\n", 0600,
	  { ":2: account #1: missing required setting 'name'",
	    ":2: account #1: missing required setting 'host'",
	    ":2: account #1: missing required setting 'user'",
	    ":2: account #1: missing required setting 'pipeline'",
	    ":2: account #1: no password: set one of",
	    ":3: account \"b\": 'pipeline' must have at least one stage",
	    ":3: account \"b\": missing required setting 'user'" } },
	{ "bad names and stages",
	  "accounts = ( { name = \"../etc\"; " "host = \"h\"; user = \"u\"; password = \"x\";\n"
	  "  pipeline = ( { path = \"/x\"; },\n"
	  "    { plugin = \"a\"; name = \"s\"; },\n"
	  "    { plugin = \"b\"; name = \"s\"; } ); } );\n", 0600,
	  { ":1: account #1: name \"../etc\": use letters, digits",
	    ":2: account #1: pipeline stage 1: missing 'plugin'",
	    ":4: account #1: stage name \"s\" already used at @P:3" } },
	{ "no accounts",
	  "state_dir = \"/x\";\n", 0600,
	  { ": no 'accounts' defined: nothing to do" } },
	{ "relative path",
	  "state_dir = \"var/state\";\n"
	  "accounts = ( { name = \"a\"; " ACCT_OK " } );\n", 0600,
	  { ":1: 'state_dir' must be an absolute path, not \"var/state\"" } },
	{ "syntax error",
	  "state_dir = \"/x\";\n"
	  "log = { level = \"info\" };\n"
	  "\n"
	  "accounts = ( { name = \"a\" ; } ;\n", 0600,
	  { ":4: syntax error" } },
};

/* Replace "@P" by path and "@D" by tmpdir. */
static void
expand(const char *in, const char *path, char *out, size_t size)
{
	size_t o = 0;

	for (const char *p = in; *p && o + 1 < size; p++) {
		const char *sub = NULL;
		if (p[0] == '@' && p[1] == 'P')
			sub = path;
		else if (p[0] == '@' && p[1] == 'D')
			sub = tmpdir;
		if (sub != NULL) {
			size_t n = strlen(sub);
			assert_true(o + n < size);
			memcpy(out + o, sub, n);
			o += n;
			p++;
		} else {
			out[o++] = *p;
		}
	}
	out[o] = '\0';
}

static void
test_bad(void **state)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *bc = &bad_cases[i];
		char path[PATH_MAX], name[32], exp[2 * PATH_MAX + 256], want[sizeof(exp) + PATH_MAX];
		char *err = NULL;
		size_t n_want = 0, n_lines = 1;
		cfg *c = NULL;

		snprintf(name, sizeof(name), "bad%zu.conf", i);
		write_file(name, bc->text, bc->mode, path, sizeof(path));
		if (cfg_load(path, &c, &err) == 0)
			fail_msg("%s: accepted", bc->what);
		assert_null(c);
		assert_non_null(err);
		for (; n_want < 8 && bc->want[n_want] != NULL; n_want++) {
			expand(bc->want[n_want], path, exp, sizeof(exp));
			snprintf(want, sizeof(want), "%s%s", path, exp);
			if (strstr(err, want) == NULL)
				fail_msg("%s: want\n  %s\ngot\n%s", bc->what, want, err);
		}
		for (const char *p = err; *p; p++)
			n_lines += *p == '\n';
		if (n_lines != n_want)
			fail_msg("%s: %zu errors, want %zu:\n%s", bc->what, n_lines, n_want, err);
		assert_null(strstr(err, "hunter2"));
		free(err);
	}
}

/* The same files become valid once the mistake is fixed. */
static void
test_fixes(void **state)
{
	char path[PATH_MAX], *err = NULL;
	cfg *c = NULL;

	write_file("fix1.conf",
		   "accounts = ( { name = \"a\"; " ACCT_OK " tls = \"none\";\n"
		   "  allow_plaintext_password = true; } );\n", 0600, path, sizeof(path));
	if (cfg_load(path, &c, &err) < 0)
		fail_msg("allow_plaintext_password refused:\n%s", err);
	cfg_free(&c);

	write_file("fix2.conf",
		   "accounts = ( { name = \"a\"; host = \"h\"; user = \"u\";\n"
		   "  password = \"hunter2\";\n"
		   "  pipeline = ( { plugin = \"archive\"; } ); } );\n", 0600, path, sizeof(path));
	if (cfg_load(path, &c, &err) < 0)
		fail_msg("inline password in a 0600 file refused:\n%s", err);
	cfg_free(&c);
}

static void
test_missing_file(void **state)
{
	char path[PATH_MAX], want[PATH_MAX + 64], *err = NULL;
	cfg *c = NULL;

	snprintf(path, sizeof(path), "%s/nonexistent.conf", tmpdir);
	assert_int_equal(cfg_load(path, &c, &err), -1);
	snprintf(want, sizeof(want), "%s: cannot read: No such file or directory", path);
	assert_string_equal(err, want);
	free(err);
}

/* etc/mailmill.conf, the shipped sample, is valid once its password file exists. */
static void
test_sample(void **state)
{
	char src[PATH_MAX], path[PATH_MAX], *text, *err = NULL, *hit;
	const char *srcdir = getenv("MM_SRCDIR");
	const char *needle = "/etc/mailmill/support.pass";
	FILE *fp;
	long len;
	cfg *c = NULL;

	if (srcdir != NULL) {
		snprintf(src, sizeof(src), "%s/etc/mailmill.conf", srcdir);
	} else {
		snprintf(src, sizeof(src), "%s", __FILE__);
		hit = strstr(src, "tests/unit/test_config.c");
		assert_non_null(hit);
		strcpy(hit, "etc/mailmill.conf");
	}
	fp = fopen(src, "r");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	len = ftell(fp);
	assert_true(len > 0 && len < 1000000);
	rewind(fp);
	text = calloc(1, (size_t)len + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)len, fp), (size_t)len);
	fclose(fp);

	/* Point the sample's password_file at ours, keeping the rest as shipped. */
	hit = strstr(text, needle);
	assert_non_null(hit);
	snprintf(path, sizeof(path), "%s/sample.conf", tmpdir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fwrite(text, 1, (size_t)(hit - text), fp);
	fputs(pwfile, fp);
	fputs(hit + strlen(needle), fp);
	assert_int_equal(fclose(fp), 0);
	free(text);

	if (cfg_load(path, &c, &err) < 0)
		fail_msg("the sample configuration is invalid:\n%s", err);
	assert_int_equal(c->n_accounts, 1);
	assert_string_equal(c->accounts[0].name, "support");
	assert_string_equal(c->accounts[0].stages[0].plugin, "archive");
	cfg_free(&c);
}

/* An @include is found next to the including file, and checked like it. */
static void
test_include(void **state)
{
	char path[PATH_MAX], inc[PATH_MAX], want[2 * PATH_MAX + 64], *err = NULL;
	cfg *c = NULL;

	write_file("inc-accounts.conf",
		   "accounts = ( { name = \"a\"; host = \"h\"; user = \"u\";\n"
		   "  password = \"hunter2\";\n"
		   "  pipeline = ( { plugin = \"archive\"; } ); } );\n", 0644, inc, sizeof(inc));
	write_file("inc-main.conf", "state_dir = \"/x\";\n@include \"inc-accounts.conf\"\n",
		   0600, path, sizeof(path));
	assert_int_equal(cfg_load(path, &c, &err), -1);
	snprintf(want, sizeof(want), "inc-accounts.conf:2: account \"a\": inline 'password' in "
		 "%s, which group or others can read (mode 0644)", inc);
	if (strstr(err, want) == NULL)
		fail_msg("want\n  %s\ngot\n%s", want, err);
	free(err);
	assert_int_equal(chmod(inc, 0600), 0);
	if (cfg_load(path, &c, &err) < 0)
		fail_msg("include refused:\n%s", err);
	assert_string_equal(c->accounts[0].secret.value, "hunter2");
	cfg_free(&c);
}

/* ------------------------------------------------------------------ secrets */

struct secret_case {
	const char *what;
	const char *content;     /* file content, or a shell script for commands */
	mode_t mode;
	int command;             /* 1: run content as a script; 0: a password_file */
	const char *want_pw;     /* NULL: an error is expected ... */
	const char *want_err;    /* ... containing this */
};

static const struct secret_case secret_cases[] = {
	{ "file", "hunter2\n", 0600, 0, "hunter2", NULL },
	{ "file CRLF, first line only", "hunter2\r\nsecond\n", 0400, 0, "hunter2", NULL },
	{ "file without newline", "hunter2", 0600, 0, "hunter2", NULL },
	{ "file group-readable", "hunter2\n", 0640, 0, NULL,
	  "mode 0640 lets group or others read or change it; run: chmod 600" },
	{ "file world-readable", "hunter2\n", 0604, 0, NULL, "mode 0604" },
	{ "file empty", "", 0600, 0, NULL, "password is empty" },
	{ "file empty first line", "\nhunter2\n", 0600, 0, NULL, "password is empty" },
	{ "command", "#!/bin/sh\necho hunter2\necho more\n", 0700, 1, "hunter2", NULL },
	{ "command CRLF", "#!/bin/sh\nprintf 'hunter2\\r\\n'\n", 0700, 1, "hunter2", NULL },
	{ "command fails", "#!/bin/sh\necho hunter2\nexit 3\n", 0700, 1, NULL,
	  "exited with status 3" },
	{ "command killed", "#!/bin/sh\necho hunter2\nkill -9 $$\n", 0700, 1, NULL,
	  "killed by signal 9" },
	{ "command too long", "#!/bin/sh\nhead -c 5000 /dev/zero | tr '\\0' x\n", 0700, 1,
	  NULL, "first line longer than" },
	{ "command prints lots", "#!/bin/sh\necho hunter2\nexec head -c 200000 /dev/zero\n", 0700, 1,
	  NULL, "killed by signal 13" },
	{ "command hangs", "#!/bin/sh\necho hunter2\nexec sleep 30\n", 0700, 1, NULL,
	  "not finished within 0.5 s, killed" },
	/* A helper left running with our pipe open must not hold us up. */
	{ "command leaves a child", "#!/bin/sh\necho hunter2\nsleep 3 &\n", 0700, 1, "hunter2",
	  NULL },
	{ "command silent", "#!/bin/sh\nexit 0\n", 0700, 1, NULL, "password is empty" },
};

static void
test_secrets(void **state)
{
	secret_set_command_timeout_ms(500);
	for (size_t i = 0; i < sizeof(secret_cases) / sizeof(secret_cases[0]); i++) {
		const struct secret_case *sc = &secret_cases[i];
		char path[PATH_MAX], name[32], *argv[2], *pw = NULL, *err = NULL;
		secret s = { 0 };
		int rc;

		snprintf(name, sizeof(name), "secret%zu", i);
		write_file(name, sc->content, sc->mode, path, sizeof(path));
		if (sc->command) {
			argv[0] = path;
			argv[1] = NULL;
			s.kind = SECRET_COMMAND;
			s.argv = argv;
		} else {
			s.kind = SECRET_FILE;
			s.value = path;
		}
		rc = secret_get(&s, &pw, &err);
		if (sc->want_pw != NULL) {
			if (rc != 0)
				fail_msg("%s: %s", sc->what, err);
			assert_string_equal(pw, sc->want_pw);
			secret_wipe(&pw);
			assert_null(pw);
		} else {
			if (rc == 0)
				fail_msg("%s: accepted, password \"%s\"", sc->what, pw);
			assert_null(pw);
			if (err == NULL || strstr(err, sc->want_err) == NULL)
				fail_msg("%s: want \"%s\", got \"%s\"", sc->what, sc->want_err, err);
			assert_null(strstr(err, "hunter2"));
			free(err);
			err = NULL;
		}
		if (!sc->command)
			assert_int_equal(secret_check_file(path, &err) == 0,
					 (sc->mode & 066) == 0);
		free(err);
		err = NULL;
	}
	secret_set_command_timeout_ms(0);
}

static void
test_secret_command_missing(void **state)
{
	char *argv[] = { "/nonexistent/pw-helper", NULL }, *pw = NULL, *err = NULL;
	char *argv2[] = { "mm-no-such-program-in-path", NULL };
	secret s = { .kind = SECRET_COMMAND, .argv = argv };
	secret inl = { .kind = SECRET_INLINE, .value = "hunter2" };

	assert_int_equal(secret_get(&s, &pw, &err), -1);
	assert_string_equal(err, "password_command /nonexistent/pw-helper: cannot run: "
			    "No such file or directory");
	free(err);
	s.argv = argv2;  /* looked up in PATH: execvp, no shell */
	assert_int_equal(secret_get(&s, &pw, &err), -1);
	assert_non_null(strstr(err, "cannot run"));
	free(err);
	/* Arguments reach the program unchanged: no shell splitting or globbing. */
	char *argv3[] = { "printf", "%s\\n", "a b *", NULL };
	s.argv = argv3;
	assert_int_equal(secret_get(&s, &pw, &err), 0);
	assert_string_equal(pw, "a b *");
	secret_wipe(&pw);

	assert_int_equal(secret_get(&inl, &pw, &err), 0);
	assert_string_equal(pw, "hunter2");
	assert_ptr_not_equal(pw, inl.value);
	secret_wipe(&pw);
}

/* The top-level relay group: defaults, values, and the accounts' security rules. */
static void
test_smtp(void **state)
{
	char path[PATH_MAX], text[PATH_MAX + 1024];
	char *err = NULL;
	cfg *c = NULL;

	(void)state;
	snprintf(text, sizeof(text),
		 "smtp = { host = \"relay.example.org\"; user = \"u\"; password_file = \"%s\";\n"
		 "  helo = \"mx.example.org\"; max_queue_time = \"2d\"; };\n"
		 "accounts = ( { name = \"a\"; " ACCT_OK " } );\n", pwfile);
	write_file("smtp-ok.conf", text, 0600, path, sizeof(path));
	if (cfg_load(path, &c, &err) < 0)
		fail_msg("smtp: refused: %s", err);
	assert_non_null(c->smtp);
	assert_string_equal(c->smtp->host, "relay.example.org");
	assert_int_equal(c->smtp->tls, CFG_TLS_STARTTLS);
	assert_string_equal(c->smtp->port, "587");
	assert_int_equal(c->smtp->secret.kind, SECRET_FILE);
	assert_string_equal(c->smtp->helo, "mx.example.org");
	assert_int_equal(c->smtp->max_queue_time_s, 2 * 86400);
	cfg_free(&c);

	write_file("smtp-none.conf", "accounts = ( { name = \"a\"; " ACCT_OK " } );\n", 0600, path,
		   sizeof(path));
	assert_int_equal(cfg_load(path, &c, &err), 0);
	assert_null(c->smtp);
	cfg_free(&c);

	snprintf(text, sizeof(text),
		 "smtp = { host = \"relay\"; tls = \"none\"; user = \"u\";\n"
		 "  password_file = \"%s\"; colour = 1;\n"
		 "  helo = \"bad name\"; };\n"
		 "accounts = ( { name = \"a\"; " ACCT_OK " } );\n", pwfile);
	write_file("smtp-bad.conf", text, 0600, path, sizeof(path));
	assert_int_equal(cfg_load(path, &c, &err), -1);
	assert_null(c);
	assert_non_null(strstr(err, "smtp-bad.conf:2: smtp: unknown setting 'colour'"));
	assert_non_null(strstr(err, "smtp-bad.conf:3: smtp: 'helo' \"bad name\""));
	assert_non_null(strstr(err, "smtp-bad.conf:1: smtp: tls = \"none\" would send the password"));
	free(err);
	err = NULL;

	write_file("smtp-user.conf", "smtp = { host = \"relay\"; user = \"u\"; };\n"
		   "accounts = ( { name = \"a\"; " ACCT_OK " } );\n", 0600, path, sizeof(path));
	assert_int_equal(cfg_load(path, &c, &err), -1);
	assert_non_null(strstr(err, "smtp-user.conf:1: smtp: 'user' without a password"));
	free(err);
	err = NULL;

	write_file("smtp-open.conf", "smtp = { host = \"relay\"; user = \"u\"; password = \"hunter2\"; };\n"
		   "accounts = ( { name = \"a\"; " ACCT_OK " } );\n", 0644, path, sizeof(path));
	assert_int_equal(cfg_load(path, &c, &err), -1);
	assert_non_null(strstr(err, "smtp: inline 'password'"));
	free(err);
}

/* OAuth: the provider defaults, and every rule of oauth_config.c, each
 * reported at its file:line. */
static void
test_oauth(void **state)
{
	char path[PATH_MAX], text[PATH_MAX * 2 + 4096], secret_open[PATH_MAX];
	const char *pipe = "pipeline = ( { plugin = \"archive\"; } );";
	char *err = NULL;
	cfg *c = NULL;

	(void)state;
	write_file("cs-open", "s3cret\n", 0640, secret_open, sizeof(secret_open));
	snprintf(text, sizeof(text),
		 "smtp = { host = \"smtp.office365.com\"; user = \"a@example.org\";\n"
		 "  oauth2 = { provider = \"microsoft\"; client_id = \"cid\"; }; };\n"
		 "accounts = (\n"
		 " { name = \"ms\"; host = \"outlook.office365.com\"; user = \"a@example.org\";\n"
		 "   oauth2 = { provider = \"microsoft\"; client_id = \"cid\"; }; %s },\n"
		 " { name = \"app\"; host = \"outlook.office365.com\"; user = \"b@example.org\";\n"
		 "   auth = \"xoauth2\"; oauth2 = { provider = \"microsoft\"; client_id = \"cid\";\n"
		 "   grant = \"client_credentials\"; tenant = \"contoso.onmicrosoft.com\";\n"
		 "   client_secret_file = \"%s\"; timeout = \"10s\"; ca_file = \"/etc/ca.pem\"; }; %s },\n"
		 " { name = \"gm\"; host = \"pop.gmail.com\"; user = \"c@gmail.com\";\n"
		 "   oauth2 = { provider = \"google\"; client_id = \"g\"; client_secret = \"x\"; }; %s },\n"
		 " { name = \"gen\"; host = \"h\"; user = \"d\"; auth = \"oauthbearer\";\n"
		 "   oauth2 = { provider = \"generic\"; client_id = \"c\"; scope = \"mail\";\n"
		 "   token_url = \"https://127.0.0.1:8443/token\"; }; %s },\n"
		 " { name = \"cmd\"; host = \"h\"; user = \"e\";\n"
		 "   token_command = [ \"/usr/local/bin/tok\", \"pop\" ]; %s }\n"
		 ");\n", pipe, pwfile, pipe, pipe, pipe, pipe);
	write_file("oauth-ok.conf", text, 0600, path, sizeof(path));
	if (cfg_load(path, &c, &err) < 0)
		fail_msg("oauth: refused: %s", err);
	assert_int_equal(c->n_accounts, 5);
	assert_int_equal(c->accounts[0].secret.kind, SECRET_NONE);
	assert_string_equal(c->accounts[0].oauth->token_url,
			    "https://login.microsoftonline.com/common/oauth2/v2.0/token");
	assert_string_equal(c->accounts[0].oauth->device_url,
			    "https://login.microsoftonline.com/common/oauth2/v2.0/devicecode");
	assert_string_equal(c->accounts[0].oauth->scope,
			    "https://outlook.office.com/POP.AccessAsUser.All offline_access");
	assert_int_equal(c->accounts[0].oauth->timeout_s, 30);
	assert_string_equal(c->smtp->oauth->scope,
			    "https://outlook.office.com/SMTP.Send offline_access");
	assert_int_equal(c->accounts[1].auth, CFG_AUTH_XOAUTH2);
	assert_int_equal(c->accounts[1].oauth->grant, OAUTH_GRANT_CLIENT);
	assert_string_equal(c->accounts[1].oauth->token_url, "https://login.microsoftonline.com/"
			    "contoso.onmicrosoft.com/oauth2/v2.0/token");
	assert_string_equal(c->accounts[1].oauth->scope, "https://outlook.office365.com/.default");
	assert_int_equal(c->accounts[1].oauth->client_secret.kind, SECRET_FILE);
	assert_int_equal(c->accounts[1].oauth->timeout_s, 10);
	assert_string_equal(c->accounts[1].oauth->ca_file, "/etc/ca.pem");
	assert_string_equal(c->accounts[2].oauth->token_url, "https://oauth2.googleapis.com/token");
	assert_string_equal(c->accounts[2].oauth->device_url,
			    "https://oauth2.googleapis.com/device/code");
	assert_string_equal(c->accounts[2].oauth->scope, "https://mail.google.com/");
	assert_string_equal(c->accounts[2].oauth->auth_url,
			    "https://accounts.google.com/o/oauth2/v2/auth");
	assert_int_equal(c->accounts[3].auth, CFG_AUTH_OAUTHBEARER);
	assert_null(c->accounts[3].oauth->device_url);
	assert_int_equal(c->accounts[4].oauth->command, 1);
	assert_string_equal(c->accounts[4].oauth->token.argv[1], "pop");
	cfg_free(&c);

	snprintf(text, sizeof(text),
		 "accounts = (\n"
		 " { name = \"a\"; host = \"h\"; user = \"u\"; password = \"p\"; auth = \"plain\";\n"
		 "   tls = \"none\"; oauth2 = { provider = \"yahoo\"; token_url = \"http://x/t\"; }; %s },\n"
		 " { name = \"b\"; host = \"h\"; user = \"u\"; oauth2 = { provider = \"generic\";\n"
		 "   client_id = \"c\"; grant = \"client_credentials\"; colour = 1; }; %s },\n"
		 " { name = \"c\"; host = \"h\"; user = \"u\"; oauth2 = { provider = \"microsoft\";\n"
		 "   client_id = \"c\"; grant = \"client_credentials\"; client_secret_file = \"%s\"; };\n"
		 "   token_command = [ \"/bin/tok\" ]; %s },\n"
		 " { name = \"d\"; host = \"h\"; user = \"u\"; auth = \"xoauth2\"; password = \"p\"; %s },\n"
		 " { name = \"e\"; host = \"h\"; user = \"u\"; token_command = [ \"tok\" ]; %s },\n"
		 " { name = \"f\"; host = \"h\"; user = \"u\"; oauth2 = { provider = \"google\";\n"
		 "   client_id = \"c\"; grant = \"client_credentials\"; client_secret = \"s\"; timeout = \"1h\"; }; %s }\n"
		 ");\n", pipe, pipe, secret_open, pipe, pipe, pipe, pipe);
	write_file("oauth-bad.conf", text, 0600, path, sizeof(path));
	assert_int_equal(cfg_load(path, &c, &err), -1);
	assert_null(c);
#define HAS(s) if (strstr(err, (s)) == NULL) fail_msg("missing \"%s\" in:\n%s", (s), err)
	HAS("oauth-bad.conf:3: account \"a\": oauth2: 'provider' must be one of \"microsoft\", "
	    "\"google\", \"generic\"");
	HAS("oauth-bad.conf:3: account \"a\": oauth2: 'token_url' \"http://x/t\" must be an https:// URL");
	HAS("oauth-bad.conf:3: account \"a\": oauth2: missing required setting 'client_id'");
	HAS("oauth-bad.conf:2: account \"a\": 'oauth2' and a password key both set");
	HAS("oauth-bad.conf:2: account \"a\": 'auth' names a password mechanism");
	HAS("oauth-bad.conf:3: account \"a\": OAuth is never sent without TLS");
	HAS("oauth-bad.conf:5: account \"b\": oauth2: unknown setting 'colour'");
	HAS("oauth-bad.conf:4: account \"b\": oauth2: provider \"generic\" needs 'token_url'");
	HAS("oauth-bad.conf:4: account \"b\": oauth2: provider \"generic\" needs 'scope'");
	HAS("oauth-bad.conf:4: account \"b\": oauth2: grant \"client_credentials\" needs "
	    "'client_secret' or 'client_secret_file'");
	HAS("oauth-bad.conf:7: account \"c\": oauth2: client_secret_file");
	HAS("mode 0640 lets group or others read");
	HAS("oauth-bad.conf:8: account \"c\": set only one of 'oauth2' and 'token_command'");
	HAS("oauth-bad.conf:6: account \"c\": oauth2: grant \"client_credentials\" needs 'tenant'");
	HAS("oauth-bad.conf:9: account \"d\": 'auth' = \"xoauth2\" needs an 'oauth2' group or a "
	    "'token_command'");
	HAS("oauth-bad.conf:10: account \"e\": 'token_command': the program must be an absolute path");
	HAS("oauth-bad.conf:12: account \"f\": oauth2: 'timeout' must be a duration between 1s and 600s");
	HAS("oauth-bad.conf:11: account \"f\": oauth2: Google has no client credentials grant");
#undef HAS
	assert_null(strstr(err, "s3cret"));
	free(err);
	err = NULL;

	/* The relay: OAuth needs the mailbox address. */
	write_file("oauth-smtp.conf", "smtp = { host = \"relay\";\n"
		   "  token_command = [ \"/bin/tok\" ]; auth = \"login\"; };\n"
		   "accounts = ( { name = \"a\"; " ACCT_OK " } );\n", 0600, path, sizeof(path));
	assert_int_equal(cfg_load(path, &c, &err), -1);
	assert_non_null(strstr(err, "oauth-smtp.conf:1: smtp: OAuth without 'user'"));
	assert_non_null(strstr(err, "oauth-smtp.conf:2: smtp: 'auth' names a password mechanism"));
	free(err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_fixes),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_sample),
		cmocka_unit_test(test_include),
		cmocka_unit_test(test_secrets),
		cmocka_unit_test(test_secret_command_missing),
		cmocka_unit_test(test_smtp),
		cmocka_unit_test(test_oauth),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

/* mailmill - ISC licence, see LICENSE */
#include <config.h>
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>
#include <gmime/gmime.h>
#include "daemon/core/cfg.h"
#include "daemon/core/cfg_check.h"
#include "daemon/core/log.h"
#include "daemon/oauth/oauth.h"
#include "daemon/run/outbox.h"
#include "daemon/run/pipeline.h"
#include "daemon/core/plugin.h"
#include "daemon/core/privs.h"
#include "daemon/migrate_store.h"
#include "daemon/repair.h"
#include "daemon/run/run.h"
#include "daemon/run/trymsg.h"
#include "daemon/sched/claim.h"
#include "daemon/sched/once.h"
#include "daemon/sched/scheduler.h"
#include "daemon/sched/spawner.h"
#include "daemon/sched/status.h"
#include "daemon/sched/worker.h"
#include "daemon/store/store.h"

#define DEFAULT_CONFIG SYSCONFDIR "/mailmill.conf"
/* Long options without a short one (no letter to collide on). */
enum { MAIN_OPT_RELEASE = 1000, MAIN_OPT_RETRY, MAIN_OPT_DROP, MAIN_OPT_MIGRATE,
       MAIN_OPT_SPAWNER };

static void
main_usage(FILE *f)
{
	fprintf(f,
		"usage: mailmilld [-c FILE] [-f] [--account NAME] [-v|-q]\n"
		"       mailmilld [-c FILE] --once [--dry-run] [--limit N] [--account NAME] [-v|-q]\n"
		"       mailmilld [-c FILE] --status\n"
		"       mailmilld [-c FILE] --check-config\n"
		"       mailmilld [-c FILE] --check-login [--account NAME]\n"
		"       mailmilld [-c FILE] --sign-in NAME|smtp\n"
		"       mailmilld [-c FILE] --test FILE|- [--commit] [--account NAME]\n"
		"       mailmilld [-c FILE] --outbox | --flush\n"
		"       mailmilld [-c FILE] --release ACCOUNT UID | --retry ID|all | --drop ID\n"
		"       mailmilld [-c FILE] --migrate-store\n"
		"       mailmilld --version | --help\n"
		"\n"
		"  -c, --config FILE   configuration file (default " DEFAULT_CONFIG ")\n"
		"  -f, --foreground    stay in the foreground (systemd, containers); without it\n"
		"                      the daemon detaches and writes its pid file\n"
		"      --once          run every account once, then exit\n"
		"      --status        per account: last run, result, next run, quarantined\n"
		"                      messages; the outbox (works while the daemon runs)\n"
		"      --check-config  validate the configuration and the plugins' settings (as the\n"
		"                      worker `user` when started as root), then exit\n"
		"      --check-login   connect, TLS, sign in (says the mechanism), CAPA, STAT;\n"
		"                      fetches, deletes and sends nothing\n"
		"      --sign-in NAME  OAuth device sign-in for account NAME (or \"smtp\"): shows\n"
		"                      a URL and a code to enter there, waits, stores the token\n"
		"      --test FILE     run one account's pipeline on the message in FILE (- for\n"
		"                      stdin), no server: each stage's verdict, the mail it\n"
		"                      would queue; writes nothing\n"
		"      --commit        with --test: really process it (store, outbox, archive;\n"
		"                      as `user` when started as root)\n"
		"  -n, --dry-run       fetch and run the pipeline, but delete, write and send nothing\n"
		"                      (without --limit it fetches the whole mailbox)\n"
		"      --limit N       --once: at most N new messages per account run\n"
		"      --outbox        show the mail queued for the smtp relay and the dead letters\n"
		"                      (with the server's reasons), then exit\n"
		"      --flush         send every queued message now (ignoring back-off), then exit;\n"
		"                      --once also sends what is due after the accounts' runs\n"
		"      --release ACCOUNT UID  take a quarantined message (uid as --status shows it)\n"
		"                      out of quarantine: the next run processes it again\n"
		"      --retry ID|all  make queued or dead mail (id as --outbox shows it) due now\n"
		"      --drop ID       remove one mail from the outbox, unsent (logged)\n"
		"      --migrate-store copy state_dir's SQLite store into the configured (empty)\n"
		"                      PostgreSQL store, in one transaction\n"
		"  -a, --account NAME  only this account (may be repeated; --test takes one)\n"
		"  -v, --verbose       more log output (twice: protocol trace, secrets redacted)\n"
		"  -q, --quiet         only warnings and errors\n"
		"  -V, --version       print the version\n"
		"  -h, --help          this text\n"
		"\n"
		"Exit status: 0 every message reached a final verdict and every mail due was\n"
		"sent; 64 usage; 75 a run failed, a message was deferred, failed or\n"
		"quarantined, or queued mail was not delivered (the next run retries);\n"
		"78 configuration error; --release, --retry, --drop: 65 no such message or id.\n");
}

/* Build (load and check) every selected account's pipeline into pls. */
static int
main_build(cfg *c, char **only, int n_only, int dry_run, pipeline **pls)
{
	char *err = NULL;
	size_t k;

	for (k = 0; k < c->n_accounts; k++) {
		if (!cfg_selected(c->accounts[k].name, only, n_only))
			continue;
		if (pipeline_build(c, &c->accounts[k], dry_run, &pls[k], &err) < 0) {
			if (err != NULL)
				fprintf(stderr, "mailmilld: configuration error:\n%s\n", err);
			free(err);
			return EX_CONFIG;
		}
	}
	return EX_OK;
}

typedef struct main_check_arg {
	cfg *c;
	char **only;
	int n_only, dry_run;
	int setup;  /* --check-config: also what cannot work (cfg_check_setup) */
} main_check_arg;

static int
main_check_build(void *p)
{
	main_check_arg *a = p;
	pipeline **pls = calloc(a->c->n_accounts ? a->c->n_accounts : 1, sizeof *pls);
	struct passwd *pw = a->c->user != NULL ? getpwnam(a->c->user) : NULL;
	char *why;
	int rc;

	if (pls == NULL)
		return EX_OSERR;
	/* As the workers' user: what it cannot reach, said plainly (the
	 * plugins' trust check would only say "Permission denied"). */
	if (pw != NULL && pw->pw_uid == geteuid() && (why = privs_plugins_unreachable(a->c)) != NULL) {
		fprintf(stderr, "mailmilld: configuration error:\n%s\n", why);
		g_free(why);
		free(pls);
		return EX_CONFIG;
	}
	rc = main_build(a->c, a->only, a->n_only, a->dry_run, pls);
	if (a->setup) {
		char *errs = NULL, *warns = NULL;

		if (cfg_check_setup(a->c, &errs, &warns) > 0) {
			fprintf(stderr, "mailmilld: configuration error:\n%s\n", errs);
			rc = EX_CONFIG;
		}
		if (warns != NULL)
			log_warn("%s", warns);
		g_free(errs);
		g_free(warns);
	}
	for (size_t k = 0; k < a->c->n_accounts; k++)
		pipeline_free(&pls[k]);
	free(pls);
	plugin_unload_all();
	return rc;
}

static void
main_drop_error(const char *err)
{
	fprintf(stderr, "mailmilld: configuration error:\n%s\n", err);
}

/*
 * --check-config and the daemon's start: build every selected pipeline and
 * let it go.  Started as root with `user`, as that user (privs_run_as), as
 * the workers will: a plugin's init then finds what only the worker cannot
 * do (an archive path it cannot create or write).
 */
static int
main_check(cfg *c, char **only, int n_only, int dry_run, int setup)
{
	main_check_arg a = { c, only, n_only, dry_run, setup };
	char *err = NULL;
	int rc = privs_run_as(c->user, main_check_build, main_drop_error, &a, &err);

	if (rc < 0) {
		fprintf(stderr, "mailmilld: %s\n", err);
		free(err);
		return EX_SOFTWARE;
	}
	return rc;
}

/* path made absolute against the current directory (links left as they are). */
static char *
main_absolute(const char *path)
{
	char *cwd;
	char *abs;

	if (path[0] == '/' || (cwd = g_get_current_dir()) == NULL)
		return g_strdup(path);
	abs = g_build_filename(cwd, path, NULL);
	g_free(cwd);
	return abs;
}

/* --sign-in NAME|smtp: the device sign-in, then the token is stored. */
static int
main_sign_in(const cfg *c, const char *name)
{
	const oauth_cfg *o = NULL;
	const char *user = NULL;
	const cfg_account *a;
	store *st = NULL;
	char *err = NULL;
	oauth_status os;

	if (strcmp(name, "smtp") == 0 && c->smtp != NULL) {
		o = c->smtp->oauth;
		user = c->smtp->user;
	} else if ((a = cfg_find_account(c, name)) != NULL) {
		o = a->oauth;
		user = a->user;
	} else {
		fprintf(stderr, "mailmilld: no account '%s' (nor an smtp relay) in %s\n", name,
			c->path);
		return EX_USAGE;
	}
	if (o == NULL || o->command || o->grant != OAUTH_GRANT_REFRESH) {
		fprintf(stderr, "mailmilld: %s: nothing to sign in: %s\n", name,
			o == NULL ? "it has no 'oauth2' group" : o->command ?
			"its token comes from token_command" :
			"grant \"client_credentials\" needs no person");
		return EX_USAGE;
	}
	if (store_open_cfg(c, 0, &st, &err) < 0) {
		fprintf(stderr, "mailmilld: cannot open the store: %s\n", err);
		free(err);
		return EX_TEMPFAIL;
	}
	os = oauth_sign_in(st, o, user, stdout, &err);
	store_close(&st);
	if (os == OAUTH_OK)
		return EX_OK;
	fprintf(stderr, "mailmilld: sign-in of %s failed: %s\n", name, err != NULL ? err : "error");
	free(err);
	return os == OAUTH_REFUSED ? EX_CONFIG : EX_TEMPFAIL;
}

/* --check-login: every selected account (and the relay when none is
 * selected, or --account smtp). */
static int
main_check_login(const cfg *c, const run_opts *ro, char **only, int n_only)
{
	store *st = NULL;
	char *err = NULL;
	int rc = EX_OK;

	if (store_open_cfg(c, 0, &st, &err) < 0) {
		fprintf(stderr, "mailmilld: cannot open the store: %s\n", err);
		free(err);
		return EX_TEMPFAIL;
	}
	for (size_t k = 0; k < c->n_accounts; k++) {
		if (!cfg_selected(c->accounts[k].name, only, n_only))
			continue;
		if (run_check_login(c, &c->accounts[k], st, ro, stdout) < 0)
			rc = EX_TEMPFAIL;
	}
	if (c->smtp != NULL && (n_only == 0 || cfg_selected("smtp", only, n_only)) &&
	    outbox_check_login(c, st, ro->trace, stdout) < 0)
		rc = EX_TEMPFAIL;
	store_close(&st);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "once", no_argument, NULL, 'o' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "account", required_argument, NULL, 'a' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ "outbox", no_argument, NULL, 'O' },
		{ "flush", no_argument, NULL, 'F' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "status", no_argument, NULL, 'S' },
		{ "check-login", no_argument, NULL, 'L' },
		/* "--check" was an unambiguous abbreviation of --check-config
		 * before --check-login; it stays one. */
		{ "check", no_argument, NULL, 'C' },
		{ "sign-in", required_argument, NULL, 'I' },
		{ "release", required_argument, NULL, MAIN_OPT_RELEASE },
		{ "retry", required_argument, NULL, MAIN_OPT_RETRY },
		{ "drop", required_argument, NULL, MAIN_OPT_DROP },
		{ "migrate-store", no_argument, NULL, MAIN_OPT_MIGRATE },
		{ "test", required_argument, NULL, 'T' },
		{ "commit", no_argument, NULL, 'M' },
		{ "limit", required_argument, NULL, 'l' },
		/* Internal: the daemon starts its spawner so (daemon/sched/spawner.h). */
		{ "spawner", required_argument, NULL, MAIN_OPT_SPAWNER },
		{ NULL, 0, NULL, 0 }
	};
	const char *path = DEFAULT_CONFIG;
	int once = 0, check = 0, verbose = 0, quiet = 0, n_only = 0, ch, i, rc = EX_OK;
	int show_outbox = 0, flush = 0, foreground = 0, status = 0, check_login = 0;
	const char *release = NULL, *release_uid = NULL, *retry = NULL, *drop = NULL;
	int n_repair, migrate = 0;
	const char *sign_in = NULL, *test_msg = NULL;
	int test_commit = 0, spawner_fd = -1, spawner_bind = 0;
	long spawner_parent = 0;
	char **only = calloc((size_t)argc, sizeof *only);
	cfg *c = NULL;
	store *st = NULL;
	run_opts ro = { .dry_run = 0 };
	outbox_stats os = { 0 };
	char *err = NULL, *end;

	if (only == NULL)
		return EX_OSERR;
	while ((ch = getopt_long(argc, argv, "c:na:vqVhf", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 'o': once = 1; break;
		case 'C': check = 1; break;
		case 'O': show_outbox = 1; break;
		case 'F': flush = 1; break;
		case 'f': foreground = 1; break;
		case 'S': status = 1; break;
		case 'L': check_login = 1; break;
		case 'I': sign_in = optarg; break;
		case MAIN_OPT_RELEASE: release = optarg; break;
		case MAIN_OPT_RETRY: retry = optarg; break;
		case MAIN_OPT_DROP: drop = optarg; break;
		case MAIN_OPT_MIGRATE: migrate = 1; break;
		case MAIN_OPT_SPAWNER:
			if (sscanf(optarg, "%d:%ld:%d", &spawner_fd, &spawner_parent,
				   &spawner_bind) != 3 || spawner_fd < 0) {
				fprintf(stderr, "mailmilld: --spawner is the daemon's own\n");
				free(only);
				return EX_USAGE;
			}
			break;
		case 'T': test_msg = optarg; break;
		case 'M': test_commit = 1; break;
		case 'n': ro.dry_run = 1; break;
		case 'l':
			errno = 0;
			ro.limit = strtoul(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' || optarg[0] == '-' ||
			    ro.limit == 0) {
				fprintf(stderr, "mailmilld: --limit wants a number of messages"
					" (1 or more), not '%s'\n", optarg);
				free(only);
				return EX_USAGE;
			}
			break;
		case 'a': only[n_only++] = optarg; break;
		case 'v': verbose++; break;
		case 'q': quiet = 1; break;
		case 'V': printf("mailmilld %s (plugin ABI %d)\n", PACKAGE_VERSION, MAILMILL_PLUGIN_ABI);
			  free(only);
			  return EX_OK;
		case 'h': main_usage(stdout); free(only); return EX_OK;
		default: main_usage(stderr); free(only); return EX_USAGE;
		}
	}
	/* --release ACCOUNT UID: the uid is the one argument left. */
	if (release != NULL && optind == argc - 1)
		release_uid = argv[optind++];
	n_repair = (release != NULL) + (retry != NULL) + (drop != NULL) + migrate;
	if ((release != NULL && release_uid == NULL) ||
	    (n_repair > 0 && (n_repair > 1 || once || check || show_outbox || flush || status ||
			      check_login || sign_in != NULL || ro.dry_run || n_only > 0))) {
		fprintf(stderr, "mailmilld: --release ACCOUNT UID, --retry, --drop and"
			" --migrate-store go alone\n");
		free(only);
		return EX_USAGE;
	}
	if (optind != argc) {
		fprintf(stderr, "mailmilld: unexpected argument '%s'\n", argv[optind]);
		main_usage(stderr);
		free(only);
		return EX_USAGE;
	}
	if (show_outbox + flush + check > 1 || (once && (show_outbox || flush))) {
		fprintf(stderr, "mailmilld: --once, --check-config, --outbox and --flush go alone\n");
		free(only);
		return EX_USAGE;
	}
	if ((check_login || sign_in != NULL) &&
	    (once || check || show_outbox || flush || status || ro.dry_run ||
	     (check_login && sign_in != NULL) || (sign_in != NULL && n_only > 0))) {
		fprintf(stderr, "mailmilld: --check-login (with --account) and --sign-in go alone\n");
		free(only);
		return EX_USAGE;
	}
	if ((test_msg != NULL && (once || check || show_outbox || flush || status || ro.dry_run ||
				  check_login || sign_in != NULL)) ||
	    (test_commit && test_msg == NULL)) {
		fprintf(stderr, "mailmilld: --test (with --commit, --account) goes alone\n");
		free(only);
		return EX_USAGE;
	}
	if ((ro.dry_run && !once && !check) || (ro.limit != 0 && !once) ||
	    (status && (once || check || show_outbox || flush))) {
		fprintf(stderr, "mailmilld: --dry-run and --limit need --once; --status goes alone\n");
		free(only);
		return EX_USAGE;
	}
	/* A dead server connection must come back as an error, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	g_mime_init();

	if (cfg_load(path, &c, &err) < 0) {
		fprintf(stderr, "mailmilld: configuration error:\n%s\n", err != NULL ? err : path);
		free(err);
		rc = EX_CONFIG;
		goto out;
	}
	log_open(c->log_target,
		 quiet ? LOG_LVL_WARNING : verbose > 0 ? LOG_LVL_DEBUG : c->log_level);
	ro.trace = verbose > 1;
	ro.config_path = path;
	if (spawner_fd >= 0) {
		if (spawner_bind)
			unsetenv("LD_BIND_NOW");   /* set for the spawner only */
		rc = spawner_main(c, &ro, spawner_fd, (pid_t)spawner_parent);
		goto out;
	}
	if (sign_in != NULL) {
		rc = main_sign_in(c, sign_in);
		goto out;
	}
	if (check_login) {
		rc = main_check_login(c, &ro, only, n_only);
		goto out;
	}
	if (migrate) {
		rc = migrate_store_main(c, stdout);
		goto out;
	}
	if (n_repair > 0) {
		rc = release != NULL ? repair_release(c, release, release_uid) :
		     retry != NULL ? repair_retry(c, retry) : repair_drop(c, drop);
		goto out;
	}
	for (i = 0; i < n_only; i++) {
		if (cfg_find_account(c, only[i]) == NULL &&
		    !(check_login && strcmp(only[i], "smtp") == 0 && c->smtp != NULL)) {
			fprintf(stderr, "mailmilld: no account '%s' in %s\n", only[i], path);
			rc = EX_USAGE;
			goto out;
		}
	}
	if (test_msg != NULL) {
		rc = trymsg_main(c, only, n_only, test_msg, test_commit, stdout);
		goto out;
	}
	if (status) {
		rc = status_print(c, stdout);
		goto out;
	}
	if (show_outbox || flush) {
		if (store_open_cfg(c, 0, &st, &err) < 0) {
			log_error("cannot open the store: %s", err);
			free(err);
			rc = EX_TEMPFAIL;
		} else if (show_outbox && outbox_show(st, stdout, &err) < 0) {
			log_error("%s", err);
			free(err);
			rc = EX_TEMPFAIL;
		} else if (flush && privs_chown_state(c, &err) < 0) {
			log_error("%s", err);
			free(err);
			rc = EX_CONFIG;
		} else if (flush) {
			/* As --once and the daemon flush: in a process of its own,
			 * as `user`, within worker_memory, under the outbox's lease. */
			char owner[CLAIM_OWNER_MAX];

			claim_owner(owner, sizeof owner);
			if (worker_flush_leased(c, st, owner, 1, ro.trace, &os) < 0 || !outbox_settled(&os))
				rc = EX_TEMPFAIL;
			store_close(&st);
		}
		goto out;
	}
	/* Every selected account's plugins are loaded and their settings checked
	 * before anything runs: a bad stage is a configuration error. */
	if ((rc = main_check(c, only, n_only, ro.dry_run, check)) != EX_OK || check) {
		if (rc == EX_OK)
			printf("%s: configuration OK (%zu account%s)\n", path, c->n_accounts,
			       c->n_accounts == 1 ? "" : "s");
		goto out;
	}
	if (!once) {
		/* The daemon changes to "/" when it detaches; SIGHUP reads the file again. */
		char *abs = main_absolute(path);
		sched_opts so = {
			.config_path = abs, .foreground = foreground,
			.log_level = quiet ? LOG_LVL_WARNING : verbose > 0 ? LOG_LVL_DEBUG : -1,
			.only = only, .n_only = n_only, .ro = ro,
		};

		/* The workers load their own plugins. */
		rc = sched_main(c, &so);
		c = NULL;
		g_free(abs);
		goto out;
	}
	/* --once: each account in a worker, as the daemon runs it; its plugins
	 * were checked above as the workers' user. */
	rc = once_main(c, &ro, only, n_only);
out:
	store_close(&st);
	plugin_unload_all();
	cfg_free(&c);
	g_mime_shutdown();
	free(only);
	return rc;
}

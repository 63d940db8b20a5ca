/* mailmill - ISC licence, see LICENSE */
/*
 * The account run over IMAP (daemon/run/source_imap.c, run_login_imap.c)
 * against a model IMAP server (imap_model.h) on loopback, with real plugins
 * and the real SQLite store: each `after` mode, several folders, a
 * UIDVALIDITY change recognised by digest, one message in two folders, an
 * effect lost between the commit and the server (done by the next run, the
 * pipeline not run again), a server without MOVE or UIDPLUS, a dry run.
 * Each test checks what the server holds afterwards, which commands it was
 * sent, and what the journal and the outbox hold.
 */
#define _GNU_SOURCE
#include <config.h>

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
#include <glib.h>
#include <gmime/gmime.h>

#include "daemon/core/log.h"
#include "daemon/core/plugin.h"
#include "tests/unit/imap_model.h"
#include "tests/unit/run_world.h"

static char topdir[] = "/tmp/mm-test-run-imap-XXXXXX";
#include "tests/unit/tmpdir.h"

#define IMAP "protocol = \"imap\"; "
#define CAPS_ALL "caps IMAP4rev1 UIDPLUS MOVE AUTH=PLAIN SASL-IR\n"
/* Replies to every sender, then the verdict: the outbox says how often the
 * pipeline saw a message. */
#define STAGES_DONE "{ plugin = \"" AUTOREPLY_SO "\"; addresses = [ \"help@example.org\" ];" \
	" from = \"help@example.org\"; body = \"Away.\"; }, " \
	"{ plugin = \"" VERDICT_SO "\"; verdict = \"done\"; }"

static void
put_file(const world *w, const char *name, const char *text)
{
	char path[400];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", w->dir, name);
	assert_non_null(f = fopen(path, "w"));
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static char *
get_file(const world *w, const char *name)
{
	char path[400], *text = NULL;

	snprintf(path, sizeof path, "%s/%s", w->dir, name);
	if (!g_file_get_contents(path, &text, NULL, NULL))
		return g_strdup("");
	return text;
}

/* One run against the model (state in the world's "imap-state", commands in
 * "transcript", emptied first); run_account's result. */
/* The lease the next imap_run holds (NULL: none). */
static const struct run_lease *run_lease;
static unsigned long run_limit;   /* --limit of the next runs; 0: none */

static int
imap_run(world *w, int dry_run)
{
	run_opts o = { .dry_run = dry_run, .lease = run_lease, .limit = run_limit };
	char st[400], tr[400];
	imap_model m;
	int rc;

	snprintf(st, sizeof st, "%s/imap-state", w->dir);
	snprintf(tr, sizeof tr, "%s/transcript", w->dir);
	put_file(w, "transcript", "");
	m = imap_model_start(st, tr, 1);
	free(w->c->accounts[0].port);
	w->c->accounts[0].port = strdup(m.port);
	assert_non_null(w->c->accounts[0].port);
	rc = run_account(&w->c->accounts[0], w->pl, w->st, &o, NULL, &w->stats);
	imap_model_finish(&m);
	return rc;
}

/* The server's state file holds (or lacks) a line. */
static void
state_has(const world *w, const char *line, int want)
{
	char *s = get_file(w, "imap-state");
	int has = strstr(s, line) != NULL;

	if (has != want)
		fail_msg("server state %s \"%s\":\n%s", want ? "lacks" : "has", line, s);
	g_free(s);
}

/* How many commands of the transcript start with cmd or, for one word
 * that is not a command of its own (e.g. "BODY.PEEK"), hold it anywhere. */
static int
sent_count(const world *w, const char *cmd)
{
	char *s = get_file(w, "transcript");
	gchar **lines = g_strsplit(s, "\n", -1);
	int n = 0;

	for (int i = 0; lines[i] != NULL; i++)
		n += strncmp(lines[i], cmd, strlen(cmd)) == 0 ||
		     (strchr(cmd, ' ') == NULL && strstr(lines[i], cmd) != NULL &&
		      strcmp(cmd, "EXPUNGE") != 0 && strcmp(cmd, "CLOSE") != 0);
	g_strfreev(lines);
	g_free(s);
	return n;
}

/* The transcript holds (or lacks) such a command. */
static void
sent(const world *w, const char *cmd, int want)
{
	if ((sent_count(w, cmd) > 0) != want) {
		char *s = get_file(w, "transcript");

		fail_msg("commands %s \"%s\":\n%s", want ? "lack" : "have", cmd, s);
		g_free(s);
	}
}

static void
never_bare_expunge(const world *w)
{
	sent(w, "EXPUNGE", 0);
	sent(w, "CLOSE", 0);
}

/* after = "delete": \Deleted and UID EXPUNGE of exactly the done UIDs, once
 * committed; a second run fetches nothing and leaves the journal alone (an
 * empty folder opens no journal); the next run with mail forgets the rows. */
static void
test_imap_delete(void **state)
{
	static const struct run_lease lease = { .owner = "test:1", .fence = 1, .ttl_s = 60 };
	world w;

	(void)state;
	world_open(&w, topdir, IMAP, STAGES_DONE);
	put_file(&w, "imap-state", CAPS_ALL "folder INBOX 7\nmsg 1 - a1\nmsg 2 \\Seen a2\nmsg 3 - a3\n"
		 "folder Other 9\nmsg 1 \\Deleted x1\n");
	/* with a lease: fenced, renewed before the effect (SQLite: always held) */
	run_lease = &lease;
	assert_int_equal(imap_run(&w, 0), 0);
	run_lease = NULL;
	assert_true(run_settled(&w.stats));
	assert_int_equal(w.stats.fetched, 3);
	assert_int_equal(w.stats.deleted, 3);
	sent(&w, "SELECT", 1);
	sent(&w, "UID STORE 1:3 +FLAGS.SILENT (\\Deleted)", 1);
	sent(&w, "UID EXPUNGE 1:3", 1);
	never_bare_expunge(&w);
	state_has(&w, "msg 1 - a1", 0);
	state_has(&w, "msg 1 \\Deleted x1", 1);   /* another folder's deleted mail stays */
	assert_int_equal(ledger_of(&w, "INBOX;UIDVALIDITY=7/;UID=1"), LEDGER_DELETED);
	assert_int_equal(ledger_of(&w, "INBOX;UIDVALIDITY=7/;UID=3"), LEDGER_DELETED);
	assert_int_equal(sql_count(&w, "SELECT count(*) FROM ledger WHERE length(digest) = 64"), 3);
	assert_int_equal(sql_count(&w, "SELECT count(*) FROM ledger_digest"), 0);
	outbox_is(&w, "sender-a1@example.net,sender-a2@example.net,sender-a3@example.net");
	assert_int_equal(imap_run(&w, 0), 0);
	assert_int_equal(w.stats.fetched, 0);
	sent(&w, "UID STORE", 0);
	assert_int_equal(sql_count(&w, "SELECT count(*) FROM ledger"), 3);
	put_file(&w, "imap-state", CAPS_ALL "folder INBOX 7\nmsg 4 - a4\n");
	assert_int_equal(imap_run(&w, 0), 0);
	assert_int_equal(w.stats.fetched, 1);
	assert_int_equal(w.stats.deleted, 1);
	assert_int_equal(sql_count(&w, "SELECT count(*) FROM ledger"), 1);
	assert_int_equal(ledger_of(&w, "INBOX;UIDVALIDITY=7/;UID=4"), LEDGER_DELETED);
	world_close(&w);
}

/* A server that runs pipelined commands side by side (Dovecot): the UID
 * EXPUNGE sent with the \Deleted finds nothing flagged, so a second UID
 * EXPUNGE goes out once both are answered; without it the messages stayed
 * on the server, counted deleted. */
static void
test_imap_delete_side_by_side(void **state)
{
	world w;

	(void)state;
	world_open(&w, topdir, IMAP, STAGES_DONE);
	put_file(&w, "imap-state", CAPS_ALL "lazy-store\nfolder INBOX 7\nmsg 1 - a1\nmsg 2 - a2\n"
		 "msg 3 - a3\n");
	assert_int_equal(imap_run(&w, 0), 0);
	assert_true(run_settled(&w.stats));
	assert_int_equal(w.stats.deleted, 3);
	sent(&w, "UID EXPUNGE 1:3", 1);
	state_has(&w, "msg 1", 0);
	state_has(&w, "msg 3", 0);
	assert_int_equal(ledger_of(&w, "INBOX;UIDVALIDITY=7/;UID=2"), LEDGER_DELETED);
	world_close(&w);
}

/* The connection goes at the second UID EXPUNGE, after the first found
 * nothing flagged: the messages are on the server, flagged, and not counted
 * deleted; the journal still has them to do, and the next run expunges them
 * without running the pipeline again. */
static void
test_imap_second_expunge_lost(void **state)
{
	world w;

	(void)state;
	world_open(&w, topdir, IMAP, STAGES_DONE);
	put_file(&w, "imap-state", CAPS_ALL "lazy-store\ndrop UID EXPUNGE #2\nfolder INBOX 7\n"
		 "msg 1 - s1\nmsg 2 - s2\n");
	assert_int_equal(imap_run(&w, 0), -1);
	assert_int_equal(w.stats.deleted, 0);
	state_has(&w, "msg 1 \\Deleted s1", 1);
	assert_int_equal(ledger_of(&w, "INBOX;UIDVALIDITY=7/;UID=1"), LEDGER_DELETE);
	assert_int_equal(ledger_of(&w, "INBOX;UIDVALIDITY=7/;UID=2"), LEDGER_DELETE);
	put_file(&w, "imap-state", CAPS_ALL "folder INBOX 7\nmsg 1 \\Deleted s1\n"
		 "msg 2 \\Deleted s2\n");
	assert_int_equal(imap_run(&w, 0), 0);
	assert_int_equal(w.stats.fetched, 0);
	assert_int_equal(w.stats.deleted, 2);
	sent(&w, "BODY.PEEK", 0);
	sent(&w, "UID EXPUNGE 1:2", 1);
	state_has(&w, "s1", 0);
	state_has(&w, "s2", 0);
	assert_int_equal(ledger_of(&w, "INBOX;UIDVALIDITY=7/;UID=1"), LEDGER_DELETED);
	outbox_is(&w, "sender-s1@example.net,sender-s2@example.net");
	world_close(&w);
}

/* after = "move" over two folders: move_to is created, UID MOVE. */
static void
test_imap_move_two_folders(void **state)
{
	world w;

	(void)state;
	world_open(&w, topdir, IMAP "after = \"move\"; move_to = \"Done\";"
		   " folders = [ \"INBOX\", \"Support\" ];", STAGES_DONE);
	put_file(&w, "imap-state", CAPS_ALL "folder INBOX 7\nmsg 4 - b1\nfolder Support 3\nmsg 8 - b2\n"
		 "msg 9 - b3\n");
	assert_int_equal(imap_run(&w, 0), 0);
	assert_true(run_settled(&w.stats));
	assert_int_equal(w.stats.fetched, 3);
	sent(&w, "CREATE \"Done\"", 1);
	sent(&w, "UID MOVE 4 \"Done\"", 1);
	sent(&w, "UID MOVE 8:9 \"Done\"", 1);
	sent(&w, "UID COPY", 0);
	never_bare_expunge(&w);
	state_has(&w, "folder Done", 1);
	state_has(&w, "msg 1 - b1", 1);
	state_has(&w, "msg 3 - b3", 1);
	state_has(&w, "msg 8 - b2", 0);
	assert_int_equal(ledger_of(&w, "Support;UIDVALIDITY=3/;UID=9"), LEDGER_DELETED);
	assert_int_equal(ledger_of(&w, "INBOX;UIDVALIDITY=7/;UID=4"), LEDGER_DELETED);
	world_close(&w);
}

/* No MOVE (Exchange): UID COPY, \Deleted, UID EXPUNGE of those UIDs. */
static void
test_imap_move_without_move(void **state)
{
	world w;

	(void)state;
	world_open(&w, topdir, IMAP "after = \"move\"; move_to = \"Done\";", STAGES_DONE);
	put_file(&w, "imap-state", "caps IMAP4rev1 UIDPLUS AUTH=PLAIN\nfolder INBOX 7\nmsg 2 - c1\n"
		 "msg 5 - c2\nfolder Done 1\n");
	assert_int_equal(imap_run(&w, 0), 0);
	sent(&w, "CREATE", 0);
	sent(&w, "UID MOVE", 0);
	sent(&w, "UID COPY 2,5 \"Done\"", 1);
	sent(&w, "UID STORE 2,5 +FLAGS.SILENT (\\Deleted)", 1);
	sent(&w, "UID EXPUNGE 2,5", 1);
	never_bare_expunge(&w);
	state_has(&w, "msg 1 - c1", 1);   /* in Done, numbered from 1 */
	state_has(&w, "msg 2 - c2", 1);
	state_has(&w, "msg 5 - c2", 0);
	assert_int_equal(ledger_of(&w, "INBOX;UIDVALIDITY=7/;UID=5"), LEDGER_DELETED);
	world_close(&w);
}

/* No UIDPLUS: \Deleted only, never a bare EXPUNGE; the messages stay and
 * are not processed again. */
static void
test_imap_no_uidplus(void **state)
{
	world w;

	(void)state;
	world_open(&w, topdir, IMAP, STAGES_DONE);
	put_file(&w, "imap-state", "caps IMAP4rev1 AUTH=PLAIN\nfolder INBOX 7\nmsg 1 - d1\n");
	assert_int_equal(imap_run(&w, 0), 0);
	sent(&w, "UID STORE 1 +FLAGS.SILENT (\\Deleted)", 1);
	sent(&w, "UID EXPUNGE", 0);
	never_bare_expunge(&w);
	state_has(&w, "msg 1 \\Deleted d1", 1);
	/* Only flagged: counted so, not as deleted. */
	assert_int_equal(w.stats.flagged, 1);
	assert_int_equal(w.stats.deleted, 0);
	assert_int_equal(w.stats.deleted_bytes, 0);
	assert_int_equal(imap_run(&w, 0), 0);
	assert_int_equal(w.stats.fetched, 0);
	sent(&w, "UID STORE", 0);
	outbox_is(&w, "sender-d1@example.net");
	world_close(&w);
}

/* after = "flag": the flag is set; the journal, not the flag, says the
 * message was processed (a flag removed by someone does not bring it back). */
static void
test_imap_flag(void **state)
{
	world w;

	(void)state;
	world_open(&w, topdir, IMAP "after = \"flag\"; flag = \"$Processed\";", STAGES_DONE);
	put_file(&w, "imap-state", CAPS_ALL "folder INBOX 7\nmsg 1 - e1\nmsg 2 - e2\n");
	assert_int_equal(imap_run(&w, 0), 0);
	sent(&w, "UID STORE 1:2 +FLAGS.SILENT ($Processed)", 1);
	assert_int_equal(w.stats.flagged, 2);
	assert_int_equal(w.stats.deleted, 0);
	state_has(&w, "msg 1 $Processed e1", 1);
	assert_int_equal(ledger_of(&w, "INBOX;UIDVALIDITY=7/;UID=2"), LEDGER_DELETED);
	put_file(&w, "imap-state", CAPS_ALL "folder INBOX 7\nmsg 1 - e1\nmsg 2 - e2\nmsg 3 - e3\n");
	assert_int_equal(imap_run(&w, 0), 0);
	assert_int_equal(w.stats.fetched, 1);
	sent(&w, "UID STORE 3 +FLAGS.SILENT ($Processed)", 1);
	outbox_is(&w, "sender-e1@example.net,sender-e2@example.net,sender-e3@example.net");
	world_close(&w);
}

/* after = "keep": nothing changes on the server; processed once. */
static void
test_imap_keep(void **state)
{
	world w;

	(void)state;
	world_open(&w, topdir, IMAP "after = \"keep\";", STAGES_DONE);
	put_file(&w, "imap-state", CAPS_ALL "folder INBOX 7\nmsg 1 - f1\n");
	assert_int_equal(imap_run(&w, 0), 0);
	sent(&w, "UID STORE", 0);
	sent(&w, "UID MOVE", 0);
	assert_int_equal(ledger_of(&w, "INBOX;UIDVALIDITY=7/;UID=1"), LEDGER_KEEP);
	assert_int_equal(imap_run(&w, 0), 0);
	assert_int_equal(w.stats.fetched, 0);
	outbox_is(&w, "sender-f1@example.net");
	world_close(&w);
}

/* A new UIDVALIDITY renumbers the folder: the messages processed before
 * are recognised by Message-ID and digest, take their rows' state, and the
 * pipeline sees only the new one. */
static void
test_imap_uidvalidity(void **state)
{
	world w;

	(void)state;
	world_open(&w, topdir, IMAP "after = \"keep\";", STAGES_DONE);
	put_file(&w, "imap-state", CAPS_ALL "folder INBOX 7\nmsg 1 - g1\nmsg 2 - g2\n");
	assert_int_equal(imap_run(&w, 0), 0);
	put_file(&w, "imap-state", CAPS_ALL "folder INBOX 8\nmsg 1 - g2\nmsg 2 - g1\nmsg 3 - g3\n");
	assert_int_equal(imap_run(&w, 0), 0);
	assert_int_equal(w.stats.fetched, 3);
	assert_int_equal(ledger_of(&w, "INBOX;UIDVALIDITY=8/;UID=1"), LEDGER_KEEP);
	assert_int_equal(ledger_of(&w, "INBOX;UIDVALIDITY=8/;UID=3"), LEDGER_KEEP);
	assert_int_equal(sql_count(&w, "SELECT count(*) FROM ledger WHERE verdict = 'renumbered'"), 2);
	/* The rows under the old UIDVALIDITY are forgotten, their digests kept. */
	assert_int_equal(sql_count(&w, "SELECT count(*) FROM ledger WHERE uid LIKE '%=7/%'"), 0);
	assert_int_equal(sql_count(&w, "SELECT count(*) FROM ledger_digest WHERE uid LIKE '%=7/%'"
				   " AND forgotten IS NOT NULL"), 2);
	outbox_is(&w, "sender-g1@example.net,sender-g2@example.net,sender-g3@example.net");
	/* the third run: nothing new */
	assert_int_equal(imap_run(&w, 0), 0);
	assert_int_equal(w.stats.fetched, 0);
	world_close(&w);
}

/* Renumbered, and the first run after it reads one message (--limit 1):
 * the old rows are forgotten at its end, and the next run still recognises
 * the other by its kept digest, with its state. */
static void
test_imap_uidvalidity_limit(void **state)
{
	world w;

	(void)state;
	world_open(&w, topdir, IMAP "after = \"keep\";", STAGES_DONE);
	put_file(&w, "imap-state", CAPS_ALL "folder INBOX 7\nmsg 1 - n1\nmsg 2 - n2\n");
	assert_int_equal(imap_run(&w, 0), 0);
	put_file(&w, "imap-state", CAPS_ALL "folder INBOX 8\nmsg 1 - n1\nmsg 2 - n2\n");
	run_limit = 1;
	assert_int_equal(imap_run(&w, 0), 0);
	run_limit = 0;
	assert_int_equal(w.stats.fetched, 1);
	assert_int_equal(sql_count(&w, "SELECT count(*) FROM ledger WHERE uid LIKE '%=7/%'"), 0);
	assert_int_equal(imap_run(&w, 0), 0);
	assert_int_equal(w.stats.fetched, 1);
	assert_int_equal(ledger_of(&w, "INBOX;UIDVALIDITY=8/;UID=2"), LEDGER_KEEP);
	assert_int_equal(sql_count(&w, "SELECT count(*) FROM ledger WHERE verdict = 'renumbered'"), 2);
	outbox_is(&w, "sender-n1@example.net,sender-n2@example.net");
	world_close(&w);
}

/* One message in two folders (a Gmail label): processed once, the second
 * key journalled KEEP, verdict "duplicate", and left where it is. */
static void
test_imap_duplicate(void **state)
{
	world w;

	(void)state;
	world_open(&w, topdir, IMAP "folders = [ \"INBOX\", \"Archive\" ];", STAGES_DONE);
	put_file(&w, "imap-state", CAPS_ALL "folder INBOX 7\nmsg 1 - h1\nfolder Archive 2\nmsg 6 - h1\n"
		 "msg 7 - h2\n");
	assert_int_equal(imap_run(&w, 0), 0);
	assert_int_equal(ledger_of(&w, "INBOX;UIDVALIDITY=7/;UID=1"), LEDGER_DELETED);
	assert_int_equal(ledger_of(&w, "Archive;UIDVALIDITY=2/;UID=6"), LEDGER_KEEP);
	assert_int_equal(ledger_of(&w, "Archive;UIDVALIDITY=2/;UID=7"), LEDGER_DELETED);
	assert_int_equal(sql_count(&w, "SELECT count(*) FROM ledger WHERE verdict = 'duplicate'"), 1);
	sent(&w, "UID STORE 7 +FLAGS.SILENT (\\Deleted)", 1);
	state_has(&w, "msg 6 - h1", 1);
	outbox_is(&w, "sender-h1@example.net,sender-h2@example.net");
	world_close(&w);
}

/* A processed message copied back into its folder (a new UID, the same
 * UIDVALIDITY) by another client is a duplicate, not processed again. */
static void
test_imap_copied_back(void **state)
{
	world w;

	(void)state;
	world_open(&w, topdir, IMAP "after = \"flag\";", STAGES_DONE);
	put_file(&w, "imap-state", CAPS_ALL "folder INBOX 7\nmsg 1 - l1\n");
	assert_int_equal(imap_run(&w, 0), 0);
	put_file(&w, "imap-state", CAPS_ALL "folder INBOX 7\nmsg 1 \\Seen l1\nmsg 2 - l1\n");
	assert_int_equal(imap_run(&w, 0), 0);
	assert_int_equal(w.stats.fetched, 1);
	assert_int_equal(ledger_of(&w, "INBOX;UIDVALIDITY=7/;UID=2"), LEDGER_KEEP);
	assert_int_equal(sql_count(&w, "SELECT count(*) FROM ledger WHERE verdict = 'duplicate'"), 1);
	sent(&w, "UID STORE", 0);
	outbox_is(&w, "sender-l1@example.net");
	world_close(&w);
}

/* A message moved away, then moved back by a person (a new UID): its key
 * is forgotten by the first run that opens the journal after the folder
 * stopped listing it (an empty folder's run does not open it), and its
 * digest outlives the key, so it is a duplicate, not processed again.  The
 * runs count what the effect did: moved, not deleted. */
static void
test_imap_moved_back(void **state)
{
	world w;

	(void)state;
	world_open(&w, topdir, IMAP "after = \"move\"; move_to = \"Done\";", STAGES_DONE);
	put_file(&w, "imap-state", CAPS_ALL "folder INBOX 7\nmsg 1 - m1\nfolder Done 3\n");
	assert_int_equal(imap_run(&w, 0), 0);
	assert_int_equal(w.stats.moved, 1);
	assert_int_equal(w.stats.deleted, 0);
	assert_int_equal(w.stats.flagged, 0);
	assert_int_equal(imap_run(&w, 0), 0);
	assert_int_equal(sql_count(&w, "SELECT count(*) FROM ledger"), 1);
	put_file(&w, "imap-state", CAPS_ALL "folder INBOX 7\nmsg 5 - m1\nfolder Done 3\nmsg 1 - m1\n");
	assert_int_equal(imap_run(&w, 0), 0);
	assert_int_equal(sql_count(&w, "SELECT count(*) FROM ledger"
				   " WHERE uid = 'INBOX;UIDVALIDITY=7/;UID=1'"), 0);
	assert_int_equal(sql_count(&w, "SELECT count(*) FROM ledger_digest"
				   " WHERE forgotten IS NOT NULL AND state = 3"), 1);
	assert_int_equal(w.stats.fetched, 1);
	assert_int_equal(w.stats.moved, 0);
	assert_int_equal(ledger_of(&w, "INBOX;UIDVALIDITY=7/;UID=5"), LEDGER_KEEP);
	assert_int_equal(sql_count(&w, "SELECT count(*) FROM ledger WHERE verdict = 'duplicate'"), 1);
	sent(&w, "UID MOVE", 0);
	state_has(&w, "msg 5 - m1", 1);
	outbox_is(&w, "sender-m1@example.net");
	world_close(&w);
}

/* The connection is lost when the effect goes out (as if the run died
 * between the commit and the server): the rows say "to do"; the next run
 * does the effect without fetching or processing anything again. */
static void
test_imap_effect_lost(void **state)
{
	world w;

	(void)state;
	world_open(&w, topdir, IMAP, STAGES_DONE);
	put_file(&w, "imap-state", CAPS_ALL "drop UID STORE\nfolder INBOX 7\nmsg 1 - i1\nmsg 2 - i2\n");
	assert_int_equal(imap_run(&w, 0), -1);
	assert_int_equal(ledger_of(&w, "INBOX;UIDVALIDITY=7/;UID=1"), LEDGER_DELETE);
	state_has(&w, "msg 1 - i1", 1);
	assert_int_equal(imap_run(&w, 0), 0);
	assert_int_equal(w.stats.fetched, 0);
	sent(&w, "BODY.PEEK", 0);
	sent(&w, "UID STORE 1:2 +FLAGS.SILENT (\\Deleted)", 1);
	sent(&w, "UID EXPUNGE 1:2", 1);
	state_has(&w, "msg 1 - i1", 0);
	assert_int_equal(ledger_of(&w, "INBOX;UIDVALIDITY=7/;UID=2"), LEDGER_DELETED);
	outbox_is(&w, "sender-i1@example.net,sender-i2@example.net");
	world_close(&w);
}

/* The server refuses the \Deleted (NO): nothing is counted deleted and no
 * second UID EXPUNGE goes out; the rows stay to do, and the next run does the
 * effect without processing anything again. */
static void
test_imap_effect_refused(void **state)
{
	world w;

	(void)state;
	world_open(&w, topdir, IMAP, STAGES_DONE);
	put_file(&w, "imap-state", CAPS_ALL "no UID STORE\nfolder INBOX 7\nmsg 1 - r1\nmsg 2 - r2\n");
	assert_int_equal(imap_run(&w, 0), 0);
	assert_int_equal(w.stats.fetched, 2);
	assert_int_equal(w.stats.deleted, 0);
	assert_int_equal(w.stats.unsettled, 2);
	sent(&w, "UID EXPUNGE 1:2", 1);
	assert_int_equal(sent_count(&w, "UID EXPUNGE"), 1);
	state_has(&w, "msg 1 - r1", 1);
	state_has(&w, "msg 2 - r2", 1);
	assert_int_equal(ledger_of(&w, "INBOX;UIDVALIDITY=7/;UID=1"), LEDGER_DELETE);
	assert_int_equal(imap_run(&w, 0), 0);
	assert_int_equal(w.stats.fetched, 0);
	assert_int_equal(w.stats.deleted, 2);
	sent(&w, "BODY.PEEK", 0);
	state_has(&w, "r1", 0);
	assert_int_equal(ledger_of(&w, "INBOX;UIDVALIDITY=7/;UID=2"), LEDGER_DELETED);
	outbox_is(&w, "sender-r1@example.net,sender-r2@example.net");
	world_close(&w);
}

/* --dry-run: EXAMINE, the pipeline runs, nothing changes or is written. */
static void
test_imap_dry_run(void **state)
{
	world w;

	(void)state;
	world_open(&w, topdir, IMAP, STAGES_DONE);
	put_file(&w, "imap-state", CAPS_ALL "folder INBOX 7\nmsg 1 - j1\n");
	assert_int_equal(imap_run(&w, 1), 0);
	assert_int_equal(w.stats.fetched, 1);
	sent(&w, "EXAMINE", 1);
	sent(&w, "SELECT", 0);
	sent(&w, "UID STORE", 0);
	state_has(&w, "msg 1 - j1", 1);
	assert_int_equal(sql_count(&w, "SELECT count(*) FROM ledger"), 0);
	outbox_is(&w, "");
	world_close(&w);
}

/* --check-login: each folder's counts by EXAMINE; nothing changes. */
static void
test_imap_check_login(void **state)
{
	world w;
	run_opts o = { .dry_run = 1 };
	char st[400], tr[400], *out = NULL;
	size_t len = 0;
	FILE *f;
	imap_model m;

	(void)state;
	world_open(&w, topdir, IMAP "folders = [ \"INBOX\", \"Support\" ];", STAGES_DONE);
	put_file(&w, "imap-state", CAPS_ALL "folder INBOX 7\nmsg 1 - k1\nmsg 4 - k2\n"
		 "folder Support 3\n");
	snprintf(st, sizeof st, "%s/imap-state", w.dir);
	snprintf(tr, sizeof tr, "%s/transcript", w.dir);
	m = imap_model_start(st, tr, 1);
	free(w.c->accounts[0].port);
	w.c->accounts[0].port = strdup(m.port);
	assert_non_null(f = open_memstream(&out, &len));
	assert_int_equal(run_check_login(w.c, &w.c->accounts[0], w.st, &o, f), 0);
	assert_int_equal(fclose(f), 0);
	imap_model_finish(&m);
	assert_non_null(strstr(out, "folder:   INBOX: 2 message(s), UIDVALIDITY 7, UIDNEXT 5"));
	assert_non_null(strstr(out, "folder:   Support: 0 message(s), UIDVALIDITY 3"));
	assert_non_null(strstr(out, "UIDPLUS"));
	sent(&w, "EXAMINE", 1);
	sent(&w, "SELECT", 0);
	sent(&w, "BODY.PEEK", 0);
	state_has(&w, "msg 4 - k2", 1);
	free(out);
	world_close(&w);
}

/* The rules only an IMAP account has: POP3's sign-ins refused; the flag's
 * default is \Seen (one backslash). */
static void
test_imap_config(void **state)
{
	char dir[300], path[400], *err = NULL;
	cfg *c = NULL;
	FILE *f;

	(void)state;
	snprintf(dir, sizeof dir, "%s/cfg", topdir);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(path, sizeof path, "%s/apop.conf", dir);
	assert_non_null(f = fopen(path, "w"));
	fprintf(f, "state_dir = \"%s/state\";\naccounts = ( { name = \"a\"; protocol = \"imap\";"
		" host = \"h\"; tls = \"tls\"; user = \"u\"; password = \"p\"; auth = \"apop\";"
		" pipeline = ( { plugin = \"" VERDICT_SO "\"; } ); } );\n", dir);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(cfg_load(path, &c, &err), -1);
	assert_non_null(strstr(err, "is POP3's"));
	free(err);
	err = NULL;
	snprintf(path, sizeof path, "%s/flag.conf", dir);
	assert_non_null(f = fopen(path, "w"));
	fprintf(f, "state_dir = \"%s/state\";\naccounts = ( { name = \"a\"; protocol = \"imap\";"
		" host = \"h\"; tls = \"tls\"; user = \"u\"; password = \"p\"; after = \"flag\";"
		" pipeline = ( { plugin = \"" VERDICT_SO "\"; } ); } );\n", dir);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, 0600), 0);
	if (cfg_load(path, &c, &err) < 0)
		fail_msg("cfg_load: %s", err);
	assert_string_equal(c->accounts[0].flag, "\\Seen");
	assert_string_equal(c->accounts[0].port, "993");
	cfg_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_imap_delete),
		cmocka_unit_test(test_imap_delete_side_by_side),
		cmocka_unit_test(test_imap_move_two_folders),
		cmocka_unit_test(test_imap_move_without_move),
		cmocka_unit_test(test_imap_no_uidplus),
		cmocka_unit_test(test_imap_flag),
		cmocka_unit_test(test_imap_keep),
		cmocka_unit_test(test_imap_uidvalidity),
		cmocka_unit_test(test_imap_uidvalidity_limit),
		cmocka_unit_test(test_imap_duplicate),
		cmocka_unit_test(test_imap_copied_back),
		cmocka_unit_test(test_imap_moved_back),
		cmocka_unit_test(test_imap_effect_lost),
		cmocka_unit_test(test_imap_effect_refused),
		cmocka_unit_test(test_imap_second_expunge_lost),
		cmocka_unit_test(test_imap_dry_run),
		cmocka_unit_test(test_imap_check_login),
		cmocka_unit_test(test_imap_config),
	};
	int rc;

	g_mime_init();
	log_open("stderr", getenv("MM_TEST_VERBOSE") != NULL ? LOG_LVL_DEBUG : LOG_LVL_ERROR);
	rc = cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
	plugin_unload_all();
	g_mime_shutdown();
	return rc;
}

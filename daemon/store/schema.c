/* mailmill - ISC licence, see LICENSE */
/* The schema and its migrations (SQLite). */
#include <stdio.h>

#include "daemon/store/store_int.h"
#include "proto/err.h"

/*
 * Schema migrations, in order.  Migration i brings the database from
 * user_version i to i + 1; never edit one that has shipped, append.
 */
static const char *const store_migrations[] = {
	/* 0 -> 1: the ledger */
	"CREATE TABLE ledger ("
	"  account    TEXT NOT NULL,"
	"  uid        TEXT NOT NULL,"
	"  state      INTEGER NOT NULL,"
	"  verdict    TEXT,"
	"  stage      TEXT,"
	"  message_id TEXT,"
	"  size       INTEGER NOT NULL DEFAULT 0,"
	"  attempts   INTEGER NOT NULL DEFAULT 0,"
	"  last_error TEXT,"
	"  created    INTEGER NOT NULL,"   /* unix time the row was first written */
	"  updated    INTEGER NOT NULL,"
	"  PRIMARY KEY (account, uid)"
	") WITHOUT ROWID;",
	/* 1 -> 2: the outbox (mail plugins queued, committed with the verdict
	 * of the message that caused it) and the plugins' key-value store */
	"CREATE TABLE outbox ("
	"  id           INTEGER PRIMARY KEY,"
	"  account      TEXT NOT NULL,"
	"  uid          TEXT,"               /* the message that caused it */
	"  stage        TEXT,"
	"  env_from     TEXT NOT NULL,"      /* '' is the null reverse-path */
	"  rcpts        TEXT NOT NULL,"      /* still to deliver, one per line */
	"  message      BLOB NOT NULL,"      /* the exact bytes, '\n' line ends */
	"  message_id   TEXT,"
	"  flags        INTEGER NOT NULL DEFAULT 0,"
	"  state        INTEGER NOT NULL DEFAULT 0,"  /* 0 queued, 1 sent, 2 dead */
	"  attempts     INTEGER NOT NULL DEFAULT 0,"
	"  next_attempt INTEGER NOT NULL,"
	"  created      INTEGER NOT NULL,"
	"  updated      INTEGER NOT NULL,"
	"  last_error   TEXT,"               /* the last reply or failure */
	"  outcomes     TEXT"                /* per recipient, one line each */
	");"
	"CREATE INDEX outbox_due ON outbox (state, next_attempt);"
	"CREATE TABLE kv ("
	"  account    TEXT NOT NULL,"
	"  stage      TEXT NOT NULL,"
	"  key        TEXT NOT NULL,"
	"  value      TEXT NOT NULL,"
	"  expires_at INTEGER NOT NULL DEFAULT 0,"   /* 0: never */
	"  updated    INTEGER NOT NULL,"
	"  PRIMARY KEY (account, stage, key)"
	") WITHOUT ROWID;",
	/* 2 -> 3: the daemon's account runs and schedule, for --status */
	"CREATE TABLE runs ("
	"  id       INTEGER PRIMARY KEY,"
	"  account  TEXT NOT NULL,"
	"  started  INTEGER NOT NULL,"
	"  finished INTEGER NOT NULL,"
	"  result   TEXT NOT NULL,"          /* ok, failed, auth, crashed, timeout */
	"  error    TEXT,"
	"  fetched  INTEGER NOT NULL DEFAULT 0,"
	"  deleted  INTEGER NOT NULL DEFAULT 0,"
	"  kept     INTEGER NOT NULL DEFAULT 0,"
	"  deferred INTEGER NOT NULL DEFAULT 0,"
	"  skipped  INTEGER NOT NULL DEFAULT 0,"
	"  bytes    INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE INDEX runs_account ON runs (account, id);"
	"CREATE TABLE schedule ("
	"  account  TEXT PRIMARY KEY,"
	"  next_run INTEGER NOT NULL,"       /* unix time; 0: running now */
	"  failures INTEGER NOT NULL DEFAULT 0,"
	"  updated  INTEGER NOT NULL"
	") WITHOUT ROWID;",
	/* 3 -> 4: plugin state shared across accounts (kv_ns, e.g. a ticket
	 * queue fed by two mailboxes) and sequences that never repeat */
	"CREATE TABLE kv_ns ("
	"  ns         TEXT NOT NULL,"
	"  key        TEXT NOT NULL,"
	"  value      TEXT NOT NULL,"
	"  expires_at INTEGER NOT NULL DEFAULT 0,"   /* 0: never */
	"  updated    INTEGER NOT NULL,"
	"  PRIMARY KEY (ns, key)"
	") WITHOUT ROWID;"
	"CREATE TABLE seq ("
	"  ns    TEXT NOT NULL,"
	"  name  TEXT NOT NULL,"
	"  value INTEGER NOT NULL,"          /* the last number handed out */
	"  PRIMARY KEY (ns, name)"
	") WITHOUT ROWID;",
	/* 4 -> 5: a put expires the scope's old keys; without these indexes
	 * that scanned every key of the scope, once per put (an auto-responder
	 * answering 10 000 senders spent a third of its time there). */
	"CREATE INDEX kv_expiry ON kv (account, stage, expires_at);"
	"CREATE INDEX kv_ns_expiry ON kv_ns (ns, expires_at);",
	/* 5 -> 6: outcomes unknown after the end of data (RFC 1047: the relay
	 * may have the message and deliver it twice), per row and in total;
	 * the total is a counter that outlives pruned rows */
	"ALTER TABLE outbox ADD COLUMN unknown_outcomes INTEGER NOT NULL DEFAULT 0;"
	"CREATE TABLE counters ("
	"  name  TEXT PRIMARY KEY,"
	"  value INTEGER NOT NULL"
	") WITHOUT ROWID;",
	/* 6 -> 7: OAuth tokens.  A refresh token belongs to a sign-in (token
	 * endpoint, client, user); access tokens also to a scope, so POP3 and
	 * SMTP share one when their scopes agree. */
	"CREATE TABLE oauth_refresh ("
	"  key           TEXT PRIMARY KEY,"
	"  refresh_token TEXT,"                /* NULL: none (never signed in, revoked) */
	"  needs_signin  INTEGER NOT NULL DEFAULT 0,"
	"  reason        TEXT,"                /* why it needs a sign-in */
	"  updated       INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE oauth_access ("
	"  key          TEXT PRIMARY KEY,"
	"  rkey         TEXT,"                 /* the sign-in it came from; NULL app-only */
	"  access_token TEXT NOT NULL,"
	"  obtained     INTEGER NOT NULL,"     /* unix seconds */
	"  expires      INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE INDEX oauth_access_rkey ON oauth_access (rkey);",
	/* 7 -> 8: IMAP: the SHA-256 of a message as fetched, so that one seen
	 * under another key (a new UIDVALIDITY, a Gmail label) is recognised
	 * (store_ledger_find_digest).  A table of its own, not a ledger column:
	 * POP3's rows have none, and a column with its index cost every ledger
	 * write 2-3 % of a run's instructions (bench/callgrind). */
	"CREATE TABLE ledger_digest ("
	"  account TEXT NOT NULL,"
	"  uid     TEXT NOT NULL,"
	"  digest  TEXT NOT NULL,"
	"  PRIMARY KEY (account, uid)"
	") WITHOUT ROWID;"
	"CREATE INDEX ledger_digest_by ON ledger_digest (account, digest);",
	/* 8 -> 9: a digest outlives its ledger row.  When the server no longer
	 * lists a key (moved, deleted) its row is forgotten, but the digest row
	 * stays, with the row's message_id and state, for STORE_GONE_KEEP:
	 * a message a person moves back is recognised, not processed again
	 * (store_ledger_forget, store_ledger_prune_gone).  forgotten is NULL
	 * while the ledger row exists; the partial index costs a live row's
	 * write nothing. */
	"ALTER TABLE ledger_digest ADD COLUMN message_id TEXT;"
	"ALTER TABLE ledger_digest ADD COLUMN state INTEGER;"
	"ALTER TABLE ledger_digest ADD COLUMN forgotten INTEGER;"
	"CREATE INDEX ledger_digest_gone ON ledger_digest (account, forgotten)"
	" WHERE forgotten IS NOT NULL;",
	/* 9 -> 10: IMAP's effects counted apart: deleted is what the server
	 * removed; moved and flagged mail stays on it. */
	"ALTER TABLE runs ADD COLUMN moved INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE runs ADD COLUMN flagged INTEGER NOT NULL DEFAULT 0;",
	/* 10 -> 11: a live key's digest is a column of its ledger row, with a
	 * partial index (POP3's rows, without one, are not in it); ledger_digest
	 * keeps the forgotten keys' alone.  The second table cost each IMAP
	 * message a B-tree insert and its commit the pages: 8.2k instructions a
	 * message less (bench/callgrind small-maildir-imap), for 1.1k more on a
	 * POP3 row (the index's cursor). */
	"ALTER TABLE ledger ADD COLUMN digest TEXT;"
	"UPDATE ledger SET digest = d.digest FROM ledger_digest d"
	" WHERE d.account = ledger.account AND d.uid = ledger.uid AND d.forgotten IS NULL;"
	"DELETE FROM ledger_digest WHERE forgotten IS NULL;"
	"CREATE INDEX ledger_by_digest ON ledger (account, digest) WHERE digest IS NOT NULL;",
};
#define STORE_SCHEMA_VERSION ((int)(sizeof(store_migrations) / sizeof(store_migrations[0])))

int
store_user_version(store *st, int *v_r, char **err_r)
{
	sqlite3_stmt *q;
	int rc;

	if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &q, NULL) != SQLITE_OK)
		return store_fail(st, err_r, "reading the schema version");
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		*v_r = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	if (rc != SQLITE_ROW)
		return store_fail(st, err_r, "reading the schema version");
	return 0;
}

int
store_migrate(store *st, char **err_r)
{
	char sql[64];
	int v;

	/* IMMEDIATE: two processes opening a new database do not both migrate. */
	if (store_exec(st, "BEGIN IMMEDIATE", err_r) < 0)
		return -1;
	if (store_user_version(st, &v, err_r) < 0)
		goto fail;
	if (v > STORE_SCHEMA_VERSION) {
		err_set(err_r, "%s: schema version %d is newer than this mailmill knows (%d); "
			"was it written by a later release?", st->path, v, STORE_SCHEMA_VERSION);
		goto fail;
	}
	for (; v < STORE_SCHEMA_VERSION; v++) {
		if (store_exec(st, store_migrations[v], err_r) < 0)
			goto fail;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if (store_exec(st, sql, err_r) < 0)
			goto fail;
	}
	return store_exec(st, "COMMIT", err_r);
fail:
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int
store_schema_version(void)
{
	return STORE_SCHEMA_VERSION;
}

/* mailmill - ISC licence, see LICENSE */
/*
 * The PostgreSQL schema and its migrations.  The tables are SQLite's (at
 * SQLite schema 8: the ledger's digest column included; then ledger_gone
 * for SQLite 9's forgotten digests, runs' moved and flagged for 10) with
 * PostgreSQL's types, plus what only several daemons need: leases, and a
 * claim on each outbox row.  Its own version numbers, in table mailmill_schema; migration
 * i brings version i to i + 1; never edit one that has shipped, append.
 * Several daemons starting at once: an advisory lock makes one migrate and
 * the others wait for it.
 */
#include <stdio.h>

#include "daemon/store/pg_int.h"
#include "proto/err.h"

static const char *const pgs_migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE ledger ("
	"  account    text NOT NULL,"
	"  uid        text NOT NULL,"
	"  state      integer NOT NULL,"
	"  verdict    text,"
	"  stage      text,"
	"  message_id text,"
	"  size       bigint NOT NULL DEFAULT 0,"
	"  attempts   integer NOT NULL DEFAULT 0,"
	"  last_error text,"
	"  created    bigint NOT NULL,"
	"  updated    bigint NOT NULL,"
	"  digest     text,"                 /* IMAP: hex SHA-256 as fetched */
	"  PRIMARY KEY (account, uid));"
	"CREATE INDEX ledger_digest ON ledger (account, digest) WHERE digest IS NOT NULL;"
	"CREATE INDEX ledger_quarantine ON ledger (state) WHERE state = 4;"
	"CREATE TABLE outbox ("
	"  id           bigserial PRIMARY KEY,"
	"  account      text NOT NULL,"
	"  uid          text,"
	"  stage        text,"
	"  env_from     text NOT NULL,"
	"  rcpts        text NOT NULL,"
	"  message      bytea NOT NULL,"
	"  message_id   text,"
	"  flags        bigint NOT NULL DEFAULT 0,"
	"  state        integer NOT NULL DEFAULT 0,"
	"  attempts     integer NOT NULL DEFAULT 0,"
	"  next_attempt bigint NOT NULL,"
	"  created      bigint NOT NULL,"
	"  updated      bigint NOT NULL,"
	"  last_error   text,"
	"  outcomes     text,"
	"  unknown_outcomes integer NOT NULL DEFAULT 0,"
	"  claim_owner  text,"               /* the flush sending it now (several daemons) */
	"  claim_until  bigint NOT NULL DEFAULT 0);"   /* server clock, unix seconds */
	"CREATE INDEX outbox_due ON outbox (state, next_attempt);"
	"CREATE TABLE kv ("
	"  account    text NOT NULL,"
	"  stage      text NOT NULL,"
	"  key        text NOT NULL,"
	"  value      text NOT NULL,"
	"  expires_at bigint NOT NULL DEFAULT 0,"
	"  updated    bigint NOT NULL,"
	"  PRIMARY KEY (account, stage, key));"
	"CREATE INDEX kv_expiry ON kv (account, stage, expires_at);"
	"CREATE TABLE kv_ns ("
	"  ns         text NOT NULL,"
	"  key        text NOT NULL,"
	"  value      text NOT NULL,"
	"  expires_at bigint NOT NULL DEFAULT 0,"
	"  updated    bigint NOT NULL,"
	"  PRIMARY KEY (ns, key));"
	"CREATE INDEX kv_ns_expiry ON kv_ns (ns, expires_at);"
	"CREATE TABLE seq ("
	"  ns    text NOT NULL,"
	"  name  text NOT NULL,"
	"  value bigint NOT NULL,"
	"  PRIMARY KEY (ns, name));"
	"CREATE TABLE runs ("
	"  id       bigserial PRIMARY KEY,"
	"  account  text NOT NULL,"
	"  started  bigint NOT NULL,"
	"  finished bigint NOT NULL,"
	"  result   text NOT NULL,"
	"  error    text,"
	"  fetched  bigint NOT NULL DEFAULT 0,"
	"  deleted  bigint NOT NULL DEFAULT 0,"
	"  kept     bigint NOT NULL DEFAULT 0,"
	"  deferred bigint NOT NULL DEFAULT 0,"
	"  skipped  bigint NOT NULL DEFAULT 0,"
	"  bytes    bigint NOT NULL DEFAULT 0);"
	"CREATE INDEX runs_account ON runs (account, id);"
	"CREATE TABLE schedule ("
	"  account  text PRIMARY KEY,"
	"  next_run bigint NOT NULL,"
	"  failures integer NOT NULL DEFAULT 0,"
	"  updated  bigint NOT NULL);"
	"CREATE TABLE counters ("
	"  name  text PRIMARY KEY,"
	"  value bigint NOT NULL);"
	"CREATE TABLE oauth_refresh ("
	"  key           text PRIMARY KEY,"
	"  refresh_token text,"
	"  needs_signin  integer NOT NULL DEFAULT 0,"
	"  reason        text,"
	"  updated       bigint NOT NULL);"
	"CREATE TABLE oauth_access ("
	"  key          text PRIMARY KEY,"
	"  rkey         text,"
	"  access_token text NOT NULL,"
	"  obtained     bigint NOT NULL,"
	"  expires      bigint NOT NULL);"
	"CREATE INDEX oauth_access_rkey ON oauth_access (rkey);"
	/* A row per account ever claimed: the fence only grows, so a released
	 * lease keeps its row (expires 0). */
	"CREATE TABLE leases ("
	"  account text PRIMARY KEY,"
	"  owner   text NOT NULL,"
	"  fence   bigint NOT NULL,"
	"  expires bigint NOT NULL);",
	/* 1 -> 2: a digest outlives its ledger row (SQLite schema 9): a
	 * forgotten key's digest, message_id and state, kept for
	 * STORE_GONE_KEEP so that a message moved back is recognised. */
	"CREATE TABLE ledger_gone ("
	"  account    text NOT NULL,"
	"  uid        text NOT NULL,"
	"  digest     text NOT NULL,"
	"  message_id text,"
	"  state      integer NOT NULL,"
	"  forgotten  bigint NOT NULL,"
	"  PRIMARY KEY (account, uid));"
	"CREATE INDEX ledger_gone_digest ON ledger_gone (account, digest);"
	"CREATE INDEX ledger_gone_forgotten ON ledger_gone (account, forgotten);",
	/* 2 -> 3: IMAP's effects counted apart (SQLite schema 10). */
	"ALTER TABLE runs ADD COLUMN moved bigint NOT NULL DEFAULT 0,"
	"  ADD COLUMN flagged bigint NOT NULL DEFAULT 0;",
};
#define PGS_SCHEMA_VERSION ((int)(sizeof(pgs_migrations) / sizeof(pgs_migrations[0])))

/* The version of the database: 0 when it has no schema of ours. */
static int
pgs_version(store *st, int *v_r, char **err_r)
{
	PGresult *r = pgs_exec(st, "SELECT to_regclass('mailmill_schema') IS NOT NULL", NULL,
			       "reading the schema version", err_r);
	int have;

	if (r == NULL)
		return -1;
	have = PQntuples(r) == 1 && pgs_str(r, 0, 0) != NULL && pgs_str(r, 0, 0)[0] == 't';
	PQclear(r);
	*v_r = 0;
	if (!have)
		return 0;
	r = pgs_exec(st, "SELECT max(version) FROM mailmill_schema", NULL,
		     "reading the schema version", err_r);
	if (r == NULL)
		return -1;
	*v_r = PQntuples(r) == 1 ? (int)pgs_ll(r, 0, 0) : 0;
	PQclear(r);
	return 0;
}

int
pgs_migrate(store *st, char **err_r)
{
	char sql[96];
	int v;

	if (st->readonly) {
		if (pgs_version(st, &v, err_r) < 0)
			return -1;
		st->pg->empty = v == 0;
		if (v != 0 && v != PGS_SCHEMA_VERSION) {
			err_set(err_r, "%s: schema version %d, this mailmill needs %d; a dry run "
				"does not upgrade it, a normal run does", st->path, v,
				PGS_SCHEMA_VERSION);
			return -1;
		}
		return 0;
	}
	/* The usual case, a schema already there, costs no lock. */
	if (pgs_version(st, &v, err_r) < 0)
		return -1;
	if (v == PGS_SCHEMA_VERSION)
		return 0;
	if (pgs_begin(st, err_r) < 0)
		return -1;
	st->in_tx = 1;
	/* Any number of our daemons may start at once: one migrates. */
	if (pgs_cmd(st, "SELECT pg_advisory_xact_lock(7476766478)", NULL, "schema lock", NULL,
		    err_r) < 0 ||
	    pgs_cmd(st, "CREATE TABLE IF NOT EXISTS mailmill_schema (version integer NOT NULL)",
		    NULL, "schema", NULL, err_r) < 0 ||
	    pgs_version(st, &v, err_r) < 0)
		goto fail;
	if (v > PGS_SCHEMA_VERSION) {
		err_set(err_r, "%s: schema version %d is newer than this mailmill knows (%d); "
			"was it written by a later release?", st->path, v, PGS_SCHEMA_VERSION);
		goto fail;
	}
	for (; v < PGS_SCHEMA_VERSION; v++) {
		PGresult *r = PQexec(st->pg->conn, pgs_migrations[v]);

		if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK) {
			err_set(err_r, "%s: schema migration %d: %s", st->path, v + 1,
				r != NULL ? PQresultErrorMessage(r) : "out of memory");
			PQclear(r);
			goto fail;
		}
		PQclear(r);
		snprintf(sql, sizeof(sql), "DELETE FROM mailmill_schema; INSERT INTO"
			 " mailmill_schema VALUES (%d)", v + 1);
		r = PQexec(st->pg->conn, sql);
		if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK) {
			err_set(err_r, "%s: schema version: %s", st->path,
				r != NULL ? PQresultErrorMessage(r) : "out of memory");
			PQclear(r);
			goto fail;
		}
		PQclear(r);
	}
	v = pgs_commit(st, err_r);
	st->in_tx = 0;
	return v;
fail:
	st->in_tx = 0;
	pgs_rollback(st);
	return -1;
}

#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# The daemon on the PostgreSQL store, end to end: a private PostgreSQL and a
# private Dovecot on loopback, --once fetching, archiving and deleting with
# its journal in PostgreSQL; the database gone before a run and in the
# middle of one (exit 75, nothing deleted, everything resumes);
# --migrate-store moving a SQLite journal into an empty database; and TLS to
# the database, verified.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
. "$MM_LIB/pg.sh"
need dovecot python3
pg_need
mm_setup
plan 39
pg_start "$T/pg"
env_start pop --users "user1 user2 mov movsq"

store_conf() { # DBNAME [CONNINFO]
	echo "store = { driver = \"postgresql\"; conninfo = \"${2:-host=127.0.0.1 port=$PG_PORT dbname=$1 user=mailmill}\";" \
		"password_file = \"$PG_PASSFILE\"; sslmode = \"disable\"; };"
}
rows() { PG_DB=${2:-mailmill} pg_sql "SELECT count(*) FROM ledger WHERE $1"; }

# --- configuration
C_TOP_EXTRA=$(store_conf mailmill "host=127.0.0.1 port=$PG_PORT dbname=mailmill password=hunter2") \
	write_conf "$T/pw.conf"
mm pwconf -c "$T/pw.conf" --check-config
rc_is "a password inside conninfo is refused" 78
check "... saying to use store.password_file" err_has 'store.password_file'
check "... without showing the password" bash -c "! grep -q hunter2 '$MM_ERR'"
C_TOP_EXTRA=$(store_conf mailmill) write_conf "$T/pg.conf"
mm check -c "$T/pg.conf" --check-config
rc_is "the store group passes --check-config" 0

# --- a dry run before the first run: an empty database stays empty
env_seed 5
mm dry -c "$T/pg.conf" --once --dry-run
rc_is "--dry-run on a database without the schema: exit 0" 0
is "--dry-run: nothing written, not even the schema" \
	"$(pg_sql "SELECT count(*) FROM pg_tables WHERE tablename = 'ledger'")" 0
is "--dry-run: nothing deleted" "$(env_count)" 5

# --- a run with its journal in PostgreSQL
mm once1 -c "$T/pg.conf" --once
rc_is "--once on PostgreSQL: exit 0" 0
check "every message archived once" archive_matches "$T/archive"
is "the mailbox is empty" "$(env_count)" 0
is "the journal is in PostgreSQL: 5 rows, DELE confirmed" "$(rows "account = 'acct' AND state = 3")" 5
check "no SQLite journal was made" test ! -e "$T/state/mailmill.db"
is "the run is recorded in PostgreSQL" "$(pg_sql "SELECT result FROM runs WHERE account = 'acct'")" ok
mm status -c "$T/pg.conf" --status
rc_is "--status reads the PostgreSQL store" 0

# --- the database is down before a run: nothing touched
env_seed 3 --offset 5
before=$(hashes "$MD")
pg_stop
mm down -c "$T/pg.conf" --once
rc_is "database down: exit 75" 75
is "database down: nothing deleted" "$(hashes "$MD")" "$before"
check "database down: the error names the database" err_has 'postgresql://mailmill@127.0.0.1'
pg_restart
mm up -c "$T/pg.conf" --once
rc_is "database back: exit 0" 0
check "database back: all 8 archived, each once" archive_matches "$T/archive"
is "database back: the mailbox is empty" "$(env_count)" 0

# --- the database goes away in the middle of a run: the verdict cannot be
# committed, so nothing is deleted; the next run processes it once.
cat >"$T/stop-db.sh" <<EOS
#!/bin/sh
cat >/dev/null
$(declare -f pg_as | sed 's/^/  /')
PG_USER_OS=$PG_USER_OS
pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1
exit 0
EOS
chmod 755 "$T/stop-db.sh"
env_seed 2 --offset 8
before=$(hashes "$MD")
C_TOP_EXTRA=$(store_conf mailmill) C_STAGES="      { plugin = \"pipe\"; command = [ \"$T/stop-db.sh\" ]; }" \
	write_conf "$T/stop.conf"
mm mid -c "$T/stop.conf" --once
rc_is "database lost mid-run: exit 75" 75
is "database lost mid-run: nothing deleted" "$(hashes "$MD")" "$before"
pg_restart
mm after -c "$T/pg.conf" --once
rc_is "after the loss: exit 0" 0
check "after the loss: all 10 archived, each once" archive_matches "$T/archive"

# --- --migrate-store: a SQLite journal (mail kept on the server) into an
# empty database; the PostgreSQL run then knows every message already.
env_user user2
env_seed 4
C_USER=user2 C_STATE=$T/state2 C_ARCHIVE=$T/archive2 C_ACCOUNT_EXTRA="keep = true;" \
	write_conf "$T/sqlite.conf"
mm sq -c "$T/sqlite.conf" --once
pg_createdb mig
C_USER=user2 C_STATE=$T/state2 C_ARCHIVE=$T/archive2 C_ACCOUNT_EXTRA="keep = true;" \
	C_TOP_EXTRA=$(store_conf mig) write_conf "$T/mig.conf"
mm mig -c "$T/mig.conf" --migrate-store
rc_is "--migrate-store: exit 0" 0
is "--migrate-store: the 4 journal rows are in PostgreSQL" "$(rows "state = 2" mig)" 4
mm mig2 -c "$T/mig.conf" --migrate-store
if [ "$MM_RC" = 75 ] && err_has 'already holds'; then ok "a second --migrate-store is refused (target not empty)"
else not_ok "a second --migrate-store is refused"; show "$MM_ERR"; fi
mm mig3 -c "$T/mig.conf" --once
is "after the migration nothing is processed twice" "$(archive_count "$T/archive2")" 4

# --- IMAP, after = "move", on PostgreSQL: a message a person moves back
# after the run that forgot the moved keys is recognised by its digest
# (ledger_gone) and journalled KEEP "duplicate", not processed again.  Keys
# are forgotten by a run that opens the journal, one with mail: a fourth
# message arrives before the second run.
env_user mov
env_seed 3 --seed pgmov
C_NAME=mov C_USER=mov C_PROTOCOL=imap C_PORT=$IMAP_PORT C_STATE=$T/state-mov \
	C_ARCHIVE=$T/archive-mov C_ACCOUNT_EXTRA='after = "move"; move_to = "Done";' \
	C_TOP_EXTRA=$(store_conf mailmill) write_conf "$T/mov.conf"
mm mov1 -c "$T/mov.conf" --once
env_seed 1 --seed pgmov2
mm mov2 -c "$T/mov.conf" --once
is "IMAP move on PostgreSQL: archived, moved, the moved keys forgotten, digests kept" \
	"$(archive_count "$T/archive-mov") $(imap_count Done) $(rows "account = 'mov'") $(pg_sql "SELECT count(*) FROM ledger_gone WHERE account = 'mov'")" \
	"4 4 1 3"
back=$(imapc state Done | awk '{ print $4 }' | sort | head -n 1)
imapc copy Done "$back" INBOX
mm mov3 -c "$T/mov.conf" --once
rc_is "IMAP move on PostgreSQL: a message moved back: exit 0" 0
check "... not processed again" archive_matches "$T/archive-mov"
is "... journalled KEEP duplicate, left in INBOX" \
	"$(pg_sql "SELECT state || ' ' || verdict FROM ledger WHERE account = 'mov' AND state = 2") $(imap_count INBOX)" \
	"2 duplicate 1"

# --- --migrate-store carries the forgotten keys' digests (SQLite schema 9)
# into ledger_gone: a message moved back after the migration is recognised.
env_user movsq
env_seed 2 --seed pgmig
mq_conf() { # FILE [TOP]
	C_NAME=movsq C_USER=movsq C_PROTOCOL=imap C_PORT=$IMAP_PORT C_STATE=$T/state-movsq \
		C_ARCHIVE=$T/archive-movsq C_ACCOUNT_EXTRA='after = "move"; move_to = "Done";' \
		C_TOP_EXTRA=${2:-} write_conf "$1"
}
mq_conf "$T/movsq.conf"
mm movsq1 -c "$T/movsq.conf" --once
env_seed 1 --seed pgmig2
mm movsq2 -c "$T/movsq.conf" --once
pg_createdb mig2
mq_conf "$T/movmig.conf" "$(store_conf mig2)"
mm movmig -c "$T/movmig.conf" --migrate-store
rc_is "--migrate-store of an IMAP journal whose moved keys were forgotten: exit 0" 0
is "... their digests are in ledger_gone" \
	"$(PG_DB=mig2 pg_sql "SELECT count(*) FROM ledger_gone WHERE account = 'movsq' AND state = 3")" 2
back=$(imapc state Done | awk '{ print $4 }' | sort | head -n 1)
imapc copy Done "$back" INBOX
mm movmig2 -c "$T/movmig.conf" --once
check "... a message moved back after the migration is not processed again" \
	archive_matches "$T/archive-movsq"

# --- TLS to the database: verified against the CA (the test CA of the
# Dovecot environment signed the server's certificate), no plain fallback.
env_user user1
pg_ssl "$ENV/ssl/server.crt" "$ENV/ssl/server.key"
tls_conf() { # SSLMODE SSLROOTCERT
	C_TOP_EXTRA="store = { driver = \"postgresql\"; conninfo = \"host=localhost port=$PG_PORT dbname=mailmill user=mailmill\";
	  password_file = \"$PG_PASSFILE\"; sslmode = \"$1\"; sslrootcert = \"$2\"; };" write_conf "$T/tls.conf"
}
tls_conf disable "$MAILENV_CA"
mm notls -c "$T/tls.conf" --once
rc_is "a server that requires TLS refuses sslmode disable: exit 75" 75
tls_conf verify-full "$MAILENV_CA"
mm tls -c "$T/tls.conf" --once
rc_is "sslmode verify-full with the server's CA: exit 0" 0
tls_conf verify-full /etc/ssl/certs/ca-certificates.crt
mm badca -c "$T/tls.conf" --once
rc_is "another CA: exit 75" 75
check "... the certificate is what failed" err_has 'certificate verify failed|SSL error'

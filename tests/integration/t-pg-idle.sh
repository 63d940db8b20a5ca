#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# What an idle poll costs the database (issue 18 item 4): a daemon on
# PostgreSQL polls three POP3 accounts every 3 s.  A run opens the store
# only when it needs it (daemon/run/run.c, run_journal_open):
#  - mail: the store is opened, the verdicts are committed under the run's
#    lease (the fenced commit checks the lease row), then DELE;
#  - the next run, its listing empty, opens it once more to forget the rows
#    of the deleted messages, and says that the journal is now empty;
#  - from then on a poll makes no database connection at all: only the
#    daemon's own connection claims, records and keeps the lease;
#  - new mail is fetched and committed, fenced, as before.
# The server logs every connection (log_connections) and, for the second
# round, every statement (log_statement), so the test counts what the
# daemon's workers really did.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/smtp.sh"
. "$(dirname "$0")/../lib/pg.sh"
. "$(dirname "$0")/../lib/cluster.sh"
need dovecot python3 aiosmtpd
pg_need
mm_setup
plan 9

NU=3
cl_start $NU
pg_sql "ALTER SYSTEM SET log_connections = on;" >/dev/null
pg_sql "SELECT pg_reload_conf();" >/dev/null
LOG=$T/pg/server.log

{
	echo "state_dir = \"$T/state1\";"
	echo "plugin_dir = \"$PLUGIN_DIR\";"
	echo "log = { level = \"info\"; target = \"stderr\"; };"
	echo "store = { driver = \"postgresql\"; conninfo = \"$PG_CONNINFO\";"
	echo "  password_file = \"$PG_PASSFILE\"; sslmode = \"disable\"; };"
	echo "lease_ttl = \"10s\"; workers = 2;"
	echo "accounts = ("
	for u in $(seq 1 $NU); do
		[ "$u" -gt 1 ] && echo ","
		echo "{ name = \"a$u\"; host = \"localhost\"; port = $POP3_PORT; tls = \"none\";"
		echo "  user = \"u$u\"; password = \"$MAILENV_PASS\"; allow_plaintext_password = true;"
		echo "  interval = \"3s\";"
		echo "  pipeline = ( { plugin = \"archive\"; path = \"$T/archive/u$u\"; } ); }"
	done
	echo ");"
} >"$T/d1.conf"
chmod 600 "$T/d1.conf"

# mailmill's connections so far (psql's say application_name=psql)
conns() { grep -c 'connection authorized: .*application_name=mailmill' "$LOG"; }
runs() { pg_sql "SELECT count(*) FROM runs;"; }
rows() { pg_sql "SELECT count(*) FROM ledger;"; }
done1() { [ "$(cl_left)" = 0 ] && [ "$(find "$T/archive" -path '*/new/*' -type f | wc -l)" = "$1" ]; }
forgotten() { [ "$(rows)" = 0 ]; }

cl_seed 1 1
cl_daemon 1
wait_for 60 done1 $NU
check "round 1: every message fetched, archived and deleted" done1 $NU
check "round 1: archived byte for byte" cl_archive_exact
# The runs after the deleting one forget the rows (their listing is empty).
wait_for 30 forgotten
is "the next runs forget the deleted messages' rows" "$(rows)" 0

sleep 4   # every account has had its run that found the journal empty
c0=$(conns) r0=$(runs)
sleep 10
c1=$(conns) r1=$(runs)
diag "idle: $((r1 - r0)) poll(s), $((c1 - c0)) new database connection(s) in 10 s"
check "the accounts were polled meanwhile (at least two polls each)" test $((r1 - r0)) -ge $((2 * NU))
is "idle polls open no database connection" "$((c1 - c0))" 0

# Round 2: mail again; the fenced commit is in the statement log.
pg_sql "ALTER SYSTEM SET log_statement = 'all';" >/dev/null
pg_sql "SELECT pg_reload_conf();" >/dev/null
l0=$(wc -l <"$LOG")
cl_seed 2 1
wait_for 60 done1 $((2 * NU))
check "round 2: every new message fetched, archived and deleted" done1 $((2 * NU))
check "round 2: archived byte for byte" cl_archive_exact
tail -n +"$l0" "$LOG" >"$T/round2.log"
n=$(grep -c 'FROM leases WHERE account = \$1 AND owner = \$2 AND fence = \$3' "$T/round2.log")
diag "fence checks in round 2: $n"
check "round 2's commits check the run's lease (one per account at least)" test "$n" -ge $NU
check "the daemon ran without an error" bash -c "! grep -E ' error: ' '$T/d1.log'"
cl_term 1

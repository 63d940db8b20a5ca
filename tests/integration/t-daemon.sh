#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# The long-running daemon against a real Dovecot, in the background:
#  - 22 accounts polled every second by at most 4 workers: all served, each
#    message archived once byte for byte and deleted;
#  - a plugin that crashes on one message: that message is quarantined after
#    max_attempts and left on the server, every other message processed;
#  - a plugin that hangs on one message: the worker is killed at the
#    message deadline, the message quarantined, the others processed;
#  - a second daemon on the same state directory refuses, naming the pid;
#  - --status shows runs and the quarantine; metrics.prom parses as
#    Prometheus text and its counters match what was sent;
#  - SIGUSR1 polls at once; SIGHUP with a broken file keeps the old
#    configuration serving (and says file:line); SIGTERM in the middle of a
#    batch loses nothing and deletes nothing unprocessed.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
need dovecot python3 sqlite3 openssl
mm_setup
plan 27

N_ACCT=22
USERS=""
for i in $(seq -w 1 $N_ACCT); do USERS="$USERS u$i"; done
env_start srv --users "$USERS crash hang sig slow"

# A message with a chosen Subject, also in $EXPECTED (a plugin picks it).
seed_subject() { # SUBJECT
	local n
	n=$(date +%s).M$RANDOM$RANDOM.special
	mkdir -p "$EXPECTED"
	printf 'From: a@example.org\nTo: b@example.net\nSubject: %s\nMessage-ID: <%s@example.org>\n\nbody\n' \
		"$1" "$n" >"$MD/new/$n"
	cp "$MD/new/$n" "$EXPECTED/$n"
	chown "$MAILENV_MAIL_UID:$MAILENV_MAIL_GID" "$MD/new/$n"
}

# account NAME [EXTRA] [STAGES]: one account group on user NAME.
account() {
	local stages="{ plugin = \"archive\"; path = \"$T/archive/$1\"; format = \"maildir\"; }"
	[ -n "${3:-}" ] && stages=$3
	cat <<EOC
  { name = "$1"; host = "127.0.0.1"; port = $POP3_PORT; tls = "none";
    user = "$1"; password = "$MAILENV_PASS"; allow_plaintext_password = true;
    interval = "${INTERVAL:-1s}"; ${2:-}
    pipeline = ( $stages ); },
EOC
}

# conf FILE STATE TOP ACCOUNTS...: a configuration (the accounts as text).
conf() {
	local f=$1 state=$2 top=$3
	shift 3
	{
		echo "state_dir = \"$state\";"
		echo "plugin_dir = \"$PLUGIN_DIR\";"
		echo "log = { level = \"info\"; target = \"stderr\"; };"
		echo "$top"
		echo "accounts = ("
		printf '%s\n' "$@" | sed '$ s/},$/}/'
		echo ");"
	} >"$f"
	chmod 600 "$f"
}

alive() { kill -0 "$DPID" 2>/dev/null; }
server_empty() { [ "$(env_count)" -eq 0 ]; }

# ---------------------------------------------------------------- D1
ACCTS=()
for i in $(seq -w 1 $N_ACCT); do
	(env_user "u$i" && env_seed 3 --seed "$i") &
	ACCTS+=("$(account "u$i")")
done
wait
env_user crash
env_seed 4 --seed crash
seed_subject "CRASHME please"
ACCTS+=("$(account crash "max_attempts = 3;" "{ plugin = \"$TEST_PLUGIN_DIR/verdict.so\"; verdict = \"done\"; subject_contains = \"CRASHME\"; crash = true; },
      { plugin = \"archive\"; path = \"$T/archive/crash\"; format = \"maildir\"; }")")
env_user hang
env_seed 4 --seed hang
seed_subject "HANGME please"
ACCTS+=("$(account hang "max_attempts = 2;" "{ plugin = \"$TEST_PLUGIN_DIR/verdict.so\"; verdict = \"done\"; subject_contains = \"HANGME\"; sleep_ms = 60000; },
      { plugin = \"archive\"; path = \"$T/archive/hang\"; format = \"maildir\"; }")")
conf "$T/d1.conf" "$T/state1" 'workers = 4; message_timeout = "2s"; run_timeout = "30s";' "${ACCTS[@]}"

daemon_start d1 "$T/d1.conf"
all_served() {
	local i
	for i in $(seq -w 1 $N_ACCT); do
		env_user "u$i"
		server_empty || return 1
	done
}
quarantined() { [ "$(ledger_rows "$T/state1" "$1" 'state = 4')" -ge 1 ]; }
wait_for 40 all_served
check "$N_ACCT accounts at 1s intervals, 4 workers: every mailbox emptied" all_served
# Every message is distinct, so one comparison covers all the accounts.
all_archived=$(hashes "$T"/archive/u*)
all_sent=$(find "$ENV"/expected-u* -type f -print0 | xargs -0r sha256sum | cut -d' ' -f1 | sort)
is "every account's messages archived exactly once, byte for byte" \
	"$([ "$all_archived" = "$all_sent" ] && echo $((N_ACCT * 3)))" $((N_ACCT * 3))
wait_for 30 quarantined crash
check "crashing plugin: the message is quarantined" quarantined crash
is "crashing plugin: quarantined after max_attempts (3)" \
	"$(sqlite3 "$T/state1/mailmill.db" "SELECT attempts FROM ledger WHERE account='crash' AND state=4")" 3
env_user crash
one_left() { [ "$(env_count)" -eq 1 ]; }
wait_for 10 one_left
is "crashing plugin: the quarantined message stays on the server, the others deleted" "$(env_count)" 1
rm -f "$EXPECTED"/*.special
check "crashing plugin: every other message archived once" archive_matches "$T/archive/crash"
check "crashing plugin: the crash is logged with the uid" log_has "crash: uid [^ ]+: the worker crashed \(signal 6"
wait_for 30 quarantined hang
check "hanging plugin: killed at the message deadline" log_has "hang: worker [0-9]+ killed: the message passed its deadline"
check "hanging plugin: quarantined after max_attempts (2)" quarantined hang
env_user hang
rm -f "$EXPECTED"/*.special
wait_for 10 archive_matches "$T/archive/hang" >/dev/null
check "hanging plugin: every other message archived once" archive_matches "$T/archive/hang"
check "the daemon is still running after crashes and kills" alive

# A second daemon on the same state directory.
mm second -f -c "$T/d1.conf"
rc_is "second daemon on the same state_dir: refused (exit 75)" 75
check "second daemon: the refusal names the holder's pid" err_has "in use by another mailmilld, pid $DPID"
mm once -c "$T/d1.conf" --once
rc_is "--once next to the daemon: refused too" 75

mm status -c "$T/d1.conf" --status
check "--status: says the daemon runs, with its pid" grep -q "daemon: running, pid $DPID" "$MM_OUT"
check "--status: per account last run and next run" \
	grep -Eq "last run: .*: ok: [0-9]+ fetched" "$MM_OUT"
check "--status: lists the quarantined message with its error" \
	grep -Eq "uid .*: 3 attempts, since .*: the worker crashed" "$MM_OUT"

# Metrics: the file parses, and its counters are what was sent.
PROM=$T/state1/metrics.prom
check "metrics.prom parses as Prometheus text" "$PY" "$MM_LIB/promparse.py" "$PROM"
queries=()
for i in $(seq -w 1 $N_ACCT); do
	queries+=("mailmill_messages_fetched_total{account=\"u$i\"}"
		  "mailmill_messages_deleted_total{account=\"u$i\"}")
done
# The daemon writes the file at most every 5 seconds: the last runs' counts
# may take that long to show.
prom_counts() {
	local v n=0
	sum_fetched=0
	sum_deleted=0
	for v in $("$PY" "$MM_LIB/promparse.py" "$PROM" "${queries[@]}"); do
		if [ $((n % 2)) -eq 0 ]; then
			[ "$v" = 3 ] && sum_fetched=$((sum_fetched + 1))
		else
			[ "$v" = 3 ] && sum_deleted=$((sum_deleted + 1))
		fi
		n=$((n + 1))
	done
	[ "$sum_fetched" -eq $N_ACCT ] && [ "$sum_deleted" -eq $N_ACCT ] &&
		[ "$("$PY" "$MM_LIB/promparse.py" "$PROM" mailmill_messages_quarantined_total)" = 2 ]
}
wait_for 12 prom_counts
is "metrics: each account fetched exactly its 3 messages" "$sum_fetched" $N_ACCT
is "metrics: each account deleted exactly its 3 messages" "$sum_deleted" $N_ACCT
is "metrics: per-stage verdicts (archive done) for an account" \
	"$("$PY" "$MM_LIB/promparse.py" "$PROM" 'mailmill_stage_verdicts_total{account="u01",stage="archive",verdict="done"}')" 3
is "metrics: the two quarantined messages counted" \
	"$("$PY" "$MM_LIB/promparse.py" "$PROM" mailmill_messages_quarantined_total)" 2

kill -TERM "$DPID"
wait "$DPID"
is "SIGTERM: the daemon exits 0" "$?" 0

# ---------------------------------------------------------------- D2
# One poll an hour: only SIGUSR1 (or the start) makes it fetch.
env_user sig
env_seed 2 --seed sig1
env_user slow
env_seed 20 --seed slow
INTERVAL=1h
SIG=$(account sig)
SLOW=$(account slow "" "{ plugin = \"$TEST_PLUGIN_DIR/verdict.so\"; verdict = \"pass\"; sleep_ms = 250; },
      { plugin = \"archive\"; path = \"$T/archive/slow\"; format = \"maildir\"; }")
conf "$T/d2.conf" "$T/state2" 'workers = 2;' "$SIG"
daemon_start d2 "$T/d2.conf"
env_user sig
wait_for 10 log_has "started"
kill -USR1 "$DPID"
wait_for 10 server_empty
env_seed 3 --seed sig2
sleep 2
served_now=$(env_count)
kill -USR1 "$DPID"
wait_for 10 server_empty
if [ "$served_now" -eq 3 ] && server_empty; then ok "SIGUSR1 polls at once (interval 1h)"; else
	not_ok "SIGUSR1 polls at once (interval 1h)"; diag "before: $served_now, after: $(env_count)"; fi

cp "$T/d2.conf" "$T/d2.good"
printf 'state_dir = "%s";\naccounts = ( { name = "x"; host = ; } );\n' "$T/state2" >"$T/d2.conf"
kill -HUP "$DPID"
wait_for 10 log_has "reload failed"
check "SIGHUP with a broken file: refused, naming file:line" log_has "d2\.conf:[0-9]+"
env_seed 2 --seed sig3
kill -USR1 "$DPID"
wait_for 10 server_empty
check "SIGHUP with a broken file: the old configuration keeps serving" server_empty

# Reload with the slow account added, then SIGTERM in the middle of its batch.
conf "$T/d2.conf" "$T/state2" 'workers = 2;' "$SIG" "$SLOW"
kill -HUP "$DPID"
wait_for 10 log_has "reloaded"
kill -USR1 "$DPID"
wait_for 20 log_has "slow: uid [^ ]+: .*archive: done|slow: uid [^ ]+: .*pipeline end"
sleep 1
kill -TERM "$DPID"
wait "$DPID"
rc=$?
env_user slow
left=$(env_count)
union=$( (hashes "$T/archive/slow"; hashes "$MD") | sort -u)
if [ "$rc" -eq 0 ] && [ "$left" -gt 0 ] && [ "$left" -lt 20 ] && [ "$union" = "$(expected_hashes)" ] &&
	[ "$(archive_count "$T/archive/slow")" -eq $((20 - left)) ]; then
	ok "SIGTERM mid-batch: stops, nothing lost, only processed messages deleted"
else
	not_ok "SIGTERM mid-batch: stops, nothing lost, only processed messages deleted"
	diag "rc $rc, left on server $left, archived $(archive_count "$T/archive/slow")"
	show "$DLOG" 30
fi

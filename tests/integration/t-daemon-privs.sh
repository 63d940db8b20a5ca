#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# The daemon started as root with `user = "nobody"` and `worker_memory`:
#  - the worker that talks to the server and runs the plugins is nobody
#    (real, effective, saved and filesystem uid and gid, read from
#    /proc/PID/status while it sleeps in a plugin), and its address space is
#    limited to worker_memory (/proc/PID/limits);
#  - the store a root --once run created is handed to nobody at the start
#    (state_dir and mailmill.db chowned), so the workers can write it: the
#    ledger grows, --status and metrics.prom still work;
#  - an archive directory the operator gave to nobody is written byte for
#    byte; every message deleted from the server;
#  - an unknown user refuses to start (exit 78, naming it);
#  - a detached daemon logging to syslog holds no stderr of its starter
#    ($(mailmilld) returns) and writes its pid file;
#  - worker_memory above its limit is refused with the limit in units;
#  - a plugin_dir or state_dir the user cannot reach (a directory on the way
#    it cannot search) refuses the start (exit 78), naming the user, the
#    setting, the path and the directory in the way.
# The workers load their plugins as nobody, so the test copies them under $T
# (in /tmp): a clone in a private directory (/root, mode 0700) is out of
# nobody's reach.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
need dovecot python3 sqlite3 openssl
mm_setup
plan 23

if [ "$(id -u)" -ne 0 ] || ! getent passwd nobody >/dev/null; then
	for i in $(seq 1 22); do skip "privileges" "needs root and a user nobody"; done
	exit 0
fi
NOBODY_UID=$(id -u nobody)
NOBODY_GID=$(id -g nobody)
env_start srv --users "p1 p2"
plugins_for_worker

# conf FILE TOP ACCOUNTS...
conf() {
	local f=$1 top=$2
	shift 2
	{
		echo "state_dir = \"$T/state\";"
		echo "plugin_dir = \"$PLUGIN_DIR\";"
		echo "log = { level = \"info\"; target = \"stderr\"; };"
		echo "$top"
		echo "accounts = ("
		printf '%s\n' "$@" | sed '$ s/},$/}/'
		echo ");"
	} >"$f"
	chmod 600 "$f"
}
account() { # NAME ARCHIVE [STAGES-BEFORE-ARCHIVE]
	cat <<EOC
  { name = "$1"; host = "127.0.0.1"; port = $POP3_PORT; tls = "none";
    user = "$1"; password = "$MAILENV_PASS"; allow_plaintext_password = true;
    interval = "10s";
    pipeline = ( ${3:-} { plugin = "archive"; path = "$2"; format = "maildir"; } ); },
EOC
}

# ---------------------------------------------------------------- a store made by root
env_user p2
env_seed 2 --seed p2a
conf "$T/root.conf" "" "$(account p2 "$T/rootarchive")"
mm once -c "$T/root.conf" --once
rc_is "a --once run as root (no user) creates the store" 0
is "that store belongs to root" "$(stat -c %u "$T/state/mailmill.db")" 0

# ---------------------------------------------------------------- the daemon as nobody
mkdir -p "$T/archive"
chown nobody "$T/archive"   # the operator's part: the archive is the worker user's
env_user p1
env_seed 3 --seed p1
n=$(date +%s).M$RANDOM.slow
printf 'From: a@example.org\nTo: b@example.net\nSubject: SLOWME\nMessage-ID: <%s@example.org>\n\nbody\n' \
	"$n" >"$MD/new/$n"
mkdir -p "$EXPECTED"
cp "$MD/new/$n" "$EXPECTED/$n"
chown "$MAILENV_MAIL_UID:$MAILENV_MAIL_GID" "$MD/new/$n"
env_user p2
env_seed 2 --seed p2b
SLOW="{ plugin = \"$TEST_PLUGIN_DIR/verdict.so\"; verdict = \"pass\"; subject_contains = \"SLOWME\"; sleep_ms = 4000; },"
conf "$T/d.conf" 'user = "nobody"; worker_memory = "512M"; message_timeout = "60s";' \
	"$(account p1 "$T/archive/p1" "$SLOW")" "$(account p2 "$T/archive/p2")"
DLOG=$T/d.log
"$MAILMILLD" -f -c "$T/d.conf" >"$DLOG" 2>&1 </dev/null &
DPID=$!

# The daemon's account workers: its spawner's children (no outbox: no smtp).
children() { local c; for c in $(pgrep -P "$DPID"); do echo "$c"; pgrep -P "$c"; done; }
# A worker sleeping in the verdict plugin on SLOWME: one with nobody's uid.
# Both files are read while the worker is alive: a quick worker (p2) may
# exit between two reads, so only a worker seen whole counts.
WPID=
find_worker() {
	local p
	for p in $(children); do
		grep -q "^Uid:.*\b$NOBODY_UID\b" "/proc/$p/status" 2>/dev/null || continue
		ids=$(awk '/^Uid:|^Gid:/ { print $2, $3, $4, $5 }' "/proc/$p/status" 2>/dev/null | tr '\n' ' ')
		limit=$(awk '/^Max address space/ { print $4 }' "/proc/$p/limits" 2>/dev/null)
		if [ -n "$limit" ] && [ -n "$ids" ]; then
			WPID=$p
			return 0
		fi
	done
	return 1
}
wait_for 20 find_worker
if [ -z "$WPID" ]; then
	ids="no worker running as nobody"
	limit=
	show "$DLOG" 30
fi
is "worker: real, effective, saved and fs uid and gid are nobody's" "$ids" \
	"$NOBODY_UID $NOBODY_UID $NOBODY_UID $NOBODY_UID $NOBODY_GID $NOBODY_GID $NOBODY_GID $NOBODY_GID "
is "worker: worker_memory is its address-space limit" "$limit" $((512 << 20))
is "the daemon itself stays root (it keeps the secrets)" \
	"$(awk '/^Uid:/ { print $3 }' "/proc/$DPID/status")" 0
is "state_dir handed to the worker user at start" "$(stat -c %u "$T/state")" "$NOBODY_UID"
is "mailmill.db handed to the worker user at start" "$(stat -c %u "$T/state/mailmill.db")" "$NOBODY_UID"

served() { env_user p1; [ "$(env_count)" -eq 0 ] || return 1; env_user p2; [ "$(env_count)" -eq 0 ]; }
wait_for 30 served
check "every message of both accounts deleted from the server" served
env_user p1
check "archive written by the worker as nobody, byte for byte (p1)" archive_matches "$T/archive/p1"
is "archived files belong to nobody" \
	"$(find "$T/archive/p1" -type f ! -uid "$NOBODY_UID" | wc -l)" 0
env_user p2
# (root's rows of p2 are gone: pruned once their UIDs left the server)
ledger_ok() { [ "$(ledger_rows "$T/state" p1 'state = 3')" -eq 4 ] &&
	[ "$(ledger_rows "$T/state" p2 'state = 3')" -eq 2 ]; }
wait_for 10 ledger_ok
check "the store still works: the workers recorded every message as deleted" ledger_ok
mm status -c "$T/d.conf" --status
check "--status reads the store" grep -Eq "last run: .*: ok: 4 fetched" "$MM_OUT"
check "metrics.prom written" "$PY" "$MM_LIB/promparse.py" "$T/state/metrics.prom"
kill -TERM "$DPID"
wait "$DPID"
is "SIGTERM: the daemon exits 0" "$?" 0

# ---------------------------------------------------------------- refusals
conf "$T/bad.conf" 'user = "no-such-user-mailmill";' "$(account p2 "$T/archive/p2")"
mm nouser -f -c "$T/bad.conf"
rc_is "an unknown user: the daemon refuses to start (exit 78)" 78
check "the refusal names the user" err_has 'no-such-user-mailmill.*no such user'

conf "$T/big.conf" 'worker_memory = "2000G";' "$(account p2 "$T/archive/p2")"
mm big -c "$T/big.conf" --check-config
check "worker_memory above the limit: refused with the limit in units (1024G)" \
	err_has "'worker_memory' must be at most 1099511627776 bytes \(1024G\), not 2147483648000"

# ---------------------------------------------------------------- detached, syslog
conf "$T/det.conf" "pid_file = \"$T/mailmilld.pid\";" "$(account p2 "$T/archive/p2")"
sed -i 's/target = "stderr"/target = "syslog"/' "$T/det.conf"
# With stderr still open in the daemon, $( ) would wait for it to exit.
out=$(timeout 10 "$MAILMILLD" -c "$T/det.conf" 2>&1 </dev/null)
rc=$?
pid=$(cat "$T/mailmilld.pid" 2>/dev/null)
if [ "$rc" -eq 0 ] && [ -n "$pid" ] && [ "$(readlink "/proc/$pid/fd/2")" = /dev/null ]; then
	ok "detached with syslog: returns at once, pid file written, stderr is /dev/null"
else
	not_ok "detached with syslog: returns at once, pid file written, stderr is /dev/null"
	diag "rc $rc, pid '$pid', fd 2: $(readlink "/proc/$pid/fd/2" 2>&1), output: $out"
fi
[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null
wait_gone() { ! kill -0 "$pid" 2>/dev/null; }
[ -n "$pid" ] && wait_for 10 wait_gone

# A detached daemon that stops before it runs (its pid file cannot be
# written): the starting command says so and fails, instead of exiting 0.
conf "$T/det2.conf" "pid_file = \"$T/no-such-dir/mailmilld.pid\";" "$(account p2 "$T/archive/p2")"
out=$(timeout 10 "$MAILMILLD" -c "$T/det2.conf" 2>&1 </dev/null)
rc=$?
if [ "$rc" -eq 71 ] && printf '%s' "$out" | grep -q 'stopped while starting'; then
	ok "detached, the pid file cannot be written: the start fails (71) and says so"
else
	not_ok "detached, the pid file cannot be written: the start fails (71) and says so"
	diag "rc $rc, output: $out"
fi

# ---------------------------------------------------------------- what nobody cannot reach
mkdir -p "$T/private/plugins" "$T/private/state"
cp "$PLUGIN_DIR/archive.so" "$T/private/plugins/"
chmod 700 "$T/private"
conf "$T/noplug.conf" 'user = "nobody";' "$(account p2 "$T/archive/p2")"
sed -i "s|^plugin_dir = .*|plugin_dir = \"$T/private/plugins\";|" "$T/noplug.conf"
mm noplug -f -c "$T/noplug.conf"
rc_is "a plugin_dir nobody cannot reach: the daemon refuses to start (exit 78)" 78
check "the refusal names the user, plugin_dir and the directory in the way" \
	err_has "user \"nobody\" cannot reach plugin_dir $T/private/plugins: it cannot search $T/private "
conf "$T/nostate.conf" 'user = "nobody";' "$(account p2 "$T/archive/p2")"
sed -i "s|^state_dir = .*|state_dir = \"$T/private/state\";|" "$T/nostate.conf"
mm nostate -f -c "$T/nostate.conf"
rc_is "a state_dir nobody cannot reach: the daemon refuses to start (exit 78)" 78
check "the refusal names the user, state_dir and the directory in the way" \
	err_has "user \"nobody\" cannot reach state_dir $T/private/state: it cannot search $T/private "

#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# The daemon's metrics at a bounded rate (issue 18, item 0), against a real
# Dovecot, scraped with curl on loopback:
#  - metrics_listen that is not a numeric address:port is refused by
#    --check-config with file:line;
#  - /healthz answers 200 and /metrics the Prometheus text (promparse.py),
#    with every account's runs, while 30 accounts poll every second;
#  - metrics.prom is rewritten at most every 5 seconds however many runs
#    end (counted by the file's inode: each write is a rename);
#  - /metrics counts what was fetched; other paths 404, POST 405;
#  - SIGTERM writes the final counts to the file and closes the port.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
need dovecot python3 curl
mm_setup
plan 13

N_ACCT=30
USERS=""
for i in $(seq -w 1 $N_ACCT); do USERS="$USERS m$i"; done
env_start srv --users "$USERS"
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT

# conf FILE LISTEN: N_ACCT accounts every second, 4 workers.
conf() {
	{
		echo "state_dir = \"$T/state\";"
		echo "plugin_dir = \"$PLUGIN_DIR\";"
		echo "log = { level = \"info\"; target = \"stderr\"; };"
		echo "metrics_listen = \"$2\";"
		echo "accounts = ("
		for i in $(seq -w 1 $N_ACCT); do
			[ "$i" = 01 ] || echo ","
			echo "{ name = \"m$i\"; host = \"127.0.0.1\"; port = $POP3_PORT; tls = \"none\";"
			echo "  user = \"m$i\"; password = \"$MAILENV_PASS\"; allow_plaintext_password = true;"
			echo "  interval = \"1s\"; pipeline = ( { plugin = \"archive\";"
			echo "  path = \"$T/archive/m$i\"; format = \"maildir\"; } ); }"
		done
		echo ");"
	} >"$1"
	chmod 600 "$1"
}

conf "$T/bad.conf" "localhost:$PORT"
mm bad --check-config -c "$T/bad.conf"
check "--check-config: a host name for metrics_listen is refused with file:line" \
	err_has "bad.conf:[0-9]+: .*'metrics_listen' .*numeric"

for i in 01 02 03; do env_user "m$i"; env_seed 2 --seed "$i"; done
conf "$T/d.conf" "127.0.0.1:$PORT"
"$MAILMILLD" -f -c "$T/d.conf" >"$T/d.log" 2>&1 </dev/null &
DPID=$!
healthy() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz")" = 200 ]; }
wait_for 15 healthy
check "/healthz: 200 while the daemon runs" healthy
is "/healthz: says ok" "$(curl -s "$URL/healthz")" ok

# Every account ran at least twice, seen over HTTP.
scrape() { curl -sf "$URL/metrics" >"$T/scrape.prom"; }
all_ran() {
	scrape || return 1
	[ "$(grep -c '^mailmill_runs_total{account="m[0-9]*"} \([2-9]\|[1-9][0-9]\+\)$' "$T/scrape.prom")" -eq $N_ACCT ]
}
wait_for 30 all_ran
check "/metrics: every account polled, at least twice" all_ran
check "/metrics parses as Prometheus text" "$PY" "$MM_LIB/promparse.py" "$T/scrape.prom"
fetched_ok() {
	scrape && [ "$("$PY" "$MM_LIB/promparse.py" "$T/scrape.prom" mailmill_messages_fetched_total)" = 6 ]
}
wait_for 12 fetched_ok
check "/metrics: the 6 seeded messages fetched, counted once" fetched_ok

# The file's rate: about 30 runs a second end, the file is renamed into place
# at most every 5 seconds (at most 4 writes in 12 s, and some).
declare -A inodes=()
end=$((SECONDS + 12))
while [ $SECONDS -lt $end ]; do
	ino=$(stat -c %i "$T/state/metrics.prom" 2>/dev/null) && inodes[$ino]=1
	sleep 0.1
done
runs_now() { "$PY" "$MM_LIB/promparse.py" "$T/scrape.prom" mailmill_runs_total; }
scrape
r=$(runs_now)
diag "metrics.prom: ${#inodes[@]} versions in 12 s; $r runs so far"
check "metrics.prom rewritten at most every 5 s (<= 4 versions in 12 s) while runs end" \
	[ "${#inodes[@]}" -le 4 ]
check "metrics.prom rewritten while runs go on (>= 2 versions in 12 s)" [ "${#inodes[@]}" -ge 2 ]
check "many more runs than writes (> 100 runs)" [ "$r" -gt 100 ]

is "an unknown path: 404" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/other")" 404
is "POST /metrics: 405" "$(curl -s -o /dev/null -w '%{http_code}' -d x "$URL/metrics")" 405

kill -TERM "$DPID"
wait "$DPID"
final_runs=$("$PY" "$MM_LIB/promparse.py" "$T/state/metrics.prom" mailmill_runs_total)
scrape_after=$(curl -s -o /dev/null -w '%{http_code}' "$URL/metrics")
check "SIGTERM: the file has the final counts (at least those scraped last)" \
	[ "$final_runs" -ge "$r" ]
is "SIGTERM: the port is closed" "$scrape_after" 000
[ "$tap_failed" -eq 0 ] || show "$T/d.log"

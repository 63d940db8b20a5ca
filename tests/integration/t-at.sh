#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# The daemon's `at` times (issue 15 item 9), against a real Dovecot:
#  - `at` and no `interval`, started after a slot that no run covered: it
#    runs once at start; restarted after that run, it does not run again but
#    waits for the next slot; --status shows the times, not an interval;
#  - on a fake clock (test build: MAILMILL_TEST_NOW starts the daemon's wall
#    clock there) in Europe/Berlin, three seconds before a slot on the days
#    the clocks change: 02:30 on the spring-forward day runs at 03:00 CEST,
#    then the next day at 02:30; 02:30 on the fall-back day runs at its first
#    occurrence and next the day after, not an hour later.
# The arithmetic itself, across years and zones: tests/unit/test_at.c.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
need dovecot sqlite3 openssl
mm_setup
plan 12

env_start srv
env_seed 2
DPID=
stop_daemon() {
	[ -n "$DPID" ] || return 0
	kill -TERM "$DPID" 2>/dev/null
	wait "$DPID" 2>/dev/null
	DPID=
}
trap 'stop_daemon; mm_cleanup' EXIT
# daemon NAME CONF [VAR=value...]: mailmilld -f in the background; $DLOG.
daemon() {
	DLOG=$T/$1.log
	local conf=$2
	shift 2
	env "$@" "$MAILMILLD" -f -c "$conf" >"$DLOG" 2>&1 </dev/null &
	DPID=$!
}
log_has() { grep -q -- "$1" "$DLOG"; }
runs() { # STATE_DIR
	sqlite3 "$1/mailmill.db" "SELECT count(*) FROM runs WHERE account = 'acct';" 2>/dev/null || echo 0
}
runs_are() { [ "$(runs "$1")" = "$2" ]; }

# `at` only: a slot two minutes ago that no run covered.
slot=$(date -d '-2 min' +%H:%M)
C_STATE=$T/state-at C_ARCHIVE=$T/archive-at C_ACCOUNT_EXTRA="at = [ \"$slot\" ];" \
	write_conf "$T/at.conf"
daemon at-1 "$T/at.conf"
wait_for 30 runs_are "$T/state-at" 1
is "started after a missed slot: runs at once" "$(runs "$T/state-at")" 1
check "... and says why" log_has "a scheduled time passed since its last run: running it now; next at .* $slot"
check "... archiving the mail" archive_matches "$T/archive-at"
stop_daemon
daemon at-2 "$T/at.conf"
wait_for 20 log_has "next scheduled run at .* $slot"
check "restarted after the run that covered the slot: waits for the next one" \
	log_has "next scheduled run at .* $slot"
sleep 2   # a run at start would have begun by now
is "... and does not run again (runs recorded: 1)" "$(runs "$T/state-at")" 1
stop_daemon
mm at-status -c "$T/at.conf" --status
check "--status: runs at $slot, not every interval" grep -q "^account acct (.*, at $slot)$" "$MM_OUT"

# On a fake clock, in Europe/Berlin (never ran: also a run at start).
dst_case() { # NAME NOW(UTC) FIRST NEXT
	local name=$1 now=$2 first=$3 next=$4
	C_STATE=$T/state-$name C_ARCHIVE=$T/archive-$name C_ACCOUNT_EXTRA='at = [ "02:30" ];' \
		write_conf "$T/$name.conf"
	daemon "$name" "$T/$name.conf" TZ=Europe/Berlin MAILMILL_TEST_NOW="$(date -u -d "$now" +%s)"
	wait_for 10 log_has "next at $first"
	check "$name: the slot falls at $first" log_has "next at $first"
	wait_for 20 log_has "scheduled run; next at"
	check "$name: the timer fires there; the next slot is $next" log_has "scheduled run; next at $next"
	wait_for 20 runs_are "$T/state-$name" 2
	is "$name: two runs (the missed one at start, the slot)" "$(runs "$T/state-$name")" 2
	stop_daemon
}
if have_crashpoints; then
	dst_case spring "2027-03-28 00:59:57 UTC" "2027-03-28 03:00 CEST" "2027-03-29 02:30 CEST"
	dst_case fall "2027-10-31 00:29:57 UTC" "2027-10-31 02:30 CEST" "2027-11-01 02:30 CET"
else
	for i in 1 2 3 4 5 6; do skip "fake clock" "needs configure --enable-crashpoints"; done
fi

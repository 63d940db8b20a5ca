#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# The pipe plugin end to end: a command that reads the message on stdin and
# decides by the Subject it finds in MAILMILL_SUBJECT.  Exit 0 deletes the
# message, 75 defers it, 1 fails it (counted; quarantined after
# max_attempts = 2 runs, then no longer fetched), a command that sleeps past
# the deadline is killed with its process group; stdin bytes are exact, the
# MAILMILL_* variables are set, stderr is logged and bounded, a command that
# floods stderr before reading stdin does not deadlock, and --dry-run runs
# nothing.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
need dovecot python3 sqlite3 openssl
mm_setup
plan 30

env_start srv
M=$T/msgs
O=$T/out
mkdir -p "$M" "$O"

mkmsg() { # NAME SUBJECT [extra headers...]
	local name=$1 subj=$2 h
	shift 2
	{
		echo "Return-Path: <sender-$name@example.com>"
		echo "From: Someone <from-$name@example.com>"
		echo "To: <to@example.org>"
		for h in "$@"; do echo "$h"; done
		echo "Subject: $subj"
		echo "Message-ID: <$name@test.example>"
		echo "Date: Mon, 01 Jan 2024 10:00:00 +0000"
		echo
		echo "Body of $name."
		echo ".a line starting with a dot"
	} >"$M/$name.eml"
}
mkmsg ok "=?UTF-8?B?$(printf 'Grüße ok' | base64 -w0)?=" "Delivered-To: rcpt@example.org"
mkmsg tmp "tempfail"
mkmsg bad "broken"
mkmsg slow "slow"
mkmsg chatty "chatty"
head -c 300000 /dev/urandom | base64 >>"$M/chatty.eml"   # more than a pipe holds
env_seed_files "$M"/*.eml

cat >"$T/cmd.sh" <<EOF
#!/bin/bash
echo "\$MAILMILL_SUBJECT" >>"$O/calls"
case "\$MAILMILL_SUBJECT" in
chatty)	head -c 100000 /dev/zero | tr '\\0' e >&2 ;;   # before reading stdin
esac
cat >"$O/\$MAILMILL_UID.eml"
env | grep '^MAILMILL_' | sort >"$O/\$MAILMILL_UID.env"
case "\$MAILMILL_SUBJECT" in
tempfail) exit 75 ;;
broken) echo "broken: cannot import this one" >&2; exit 1 ;;
slow) sleep 60 & echo \$! >"$O/sleep.pid"; wait; exit 0 ;;
esac
echo "imported \$MAILMILL_SUBJECT" >&2
exit 0
EOF
chmod 755 "$T/cmd.sh"

C_ACCOUNT_EXTRA="max_attempts = 2;" \
C_STAGES="      { plugin = \"pipe\"; command = [ \"$T/cmd.sh\", \"arg one\" ]; timeout = 2; }" \
	write_conf "$T/p.conf"

mm dry -c "$T/p.conf" --once --dry-run
rc_is "dry run exits 0" 0
check "dry run: the command is not run" test ! -e "$O/calls"
check "dry run: says what it would run" err_has "dry run: would run $T/cmd.sh"

uid_of() { sqlite3 "$T/state/mailmill.db" "SELECT uid FROM ledger WHERE message_id = '$1@test.example';"; }
row() { sqlite3 "$T/state/mailmill.db" "SELECT $2 FROM ledger WHERE message_id = '$1@test.example';"; }
calls() { grep -cx "$1" "$O/calls"; }
# A failed message's journal row has no Message-ID: find it by the UID the
# command was given.
frow() { # SUBJECT COLUMNS
	local u
	u=$(grep -lx "MAILMILL_SUBJECT=$1" "$O"/*.env | head -n1 | xargs sed -n 's/^MAILMILL_UID=//p')
	sqlite3 "$T/state/mailmill.db" "SELECT $2 FROM ledger WHERE uid = '$u';"
}

t0=$(date +%s)
mm run1 -c "$T/p.conf" --once -v
t1=$(date +%s)
rc_is "run 1 exits 75 (deferred and failed messages)" 75
check "run 1 took less than 10 s (the deadline is 2 s)" test $((t1 - t0)) -lt 10
U=$(uid_of ok)
is "exit 0: done" "$(row ok "verdict || ' ' || stage")" "done pipe"
check "stdin got the message byte for byte" cmp -s "$M/ok.eml" "$O/$U.eml"
check "MAILMILL_ACCOUNT" grep -qx "MAILMILL_ACCOUNT=acct" "$O/$U.env"
check "MAILMILL_UID" grep -qx "MAILMILL_UID=$U" "$O/$U.env"
check "MAILMILL_SENDER from Return-Path" grep -qx "MAILMILL_SENDER=sender-ok@example.com" "$O/$U.env"
check "MAILMILL_RECIPIENT from Delivered-To" grep -qx "MAILMILL_RECIPIENT=rcpt@example.org" "$O/$U.env"
check "MAILMILL_SUBJECT decoded" grep -qx "MAILMILL_SUBJECT=Grüße ok" "$O/$U.env"
check "stderr of a success logged" err_has "uid $U: stderr: imported Grüße ok"
is "exit 75: deferred, no journal row" "$(row tmp verdict)" ""
is "exit 1: one failed attempt counted, not quarantined" "$(frow broken "attempts || ' ' || state")" "1 0"
check "exit 1: stderr logged" err_has "stderr: broken: cannot import this one"
check "deadline: killed and logged" err_has "did not finish within 2s: killed"
is "deadline: one failed attempt counted" "$(frow slow attempts)" 1
# Gone, or a zombie waiting for PID 1 to reap it (slow in some containers):
# either way it no longer runs.
gone() {
	local p
	p=$(cat "$O/sleep.pid") || return 1
	! kill -0 "$p" 2>/dev/null || [ "$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null)" = Z ]
}
check "the command's process group was killed (its sleep is gone)" gone
is "stderr flood before reading stdin: no deadlock, done" "$(row chatty verdict)" "done"
check "chatty: stdin bytes exact" cmp -s "$M/chatty.eml" "$O/$(uid_of chatty).eml"
check "stderr bounded: the rest counted, not logged" err_has "more bytes not logged"
is "tmp, bad, slow still on the server" "$(env_count)" 3

mm run2 -c "$T/p.conf" --once -v
rc_is "run 2 exits 75 (tempfail deferred again, two quarantined)" 75
is "bad: quarantined after max_attempts = 2" "$(frow broken "state || ' ' || attempts")" "4 2"
check "quarantine logged" err_has "QUARANTINED after 2 failed attempts"
is "slow: quarantined too" "$(frow slow state)" 4

mm run3 -c "$T/p.conf" --once -v
rc_is "run 3 exits 75 (tempfail deferred again)" 75
is "quarantined messages are not fetched again; tempfail is (3 runs)" \
	"$(calls broken) $(calls slow) $(calls tempfail)" "2 2 3"
is "still on the server: tmp, bad, slow" "$(env_count)" 3

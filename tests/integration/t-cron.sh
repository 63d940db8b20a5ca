#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# cron and the daemon behave the same (issue 15): --once runs each account
# in a worker as the daemon does (as `user`, recorded in the store, in
# metrics.prom), logs one line per failure, shows a progress line on a
# terminal only, honours --limit (with --dry-run too: only N are fetched);
# --check-login says what it found (certificate, CAPA, STAT).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
mm_setup
plan 34

env_start srv --users "owner rec bad lim dry stop chk big"

# ---------------------------------------------------------------- user = nobody
env_user owner
env_seed 4 --seed owner
if [ "$(id -u)" -eq 0 ] && getent passwd nobody >/dev/null; then
	plugins_for_worker
	mkdir -p "$T/nb"
	chown nobody "$T/nb"          # the operator's part: the archive is the worker user's
	chmod 755 "$T"
	C_TOP_EXTRA='user = "nobody";' C_ARCHIVE=$T/nb/archive C_STATE=$T/state-owner \
		write_conf "$T/owner.conf"
	mm owner -c "$T/owner.conf" --once
	rc_is "user = nobody: --once as root exits 0" 0
	check "user = nobody: every message archived byte for byte" archive_matches "$T/nb/archive"
	is "user = nobody: the archive's directories and files belong to nobody" \
		"$(find "$T/nb/archive" ! -user nobody | wc -l)" 0
	is "user = nobody: the store belongs to nobody" "$(stat -c %U "$T/state-owner/mailmill.db")" nobody
else
	for i in 1 2 3 4; do skip "user = nobody" "needs root and a user nobody"; done
fi

# ---------------------------------------------------------------- recorded like the daemon
env_user rec
env_seed 3 --seed rec
C_ARCHIVE=$T/archive-rec C_STATE=$T/state-rec write_conf "$T/rec.conf"
mm rec -c "$T/rec.conf" --once
rc_is "record: --once exits 0" 0
mm rec-status -c "$T/rec.conf" --status
check "record: --status shows the last run: ok, 3 fetched" err_has 'last run: .*: ok: 3 fetched'
is "record: one run row in the store" \
	"$(sqlite3 "$T/state-rec/mailmill.db" "SELECT count(*) FROM runs WHERE account = 'acct' AND result = 'ok'")" 1
check "record: metrics.prom written" test -f "$T/state-rec/metrics.prom"
check "record: metrics.prom counts the run and the messages" eval \
	"grep -q '^mailmill_runs_total{account=\"acct\"} 1$' '$T/state-rec/metrics.prom' &&
	 grep -q '^mailmill_messages_fetched_total{account=\"acct\"} 3$' '$T/state-rec/metrics.prom'"
# Nothing new: a line at debug level only.
mm rec-empty -c "$T/rec.conf" --once
rc_is "empty run: exits 0" 0
check "empty run: no info line about it" eval "! grep -q 'run finished' '$MM_ERR'"

# ---------------------------------------------------------------- one line per failure
C_PORT=1 C_ARCHIVE=$T/archive-bad C_STATE=$T/state-bad write_conf "$T/bad.conf"
mm bad -c "$T/bad.conf" --once
rc_is "failed connect: exit 75" 75
is "failed connect: one line says so" "$(grep -c 'Connection refused' "$MM_ERR")" 1
is "failed connect: the address is named once in it" \
	"$(grep 'Connection refused' "$MM_ERR" | grep -o ':1\b' | wc -l)" 1
mm bad-status -c "$T/bad.conf" --status
check "failed connect: --status shows the failed run and its error" eval \
	"grep -q 'last run: .*: failed' '$MM_OUT' && grep -q 'error: .*Connection refused' '$MM_OUT'"
# The daemon's worker runs the same code: one line there too.
C_PORT=1 C_ACCOUNT_EXTRA='interval = "10s";' C_ARCHIVE=$T/archive-bad C_STATE=$T/state-badd write_conf "$T/badd.conf"
"$MAILMILLD" -f -c "$T/badd.conf" >"$T/badd.log" 2>&1 </dev/null &
dpid=$!
timeout 30 sh -c "until grep -q 'failed run(s) in a row' '$T/badd.log'; do sleep 0.2; done"
kill -TERM "$dpid"; wait "$dpid" 2>/dev/null
is "failed connect, daemon: one line says so" "$(grep -c 'Connection refused' "$T/badd.log")" 1
C_STAGES='{ plugin = "archive"; path = "'$T'/x"; format = "bogus"; }' C_STATE=$T/state-bad \
	write_conf "$T/badset.conf"
mm badset -c "$T/badset.conf" --once
rc_is "bad plugin setting: exit 78" 78
is "bad plugin setting: one line, with file:line" "$(grep -c 'badset.conf:[0-9]*: .*bogus' "$MM_ERR")" 1
is "bad plugin setting: said once" "$(grep -vc '^$' "$MM_ERR")" 1

# ---------------------------------------------------------------- --limit
env_user lim
env_seed 10 --seed lim
C_ARCHIVE=$T/archive-lim C_STATE=$T/state-lim write_conf "$T/lim.conf"
mm lim -c "$T/lim.conf" --once --limit 3
rc_is "--limit 3: exit 0" 0
is "--limit 3: 3 messages archived" "$(archive_count "$T/archive-lim")" 3
is "--limit 3: 7 left on the server" "$(env_count)" 7
env_user dry
env_seed 10 --seed dry
C_ARCHIVE=$T/archive-dry C_STATE=$T/state-dry write_conf "$T/dry.conf"
mm dry -c "$T/dry.conf" --once --dry-run --limit 3
rc_is "--dry-run --limit 3: exit 0" 0
sleep 0.5   # Dovecot logs the session's end after its reply to QUIT
check "--dry-run --limit 3: Dovecot sent 3 messages (retr=3), deleted none" \
	eval "grep 'pop3(dry)' '$MAILENV_LOG' | grep -q 'retr=3/.*del=0/10'"

# ---------------------------------------------------------------- stopped by a signal
env_user stop
env_seed 3 --seed stop
C_STATE=$T/state-stop C_STAGES="{ plugin = \"$TEST_PLUGIN_DIR/verdict.so\"; verdict = \"pass\"; sleep_ms = 1500; },
      { plugin = \"archive\"; path = \"$T/archive-stop\"; }" write_conf "$T/stop.conf"
"$MAILMILLD" -c "$T/stop.conf" --once >"$T/stop.out" 2>"$T/stop.err" </dev/null &
spid=$!
# Signed in: the first message is in the verdict's 1.5 s sleep soon after.
timeout 20 sh -c "until grep -q 'Login: user=<stop>' '$MAILENV_LOG'; do sleep 0.1; done"
sleep 0.7
kill -TERM "$spid"
src=0; wait "$spid" || src=$?
is "SIGTERM: --once exits 75" "$src" 75
check "SIGTERM: the message in hand is finished, the rest left on the server" \
	eval "[ \$(archive_count '$T/archive-stop') -ge 1 ] && [ \$(env_count) -ge 1 ] &&
	      [ \$((\$(archive_count '$T/archive-stop') + \$(env_count))) = 3 ]"
check "SIGTERM: the last line says it was stopped" grep -q 'stopped by a signal' "$T/stop.err"
is "SIGTERM: the run is recorded" \
	"$(sqlite3 "$T/state-stop/mailmill.db" "SELECT count(*) FROM runs WHERE account = 'acct'")" 1

# ---------------------------------------------------------------- --check-login
env_user chk
env_seed 2 --seed chk
C_TLS=tls C_PORT=$POP3S_PORT C_ARCHIVE=$T/archive-chk C_STATE=$T/state-chk write_conf "$T/chk.conf"
mm chk -c "$T/chk.conf" --check-login
rc_is "--check-login: exit 0" 0
check "--check-login: the certificate's subject and expiry" \
	eval "grep -Eq 'certificate subject .*CN *= *localhost.*, expires [A-Z][a-z]{2} .*[0-9]{4}' '$MM_OUT'"
check "--check-login: CAPA and STAT (2 messages)" \
	eval "grep -q 'CAPA: .*UIDL' '$MM_OUT' && grep -q 'STAT: *2 message(s)' '$MM_OUT'"

# ---------------------------------------------------------------- progress
env_user big
env_seed 300 --seed big
C_ARCHIVE=$T/archive-big C_STATE=$T/state-big C_LOG_LEVEL=warning write_conf "$T/big.conf"
env -u JOURNAL_STREAM -u INVOCATION_ID script -qec \
	"'$MAILMILLD' -c '$T/big.conf' --once --dry-run" /dev/null >"$T/tty.out" 2>&1 </dev/null
check "progress: on a terminal, an updating line n/N, msg/s, ETA" eval \
	"grep -q '300/300 messages, .* msg/s, ETA' '$T/tty.out' && grep -q \$'\\r' '$T/tty.out'"
env -u JOURNAL_STREAM INVOCATION_ID=test script -qec \
	"'$MAILMILLD' -c '$T/big.conf' --once --dry-run" /dev/null >"$T/tty-sd.out" 2>&1 </dev/null
check "progress: none under systemd (INVOCATION_ID)" eval "! grep -q 'messages, ' '$T/tty-sd.out'"
mm big -c "$T/big.conf" --once
check "progress: none when stderr is not a terminal" eval "[ \"$MM_RC\" = 0 ] && ! grep -q '/300' '$MM_ERR'"

#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# IMAP IDLE in the daemon (idle = true), against a real Dovecot over IMAPS
# with the CA made at test time; the account's interval is an hour, so only
# IDLE can explain a run within seconds:
#  - the IDLE watcher watches both folders; IDLE is renewed (DONE, IDLE)
#    at the period the test sets, and a renewal is not logged at info level;
#  - a message delivered into INBOX is archived and gone from the server
#    within seconds; so is one delivered into the second folder;
#  - the server drops the connection (doveadm kick): the watch says so,
#    comes back, and new mail is again processed within seconds;
#  - the server restarts, with mail delivered while it was down: the watch
#    comes back and that mail is processed without waiting for the interval;
#  - a watcher killed is started again; SIGHUP starts a new watcher (the
#    old one ends); SIGTERM ends both the daemon and its watcher; --once
#    does not watch;
#  - started as root with user = "nobody", the watcher runs as nobody;
#  - the watcher runs within worker_memory (RLIMIT_AS), as workers do.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
need dovecot-imap python3 sqlite3 openssl
mm_setup
plan 21

env_start srv
plugins_for_worker   # for the daemon that drops to nobody (20)
DOVECOT_CONF=$ENV/etc/dovecot.conf
# The second folder, empty, before the daemon starts (Maildir++).
mkdir -p "$MD/.Other/cur" "$MD/.Other/new" "$MD/.Other/tmp"
: >"$MD/.Other/maildirfolder"
chown -R "$MAILENV_MAIL_UID:$MAILENV_MAIL_GID" "$MD/.Other"

C_PROTOCOL=imap C_PORT=$IMAPS_PORT C_TLS=tls C_LOG_LEVEL=debug \
	C_TOP_EXTRA='worker_memory = "512M";' \
	C_ACCOUNT_EXTRA='interval = "1h"; idle = true; folders = [ "INBOX", "Other" ];' \
	write_conf "$T/conf"

DLOG=$T/daemon.log
log_count() { grep -Ec -- "$1" "$DLOG"; }
runs() { sqlite3 "$T/state/mailmill.db" "SELECT count(*) FROM runs WHERE account = 'acct';" 2>/dev/null || echo 0; }
archived() { [ "$(archive_count "$T/archive")" -ge "$1" ]; }
server_empty() { [ "$(env_count)" -eq 0 ] && [ "$(find "$MD/.Other/new" "$MD/.Other/cur" -type f | wc -l)" -eq 0 ]; }
# delivered_within SECS WANT: WANT messages archived and the server empty within SECS.
delivered_within() { wait_for "$1" eval "archived $2 && server_empty"; }
watcher_pid() { sed -n 's/.*IDLE watcher \([0-9]*\): .*/\1/p' "$DLOG" | tail -n 1; }

MAILMILL_TEST_IDLE_RENEW=2 "$MAILMILLD" -f -c "$T/conf" >"$DLOG" 2>&1 </dev/null &
DPID=$!
trap 'kill -KILL $DPID 2>/dev/null; mm_cleanup' EXIT

# 1-2: both folders watched
check "the watcher watches INBOX" wait_for 20 log_has 'acct/INBOX: watching with IDLE'
if ! kill -0 $DPID 2>/dev/null; then
	show "$DLOG" 30
	echo "Bail out! the daemon did not start"
	exit 1
fi
check "and the second folder" wait_for 10 log_has 'acct/Other: watching with IDLE'
W1=$(watcher_pid)
# The watcher runs within worker_memory, as workers do.
is "the watcher's address space is limited to worker_memory" \
	"$(awk '/^Max address space/ { print $4 }' "/proc/$W1/limits" 2>/dev/null)" $((512 << 20))

# 3-4: renewals (every 2 s here), only at debug level
wait_for 15 eval '[ "$(log_count "acct/INBOX: IDLE renewed")" -ge 3 ]'
n=$(log_count 'acct/INBOX: IDLE renewed')
check "IDLE is renewed at the period set ($n renewals of INBOX)" [ "$n" -ge 3 ]
check "a renewal is logged at debug level only" \
	eval '! grep "IDLE renewed" "$DLOG" | grep -vq "debug"'

# The first run of the account (its first interval comes within 30 s): done
# by SIGUSR1 now, so that what follows can only be IDLE's doing.
kill -USR1 $DPID
wait_for 20 eval '[ "$(runs)" -ge 1 ]'
r0=$(runs)

# 5-8: new mail in INBOX, then in Other
t0=$SECONDS
env_seed 1 --seed 1
if delivered_within 10 1; then
	ok "new mail in INBOX processed within seconds ($((SECONDS - t0)) s; interval 1h)"
else
	not_ok "new mail in INBOX processed within seconds"
	show "$DLOG" 30
fi
t0=$SECONDS
env_seed_folder Other 1 --seed 2
if delivered_within 10 2; then
	ok "new mail in the second folder processed within seconds ($((SECONDS - t0)) s)"
else
	not_ok "new mail in the second folder processed within seconds"
	show "$DLOG" 30
fi
check "each by a run of its own account (runs: $r0 -> $(runs))" [ "$(runs)" -ge $((r0 + 2)) ]
# Line ends aside (the IMAP wire's CRLF): what a source delivers is t-imap.sh's to check.
lf_hashes() { find "$@" -type f | sort | while read -r f; do tr -d '\r' <"$f" | sha256sum; done | cut -d' ' -f1 | sort; }
check "each message archived once" eval \
	'[ "$(lf_hashes "$T/archive/new" "$T/archive/cur")" = "$(lf_hashes "$EXPECTED")" ]'

# 9-11: the server drops the connections
doveadm -c "$DOVECOT_CONF" kick user1 >"$T/kick.out" 2>&1
check "a dropped watch is logged" wait_for 10 log_has 'acct/(INBOX|Other): IDLE watch failed'
check "and comes back" wait_for 20 eval \
	'[ "$(log_count "acct/INBOX: IDLE watch (back|reconnected)")" -ge 1 ] &&
	 [ "$(log_count "acct/Other: IDLE watch (back|reconnected)")" -ge 1 ]'
t0=$SECONDS
env_seed 1 --seed 3
if delivered_within 10 3; then
	ok "new mail after the reconnection processed within seconds ($((SECONDS - t0)) s)"
else
	not_ok "new mail after the reconnection processed within seconds"
	show "$DLOG" 30
fi

# 12-13: the server restarts (same ports), mail delivered while it was down
n_back=$(log_count 'acct/INBOX: IDLE watch (back|reconnected)')
"$MM_LIB/mailenv.sh" stop "$ENV" >/dev/null 2>&1
env_seed 1 --seed 4
"$MM_DOVECOT" -c "$DOVECOT_CONF" </dev/null >>"$ENV/log/start.log" 2>&1
check "after a server restart the watch comes back" wait_for 40 eval \
	"[ \"\$(log_count 'acct/INBOX: IDLE watch (back|reconnected)')\" -gt $n_back ]"
if delivered_within 15 4; then
	ok "mail delivered while the server was down is processed at the reconnection"
else
	not_ok "mail delivered while the server was down is processed at the reconnection"
	show "$DLOG" 30
fi

# 14-15: a watcher that dies is started again (with back-off)
n_watch=$(log_count 'acct/INBOX: watching with IDLE')
kill -KILL "$W1"
check "a watcher killed is logged" wait_for 10 log_has "IDLE watcher $W1 crashed \\(signal 9"
check "and started again, watching" wait_for 30 eval \
	"[ \"\$(watcher_pid)\" != $W1 ] && [ \"\$(log_count 'acct/INBOX: watching with IDLE')\" -gt $n_watch ]"
W1=$(watcher_pid)

# 16-17: SIGHUP: a new watcher, the old one ends
kill -HUP $DPID
check "SIGHUP starts a new watcher" wait_for 10 eval '[ "$(watcher_pid)" != "$W1" ]'
W2=$(watcher_pid)
check "and the old one ends" wait_for 10 eval '! kill -0 "$W1" 2>/dev/null'

# 18: SIGTERM ends the daemon and its watcher
kill -TERM $DPID
wait_for 15 eval '! kill -0 $DPID 2>/dev/null'
check "SIGTERM ends the daemon and its watcher" \
	eval '! kill -0 $DPID 2>/dev/null && ! kill -0 "$W2" 2>/dev/null'

# 19: --once ignores idle: it runs and exits, and watches nothing
env_seed 1 --seed 5
mm once --once -c "$T/conf"
if [ "$MM_RC" = 0 ] && archived 5 && ! err_has 'IDLE'; then
	ok "--once runs the account and does not watch"
else
	not_ok "--once runs the account and does not watch"
	diag "exit $MM_RC"
	show "$MM_ERR" 20
fi

# 20: as root with `user`, the watcher drops to it like the workers
if [ "$(id -u)" -ne 0 ] || ! getent passwd nobody >/dev/null; then
	skip "the watcher runs as user" "needs root and a user nobody"
	exit 0
fi
mkdir -p "$T/archive2"
chown nobody "$T/archive2"
C_STATE=$T/state2 C_ARCHIVE=$T/archive2 C_TOP_EXTRA='user = "nobody";' C_PROTOCOL=imap \
	C_PORT=$IMAPS_PORT C_TLS=tls C_ACCOUNT_EXTRA='interval = "1h"; idle = true;' \
	write_conf "$T/conf2"
DLOG=$T/daemon2.log
"$MAILMILLD" -f -c "$T/conf2" >"$DLOG" 2>&1 </dev/null &
DPID=$!
wait_for 20 log_has 'acct/INBOX: watching with IDLE'
W3=$(watcher_pid)
env_seed 1 --seed 6
wait_for 15 eval '[ "$(archive_count "$T/archive2")" -ge 1 ]'
if [ -n "$W3" ] && [ "$(ps -o user= -p "$W3" 2>/dev/null)" = nobody ] &&
	[ "$(archive_count "$T/archive2")" -ge 1 ]; then
	ok "started as root with user = nobody, the watcher runs as nobody (and the mail is processed)"
else
	not_ok "started as root with user = nobody, the watcher runs as nobody"
	show "$DLOG" 20
fi
kill -TERM $DPID
wait_for 15 eval '! kill -0 $DPID 2>/dev/null'

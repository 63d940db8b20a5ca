#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# The spawner (daemon/sched/spawner.h): the daemon's workers are forked by a
# small process of their own, not by the scheduler.  Against a real Dovecot:
#  - the workers are the spawner's children, and the runs serve every account;
#  - the spawner SIGKILLed while a worker runs: the daemon logs it and makes
#    a new one, the worker in flight finishes (nothing archived twice), and
#    the next runs go on;
#  - SIGHUP makes a new spawner for the new configuration (a new account is
#    served); the old one goes;
#  - SIGTERM: the daemon exits 0 and no process of it is left;
#  - the CA file, loaded once by the spawner, is read afresh once changed;
#  - the daemon SIGKILLed mid-run: its spawner and workers notice and end, no
#    orphan is left, and nothing is lost.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
need dovecot python3 sqlite3 openssl
mm_setup
plan 18

env_start srv --users "a b c slow"

# account NAME [STAGES]
account() {
	local stages="{ plugin = \"archive\"; path = \"$T/archive/$1\"; format = \"maildir\"; }"
	[ -n "${2:-}" ] && stages=$2
	cat <<EOC
  { name = "$1"; host = "127.0.0.1"; port = $POP3_PORT; tls = "none";
    user = "$1"; password = "$MAILENV_PASS"; allow_plaintext_password = true;
    interval = "1s"; pipeline = ( $stages ); },
EOC
}
SLOW_STAGES="{ plugin = \"$TEST_PLUGIN_DIR/verdict.so\"; verdict = \"pass\"; sleep_ms = 300; },
      { plugin = \"archive\"; path = \"$T/archive/slow\"; format = \"maildir\"; }"

# conf FILE ACCOUNTS...
conf() {
	local f=$1
	shift
	{
		echo "state_dir = \"$T/state\";"
		echo "plugin_dir = \"$PLUGIN_DIR\";"
		echo "log = { level = \"debug\"; target = \"stderr\"; };"
		echo "workers = 2;"
		echo "accounts = ("
		printf '%s\n' "$@" | sed '$ s/},$/}/'
		echo ");"
	} >"$f"
	chmod 600 "$f"
}

# The daemon's processes: everything started with this configuration.
procs() { pgrep -f -- "-c $1" | sort -n | tr '\n' ' '; }
# (A worker whose spawner died is the daemon's child too, named mailmilld.)
spawner_pid() { pgrep -P "$DPID" -x mailmilld-spawn | head -1; }
served() { env_user "$1" && [ "$(env_count)" -eq 0 ]; }
all_served() { local u; for u in "$@"; do served "$u" || return 1; done; }
nothing_left() { [ -z "$(procs "$1")" ]; }
# Every message of user U archived exactly once: the archive is the seed.
once_each() { [ "$(hashes "$T/archive/$1")" = "$(find "$ENV/expected-$1" -type f -print0 |
	xargs -0r sha256sum | cut -d' ' -f1 | sort)" ]; }

for u in a b c slow; do env_user "$u"; env_seed 3 --seed "${u}1"; done
env_user slow
env_seed 12 --seed slow2
conf "$T/d.conf" "$(account a)" "$(account b)" "$(account slow "$SLOW_STAGES")"
daemon_start d "$T/d.conf"

wait_for 20 all_served a b
wait_for 10 spawner_pid >/dev/null
SP=$(spawner_pid)
# A worker of the slow account, in flight: whose child is it?
worker_of() { pgrep -P "$1" | head -1; }
wait_for 20 worker_of "$SP" >/dev/null
W=$(worker_of "$SP")
if [ -n "$SP" ] && [ -n "$W" ] && [ "$(ps -o ppid= -p "$W" | tr -d ' ')" = "$SP" ] &&
	[ -z "$(pgrep -P "$DPID" | grep -vx "$SP")" ]; then
	ok "the workers are the spawner's children, not the scheduler's"
else
	not_ok "the workers are the spawner's children, not the scheduler's"
	diag "daemon $DPID spawner '$SP' worker '$W'; children of the daemon: $(pgrep -P "$DPID" | tr '\n' ' ')"
fi

# The spawner dies while the slow account's worker runs (a 300 ms plugin
# per message, 15 messages).
kill -KILL "$SP"
wait_for 10 log_has "the spawner \(pid $SP\) died: signal 9"
check "spawner SIGKILLed: the daemon says so" log_has "the spawner \(pid $SP\) died: signal 9"
wait_for 10 log_has "made a new spawner"
# Logged at its fork: it takes its name (mailmilld-spawn) a moment later.
new_spawner() { local p; p=$(spawner_pid); [ -n "$p" ] && [ "$p" != "$SP" ]; }
wait_for 10 new_spawner
NSP=$(spawner_pid)
if [ -n "$NSP" ] && [ "$NSP" != "$SP" ]; then ok "spawner SIGKILLed: a new one is made"; else
	not_ok "spawner SIGKILLed: a new one is made"; diag "old $SP new '$NSP'"; show "$DLOG"; fi
# The new one dies at once too: the next is made after a back-off, and the
# daemon forks the runs itself meanwhile.
kill -KILL "$NSP"
wait_for 10 log_has "making a new spawner in 1 s"
check "spawner dying again at once: re-made after a back-off" log_has "making a new spawner in 1 s"
wait_for 10 spawner_pid >/dev/null
check "spawner dying again: a new one after the back-off" spawner_pid
wait_for 40 all_served slow
check "spawner SIGKILLed: the worker in flight and the next runs finish the slow account" \
	all_served slow
check "spawner SIGKILLed: every slow message archived exactly once" once_each slow
for u in a b; do env_user "$u"; env_seed 2 --seed "${u}2"; done
wait_for 20 all_served a b
check "spawner SIGKILLed twice: new mail of the other accounts is served after" all_served a b
check "the daemon is alive" kill -0 "$DPID"

# SIGHUP: account c added; a new spawner serves it, the old one goes.
OLD=$(spawner_pid)
conf "$T/d.conf" "$(account a)" "$(account b)" "$(account c)" "$(account slow "$SLOW_STAGES")"
kill -HUP "$DPID"
wait_for 10 log_has "reloaded"
wait_for 30 all_served c
check "SIGHUP: the new account is served" all_served c
old_gone() { ! kill -0 "$OLD" 2>/dev/null; }
wait_for 10 old_gone
NEW=$(spawner_pid)
if old_gone && [ -n "$NEW" ] && [ "$NEW" != "$OLD" ]; then ok "SIGHUP: a new spawner, the old one ended"
else not_ok "SIGHUP: a new spawner, the old one ended"; diag "old $OLD new '$NEW'"; fi
check "SIGHUP: the old spawner's end is not an error" \
	bash -c "! grep -Eq 'the spawner \(pid $OLD\) (died|exited)' '$DLOG'"

kill -TERM "$DPID"
wait "$DPID"
is "SIGTERM: the daemon exits 0" "$?" 0
wait_for 5 nothing_left "$T/d.conf"
is "SIGTERM: no process of the daemon is left" "$(procs "$T/d.conf")" ""

# The CA file is loaded once by the spawner (tls_preload); a file changed
# since is read afresh: trust taken away takes effect at the next run.
cp "$MAILENV_CA" "$T/ca.pem"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/other.key" -out "$T/other.pem" \
	-days 1 -subj "/CN=other test CA" >/dev/null 2>&1
TLS_ACCT="  { name = \"c\"; host = \"localhost\"; port = $POP3S_PORT; tls = \"tls\";
    ca_file = \"$T/ca.pem\"; user = \"c\"; password = \"$MAILENV_PASS\";
    interval = \"1s\"; pipeline = ( { plugin = \"archive\"; path = \"$T/archive/c\"; format = \"maildir\"; } ); },"
env_user c
env_seed 2 --seed c2
conf "$T/t.conf" "$TLS_ACCT"
daemon_start t "$T/t.conf"
wait_for 20 all_served c
check "POP3S with ca_file, through the spawner: served" all_served c
cp "$T/other.pem" "$T/ca.pem"
sleep 2
env_user c
env_seed 2 --seed c3
wait_for 15 log_has "c: .*([Cc]ertificate|[Vv]erif)"
env_user c
if log_has "c: .*([Cc]ertificate|[Vv]erif)" && [ "$(env_count)" -eq 2 ]; then
	ok "the CA file replaced: the next runs verify against the new one (refused, nothing deleted)"
else
	not_ok "the CA file replaced: the next runs verify against the new one"
	diag "left on the server: $(env_count)"; show "$DLOG"
fi
kill -TERM "$DPID"
wait "$DPID"

# The daemon SIGKILLed in the middle of the slow account's batch.
env_user slow
env_seed 20 --seed slow3
conf "$T/k.conf" "$(account slow "$SLOW_STAGES")"
daemon_start k "$T/k.conf"
wait_for 20 log_has "slow: uid [^ ]+: .*pipeline end|slow: uid [^ ]+: .*archive: done"
kill -KILL "$DPID"
wait "$DPID" 2>/dev/null
wait_for 15 nothing_left "$T/k.conf"
is "daemon SIGKILLed: its spawner and worker end, no orphan is left" "$(procs "$T/k.conf")" ""
env_user slow
union=$( (hashes "$T/archive/slow"; hashes "$MD") | sort -u)
is "daemon SIGKILLed: nothing lost (archived or still on the server)" \
	"$union" "$(find "$ENV/expected-slow" -type f -print0 | xargs -0r sha256sum | cut -d' ' -f1 | sort)"

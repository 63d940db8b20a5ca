#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# The exit status of --once tells the truth (issue 14, item 4): 0 only when
# every listed message reached a final verdict and every mail due was
# delivered; 75 when a stage deferred or failed a message, a message was
# quarantined, or queued mail was not delivered (relay down, 4xx, 5xx),
# with one line that says why; the run after the cause is gone exits 0.
# --dry-run follows the same rules for the messages (it sends nothing).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/smtp.sh"
need dovecot python3 aiosmtpd openssl
mm_setup
smtp_setup
plan 21

env_start srv --users "clean defer fail quar down perm temp"
V=$TEST_PLUGIN_DIR/verdict.so

# --- a clean run
env_user clean
env_seed 3 --seed clean
C_ARCHIVE=$T/a-clean C_STATE=$T/st-clean write_conf "$T/clean.conf"
mm clean -c "$T/clean.conf" --once
rc_is "clean run: exit 0" 0
check "clean run: no exit-75 line" sh -c "! grep -q 'exit 75' '$MM_ERR'"

# --- DEFER: 75 in a real run and in a dry run; 0 once the stage lets go
env_user defer
env_seed 3 --seed defer
defer_conf() { # FILE VERDICT
	C_STATE=$T/st-defer C_STAGES="      { plugin = \"$V\"; verdict = \"$2\"; },
      { plugin = \"archive\"; path = \"$T/a-defer\"; }" write_conf "$1"
}
defer_conf "$T/defer.conf" defer
mm defer-dry -c "$T/defer.conf" --once --dry-run
rc_is "DEFER, --dry-run: exit 75 too" 75
mm defer -c "$T/defer.conf" --once
rc_is "DEFER verdict: exit 75" 75
check "DEFER verdict: the last line says why" err_has "exit 75: 0 account run\(s\) failed, [1-9][0-9]* message\(s\) deferred"
defer_conf "$T/defer2.conf" pass
mm defer-2 -c "$T/defer2.conf" --once
rc_is "after DEFER: the next run, nothing deferred, exits 0" 0
check "after DEFER: every message archived" archive_matches "$T/a-defer"

# --- FAIL (counted toward quarantine)
env_user fail
env_seed 2 --seed fail
C_STATE=$T/st-fail C_STAGES="      { plugin = \"$V\"; verdict = \"fail\"; }" write_conf "$T/fail.conf"
mm fail -c "$T/fail.conf" --once
rc_is "FAIL verdict: exit 75" 75
is "FAIL verdict: the messages stay on the server" "$(env_count)" 2

# --- quarantine, then a run with nothing left to decide
env_user quar
env_seed 2 --seed quar
C_STATE=$T/st-quar C_ACCOUNT_EXTRA="max_attempts = 1;" \
C_STAGES="      { plugin = \"$V\"; verdict = \"fail\"; }" write_conf "$T/quar.conf"
mm quar -c "$T/quar.conf" --once
rc_is "quarantine: exit 75" 75
check "quarantine: logged" err_has "QUARANTINED after 1 failed attempts"
mm quar-2 -c "$T/quar.conf" --once
rc_is "quarantined earlier, nothing new: exit 0 (--status lists them)" 0

# --- queued mail: relay down, 5xx, 4xx; then delivered
fwd_conf() { # FILE STATE SMTP-GROUP
	C_STATE=$2 C_TOP_EXTRA=$3 \
	C_STAGES="      { plugin = \"forward\"; to = [ \"x@example.net\" ]; from = \"f@example.org\"; },
      { plugin = \"archive\"; path = \"$T/a-$(basename "$2")\"; }" write_conf "$1"
}
env_user down
env_seed 1 --seed down
closed=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fwd_conf "$T/down.conf" "$T/st-down" "smtp = { host = \"127.0.0.1\"; port = $closed; tls = \"none\"; };"
mm down -c "$T/down.conf" --once
rc_is "relay down: exit 75" 75
check "relay down: the last line counts the deferred mail" err_has "exit 75: .*outbox: 1 deferred"
is "relay down: the message itself was archived and deleted" "$(env_count)" 0

smtp_start cap-perm
touch "$SMTP_OUT/permfail"
env_user perm
env_seed 1 --seed perm
fwd_conf "$T/perm.conf" "$T/st-perm" "$(smtp_conf_group none)"
mm perm -c "$T/perm.conf" --once
rc_is "relay refuses (5xx, dead letter): exit 75" 75
is "5xx: the row is dead" "$(outbox_rows "$T/st-perm" "state = 2")" 1

smtp_start cap-temp
touch "$SMTP_OUT/tempfail"
env_user temp
env_seed 1 --seed temp
fwd_conf "$T/temp.conf" "$T/st-temp" "$(smtp_conf_group none)"
mm temp -c "$T/temp.conf" --once
rc_is "relay says 4xx: exit 75" 75
mm temp-flush -c "$T/temp.conf" --flush
rc_is "4xx: --flush while it still says 4xx: exit 75" 75
rm -f "$SMTP_OUT/tempfail"
mm temp-flush2 -c "$T/temp.conf" --flush
rc_is "--flush once the relay takes it: exit 0" 0
mm temp-again -c "$T/temp.conf" --once
rc_is "then a run with nothing to do: exit 0" 0

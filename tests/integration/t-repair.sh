#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# Repair without SQL (issue 15, item 3), against a real Dovecot and a real
# SMTP capture server: a message quarantined by a failing stage shows its
# Message-ID in --status, --release puts it back and the next run processes
# it; mail dead-lettered by a refusing relay is shown with its id by
# --outbox, --retry makes it due and --flush delivers it; mail queued for a
# relay that is down is made due by --retry all and removed by --drop
# (logged with its recipients).  Unknown ids and uids exit 65, bad usage 64.
# The test reads the database only to check what the commands did.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/smtp.sh"
need dovecot python3 aiosmtpd sqlite3 openssl
mm_setup
smtp_setup
plan 38

env_start srv --users "quar fwd"
V=$TEST_PLUGIN_DIR/verdict.so
M=$T/msgs
mkdir -p "$M"
mkmsg() { # FILE SUBJECT
	printf '%s\n' "From: Zed <zed@example.com>" "To: user@example.org" "Subject: $2" \
		"Message-ID: <$2@example.com>" "" "Body of $2." >"$1"
}
now() { date +%s; }

# --- quarantine, --status, --release, processed on the next run
env_user quar
mkmsg "$M/q.eml" stuck-one
env_seed_files "$M/q.eml"
C_STATE=$T/st-q C_ACCOUNT_EXTRA="max_attempts = 1;" \
C_STAGES="      { plugin = \"$V\"; verdict = \"fail\"; }" write_conf "$T/q-fail.conf"
C_STATE=$T/st-q C_ARCHIVE=$T/a-q write_conf "$T/q-ok.conf"
mm q1 -c "$T/q-fail.conf" --once
rc_is "quarantine: the failing run exits 75" 75
uid=$(sqlite3 "$T/st-q/mailmill.db" "SELECT uid FROM ledger WHERE state = 4")
check "quarantine: the message is quarantined" test -n "$uid"
mm q-status -c "$T/q-fail.conf" --status
check "--status: the quarantined message with its real Message-ID" \
	grep -qF "uid $uid <stuck-one@example.com>:" "$MM_OUT"
mm q-rel-nouid -c "$T/q-fail.conf" --release acct
rc_is "--release without a uid: exit 64" 64
mm q-rel-unknown -c "$T/q-fail.conf" --release acct no-such-uid
rc_is "--release of a uid not in quarantine: exit 65" 65
check "--release of an unknown uid: says so" err_has "uid no-such-uid is not in quarantine"
mm q-rel-acct -c "$T/q-fail.conf" --release nobody "$uid"
rc_is "--release for an unknown account: exit 65" 65
mm q-rel -c "$T/q-fail.conf" --release acct "$uid"
rc_is "--release: exit 0" 0
check "--release: logged" err_has "uid $uid released from quarantine"
is "--release: new again, no attempts counted" \
	"$(ledger_rows "$T/st-q" acct "uid = '$uid' AND state = 0 AND attempts = 0")" 1
mm q-status2 -c "$T/q-fail.conf" --status
check "--status after --release: nothing quarantined" grep -q "quarantined: none" "$MM_OUT"
mm q2 -c "$T/q-ok.conf" --once
rc_is "the next run: exit 0" 0
check "the next run: the released message is archived" archive_matches "$T/a-q"
is "the next run: deleted from the server" "$(env_count)" 0
is "the next run: the ledger has its verdict" \
	"$(ledger_rows "$T/st-q" acct "uid = '$uid' AND state = 3")" 1
mm q-rel-again -c "$T/q-fail.conf" --release acct "$uid"
rc_is "--release of a processed message: exit 65" 65

# --- a refusing relay: dead letter, --outbox, --retry ID, --flush
fwd_conf() { # FILE STATE SMTP-GROUP TO
	C_STATE=$2 C_TOP_EXTRA=$3 \
	C_STAGES="      { plugin = \"forward\"; to = [ \"$4\" ]; from = \"f@example.org\"; },
      { plugin = \"archive\"; path = \"$T/a-$(basename "$2")\"; }" write_conf "$1"
}
env_user fwd
smtp_start cap
touch "$SMTP_OUT/permfail"
mkmsg "$M/d.eml" dead-one
env_seed_files "$M/d.eml"
fwd_conf "$T/o.conf" "$T/st-o" "$(smtp_conf_group none)" dead@example.net
mm o1 -c "$T/o.conf" --once
rc_is "refusing relay: exit 75" 75
id=$(sqlite3 "$T/st-o/mailmill.db" "SELECT id FROM outbox WHERE state = 2")
check "refusing relay: a dead letter" test -n "$id"
mm o-show -c "$T/o.conf" --outbox
check "--outbox: its id, state and attempts" grep -Eq "^#$id dead .*attempts 1" "$MM_OUT"
check "--outbox: its recipient" grep -q -- "-> dead@example.net" "$MM_OUT"
mm o-retry-junk -c "$T/o.conf" --retry abc
rc_is "--retry of something not an id: exit 64" 64
mm o-retry-none -c "$T/o.conf" --retry 99999
rc_is "--retry of an unknown id: exit 65" 65
rm -f "$SMTP_OUT/permfail"
mm o-retry -c "$T/o.conf" --retry "$id"
rc_is "--retry ID: exit 0" 0
is "--retry ID: queued again and due now" \
	"$(outbox_rows "$T/st-o" "id = $id AND state = 0 AND next_attempt <= $(now)")" 1
mm o-flush -c "$T/o.conf" --flush
rc_is "--flush after --retry: exit 0" 0
is "--flush after --retry: the relay has it" "$(smtp_count)" 1
is "--flush after --retry: the row is sent" "$(outbox_rows "$T/st-o" "id = $id AND state = 1")" 1

# --- a relay that is down: queued with back-off, --retry all, --drop
mkmsg "$M/e.eml" queued-two
env_seed_files "$M/e.eml"
closed=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fwd_conf "$T/down.conf" "$T/st-o" "smtp = { host = \"127.0.0.1\"; port = $closed; tls = \"none\"; };" \
	later@example.net
mm o2 -c "$T/down.conf" --once
rc_is "relay down: exit 75" 75
id2=$(sqlite3 "$T/st-o/mailmill.db" "SELECT id FROM outbox WHERE state = 0")
is "relay down: queued, not due yet" \
	"$(outbox_rows "$T/st-o" "id = '$id2' AND next_attempt > $(now)")" 1
mm o-retry-all -c "$T/down.conf" --retry all
rc_is "--retry all: exit 0" 0
is "--retry all: due now" "$(outbox_rows "$T/st-o" "id = '$id2' AND next_attempt <= $(now)")" 1
mm o-show2 -c "$T/down.conf" --outbox
check "--outbox: the queued mail with its id and next try" \
	grep -Eq "^#$id2 queued .*attempts 1  next " "$MM_OUT"
mm o-both -c "$T/down.conf" --retry all --drop "$id2"
rc_is "--retry with --drop: exit 64" 64
mm o-drop -c "$T/down.conf" --drop "$id2"
rc_is "--drop: exit 0" 0
check "--drop: logged with its recipients" err_has "#$id2 to later@example.net dropped"
is "--drop: the row is gone" "$(outbox_rows "$T/st-o" "id = '$id2'")" 0
is "--drop: the sent row is untouched" "$(outbox_rows "$T/st-o" "id = $id AND state = 1")" 1
mm o-drop-again -c "$T/down.conf" --drop "$id2"
rc_is "--drop of an unknown id: exit 65" 65

#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# The outbox against a capturing SMTP server, with the forward plugin as the
# source of mail: redirect bytes and Resent-* headers, one of two recipients
# refused (sent to the other, the refusal kept), 4xx then success on --flush,
# 5xx dead-lettered with the reply shown by --outbox, STARTTLS required but
# not offered and an untrusted certificate (nothing sent, still queued),
# kill -9 after the verdict commit before the flush (sent once after restart),
# and a relay (tests/lib/badserver.py) that stores the message and then
# closes, goes silent or resets after the final dot (RFC 1047): the row stays
# queued, counted, and the same bytes reach a good relay once on --flush;
# and a connection lost at DATA after RCPT's 250 leaves the row queued too.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/smtp.sh"
. "$(dirname "$0")/../lib/hostile.sh"
need dovecot python3 aiosmtpd sqlite3 openssl
mm_setup
trap 'smtp_stop_all; bs_cleanup' EXIT
plan 70

env_start srv --users "user1 user2 user3 user4 user5 user6 dot1 dot2 dot3 dot4"
M=$T/msgs
mkdir -p "$M"
mkmsg() { # FILE SUBJECT
	printf '%s\n' "Return-Path: <zed@example.com>" "From: Zed <zed@example.com>" \
		"To: user@example.org" "Subject: $2" "Message-ID: <$2@example.com>" "" \
		"Line one." ".starts with a dot" "8-bit: caf$(printf '\303\251')" "" >"$1"
}
fwd_conf() { # FILE STATE TLS [to...]
	local f=$1 st=$2 tls=$3 to="" a
	shift 3
	for a in "$@"; do to="$to${to:+, }\"$a\""; done
	C_STATE=$st C_TOP_EXTRA=${FWD_SMTP:-$(smtp_conf_group "$tls")} \
	C_STAGES="      { plugin = \"forward\"; to = [ $to ]; from = \"Fwd <fwd@example.org>\"; },
      { plugin = \"archive\"; path = \"$T/archive-$(basename "$st")\"; }" write_conf "$f"
}

# --- redirect, one of two recipients refused
smtp_start cap1 --tls --refuse nobody@example.net
mkmsg "$M/a.eml" redirect-one
env_seed_files "$M/a.eml"
fwd_conf "$T/f1.conf" "$T/st1" starttls ok@example.net nobody@example.net
mm f1 -c "$T/f1.conf" --once
rc_is "redirect: run exits 75 (a recipient was refused)" 75
is "redirect: one message at the server" "$(smtp_count)" 1
j=$(ls "$SMTP_OUT"/*.json | head -n1)
check "redirect: delivered to the accepted recipient only" grep -q '"rcpt_tos": \["ok@example.net"\]' "$j"
check "redirect: envelope sender is the forwarder" grep -q '"mail_from": "fwd@example.org"' "$j"
eml=${j%.json}.eml
check "redirect: Resent-From first" sh -c "head -n3 '$eml' | grep -q '^Resent-From: Fwd <fwd@example.org>'"
check "redirect: Resent-To names both" grep -q '^Resent-To: ok@example.net, nobody@example.net' "$eml"
is "redirect: the original bytes follow unchanged" \
	"$(sed 's/\r$//' "$eml" | sed -n '/^Return-Path:/,$p' | sha256sum)" "$(sha256sum <"$M/a.eml")"
is "redirect: the row is sent" "$(outbox_rows "$T/st1" "state = 1")" 1
check "redirect: the refusal is kept per recipient" \
	sh -c "sqlite3 '$T/st1/mailmill.db' 'SELECT outcomes FROM outbox' | grep -q 'nobody@example.net refused: 550 5.1.1'"
check "redirect: the success is kept per recipient" \
	sh -c "sqlite3 '$T/st1/mailmill.db' 'SELECT outcomes FROM outbox' | grep -q 'ok@example.net sent: 250'"
check "redirect: the log's sent line names the recipient" err_has 'sent to ok@example.net \(1 of 2 recipient'
is "redirect: the refusal is one log line naming the recipient" \
	"$(grep -c 'refused for nobody@example.net (.*550' "$MM_ERR")" 1

# --- 4xx, then success on a later flush
env_user user2
smtp_start cap2 --tls
touch "$SMTP_OUT/tempfail"
mkmsg "$M/b.eml" temp-then-ok
env_seed_files "$M/b.eml"
fwd_conf "$T/f2.conf" "$T/st2" starttls a@example.net
mm f2 -c "$T/f2.conf" --once
rc_is "4xx: the run exits 75 (the relay failed for now)" 75
is "4xx: nothing accepted" "$(smtp_count)" 0
is "4xx: still queued with one attempt" "$(outbox_rows "$T/st2" "state = 0 AND attempts = 1")" 1
mm f2-show -c "$T/f2.conf" --outbox
check "4xx: --outbox shows it queued with the server's reply" grep -q "451 4.3.0\|4.3.0 try again" "$MM_OUT"
rm -f "$SMTP_OUT/tempfail"
mm f2-flush -c "$T/f2.conf" --flush
rc_is "4xx: --flush exits 0" 0
is "4xx: then accepted" "$(smtp_count)" 1
is "4xx: row sent" "$(outbox_rows "$T/st2" "state = 1")" 1

# --- 5xx dead-lettered at once
env_user user3
smtp_start cap3 --tls
touch "$SMTP_OUT/permfail"
mkmsg "$M/c.eml" perm
env_seed_files "$M/c.eml"
fwd_conf "$T/f3.conf" "$T/st3" starttls a@example.net
mm f3 -c "$T/f3.conf" --once
is "5xx: the row is dead" "$(outbox_rows "$T/st3" "state = 2")" 1
mm f3-show -c "$T/f3.conf" --outbox
check "5xx: --outbox shows it dead with the server's reply" grep -q "554 5.7.1\|5.7.1 message refused" "$MM_OUT"
check "5xx: --outbox says dead" grep -q "dead" "$MM_OUT"

# --- STARTTLS required, not offered
env_user user4
smtp_start cap4
mkmsg "$M/d.eml" notls
env_seed_files "$M/d.eml"
fwd_conf "$T/f4.conf" "$T/st4" starttls a@example.net
mm f4 -c "$T/f4.conf" --once
rc_is "no STARTTLS: exit 75" 75
is "no STARTTLS: nothing sent" "$(smtp_count)" 0
is "no STARTTLS: still queued" "$(outbox_rows "$T/st4" "state = 0")" 1

# --- an untrusted certificate (no ca_file: the system store does not know our CA)
env_user user5
smtp_start cap5 --tls
mkmsg "$M/e.eml" badcert
env_seed_files "$M/e.eml"
SMTP_CA="" fwd_conf "$T/f5.conf" "$T/st5" starttls a@example.net
mm f5 -c "$T/f5.conf" --once
rc_is "untrusted certificate: exit 75" 75
is "untrusted certificate: nothing sent" "$(smtp_count)" 0
is "untrusted certificate: still queued" "$(outbox_rows "$T/st5" "state = 0")" 1

# --- kill -9 after the verdict commit, before the flush
env_user user6
smtp_start cap6 --tls
mkmsg "$M/f.eml" crash
env_seed_files "$M/f.eml"
fwd_conf "$T/f6.conf" "$T/st6" starttls a@example.net
if have_crashpoints; then
	MM_ENV_EXTRA="MAILMILL_CRASH=commit:1" mm f6-crash -c "$T/f6.conf" --once
	# The worker dies at its commit; --once, like the daemon, flushes what
	# it committed.
	check "crash: the run was killed at its commit" mm_crashed
	mm f6 -c "$T/f6.conf" --once
	mm f6-again -c "$T/f6.conf" --once
	is "crash: the mail is sent exactly once after restart" "$(smtp_count)" 1
else
	skip "crash: the run was killed at its commit" "built without --enable-crashpoints"
	skip "crash: the mail is sent exactly once after restart" "built without --enable-crashpoints"
fi

# --- RFC 1047: the relay stores the first message, then after the final dot
# closes, stays silent past the deadline (2 s timeout: 4 s for the end of
# data), or resets.  The second message of the session is never tried.
dot_case() { # NAME THEN USER
	local name=$1 then=$2 st=$T/st-$1 mid db
	env_user "$3"
	mkmsg "$M/$name-a.eml" "$name-a"
	mkmsg "$M/$name-b.eml" "$name-b"
	env_seed_files "$M/$name-a.eml" "$M/$name-b.eml"
	bs_start "$name" "{\"mode\":\"smtp\",\"rules\":[{\"match\":\"@eom\",\"nth\":1,\"reply\":\"\",\"then\":\"$then\",\"commit\":true}]}"
	FWD_SMTP="smtp = { host = \"127.0.0.1\"; port = $BS_PORT; tls = \"none\"; helo = \"mailmill.test\"; timeout = \"2s\"; };" \
		fwd_conf "$T/$name-bad.conf" "$st" none a@example.net
	mm "$name" -c "$T/$name-bad.conf" --once
	bs_stop
	rc_is "$name: the run exits 75 (outcome unknown)" 75
	check "$name: logged as RFC 1047, to be retried" grep -q \
		"outcome unknown after end of data; will retry, the relay may deliver it twice (RFC 1047)" "$MM_ERR"
	"$PY" -c 'import base64,json,sys; r=json.load(open(sys.argv[1]))["accepted"]
sys.stdout.buffer.write(base64.b64decode(r[0]["data"]) if r else b"")' "$BS_REPORT" |
		sed 's/\r$//' >"$T/$name.relayed"
	is "$name: the bad relay stored it before the connection died" "$(accepted)" 1
	db=$st/mailmill.db
	mid=$(sqlite3 "$db" "SELECT message_id FROM outbox WHERE state = 0 AND unknown_outcomes = 1 AND attempts = 1")
	check "$name: that row is still queued, counted unknown, with the Message-ID the relay got" \
		grep -qF "<$mid>" "$T/$name.relayed"
	is "$name: the session's other message is untouched, still queued" \
		"$(outbox_rows "$st" "state = 0 AND attempts = 0 AND unknown_outcomes = 0")" 1
	mm "$name-show" -c "$T/$name-bad.conf" --outbox
	check "$name: --outbox says the outcome was unknown" \
		grep -q "outcome unknown after end of data 1 time(s)" "$MM_OUT"
	smtp_start "$name-good"
	FWD_SMTP="smtp = { host = \"127.0.0.1\"; port = $SMTP_PORT; tls = \"none\"; helo = \"mailmill.test\"; };" \
		fwd_conf "$T/$name-good.conf" "$st" none a@example.net
	mm "$name-flush" -c "$T/$name-good.conf" --flush
	rc_is "$name: --flush to a good relay exits 0" 0
	is "$name: the good relay got both messages" "$(smtp_count)" 2
	is "$name: the good relay got the same bytes as the bad one, exactly once" \
		"$(for f in "$SMTP_OUT"/*.eml; do sed 's/\r$//' "$f" | cmp -s - "$T/$name.relayed" && echo x; done | wc -l)" 1
	is "$name: both rows sent" "$(outbox_rows "$st" "state = 1")" 2
	is "$name: the RFC 1047 counter says 1" \
		"$(sqlite3 "$db" "SELECT value FROM counters WHERE name = 'outbox_unknown_outcome'")" 1
	mm "$name-status" -c "$T/$name-good.conf" --status
	check "$name: --status shows the count" \
		grep -q "outcome unknown after end of data: 1 time(s)" "$MM_OUT"
}
accepted() {
	"$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["accepted"]))' "$BS_REPORT"
}
dot_case dot-close close dot1
dot_case dot-silent hang dot2
dot_case dot-reset reset dot3

# --- lost before the dot: RCPT answered 250, then the connection closes at
# DATA.  Nothing was delivered: queued (not "sent" on the RCPT's word), and
# not an RFC 1047 case either.
env_user dot4
mkmsg "$M/dot-before.eml" dot-before
env_seed_files "$M/dot-before.eml"
bs_start dot-before '{"mode":"smtp","rules":[{"match":"^DATA","reply":"","then":"close"}]}'
FWD_SMTP="smtp = { host = \"127.0.0.1\"; port = $BS_PORT; tls = \"none\"; helo = \"mailmill.test\"; timeout = \"2s\"; };" \
	fwd_conf "$T/dot-before.conf" "$T/st-dot-before" none a@example.net
mm dot-before -c "$T/dot-before.conf" --once
bs_stop
rc_is "lost at DATA: the run exits 75" 75
is "lost at DATA: the relay has nothing" "$(accepted)" 0
is "lost at DATA: still queued, one attempt, not counted unknown" \
	"$(outbox_rows "$T/st-dot-before" "state = 0 AND attempts = 1 AND unknown_outcomes = 0")" 1
check "lost at DATA: no RFC 1047 line (nothing went past the dot)" sh -c "! grep -q 'RFC 1047' '$MM_ERR'"

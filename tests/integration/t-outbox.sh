#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# The outbox against a capturing SMTP server, with the forward plugin as the
# source of mail: redirect bytes and Resent-* headers, one of two recipients
# refused (sent to the other, the refusal kept), 4xx then success on --flush,
# 5xx dead-lettered with the reply shown by --outbox, STARTTLS required but
# not offered and an untrusted certificate (nothing sent, still queued), and
# kill -9 after the verdict commit before the flush (sent once after restart).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/smtp.sh"
mm_setup
smtp_setup
plan 28

env_start srv --users "user1 user2 user3 user4 user5 user6"
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
	C_STATE=$st C_TOP_EXTRA=$(smtp_conf_group "$tls") \
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
	is "crash: nothing sent before the crash" "$(smtp_count)" 0
	mm f6 -c "$T/f6.conf" --once
	mm f6-again -c "$T/f6.conf" --once
	is "crash: the mail is sent exactly once after restart" "$(smtp_count)" 1
else
	skip "crash: nothing sent before the crash" "built without --enable-crashpoints"
	skip "crash: the mail is sent exactly once after restart" "built without --enable-crashpoints"
fi

#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# Two mailmill instances auto-replying to each other through real mailboxes:
# instance A answers for a@example.org (POP3 user1), B for b@example.org
# (user2).  Replies go to a real Postfix on loopback (tests/lib/postfix.sh),
# whose virtual(8) agent delivers them into the other's Dovecot Maildir, with
# the Return-Path: <> an MTA writes for the null sender.  Each starts with a
# human message from the other; both run alternately several times, with a
# second human message in between: at most one reply each ever, and the log
# says why each later message was not answered.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/smtp.sh"
. "$(dirname "$0")/../lib/postfix.sh"
need dovecot postfix python3 openssl
mm_setup
trap 'pf_stop_all; mm_cleanup' EXIT
plan 14

env_start srv --users "user1 user2"
printf '%s\n' "a@example.org user1" "b@example.org user2" >"$T/pf.map"
pf_start "$T/pf" "$T/pf.map"
M=$T/msgs
mkdir -p "$M"

human() { # USER FROM TO N: a person's mail, delivered as an MTA would
	env_user "$1"
	printf '%s\n' "Return-Path: <$2>" "From: <$2>" "To: <$3>" "Subject: hello $4" \
		"Message-ID: <human.$4.$2>" "Date: Mon, 01 Jan 2024 10:00:00 +0000" "" \
		"Hello from $2, number $4." >"$M/$1-$4.eml"
	env_seed_files "$M/$1-$4.eml"
}
conf() { # NAME USER ADDRESS
	SMTP_PORT=$PF_PORT
	C_NAME=$1 C_USER=$2 C_STATE=$T/st-$1 C_TOP_EXTRA=$(smtp_conf_group none) \
	C_STAGES="      { plugin = \"autoreply\"; addresses = [ \"$3\" ];
        from = \"Auto $1 <$3>\"; body = \"I am away; {subject} will wait.\"; days = 7; },
      { plugin = \"archive\"; path = \"$T/archive-$1\"; }" write_conf "$T/$1.conf"
}
conf A user1 a@example.org
conf B user2 b@example.org

human user1 b@example.org a@example.org 1
human user2 a@example.org b@example.org 1
for round in 1 2 3 4; do
	if [ "$round" = 3 ]; then
		human user1 b@example.org a@example.org 2
		human user2 a@example.org b@example.org 2
	fi
	for who in A B; do
		mm "$who-$round" -c "$T/$who.conf" --once -v
		[ "$MM_RC" = 0 ] || { diag "$who round $round: exit $MM_RC"; show "$MM_ERR"; }
		pf_wait_queue "$T/pf" || diag "the Postfix queue did not empty"
	done
done
ok "four alternate rounds of both instances ran"
cat "$T"/A-*.err >"$T/A.log"
cat "$T"/B-*.err >"$T/B.log"

replies_in() { grep -l '^Auto-Submitted: auto-replied' -r "$1" 2>/dev/null | wc -l; }
is "A queued exactly one reply" "$(outbox_rows "$T/st-A")" 1
is "B queued exactly one reply" "$(outbox_rows "$T/st-B")" 1
is "A's reply was sent" "$(outbox_rows "$T/st-A" "state = 1")" 1
is "B's reply was sent" "$(outbox_rows "$T/st-B" "state = 1")" 1
is "B fetched exactly one automatic reply (A's, through Postfix)" "$(replies_in "$T/archive-B")" 1
is "A fetched exactly one automatic reply (B's, through Postfix)" "$(replies_in "$T/archive-A")" 1
is "A fetched all three messages (two human, one reply)" "$(archive_count "$T/archive-A")" 3
is "B fetched all three messages (two human, one reply)" "$(archive_count "$T/archive-B")" 3
check "the delivered reply carries the null Return-Path Postfix wrote" \
	grep -rlq '^Return-Path: <>' "$T/archive-A"
check "A logged why it did not answer B's reply" \
	grep -Eq 'no reply( to <[^>]*>)?: (null sender|Auto-Submitted: auto-replied)' "$T/A.log"
check "B logged why it did not answer A's reply" \
	grep -Eq 'no reply( to <[^>]*>)?: (null sender|Auto-Submitted: auto-replied)' "$T/B.log"
check "A logged why the second human message got no reply" \
	grep -q 'no reply to <b@example.org>: already answered' "$T/A.log"
check "B logged why the second human message got no reply" \
	grep -q 'no reply to <a@example.org>: already answered' "$T/B.log"

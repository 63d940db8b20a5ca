#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# IMAP: kill -9 at each step of a run (crash points, configure
# --enable-crashpoints), above all between the journal's commit and the
# effect on the server (UID MOVE, UID STORE, UID EXPUNGE), for each `after`
# mode, with an auto-responder and an archive in the pipeline.  After the
# next run every message is archived exactly once, every sender answered
# exactly once, the server in the state the mode asks for (read back by
# tests/lib/imapc.py) and the journal holds no message twice.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/smtp.sh"
need dovecot-imap python3 aiosmtpd sqlite3 openssl
mm_setup
smtp_setup
N=4
# USER POINT AFTER: the crash point, in the common fetch and commit path
# (retr, sync, commit: run_commit.c) or in the IMAP source (the effects).
CASES="
retrd retr:2 delete
syncd sync:1 delete
commitd commit:1 delete
commitm commit:1 move
commitf commit:1 flag
commitk commit:1 keep
"
# The IMAP source's own points, between the commit and the server's answer
# to the effect, when this build has them (MM_IMAP_CRASH overrides).
IMAP_POINTS=${MM_IMAP_CRASH-$(grep -ho 'crash_point("[a-z_-]*")' "$MM_SRCDIR"/daemon/run/source_imap*.c 2>/dev/null |
	sed 's/crash_point("\(.*\)")/\1/' | sort -u)}
for p in $IMAP_POINTS; do
	for a in delete move flag; do
		CASES="$CASES
x${p//-/}${a:0:1} $p:1 $a"
	done
done
n_cases=$(echo "$CASES" | grep -c .)
plan $((n_cases * 7))
MM_TIMEOUT=30

if ! have_crashpoints; then
	for i in $(seq $((n_cases * 7))); do skip "crash test $i" "mailmilld built without --enable-crashpoints"; done
	exit 0
fi

env_start srv --users "$(echo "$CASES" | awk 'NF { printf "%s ", $1 }')"
smtp_start relay

# seed USER: N messages to help@example.org from N senders (USER-i@example.com).
seed() {
	local u=$1 i d=$T/msgs-$1
	env_user "$u"
	mkdir -p "$d"
	for i in $(seq "$N"); do
		printf '%s\n' "Return-Path: <$u-$i@example.com>" "From: <$u-$i@example.com>" \
			"To: Help <help@example.org>" "Subject: question $i" \
			"Message-ID: <$u.$i@example.com>" "Date: Mon, 01 Jan 2024 10:00:0$i +0000" \
			"" "Body $i." >"$d/$i.eml"
	done
	env_seed_files "$d"/*.eml
}

# replies_to USER: the replies the relay accepted for USER's senders, one
# line per recipient, sorted (a reply made twice shows twice).
replies_to() {
	grep -h -i "^To:.*$1-[0-9]*@example.com" "$SMTP_OUT"/*.eml 2>/dev/null |
		grep -o "$1-[0-9]*@example.com" | sort
}
senders() { local i; for i in $(seq "$N"); do echo "$1-$i@example.com"; done | sort; }

# server_ok USER AFTER: the server as AFTER leaves it.
server_ok() {
	local u=$1 after=$2 ids
	ids=$(grep -h -i '^Message-ID:' "$EXPECTED"/* | awk '{ print $2 }' | sort)
	case $after in
	delete) [ "$(imap_count INBOX)" = 0 ] ;;
	move) [ "$(imap_count INBOX)" = 0 ] &&
		[ "$(imapc state Done | awk '{ print $4 }' | sort)" = "$ids" ] ;;
	flag) [ "$(imapc state INBOX | awk '{ print $3, $4 }' | sort)" = "$(echo "$ids" | sed 's/^/\\Seen /')" ] ;;
	keep) [ "$(imapc state INBOX | awk '{ print $3, $4 }' | sort)" = "$(echo "$ids" | sed 's/^/- /')" ] ;;
	esac
}

crash_case() {
	local u=$1 point=$2 after=$3 s=$T/state-$1 rows distinct
	seed "$u"
	C_PROTOCOL=imap C_STATE=$s C_ARCHIVE=$T/archive-$u \
		C_ACCOUNT_EXTRA="after = \"$after\";$([ "$after" = move ] && echo ' move_to = "Done";')" \
		C_TOP_EXTRA=$(smtp_conf_group none 'connect_timeout = "5s";') \
		C_STAGES="      { plugin = \"autoreply\"; addresses = [ \"help@example.org\" ];
        from = \"Help Desk <help@example.org>\"; body = \"Away.\"; days = 7; },
      { plugin = \"archive\"; path = \"$T/archive-$u\"; }" write_conf "$T/$u.conf"

	MM_ENV_EXTRA="MAILMILL_CRASH=$point" mm "$u-crash" -c "$T/$u.conf" --once
	if mm_crashed; then
		ok "$u ($after): killed with SIGKILL at $point"
	else
		not_ok "$u ($after): killed with SIGKILL at $point"
		diag "exit status $MM_RC"; show "$MM_ERR"
	fi
	mm "$u-rerun" -c "$T/$u.conf" --once
	rc_is "$u ($after): the next run exits 0" 0
	check "$u ($after): every message archived exactly once" archive_matches "$T/archive-$u"
	is "$u ($after): every sender answered exactly once" "$(replies_to "$u")" "$(senders "$u")"
	if server_ok "$u" "$after"; then
		ok "$u ($after): the server as after = \"$after\" leaves it"
	else
		not_ok "$u ($after): the server as after = \"$after\" leaves it"
		imapc state | sed 's/^/# /'
	fi
	# As for POP3 (t-crash.sh), the journal may forget keys the server no
	# longer lists (expunged, moved away), but never holds one twice; for
	# flag and keep, whose messages stay, it holds every one.
	rows=$(ledger_rows "$s" acct); distinct=$(ledger_distinct "$s" acct)
	if [ "$rows" = "$distinct" ] && { [ "$rows" = "$N" ] ||
		{ [ "$rows" -lt "$N" ] && [ "$after" != flag ] && [ "$after" != keep ]; }; }; then
		ok "$u ($after): the journal holds no message twice"
	else
		not_ok "$u ($after): the journal holds no message twice"; diag "rows $rows, distinct $distinct"
	fi
	# A third run: nothing left to do, nothing done again.
	mm "$u-third" -c "$T/$u.conf" --once
	if [ "$MM_RC" = 0 ] && archive_matches "$T/archive-$u" &&
		[ "$(replies_to "$u")" = "$(senders "$u")" ] && server_ok "$u" "$after"; then
		ok "$u ($after): a third run changes nothing"
	else
		not_ok "$u ($after): a third run changes nothing"; diag "exit status $MM_RC"
	fi
}

while read -r u point after; do
	[ -n "$u" ] && crash_case "$u" "$point" "$after"
done <<<"$CASES"

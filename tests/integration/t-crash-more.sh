#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# kill -9 inside a plugin and inside the outbox's SMTP transaction (crash
# points, configure --enable-crashpoints):
#   plugin    a stage's process() has returned (a ticket opened, a reply
#             queued) but the message's verdict is not recorded;
#   smtpdata  the relay answered DATA with 354, no message data sent yet;
#   smtpdot   the final dot is out and the relay's reply has arrived, but the
#             outbox has not read it (RFC 1047: the relay has the message,
#             we do not know it).
# After a rerun every message is archived once, every ticket opened once,
# every reply delivered once; at smtpdot the reply in flight may be
# delivered twice (never more), and the output counts those duplicates.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/smtp.sh"
need dovecot python3 aiosmtpd sqlite3 openssl
mm_setup
smtp_setup
plan 32
N=4
MM_TIMEOUT=20

if ! have_crashpoints; then
	for i in $(seq 32); do skip "crash test $i" "mailmilld built without --enable-crashpoints"; done
	exit 0
fi

env_start srv --users "plug1 plug5 data1 data3 dot2"

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

# conf USER [ticket]: autoreply (after a ticket stage if asked) and archive.
conf() {
	local u=$1 stages=
	[ "${2:-}" = ticket ] && stages="      { plugin = \"ticket\"; queue = \"support\";
        from = \"Support <help@example.org>\"; },
"
	stages+="      { plugin = \"autoreply\"; addresses = [ \"help@example.org\" ];
        from = \"Help Desk <help@example.org>\"; body = \"Away.\"; days = 7; },
      { plugin = \"archive\"; path = \"$T/archive-$u\"; }"
	C_STATE=$T/state-$u C_TOP_EXTRA=$(smtp_conf_group none 'connect_timeout = "5s";') \
		C_STAGES=$stages write_conf "$T/$u.conf"
}

# killed DESC POINT: the last run died by SIGKILL at the crash point.
killed() {
	if mm_crashed; then
		ok "$1: killed with SIGKILL at $2"
	else
		not_ok "$1: killed with SIGKILL at $2"
		diag "exit status $MM_RC"; show "$MM_ERR"
	fi
}

# got USER I KIND: mails the relay took for USER-I ("ack": subject with the
# ticket tag, "reply": any other).
got() {
	local f n=0
	for f in $(grep -l "\"$1-$2@example.com\"" "$SMTP_OUT"/*.json 2>/dev/null); do
		if grep -q '^Subject: \[Ticket#' "${f%.json}.eml"; then
			[ "$3" = ack ] && n=$((n + 1))
		else
			[ "$3" = reply ] && n=$((n + 1))
		fi
	done
	echo "$n"
}
# per_sender USER KIND: the counts for senders 1..N, e.g. "1 1 1 1".
per_sender() {
	local i out=
	for i in $(seq "$N"); do out+="$(got "$1" "$i" "$2") "; done
	echo "${out% }"
}
ones() { local i out=; for i in $(seq "$N"); do out+="1 "; done; echo "${out% }"; }

# ---- inside a plugin: ticket, autoreply, archive; 3 stage calls per message.
# plugin:1 right after the first ticket opened; plugin:5 right after the
# second message's reply was queued.
plugin_case() {
	local u=$1 point=$2 db=$T/state-$1/mailmill.db
	seed "$u"
	smtp_start "cap-$u"
	conf "$u" ticket
	MM_ENV_EXTRA="MAILMILL_CRASH=$point" mm "$u-crash" -c "$T/$u.conf" --once
	killed "$u" "$point"
	mm "$u-rerun" -c "$T/$u.conf" --once
	rc_is "$u: the next run exits 0" 0
	check "$u: every message archived exactly once, byte for byte" archive_matches "$T/archive-$u"
	is "$u: server mailbox empty" "$(env_count)" 0
	is "$u: one ticket per message, numbered without a gap" \
		"$(sqlite3 "$db" "SELECT count(*) FROM kv_ns WHERE ns = 'ticket:support' AND key GLOB 't:*';")|$(sqlite3 "$db" "SELECT value FROM seq WHERE ns = 'ticket:support';")" \
		"$N|$N"
	is "$u: each sender got one acknowledgement and one reply" \
		"$(per_sender "$u" ack)|$(per_sender "$u" reply)" "$(ones)|$(ones)"
}
plugin_case plug1 plugin:1
plugin_case plug5 plugin:5

# ---- inside SMTP DATA: the first run archives and queues every reply, then
# dies in the flush; --flush sends what is left.
# smtp_case USER POINT TAKEN: TAKEN replies reached the relay before the kill.
smtp_case() {
	local u=$1 point=$2 taken=$3
	seed "$u"
	smtp_start "cap-$u"
	conf "$u"
	MM_ENV_EXTRA="MAILMILL_CRASH=$point" mm "$u-crash" -c "$T/$u.conf" --once
	killed "$u" "$point"
	is "$u: the relay took $taken reply(ies) before the kill" "$(smtp_count)" "$taken"
	check "$u: every message archived exactly once before the flush" \
		archive_matches "$T/archive-$u"
	mm "$u-flush" -c "$T/$u.conf" --flush
	rc_is "$u: --flush exits 0" 0
	is "$u: every outbox row is sent" "$(outbox_rows "$T/state-$u" "state = 1")" "$N"
}

smtp_case data1 smtpdata:1 0
is "data1: each reply delivered exactly once" "$(per_sender data1 reply)" "$(ones)"
smtp_case data3 smtpdata:3 2
is "data3: each reply delivered exactly once" "$(per_sender data3 reply)" "$(ones)"

# smtpdot:2: the relay took reply 2 and answered 250, which we never read;
# the outbox still holds it, so it goes again: delivered twice.
smtp_case dot2 smtpdot:2 2
counts=$(per_sender dot2 reply)
dups=0; over=0
for c in $counts; do
	[ "$c" -ge 2 ] && dups=$((dups + c - 1))
	{ [ "$c" -lt 1 ] || [ "$c" -gt 2 ]; } && over=1
done
diag "RFC 1047 window: $dups duplicate(s)"
is "dot2: each reply delivered once or (RFC 1047) twice, never lost" "$over" 0
check "dot2: at most the one reply in flight at the kill is duplicated" test "$dups" -le 1
mm dot2-again -c "$T/dot2.conf" --flush
is "dot2: a further --flush sends nothing" "$(smtp_count)" "$((N + dups))"

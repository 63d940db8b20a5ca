#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# The autoreply plugin end to end: POP3 from a private Dovecot, replies over
# STARTTLS to a capturing SMTP server.  Each skip rule has its own message and
# its log line; two messages from one sender in one batch get one reply; the
# replies go over one connection; the bytes at the server are the stored ones;
# the envelope sender is <>; a second run sends nothing more; and the archive
# stage after autoreply still archives every message.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/smtp.sh"
need dovecot python3 aiosmtpd sqlite3 openssl
mm_setup
smtp_setup
plan 47

env_start srv
smtp_start cap --tls
M=$T/msgs
mkdir -p "$M"

# mkmsg NAME SENDER [extra header lines...]: a message to help@example.org.
n=0
mkmsg() {
	local name=$1 sender=$2 h
	shift 2
	n=$((n + 1))
	{
		[ "$sender" != - ] && echo "Return-Path: <$sender>"
		echo "From: Someone <${sender:-nobody@example.com}>"
		echo "To: Help <help@example.org>"
		echo "Subject: test $name"
		echo "Message-ID: <$name.$n@example.com>"
		echo "Date: Mon, 01 Jan 2024 10:00:0$((n % 10)) +0000"
		for h in "$@"; do echo "$h"; done
		echo
		echo "Body of $name."
		echo ".a line starting with a dot"
	} >"$M/$(printf %02d $n)-$name.eml"
}
mkmsg first alice@example.com
mkmsg again alice@example.com
mkmsg bounce ""
mkmsg daemon MAILER-DAEMON@example.com
mkmsg postmaster postmaster@example.com
mkmsg owner owner-list@example.com
mkmsg request list-request@example.com
mkmsg noreply noreply@example.com
mkmsg autosub carol@example.com "Auto-Submitted: auto-generated"
mkmsg bulk dave@example.com "Precedence: bulk"
mkmsg list erin@example.com "List-Id: <talk.example.com>"
mkmsg suppress frank@example.com "X-Auto-Response-Suppress: All"
mkmsg spam grace@example.com "X-Spam-Flag: YES"
mkmsg loop heidi@example.com "X-Loop: mailmill autoreply help@example.org"
mkmsg notus ivan@example.com
sed -i 's/^To: Help <help@example.org>$/To: other@example.org/' "$M"/*-notus.eml
mkmsg self help@example.org
mkmsg ccd judy@example.com
sed -i 's/^To: Help <help@example.org>$/To: x@example.net\nCc: HELP@example.org/' "$M"/*-ccd.eml
mkmsg resent mallory@example.com
sed -i 's/^To: Help <help@example.org>$/To: x@example.net\nResent-To: help@example.org/' "$M"/*-resent.eml
for i in 1 2 3 4 5 6 7 8; do mkmsg bulkrun$i "user$i@example.net"; done
mkmsg noreturnpath - "Reply-To: <replyto@example.com>"
env_seed_files "$M"/*.eml
total=$(ls "$M" | wc -l)

printf 'Away until Monday.\nYour mail "{subject}" from {sender} will be read then.\n' >"$T/away.txt"
C_TOP_EXTRA=$(smtp_conf_group starttls) \
C_STAGES="      { plugin = \"autoreply\"; addresses = [ \"help@example.org\" ];
        from = \"Help Desk <help@example.org>\"; body_file = \"$T/away.txt\";
        spam_header = \"X-Spam-Flag\"; spam_value = \"yes\"; days = 7; },
      { plugin = \"archive\"; path = \"$T/archive\"; }" write_conf "$T/ar.conf"

mm run1 -c "$T/ar.conf" --once -v
rc_is "first run exits 0" 0
check "every message archived after the autoreply stage (verdict pass)" archive_matches "$T/archive"
is "server mailbox empty" "$(env_count)" 0
# first, ccd, resent, 8 bulkrun, noreturnpath
is "12 replies accepted by the server" "$(smtp_count)" 12
is "one SMTP connection for all of them" "$(smtp_connections)" 1
is "the outbox rows are all sent" "$(outbox_rows "$T/state" "state = 1")" 12

got_rcpt() { grep -l "\"$1\"" "$SMTP_OUT"/*.json 2>/dev/null | wc -l; }
is "alice answered once though she wrote twice in one batch" "$(got_rcpt alice@example.com)" 1
is "a Cc to us is answered" "$(got_rcpt judy@example.com)" 1
is "a Resent-To to us is answered" "$(got_rcpt mallory@example.com)" 1
is "without Return-Path the Reply-To is answered" "$(got_rcpt replyto@example.com)" 1
for who in "" MAILER-DAEMON@example.com postmaster@example.com owner-list@example.com \
	list-request@example.com noreply@example.com carol@example.com dave@example.com \
	erin@example.com frank@example.com grace@example.com heidi@example.com ivan@example.com \
	help@example.org; do
	[ -n "$who" ] && [ "$(got_rcpt "$who")" != 0 ] && { not_ok "no reply to $who"; continue; }
done
ok "no reply to any sender a rule excludes"

why() { # DESC REGEX: the skip was logged with its reason
	if grep -Eiq -- "$2" "$MM_ERR"; then ok "logged: $1"; else not_ok "logged: $1"; fi
}
why "null sender" "no reply: null sender"
why "MAILER-DAEMON" "no reply to <mailer-daemon@example.com>: .*robot"
why "postmaster" "no reply to <postmaster@example.com>: .*robot"
why "owner-*" "no reply to <owner-list@example.com>: .*robot"
why "*-request" "no reply to <list-request@example.com>: .*robot"
why "noreply" "no reply to <noreply@example.com>: .*robot"
why "Auto-Submitted" "no reply to <carol@example.com>: Auto-Submitted: auto-generated"
why "Precedence" "no reply to <dave@example.com>: Precedence: bulk"
why "List-*" "no reply to <erin@example.com>: mailing list mail \(List-Id\)"
why "X-Auto-Response-Suppress" "no reply to <frank@example.com>: X-Auto-Response-Suppress"
why "spam header" "no reply to <grace@example.com>: marked as spam"
why "X-Loop" "no reply to <heidi@example.com>: it carries our X-Loop marker"
why "not addressed to us" "no reply to <ivan@example.com>: none of our addresses"
why "our own address" "no reply to <help@example.org>: the sender is one of our own"
why "days per sender" "no reply to <alice@example.com>: already answered"

# The reply to judy: envelope, headers, bytes.
f=$(grep -l '"judy@example.com"' "$SMTP_OUT"/*.json | head -n1)
orig_mid=$(grep -h '^Message-ID:' "$M"/*-ccd.eml | sed 's/^[^:]*: *//')
eml=${f%.json}.eml
is "envelope sender is the null sender" "$(/usr/bin/python3 -c 'import json,sys; print(repr(json.load(open(sys.argv[1]))["mail_from"]))' "$f")" "'<>'"
check "sent over TLS" grep -q '"tls": true' "$f"
hdr() { sed -e 's/\r$//' -e '/^$/q' "$eml" | grep -i "^$1:" | head -n1 | sed 's/^[^:]*: *//'; }
is "To: the Return-Path" "$(hdr To)" "judy@example.com"
is "Subject: Re: + original" "$(hdr Subject)" "Re: test ccd"
is "In-Reply-To: the original's Message-ID" "$(hdr In-Reply-To)" "$orig_mid"
is "References ends with the original's Message-ID" "$(hdr References)" "$orig_mid"
is "Auto-Submitted: auto-replied" "$(hdr Auto-Submitted)" "auto-replied"
is "X-Loop marker" "$(hdr X-Loop)" "mailmill autoreply help@example.org"
check "a Message-ID of its own" test -n "$(hdr Message-ID)"
check "the body template was expanded" grep -q 'Your mail "test ccd" from judy@example.com' "$eml"
mid=$(hdr Message-ID | tr -d '<>')
/usr/bin/python3 -c 'import sqlite3,sys; r=sqlite3.connect(sys.argv[1]).execute("SELECT message FROM outbox WHERE message_id = ?", (sys.argv[2],)).fetchone(); open(sys.argv[3], "wb").write(r[0] if r else b"")' \
	"$T/state/mailmill.db" "$mid" "$T/stored.eml"
is "the server got exactly the stored bytes (CRLF on the wire)" \
	"$(sed 's/\r$//' "$eml" | sha256sum)" "$(sha256sum <"$T/stored.eml")"

mm run2 -c "$T/ar.conf" --once
rc_is "second run exits 0" 0
is "a second run sends nothing more" "$(smtp_count)" 12

# A new message from alice within `days`: no second reply (the record is durable).
mkmsg later alice@example.com
env_seed_files "$M"/*-later.eml
mm run3 -c "$T/ar.conf" --once
is "alice is not answered again within days" "$(got_rcpt alice@example.com)" 1
why "days per sender, across runs" "no reply to <alice@example.com>: already answered <alice@example.com> within 7 day"

mm outbox -c "$T/ar.conf" --outbox
rc_is "--outbox exits 0" 0
check "--outbox: nothing queued, nothing dead" grep -q "nothing queued, nothing dead" "$MM_OUT"

# max_per_hour: the cap counts within one batch and across runs (the
# counter, put by every answered message, keeps its last value).  A stage
# of its own name: the counter is the stage's, and the runs above used some.
rm -f "$M"/*.eml
for i in 1 2 3 4; do mkmsg cap$i "cap$i@example.net"; done
env_seed_files "$M"/*-cap*.eml
C_TOP_EXTRA=$(smtp_conf_group starttls) \
C_STAGES="      { plugin = \"autoreply\"; name = \"capped\"; addresses = [ \"help@example.org\" ];
        from = \"Help Desk <help@example.org>\"; body = \"Got it.\"; max_per_hour = 2;
        handle = \"capped\"; verdict = \"done\"; }" write_conf "$T/cap.conf"
before=$(smtp_count)
mm cap1 -c "$T/cap.conf" --once
is "max_per_hour 2: two of four senders answered in one run" "$(($(smtp_count) - before))" 2
why "the hourly cap" "the cap of 2 replies per hour is reached"
for i in 5 6; do mkmsg cap$i "cap$i@example.net"; done
env_seed_files "$M"/*-cap5.eml "$M"/*-cap6.eml
mm cap2 -c "$T/cap.conf" --once
is "the cap holds in the next run of the same hour" "$(($(smtp_count) - before))" 2
is "every capped message is still deleted (verdict done)" "$(env_count)" 0

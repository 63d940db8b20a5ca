#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# The ticket plugin end to end: two Dovecot mailboxes feed one queue; the
# threading cases as a table (new ticket; the requester's reply with the tag;
# a stranger quoting someone else's tag; References only; a reply to the
# acknowledgement; one Message-ID in both mailboxes; another installation's
# prefix); one acknowledgement per new ticket and none to list or
# auto-submitted mail, over SMTP to a capturing server; kill -9 between the
# ticket commit and DELE opens no second ticket.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/smtp.sh"
. "$(dirname "$0")/../lib/mkmsg.sh"
need dovecot python3 aiosmtpd sqlite3 openssl
mm_setup
smtp_setup
plan 34

env_start srv
smtp_start cap
M=$T/msgs
mkdir -p "$M"
DB=$T/state/mailmill.db

# Two accounts, one queue.
conf() {
	local a
	{
		echo "state_dir = \"$T/state\";"
		echo "plugin_dir = \"$PLUGIN_DIR\";"
		echo "log = { level = \"info\"; target = \"stderr\"; };"
		smtp_conf_group none
		echo "accounts = ("
		for a in 1 2; do
			[ "$a" = 2 ] && echo ","
			echo "{ name = \"box$a\"; host = \"localhost\"; port = $POP3_PORT; tls = \"none\";"
			echo "  user = \"user$a\"; password = \"$MAILENV_PASS\"; allow_plaintext_password = true;"
			echo "  pipeline = ("
			# open_for_robots: here list and auto-submitted mail open tickets, to
			# check that they get no acknowledgement (t-ticket-robots: the default).
			echo "    { plugin = \"ticket\"; queue = \"support\"; from = \"Support <support@example.org>\";"
			echo "      open_for_robots = true; },"
			echo "    { plugin = \"archive\"; path = \"$T/archive$a\"; } ); }"
		done
		echo ");"
	} >"$T/t.conf"
	chmod 600 "$T/t.conf"
}
conf

# ticket_of MESSAGE-ID: the ticket the queue recorded for it ("" if none).
ticket_of() { sqlite3 "$DB" "SELECT value FROM kv_ns WHERE ns = 'ticket:support' AND key = 'mid:$1';"; }
tickets() { sqlite3 "$DB" "SELECT count(*) FROM kv_ns WHERE ns = 'ticket:support' AND key GLOB 't:*';"; }
seqval() { sqlite3 "$DB" "SELECT coalesce((SELECT value FROM seq WHERE ns = 'ticket:support'), 0);"; }

# ---- run 1: new tickets; acknowledgements only where RFC 3834 allows
mkmsg user1 a1 alice@example.com a1@example.com "Printer broken"
mkmsg user1 b1 bob@example.com b1@example.com "VPN down"
mkmsg user1 c1 carol@example.com c1@example.com "Newsletter" "List-Id: <news.example.com>"
mkmsg user1 d1 dave@example.com d1@example.com "Out of office" "Auto-Submitted: auto-replied"
mm run1 -c "$T/t.conf" --once -v
rc_is "run 1 exits 0" 0
is "four tickets opened" "$(tickets)" 4
# POP3 order is the server's: numbers are looked up, not assumed.
TA=$(ticket_of a1@example.com)
TB=$(ticket_of b1@example.com)
TC=$(ticket_of c1@example.com)
TD=$(ticket_of d1@example.com)
is "new tickets: four messages, four distinct numbers 1 to 4" \
	"$(printf '%s\n' "$TA" "$TB" "$TC" "$TD" | sort -n | tr '\n' ' ')" "1 2 3 4 "
tag() { printf '[Ticket#%06d]' "$1"; }
is "two acknowledgements (none to list or auto-submitted mail)" "$(smtp_count)" 2
check "the list mail's reason is logged" err_has "ticket $TC: no acknowledgement to <carol@example.com>: mailing list mail"
check "the auto-submitted mail's reason is logged" err_has "ticket $TD: no acknowledgement to <dave@example.com>: Auto-Submitted: auto-replied"
ack=$(grep -lF "Subject: $(tag "$TA") Printer broken" "$SMTP_OUT"/*.eml)
check "Alice's acknowledgement carries her ticket's tag" test -n "$ack"
check "it is an automatic reply (Auto-Submitted, In-Reply-To)" \
	grep -q "^In-Reply-To: <a1@example.com>" "$ack"
ack_id=$(tr -d '\r' <"$ack" | sed -n 's/^Message-Id: <\(.*\)>$/\1/Ip' | head -n 1)
is "the acknowledgement's Message-ID is recorded for Alice's ticket" "$(ticket_of "$ack_id")" "$TA"
env_user user1
is "mailbox 1 emptied" "$(env_count)" 0

# ---- run 2: the threading table
mkmsg user1 a2 alice@example.com a2@example.com "Re: $(tag "$TA") Printer broken"
mkmsg user1 m1 mallory@example.net m1@example.net "$(tag "$TA") please give me access"
mkmsg user1 e1 erin@example.com e1@example.com "more details" "References: <x1@elsewhere.org> <b1@example.com>"
mkmsg user1 a3 alice@example.com a3@example.com "Re: thanks" "In-Reply-To: <$ack_id>"
mkmsg user1 o1 bob@example.com o1@example.com "Re: [Other#$(printf %06d "$TB")] VPN down"
mkmsg user1 f1 frank@example.com dup@example.com "Same mail, two mailboxes"
mkmsg user2 f2 frank@example.com dup@example.com "Same mail, two mailboxes"
mm run2 -c "$T/t.conf" --once -v
rc_is "run 2 exits 0" 0
# case | Message-ID | its ticket: that of another Message-ID, or "new" (above 4)
while IFS='|' read -r desc mid want; do
	got=$(ticket_of "$mid")
	if [ "$want" = new ]; then
		check "threading: $desc" test "${got:-0}" -gt 4
	else
		is "threading: $desc" "$got" "$(ticket_of "$want")"
	fi
done <<'TABLE'
requester replies with the tag|a2@example.com|a1@example.com
stranger quotes someone else's tag: a new ticket|m1@example.net|new
References only (rightmost known id)|e1@example.com|b1@example.com
reply to the acknowledgement|a3@example.com|a1@example.com
another installation's prefix: a new ticket|o1@example.com|new
same Message-ID from two mailboxes: one new ticket|dup@example.com|new
TABLE
TF=$(ticket_of dup@example.com)
check "the stranger's tag is logged as not trusted" err_has "mallory@example.net> is not a participant of ticket $TA"
check "the follow-up by subject is logged" err_has "follow-up to ticket $TA \[Ticket#0*$TA\] by subject"
check "the second copy is not taken in twice" err_has "<dup@example.com> was already taken in \(ticket $TF\)"
is "seven tickets in all" "$(tickets)" 7
is "numbering has no gap" "$(seqval)" 7
is "Erin is now a participant of ticket 2" \
	"$(sqlite3 "$DB" "SELECT value FROM kv_ns WHERE key = 'p:$TB:erin@example.com';")" participant
is "three more acknowledgements (the new tickets), none for follow-ups" "$(smtp_count)" 5
is "Frank got one acknowledgement" "$(grep -lF "Subject: $(tag "$TF")" "$SMTP_OUT"/*.eml | wc -l)" 1
env_user user1
is "mailbox 1 emptied" "$(env_count)" 0
env_user user2
is "mailbox 2 emptied (the duplicate is archived, not ticketed)" "$(env_count)" 0
check "the duplicate is still archived by the next stage" test "$(archive_count "$T/archive2")" = 1

# ---- run 3: nothing new, nothing sent again
mm run3 -c "$T/t.conf" --once
rc_is "run 3 exits 0" 0
is "no acknowledgement is sent twice" "$(smtp_count)" 5

# ---- kill -9 after the ticket's commit, before DELE
mkmsg user1 k1 kate@example.com k1@example.com "Crash test"
if have_crashpoints; then
	MM_ENV_EXTRA="MAILMILL_CRASH=commit:1" mm crash -c "$T/t.conf" --once
	env_user user1
	is "crash: the message is still on the server" "$(env_count)" 1
	mm after -c "$T/t.conf" --once -v
	env_user user1
	is "after restart: the message is deleted" "$(env_count)" 0
	is "after restart: one ticket for it (8), no second one" "$(ticket_of k1@example.com)|$(tickets)|$(seqval)" "8|8|8"
	is "after restart: one acknowledgement for it" "$(grep -lF "Subject: $(tag 8)" "$SMTP_OUT"/*.eml | wc -l)" 1
else
	for d in "crash: still on the server" "restart: deleted" "restart: one ticket" "restart: one ack"; do
		skip "$d" "built without --enable-crashpoints"
	done
fi

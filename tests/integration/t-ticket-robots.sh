#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# Ticket intake opens no tickets for robots by default (issue 15.8): real
# bounces, an Exim bounce, a vacation reply and list mail from the corpus
# (tests/data/robots, see its SOURCES.md), and made-up Precedence: bulk and
# delivery-status mail, pass on to the next stage (archived, deleted) with one
# log line each and no ticket, acknowledgement or notification.  A person's
# mail still opens one; an automatic reply to that ticket is threaded as a
# follow-up (never acknowledged); open_for_robots = true opens tickets again.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/smtp.sh"
. "$(dirname "$0")/../lib/mkmsg.sh"
need dovecot python3 aiosmtpd sqlite3 openssl
mm_setup
smtp_setup
plan 19

env_start srv
smtp_start cap
M=$T/msgs
R=$MM_SRCDIR/tests/data/robots
mkdir -p "$M"
DB=$T/state/mailmill.db

# conf EXTRA: ticket (with EXTRA settings) then archive.
conf() {
	{
		echo "state_dir = \"$T/state\";"
		echo "plugin_dir = \"$PLUGIN_DIR\";"
		echo "log = { level = \"info\"; target = \"stderr\"; };"
		smtp_conf_group none
		echo "accounts = ( { name = \"box\"; host = \"localhost\"; port = $POP3_PORT; tls = \"none\";"
		echo "  user = \"user1\"; password = \"$MAILENV_PASS\"; allow_plaintext_password = true;"
		echo "  pipeline = ("
		echo "    { plugin = \"ticket\"; queue = \"support\"; from = \"Support <support@example.org>\";"
		echo "      notify = [ \"staff@example.org\" ]; $1 },"
		echo "    { plugin = \"archive\"; path = \"$T/archive\"; } ); } );"
	} >"$T/t.conf"
	chmod 600 "$T/t.conf"
}

ticket_of() { sqlite3 "$DB" "SELECT value FROM kv_ns WHERE ns = 'ticket:support' AND key = 'mid:$1';"; }
tickets() { sqlite3 "$DB" "SELECT count(*) FROM kv_ns WHERE ns = 'ticket:support' AND key GLOB 't:*';" 2>/dev/null || echo 0; }

# ---- run 1: the robots, and one person
conf ""
env_user user1
env_seed_files "$R"/*.eml
mkmsg user1 bulk news@example.com bulk1@example.com "Our offers" "Precedence: bulk"
mkmsg user1 dsn postmaster@example.net dsn1@example.net "Delivery report" \
	"MIME-Version: 1.0" "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\""
mkmsg user1 human alice@example.com h1@example.com "Printer broken"
mm run1 -c "$T/t.conf" --once -v
rc_is "run 1 exits 0" 0
is "one ticket: the person's" "$(tickets)" 1
check "the person's mail opened it" test -n "$(ticket_of h1@example.com)"
robots=$(grep -c "no ticket opened: " "$MM_ERR")
is "one log line per robot (4 corpus messages, bulk, report)" "$robots" 6
check "the null-sender bounce: said why" err_has "no ticket opened: a bounce \(null sender <>\)"
check "the Exim bounce: said why" \
	err_has "no ticket opened: (a bounce \(from MAILER-DAEMON\)|Auto-Submitted: auto-replied)"
check "the list mail: said why" err_has "no ticket opened: (Precedence: list|mailing list mail)"
check "Precedence: bulk: said why" err_has "no ticket opened: Precedence: bulk"
check "multipart/report delivery-status: said why" \
	err_has "no ticket opened: a delivery status report \(multipart/report\)"
check "the log line names the setting" err_has "open_for_robots = true would open one"
is "one acknowledgement and one notification (the person's ticket only)" "$(smtp_count)" 2
check "no acknowledgement to the list's sender" \
	test -z "$(grep -l "gnupg-announce-bounces@gnupg.org" "$SMTP_OUT"/*.json 2>/dev/null)"
is "every message passed on to the archive" "$(archive_count "$T/archive")" 7
env_user user1
is "mailbox emptied" "$(env_count)" 0

# ---- run 2: a vacation reply to the person's ticket is a follow-up, not acknowledged
TA=$(ticket_of h1@example.com)
mkmsg user1 ooo alice@example.com ooo1@example.com "Auto: Printer broken" \
	"Auto-Submitted: auto-replied" "In-Reply-To: <h1@example.com>"
mm run2 -c "$T/t.conf" --once -v
rc_is "run 2 exits 0" 0
is "the auto-reply is threaded into the ticket" "$(ticket_of ooo1@example.com)" "$TA"
is "no acknowledgement for it, only the staff notification" "$(smtp_count)" 3

# ---- run 3: open_for_robots = true opens a ticket for list mail
conf "open_for_robots = true;"
env_user user1
cp "$R/mimekit-list-announce.eml" "$M/list2.eml"
sed -i 's/^Message-ID: <87h925qlx8.fsf@wheatstone.g10code.de>/Message-ID: <list2@example.org>/' "$M/list2.eml"
env_seed_files "$M/list2.eml"
mm run3 -c "$T/t.conf" --once -v
rc_is "run 3 exits 0" 0
check "open_for_robots: the list mail opened a ticket" test -n "$(ticket_of list2@example.org)"

#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# Plugin state, sequences and the outbox on the PostgreSQL store: two
# mailboxes feed one ticket queue; ticket numbers come from the store's
# sequence, the threading keys from its key-value namespace, and the
# acknowledgements leave through its outbox to a capturing SMTP server,
# each once (a second run sends nothing again).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/smtp.sh"
. "$(dirname "$0")/../lib/mkmsg.sh"
. "$MM_LIB/pg.sh"
need dovecot python3 aiosmtpd
pg_need
mm_setup
plan 9
pg_start "$T/pg"
trap 'pg_stop; smtp_stop_all; mm_cleanup' EXIT
env_start srv
smtp_start cap
M=$T/msgs
mkdir -p "$M"

{
	echo "state_dir = \"$T/state\";"
	echo "plugin_dir = \"$PLUGIN_DIR\";"
	echo "log = { level = \"info\"; target = \"stderr\"; };"
	echo "store = { driver = \"postgresql\"; conninfo = \"$PG_CONNINFO\";"
	echo "  password_file = \"$PG_PASSFILE\"; sslmode = \"disable\"; };"
	smtp_conf_group none
	echo "accounts = ("
	for a in 1 2; do
		[ "$a" = 2 ] && echo ","
		echo "{ name = \"box$a\"; host = \"localhost\"; port = $POP3_PORT; tls = \"none\";"
		echo "  user = \"user$a\"; password = \"$MAILENV_PASS\"; allow_plaintext_password = true;"
		echo "  pipeline = ( { plugin = \"ticket\"; queue = \"support\";"
		echo "    from = \"Support <support@example.org>\"; } ); }"
	done
	echo ");"
} >"$T/t.conf"
chmod 600 "$T/t.conf"

for i in 1 2 3; do
	mkmsg user1 a$i "alice$i@example.com" "a$i@example.com" "Problem a$i"
	mkmsg user2 b$i "bob$i@example.com" "b$i@example.com" "Problem b$i"
done
mm run1 -c "$T/t.conf" --once
rc_is "ticket intake on PostgreSQL: exit 0" 0
is "six tickets, numbered 1 to 6 by the store's sequence" \
	"$(pg_sql "SELECT string_agg(value, ' ' ORDER BY value::int) FROM kv_ns WHERE ns = 'ticket:support'
		AND key IN ('mid:a1@example.com', 'mid:a2@example.com', 'mid:a3@example.com',
		'mid:b1@example.com', 'mid:b2@example.com', 'mid:b3@example.com')")" \
	"1 2 3 4 5 6"
is "the sequence is at 6" "$(pg_sql "SELECT value FROM seq WHERE ns = 'ticket:support'")" 6
is "six acknowledgements sent" "$(smtp_count)" 6
is "the outbox rows are marked sent, claims ended" \
	"$(pg_sql "SELECT count(*) FROM outbox WHERE state = 1 AND claim_owner IS NULL")" 6
is "no SQLite store was made" "$(ls "$T/state" 2>/dev/null | grep -c mailmill.db)" 0

# A follow-up with the tag threads into its ticket; nothing is sent twice.
n=$(pg_sql "SELECT value FROM kv_ns WHERE ns = 'ticket:support' AND key = 'mid:a1@example.com'")
mkmsg user2 f1 "alice1@example.com" "f1@example.com" "Re: [Ticket#$(printf %06d "$n")] Problem a1"
mm run2 -c "$T/t.conf" --once
rc_is "second run: exit 0" 0
is "the follow-up joins ticket $n" \
	"$(pg_sql "SELECT value FROM kv_ns WHERE ns = 'ticket:support' AND key = 'mid:f1@example.com'")" "$n"
is "no acknowledgement twice, none for a follow-up" "$(smtp_count)" 6

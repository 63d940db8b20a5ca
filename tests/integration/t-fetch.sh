#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# The main path against a real Dovecot, in each transport: plain POP3
# (allow_plaintext_password), STLS and POP3S with a CA made at test time.
# --once archives every message byte for byte and empties the mailbox; the
# journal has one row per message; a second run changes nothing; mail that
# arrives later is archived once, alone; IPv6 loopback works too.  A run of
# more than one batch sends the DELEs of committed batches within the fetch.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
need dovecot python3 sqlite3 openssl
mm_setup
plan 36
N=14

env_start srv --users "plain stls pop3s many"

# run_mode MODE HOST TLS PORT: 7 tests.
run_mode() {
	local mode=$1 a=$T/archive-$1 s=$T/state-$1 before
	env_user "$mode"
	env_seed "$N" --seed "$mode"
	C_HOST=$2 C_TLS=$3 C_PORT=$4 C_ARCHIVE=$a C_STATE=$s write_conf "$T/$mode.conf"

	mm "$mode-1" -c "$T/$mode.conf" --once
	rc_is "$mode: --once exits 0" 0
	check "$mode: all $N messages archived byte for byte" archive_matches "$a"
	is "$mode: server mailbox empty" "$(env_count)" 0
	is "$mode: journal has one row per message, each marked deleted after QUIT" \
		"$(ledger_rows "$s" acct) $(ledger_distinct "$s" acct) $(ledger_rows "$s" acct 'state = 3')" \
		"$N $N $N"

	before=$(hashes "$a"; ls -R "$a")
	mm "$mode-2" -c "$T/$mode.conf" --once
	rc_is "$mode: second --once exits 0" 0
	if [ "$(hashes "$a"; ls -R "$a")" = "$before" ] &&
		[ "$(ledger_rows "$s" acct)" = "$(ledger_distinct "$s" acct)" ]; then
		ok "$mode: second run changes nothing"
	else
		not_ok "$mode: second run changes nothing"
	fi
	is "$mode: the journal forgets messages the server no longer lists" \
		"$(ledger_rows "$s" acct)" 0
}

run_mode plain 127.0.0.1 none "$POP3_PORT"
# The Dovecot log says whether the login was protected by TLS.
logins() { grep -E "pop3-login: Info: Login: user=<$1>" "$MAILENV_LOG"; }
if logins plain >/dev/null && ! logins plain | grep -q TLS; then
	ok "plain: Dovecot saw logins without TLS"
else
	not_ok "plain: Dovecot saw logins without TLS"
fi

run_mode stls localhost starttls "$POP3_PORT"
check "stls: Dovecot saw the logins over TLS" eval 'logins stls >/dev/null && ! logins stls | grep -vq ", TLS"'

run_mode pop3s localhost tls "$POP3S_PORT"
check "pop3s: Dovecot saw the logins over TLS" eval 'logins pop3s >/dev/null && ! logins pop3s | grep -vq ", TLS"'

# New mail after a run: only the new messages are fetched, each once.
env_user plain
env_seed 3 --seed plain --offset "$N"
mm plain-3 -c "$T/plain.conf" --once
rc_is "new mail: --once exits 0" 0
if archive_matches "$T/archive-plain" && [ "$(env_count)" = 0 ]; then
	ok "new mail: archived once, $((N + 3)) in all, server empty"
else
	not_ok "new mail: archived once, $((N + 3)) in all, server empty"
fi
is "new mail: the journal holds the new messages only" "$(ledger_rows "$T/state-plain" acct)" 3

# A certificate names 127.0.0.1 as an IP address: connecting by address verifies too.
env_user pop3s
env_seed 2 --seed pop3s --offset "$N"
C_HOST=127.0.0.1 C_TLS=tls C_PORT=$POP3S_PORT C_ARCHIVE=$T/archive-pop3s C_STATE=$T/state-pop3s \
	write_conf "$T/pop3s-ip.conf"
mm pop3s-ip -c "$T/pop3s-ip.conf" --once
rc_is "pop3s by IP address (IP SAN): --once exits 0" 0
check "pop3s by IP address: new messages archived" archive_matches "$T/archive-pop3s"

# IPv6 loopback, when the machine has it.
if grep -q ' lo$' /proc/net/if_inet6 2>/dev/null; then
	env_user plain
	env_seed 2 --seed plain --offset $((N + 3))
	C_HOST=::1 C_TLS=none C_ARCHIVE=$T/archive-plain C_STATE=$T/state-plain write_conf "$T/ipv6.conf"
	mm ipv6 -c "$T/ipv6.conf" --once
	if [ "$MM_RC" = 0 ] && archive_matches "$T/archive-plain" && [ "$(env_count)" = 0 ] &&
		grep -q 'Login: user=<plain>.*rip=::1' "$MAILENV_LOG"; then
		ok "IPv6 (::1): new messages archived, Dovecot saw the client on ::1"
	else
		not_ok "IPv6 (::1): new messages archived, Dovecot saw the client on ::1"; show "$MM_ERR"
	fi
else
	skip "IPv6 (::1)" "no IPv6 on loopback"
fi

# More than one batch (4096 messages) plus the RETR window (1024): the DELEs
# of a committed batch go out in the pipeline while later messages are
# fetched; each message is deleted once, and only after its batch's commit
# (the crash tests hold that order).
env_user many
env_seed 6000 --seed many --kind plain --size 300
C_TLS=none C_ARCHIVE=$T/archive-many C_STATE=$T/state-many write_conf "$T/many.conf"
mm many -c "$T/many.conf" --once -vv
rc_is "6000 messages: --once exits 0" 0
if archive_matches "$T/archive-many" && [ "$(env_count)" = 0 ]; then
	ok "6000 messages: all archived byte for byte, server empty"
else
	not_ok "6000 messages: all archived byte for byte, server empty"
fi
is "6000 messages: one DELE each" "$(grep -c ' C: DELE ' "$MM_ERR")" 6000
first_dele=$(grep -n ' C: DELE ' "$MM_ERR" | head -n 1 | cut -d: -f1)
last_retr=$(grep -n ' C: RETR ' "$MM_ERR" | tail -n 1 | cut -d: -f1)
if [ -n "$first_dele" ] && [ -n "$last_retr" ] && [ "$first_dele" -lt "$last_retr" ]; then
	ok "6000 messages: the first batch's DELEs went out before the last RETR"
else
	not_ok "6000 messages: the first batch's DELEs went out before the last RETR"
	diag "first DELE at line ${first_dele:-none}, last RETR at line ${last_retr:-none}"
fi

# The connect goes out before the journal opens (run_dial_start); a refused
# one is still reported as the run's connect failure, and nothing is written.
C_PORT=1 C_TLS=none C_ARCHIVE=$T/archive-refused C_STATE=$T/state-refused write_conf "$T/refused.conf"
mm refused -c "$T/refused.conf" --once
rc_is "refused connection: --once exits 75" 75
check "refused connection: the log says the connect was refused" err_has 'cannot connect.*refused'

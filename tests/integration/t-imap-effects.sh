#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# A batch's effect on the server (after = "delete": UID STORE \Deleted + UID
# EXPUNGE, and a second UID EXPUNGE once they are answered; after = "move":
# UID MOVE) rides between the next fetch sets,
# against a real Dovecot: enough messages for two committed batches in one
# run (a batch is 4096 messages), a message the pipeline keeps (flagged
# \Deleted by another client) among them.  The protocol trace shows an effect sent
# before the last fetch; the server's state afterwards is exact: every
# done message gone (or in the folder once), the kept one untouched, and
# nothing processed twice by a second run.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
need dovecot-imap python3 sqlite3 openssl
mm_setup
plan 18
V=$TEST_PLUGIN_DIR/verdict.so

env_start srv --users "edel emov"

# iconf USER: an IMAP account for USER whose pipeline keeps "KEEPME" mail.
iconf() {
	env_user "$1"
	C_STAGES="      { plugin = \"$V\"; verdict = \"keep\"; subject_contains = \"KEEPME\"; },
      { plugin = \"archive\"; path = \"$T/archive-$1\"; }" \
	C_PROTOCOL=imap C_STATE=$T/state-$1 C_ARCHIVE=$T/archive-$1 write_conf "$T/$1.conf"
}
# seed USER: 5200 plain messages, the kept one between the two halves (1105 after
# the first batch, so that its effect goes out while they are fetched even
# when the parser reads the bodies left 64 KB at a time).
seed() {
	env_seed 2600 --seed "$1" --kind plain
	printf '%s\n' "From: <other@example.com>" "To: user@example.net" "Subject: KEEPME please" \
		"Message-ID: <keepme.$1@example.com>" "" "Kept by the pipeline." >"$T/keepme-$1.eml"
	imap_count INBOX >/dev/null   # Dovecot numbers the first half first
	imapc append INBOX "$T/keepme-$1.eml"
	imapc flag INBOX "<keepme.$1@example.com>" '\Deleted'
	env_seed 2600 --seed "$1" --offset 2600 --kind plain
}
ids() { imapc state "$1" | awk '{ print $4 }' | sort; }
expected_ids() { grep -h -i '^Message-ID:' "$EXPECTED"/* | awk '{ print $2 }' | sort; }
flags_of() { imapc state "$1" | awk '{ print $3, $4 }' | sort; }
# effect_before_last_body WORD: the trace of the last run sends a command
# holding WORD before the last body comes.
effect_before_last_body() {
	local eff body
	eff=$(grep -n "C: A[0-9]* UID $1 " "$MM_ERR" | head -1 | cut -d: -f1)
	body=$(grep -n 'S: \* [0-9]* FETCH (UID [0-9]* BODY\[\]' "$MM_ERR" | tail -1 | cut -d: -f1)
	[ -n "$eff" ] && [ -n "$body" ] && [ "$eff" -lt "$body" ]
}
# expunge_after_store: Dovecot runs pipelined commands side by side, so the
# UID EXPUNGE sent with its UID STORE \Deleted may find nothing flagged yet:
# a second UID EXPUNGE of the same set follows the STORE's OK.
expunge_after_store() {
	local tag set ok exp
	read -r tag set < <(grep -o "C: A[0-9]* UID STORE [0-9:,]* " "$MM_ERR" | head -1 | awk '{ print $2, $5 }')
	ok=$(grep -n "S: $tag OK" "$MM_ERR" | head -1 | cut -d: -f1)
	exp=$(grep -n "C: A[0-9]* UID EXPUNGE $set\$" "$MM_ERR" | tail -1 | cut -d: -f1)
	[ -n "$tag" ] && [ -n "$ok" ] && [ -n "$exp" ] && [ "$ok" -lt "$exp" ]
}

# ------------------------------------------------------------ after = "delete"
iconf edel
seed edel
mm edel -c "$T/edel.conf" --once -v -v
rc_is "delete: exit 0" 0
check "delete: a batch's UID STORE went out before the last body came" effect_before_last_body STORE
check "delete: a second UID EXPUNGE of the set once the STORE was answered" expunge_after_store
check "delete: never a bare EXPUNGE" eval "! grep -Eq 'C: A[0-9]+ EXPUNGE' '$MM_ERR'"
check "delete: the done messages archived once, byte for byte" archive_matches "$T/archive-edel"
is "delete: INBOX holds only the kept message, still flagged \\Deleted by the other client" \
	"$(flags_of INBOX)" "\\Deleted <keepme.edel@example.com>"
is "delete: 5201 messages in the journal" "$(ledger_rows "$T/state-edel" acct)" 5201
mm edel-2 -c "$T/edel.conf" --once
rc_is "delete: second run exits 0" 0
check "delete: second run archives nothing again" archive_matches "$T/archive-edel"
is "delete: second run leaves the kept message" "$(flags_of INBOX)" \
	"\\Deleted <keepme.edel@example.com>"

# ------------------------------------------------------------ after = "move"
C_ACCOUNT_EXTRA='after = "move"; move_to = "Done";' iconf emov
seed emov
mm emov -c "$T/emov.conf" --once -v -v
rc_is "move: exit 0" 0
check "move: a batch's UID MOVE went out before the last body came" effect_before_last_body MOVE
check "move: the done messages archived once, byte for byte" archive_matches "$T/archive-emov"
is "move: INBOX holds only the kept message" "$(flags_of INBOX)" \
	"\\Deleted <keepme.emov@example.com>"
is "move: Done holds each done message once" "$(ids Done)" "$(expected_ids)"
mm emov-2 -c "$T/emov.conf" --once
rc_is "move: second run exits 0" 0
check "move: second run archives nothing again" archive_matches "$T/archive-emov"
is "move: Done still holds each message once" "$(ids Done)" "$(expected_ids)"

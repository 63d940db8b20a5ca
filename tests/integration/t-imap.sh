#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# IMAP as the mail source, against a real Dovecot on loopback: sign-in over
# plain IMAP, STARTTLS and IMAPS; each `after` mode with the server's state
# read back by another client (tests/lib/imapc.py): which messages are in
# which folder, with which flags; several folders; a folder recreated with a
# new UIDVALIDITY; one message in two folders; quarantine and --release with
# an IMAP key; --dry-run; --check-login.  Crashes between the commit and the
# effect on the server are in t-imap-crash.sh.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
need dovecot-imap python3 sqlite3 openssl
mm_setup
plan 106
V=$TEST_PLUGIN_DIR/verdict.so

env_start srv --users "plain stls imaps bulk del mov flg kep multi miss uidv dup quar dry chk"

# iconf USER: an IMAP account for USER in $T/USER.conf, its own state and
# archive; C_* as write_conf (C_ACCOUNT_EXTRA for after, folders...).
iconf() {
	env_user "$1"
	C_PROTOCOL=imap C_STATE=${C_STATE:-$T/state-$1} C_ARCHIVE=${C_ARCHIVE:-$T/archive-$1} \
		write_conf "$T/$1.conf"
}
# ids FOLDER: the sorted Message-IDs in FOLDER.
ids() { imapc state "$1" | awk '{ print $4 }' | sort; }
# expected_ids: the sorted Message-IDs of $EXPECTED.
expected_ids() { grep -h -i '^Message-ID:' "$EXPECTED"/* | awk '{ print $2 }' | sort; }
# flags_of FOLDER: "FLAGS MESSAGE-ID" lines, sorted (UIDs left out).
flags_of() { imapc state "$1" | awk '{ print $3, $4 }' | sort; }
# run_ok DESC NAME ARGS...: one mm and one test on its exit status 0.
run_ok() {
	local d=$1
	shift
	mm "$@"
	rc_is "$d" 0
}
# keys ACCOUNT-STATE: the journal's keys, sorted.
keys() { sqlite3 "$1/mailmill.db" "SELECT uid FROM ledger ORDER BY uid"; }

# ------------------------------------------------------------ sign-in: plain, STARTTLS, IMAPS
iconf plain
env_seed 3 --seed plain
run_ok "plain IMAP: exit 0" plain -c "$T/plain.conf" --once
check "plain IMAP: every message archived once, byte for byte" archive_matches "$T/archive-plain"
is "plain IMAP: INBOX empty (after = delete, the default)" "$(imap_count INBOX)" 0

C_TLS=starttls iconf stls
env_seed 3 --seed stls
run_ok "STARTTLS: exit 0" stls -c "$T/stls.conf" --once
check "STARTTLS: every message archived once" archive_matches "$T/archive-stls"
check "STARTTLS: Dovecot saw the login over TLS" grep -Eq 'imap-login: (Info: )?Login: user=<stls>,.*, TLS,' "$MAILENV_LOG"
is "STARTTLS: INBOX empty" "$(imap_count INBOX)" 0

C_TLS=tls C_PORT=$IMAPS_PORT iconf imaps
env_seed 3 --seed imaps
run_ok "IMAPS: exit 0" imaps -c "$T/imaps.conf" --once
check "IMAPS: every message archived once" archive_matches "$T/archive-imaps"
check "IMAPS: Dovecot saw the login over TLS" grep -Eq 'imap-login: (Info: )?Login: user=<imaps>,.*, TLS,' "$MAILENV_LOG"
is "IMAPS: INBOX empty" "$(imap_count INBOX)" 0

# Many messages of every kind in one run: pipelined fetches, whose bodies
# Dovecot sends ahead of their turn, and --limit taking them in two steps.
C_TLS=tls C_PORT=$IMAPS_PORT iconf bulk
env_seed 400 --seed bulk
mm bulk-1 -c "$T/bulk.conf" --once --limit 150
rc_is "400 messages, --limit 150: exit 0" 0
is "400 messages, --limit 150: 250 left in INBOX" "$(imap_count INBOX)" 250
run_ok "400 messages, the rest: exit 0" bulk-2 -c "$T/bulk.conf" --once
check "400 messages: each archived once, byte for byte, INBOX empty" \
	eval "archive_matches '$T/archive-bulk' && [ \$(imap_count INBOX) = 0 ]"

# STARTTLS asked of a server that does not offer it: refused, nothing read.
ENV_MAIN=$ENV
env_start nossl --no-ssl
env_seed 2 --seed nossl
C_TLS=starttls C_CA="$ENV_MAIN/ssl/ca.crt" C_STATE=$T/state-nossl C_ARCHIVE=$T/archive-nossl \
	C_PROTOCOL=imap write_conf "$T/nossl.conf"
mm nossl -c "$T/nossl.conf" --once
rc_is "STARTTLS not offered: exit 75" 75
check "STARTTLS not offered: said so" err_has 'STARTTLS'
is "STARTTLS not offered: nothing archived, nothing removed" \
	"$(archive_count "$T/archive-nossl") $(imap_count INBOX)" "0 2"
ENV=$ENV_MAIN
. "$ENV/env.sh"

# ------------------------------------------------------------ after = "delete"
# A message the pipeline keeps, which another client has flagged \Deleted
# without expunging: a bare EXPUNGE would take it; UID EXPUNGE must not.
C_STAGES="      { plugin = \"$V\"; verdict = \"keep\"; subject_contains = \"KEEPME\"; },
      { plugin = \"archive\"; path = \"$T/archive-del\"; }" iconf del
env_seed 5 --seed del
printf '%s\n' "From: <other@example.com>" "To: user@example.net" "Subject: KEEPME please" \
	"Message-ID: <keepme.del@example.com>" "" "Kept by the pipeline." >"$T/keepme.eml"
imapc append INBOX "$T/keepme.eml"
imapc flag INBOX '<keepme.del@example.com>' '\Deleted'
imapc append Other "$T/keepme.eml"
imapc flag Other '<keepme.del@example.com>' '\Deleted'
run_ok "delete: exit 0" del -c "$T/del.conf" --once
check "delete: the done messages archived once" archive_matches "$T/archive-del"
is "delete: INBOX holds only the kept message, still flagged \\Deleted by the other client" \
	"$(flags_of INBOX)" '\Deleted <keepme.del@example.com>'
is "delete: a folder not read is untouched" "$(flags_of Other)" '\Deleted <keepme.del@example.com>'
is "delete: six messages in the journal" "$(ledger_rows "$T/state-del" acct)" 6
check "delete: the run's line counts 5 deleted, none moved or flagged, 1 kept" \
	err_has 'run finished .* 5 deleted, 0 moved, 0 flagged, 1 kept,'
run_ok "delete: second run exits 0" del-2 -c "$T/del.conf" --once
check "delete: second run archives nothing again" archive_matches "$T/archive-del"
is "delete: second run leaves the kept message" "$(flags_of INBOX)" '\Deleted <keepme.del@example.com>'

# ------------------------------------------------------------ after = "move"
C_ACCOUNT_EXTRA='after = "move"; move_to = "Done";' iconf mov
env_seed 4 --seed mov
check "move: the folder Done does not exist yet" eval '! imapc folders | grep -qx Done'
run_ok "move: exit 0" mov -c "$T/mov.conf" --once
check "move: every message archived once" archive_matches "$T/archive-mov"
is "move: INBOX empty" "$(imap_count INBOX)" 0
is "move: Done created, holding exactly the messages" "$(ids Done)" "$(expected_ids)"
check "move: the run's line counts 4 moved, not deleted" \
	err_has 'run finished .* 0 deleted, 4 moved, 0 flagged, 0 kept,'
mm mov-status -c "$T/mov.conf" --status
check "move: --status shows the last run's 4 moved" \
	grep -q 'last run: .* 0 deleted, 4 moved, 0 flagged, 0 kept' "$MM_OUT"
run_ok "move: second run exits 0" mov-2 -c "$T/mov.conf" --once
check "move: second run archives nothing again" archive_matches "$T/archive-mov"
is "move: Done still holds each message once" "$(ids Done)" "$(expected_ids)"
# A person drags one back into INBOX (a new UID there) after the run that
# forgot the keys of the messages moved away: the journal kept their digests
# (store_ledger_forget), so it is recognised, journalled KEEP "duplicate" and
# left where the person put it: no second archive copy.
back=$(ids Done | head -n 1)
imapc copy Done "$back" INBOX
run_ok "move: a message copied back into INBOX: exit 0" mov-3 -c "$T/mov.conf" --once
check "move: the message copied back is not processed again" archive_matches "$T/archive-mov"
check "move: it is logged as a duplicate" err_has "is a duplicate of .*not processed again"
is "move: it stays in INBOX, journalled KEEP duplicate" \
	"$(ids INBOX) $(sqlite3 "$T/state-mov/mailmill.db" "SELECT state || ' ' || verdict FROM ledger WHERE uid LIKE 'INBOX;%'")" \
	"$back 2 duplicate"
run_ok "move: the run after that exits 0" mov-4 -c "$T/mov.conf" --once
check "move: still not processed again" archive_matches "$T/archive-mov"
is "move: it stays in INBOX on the next run" \
	"$(ids INBOX)" "$back"
# Processed again on purpose, as the documentation says: --test --commit.
n_arch=$(archive_count "$T/archive-mov")
mm mov-again -c "$T/mov.conf" --test "$(grep -l -i -F "Message-ID: $back" "$EXPECTED"/* | head -n 1)" --commit
rc_is "move: --test FILE --commit processes it again on purpose: exit 0" 0
is "move: ... one more archive copy" "$(archive_count "$T/archive-mov")" $((n_arch + 1))

# ------------------------------------------------------------ after = "flag"
# The default flag, \Seen; one message another client had already read: the
# journal, not the server's flags, says what is new.
C_ACCOUNT_EXTRA='after = "flag";' iconf flg
env_seed 3 --seed flg
printf '%s\n' "From: <reader@example.com>" "To: user@example.net" "Subject: read already" \
	"Message-ID: <seen.flg@example.com>" "" "Read by a person first." >"$T/seen.eml"
mkdir -p "$EXPECTED" && cp "$T/seen.eml" "$EXPECTED/seen.eml"
IMAPC_FLAGS='\Seen' imapc append INBOX "$T/seen.eml"
run_ok "flag: exit 0" flg -c "$T/flg.conf" --once
check "flag: every message archived once, the one already \\Seen too" \
	archive_matches "$T/archive-flg"
is "flag: every message still in INBOX, flagged \\Seen" \
	"$(flags_of INBOX | awk '{ print $1 }' | sort -u)" '\Seen'
is "flag: four messages in INBOX" "$(imap_count INBOX)" 4
check "flag: the run's line counts 4 flagged, not deleted" \
	err_has 'run finished .* 0 deleted, 0 moved, 4 flagged, 0 kept,'
run_ok "flag: second run exits 0" flg-2 -c "$T/flg.conf" --once
check "flag: second run processes nothing again" archive_matches "$T/archive-flg"
# A keyword instead, on new mail: only the new message is processed.
env_seed 1 --seed flg --offset 3
C_ACCOUNT_EXTRA='after = "flag"; flag = "mailmill-done";' iconf flg
run_ok "flag keyword: exit 0" flg-3 -c "$T/flg.conf" --once
check "flag keyword: only the new message archived" archive_matches "$T/archive-flg"
is "flag keyword: the new message has the keyword, the others not" \
	"$(imapc state INBOX | grep -c 'mailmill-done')" 1

# ------------------------------------------------------------ after = "keep"
C_ACCOUNT_EXTRA='after = "keep";' iconf kep
env_seed 4 --seed kep
before=$(imapc state INBOX)
run_ok "keep: exit 0" kep -c "$T/kep.conf" --once
check "keep: every message archived once" archive_matches "$T/archive-kep"
is "keep: INBOX untouched (same UIDs, same flags: nothing \\Seen)" "$(imapc state INBOX)" "$before"
run_ok "keep: second run exits 0" kep-2 -c "$T/kep.conf" --once
check "keep: second run archives nothing again" archive_matches "$T/archive-kep"
is "keep: the journal holds each message once" \
	"$(ledger_rows "$T/state-kep" acct) $(ledger_distinct "$T/state-kep" acct)" "4 4"

# ------------------------------------------------------------ several folders
C_ACCOUNT_EXTRA='folders = [ "INBOX", "Support", "Sales.EU" ];' iconf multi
env_seed 3 --seed multi
env_seed_folder Support 2 --seed multi --offset 3
env_seed_folder Sales.EU 2 --seed multi --offset 5
"$PY" "$MM_LIB/seed.py" "$MD/.Ignored" 2 --seed ign \
	--owner "$MAILENV_MAIL_UID:$MAILENV_MAIL_GID" >/dev/null
chown -R "$MAILENV_MAIL_UID:$MAILENV_MAIL_GID" "$MD/.Ignored" 2>/dev/null
run_ok "folders: exit 0" multi -c "$T/multi.conf" --once
check "folders: the messages of all three folders archived once" archive_matches "$T/archive-multi"
is "folders: INBOX, Support and Sales.EU empty" \
	"$(imap_count INBOX) $(imap_count Support) $(imap_count Sales.EU)" "0 0 0"
is "folders: a folder not listed is untouched" "$(imap_count Ignored)" 2
is "folders: journal keys name their folder and UIDVALIDITY" \
	"$(keys "$T/state-multi" | sed 's/;UIDVALIDITY=[0-9]*\/;UID=[0-9]*$//' | sort | uniq -c | awk '{ print $2 "=" $1 }' | tr '\n' ' ')" \
	"INBOX=3 Sales.EU=2 Support=2 "

# A folder that does not exist: logged and skipped, the others read, and
# the run says something is left (exit 75).
C_ACCOUNT_EXTRA='folders = [ "Nope", "INBOX" ];' iconf miss
env_seed 2 --seed miss
mm miss -c "$T/miss.conf" --once
rc_is "missing folder: exit 75" 75
check "missing folder: logged" err_has 'folder Nope cannot be opened'
check "missing folder: INBOX read all the same" \
	eval "archive_matches '$T/archive-miss' && [ \$(imap_count INBOX) = 0 ]"

# ------------------------------------------------------------ UIDVALIDITY
# Support is processed (kept), then recreated by another client with the
# same messages: a new UIDVALIDITY, new UIDs, nothing new to process.
C_ACCOUNT_EXTRA='folders = [ "INBOX", "Support" ]; after = "keep";' iconf uidv
env_seed 2 --seed uidv
env_seed_folder Support 3 --seed uidv --offset 2
run_ok "UIDVALIDITY: first run exits 0" uidv -c "$T/uidv.conf" --once
check "UIDVALIDITY: first run archives all five" archive_matches "$T/archive-uidv"
v1=$(imapc status Support | cut -d' ' -f1)
imapc recreate Support
v2=$(imapc status Support | cut -d' ' -f1)
check "UIDVALIDITY: Support recreated with a new UIDVALIDITY ($v1 -> $v2), same messages" \
	eval "[ '$v1' != '$v2' ] && [ \$(imap_count Support) = 3 ]"
run_ok "UIDVALIDITY: run after the change exits 0" uidv-2 -c "$T/uidv.conf" --once
check "UIDVALIDITY: nothing processed again" archive_matches "$T/archive-uidv"
check "UIDVALIDITY: the change is logged" err_has "UIDVALIDITY.*$v1.*$v2|UIDVALIDITY.*(changed|change)"
env_seed_folder Support 1 --seed uidv --offset 5
run_ok "UIDVALIDITY: new mail after the change exits 0" uidv-3 -c "$T/uidv.conf" --once
check "UIDVALIDITY: the new message archived, the old ones not again" archive_matches "$T/archive-uidv"
# INBOX's index rebuilt (Dovecot's uidlist and index removed, as a restore
# does): a new UIDVALIDITY for the same UIDs.
v1=$(imapc status INBOX | cut -d' ' -f1)
sleep 1 # Dovecot's new UIDVALIDITY is the time in seconds
rm -f "$MD/dovecot-uidlist" "$MD"/dovecot.index*
v2=$(imapc status INBOX | cut -d' ' -f1)
check "UIDVALIDITY: INBOX rebuilt with a new UIDVALIDITY ($v1 -> $v2)" test "$v1" != "$v2"
run_ok "UIDVALIDITY: run after INBOX's rebuild exits 0" uidv-4 -c "$T/uidv.conf" --once
check "UIDVALIDITY: INBOX's messages not processed again" archive_matches "$T/archive-uidv"

# ------------------------------------------------------------ one message in two folders
C_ACCOUNT_EXTRA='folders = [ "INBOX", "Copies" ]; after = "keep";' iconf dup
env_seed 3 --seed dup
"$PY" "$MM_LIB/seed.py" "$MD/.Copies" 3 --seed dup \
	--owner "$MAILENV_MAIL_UID:$MAILENV_MAIL_GID" >/dev/null
chown -R "$MAILENV_MAIL_UID:$MAILENV_MAIL_GID" "$MD/.Copies" 2>/dev/null
run_ok "two folders, same messages: exit 0" dup -c "$T/dup.conf" --once
check "two folders, same messages: each archived once" archive_matches "$T/archive-dup"
run_ok "two folders: second run exits 0" dup-2 -c "$T/dup.conf" --once
check "two folders: second run archives nothing" archive_matches "$T/archive-dup"

# ------------------------------------------------------------ quarantine, --release with an IMAP key
C_ACCOUNT_EXTRA='max_attempts = 1;' C_STAGES="      { plugin = \"$V\"; verdict = \"fail\"; }" iconf quar
mv "$T/quar.conf" "$T/quar-fail.conf"
iconf quar
env_seed 1 --seed quar
mm quar-1 -c "$T/quar-fail.conf" --once
rc_is "quarantine: the failing run exits 75" 75
key=$(sqlite3 "$T/state-quar/mailmill.db" "SELECT uid FROM ledger WHERE state = 4")
check "quarantine: its key is FOLDER;UIDVALIDITY=V/;UID=N ($key)" \
	eval "[[ '$key' =~ ^INBOX\\;UIDVALIDITY=[0-9]+/\\;UID=[0-9]+\$ ]]"
is "quarantine: the message stays on the server" "$(imap_count INBOX)" 1
mm quar-rel -c "$T/quar.conf" --release acct "$key"
rc_is "--release with the IMAP key: exit 0" 0
run_ok "after --release: the next run exits 0" quar-2 -c "$T/quar.conf" --once
check "after --release: the message is archived" archive_matches "$T/archive-quar"
is "after --release: removed from the server" "$(imap_count INBOX)" 0

# ------------------------------------------------------------ --dry-run
C_ACCOUNT_EXTRA='after = "move"; move_to = "Done";' iconf dry
env_seed 3 --seed dry
before=$(imapc state)
mm dry -c "$T/dry.conf" --once --dry-run
rc_is "--dry-run: exit 0" 0
is "--dry-run: the server unchanged (no flag, no move, no folder made)" "$(imapc state)" "$before"
check "--dry-run: Done not created" eval '! imapc folders | grep -qx Done'
is "--dry-run: no archive file, no journal row" \
	"$(archive_count "$T/archive-dry") $(ledger_rows "$T/state-dry" acct)" "0 0"

# ------------------------------------------------------------ --check-login
C_TLS=tls C_PORT=$IMAPS_PORT C_ACCOUNT_EXTRA='folders = [ "INBOX", "Support" ];' iconf chk
env_seed 2 --seed chk
env_seed_folder Support 1 --seed chk --offset 2
before=$(imapc state)
mm chk -c "$T/chk.conf" --check-login
rc_is "--check-login: exit 0" 0
check "--check-login: the certificate's subject" \
	grep -Eq 'certificate subject .*CN *= *localhost' "$MM_OUT"
check "--check-login: the server's capabilities" grep -qi 'CAPABILITY: .*IMAP4rev1.*UIDPLUS' "$MM_OUT"
check "--check-login: each folder with its message count" \
	eval "grep -Eq 'INBOX.* 2 message' '$MM_OUT' && grep -Eq 'Support.* 1 message' '$MM_OUT'"
is "--check-login: the server unchanged" "$(imapc state)" "$before"
C_TLS=tls C_PORT=$IMAPS_PORT C_ACCOUNT_EXTRA='folders = [ "INBOX", "Nope" ];' iconf chk
mm chk-nope -c "$T/chk.conf" --check-login
rc_is "--check-login with a folder the server lacks: exit 75" 75
check "--check-login with a folder the server lacks: says which" grep -q 'Nope: cannot be opened' "$MM_OUT"
C_PASS=Zq9-not-the-pass C_TLS=tls C_PORT=$IMAPS_PORT iconf chk
mm chk-bad -c "$T/chk.conf" --check-login
rc_is "--check-login with a wrong password: exit 75" 75
check "--check-login with a wrong password: says the login failed" err_has '[Aa]uthentication|[Ll]ogin'
check "--check-login with a wrong password: the password is not in the output" \
	eval "! grep -q Zq9-not-the-pass '$MM_OUT' '$MM_ERR'"

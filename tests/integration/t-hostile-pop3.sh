#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# Hostile POP3 servers (tests/lib/badserver.py), one scenario per case: each
# must end with the right exit status, no crash or sanitizer report, a clear
# log line, nothing deleted on the server that should not be, and within the
# configured deadlines (timeouts of 2s here) plus slack.  At the end, a real
# Dovecot serves the one fault it can: a 1.1 MB header line.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/hostile.sh"
need dovecot python3 sqlite3 openssl
hostile_setup
CASES=47
plan $((CASES * 4 + 15))
make_msgs 3
ALL=uid-1,uid-2,uid-3
LONG=$(head -c 20000 /dev/zero | tr '\0' A)

# ---- baseline: the server behaves
hcase baseline 0 'run finished.*3 deleted' $ALL '{}'

# ---- greeting
hcase greet-err 75 'cannot connect.*-ERR' '' '{"rules":[{"match":"@greeting","reply":"-ERR go away\r\n"}]}'
hcase greet-long 75 'cannot connect.*(long|line)' '' "{\"rules\":[{\"match\":\"@greeting\",\"reply\":\"+OK $LONG\r\n\"}]}"
hcase greet-nocrlf 75 'cannot connect.*(time|dead)' '' '{"rules":[{"match":"@greeting","reply":"+OK hello","then":"hang"}]}'
hcase greet-stall 75 'cannot connect.*(time|dead)' '' '{"rules":[{"match":"@greeting","then":"hang"}]}'
hcase greet-drip 75 'cannot connect.*(time|dead)' '' '{"rules":[{"match":"@greeting","reply":"+OK a very slowly dripping greeting line\r\n","chunk":1,"gap":0.3}]}'
hcase greet-garbage 75 'cannot connect' '' '{"rules":[{"match":"@greeting","reply":"\u0000\u00ff\u0001garbage\r\n"}]}'
hcase greet-close 75 'cannot connect' '' '{"rules":[{"match":"@greeting","reply":"","then":"close"}]}'
hcase greet-reset 75 'cannot connect' '' '{"rules":[{"match":"@greeting","reply":"+OK","then":"reset"}]}'

# ---- login
hcase pass-inuse 75 'authentication failed.*IN-USE.*temporary' '' '{"rules":[{"match":"^(PASS|AUTH)","reply":"-ERR [IN-USE] locked by another session\r\n"}]}'
hcase pass-delay 75 'authentication failed.*LOGIN-DELAY.*temporary' '' '{"rules":[{"match":"^(PASS|AUTH)","reply":"-ERR [LOGIN-DELAY] wait 5 minutes\r\n"}]}'
hcase pass-wrong 75 'authentication failed' '' '{"pass":"other"}'

# ---- listings: a bad line costs only its message (issue 14), message 1
# is bad in each way and the others are archived and deleted in the first run.
L23='2 150\r\n3 150\r\n.\r\n'
U23='2 uid-2\r\n3 uid-3\r\n.\r\n'
hcase list-long 0 'message 1: LIST gave no valid size' $ALL "{\"rules\":[{\"match\":\"^LIST$\",\"reply\":\"+OK\r\n1 $LONG\r\n$L23\"}]}"
hcase list-nodot 75 'listing failed.*(time|dead)' '' '{"rules":[{"match":"^LIST$","reply":"+OK\r\n1 100\r\n","then":"hang"}]}'
hcase list-overflow 0 'message 1: LIST gave no valid size' $ALL "{\"rules\":[{\"match\":\"^LIST$\",\"reply\":\"+OK\r\n1 184467440737095516160000\r\n$L23\"}]}"
hcase list-negative 0 'message 1: LIST gave no valid size' $ALL "{\"rules\":[{\"match\":\"^LIST$\",\"reply\":\"+OK\r\n1 -5\r\n$L23\"}]}"
hcase list-dupno 0 'message 1: LIST gave no valid size' $ALL "{\"rules\":[{\"match\":\"^LIST$\",\"reply\":\"+OK\r\n1 10\r\n1 10\r\n$L23\"}]}"
hcase list-nosize 0 'message 1: LIST gave no valid size' $ALL "{\"rules\":[{\"match\":\"^LIST$\",\"reply\":\"+OK\r\n1\r\n$L23\"}]}"
hcase list-nomsgno 0 'LIST: 1 line.*left out' uid-2,uid-3 "{\"rules\":[{\"match\":\"^LIST$\",\"reply\":\"+OK\r\nx 10\r\n$L23\"}]}"
hcase uidl-nouid 75 'message 1 skipped.*invalid UID' uid-2,uid-3 "{\"rules\":[{\"match\":\"^UIDL$\",\"reply\":\"+OK\r\n1\r\n$U23\"}]}"
hcase uidl-empty 75 'message 1 skipped.*invalid UID' uid-2,uid-3 "{\"rules\":[{\"match\":\"^UIDL$\",\"reply\":\"+OK\r\n1 \r\n$U23\"}]}"
hcase uidl-twice 75 'message 1 skipped.*invalid UID' uid-2,uid-3 "{\"rules\":[{\"match\":\"^UIDL$\",\"reply\":\"+OK\r\n1 uid-1\r\n1 other\r\n$U23\"}]}"
hcase uidl-long 75 'message 1 skipped.*invalid UID' uid-2,uid-3 "{\"rules\":[{\"match\":\"^UIDL$\",\"reply\":\"+OK\r\n1 $LONG\r\n$U23\"}]}"
hcase uidl-garbage 75 'UIDL: 1 line.*left out' uid-2,uid-3 "{\"rules\":[{\"match\":\"^UIDL$\",\"reply\":\"+OK\r\n? uid-1\r\n$U23\"}]}"
# LIST sizes are advisory: a lie in either direction does not lose mail.
hcase size-lie-small 0 'run finished' $ALL '{"sizes":[1,1,1]}'
hcase size-lie-big 0 'over max_size' 'uid-2,uid-3' '{"sizes":[999999999,100,100]}'
hcase uidl-invalid 75 'message 2 skipped.*invalid UID' 'uid-1,uid-3' '{"uids":["uid-1","bad\u0001uid","uid-3"]}'
hcase uidl-toolong 75 'message 2 skipped.*invalid UID' 'uid-1,uid-3' "{\"uids\":[\"uid-1\",\"$(printf 'x%.0s' $(seq 71))\",\"uid-3\"]}"
hcase uidl-dup 75 'skipped.*duplicate UID' 'uid-2' '{"uids":["same","uid-2","same"]}'
hcase uidl-path 0 'run finished' '../../etc/passwd,uid-2,uid-3' '{"uids":["../../etc/passwd","uid-2","uid-3"]}'

# ---- RETR: closed, reset, stalled, dripping at any point; nothing is
# deleted in a session that did not reach QUIT.
hcase retr-close-status 75 'fetching failed' '' '{"rules":[{"match":"^RETR 2$","reply":"+OK","then":"close"}]}'
hcase retr-close-body 75 'fetching failed' '' '{"rules":[{"match":"^RETR 2$","truncate":60,"then":"close"}]}'
hcase retr-nodot 75 'fetching failed' '' '{"rules":[{"match":"^RETR 3$","reply":"+OK\r\nSubject: x\r\n\r\nno dot\r\n","then":"close"}]}'
hcase retr-reset 75 'fetching failed' '' '{"rules":[{"match":"^RETR 1$","truncate":30,"then":"reset"}]}'
hcase retr-stall 75 'fetching failed.*(time|dead)' '' '{"rules":[{"match":"^RETR 2$","truncate":50,"then":"hang"}]}'
hcase retr-drip 75 'fetching failed.*(time|dead)' '' '{"rules":[{"match":"^RETR 1$","chunk":1,"gap":0.05}]}'
# A 1.1 MB header line in message 1 (net reads lines of 1 MiB at most): read
# in pieces, archived byte for byte with the others, all deleted in one run.
{ printf 'Subject: x\nX-Long: '; head -c 1100000 /dev/zero | tr '\0' B; printf '\n\nbody\n'; } >"$T/longline.eml"
C_ARCHIVE=$T/archive-retr-longline hcase retr-longline 0 'run finished.*3 deleted' $ALL \
	"{\"messages\":[{\"file\":\"$T/longline.eml\"},{\"file\":\"$T/msgs/m2.eml\"},{\"file\":\"$T/msgs/m3.eml\"}]}" 20
check "retr-longline: archived byte for byte" archive_has "$T/archive-retr-longline" "$T/longline.eml" "$T"/msgs/m[23].eml
# Message 1 over max_size though LIST says 1 byte: read and dropped, counted
# toward its quarantine; the run goes on with the others.
{ cat "$T/msgs/m1.eml"; head -c 3000 /dev/zero | tr '\0' C; echo; } >"$T/big1.eml"
HC_ACCOUNT_EXTRA='max_size = "2k";' hcase retr-toobig 75 'message 1 is larger than 2048 bytes' uid-2,uid-3 \
	"{\"sizes\":[1,1,1],\"messages\":[{\"file\":\"$T/big1.eml\"},{\"file\":\"$T/msgs/m2.eml\"},{\"file\":\"$T/msgs/m3.eml\"}]}"
is "retr-toobig: one attempt counted against uid-1" "$(ledger_rows "$T/state-retr-toobig" acct "uid = 'uid-1' AND attempts = 1")" 1
hcase retr-err-first 75 'RETR 1 refused' uid-2,uid-3 '{"rules":[{"match":"^RETR 1$","reply":"-ERR [SYS/PERM] cannot read\r\n"}]}'
is "retr-err-first: one attempt counted against uid-1" "$(ledger_rows "$T/state-retr-err-first" acct "uid = 'uid-1' AND attempts = 1")" 1
hcase retr-err 75 'RETR 2 refused' 'uid-1,uid-3' '{"rules":[{"match":"^RETR 2$","reply":"-ERR [SYS/TEMP] try later\r\n"}]}'
hcase retr-garbage 75 'fetching failed' '' '{"rules":[{"match":"^RETR 2$","reply":"HELLO\r\n"}]}'

# ---- DELE and QUIT
hcase dele-err 75 'DELE 2 refused' 'uid-1,uid-3' '{"rules":[{"match":"^DELE 2$","reply":"-ERR [SYS/PERM] no\r\n"}]}'
hcase dele-close 75 'deleting failed' '' '{"rules":[{"match":"^DELE 2$","reply":"","then":"close"}]}'
# More than one batch (4096): the first batch's DELEs go out while the second
# is fetched; a refused one is left, a connection lost there deletes nothing.
MANY=$(seq -f 'uid-%g' 1 4200 | grep -vx uid-2 | paste -sd, -)
HC_WANT_LABEL="all 4200 but uid-2" hcase dele-err-pipelined 75 'DELE 2 refused' "$MANY" '{"repeat":1400,"rules":[{"match":"^DELE 2$","reply":"-ERR [SYS/PERM] no\r\n"}]}' 30
hcase dele-close-pipelined 75 'fetching failed' '' '{"repeat":1400,"rules":[{"match":"^DELE 2$","reply":"","then":"close"}]}' 30
hcase quit-err 75 'QUIT failed' '' '{"rules":[{"match":"^QUIT","reply":"-ERR [SYS/TEMP] could not commit\r\n"}]}'
hcase quit-lost 75 'QUIT failed' $ALL '{"rules":[{"match":"^QUIT","reply":"","then":"close","commit":true}]}'

# ---- after a QUIT lost its reply, the next run processes nothing again
# (the server did delete) and a run after one whose QUIT was refused deletes
# without fetching again.
bs_start quit-refused-rerun '{"rules":[{"match":"^QUIT","session":1,"reply":"-ERR no\r\n"}]}'
hconf quit-refused-rerun
mm qr1 -c "$T/quit-refused-rerun.conf" --once
# The bookkeeping written while QUIT was pending is rolled back: the rows
# still say "to delete", none "deleted".
is "quit refused: no row marked deleted, all still to delete" \
	"$(ledger_rows "$T/state-quit-refused-rerun" acct 'state = 3') $(ledger_rows "$T/state-quit-refused-rerun" acct 'state = 1')" "0 3"
mm qr2 -c "$T/quit-refused-rerun.conf" --once
bs_stop
rc_is "quit refused, rerun: second run exits 0" 0
is "quit refused, rerun: all deleted by the second run" "$(bs_deleted)" $ALL
check "quit refused, rerun: archived once, byte for byte" archive_has "$T/archive-quit-refused-rerun" "$T"/msgs/m*.eml
if grep -q 'RETR' <("$PY" -c 'import json,sys; print("\n".join(c for c in json.load(open(sys.argv[1]))["commands"] if c.startswith("2:")))' "$BS_REPORT"); then
	not_ok "quit refused, rerun: the second run fetched nothing again"
else
	ok "quit refused, rerun: the second run fetched nothing again"
fi

# ---- a message the server refuses every time is quarantined after
# max_attempts runs, then no longer fetched; the others went in the first run.
bs_start retr-err-quarantine '{"rules":[{"match":"^RETR 1$","reply":"-ERR [SYS/PERM] unreadable\r\n"}]}'
HC_ACCOUNT_EXTRA='max_attempts = 2;' hconf retr-err-quarantine
mm rq1 -c "$T/retr-err-quarantine.conf" --once
is "retr-err quarantine: the first run deletes messages 2 and 3" "$(bs_deleted)" uid-2,uid-3
mm rq2 -c "$T/retr-err-quarantine.conf" --once
check "retr-err quarantine: the second run quarantines uid-1" err_has 'uid uid-1: QUARANTINED after 2 failed attempts'
mm rq3 -c "$T/retr-err-quarantine.conf" --once
bs_stop
is "retr-err quarantine: uid-1 quarantined in the journal, still on the server" \
	"$(ledger_rows "$T/state-retr-err-quarantine" acct "uid = 'uid-1' AND state = 4") $(bs_remaining)" "1 uid-1"
if "$PY" -c 'import json,sys; c=json.load(open(sys.argv[1]))["commands"]; sys.exit(0 if any(x == "3: RETR 1" for x in c) else 1)' "$BS_REPORT"; then
	not_ok "retr-err quarantine: the third run does not fetch it again"
else
	ok "retr-err quarantine: the third run does not fetch it again"
fi

# ---- the same 1.1 MB header line from a real Dovecot: message 1 (the
# Maildir's first file) has it, message 2 is plain; both archived byte for
# byte and deleted in the first run.
env_start dovecot
mkdir -p "$EXPECTED"
{ printf 'From: a@example.org\nSubject: long\nX-Long: '; head -c 1100000 /dev/zero | tr '\0' D; printf '\n\nbody\n'; } >"$EXPECTED/1000000001.M1P1.long"
printf 'From: b@example.org\nSubject: good\n\nbody 2\n' >"$EXPECTED/1000000002.M2P2.good"
for f in "$EXPECTED"/*; do
	cp "$f" "$MD/new/"
	chown "$MAILENV_MAIL_UID:$MAILENV_MAIL_GID" "$MD/new/$(basename "$f")" 2>/dev/null || true
done
C_HOST=127.0.0.1 C_PORT=$POP3_PORT C_ARCHIVE=$T/archive-dovecot C_STATE=$T/state-dovecot \
	write_conf "$T/dovecot.conf"
mm dovecot-longline -c "$T/dovecot.conf" --once
rc_is "dovecot, 1.1 MB header line in message 1: --once exits 0" 0
check "dovecot, 1.1 MB header line: both archived byte for byte" archive_matches "$T/archive-dovecot"
is "dovecot, 1.1 MB header line: server mailbox empty after the first run" "$(env_count)" 0

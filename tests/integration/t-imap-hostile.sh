#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# Hostile IMAP servers (tests/lib/badserver.py in its IMAP mode,
# tests/lib/badimap.py), one scenario per case: the right exit status, no
# crash or sanitizer report, a clear log line, exactly the right messages
# removed from INBOX, within the configured deadlines (2s) plus slack.  The
# cases that cut a run short are followed by a second run against the same
# server, which must finish the work with every message archived once.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/hostile.sh"
need python3 sqlite3 openssl
hostile_setup
CASES=18
plan $((CASES * 4 + 32))
make_msgs 3
C_PROTOCOL=imap
ALL=1,2,3
M="$T/msgs/m1.eml $T/msgs/m2.eml $T/msgs/m3.eml"

C=$T/certs
if ! sh "$MM_SRCDIR/tests/data/tls/mkcerts.sh" "$C" >"$T/mkcerts.log" 2>&1; then
	show "$T/mkcerts.log"
	echo "Bail out! cannot make test certificates"
	exit 1
fi

# bs_report KEY: a field of the last badserver's report, as JSON.
bs_report() {
	"$PY" -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])).get(sys.argv[2])))' \
		"$BS_REPORT" "$1"
}
# archived NAME FILES...: one test, the archive of case NAME holds exactly FILES.
archived() {
	local name=$1
	shift
	# shellcheck disable=SC2086
	check "$name: archive holds each message once, byte for byte" archive_has "$T/archive-$name" "$@"
}
# safe_archive DIR REMAINING FILE...: DIR holds only messages among FILE...
# (byte for byte), none twice, and each FILE not in DIR is still on the
# server (its position, 1-based, is among the comma-separated UIDs REMAINING).
safe_archive() {
	local d=$1 rem=",$2," i=0 f h got bad=0
	shift 2
	got=$(hashes "$d")
	if [ "$(echo "$got" | sort | uniq -d)" != "" ]; then diag "a message archived twice"; bad=1; fi
	for h in $got; do
		sha256sum "$@" | cut -d' ' -f1 | grep -qx "$h" || { diag "archived, but not a message of the server: $h"; bad=1; }
	done
	for f in "$@"; do
		i=$((i + 1))
		h=$(sha256sum "$f" | cut -d' ' -f1)
		if ! echo "$got" | grep -qx "$h" && [[ $rem != *",$i,"* ]]; then
			diag "message $i is neither archived nor on the server: lost"
			bad=1
		fi
	done
	return $bad
}
# tcase NAME TLS RC REGEX DELETED JSON: hcase over TLS plus "no password before TLS".
tcase() {
	local name=$1 mode=$2 rc=$3 re=$4 want=$5 json=$6 sc
	sc=$("$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(mode="imap", tls=sys.argv[2], cert=sys.argv[3]+".crt", key=sys.argv[3]+".key"); print(json.dumps(d))' \
		"$json" "$mode" "$C/good")
	C_CA=$C/ca.crt C_TLS=$([ "$mode" = implicit ] && echo tls || echo starttls) \
		hcase "$name" "$rc" "$re" "$want" "$sc"
	is "$name: no password before TLS" "$(bs_secret_before_tls)" False
}
# rerun NAME: a second run of case NAME against a new server session (the
# rules name session 1), which must finish: exit 0, all removed, each
# message archived once.  The server is started again with the same
# scenario, its state taken over from the first one's report.
rerun() {
	local name=$1
	bs_start "$name-2" "$(cat "$T/bs-$name/scenario.json" | "$PY" -c '
import json, sys
sc = json.load(sys.stdin)
rep = json.load(open(sys.argv[1]))
keep = [int(u) for u in rep["remaining"]]
sc["imap_uids"] = keep
sc["messages"] = [m for i, m in enumerate(sc["messages"]) if i + 1 in keep]
sc["rules"] = []
print(json.dumps(sc))' "$T/bs-$name/report.json")"
	cp "$T/bs-$name/report.json" "$T/bs-$name/report-1.json"
	C_STATE=$T/state-$name C_ARCHIVE=$T/archive-$name hconf "$name-2"
	mm "$name-2" -c "$T/$name-2.conf" --once
	bs_stop
	if [ "$MM_RC" = 0 ] && no_crash; then
		ok "$name: the next run exits 0"
	else
		not_ok "$name: the next run exits 0"; diag "exit status $MM_RC"; show "$MM_ERR" 15
	fi
	local before
	before=$("$PY" -c 'import json,sys; print(",".join(json.load(open(sys.argv[1]))["deleted"]))' \
		"$T/bs-$name/report-1.json")
	local later
	later=$(bs_deleted)
	is "$name: the next run removes the rest" "$before${before:+${later:+,}}$later" "$ALL"
}

# ---- baseline
hcase baseline 0 'run finished' $ALL '{"mode":"imap"}'
archived baseline $M
is "baseline: never a bare EXPUNGE or CLOSE" "$(bs_report bare_expunge)" 0

# ---- literals
# A literal size no machine has: refused before anything is read; the
# message neither archived nor removed.
hcase literal-huge 75 '(literal|too (big|large)|size|max_size)' '' \
	'{"mode":"imap","rules":[{"match":"^UID FETCH.*BODY","reply":"* 1 FETCH (UID 1 BODY[] {18446744073709551617}\r\n","then":"hang"}]}'
# A literal of 900 MB announced, over max_size, that never comes: nothing is
# allocated for it, the command's deadline ends the wait.
HC_ACCOUNT_EXTRA='max_size = "100K";' \
	hcase literal-over-max 75 '(literal|too (big|large)|max_size|timed out)' '' \
	'{"mode":"imap","rules":[{"match":"^UID FETCH.*BODY","reply":"* 1 FETCH (UID 1 BODY[] {900000000}\r\n","then":"hang"}]}'
is "literal-over-max: nothing archived" "$(archive_count "$T/archive-literal-over-max")" 0
# A message over max_size under a lying RFC822.SIZE, sent in full: read to
# its end and dropped (an attempt counted, it stays); the others archived
# and removed in the same run.
head -c 300000 /dev/zero | tr '\0' x | fold -w 76 >"$T/big.body"
{ printf 'From: big@example.org\nSubject: big\nMessage-ID: <big@example.org>\n\n'; cat "$T/big.body"; } >"$T/msgs/big.eml"
BS_MSGS_SAVED=$BS_MSGS
BS_MSGS="[{\"file\": \"$T/msgs/big.eml\"},${BS_MSGS#[}"
HC_ACCOUNT_EXTRA='max_size = "100K";' \
	hcase literal-big-lie 75 '(max_size|too (big|large)|larger)' 2,3,4 '{"mode":"imap","sizes":[100,100,100,100]}'
BS_MSGS=$BS_MSGS_SAVED
is "literal-big-lie: the big message stays, not archived" \
	"$(bs_remaining) $(archive_count "$T/archive-literal-big-lie")" "1 3"
# The connection dropped inside a literal: nothing half-archived; the next
# run archives everything once.
hcase literal-cut 75 '(closed|connection|EOF|end of|dead|lost)' '' \
	'{"mode":"imap","rules":[{"match":"^UID FETCH.*BODY","session":1,"reply":"* 1 FETCH (UID 1 BODY[] {500}\r\nFrom: a1@example.org\r\nSubj","then":"close"}]}'
is "literal-cut: nothing archived" "$(archive_count "$T/archive-literal-cut")" 0
rerun literal-cut
archived literal-cut $M

# ---- untagged responses in odd places: harmless, the run succeeds.
hcase untagged-odd 0 'run finished' $ALL '{"mode":"imap","rules":[
 {"match":"^LOGIN|^AUTHENTICATE","append":"* 4 EXISTS\r\n* OK [ALERT] maintenance at noon\r\n"},
 {"match":"^SELECT","prepend":"* 7 FETCH (FLAGS (\\Seen))\r\n* CAPABILITY IMAP4rev1 UIDPLUS MOVE\r\n"},
 {"match":"^UID FETCH 1:","prepend":"* 1 RECENT\r\n* OK still here\r\n"},
 {"match":"^UID FETCH.*BODY","prepend":"* 1 FETCH (FLAGS (\\Seen \\Recent))\r\n* 3 EXISTS\r\n"}]}'
archived untagged-odd $M
# An unsolicited FETCH carrying a body that is not the one asked for, for a
# UID whose fetch is in flight (so it looks like an early answer); the real
# body follows in its turn.  Whatever the run makes of it (an error, or the
# right body), nothing wrong may be archived, and a message not archived
# right must stay on the server; a second run finishes the work.
bs_start untagged-body '{"mode":"imap","rules":[
 {"match":"^UID FETCH.*BODY","session":1,"nth":1,"prepend":"* 2 FETCH (UID 2 BODY[] {12}\r\nnot the mail)\r\n"}]}'
hconf untagged-body
mm untagged-body -c "$T/untagged-body.conf" --once
bs_stop
check "untagged-body: no crash" no_crash
# proto/imap hands nothing of a command over before its tagged answer, and
# refuses a second body for one UID: the run fails before processing any of
# them and a later run gets the real ones.
check "untagged-body: only real messages archived, none twice; any other still on the server" \
	safe_archive "$T/archive-untagged-body" "$(bs_remaining)" $M
rerun untagged-body
check "untagged-body: archive holds each message once, byte for byte" \
	archive_has "$T/archive-untagged-body" $M
# A tagged reply with a tag never sent.
hcase tag-unknown 75 '(tag|unexpected|protocol)' '' \
	'{"mode":"imap","rules":[{"match":"^SELECT","reply":"ZZZ9 OK done\r\n","then":"hang"}]}'

# ---- the server says BYE mid-session
hcase bye-fetch 75 'BYE' '' \
	'{"mode":"imap","rules":[{"match":"^UID FETCH.*BODY","session":1,"reply":"* BYE server shutting down\r\n","then":"close"}]}'
rerun bye-fetch
archived bye-fetch $M
# BYE when the effect is due (the verdicts are committed): the next run
# removes the messages without processing them again.
hcase bye-effect 75 'BYE' '' \
	'{"mode":"imap","rules":[{"match":"^UID (STORE|MOVE|EXPUNGE)","session":1,"reply":"* BYE server shutting down\r\n","then":"close"}]}'
archived bye-effect $M
rerun bye-effect
archived bye-effect $M

# ---- another client expunges a message while it is fetched, or before its
# effect: not an error, nothing archived twice, the others removed.  The
# bodies come with one UID FETCH of a set, so the message goes between the
# listing and that fetch (badimap composes a reply before its vanish).
hcase vanish-fetch 0 'run finished' 1,3 \
	'{"mode":"imap","rules":[{"match":"^UID FETCH.*RFC822.SIZE","nth":1,"vanish":[2]}]}'
is "vanish-fetch: the message gone is not archived" \
	"$(archive_count "$T/archive-vanish-fetch")" 2
hcase vanish-effect 0 'run finished' 1,3 \
	'{"mode":"imap","rules":[{"match":"^UID (STORE|MOVE)","nth":1,"vanish":[2]}]}'
archived vanish-effect $M

# ---- capabilities: MOVE missing (COPY, \Deleted, UID EXPUNGE), UIDPLUS
# missing (no UID EXPUNGE: never a bare EXPUNGE instead).
HC_ACCOUNT_EXTRA='after = "move"; move_to = "Done";' \
	hcase no-move 0 'run finished' $ALL '{"mode":"imap","capability":["IMAP4rev1","AUTH=PLAIN","UIDPLUS"]}'
is "no-move: the messages are in Done" "$(bs_report folders)" '{"Done": ["1", "2", "3"]}'
is "no-move: never a bare EXPUNGE" "$(bs_report bare_expunge)" 0
# Without UIDPLUS: \Deleted only, a warning, never a bare EXPUNGE or CLOSE.
hcase no-uidplus 0 'no UIDPLUS.*bare EXPUNGE' '' '{"mode":"imap","capability":["IMAP4rev1","AUTH=PLAIN"]}'
is "no-uidplus: never a bare EXPUNGE or CLOSE" "$(bs_report bare_expunge)" 0
is "no-uidplus: each processed message flagged \\Deleted" "$(bs_report flags)" \
	'{"1": ["\\Deleted"], "2": ["\\Deleted"], "3": ["\\Deleted"]}'

# ---- STARTTLS: missing, refused, injected, over implicit TLS.
tcase stls-ok starttls 0 'run finished' $ALL '{}'
tcase imaps-ok implicit 0 'run finished' $ALL '{}'
tcase stls-missing starttls 75 'STARTTLS' '' '{"capability":["IMAP4rev1","AUTH=PLAIN","UIDPLUS"]}'
tcase stls-refused starttls 75 'STARTTLS' '' '{"rules":[{"match":"^STARTTLS","reply":"{tag} NO TLS unavailable\r\n"}]}'
tcase stls-inject starttls 75 '(inject|handshake)' '' '{"rules":[{"match":"^STARTTLS","append":"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN LOGINDISABLED] injected\r\n"}]}'

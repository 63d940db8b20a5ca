#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# The filter plugin end to end.  Each message is made to be caught by one
# rule, and the journal says which stage decided it and how; the log names
# the rule.  Covered: RFC 2047 B and Q encoded headers, header names in any
# case, sender domain lists (".domain" subdomains, "@domain" exactly),
# recipient lists, size, attachments, body text in base64 and in
# quoted-printable ISO-8859-1, a header added by one stage and seen by a later
# one (the archive still gets the original bytes), jumps forward to a named
# stage, and configuration errors with file:line (bad regex, unknown stage,
# backward jump, no condition, two actions).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
need dovecot python3 sqlite3 openssl
mm_setup
plan 26

env_start srv
M=$T/msgs
mkdir -p "$M"

# mkmsg NAME FROM TO [header lines...] < body: the body comes from stdin.
mkmsg() {
	local name=$1 from=$2 to=$3 h
	shift 3
	{
		echo "Return-Path: <$from>"
		echo "From: <$from>"
		echo "To: <$to>"
		echo "Message-ID: <$name@test.example>"
		echo "Date: Mon, 01 Jan 2024 10:00:00 +0000"
		for h in "$@"; do echo "$h"; done
		grep -qi '^Subject:' <<<"$(printf '%s\n' "$@")" || echo "Subject: $name"
		echo "MIME-Version: 1.0"
		cat
	} >"$M/$name.eml"
}
plain() { printf 'Content-Type: text/plain; charset=us-ascii\n\n%s\n' "$1"; }

# "Angebot für Sie" as a B word, "Größe XL" as a Q word.
plain "hello" | mkmsg bsubj a@one.example x@here.example \
	"Subject: =?UTF-8?B?$(printf 'Angebot für Sie' | base64 -w0)?="
plain "hello" | mkmsg qnote a@one.example x@here.example "X-NOTE: =?UTF-8?Q?Gr=C3=B6=C3=9Fe_XL?="
plain "hello" | mkmsg subspam a@mx.spam.example x@here.example
plain "hello" | mkmsg atbad a@bad.example x@here.example
plain "hello" | mkmsg near a@notbad.example x@here.example
plain "hello" | mkmsg apex a@spam.example x@here.example
plain "hello" | mkmsg sales a@one.example sales@example.org
{ printf 'Content-Type: text/plain\n\n'; head -c 60000 /dev/zero | tr '\0' 'x' | fold -w 70; } |
	mkmsg big a@one.example x@here.example
{
	printf 'Content-Type: multipart/mixed; boundary="b1"\n\n--b1\n'
	printf 'Content-Type: text/plain\n\nsee attached\n--b1\n'
	printf 'Content-Type: application/octet-stream\nContent-Disposition: attachment; filename="x.bin"\n'
	printf 'Content-Transfer-Encoding: base64\n\n%s\n--b1--\n' "$(printf 'Geheimnis' | base64)"
} | mkmsg attach a@one.example x@here.example
{
	printf 'Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n'
	printf 'Das ist ein Geheimnis.\n' | base64
} | mkmsg b64body a@one.example x@here.example
printf 'Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nWir haben K=E4se=\n und Brot.\n' |
	mkmsg qpbody a@one.example x@here.example
env_seed_files "$M"/*.eml

cat >"$T/stages" <<EOF
      { plugin = "filter"; rules = (
          { name = "b-subject"; header = "subject"; match = "^Angebot für"; verdict = "keep"; },
          { name = "q-note"; header = "x-note"; match = "GRÖSSE|größe"; nocase = true; verdict = "keep"; },
          { name = "spamdom"; from = [ ".spam.example", "@bad.example" ]; goto = "junk"; },
          { name = "sales"; to = [ "sales@example.org" ]; add_header = "X-Class: sales"; },
          { name = "big"; size_over = 50000; verdict = "keep"; },
          { name = "att"; attachment = true; goto = "attach"; },
          { name = "b64"; body = "Geheimnis"; verdict = "keep"; },
          { name = "qp"; body = "Käse und Brot"; verdict = "keep"; }
        ); },
      { plugin = "filter"; name = "tagged"; rules = (
          { header = "X-Class"; match = "^sales\$"; goto = "main"; } ); },
      { plugin = "$TEST_PLUGIN_DIR/verdict.so"; name = "trap"; verdict = "defer"; },
      { plugin = "archive"; name = "junk"; path = "$T/junk"; },
      { plugin = "archive"; name = "attach"; path = "$T/attach"; },
      { plugin = "archive"; name = "main"; path = "$T/main"; }
EOF
C_STAGES=$(cat "$T/stages") write_conf "$T/f.conf"
mm run1 -c "$T/f.conf" --once -v
rc_is "run exits 75 (the trap deferred two messages)" 75

decided() { # MESSAGE-ID-STEM -> "stage verdict"
	sqlite3 "$T/state/mailmill.db" \
		"SELECT stage || ' ' || verdict FROM ledger WHERE message_id = '$1@test.example';"
}
rule_logged() { grep -q "<$1@test.example>" "$MM_ERR" && grep -Eq "filter: uid .*: rule \"$2\"" "$MM_ERR"; }

is "B-encoded Subject matched by its decoded text" "$(decided bsubj)" "filter keep"
is "Q-encoded header, name in another case, nocase regex" "$(decided qnote)" "filter keep"
check "the log names the rules" rule_logged bsubj b-subject
is ".spam.example catches a subdomain: jump to junk" "$(decided subspam)" "junk done"
is "@bad.example catches the domain itself" "$(decided atbad)" "junk done"
is "@bad.example does not catch notbad.example (deferred by the trap)" "$(decided near)" ""
is ".spam.example does not catch spam.example itself" "$(decided apex)" ""
is "header added by one stage seen by a later one: jump to main" "$(decided sales)" "main done"
check "the archive got the original bytes, without the added header" \
	cmp -s "$M/sales.eml" "$(find "$T/main" -type f \( -path '*/new/*' -o -path '*/cur/*' \) | head -n1)"
is "exactly one message in main" "$(archive_count "$T/main")" 1
is "size_over catches the big message" "$(decided big)" "filter keep"
is "attachment: jump to the attach stage" "$(decided attach)" "attach done"
is "text in a base64 body" "$(decided b64body)" "filter keep"
is "text in a quoted-printable ISO-8859-1 body (soft break, charset)" "$(decided qpbody)" "filter keep"
is "junk holds the two spam messages" "$(archive_count "$T/junk")" 2
is "deferred messages stay on the server (near, apex) plus the kept ones (5)" "$(env_count)" 7

# ---------------------------------------------------------------- errors
# bad_conf NAME RULE-BODY [EXTRA-STAGES]: one filter stage with that rule.
bad_conf() {
	C_STAGES="      { plugin = \"filter\"; rules = (
          $2 ); }${3:-}" write_conf "$T/$1.conf"
	mm "$1" -c "$T/$1.conf" --check-config
}
bad_conf badre '{ header = "Subject"; match = "(unclosed"; verdict = "done"; }'
rc_is "bad regular expression: exit 78" 78
check "bad regex reported with file:line" err_has "badre.conf:[0-9]+: .*bad regular expression"
bad_conf badbody '{ body = "a{2,1}"; verdict = "done"; }'
check "bad body regex: file:line" err_has "badbody.conf:[0-9]+: .*body.*bad regular expression"
bad_conf nostage '{ size_over = 1; goto = "nowhere"; }'
check "goto an unknown stage: exit 78 with file:line" \
	test "$MM_RC" = 78 -a -n "$(grep -E 'nostage.conf:[0-9]+: .*no stage of this pipeline has that name' "$MM_ERR")"
C_STAGES="      { plugin = \"archive\"; name = \"first\"; path = \"$T/x\"; },
      { plugin = \"filter\"; rules = ( { size_over = 1; goto = \"first\"; } ); }" write_conf "$T/back.conf"
mm back -c "$T/back.conf" --check-config
check "goto backwards: exit 78, refused" \
	test "$MM_RC" = 78 -a -n "$(grep -E 'back.conf:[0-9]+: .*does not come after' "$MM_ERR")"
bad_conf nocond '{ verdict = "done"; }'
check "a rule without a condition: file:line" err_has "nocond.conf:[0-9]+: .*no condition"
bad_conf twoact '{ size_over = 1; verdict = "done"; add_header = "X-A: b"; }'
check "two actions: file:line" err_has "twoact.conf:[0-9]+: .*exactly one action"
bad_conf baddom '{ from = [ "a@b@c" ]; verdict = "done"; }'
check "a bad address list element: file:line" err_has "baddom.conf:[0-9]+: .*from. element 1"
bad_conf good '{ header = "Subject"; match = "^x"; verdict = "done"; }'
rc_is "a valid filter passes --check-config" 0

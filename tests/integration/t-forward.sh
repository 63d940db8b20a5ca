#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# The forward plugin's bytes at a capturing SMTP server.  "attach": a new
# multipart/mixed message whose message/rfc822 part holds the original byte
# for byte (checked with Python's email module).  "redirect": 8-bit text and
# lines starting with "." arrive exactly as fetched (dot-stuffing undone by
# the server), and a line longer than RFC 5321's 998 octets is folded by the
# SMTP client with CRLF SPACE (proto/smtp_reply.c), so no line on the wire
# exceeds the limit, the message is accepted, and removing the folds gives
# the original back.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/smtp.sh"
need dovecot python3 aiosmtpd openssl
mm_setup
smtp_setup
plan 19

env_start srv --users "user1 user2"
M=$T/msgs
mkdir -p "$M"
long=$(head -c 2500 /dev/zero | tr '\0' 'L')
mkmsg() { # FILE SUBJECT [long]
	{
		printf '%s\n' "Return-Path: <zed@example.com>" "From: Zed <zed@example.com>" \
			"To: user@example.org" "Subject: $2" "Message-ID: <$2@example.com>" \
			"Content-Type: text/plain; charset=utf-8" "Content-Transfer-Encoding: 8bit" "" \
			"Line one." ".starts with a dot" "." "..two dots" \
			"8-bit: caf$(printf '\303\251') $(printf '\342\202\254')"
		[ -n "${3:-}" ] && echo "$long"
		echo "last line"
	} >"$1"
}
fwd_conf() { # FILE STATE MODE
	C_STATE=$2 C_TOP_EXTRA=$(smtp_conf_group starttls) \
	C_STAGES="      { plugin = \"forward\"; to = [ \"ok@example.net\" ]; mode = \"$3\";
        from = \"Fwd <fwd@example.org>\"; verdict = \"done\"; }" write_conf "$1"
}

# --- attach
smtp_start cap1 --tls
mkmsg "$M/a.eml" attach-one
env_seed_files "$M/a.eml"
fwd_conf "$T/a.conf" "$T/st-a" attach
mm attach -c "$T/a.conf" --once
rc_is "attach: run exits 0" 0
is "attach: one message at the server" "$(smtp_count)" 1
j=$(ls "$SMTP_OUT"/*.json | head -n1)
eml=${j%.json}.eml
check "attach: envelope sender is the forwarder" grep -q '"mail_from": "fwd@example.org"' "$j"
check "attach: to the configured address" grep -q '"rcpt_tos": \["ok@example.net"\]' "$j"
if "$PY" "$MM_LIB/rfc822_part.py" "$eml" "$T/part.eml" >"$T/part.out" 2>&1; then
	ok "attach: multipart/mixed with a note and a message/rfc822 part"
else
	not_ok "attach: multipart/mixed with a note and a message/rfc822 part"
	show "$T/part.out"
fi
check "attach: the inner message is the original (Python email)" \
	grep -q '^inner-message-id: <attach-one@example.com>' "$T/part.out"
check "attach: Subject Fwd: + the original's" grep -q '^outer-subject: Fwd: attach-one' "$T/part.out"
check "attach: the new message carries the loop marker" \
	grep -q '^outer-x-loop: mailmill forward fwd@example.org' "$T/part.out"
# The part ends where the CRLF of the closing delimiter begins: GMime puts
# that CRLF after the original's own last line end, so nothing is lost.
is "attach: the message/rfc822 part holds the original byte for byte" \
	"$(sha256sum <"$T/part.eml")" "$(sha256sum <"$M/a.eml")"
check "attach: 8BITMIME used for the 8-bit original" grep -q 'BODY=8BITMIME' "$j"

# --- redirect with 8-bit text, dot lines and a 2500-octet line
env_user user2
smtp_start cap2 --tls
mkmsg "$M/b.eml" redirect-long long
env_seed_files "$M/b.eml"
fwd_conf "$T/b.conf" "$T/st-b" redirect
mm redirect -c "$T/b.conf" --once
rc_is "redirect: run exits 0" 0
is "redirect: accepted (not refused for the long line)" "$(smtp_count)" 1
is "redirect: the row is sent" "$(outbox_rows "$T/st-b" "state = 1")" 1
j=$(ls "$SMTP_OUT"/*.json | head -n1)
eml=${j%.json}.eml
# awk counts characters; LC_ALL=C makes that octets
maxlen=$(LC_ALL=C awk '{ sub(/\r$/, ""); if (length($0) > m) m = length($0) } END { print m }' "$eml")
check "redirect: no line on the wire over 998 octets (longest $maxlen)" test "$maxlen" -le 998
check "redirect: the long line was folded with CRLF SPACE" \
	test "$(LC_ALL=C grep -c '^ L*'$'\r''$' "$eml")" = 2
# Undo the folds and the CRLF: the trace fields, then the original exactly.
"$PY" -c 'import sys; d=open(sys.argv[1],"rb").read().replace(b"\r\n ",b"").replace(b"\r\n",b"\n"); open(sys.argv[2],"wb").write(d)' \
	"$eml" "$T/unfolded.eml"
is "redirect: without the folds, the original bytes follow the Resent-* fields" \
	"$(sed -n '/^Return-Path:/,$p' "$T/unfolded.eml" | sha256sum)" "$(sha256sum <"$M/b.eml")"
check "redirect: lines starting with a dot arrive unstuffed" \
	grep -q $'^\\.\\.two dots\r$' "$eml"
check "redirect: 8-bit bytes unchanged" grep -q "caf$(printf '\303\251') $(printf '\342\202\254')" "$eml"
check "redirect: BODY=8BITMIME" grep -q 'BODY=8BITMIME' "$j"

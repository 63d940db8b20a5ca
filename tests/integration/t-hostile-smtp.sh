#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# Hostile SMTP servers (tests/lib/badserver.py in SMTP mode) against the SMTP
# client library, driven by tests/lib/smtpsend: 4xx and 5xx at every step
# (greeting, EHLO, STARTTLS, AUTH, MAIL, each RCPT, DATA, end of data), the
# connection closed, stalled or reset after the final dot (RFC 1047: the one window
# where the client cannot know; reported as "unknown"), over-long and
# malformed replies, slow drip.  Each: the right status, no crash, what the
# server really accepted, within the 2 s deadlines plus slack.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/hostile.sh"
need python3
hostile_setup
SMTPSEND=$MM_BUILDDIR/tests/lib/smtpsend
CASES=28
plan $((CASES * 4 + 3))
[ -x "$SMTPSEND" ] || { echo "Bail out! $SMTPSEND is not built"; exit 1; }

C=$T/certs
sh "$MM_SRCDIR/tests/data/tls/mkcerts.sh" "$C" >"$T/mkcerts.log" 2>&1 ||
	{ show "$T/mkcerts.log"; echo "Bail out! cannot make test certificates"; exit 1; }
printf 'From: a@example.org\nTo: b@example.org\nSubject: smtp hostile\n\nline\n.dot line\n' >"$T/msg"

accepted() {
	"$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["accepted"]))' "$BS_REPORT"
}

# smtp_status values (proto/smtp.h), the exit status of smtpsend.
declare -A CODE=([ok]=0 [temporary]=1 [permanent]=2 [io]=3 [unknown]=4 [protocol]=5 [tls]=6 [auth]=7)

# scase NAME STATUS ACCEPTED JSON [TLS] [RCPTS]: STATUS a key of CODE, or two
# joined by "|" when either is right.
scase() {
	local name=$1 want=$2 acc=$3 json=$4 tls=${5:-none} rcpts=${6:-b@example.org} t0 t1 out sc
	sc=$("$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); d["mode"]="smtp"; d["tls"]=sys.argv[2]
if d["tls"] != "none": d.update(cert=sys.argv[3]+"/good.crt", key=sys.argv[3]+"/good.key")
print(json.dumps(d))' "$json" "$tls" "$C")
	bs_start "$name" "$sc"
	t0=$(date +%s%N)
	MM_RC=0
	# shellcheck disable=SC2086
	SMTP_USER=${SMTP_USER_CASE:-} SMTP_PASS=pw timeout -k 2 30 "$SMTPSEND" 127.0.0.1 "$BS_PORT" \
		"$( [ "$tls" = none ] && echo none || echo "$tls")" "$C/ca.crt" "$T/msg" a@example.org \
		$rcpts >"$T/$name.out" 2>&1 || MM_RC=$?
	t1=$(date +%s%N)
	bs_stop
	MM_ERR=$T/$name.out
	local w good=0
	for w in ${want//|/ }; do [ "$MM_RC" = "${CODE[$w]}" ] && good=1; done
	if [ "$good" = 1 ] && no_crash; then
		ok "$name: $want, no crash"
	else
		not_ok "$name: $want, no crash"
		diag "exit $MM_RC"
		show "$T/$name.out"
	fi
	if grep -Eq "^status [A-Za-z ]+: SMTP: .+" "$T/$name.out" || [ "$want" = ok ]; then
		ok "$name: says why"
	else
		not_ok "$name: says why"
	fi
	is "$name: messages the server accepted" "$(accepted)" "$acc"
	if [ $(((t1 - t0) / 1000000)) -le 10000 ]; then
		ok "$name: finished in $(((t1 - t0) / 1000000))ms"
	else
		not_ok "$name: finished in $(((t1 - t0) / 1000000))ms (bound 10s)"
	fi
}

scase ok ok 1 '{}'
scase greet-421 temporary 0 '{"rules":[{"match":"@greeting","reply":"421 4.3.2 busy\r\n"}]}'
scase greet-554 permanent 0 '{"rules":[{"match":"@greeting","reply":"554 5.7.1 go away\r\n"}]}'
scase greet-stall io 0 '{"rules":[{"match":"@greeting","then":"hang"}]}'
scase greet-drip io 0 '{"rules":[{"match":"@greeting","reply":"220 a slowly dripping greeting line\r\n","chunk":1,"gap":0.3}]}'
scase ehlo-421 temporary 0 '{"rules":[{"match":"^EHLO","reply":"421 4.3.2 shutting down\r\n"}]}'
# A 5xx to EHLO: HELO, and the message goes through without extensions.
scase ehlo-500 ok 1 '{"rules":[{"match":"^EHLO","reply":"500 5.5.1 what\r\n"}]}'
# An over-long line is a connection failure (proto/net.c) rather than EPROTO.
scase ehlo-long 'protocol|io' 0 "{\"rules\":[{\"match\":\"^EHLO\",\"reply\":\"250 $(head -c 5000 /dev/zero | tr '\0' x)\r\n\"}]}"
scase ehlo-mixed protocol 0 '{"rules":[{"match":"^EHLO","reply":"250-badserver\r\n251 PIPELINING\r\n"}]}'
scase ehlo-manylines protocol 0 "{\"rules\":[{\"match\":\"^EHLO\",\"reply\":\"$(for i in $(seq 300); do printf '250-X%d\\r\\n' "$i"; done)250 end\r\n\"}]}"
scase ehlo-nul protocol 0 '{"rules":[{"match":"^EHLO","reply":"250 bad\u0000server\r\n"}]}'
scase starttls-missing tls 0 '{"ehlo":["PIPELINING"]}' starttls
scase starttls-454 tls 0 '{"rules":[{"match":"^STARTTLS","reply":"454 4.7.0 TLS not available\r\n"}]}' starttls
scase starttls-inject tls 0 '{"rules":[{"match":"^STARTTLS","append":"250 injected\r\n"}]}' starttls
scase starttls-stall tls 0 '{"rules":[{"match":"@tls","then":"hang"}]}' starttls
SMTP_USER_CASE=u scase auth-535 auth 0 '{"rules":[{"match":"^AUTH","reply":"535 5.7.8 bad credentials\r\n"}]}'
SMTP_USER_CASE=u scase auth-454 temporary 0 '{"rules":[{"match":"^AUTH","reply":"454 4.7.0 try later\r\n"}]}'
scase mail-451 temporary 0 '{"rules":[{"match":"^MAIL","reply":"451 4.3.0 later\r\n"}]}'
scase mail-550 permanent 0 '{"rules":[{"match":"^MAIL","reply":"550 5.7.1 no\r\n"}]}'
scase rcpt1-550 ok 1 '{"rules":[{"match":"^RCPT","nth":1,"reply":"550 5.1.1 no such user\r\n"}]}' none "b@example.org c@example.org"
scase rcpt2-450 ok 1 '{"rules":[{"match":"^RCPT","nth":2,"reply":"450 4.2.0 greylisted\r\n"}]}' none "b@example.org c@example.org"
scase rcpt-all-450 temporary 0 '{"rules":[{"match":"^RCPT","reply":"450 4.2.0 greylisted\r\n"}]}' none "b@example.org c@example.org"
scase data-554 permanent 0 '{"rules":[{"match":"^DATA","reply":"554 5.5.1 no valid recipients\r\n"}]}'
scase eom-451 temporary 0 '{"rules":[{"match":"@eom","reply":"451 4.3.0 queue full\r\n"}]}'
scase eom-552 permanent 0 '{"rules":[{"match":"@eom","reply":"552 5.3.4 too big\r\n"}]}'
# RFC 1047: taken by the server, but the client never hears so; "unknown".
scase eom-lost unknown 1 '{"rules":[{"match":"@eom","reply":"","then":"close","commit":true}]}'
scase eom-stall unknown 1 '{"rules":[{"match":"@eom","reply":"","then":"hang","commit":true}]}'
scase eom-reset unknown 1 '{"rules":[{"match":"@eom","reply":"","then":"reset","commit":true}]}'
# A RCPT's 250 is not delivery: after the dot each recipient is unknown too.
for name in eom-lost eom-stall eom-reset; do
	check "$name: the recipient is unknown, not sent" grep -q "^rcpt b@example.org: outcome unknown" "$T/$name.out"
done

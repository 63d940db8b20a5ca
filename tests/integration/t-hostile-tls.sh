#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# Hostile TLS (tests/lib/badserver.py): STLS missing, refused, stalled;
# plain text injected after the go-ahead; certificates self-signed, expired,
# for another host, from another CA; capabilities that change after TLS.
# In every refused case no password reaches the server in plain text and
# nothing is deleted.  Certificates are made here, for this run only.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/hostile.sh"
need python3 openssl
hostile_setup
CASES=17
plan $((CASES * 5 + 1))
make_msgs 2
ALL=uid-1,uid-2

C=$T/certs
if ! sh "$MM_SRCDIR/tests/data/tls/mkcerts.sh" "$C" >"$T/mkcerts.log" 2>&1; then
	show "$T/mkcerts.log"
	echo "Bail out! cannot make test certificates"
	exit 1
fi
# Another CA, and a certificate from it for the right names.
(
	cd "$C" &&
	openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj "/CN=other CA" \
		-keyout oca.key -out oca.crt -addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" &&
	openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=localhost" -keyout other.key -out other.csr &&
	printf '%s\n' "basicConstraints=CA:FALSE" "extendedKeyUsage=serverAuth" \
		"subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" >other.ext &&
	openssl x509 -req -sha256 -in other.csr -CA oca.crt -CAkey oca.key -CAcreateserial \
		-days 2 -extfile other.ext -out other.crt
) >>"$T/mkcerts.log" 2>&1 || { show "$T/mkcerts.log"; echo "Bail out! other CA"; exit 1; }
export C_CA=$C/ca.crt

# tcase NAME TLS CERT RC REGEX DELETED JSON: hcase plus "no secret before TLS".
tcase() {
	local name=$1 mode=$2 cert=$3 rc=$4 re=$5 want=$6 json=$7 sc
	sc=$("$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(tls=sys.argv[2], cert=sys.argv[3]+".crt", key=sys.argv[3]+".key"); print(json.dumps(d))' \
		"$json" "$mode" "$C/$cert")
	C_TLS=$( [ "$mode" = implicit ] && echo tls || echo starttls ) hcase "$name" "$rc" "$re" "$want" "$sc"
	is "$name: no password before TLS" "$(bs_secret_before_tls)" False
}

tcase stls-ok starttls good 0 'run finished' $ALL '{}'
tcase implicit-ok implicit good 0 'run finished' $ALL '{}'
tcase stls-missing starttls good 75 'cannot connect.*STLS' '' '{"capa":["UIDL","USER","SASL PLAIN"]}'
tcase stls-nocapa starttls good 75 'cannot connect.*STLS' '' '{"rules":[{"match":"^CAPA","reply":"-ERR no CAPA\r\n"}]}'
tcase stls-refused starttls good 75 'cannot connect.*STLS' '' '{"rules":[{"match":"^STLS","reply":"-ERR [SYS/TEMP] TLS unavailable\r\n"}]}'
tcase stls-stall starttls good 75 'cannot connect.*(time|dead)' '' '{"rules":[{"match":"@tls","then":"hang"}]}'
# Bytes after the go-ahead in its own segment end up inside the handshake;
# in the same segment as the go-ahead they are caught as injection.
tcase stls-inject starttls good 75 'cannot connect.*(inject|handshake)' '' '{"rules":[{"match":"@tls","append":"+OK injected\r\n"}]}'
tcase stls-reply-inject starttls good 75 'cannot connect.*injection' '' '{"rules":[{"match":"^STLS","append":"+OK logged in\r\n"}]}'
tcase stls-self starttls self 75 'cannot connect.*(certif|verif)' '' '{}'
tcase stls-expired starttls expired 75 'cannot connect.*(certif|verif|expired)' '' '{}'
tcase stls-wronghost starttls wrong 75 'cannot connect.*(certif|verif|host|match)' '' '{}'
tcase stls-otherca starttls other 75 'cannot connect.*(certif|verif)' '' '{}'
tcase tls-self implicit self 75 'cannot connect.*(certif|verif)' '' '{}'
tcase tls-expired implicit expired 75 'cannot connect.*(certif|verif|expired)' '' '{}'
tcase tls-wronghost implicit wrong 75 'cannot connect.*(certif|verif|host|match)' '' '{}'
# The default configuration (no ca_file: the system store) trusts no test CA.
C_CA= tcase tls-default-store implicit good 75 'cannot connect.*(certif|verif)' '' '{}'
# Only the capabilities learnt after TLS count: before it the server offers
# SASL PLAIN, after it only USER (and no PIPELINING).
tcase capa-changes starttls good 0 'run finished' $ALL '{"capa":["STLS","UIDL","SASL PLAIN","PIPELINING"],"capa_tls":["UIDL","USER"]}'
if grep -q '"2: USER user1"\|"1: USER user1"' "$BS_REPORT" && ! grep -q 'AUTH' "$BS_REPORT"; then
	ok "capa-changes: logged in with USER, as the post-TLS CAPA says"
else
	not_ok "capa-changes: logged in with USER, as the post-TLS CAPA says"
	grep '"1:' "$BS_REPORT" | head -n 12 | sed 's/^/# /'
fi

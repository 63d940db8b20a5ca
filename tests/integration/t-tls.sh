#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# Peer verification: a certificate issued for another host name, or by a CA
# the account does not trust, is refused (exit 75) before anything is sent or
# deleted, over POP3S and over STLS.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
need dovecot python3 openssl
mm_setup
plan 10

no_auth_attempt() {
	! grep -Eq 'Login: |auth: .*user1|auth failed|method=' "$MAILENV_LOG"
}

# --- the server's certificate names only wrong.example.invalid
env_start wronghost --cert-host wrong.example.invalid
env_seed 4
server_before=$(hashes "$MD")

C_TLS=tls C_PORT=$POP3S_PORT write_conf "$T/wrong-pop3s.conf"
mm wrong-pop3s -c "$T/wrong-pop3s.conf" --once
rc_is "POP3S, certificate for the wrong host: refused with exit 75" 75
check "POP3S, wrong host: the error is about the certificate" \
	err_has '[Cc]ertificate|[Vv]erif|host ?name|hostname'
is "POP3S, wrong host: nothing deleted" "$(hashes "$MD")" "$server_before"
is "POP3S, wrong host: nothing archived" "$(archive_count "$T/archive")" 0

C_TLS=starttls write_conf "$T/wrong-stls.conf"
mm wrong-stls -c "$T/wrong-stls.conf" --once
rc_is "STLS, certificate for the wrong host: refused with exit 75" 75
is "STLS, wrong host: nothing deleted" "$(hashes "$MD")" "$server_before"
check "wrong host: Dovecot saw no authentication attempt" no_auth_attempt

# --- a good certificate from a CA the account does not trust (system store)
env_start untrusted
env_seed 4
server_before=$(hashes "$MD")
C_TLS=tls C_PORT=$POP3S_PORT C_CA= write_conf "$T/untrusted.conf"
mm untrusted -c "$T/untrusted.conf" --once
rc_is "POP3S, CA not trusted (no ca_file): refused with exit 75" 75
is "untrusted CA: nothing deleted" "$(hashes "$MD")" "$server_before"
check "untrusted CA: Dovecot saw no authentication attempt" no_auth_attempt

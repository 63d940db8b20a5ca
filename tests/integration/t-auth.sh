#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# Authentication and transport policy: a wrong password is a temporary
# failure that touches nothing; an account that requires STLS refuses a
# server that does not offer it before any password leaves the client; a
# plain-text password over an unencrypted connection needs explicit consent.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
need dovecot python3 openssl
mm_setup
plan 12

# --- wrong password (Dovecot with TLS, STLS account)
env_start tls
env_seed 5
server_before=$(hashes "$MD")
C_TLS=starttls C_PASS=wrong-password write_conf "$T/wrongpw.conf"
mm wrongpw -c "$T/wrongpw.conf" --once
rc_is "wrong password: exit 75" 75
is "wrong password: nothing deleted" "$(hashes "$MD")" "$server_before"
is "wrong password: nothing archived" "$(archive_count "$T/archive")" 0
check "wrong password: Dovecot saw the failed attempt" \
	grep -q 'passwd-file(user1,.*Password mismatch' "$MAILENV_LOG"
check "wrong password: the error says authentication failed" err_has '[Aa]uth|[Pp]assword|[Ll]ogin'

# --- STLS required, server without TLS (ssl = no: no STLS in CAPA)
env_start nossl --no-ssl
env_seed 3
server_before=$(hashes "$MD")
C_TLS=starttls C_CA= write_conf "$T/nostls.conf"
mm nostls -c "$T/nostls.conf" --once
rc_is "STLS not offered: refused with exit 75" 75
is "STLS not offered: nothing deleted" "$(hashes "$MD")" "$server_before"
check "STLS not offered: Dovecot saw a connection" grep -q 'pop3-login: .*Disconnected' "$MAILENV_LOG"
# Dovecot logs every authentication attempt (auth_verbose = yes) and says
# "no auth attempts" for a client that disconnected without one.
if grep -q 'no auth attempts' "$MAILENV_LOG" &&
	! grep -Eq 'Login: |auth: .*user1|auth failed|method=' "$MAILENV_LOG"; then
	ok "STLS not offered: no password or AUTH was sent (Dovecot: no auth attempts)"
else
	not_ok "STLS not offered: no password or AUTH was sent (Dovecot: no auth attempts)"
	show "$MAILENV_LOG"
fi
check "STLS not offered: the error names STLS" err_has 'STLS|STARTTLS|starttls'

# --- tls = "none" with a password and no allow_plaintext_password
write_conf "$T/plain.conf"
sed -i '/allow_plaintext_password/d' "$T/plain.conf"
mm plain-refused -c "$T/plain.conf" --once
rc_is "plain-text password without consent: configuration error 78" 78
is "plain-text password without consent: nothing deleted" "$(hashes "$MD")" "$server_before"

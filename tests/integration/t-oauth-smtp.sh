#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# OAuth 2.0 for the outbox against real parts: replies queued by the
# autoreply plugin go out through a real Postfix submission listener (STARTTLS
# with the test CA) that authenticates through Dovecot SASL, whose oauth2
# passdb introspects each token at the loopback IdP (tests/lib/idp.py).  Both
# XOAUTH2 and OAUTHBEARER, 4 KB tokens (Postfix needs line_length_limit raised
# for them, see tests/lib/postfix.sh), a refused token refreshed once and
# retried once, a token refused for good leaving the reply queued, and no
# token or secret in any output at -vv.  The POP3 side logs in with a password
# so that every token request the IdP counts is the relay's.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/smtp.sh"
. "$(dirname "$0")/../lib/postfix.sh"
. "$(dirname "$0")/../lib/oauth.sh"
need dovecot postfix python3 curl openssl
oauth_setup --sasl-socket auth-postfix
printf '%s\n' "b@example.org user2" "c@example.org user2" "d@example.org user2" \
	"e@example.org user2" "f@example.org user2" "g@example.org user2" "h@example.org user2" \
	>"$T/pf.map"
pf_start "$T/pf" "$T/pf.map" --submission
M=$T/msgs
mkdir -p "$M"

delta() { echo $(($(idp_stat "$1") - $2)); }
human() { # FROM N: a person's mail to a@example.org in user1's mailbox
	env_user user1
	printf '%s\n' "Return-Path: <$1>" "From: <$1>" "To: <a@example.org>" "Subject: hello $2" \
		"Message-ID: <human.$2.$1>" "Date: Mon, 01 Jan 2024 10:00:00 +0000" "" \
		"Hello from $1, number $2." >"$M/$2.eml"
	env_seed_files "$M/$2.eml"
}
conf() { # MECH: the account (password over POP3S) and the relay (OAuth)
	SMTP_PORT=$PF_SUB_PORT
	C_TLS=tls C_PORT=$POP3S_PORT C_USER=user1 \
	C_TOP_EXTRA=$(smtp_conf_group starttls "user = \"user1\"; auth = \"$1\";" "$(oauth_group)") \
	C_STAGES="      { plugin = \"autoreply\"; addresses = [ \"a@example.org\" ];
        from = \"Auto <a@example.org>\"; body = \"Away; {subject} will wait.\"; days = 7; },
      { plugin = \"archive\"; path = \"$T/archive\"; }" write_conf "$T/relay.conf"
}
delivered() { find "$ENV/mail/user2/Maildir/new" "$ENV/mail/user2/Maildir/cur" -type f | wc -l; }
sasl_logins() { grep -c "sasl_method=$1, sasl_username=user1" "$T/pf/maillog"; }
# run NAME: mailmilld --once at -vv, then until Postfix delivered what it took
run() {
	mm "$1" -c "$T/relay.conf" --once -vv
	pf_wait_queue "$T/pf" || diag "the Postfix queue did not empty"
}

# The parts, without mailmill (user2: user1's logins are counted below).
check "raw client: Postfix takes a 4 KB token through Dovecot SASL (XOAUTH2)" \
	probe_ok smtp "$PF_SUB_PORT" user2 XOAUTH2 "$(idp_op issue user2)"
check "raw client: Postfix takes a 4 KB token through Dovecot SASL (OAUTHBEARER)" \
	probe_ok smtp "$PF_SUB_PORT" user2 OAUTHBEARER "$(idp_op issue user2)"
check "raw client: Postfix refuses a forged token" \
	probe_refused smtp "$PF_SUB_PORT" user2 XOAUTH2 at-forged-token

conf xoauth2
mm signin -c "$T/relay.conf" --sign-in smtp -vv
rc_is "relay sign-in (--sign-in smtp): exit 0" 0

human b@example.org 1
run xoauth2
rc_is "XOAUTH2 through Postfix: exit 0" 0
is "XOAUTH2: the reply left the outbox" "$(outbox_rows "$T/state" "state = 1")" 1
is "XOAUTH2: Postfix delivered it" "$(delivered)" 1
is "XOAUTH2: Postfix logged one SASL XOAUTH2 login for user1 (a 4 KB token)" "$(sasl_logins XOAUTH2)" 1
is "the relay's access tokens are 4 KB (line_length_limit raised in Postfix)" \
	"$(idp_curl "$IDP_URL/secrets" | grep -c '^at-.\{4093\}$')" "$(idp_curl "$IDP_URL/secrets" | grep -c '^at-')"

conf oauthbearer
human c@example.org 2
run bearer
rc_is "OAUTHBEARER through Postfix: exit 0" 0
is "OAUTHBEARER: Postfix delivered the second reply" "$(delivered)" 2
is "OAUTHBEARER: Postfix logged one SASL OAUTHBEARER login" "$(sasl_logins OAUTHBEARER)" 1

# A token the server refuses: one refresh, one more try.
idp_op expire
human d@example.org 3
r0=$(idp_stat refresh_ok) i0=$(idp_stat introspect_inactive)
run refused
rc_is "refused token at the relay: exit 0" 0
is "refused token at the relay: exactly one refresh" "$(delta refresh_ok "$r0")" 1
is "refused token at the relay: one token refused" "$(delta introspect_inactive "$i0")" 1
is "refused token at the relay: the reply was delivered" "$(delivered)" 3

# Refused again after the refresh: the reply stays queued, then goes out.
idp reject_access=1
human e@example.org 4
r0=$(idp_stat refresh_ok) i0=$(idp_stat introspect)
run rejected
rc_is "every token refused at the relay: exit 75" 75
is "every token refused at the relay: one refresh, two attempts" \
	"$(delta refresh_ok "$r0")/$(delta introspect "$i0")" 1/2
is "every token refused at the relay: the reply stays queued" "$(outbox_rows "$T/state" "state = 0")" 1
is "every token refused at the relay: nothing delivered" "$(delivered)" 3
idp reject_access=0
mm flush -c "$T/relay.conf" --flush -vv
pf_wait_queue "$T/pf" || diag "the Postfix queue did not empty"
rc_is "--flush once the relay accepts tokens again: exit 0" 0
is "--flush: the queued reply was delivered" "$(delivered)" 4

# invalid_grant at the relay: needs sign-in, the reply stays queued, no storm.
idp_op revoke
idp_op expire
human f@example.org 5
t0=$(idp_stat token)
run revoked
rc_is "invalid_grant at the relay: the run fails with exit 75" 75
check "invalid_grant at the relay: the line says to run --sign-in smtp" err_has '\-\-sign-in smtp'
is "invalid_grant at the relay: one token request" "$(delta token "$t0")" 1
is "invalid_grant at the relay: the reply stays queued" "$(outbox_rows "$T/state" "state = 0")" 1
mm flush2 -c "$T/relay.conf" --flush -vv
rc_is "needs sign-in: --flush fails with exit 75" 75
is "needs sign-in: --flush asks the IdP nothing" "$(delta token "$t0")" 1
is "needs sign-in: nothing delivered" "$(delivered)" 4
mm status -c "$T/relay.conf" --status
check "--status shows the relay needs sign-in" grep -qi 'needs sign-in' "$MM_OUT"
mm signin2 -c "$T/relay.conf" --sign-in smtp -vv
rc_is "relay signed in again: exit 0" 0
mm flush3 -c "$T/relay.conf" --flush -vv
pf_wait_queue "$T/pf" || diag "the Postfix queue did not empty"
rc_is "relay signed in again: --flush exit 0" 0
is "relay signed in again: the queued reply was delivered" "$(delivered)" 5

# A short token: the initial response fits in 512 octets (RFC 4954) and goes
# on the AUTH line; Postfix hands it to Dovecot as such.
idp token_size=0
idp_op expire
human g@example.org 6
run short
rc_is "short token: exit 0" 0
check "short token: sent as an initial response on the AUTH line" \
	err_has 'C: AUTH OAUTHBEARER [^ ]'
is "short token: Postfix delivered the reply" "$(delivered)" 6

# POP3 and the relay with the same provider, client, user and scope share one
# sign-in and one token: the account's sign-in serves the relay too.
SMTP_PORT=$PF_SUB_PORT
O_STATE=$T/st-share O_TOP_EXTRA=$(smtp_conf_group starttls "user = \"user1\"; auth = \"auto\";" "$(oauth_group)") \
O_STAGES="{ plugin = \"autoreply\"; addresses = [ \"a@example.org\" ];
        from = \"Auto <a@example.org>\"; body = \"Away.\"; days = 7; },
      { plugin = \"archive\"; path = \"$T/archive-share\"; }" oauth_conf "$T/share.conf"
mm share-signin -c "$T/share.conf" --sign-in acct -vv
rc_is "shared token: the account signs in" 0
human h@example.org 7
t0=$(idp_stat token) p0=$(grep -c 'Login: user=<user1>, method=OAUTHBEARER' "$MAILENV_LOG")
mm share -c "$T/share.conf" --once -vv
pf_wait_queue "$T/pf" || diag "the Postfix queue did not empty"
rc_is "shared token: POP3 and the relay signed in, exit 0" 0
is "shared token: Dovecot logged an OAUTHBEARER POP3 login" \
	"$(grep -c 'Login: user=<user1>, method=OAUTHBEARER' "$MAILENV_LOG")" $((p0 + 1))
is "shared token: Postfix delivered the reply" "$(delivered)" 7
is "shared token: no token request (the sign-in's token served both)" "$(delta token "$t0")" 0

check "no access token, refresh token or secret in any output (-vv)" \
	no_secret_in "$T"/*.out "$T"/*.err
is "rotation: no retired refresh token ever came back" "$(idp_stat refresh_retired)" 0
plan "$tap_n"

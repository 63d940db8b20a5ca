#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# OAuth 2.0 with IMAP IDLE, against real parts: the loopback identity
# provider (tests/lib/idp.py) and Dovecot's oauth2 passdb over IMAPS.  After
# a device sign-in, the daemon's IDLE watcher signs in with an access token
# from the store (XOAUTH2), watches INBOX, and mail is processed within
# seconds although the account's interval is an hour; after the server
# drops the watch with the access token expired, the watcher refreshes it
# once and watches again.  No token or secret appears in the daemon's log.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/oauth.sh"
need dovecot-imap python3 curl openssl
oauth_setup
plan 9
C=$T/acct.conf
DOVECOT_CONF=$ENV/etc/dovecot.conf
DLOG=$T/daemon.log
imap_logins() { grep -c "imap-login: .*Login: user=<user1>, method=XOAUTH2," "$MAILENV_LOG"; }
server_empty() { [ "$(env_count)" -eq 0 ]; }
archived() { [ "$(archive_count "$T/archive")" -ge "$1" ] && server_empty; }

idp approve_after=1 interval=1
O_AUTH=xoauth2 O_PORT=$IMAPS_PORT \
	O_ACCOUNT_EXTRA='protocol = "imap"; interval = "1h"; idle = true;' oauth_conf "$C"
mm signin -c "$C" --sign-in acct
rc_is "device sign-in for the IMAP account: exit 0" 0

"$MAILMILLD" -f -c "$C" -v >"$DLOG" 2>&1 </dev/null &
DPID=$!
trap 'kill -KILL $DPID 2>/dev/null; oauth_cleanup' EXIT
check "the IDLE watcher signs in with OAuth and watches INBOX" \
	wait_for 30 log_has 'acct/INBOX: watching with IDLE'
check "Dovecot logged an IMAP login with XOAUTH2" wait_for 5 eval '[ "$(imap_logins)" -ge 1 ]'

t0=$SECONDS
env_seed 2
if wait_for 15 archived 2; then
	ok "mail is processed within seconds of its delivery ($((SECONDS - t0)) s; interval 1h)"
else
	not_ok "mail is processed within seconds of its delivery"
	show "$DLOG" 30
fi

# The access token expires, and the server drops the watch: the watcher
# signs in again, refreshing the token once.
r0=$(idp_stat refresh_ok)
idp_op expire >/dev/null
doveadm -c "$DOVECOT_CONF" kick user1 >"$T/kick.out" 2>&1
check "the dropped watch comes back" \
	wait_for 30 log_has 'acct/INBOX: IDLE watch (back|reconnected)'
check "with a refreshed access token" eval '[ "$(idp_stat refresh_ok)" -gt "$r0" ]'
t0=$SECONDS
env_seed 1 --offset 2
if wait_for 15 archived 3; then
	ok "mail after the reconnection is processed within seconds ($((SECONDS - t0)) s)"
else
	not_ok "mail after the reconnection is processed within seconds"
	show "$DLOG" 30
fi
check "every message archived once" archive_matches "$T/archive"

kill -TERM $DPID
wait_for 15 eval '! kill -0 $DPID 2>/dev/null'
check "no token or secret in the daemon's log" no_secret_in "$DLOG"

#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# OAuth 2.0 sign-in for POP3 against real parts: a loopback identity provider
# (tests/lib/idp.py: refresh-token rotation, client credentials, device code,
# introspection), Dovecot's oauth2 passdb over POP3S and STLS with OAUTHBEARER
# and XOAUTH2, and an Exchange Online-like server (tests/lib/badserver.py
# oauth mode).  Every access token is 4 KB; every run is at -vv and no token or
# secret may appear in any of mailmilld's output.  The IdP's counters prove
# what mailmill asked: one refresh per refused token, never a retired refresh
# token, nothing after invalid_grant until the next sign-in.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/hostile.sh"
. "$(dirname "$0")/../lib/oauth.sh"
need dovecot python3 curl openssl
oauth_setup
C=$T/acct.conf

# seed N: N more messages for the current user (names never used before).
seeded=0
seed() { env_seed "$1" --offset "$seeded"; seeded=$((seeded + $1)); }
# delta NAME OLD: how much an IdP counter grew since OLD.
delta() { echo $(($(idp_stat "$1") - $2)); }
dovecot_logins() { grep -c "Login: user=<$1>, method=$2," "$MAILENV_LOG"; }

# ---------------------------------------------------- the parts, without mailmill
# (user2: user1's logins are counted below)
check "raw client: Dovecot takes a 4 KB token from the IdP (XOAUTH2)" \
	probe_ok pop3 "$POP3S_PORT" user2 XOAUTH2 "$(idp_op issue user2)"
check "raw client: Dovecot refuses a token the IdP never issued (OAUTHBEARER)" \
	probe_refused pop3 "$POP3S_PORT" user2 OAUTHBEARER at-forged-token
check "raw client: Dovecot refuses another user's token" \
	probe_refused pop3 "$POP3S_PORT" user2 XOAUTH2 "$(idp_op issue user1)"

# ---------------------------------------------------- device sign-in, POP3S
seed 3
idp approve_after=2 interval=1
O_AUTH=oauthbearer oauth_conf "$C"
mm signin -c "$C" --sign-in acct -vv
rc_is "sign-in: exit 0" 0
check "sign-in: prints the verification URL" err_has "https://localhost:$IDP_PORT/device"
check "sign-in: prints the user code" err_has '[0-9]{4}-[0-9]{4}'
is "sign-in: polled through one authorization_pending, then approved" \
	"$(idp_stat device_pending)/$(idp_stat device_ok)" 1/1
is "sign-in: never polled sooner than the interval" "$(idp_stat device_too_fast)" 0

mm bearer -c "$C" --once -vv
rc_is "POP3S with OAUTHBEARER: exit 0" 0
check "POP3S with OAUTHBEARER: the archive holds the messages" archive_matches "$T/archive"
is "POP3S with OAUTHBEARER: the server is empty" "$(env_count)" 0
is "POP3S: Dovecot logged one OAUTHBEARER login" "$(dovecot_logins user1 OAUTHBEARER)" 1
is "the access tokens are 4 KB" \
	"$(idp_curl "$IDP_URL/secrets" | grep '^at-' | awk 'length($0) != 4096' | wc -l)" 0

# ---------------------------------------------------- STLS, XOAUTH2 forced
seed 2
O_AUTH=xoauth2 O_TLS=starttls O_PORT=$POP3_PORT oauth_conf "$T/stls.conf"
mm xoauth2 -c "$T/stls.conf" --once -vv
rc_is "STLS with XOAUTH2: exit 0" 0
is "STLS with XOAUTH2: the server is empty" "$(env_count)" 0
is "STLS: Dovecot logged one XOAUTH2 login" "$(dovecot_logins user1 XOAUTH2)" 1
check "STLS with XOAUTH2: the archive holds every message" archive_matches "$T/archive"

# ---------------------------------------------------- refused token: refresh once, retry once
idp access_ttl=60
idp_op expire
seed 2
r0=$(idp_stat refresh_ok) i0=$(idp_stat introspect_inactive)
mm refused -c "$C" --once -vv
rc_is "refused access token: exit 0" 0
is "refused access token: exactly one refresh" "$(delta refresh_ok "$r0")" 1
is "refused access token: Dovecot refused exactly one token" "$(delta introspect_inactive "$i0")" 1
is "refused access token: the retry fetched the mail" "$(env_count)" 0

# ---------------------------------------------------- refused again after the refresh: no loop
# The cached token (60 s) is refused, so is the new one (3 s: for the next cases).
idp reject_access=1 access_ttl=3
seed 2
before=$(hashes "$MD")
r0=$(idp_stat refresh_ok) i0=$(idp_stat introspect) t0=$(idp_stat token)
mm reject -c "$C" --once -vv
rc_is "token refused after a refresh: exit 75" 75
is "token refused after a refresh: one refresh only" "$(delta refresh_ok "$r0")" 1
is "token refused after a refresh: two login attempts, no more" "$(delta introspect "$i0")" 2
is "token refused after a refresh: one token request" "$(delta token "$t0")" 1
is "token refused after a refresh: mail untouched" "$(hashes "$MD")" "$before"
check "token refused: the log shows Dovecot's decoded challenge" err_has 'invalid_token|401'
idp reject_access=0

# ---------------------------------------------------- expired access token refreshed before the run
sleep 3 # the token the last run got lives 3 s
seed 1
r0=$(idp_stat refresh_ok) i0=$(idp_stat introspect_inactive)
mm expired -c "$C" --once -vv
rc_is "expired access token: exit 0" 0
is "expired access token: refreshed once, before connecting" "$(delta refresh_ok "$r0")" 1
is "expired access token: never offered to the server" "$(delta introspect_inactive "$i0")" 0
is "expired access token: mail fetched" "$(env_count)" 0

# ---------------------------------------------------- token endpoint down or slow
sleep 3 # the cached token (3 s) has expired: the run must refresh first
seed 2
before=$(hashes "$MD")
idp down=1
t0=$(idp_stat token) i0=$(idp_stat introspect)
mm down -c "$C" --once -vv
rc_is "token endpoint answers 503: exit 75" 75
check "token endpoint 503: a clear line" err_has '[Tt]oken.*(503|[Uu]navailable)'
is "token endpoint 503: no retry storm (at most 2 requests)" "$(($(delta token "$t0") <= 2))" 1
is "token endpoint 503: no login attempt" "$(delta introspect "$i0")" 0
is "token endpoint 503: mail untouched" "$(hashes "$MD")" "$before"
idp down=0 delay=5
s0=$(date +%s)
mm slow -c "$C" --once -vv
rc_is "token endpoint slower than timeout (2s): exit 75" 75
is "slow token endpoint: gave up within 8 s" "$(($(date +%s) - s0 <= 8))" 1
check "slow token endpoint: a clear line" err_has '[Tt]oken.*([Tt]ime|[Tt]imed)'
is "slow token endpoint: mail untouched" "$(hashes "$MD")" "$before"
idp delay=0
idp delay=0 down=2
t0=$(idp_stat token)
mm closed -c "$C" --once -vv
rc_is "token endpoint closes the connection: exit 75" 75
check "token endpoint closes the connection: a clear line" err_has '[Tt]oken'
is "token endpoint closes the connection: no retry storm" "$(($(delta token "$t0") <= 2))" 1
is "token endpoint closes the connection: mail untouched" "$(hashes "$MD")" "$before"
idp down=0

# ---------------------------------------------------- invalid_grant: needs sign-in, no storm
idp_op revoke
t0=$(idp_stat token) i0=$(idp_stat introspect)
mm revoked -c "$C" --once -vv
rc_is "invalid_grant: the run fails with exit 75" 75
check "invalid_grant: the line says to sign in again (--sign-in)" err_has '\-\-sign-in'
is "invalid_grant: one token request" "$(delta token "$t0")" 1
is "invalid_grant: the IdP saw the revoked refresh token once" "$(idp_stat refresh_revoked)" 1
mm revoked2 -c "$C" --once -vv
rc_is "needs sign-in: the next run fails too (75)" 75
is "needs sign-in: no token request at all in the next run" "$(delta token "$t0")" 1
is "needs sign-in: no login attempt" "$(delta introspect "$i0")" 0
is "needs sign-in: mail untouched" "$(hashes "$MD")" "$before"
mm status -c "$C" --status
check "--status shows needs sign-in" grep -qi 'needs sign-in' "$MM_OUT" "$MM_ERR"
# The daemon (metrics.prom is the daemon's; its first runs are spread over
# the interval, SIGUSR1 polls now): the gauge, and still no request.
rm -f "$T/state/metrics.prom"
"$MAILMILLD" -f -c "$C" -vv >"$T/daemon.out" 2>"$T/daemon.err" </dev/null &
dpid=$!
gauge='mailmill_account_needs_signin{account="acct"} 1'
for i in $(seq 100); do
	grep -q 'started' "$T/daemon.err" && break
	sleep 0.1
done
check "daemon: the gauge is in metrics.prom from the start, before any run" \
	grep -qF "$gauge" "$T/state/metrics.prom"
kill -USR1 "$dpid"
for i in $(seq 100); do
	grep -qF "$gauge" "$T/state/metrics.prom" 2>/dev/null && break
	sleep 0.1
done
kill -TERM "$dpid" 2>/dev/null
wait "$dpid"
check "daemon: metrics.prom says $gauge" grep -qF "$gauge" "$T/state/metrics.prom"
is "daemon: no token request for an account that needs sign-in" "$(delta token "$t0")" 1
is "daemon: mail untouched" "$(hashes "$MD")" "$before"

# ---------------------------------------------------- sign-in again, with slow_down
idp_op reset
idp approve_after=3 slow_down=2
mm signin2 -c "$C" --sign-in acct -vv
rc_is "sign-in with slow_down: exit 0" 0
is "sign-in with slow_down: one slow_down, approved at the third poll" \
	"$(idp_stat device_slow_down)/$(idp_stat device_ok)" 1/1
check "sign-in with slow_down: the poll after it waited 5 s more (RFC 8628)" \
	"$PY" -c 'import json,sys; g=json.loads(sys.argv[1]); sys.exit(not (g and max(g) >= 5.8))' \
	"$(idp_stat polls)"
is "sign-in with slow_down: never sooner than the interval" "$(idp_stat device_too_fast)" 0
mm after -c "$C" --once -vv
rc_is "after a new sign-in: exit 0" 0
is "after a new sign-in: the mail left untouched is fetched" "$(env_count)" 0
check "after a new sign-in: the archive holds every message" archive_matches "$T/archive"
is "rotation: a retired refresh token was never sent again" "$(idp_stat refresh_retired)" 0

# ---------------------------------------------------- --check-login changes nothing
seed 1
before=$(hashes "$MD")
mm check -c "$C" --check-login --account acct -vv
rc_is "--check-login: exit 0" 0
check "--check-login: names the mechanism (OAUTHBEARER)" err_has OAUTHBEARER
is "--check-login: nothing fetched or deleted" "$(hashes "$MD")" "$before"

# ---------------------------------------------------- the daemon's workers sign in too
# (a worker used to ask an OAuth account for its password and fail every run)
"$MAILMILLD" -f -c "$C" -vv >"$T/daemon-ok.out" 2>"$T/daemon-ok.err" </dev/null &
dpid=$!
wait_for 10 grep -qs 'started' "$T/daemon-ok.err"
kill -USR1 "$dpid"
wait_for 20 [ "$(env_count)" = 0 ]
kill -TERM "$dpid" 2>/dev/null
wait "$dpid"
is "daemon: a worker signs in with OAuth and fetches the message" "$(env_count)" 0
is "daemon: no password asked of an OAuth account" \
	"$(grep -c 'cannot get the password' "$T/daemon-ok.err")" 0
check "daemon: the archive holds every message" archive_matches "$T/archive"

# ---------------------------------------------------- device code expiry and denial
idp_op reset
idp approve_after=-1 slow_down= device_ttl=3
s0=$(date +%s)
mm signin-exp -c "$C" --sign-in acct -vv
check "sign-in, code expires: fails" [ "$MM_RC" != 0 ]
check "sign-in, code expires: says so" err_has '[Ee]xpir'
# It may stop at the server's expired_token or by itself at expires_in.
is "sign-in, code expires: stops within 8 s, polling at most once after expiry" \
	"$(($(idp_stat device_expired) <= 1))/$(($(date +%s) - s0 <= 8))" 1/1
idp deny=1 device_ttl=600
mm signin-deny -c "$C" --sign-in acct -vv
check "sign-in, user declines: fails" [ "$MM_RC" != 0 ]
check "sign-in, user declines: says so" err_has '[Dd]enied|[Dd]eclined'
is "sign-in, user declines: one poll" "$(idp_stat device_denied)" 1
idp deny=0 approve_after=1

# ---------------------------------------------------- client credentials (app-only)
idp access_ttl=3600
env_user user2
seed 2
idp cc_user=user2
printf '%s\n' "$APP_SECRET" >"$T/app.secret"
chmod 600 "$T/app.secret"
O_NAME=app O_USER=user2 O_STATE=$T/st-app O_ARCHIVE=$T/archive-app O_CRED="oauth2 = {
      provider = \"generic\"; client_id = \"mm-app\"; client_secret_file = \"$T/app.secret\";
      grant = \"client_credentials\"; token_url = \"$IDP_URL/token\"; scope = \"mail\";
      ca_file = \"$MAILENV_CA\"; timeout = \"2s\"; };" oauth_conf "$T/app.conf"
c0=$(idp_stat cc_ok) l0=$(grep -Ec 'Login: user=<user2>, method=(OAUTHBEARER|XOAUTH2)' "$MAILENV_LOG")
mm app -c "$T/app.conf" --once -vv
rc_is "client credentials: exit 0 without any sign-in" 0
is "client credentials: one token request" "$(delta cc_ok "$c0")" 1
is "client credentials: user2's mail fetched" "$(env_count)" 0
check "client credentials: the archive holds it" archive_matches "$T/archive-app"
is "client credentials: Dovecot logged user2 in by OAuth once" \
	"$(grep -Ec 'Login: user=<user2>, method=(OAUTHBEARER|XOAUTH2)' "$MAILENV_LOG")" $((l0 + 1))

# ---------------------------------------------------- token_command
env_user user1
seed 1
O_STATE=$T/st-cmd O_ARCHIVE=$T/archive-cmd \
	O_CRED="token_command = [ \"$PY\", \"$MM_LIB/idp.py\", \"op\", \"$IDP_DIR\", \"issue\", \"user1\" ];" \
	oauth_conf "$T/cmd.conf"
mm cmd -c "$T/cmd.conf" --once -vv
rc_is "token_command: exit 0" 0
is "token_command: mail fetched" "$(env_count)" 0
seed 1
before=$(hashes "$MD")
O_STATE=$T/st-cmd O_ARCHIVE=$T/archive-cmd \
	O_CRED='token_command = [ "/bin/sh", "-c", "echo token helper broke: no keyring >&2; exit 3" ];' \
	oauth_conf "$T/cmdfail.conf"
mm cmdfail -c "$T/cmdfail.conf" --once -vv
rc_is "token_command failing: exit 75" 75
check "token_command failing: its stderr is in the log" err_has 'token helper broke: no keyring'
is "token_command failing: mail untouched" "$(hashes "$MD")" "$before"

# ---------------------------------------------------- Exchange Online-like server
make_msgs 3
exch_sc() { # [TTL]: the server honours a token TTL seconds after it was issued
	echo "{\"tls\":\"implicit\",\"cert\":\"$T/srv/ssl/server.crt\",\"key\":\"$T/srv/ssl/server.key\",
  \"oauth\":{\"introspect\":\"https://127.0.0.1:$IDP_PORT/introspect\",\"ca\":\"$MAILENV_CA\"${1:+,\"ttl\":$1}}}"
}
bs_results() {
	"$PY" -c 'import json,sys; print(",".join(a["result"] for a in json.load(open(sys.argv[1]))["oauth"]))' "$BS_REPORT"
}
exch() { # NAME [TTL]: a fresh server (3 messages) and its config for account exch
	bs_start "$1" "$(exch_sc "${2:-}")"
	O_NAME=exch O_PORT=$BS_PORT O_STATE=$T/st-exch O_ARCHIVE=$T/archive-exch oauth_conf "$T/exch.conf"
}
# The scripted server itself, with Python's client: the one-line form refused,
# the continuation form taken.
bs_start ex0 "$(exch_sc)"
tok=$(idp_op issue user1)
check "raw client: the Exchange-like server refuses AUTH XOAUTH2 on one line" \
	probe_refused pop3 "$BS_PORT" user1 XOAUTH2 "$tok" oneline
check "raw client: the Exchange-like server takes it on a continuation line" \
	probe_ok pop3 "$BS_PORT" user1 XOAUTH2 "$tok"
is "raw client: the server recorded both" "$(bs_results)" oneline,ok
bs_stop
exch ex1
mm exch-signin -c "$T/exch.conf" --sign-in exch -vv
rc_is "Exchange-like: sign-in exit 0" 0
mm exch1 -c "$T/exch.conf" --once -vv
rc_is "Exchange-like: exit 0" 0
is "Exchange-like: one XOAUTH2 login on a continuation line, never the one-line form" "$(bs_results)" ok
is "Exchange-like: the 4 KB token arrived whole" \
	"$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["oauth"][0]["token_len"])' "$BS_REPORT")" 4096
is "Exchange-like: every message deleted" "$(bs_deleted)" uid-1,uid-2,uid-3
bs_stop
sleep 2 # the cached token is 2 s old: too old for this server; the IdP said an hour
exch ex2 2
r0=$(idp_stat refresh_ok)
mm exch2 -c "$T/exch.conf" --once -vv
rc_is "Exchange-like, token expired at the server: exit 0" 0
is "Exchange-like, expired at the server: refused (challenge answered with an empty line), then ok" \
	"$(bs_results)" refused,ok
is "Exchange-like, expired at the server: one refresh" "$(delta refresh_ok "$r0")" 1
check "Exchange-like: the decoded challenge is in the log (invalid_token)" err_has 'invalid_token'
is "Exchange-like, expired at the server: every message deleted" "$(bs_deleted)" uid-1,uid-2,uid-3
bs_stop
idp reject_access=1
exch ex3
r0=$(idp_stat refresh_ok)
mm exch3 -c "$T/exch.conf" --once -vv
rc_is "Exchange-like, every token refused: exit 75" 75
is "Exchange-like, every token refused: two attempts, one refresh between" \
	"$(bs_results)/$(delta refresh_ok "$r0")" refused,refused/1
is "Exchange-like, every token refused: nothing deleted" "$(bs_deleted)" ""
bs_stop
idp reject_access=0

# ---------------------------------------------------- what was asked
check "every token request asked for the configured scope" \
	"$PY" -c 'import json,sys; s=set(json.loads(sys.argv[1])); sys.exit(not s or not s <= {"mail offline_access", "mail"})' \
	"$(idp_stat scopes)"

# ---------------------------------------------------- secrets
check "no access token, refresh token, device code or client secret in any output (-vv)" \
	no_secret_in "$T"/*.out "$T"/*.err
is "rotation, at the end: no retired or unknown refresh token ever came back" \
	"$(idp_stat refresh_retired)/$(idp_stat refresh_unknown)" 0/0
plan "$tap_n"

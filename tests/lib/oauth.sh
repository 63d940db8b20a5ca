# mailmill - ISC licence, see LICENSE
#
# Sourced after common.sh by the OAuth tests.  Provides:
#   oauth_setup [mailenv opts]  mm_setup, a CA and certificate in $T/srv/ssl, the
#                           identity provider (tests/lib/idp.py) with clients
#                           "mailmill-test" (public) and "mm-app" (secret $APP_SECRET)
#                           and 4 KB access tokens, then Dovecot in $T/srv
#                           accepting XOAUTH2 and OAUTHBEARER (tokens introspected
#                           at the IdP); sets IDP_URL, IDP_DIR; stops it all on exit
#   idp KNOB=VALUE...       change the IdP's knobs (see idp.py)
#   idp_op OP [ARG]         seed USER | issue USER | revoke | expire | reset
#   idp_stat NAME           one counter of the IdP (0 when never counted)
#   oauth_group [extra]     an `oauth2 = { ... };` group for the generic provider
#   oauth_conf FILE         a one-account OAuth configuration; knobs:
#                           O_NAME (acct) O_PORT ($POP3S_PORT) O_TLS (tls)
#                           O_AUTH (auto) O_USER (user1) O_CRED (the oauth2 group
#                           or a token_command line; default oauth_group)
#                           O_STATE ($T/state) O_ARCHIVE ($T/archive) O_TOP_EXTRA
#                           O_STAGES (replaces the archive pipeline)
#                           O_ACCOUNT_EXTRA (lines in the account: protocol, idle...)
#   no_secret_in FILES...   none of the IdP's tokens or secrets appears in FILES
#   probe_ok / probe_refused PROTO PORT USER MECH TOKEN [oneline]
#                           Python's own client (oauth_probe.py), not mailmill,
#                           logs in with TOKEN: the server takes it / refuses it
IDP_DIR=
idp_pid=
APP_SECRET=app-secret-$RANDOM$RANDOM-do-not-log

oauth_cleanup() {
	[ -n "$idp_pid" ] && kill "$idp_pid" 2>/dev/null && wait "$idp_pid" 2>/dev/null
	[ "$(type -t pf_stop_all)" = function ] && pf_stop_all
	# bs_cleanup (tests/lib/hostile.sh) ends with mm_cleanup itself.
	if [ "$(type -t bs_cleanup)" = function ]; then bs_cleanup; else mm_cleanup; fi
}

idp_start() {
	local i
	IDP_DIR=$T/idp
	"$PY" "$MM_LIB/idp.py" serve "$IDP_DIR" --cert "$T/srv/ssl/server.crt" \
		--key "$T/srv/ssl/server.key" --client mailmill-test --client "mm-app:$APP_SECRET" \
		token_size=4096 "$@" 2>"$T/idp.log" &
	idp_pid=$!
	for i in $(seq 100); do
		[ -s "$IDP_DIR/url" ] && break
		sleep 0.05
	done
	[ -s "$IDP_DIR/url" ] || { show "$T/idp.log"; echo "Bail out! the IdP did not start"; exit 1; }
	IDP_URL=$(cat "$IDP_DIR/url")
	IDP_PORT=$(cat "$IDP_DIR/port")
}

oauth_setup() {
	mm_setup
	trap oauth_cleanup EXIT
	"$MM_LIB/mailenv.sh" certs "$T/srv" >"$T/certs.log" 2>&1 ||
		{ show "$T/certs.log"; echo "Bail out! cannot make certificates"; exit 1; }
	idp_start
	env_start srv --oauth "https://127.0.0.1:$IDP_PORT/introspect" "$@"
}

# curl, not idp.py's client verbs: a Python start costs up to a second on a busy machine.
idp_curl() { curl -sSf --cacert "$IDP_DIR/ca" "$@"; }
idp() {
	local a args=()
	for a in "$@"; do args+=(--data-urlencode "$a"); done
	idp_curl "${args[@]}" "$IDP_URL/control" >/dev/null || diag "idp $* failed"
}
idp_op() { idp_curl --data-urlencode "op=$1" ${2:+--data-urlencode "arg=$2"} "$IDP_URL/control"; }
idp_stat() { idp_curl "$IDP_URL/stats/$1"; }

oauth_group() {
	echo "oauth2 = { provider = \"generic\"; client_id = \"mailmill-test\";"
	echo "      token_url = \"$IDP_URL/token\"; device_url = \"$IDP_URL/devicecode\";"
	echo "      scope = \"mail offline_access\"; ca_file = \"$MAILENV_CA\"; timeout = \"2s\"; $* };"
}

oauth_conf() {
	local f=$1 tls=${O_TLS:-tls} stages=${O_STAGES:-}
	[ -n "$stages" ] || stages="{ plugin = \"archive\"; path = \"${O_ARCHIVE:-$T/archive}\"; }"
	{
		echo "# written by tests/lib/oauth.sh"
		echo "state_dir = \"${O_STATE:-$T/state}\";"
		echo "plugin_dir = \"$PLUGIN_DIR\";"
		echo "log = { level = \"info\"; target = \"stderr\"; };"
		[ -n "${O_TOP_EXTRA:-}" ] && echo "$O_TOP_EXTRA"
		echo "accounts = ("
		echo "  { name = \"${O_NAME:-acct}\";"
		echo "    host = \"localhost\"; port = ${O_PORT:-$POP3S_PORT};"
		echo "    tls = \"$tls\"; ca_file = \"$MAILENV_CA\"; timeout = \"10s\";"
		echo "    user = \"${O_USER:-user1}\"; auth = \"${O_AUTH:-auto}\";"
		[ -n "${O_ACCOUNT_EXTRA:-}" ] && echo "    $O_ACCOUNT_EXTRA"
		echo "    ${O_CRED:-$(oauth_group)}"
		echo "    pipeline = ( $stages );"
		echo "  }"
		echo ");"
	} >"$f"
	chmod 600 "$f"
}

probe_ok() { "$PY" "$MM_LIB/oauth_probe.py" "$1" "$2" "$MAILENV_CA" "${@:3}" >"$T/probe.out" 2>&1; }
probe_refused() {
	"$PY" "$MM_LIB/oauth_probe.py" "$1" "$2" "$MAILENV_CA" "${@:3}" >"$T/probe.out" 2>&1
	[ $? = 1 ]
}

no_secret_in() {
	local list=$T/idp-secrets
	idp_curl "$IDP_URL/secrets" >"$list"
	[ -s "$list" ] || { diag "the IdP issued nothing"; return 1; }
	if grep -F -l -f "$list" "$@" 2>/dev/null | sed 's/^/# secret in: /' | grep .; then
		return 1
	fi
	return 0
}

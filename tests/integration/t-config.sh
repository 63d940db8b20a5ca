#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# The command line and configuration checking, no server needed: usage
# errors exit 64; every configuration error exits 78 and names file:line;
# secrets that others can read are refused; a valid file passes.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
mm_setup
plan 36

# conf FILE: a valid configuration, then the caller breaks one line.
# Line numbers matter below: keep this text as it is.
conf() {
	cat >"$1" <<CONF
state_dir = "$T/state";
plugin_dir = "$PLUGIN_DIR";
log = { level = "info"; target = "stderr"; };
accounts = (
  { name = "support";
    host = "127.0.0.1"; port = 1;
    tls = "none"; allow_plaintext_password = true;
    user = "support"; password = "secret";
    interval = "5m"; keep = false; max_size = "50M";
    pipeline = ( { plugin = "archive"; path = "$T/archive"; format = "maildir"; } );
  }
);
CONF
	chmod 600 "$1"
}

mm version --version
if [ "$MM_RC" = 0 ] && grep -q '0\.[0-9]' "$MM_OUT"; then ok "--version prints the version, exit 0"
else not_ok "--version prints the version, exit 0"; fi
mm help --help
if [ "$MM_RC" = 0 ] && grep -q -- '--check-config' "$MM_OUT"; then ok "--help prints usage, exit 0"
else not_ok "--help prints usage, exit 0"; fi
# The options: main.c's table, --help and mailmilld(8) name the same ones
# ("--check", the old abbreviation of --check-config, and "--spawner", the
# daemon's own way to start its spawner, are kept out of sight).
help_opts=$(grep -o -- '--[a-z][a-z-]*' "$MM_OUT" | sort -u)
table_opts=$(sed -n '/longopts\[\] = {/,/NULL, 0, NULL, 0/p' "$MM_SRCDIR/daemon/main.c" |
	grep -o '{ "[a-z-]*"' | sed 's/{ "/--/; s/"$//' | grep -vx -e --check -e --spawner | sort -u)
man_opts=$(sed -n '/^\.SH OPTIONS/,/^\.SH /p' "$MM_SRCDIR/docs/mailmilld.8" |
	grep -o '\\-\\-[a-z][a-z\\-]*' | sed 's/\\-/-/g' | sort -u)
if [ -n "$table_opts" ] && [ "$help_opts" = "$table_opts" ] && [ "$man_opts" = "$table_opts" ]; then
	ok "main.c's options, --help and mailmilld(8) OPTIONS agree"
else
	not_ok "main.c's options, --help and mailmilld(8) OPTIONS agree"
	diff <(echo "$table_opts") <(echo "$help_opts") | sed 's/^/# table vs help: /'
	diff <(echo "$table_opts") <(echo "$man_opts") | sed 's/^/# table vs man: /'
fi
mm badopt --no-such-option
rc_is "unknown option: exit 64" 64

conf "$T/good.conf"
mm good -c "$T/good.conf" --check-config
rc_is "valid configuration: --check-config exits 0" 0
is "--check-config connects to nothing and writes no archive" "$(ls "$T/archive" 2>/dev/null | wc -l)" 0

# broken NAME LINE SED-EXPR DESC: the file broken at LINE must be reported as NAME.conf:LINE.
broken() {
	conf "$T/$1.conf"
	sed -i "$2$3" "$T/$1.conf"
	mm "$1" -c "$T/$1.conf" --check-config
	rc_is "$4: --check-config exits 78" 78
	if grep -q "$1\.conf:$2\b" "$MM_ERR" "$MM_OUT"; then
		ok "$4: the error names $1.conf:$2"
	else
		not_ok "$4: the error names $1.conf:$2"
		show "$MM_ERR"
	fi
}
broken syntax 7 's/tls = /tls == /' "syntax error"
broken unknown 9 's/^/    colour = "blue";/' "unknown key"
broken type 6 's/port = 1/port = "one hundred"/' "wrong type"
broken duration 9 's/"5m"/"5 fortnights"/' "bad duration"
broken size 9 's/"50M"/"50 bushels"/' "bad size"
broken tls 7 's/"none"/"sometimes"/' "bad tls value"

# Two accounts with one name.
conf "$T/dup.conf"
sed -i '11s/^  }$/  },\n  { name = "support"; host = "127.0.0.1"; user = "x"; password = "y"; tls = "none"; allow_plaintext_password = true; pipeline = ( { plugin = "archive"; path = "\/tmp\/x"; } ); }/' "$T/dup.conf"
mm dup -c "$T/dup.conf" --check-config
rc_is "duplicate account name: exit 78" 78
check "duplicate account name: named with file:line" err_has 'dup\.conf:(5|12)\b'

# An inline password in a file others can read.
conf "$T/readable.conf"
chmod 644 "$T/readable.conf"
mm readable -c "$T/readable.conf" --check-config
rc_is "inline password in a world-readable file: exit 78" 78

# A password file the group can read.
conf "$T/pwfile.conf"
echo secret >"$T/pw"
chmod 640 "$T/pw"
sed -i "8s|password = \"secret\";|password_file = \"$T/pw\";|" "$T/pwfile.conf"
mm pwfile -c "$T/pwfile.conf" --check-config
rc_is "group-readable password_file: exit 78" 78
chmod 600 "$T/pw"
mm pwfile-ok -c "$T/pwfile.conf" --check-config
rc_is "password_file mode 600: --check-config exits 0" 0

mm nofile -c "$T/does-not-exist.conf" --check-config
rc_is "missing configuration file: exit 78" 78

# OAuth: a valid oauth2 group passes; its mistakes exit 78 at file:line.
oauth() {
	conf "$T/$1.conf"
	sed -i '7s/.*/    tls = "tls";/; 8s|.*|    user = "support@example.org"; '"$2"'|' "$T/$1.conf"
}
printf 'client-s3cret\n' >"$T/cs"
chmod 600 "$T/cs"
oauth oauth-ok 'oauth2 = { provider = "microsoft"; client_id = "cid"; grant = "client_credentials"; tenant = "contoso.onmicrosoft.com"; client_secret_file = "'"$T"'/cs"; };'
mm oauth-ok -c "$T/oauth-ok.conf" --check-config
rc_is "oauth2 (microsoft, client credentials): --check-config exits 0" 0
oauth oauth-cmd 'auth = "oauthbearer"; token_command = [ "/bin/echo", "tok" ];'
mm oauth-cmd -c "$T/oauth-cmd.conf" --check-config
rc_is "token_command: --check-config exits 0" 0
chmod 644 "$T/cs"
mm oauth-mode -c "$T/oauth-ok.conf" --check-config
rc_is "group-readable client_secret_file: exit 78" 78
check "group-readable client_secret_file: file:line and the chmod" err_has 'oauth-ok\.conf:8: .*client_secret_file .*chmod 600'
oauth oauth-http 'oauth2 = { provider = "generic"; client_id = "c"; scope = "s"; token_url = "http://127.0.0.1/token"; };'
mm oauth-http -c "$T/oauth-http.conf" --check-config
rc_is "an http:// token_url: exit 78" 78
check "an http:// token_url: named at file:line" err_has 'oauth-http\.conf:8: .*must be an https:// URL'
oauth oauth-tenant 'oauth2 = { provider = "microsoft"; client_id = "c"; grant = "client_credentials"; client_secret = "x"; };'
mm oauth-tenant -c "$T/oauth-tenant.conf" --check-config
check "client credentials without a tenant: refused at file:line" err_has "oauth-tenant\.conf:8: .*needs 'tenant'"
oauth oauth-pw 'password = "x"; oauth2 = { provider = "google"; client_id = "c"; };'
mm oauth-pw -c "$T/oauth-pw.conf" --check-config
check "a password next to oauth2: refused" err_has "oauth-pw\.conf:5: .*'oauth2' and a password key both set"
mm signin-usage -c "$T/oauth-ok.conf" --sign-in support --once
rc_is "--sign-in with --once: usage error, exit 64" 64
chmod 600 "$T/cs"
mm signin-cc -c "$T/oauth-ok.conf" --sign-in support
rc_is "--sign-in of a client-credentials account: nothing to sign in, exit 64" 64
check "--sign-in of a client-credentials account says why" err_has 'needs no person'
mm signin-none -c "$T/oauth-ok.conf" --sign-in nobody
rc_is "--sign-in of an unknown account: exit 64" 64


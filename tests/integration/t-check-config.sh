#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# --check-config finds a setup that cannot work although every setting is
# valid (issue 15, item 4), each reported at file:line of the offending
# setting: a stage that queues mail with no smtp relay; a ca_file that does
# not exist; a ticket json_dir or an archive path the worker user cannot
# create or write; a webhook URL that is not http(s) (refused) or plain http
# to another host (a warning).  A valid setup still passes.  No server needed.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
mm_setup
plan 36

SMTP_GROUP='smtp = { host = "127.0.0.1"; port = 1; tls = "none"; };'
AUTOREPLY='{ plugin = "autoreply"; addresses = [ "me@example.org" ]; from = "Me <me@example.org>"; body = "Away."; }'
FORWARD='{ plugin = "forward"; to = [ "boss@example.org" ]; from = "Fwd <fwd@example.org>"; }'
mkdir -p "$T/tickets"

# cc NAME TOP STAGES [ACCOUNT-EXTRA]: a configuration (TOP: extra top-level lines).
cc() {
	C_STATE=$T/state C_PORT=1 C_CA= C_USER=u C_PASS=p C_TOP_EXTRA=$2 C_STAGES=$3 C_ACCOUNT_EXTRA=${4:-} \
		write_conf "$T/$1.conf"
}
# line_of NAME TEXT: the line of NAME.conf holding TEXT (fixed string).
line_of() { grep -nF -- "$2" "$T/$1.conf" | head -n 1 | cut -d: -f1; }
# finding NAME TEXT RC DESC REGEX: --check-config exits RC and says REGEX at
# NAME.conf:<the line holding TEXT>.
finding() {
	local line
	line=$(line_of "$1" "$2")
	mm "$1" -c "$T/$1.conf" --check-config
	rc_is "$4: exit $3" "$3"
	if err_has "$1\\.conf:$line: $5"; then
		ok "$4: named at $1.conf:$line"
	else
		not_ok "$4: named at $1.conf:$line"
		diag "want $1.conf:$line: $5"
		show "$MM_ERR"
	fi
}

# --- a valid setup: replies through a relay, tickets into a directory, an archive
cc good "$SMTP_GROUP" "$AUTOREPLY,
      { plugin = \"ticket\"; from = \"Help <help@example.org>\"; json_dir = \"$T/tickets\";
        webhook_url = \"https://helpdesk.example.org/hook\"; },
      { plugin = \"archive\"; path = \"$T/archive\"; }"
mm good -c "$T/good.conf" --check-config
rc_is "valid setup with a relay: exit 0" 0
check "valid setup: configuration OK" grep -q "configuration OK" "$MM_OUT"
check "valid setup: no warning" bash -c "! grep -q warning '$MM_ERR'"

# --- mail queued, no relay
cc noreply "" "$AUTOREPLY"
finding noreply 'plugin = "autoreply"' 78 "autoreply without smtp" \
	"account acct, stage autoreply: autoreply queues mail for the smtp relay, but there is no 'smtp' group"
cc nofwd "" "$FORWARD"
finding nofwd 'plugin = "forward"' 78 "forward without smtp" \
	"account acct, stage forward: forward queues mail for the smtp relay, but there is no 'smtp' group"
cc noack "" '      { plugin = "ticket"; from = "Help <help@example.org>"; }'
finding noack 'plugin = "ticket"' 78 "ticket acknowledgements (the default) without smtp" \
	"account acct, stage ticket: the ticket's acknowledgement or notification queues mail"
cc noack2 "" '      { plugin = "ticket"; from = "Help <help@example.org>";
        acknowledge = true; }'
finding noack2 'acknowledge = true' 78 "acknowledge = true without smtp: at its line" \
	"account acct, stage ticket: the ticket's acknowledgement"
cc notify "" '      { plugin = "ticket"; from = "Help <help@example.org>"; acknowledge = false;
        notify = [ "staff@example.org" ]; }'
finding notify 'notify = ' 78 "ticket notify without smtp: at its line" "account acct, stage ticket: "
cc silent "" '      { plugin = "ticket"; from = "Help <help@example.org>"; acknowledge = false; }'
mm silent -c "$T/silent.conf" --check-config
rc_is "a ticket stage that sends nothing needs no relay: exit 0" 0

# --- CA files
cc noca "$SMTP_GROUP" "$AUTOREPLY" "ca_file = \"$T/no-such-ca.pem\";"
finding noca 'no-such-ca.pem' 78 "an account's ca_file that does not exist" \
	"account \"acct\": 'ca_file' $T/no-such-ca.pem does not exist"
cc smtpca 'smtp = { host = "127.0.0.1";
  ca_file = "/nonexistent/ca.pem"; };' "$AUTOREPLY"
finding smtpca '/nonexistent/ca.pem' 78 "the relay's ca_file that does not exist" \
	"smtp: 'ca_file' /nonexistent/ca.pem does not exist"
cc dirca "$SMTP_GROUP" "$AUTOREPLY" "ca_file = \"$T/tickets\";"
finding dirca 'ca_file = ' 78 "a ca_file that is a directory" "account \"acct\": 'ca_file' $T/tickets is not a file"
cc hookca "" "      { plugin = \"ticket\"; from = \"Help <help@example.org>\"; acknowledge = false;
        webhook_url = \"https://helpdesk.example.org/hook\";
        webhook_ca_file = \"$T/no-ca.pem\"; }"
finding hookca 'webhook_ca_file' 78 "a ticket's webhook_ca_file that does not exist" \
	"account acct, stage ticket: 'webhook_ca_file' $T/no-ca.pem does not exist"

# --- webhook URLs
cc ftp "" '      { plugin = "ticket"; from = "Help <help@example.org>"; acknowledge = false;
        webhook_url = "ftp://helpdesk.example.org/hook"; }'
finding ftp 'webhook_url' 78 "a webhook URL that is not http(s)" \
	"account acct, stage ticket: .webhook_url. must be an http:// or https:// URL"
cc plainhttp "" '      { plugin = "ticket"; from = "Help <help@example.org>"; acknowledge = false;
        webhook_url = "http://helpdesk.example.org/hook"; }'
finding plainhttp 'webhook_url' 0 "a plain http webhook to another host: a warning only" \
	"account acct, stage ticket: 'webhook_url' http://helpdesk.example.org/hook is plain http"
check "plain http webhook: said as a warning" err_has "warning: .*plain http"
cc loophttp "" '      { plugin = "ticket"; from = "Help <help@example.org>"; acknowledge = false;
        webhook_url = "http://127.0.0.1:8080/hook"; }'
mm loophttp -c "$T/loophttp.conf" --check-config
rc_is "a plain http webhook on loopback: exit 0" 0
check "a plain http webhook on loopback: no warning" bash -c "! grep -q 'plain http' '$MM_ERR'"

# --- an archive path that cannot be created (below a regular file)
touch "$T/plain-file"
cc below "" "      { plugin = \"archive\";
        path = \"$T/plain-file/archive\"; }"
finding below 'plain-file/archive' 78 "an archive path below a regular file" \
	"account acct, stage archive: .*plain-file/archive cannot be created"

# --- as the worker user: json_dir and archive path it cannot write
if [ "$(id -u)" -ne 0 ] || ! getent passwd nobody >/dev/null; then
	for i in 1 2 3 4 5; do skip "as the worker user" "needs root and a user nobody"; done
	exit 0
fi
plugins_for_worker
mkdir -m 0755 "$T/root-only" "$T/root-only/tickets"
cc jsonro "user = \"nobody\";" "      { plugin = \"ticket\"; from = \"Help <help@example.org>\"; acknowledge = false;
        json_dir = \"$T/root-only/tickets\"; }"
finding jsonro 'json_dir' 78 "user = nobody: a json_dir only root may write" \
	"account acct, stage ticket: 'json_dir' $T/root-only/tickets: user \"nobody\" cannot write it"
cc archro "user = \"nobody\";" "      { plugin = \"archive\";
        path = \"$T/root-only/archive\"; }"
finding archro 'root-only/archive' 78 "user = nobody: an archive path only root may create" \
	"account acct, stage archive: .*root-only/archive: the directory .*root-only is not writable by user nobody"
chown nobody "$T/root-only/tickets"
mm jsonok -c "$T/jsonro.conf" --check-config
rc_is "user = nobody: a json_dir given to nobody: exit 0" 0

#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# mailmilld --test FILE|- [--commit] [--account NAME], no server needed: an
# autoreply pipeline prints its reply and queues nothing; a ticket pipeline
# names the ticket it would open and the store stays as it was; an archive
# says where it would write and writes nothing; with --commit the reply is
# queued, the archive written, and the same message fed again does nothing.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
need sqlite3
mm_setup
plan 26

DB=$T/state/mailmill.db
cat >"$T/c.conf" <<CONF
state_dir = "$T/state";
plugin_dir = "$PLUGIN_DIR";
log = { level = "info"; target = "stderr"; };
accounts = (
  { name = "reply"; host = "127.0.0.1"; port = 1; tls = "none";
    user = "u"; password = "p"; allow_plaintext_password = true; pipeline_end = "done";
    pipeline = (
      { plugin = "filter"; rules = ( { header = "Subject"; match = "hello";
          add_header = "X-Seen: hello"; } ); },
      { plugin = "autoreply"; addresses = [ "help@example.org" ];
        from = "Help <help@example.org>"; body = "Away until Monday."; } ); },
  { name = "desk"; host = "127.0.0.1"; port = 1; tls = "none";
    user = "u"; password = "p"; allow_plaintext_password = true;
    pipeline = (
      { plugin = "ticket"; queue = "support"; from = "Support <support@example.org>"; },
      { plugin = "archive"; path = "$T/desk"; } ); },
  { name = "arch"; host = "127.0.0.1"; port = 1; tls = "none";
    user = "u"; password = "p"; allow_plaintext_password = true;
    pipeline = ( { plugin = "archive"; path = "$T/arch"; } ); }
);
CONF
chmod 600 "$T/c.conf"

# msg NAME FROM SUBJECT: $T/NAME.eml, CRLF line ends as an export may have.
msg() {
	printf 'From: %s\r\nTo: help@example.org\r\nSubject: %s\r\nMessage-ID: <%s@example.net>\r\nDate: Fri, 04 Dec 2026 10:00:00 +0000\r\n\r\nHello.\r\n' \
		"$2" "$3" "$1" >"$T/$1.eml"
}
msg m1 "Alice <alice@example.net>" "hello there"
msg m0 "Carol <carol@example.net>" "first problem"
msg m2 "Bob <bob@example.net>" "second problem"
msg m3 "Dave <dave@example.net>" "keep this"

out_has() { grep -Fq -- "$1" "$MM_OUT"; }
sql() { if [ -f "$DB" ]; then sqlite3 "$DB" "$1"; else echo 0; fi; }
files() { find "$1" -type f 2>/dev/null | wc -l; }

# ---- choosing the account
mm none -c "$T/c.conf" --test "$T/m1.eml"
rc_is "three accounts and no --account: exit 64" 64
check "the message says to name one" err_has "--account NAME"
mm nofile -c "$T/c.conf" --test "$T/missing.eml" --account reply
rc_is "a message that cannot be read: exit 66" 66
mm commitonly -c "$T/c.conf" --commit --account reply
rc_is "--commit without --test: exit 64" 64

# ---- autoreply: the reply in full, nothing queued
mm reply -c "$T/c.conf" --test "$T/m1.eml" --account reply
rc_is "autoreply: exit 0" 0
check "autoreply: each stage's verdict" out_has "stage autoreply: pass"
check "autoreply: the header the filter added" out_has "header added: X-Seen: hello"
check "autoreply: the reply's text" out_has "Away until Monday."
check "autoreply: the reply's headers" \
	grep -q '^In-Reply-To: <m1@example.net>' "$MM_OUT"
is "autoreply: nothing queued" "$(sql 'SELECT count(*) FROM outbox;')" 0

# ---- ticket: the number it would open, the store unchanged
mm desk0 -c "$T/c.conf" --test "$T/m0.eml" --account desk --commit
rc_is "ticket --commit: exit 0" 0
is "ticket --commit: ticket 1 opened" \
	"$(sql "SELECT count(*) FROM kv_ns WHERE ns = 'ticket:support' AND key GLOB 't:*';")" 1
before=$(sqlite3 "$DB" .dump | sha256sum)
mm desk -c "$T/c.conf" --test "$T/m2.eml" --account desk
rc_is "ticket: exit 0" 0
check "ticket: names the ticket it would open" out_has "opened ticket 2 "
check "ticket: shows the acknowledgement" out_has "Subject: [Ticket#000002] second problem"
is "ticket: the store is unchanged" "$(sqlite3 "$DB" .dump | sha256sum)" "$before"

# ---- archive: where it would write, nothing written
mm arch -c "$T/c.conf" --test "$T/m3.eml" --account arch
rc_is "archive: exit 0" 0
check "archive: says where it would write" out_has "would archive to $T/arch"
check "archive: nothing written" test ! -e "$T/arch"
if "$MAILMILLD" -c "$T/c.conf" --test - --account arch <"$T/m3.eml" >"$T/stdin.out" 2>&1 &&
	grep -Fq "would archive to $T/arch" "$T/stdin.out"; then
	ok "- reads the message from stdin"
else
	not_ok "- reads the message from stdin"
fi

# ---- --commit: really done, once
mm replyc -c "$T/c.conf" --test "$T/m1.eml" --account reply --commit
is "autoreply --commit: the reply is queued" \
	"$(sql "SELECT count(*) FROM outbox WHERE rcpts = 'alice@example.net';")" 1
mm archc -c "$T/c.conf" --test "$T/m3.eml" --account arch --commit
is "archive --commit: the message is archived" "$(files "$T/arch/new")" 1
mm archc2 -c "$T/c.conf" --test "$T/m3.eml" --account arch --commit
if [ "$MM_RC" = 0 ] && out_has "processed before" && [ "$(files "$T/arch/new")" = 1 ]; then
	ok "the same message fed again: nothing done"
else
	not_ok "the same message fed again: nothing done"
	show "$MM_OUT"
fi

# ---- --commit as root with `user`: the run is the user's, as --once's
if [ "$(id -u)" -eq 0 ] && getent passwd nobody >/dev/null; then
	plugins_for_worker
	mkdir -p "$T/nb"
	chown nobody "$T/nb"          # the operator's part: the archive is the worker user's
	cat >"$T/nb.conf" <<CONF
user = "nobody";
state_dir = "$T/nb-state";
plugin_dir = "$PLUGIN_DIR";
log = { level = "info"; target = "stderr"; };
accounts = (
  { name = "arch"; host = "127.0.0.1"; port = 1; tls = "none";
    user = "u"; password = "p"; allow_plaintext_password = true;
    pipeline = ( { plugin = "archive"; path = "$T/nb/arch"; } ); }
);
CONF
	chmod 600 "$T/nb.conf"
	mm nb -c "$T/nb.conf" --test "$T/m3.eml" --account arch --commit
	rc_is "user = nobody: --test --commit as root exits 0" 0
	if [ "$(files "$T/nb/arch/new")" = 1 ] && [ "$(find "$T/nb/arch" ! -user nobody | wc -l)" = 0 ]; then
		ok "user = nobody: the archive's directories and file belong to nobody"
	else
		not_ok "user = nobody: the archive's directories and file belong to nobody"
		find "$T/nb/arch" -printf '# %u %p\n'
	fi
	is "user = nobody: the store belongs to nobody" "$(stat -c %U "$T/nb-state/mailmill.db")" nobody
else
	for i in 1 2 3; do skip "user = nobody" "needs root and a user nobody"; done
fi

#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# Messages whose MIME tree is empty, through every plugin that walks it with
# g_mime_message_foreach (filter: attachment and body rules; ticket: the
# JSON export's attachment list; forward: the original as an attachment),
# with GLib criticals fatal (G_DEBUG=fatal-criticals), so a callback that
# hands GMime the NULL part it is given kills the worker:
#  - a multipart/mixed with no part at all (only its close delimiter);
#  - a multipart/alternative whose one part is an empty multipart/mixed;
#  - a message whose first line is no header field: GMime cannot read it,
#    so the plugins get a message without a MIME part, and foreach gives
#    them part NULL.
# Each one passes the filter (no attachment, no body text), gets a ticket
# with no attachments, is forwarded and archived byte for byte.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/smtp.sh"
need dovecot python3 aiosmtpd openssl
mm_setup
smtp_setup
plan 9

env_start srv
M=$T/msgs
mkdir -p "$M" "$T/json"
printf '%s\n' "From: Alice <alice@example.org>" "To: help@example.org" "Subject: empty mixed" \
	"Message-ID: <empty-mixed@example.org>" "MIME-Version: 1.0" \
	'Content-Type: multipart/mixed; boundary="b1"' "" "--b1--" >"$M/mixed.eml"
printf '%s\n' "From: Bob <bob@example.org>" "To: help@example.org" "Subject: empty nested" \
	"Message-ID: <empty-nested@example.org>" "MIME-Version: 1.0" \
	'Content-Type: multipart/alternative; boundary="o"' "" "--o" \
	'Content-Type: multipart/mixed; boundary="i"' "" "--i--" "--o--" >"$M/nested.eml"
printf '%s\n' "no header line" "" "body" >"$M/nohead.eml"
env_seed_files "$M/mixed.eml" "$M/nested.eml" "$M/nohead.eml"

smtp_start cap
C_TOP_EXTRA=$(smtp_conf_group none) \
C_STAGES="      { plugin = \"filter\"; rules = (
          { name = \"att\"; attachment = true; verdict = \"keep\"; },
          { name = \"txt\"; body = \".\"; verdict = \"keep\"; } ); },
      { plugin = \"ticket\"; from = \"Help <help@example.org>\"; acknowledge = false;
        prefix = \"E\"; json_dir = \"$T/json\"; },
      { plugin = \"forward\"; to = [ \"ok@example.net\" ]; mode = \"attach\";
        from = \"Fwd <fwd@example.org>\"; },
      { plugin = \"archive\"; path = \"$T/archive\"; }" write_conf "$T/e.conf"
MM_ENV_EXTRA="G_DEBUG=fatal-criticals" mm run -c "$T/e.conf" --once
rc_is "the run exits 0" 0
check "no GLib critical or warning" sh -c "! grep -Eq 'CRITICAL|WARNING \*\*' '$MM_ERR' '$MM_OUT'"
check "the message without header lines reached the plugins unparsed" \
	err_has "GMime could not parse it"
is "every message deleted from the server" "$(env_count)" 0
check "every message archived byte for byte" archive_matches "$T/archive"
is "ticket: one JSON document per message" "$(find "$T/json" -name '*.json' | wc -l)" 3
check "ticket: no attachment listed in any of them" "$PY" -c '
import json, sys
docs = [json.load(open(f)) for f in sys.argv[1:]]
sys.exit(0 if docs and all(d["attachments"] == [] for d in docs) else 1)' $(find "$T/json" -name '*.json')
is "forward: every message reached the relay" "$(smtp_count)" 3
check "forward: each holds the original as message/rfc822" \
	sh -c "[ \$(grep -l '^Content-Type: message/rfc822' '$SMTP_OUT'/*.eml | wc -l) -eq 3 ]"

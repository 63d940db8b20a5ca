#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# The ticket plugin's export: a webhook on 127.0.0.1 that answers 503 twice
# and then 200 gets three POSTs for one message, all with the same ticket
# number and Idempotency-Key; the message stays on the server until the POST
# succeeds; then exactly one ticket exists, and json_dir holds one complete
# JSON document (the keys, the decoded body, the attachment saved beside it
# with a safe name) and no temporary files.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
need dovecot python3 sqlite3 openssl
mm_setup
plan 18

HOOK_PID=
trap '[ -n "$HOOK_PID" ] && kill "$HOOK_PID" 2>/dev/null; mm_cleanup' EXIT
env_start srv
DB=$T/state/mailmill.db
mkdir -p "$T/json" "$T/hook"

# The receiver: fails the first FAILS POSTs with 503, records every request.
cat >"$T/hook.py" <<'PY'
# mailmill - ISC licence, see LICENSE
import http.server, json, os, sys
out, fails = sys.argv[1], int(sys.argv[2])
seen = [0]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        seen[0] += 1
        code = 503 if seen[0] <= fails else 200
        with open(os.path.join(out, "%d-%d.req" % (seen[0], code)), "w") as f:
            json.dump({"key": self.headers.get("Idempotency-Key"),
                       "type": self.headers.get("Content-Type"),
                       "body": json.loads(body)}, f)
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
with open(os.path.join(out, "port.tmp"), "w") as f:
    f.write(str(s.server_address[1]))
os.rename(os.path.join(out, "port.tmp"), os.path.join(out, "port"))
s.serve_forever()
PY
"$PY" "$T/hook.py" "$T/hook" 2 >"$T/hook.log" 2>&1 &
HOOK_PID=$!
for i in $(seq 1 100); do [ -s "$T/hook/port" ] && break; sleep 0.1; done
HOOK_PORT=$(cat "$T/hook/port")

{
	echo "From: =?utf-8?q?J=C3=BCrgen?= <juergen@example.com>"
	echo "To: support@example.org"
	echo "Subject: =?utf-8?q?Drucker_kaputt_=E2=80=93_bitte_helfen?="
	echo "Message-ID: <hook1@example.com>"
	echo "Date: Mon, 01 Jan 2024 10:00:00 +0000"
	echo "MIME-Version: 1.0"
	echo 'Content-Type: multipart/mixed; boundary="b1"'
	echo
	echo "--b1"
	echo "Content-Type: text/plain; charset=iso-8859-1"
	echo "Content-Transfer-Encoding: quoted-printable"
	echo
	echo "Der Drucker im B=FCro \"druckt\" nicht."
	echo "--b1"
	echo "Content-Type: application/octet-stream"
	echo 'Content-Disposition: attachment; filename="../../etc/pass wd.log"'
	echo "Content-Transfer-Encoding: base64"
	echo
	printf 'log line 1\nlog line 2\n' | base64
	echo "--b1--"
} >"$T/m.eml"
env_seed_files "$T/m.eml"

C_STAGES="      { plugin = \"ticket\"; from = \"support@example.org\"; acknowledge = false;
        prefix = \"ACME\"; json_dir = \"$T/json\";
        webhook_url = \"http://127.0.0.1:$HOOK_PORT/tickets\"; webhook_timeout = 10; },
      { plugin = \"archive\"; path = \"$T/archive\"; }" write_conf "$T/x.conf"

mm r1 -c "$T/x.conf" --once
rc_is "webhook down (503): the run exits 75 (the message was deferred)" 75
is "first POST failed (503): the message stays on the server" "$(env_count)" 1
check "the failure is logged with the status" err_has "webhook http://127.0.0.1:$HOOK_PORT/tickets: HTTP 503"
mm r2 -c "$T/x.conf" --once
is "second POST failed: still on the server" "$(env_count)" 1
is "nothing exported to json_dir yet" "$(find "$T/json" -type f | wc -l)" 0
mm r3 -c "$T/x.conf" --once
rc_is "third run exits 0" 0
is "the message is deleted after the POST succeeded" "$(env_count)" 0
is "three POSTs, one of them successful" "$(ls "$T/hook"/*.req | wc -l) $(ls "$T/hook"/*-200.req | wc -l)" "3 1"
is "one ticket, number 1: a retry burns no number" \
	"$(sqlite3 "$DB" "SELECT count(*) FROM kv_ns WHERE key GLOB 't:*'"):$(sqlite3 "$DB" "SELECT value FROM seq")" "1:1"
is "every POST carried ticket 1 and the same Idempotency-Key" \
	"$("$PY" -c 'import json,sys; r=[json.load(open(f)) for f in sys.argv[1:]]; print(len({(x["key"], x["body"]["ticket"]) for x in r}), r[0]["body"]["ticket"], len(r[0]["key"]), r[0]["type"])' "$T/hook"/*.req)" \
	"1 1 64 application/json"
docs=$(find "$T/json" -name '*.json')
is "one JSON document in json_dir" "$(echo "$docs" | grep -c .)" 1
is "no temporary files left" "$(find "$T/json" -name '.*' -type f | wc -l)" 0
check "the document is valid JSON with the required keys" "$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("ticket", "event", "message_id", "from", "subject", "received", "headers", "body", "attachments"):
    assert k in d, k
assert d["ticket"] == 1 and d["event"] == "opened" and d["tag"] == "[ACME#000001]", d
assert d["message_id"] == "hook1@example.com" and d["from"] == "juergen@example.com", d
' "$docs"
is "the subject is RFC 2047-decoded" "$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["subject"])' "$docs")" "Drucker kaputt – bitte helfen"
is "the body is decoded to UTF-8" "$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["body"].strip())' "$docs")" 'Der Drucker im Büro "druckt" nicht.'
att=$("$PY" -c 'import json,sys; a=json.load(open(sys.argv[1]))["attachments"]; print(len(a), a[0]["filename"], a[0]["file"], a[0]["size"])' "$docs")
case $att in
"1 ../../etc/pass wd.log "*-1-pass_wd.log" 22") ok "the attachment is listed with a safe file name" ;;
*) not_ok "the attachment is listed with a safe file name"; diag "got: $att" ;;
esac
f=$(echo "$att" | cut -d' ' -f4)
is "the attachment is saved beside the document, decoded" "$(cat "$T/json/$f" 2>&1)" "log line 1
log line 2"
check "nothing was written outside json_dir" test ! -e "$T/etc/pass wd.log"

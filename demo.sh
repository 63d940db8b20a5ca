#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# The demo, as root on a fresh Debian 12: installs what is missing, builds
# mailmill, starts a private Dovecot POP3 server on loopback with sample mail
# for the user "demo", writes _demo/mailmill.conf from etc/demo.conf.in, runs
# `mailmilld --once`, shows what happened, and stops Dovecot.  Each run starts
# from the same sample mail, so running it twice shows the same thing.
set -euo pipefail

SRC=$(cd "$(dirname "$0")" && pwd)
DEMO=$SRC/_demo
# Its own build tree: tests/run configures _build/ with other options.
BUILD=${BUILD_DIR:-$SRC/_build-demo}
PY=/usr/bin/python3
cd "$SRC"

say() { printf '\n== %s\n' "$*"; }

say "Installing what is missing (tests/lib/deps.sh)"
./tests/lib/deps.sh

say "Building in ${BUILD#"$SRC"/}"
[ -x configure ] || autoreconf -fi
mkdir -p "$BUILD"
if [ ! -f "$BUILD/Makefile" ]; then
	(cd "$BUILD" && "$SRC/configure" -q)
fi
make -s -C "$BUILD" -j2 mailmilld plugins/archive.la plugins/autoreply.la >"$DEMO.build.log" 2>&1 ||
	{ tail -n 30 "$DEMO.build.log"; echo "build failed (see $DEMO.build.log)"; exit 1; }
rm -f "$DEMO.build.log"

# Dovecot's unprivileged processes must reach its directory; a clone under
# /root is not searchable by them, so the server then lives under /tmp.
server=$DEMO/server
d=$SRC
while [ "$d" != / ]; do
	case $(stat -c %A "$d") in
	*[xt]) ;;
	*) server=${TMPDIR:-/tmp}/mailmill-demo-server.$(id -u); break ;;
	esac
	d=$(dirname "$d")
done

say "Starting a private Dovecot on loopback ($server)"
./tests/lib/mailenv.sh stop "$server" >/dev/null 2>&1 || true
rm -rf "$DEMO" "$server"
mkdir -p "$DEMO"
sink_pid=
stop_all() {
	[ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null && wait "$sink_pid" 2>/dev/null
	./tests/lib/mailenv.sh stop "$server" >/dev/null 2>&1 || true
}
trap stop_all EXIT
./tests/lib/mailenv.sh start "$server" --users demo --password "demo-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
# shellcheck disable=SC1091
. "$server/env.sh"

# The replies go to an SMTP sink on loopback (STARTTLS with the demo's CA): it
# keeps each message it accepts as _demo/sent/NNNN.eml.
say "Starting an SMTP sink on loopback (_demo/sent)"
mkdir -p "$DEMO/sent"
"$PY" tests/lib/smtp_capture.py --outdir "$DEMO/sent" --port-file "$DEMO/sent/port" \
	--cert "$server/ssl/server.crt" --key "$server/ssl/server.key" >"$DEMO/smtp.log" 2>&1 &
sink_pid=$!
for _ in $(seq 1 100); do
	[ -s "$DEMO/sent/port" ] && break
	sleep 0.1
done
[ -s "$DEMO/sent/port" ] || { cat "$DEMO/smtp.log"; echo "cannot start the SMTP sink"; exit 1; }
SMTP_PORT=$(cat "$DEMO/sent/port")
echo "SMTP with STARTTLS on localhost:$SMTP_PORT"
md=$server/mail/demo/Maildir
"$PY" tests/lib/seed.py "$md" 14 --seed demo --owner "$MAILENV_MAIL_UID:$MAILENV_MAIL_GID" >/dev/null
for f in tests/data/corpus/*.eml; do
	n=1700001000.$(basename "$f" .eml).demo
	cp "$f" "$md/new/$n"
	chown "$MAILENV_MAIL_UID:$MAILENV_MAIL_GID" "$md/new/$n" 2>/dev/null || true
done
before=$(find "$md/new" "$md/cur" -type f | wc -l)
echo "POP3 with STLS on localhost:$POP3_PORT, user demo: $before messages waiting"
echo "(14 generated: plain, multipart, 8-bit, encoded words, long lines; and"
echo " $((before - 14)) real-world messages from tests/data/corpus, some malformed)"

say "Writing $DEMO/mailmill.conf from etc/demo.conf.in"
sed -e "s|@STATE_DIR@|$DEMO/state|" -e "s|@PLUGIN_DIR@|$BUILD/plugins/.libs|" \
	-e "s|@PORT@|$POP3_PORT|" -e "s|@CA_FILE@|$MAILENV_CA|" -e "s|@USER@|demo|" \
	-e "s|@PASSWORD@|$MAILENV_PASS|" -e "s|@ARCHIVE@|$DEMO/archive|" \
	-e "s|@SMTP_PORT@|$SMTP_PORT|" \
	etc/demo.conf.in >"$DEMO/mailmill.conf"
chmod 600 "$DEMO/mailmill.conf"
"$BUILD/mailmilld" -c "$DEMO/mailmill.conf" --check-config

say "Running: mailmilld -c _demo/mailmill.conf --once"
set +e
"$BUILD/mailmilld" -c "$DEMO/mailmill.conf" --once 2>&1 | tee "$DEMO/run.log"
rc=${PIPESTATUS[0]}
set -e
echo "exit status: $rc"

say "What happened"
archived=$(find "$DEMO/archive" -type f -path '*/new/*' 2>/dev/null | wc -l)
left=$(find "$md/new" "$md/cur" -type f | wc -l)
echo "Archive: $DEMO/archive  ($archived messages, Maildir folders by month)"
(cd "$DEMO/archive" 2>/dev/null && find . -type d -name new | sort | while read -r f; do
	printf '  %-14s %s messages\n' "${f%/new}" "$(find "$f" -type f | wc -l)"
done) || true
replies=$(find "$DEMO/sent" -name '*.eml' | wc -l)
echo "Auto-replies accepted by the SMTP sink: $replies (in _demo/sent/)"
first=$(find "$DEMO/sent" -name '*.eml' | sort | head -n 1)
if [ -n "$first" ]; then
	echo "  the first one's header:"
	sed -n '1,/^\r\{0,1\}$/p' "$first" | tr -d '\r' | grep -E '^(From|To|Subject|Auto-Submitted|In-Reply-To):' |
		sed 's/^/    /'
fi
echo "Journal: $DEMO/state/mailmill.db"
if command -v sqlite3 >/dev/null && [ -f "$DEMO/state/mailmill.db" ]; then
	sqlite3 "$DEMO/state/mailmill.db" \
		"SELECT '  ' || CASE state WHEN 1 THEN 'processed, DELE pending' WHEN 2 THEN 'kept'
		 WHEN 3 THEN 'processed and deleted' WHEN 4 THEN 'quarantined' ELSE state END
		 || ': ' || count(*) FROM ledger GROUP BY state;" || true
fi
echo "Left on the server for demo: $left of $before messages"
echo "Log of this run: $DEMO/run.log"
echo "(the demo's Dovecot stops now; ./demo.sh starts again from fresh sample mail)"
exit "$rc"

# mailmill - ISC licence, see LICENSE
#
# Several daemons on one private PostgreSQL and one private Dovecot, for the
# cluster tests (t-cluster*.sh).  Sourced after common.sh, smtp.sh and pg.sh.
#   cl_start NUSERS          PostgreSQL, Dovecot with users u1..uNUSERS, an
#                            SMTP capture server; one EXIT trap stops them all
#   cl_seed ROUND K [SUBJ]   K new messages in every mailbox (unique
#                            Message-IDs and senders), copies in $T/expected
#   cl_conf N [extra]        $T/dN.conf: daemon N's configuration (the same for
#                            every daemon but state_dir): every account runs
#                            ticket (one queue) then archive ($T/archive/USER)
#   cl_daemon N              start daemon N in its own process group (DPID_N)
#   cl_kill9 N / cl_stop N / cl_cont N / cl_term N: its whole group
#   cl_left                  messages still on the server, every mailbox
#   cl_tickets / cl_ticket_numbers / cl_acks / cl_outbox_sent
#   cl_archive_exact         every message archived exactly once, byte for byte
CL_USERS=0
cl_pids=()

cl_stop_all() {
	local p
	for p in "${cl_pids[@]}"; do kill -CONT -- "-$p" 2>/dev/null; kill -9 -- "-$p" 2>/dev/null; done
	smtp_stop_all
	pg_stop
	mm_cleanup
}

cl_start() {
	local i users=
	CL_USERS=$1
	for i in $(seq 1 "$CL_USERS"); do users="$users u$i"; done
	pg_start "$T/pg"
	env_start srv --no-ssl --users "${users# }"
	smtp_start cap
	trap cl_stop_all EXIT
	mkdir -p "$T/expected" "$T/archive"
}

cl_seed() {
	local round=$1 k=$2 subj=${3:-Question}
	"$PY" - "$ENV/mail" "$T/expected" "$CL_USERS" "$round" "$k" "$subj" \
		"$MAILENV_MAIL_UID" "$MAILENV_MAIL_GID" <<'PYEOF'
import os, sys, time
mail, exp, n, rnd, k, subj, uid, gid = sys.argv[1:]
for u in range(1, int(n) + 1):
    user = "u%d" % u
    new = os.path.join(mail, user, "Maildir", "new")
    ed = os.path.join(exp, user)
    os.makedirs(ed, exist_ok=True)
    # Dovecot may be (re)creating a Maildir it found empty: make sure.
    for d in (os.path.dirname(new), new):
        if not os.path.isdir(d):
            os.makedirs(d, exist_ok=True)
            try:
                os.chown(d, int(uid), int(gid))
            except (PermissionError, FileNotFoundError):
                pass
    for i in range(int(k)):
        tag = "%s-r%s-%d" % (user, rnd, i)
        body = ("Return-Path: <s-%s@example.com>\nFrom: <s-%s@example.com>\n"
                "To: Support <support@example.org>\nSubject: %s %s\n"
                "Message-ID: <%s@example.com>\nDate: Mon, 01 Jan 2024 10:00:00 +0000\n\n"
                "Body of %s.\n") % (tag, tag, subj, tag, tag, tag)
        name = "%d.R%s_%d.cluster" % (int(time.time()), rnd, i)
        for d in (new, ed):
            with open(os.path.join(d, name), "w") as f:
                f.write(body)
        try:
            os.chown(os.path.join(new, name), int(uid), int(gid))
        except (PermissionError, FileNotFoundError):  # already fetched and deleted
            pass
PYEOF
	[ $? = 0 ] || { echo "Bail out! cannot seed round $round"; exit 1; }
}

# cl_conf N [extra top-level lines]: C_INTERVAL (default 3s), C_TTL (3s),
# C_STAGES_FIRST (stages before ticket) may change it.
cl_conf() {
	local n=$1 u f=$T/d$1.conf
	shift
	{
		echo "state_dir = \"$T/state$n\";"
		echo "plugin_dir = \"$PLUGIN_DIR\";"
		echo "log = { level = \"${C_LOG_LEVEL:-info}\"; target = \"stderr\"; };"
		echo "store = { driver = \"postgresql\"; conninfo = \"$PG_CONNINFO\";"
		echo "  password_file = \"$PG_PASSFILE\"; sslmode = \"disable\"; };"
		echo "lease_ttl = \"${C_TTL:-3s}\"; workers = ${C_WORKERS:-4};"
		echo "outbox_interval = \"1s\"; max_backoff = \"4s\";"
		smtp_conf_group none
		[ $# -gt 0 ] && printf '%s\n' "$@"
		echo "accounts = ("
		for u in $(seq 1 "$CL_USERS"); do
			[ "$u" -gt 1 ] && echo ","
			echo "{ name = \"a$u\"; host = \"localhost\"; port = $POP3_PORT; tls = \"none\";"
			echo "  user = \"u$u\"; password = \"$MAILENV_PASS\"; allow_plaintext_password = true;"
			echo "  interval = \"${C_INTERVAL:-3s}\";"
			echo "  pipeline = ( ${C_STAGES_FIRST:-}"
			echo "    { plugin = \"ticket\"; queue = \"support\"; from = \"Support <support@example.org>\"; },"
			echo "    { plugin = \"archive\"; path = \"$T/archive/u$u\"; } ); }"
		done
		echo ");"
	} >"$f"
	chmod 600 "$f"
}

cl_daemon() {
	local n=$1
	setsid "$MAILMILLD" -f -c "$T/d$n.conf" >>"$T/d$n.log" 2>&1 </dev/null &
	eval "DPID_$n=$!"
	cl_pids+=($!)
	disown $!   # killed on purpose: no "Killed" line from bash
}
cl_pid() { eval "echo \$DPID_$1"; }
cl_kill9() { kill -9 -- "-$(cl_pid "$1")" 2>/dev/null; }
cl_pause() { kill -STOP -- "-$(cl_pid "$1")"; }
cl_cont() { kill -CONT -- "-$(cl_pid "$1")"; }
cl_term() {
	local p
	p=$(cl_pid "$1")
	kill -TERM "$p" 2>/dev/null
	for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
	kill -9 -- "-$p" 2>/dev/null
	return 1
}
cl_alive() { kill -0 "$(cl_pid "$1")" 2>/dev/null; }

cl_left() { find "$ENV"/mail/u*/Maildir/new "$ENV"/mail/u*/Maildir/cur -type f | wc -l; }
cl_tickets() {
	pg_sql "SELECT count(*) FROM kv_ns WHERE ns = 'ticket:support' AND key LIKE 't:%';"
}
# Distinct ticket numbers given to distinct Message-IDs.
cl_ticket_numbers() {
	pg_sql "SELECT count(DISTINCT value) FROM kv_ns WHERE ns = 'ticket:support' AND key LIKE 'mid:%';"
}
cl_acks() { smtp_count; }
cl_outbox_sent() { pg_sql "SELECT count(*) FROM outbox;"; }
cl_expected() { find "$T/expected" -type f | wc -l; }

# Every expected message in its account's archive, once, byte for byte.
cl_archive_exact() {
	local a b
	a=$(cd "$T/expected" && find . -type f -print0 | xargs -0r sha256sum |
		sed 's|  \./\([^/]*\)/.*|  \1|' | sort)
	b=$(cd "$T/archive" && find . -type f \( -path '*/new/*' -o -path '*/cur/*' \) -print0 |
		xargs -0r sha256sum | sed 's|  \./\([^/]*\)/.*|  \1|' | sort)
	[ "$a" = "$b" ] && return 0
	diag "archive differs from what was sent (< expected, > archived):"
	diff <(echo "$a") <(echo "$b") | head -n 10 | sed 's/^/# /'
	return 1
}

# All done: mailboxes empty, one ticket and one acknowledgement per message.
cl_all_done() {
	local want
	want=$(cl_expected)
	[ "$(cl_left)" = 0 ] && [ "$(cl_tickets)" = "$want" ] && [ "$(cl_acks)" = "$want" ]
}
# How many accounts daemon N ran (its log's run lines).
cl_ran() { grep -Eo 'a[0-9]+: run finished' "$T/d$1.log" | sort -u | wc -l; }

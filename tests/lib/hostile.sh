# mailmill - ISC licence, see LICENSE
#
# Sourced by tests/integration/t-hostile-*.sh after common.sh.  Runs mailmilld
# against tests/lib/badserver.py, one scenario per case:
#   bs_start NAME JSON      start a badserver from a scenario (JSON object;
#                           "messages" defaults to $BS_MSGS, user1/secret);
#                           sets BS_PORT, BS_REPORT
#   bs_stop                 stop it (the report stays)
#   bs_deleted / bs_remaining   UIDs from the report, comma-separated
#   hcase NAME RC REGEX DELETED JSON [SECONDS]   (HC_WANT_LABEL: DELETED as the test names it)
#                           one scenario, four TAP tests: exit status RC and no
#                           crash or sanitizer report; a log line matching
#                           REGEX; exactly the UIDs DELETED deleted on the
#                           server ("" for none); finished within SECONDS
#                           (default 12; the config's timeouts are 2s)
# Knobs: HC_ACCOUNT_EXTRA (more account lines), HC_ARGS (mailmilld args),
# HC_TIMEOUT (the per-command deadline, default 2s).

bs_pids=()
BS_MSGS='[]'

bs_cleanup() {
	local p
	for p in "${bs_pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${bs_pids[@]}"; do wait "$p" 2>/dev/null || true; done
	bs_pids=()
	mm_cleanup
}

hostile_setup() {
	mm_setup
	trap bs_cleanup EXIT
}

# make_msgs N: N small plain messages in $T/msgs; sets BS_MSGS.
make_msgs() {
	local i list=
	mkdir -p "$T/msgs"
	for i in $(seq "$1"); do
		printf 'From: a%d@example.org\nTo: b@example.org\nSubject: hostile test %d\nMessage-ID: <%d.hostile@example.org>\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n\nbody %d\n.dot line\n' \
			"$i" "$i" "$i" "$i" >"$T/msgs/m$i.eml"
		list="$list${list:+,}{\"file\": \"$T/msgs/m$i.eml\"}"
	done
	BS_MSGS="[$list]"
}

bs_start() {
	local name=$1 json=$2 i
	BS_DIR=$T/bs-$name
	mkdir -p "$BS_DIR"
	BS_REPORT=$BS_DIR/report.json
	"$PY" - "$json" "$BS_MSGS" "$BS_DIR/scenario.json" <<'EOF' || { echo "Bail out! bad scenario $name"; exit 1; }
import json, sys
sc = json.loads(sys.argv[1])
sc.setdefault("messages", json.loads(sys.argv[2]))
sc.setdefault("user", "user1")
sc.setdefault("pass", "secret")
json.dump(sc, open(sys.argv[3], "w"), indent=1)
EOF
	rm -f "$BS_DIR/port"
	"$PY" "$MM_LIB/badserver.py" "$BS_DIR/scenario.json" "$BS_DIR/port" "$BS_REPORT" \
		2>"$BS_DIR/stderr" &
	BS_PID=$!
	bs_pids+=("$BS_PID")
	for i in $(seq 100); do
		[ -s "$BS_DIR/port" ] && break
		sleep 0.05
	done
	if [ ! -s "$BS_DIR/port" ]; then
		show "$BS_DIR/stderr"
		echo "Bail out! badserver $name did not start"
		exit 1
	fi
	BS_PORT=$(cat "$BS_DIR/port")
}

bs_stop() {
	kill "$BS_PID" 2>/dev/null || true
	wait "$BS_PID" 2>/dev/null || true
	if grep -q Traceback "$BS_DIR/stderr"; then show "$BS_DIR/stderr"; fi
}

bs_field() {
	"$PY" -c 'import json,sys; print(",".join(json.load(open(sys.argv[1]))[sys.argv[2]]))' \
		"$BS_REPORT" "$1"
}
bs_deleted() { bs_field deleted; }
bs_remaining() { bs_field remaining; }
bs_secret_before_tls() {
	"$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["secret_before_tls"])' "$BS_REPORT"
}

# hconf NAME: a config for the running badserver in $T/NAME.conf.
hconf() {
	C_HOST=127.0.0.1 C_PORT=$BS_PORT C_USER=user1 C_PASS=secret MM_USER=user1 \
		MAILENV_PASS=secret MAILENV_CA= POP3_PORT=$BS_PORT \
		C_ARCHIVE=${C_ARCHIVE:-$T/archive-$1} C_STATE=${C_STATE:-$T/state-$1} \
		C_ACCOUNT_EXTRA="timeout = \"${HC_TIMEOUT:-2s}\"; connect_timeout = \"2s\"; ${HC_ACCOUNT_EXTRA:-}" \
		write_conf "$T/$1.conf"
}

# no_crash: the last mm neither died of a signal nor printed a sanitizer report.
no_crash() {
	[ "$MM_RC" -lt 124 ] && ! grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error:' "$MM_ERR"
}

hcase() {
	local name=$1 rc=$2 re=$3 want=$4 json=$5 secs=${6:-12} t0 t1 got
	bs_start "$name" "$json"
	hconf "$name"
	t0=$(date +%s%N)
	# shellcheck disable=SC2086
	mm "$name" -c "$T/$name.conf" --once ${HC_ARGS:-}
	t1=$(date +%s%N)
	bs_stop
	if [ "$MM_RC" = "$rc" ] && no_crash; then
		ok "$name: exit status $rc, no crash"
	else
		not_ok "$name: exit status $rc, no crash"
		diag "exit status $MM_RC"
		show "$MM_ERR" 15
	fi
	if err_has "$re"; then
		ok "$name: log says /$re/"
	else
		not_ok "$name: log says /$re/"
		show "$MM_ERR" 15
	fi
	got=$(bs_deleted)
	is "$name: deleted on the server: [${HC_WANT_LABEL:-$want}]" "$got" "$want"
	HC_ELAPSED_MS=$(((t1 - t0) / 1000000))
	if [ "$HC_ELAPSED_MS" -le $((secs * 1000)) ]; then
		ok "$name: finished in ${HC_ELAPSED_MS}ms (bound ${secs}s)"
	else
		not_ok "$name: finished in ${HC_ELAPSED_MS}ms (bound ${secs}s)"
	fi
}

# archive_has DIR FILE...: the Maildir DIR holds exactly these messages, byte for byte.
archive_has() {
	local d=$1
	shift
	if [ "$(hashes "$d")" = "$(sha256sum "$@" | cut -d' ' -f1 | sort)" ]; then return 0; fi
	diag "archive $d differs: $(hashes "$d" | wc -l) file(s) for $# expected"
	return 1
}

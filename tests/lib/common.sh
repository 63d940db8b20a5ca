# mailmill - ISC licence, see LICENSE
#
# Sourced by tests/integration/t-*.sh (bash).  Provides:
#   TAP: plan N, ok DESC, not_ok DESC, check DESC CMD..., skip DESC REASON, diag TEXT
#   need WHAT...            before plan: skip the whole script ("1..0 # SKIP") when
#                           a server or tool it needs is not installed
#   mm_setup                work dir $T (under /tmp: Dovecot's unprivileged
#                           processes must reach it) and an EXIT trap that
#                           always stops every server this script started
#   env_start NAME [opts]   start a private Dovecot in $T/NAME (tests/lib/mailenv.sh)
#                           and source its env.sh; env_seed/env_count/... use it
#   mm NAME ARGS...         run mailmilld with a deadline; $MM_RC, $T/NAME.out/.err
#   write_conf FILE         a config from the C_* variables (see below)
#   wait_for SECS CMD...    poll until CMD succeeds
# The work dir is removed when every test passed, and kept (and named) otherwise
# or when MM_KEEP=1.
set -u

MM_SRCDIR=${MM_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
MM_BUILDDIR=${MM_BUILDDIR:-$MM_SRCDIR/_build}
MM_LIB=$MM_SRCDIR/tests/lib
MAILMILLD=$MM_BUILDDIR/mailmilld
PLUGIN_DIR=$MM_BUILDDIR/plugins/.libs
TEST_PLUGIN_DIR=$MM_BUILDDIR/tests/plugins/.libs

# plugins_for_worker: copies of the plugins in $T/plugins, where a worker that
# drops to `user` can read them even when the build tree is private (a clone
# in /root, mode 0700); PLUGIN_DIR and TEST_PLUGIN_DIR then point there.
plugins_for_worker() {
	mkdir -p "$T/plugins"
	cp "$PLUGIN_DIR"/*.so "$TEST_PLUGIN_DIR/verdict.so" "$T/plugins/"
	chmod -R a+rX "$T/plugins"
	PLUGIN_DIR=$T/plugins
	TEST_PLUGIN_DIR=$T/plugins
}
CORPUS_DIR=$MM_SRCDIR/tests/data/corpus
PY=/usr/bin/python3
# The Dovecot binary (tests/lib/mailenv.sh uses the same); another path, e.g.
# one that does not exist, shows what a machine without Dovecot does.
MM_DOVECOT=${MM_DOVECOT:-/usr/sbin/dovecot}
export MM_DOVECOT
# A run that hangs must not hang the suite.
MM_TIMEOUT=${MM_TIMEOUT:-60}

tap_n=0
tap_failed=0
tap_plan=0
T=
mm_envs=()

plan() { tap_plan=$1; echo "1..$1"; }
diag() { printf '%s\n' "$@" | sed 's/^/# /'; }
ok() { tap_n=$((tap_n + 1)); echo "ok $tap_n - $*"; }
not_ok() {
	tap_n=$((tap_n + 1)); tap_failed=$((tap_failed + 1))
	echo "not ok $tap_n - $*"
}
skip() { tap_n=$((tap_n + 1)); echo "ok $tap_n - $1 # SKIP ${2:-}"; }

# mm_have WHAT: is this server, tool or Python module installed?  Only
# absence counts: an installed server that fails to start is a failure.
mm_have() {
	case $1 in
	dovecot) [ -x "$MM_DOVECOT" ] && [ -e /usr/lib/dovecot/pop3 ] ;;
	dovecot-imap) [ -x "$MM_DOVECOT" ] && [ -e /usr/lib/dovecot/imap ] && [ -e /usr/lib/dovecot/pop3 ] ;;
	postfix) command -v postfix >/dev/null 2>&1 ;;
	python3) [ -x "$PY" ] ;;
	aiosmtpd) [ -x "$PY" ] && "$PY" -c 'import aiosmtpd' >/dev/null 2>&1 ;;
	curl | openssl | sqlite3) command -v "$1" >/dev/null 2>&1 ;;
	*) echo "Bail out! need: unknown requirement '$1'"; exit 1 ;;
	esac
}
# need WHAT...: call before plan.  Skips the whole script (TAP "1..0 # SKIP",
# counted as skipped by tests/run) unless everything named is installed.
need() {
	local w missing=
	for w in "$@"; do
		mm_have "$w" || missing="$missing $w"
	done
	[ -z "$missing" ] && return 0
	echo "1..0 # SKIP not installed:$missing"
	exit 0
}
# mm_skip_rest WHAT: the safety net of env_start and the other starters for a
# script that did not say `need WHAT`: if WHAT is absent, the tests not run
# yet are skipped (or the whole script, before its plan) instead of failing.
mm_skip_rest() {
	mm_have "$1" && return 0
	if [ "$tap_plan" = 0 ]; then
		echo "1..0 # SKIP not installed: $1"
	else
		while [ "$tap_n" -lt "$tap_plan" ]; do skip "not run" "not installed: $1"; done
	fi
	exit 0
}
# check DESC CMD...: one test from a command's status.
check() {
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}
# is DESC GOT WANT
is() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1"; diag "got '$2', want '$3'"; fi
}
# Show a file's tail in the TAP stream (after a failure).
show() { [ -s "$1" ] && { diag "--- $1"; tail -n "${2:-20}" "$1" | sed 's/^/# /'; }; return 0; }

mm_cleanup() {
	local e
	for e in "${mm_envs[@]}"; do
		"$MM_LIB/mailenv.sh" stop "$e" >/dev/null 2>&1 || true
	done
	[ -n "$T" ] || return 0
	if [ "$tap_failed" -eq 0 ] && [ "$tap_n" -eq "$tap_plan" ] && [ "${MM_KEEP:-0}" != 1 ]; then
		rm -rf "$T"
	else
		echo "# work dir kept: $T"
	fi
}

mm_setup() {
	T=$(mktemp -d "${MM_TMPDIR:-/tmp}/mmt.XXXXXX") || { echo "Bail out! mktemp"; exit 1; }
	chmod 755 "$T"
	trap mm_cleanup EXIT
	trap 'exit 130' INT TERM HUP
	if [ ! -x "$MAILMILLD" ]; then
		echo "Bail out! $MAILMILLD is not built"
		exit 1
	fi
}

# wait_for SECONDS CMD...: poll until CMD succeeds.
wait_for() {
	local end=$((SECONDS + $1))
	shift
	while ! "$@"; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.2
	done
}

# True when mailmilld was built with --enable-crashpoints.
have_crashpoints() {
	grep -Eq '^#define MM_CRASHPOINTS 1' "$MM_BUILDDIR/config.h" 2>/dev/null
}

# ------------------------------------------------------------------ Dovecot
# env_start NAME [mailenv options]: sets ENV (its dir), MD (user1's Maildir),
# and everything in its env.sh (POP3_PORT, POP3S_PORT, MAILENV_CA, ...).
env_start() {
	local name=$1
	shift
	ENV=$T/$name
	mm_skip_rest dovecot
	mm_envs+=("$ENV")
	if ! "$MM_LIB/mailenv.sh" start "$ENV" "$@" >"$T/$name.start.log" 2>&1; then
		cat "$T/$name.start.log" | sed 's/^/# /'
		echo "Bail out! cannot start Dovecot ($name)"
		exit 1
	fi
	# shellcheck disable=SC1091
	. "$ENV/env.sh"
	env_user user1
}

# env_user USER: later env_seed/env_count/archive_matches work on USER's
# Maildir ($MD) and its own expected set ($EXPECTED).
env_user() {
	MM_USER=$1
	MD=$ENV/mail/$1/Maildir
	EXPECTED=$ENV/expected-$1
}

# env_seed N [seed.py options]: messages for the user, copies in $EXPECTED.
env_seed() {
	"$PY" "$MM_LIB/seed.py" "$MD" "$@" --expected "$EXPECTED" \
		--owner "$MAILENV_MAIL_UID:$MAILENV_MAIL_GID" >>"$ENV/seed.log"
}

# env_seed_files FILE...: real-world messages, byte for byte.
env_seed_files() {
	local f n
	mkdir -p "$EXPECTED"
	for f in "$@"; do
		n=$(date +%s).M$RANDOM$RANDOM.$(basename "$f" | tr -c 'A-Za-z0-9_.\n-' _)
		cp "$f" "$MD/new/$n"
		cp "$f" "$EXPECTED/$n"
		chown "$MAILENV_MAIL_UID:$MAILENV_MAIL_GID" "$MD/new/$n" 2>/dev/null || true
	done
}

# env_seed_folder FOLDER N [seed.py options]: as env_seed, into the IMAP
# folder FOLDER (Maildir++: $MD/.FOLDER; a new folder is made).
env_seed_folder() {
	local f=$1
	shift
	"$PY" "$MM_LIB/seed.py" "$MD/.$f" "$@" --expected "$EXPECTED" \
		--owner "$MAILENV_MAIL_UID:$MAILENV_MAIL_GID" >>"$ENV/seed.log"
	: >>"$MD/.$f/maildirfolder"
	chown -R "$MAILENV_MAIL_UID:$MAILENV_MAIL_GID" "$MD/.$f" 2>/dev/null || true
}

# daemon_start NAME CONF: mailmilld -f in the background; its log is $DLOG,
# its pid $DPID.
daemon_start() {
	DLOG=$T/$1.log
	"$MAILMILLD" -f -c "$2" >"$DLOG" 2>&1 </dev/null &
	DPID=$!
}
# log_has REGEX: the daemon's log ($DLOG) has a line matching it.
log_has() { grep -Eq -- "$1" "$DLOG"; }

# imapc COMMAND ARGS...: tests/lib/imapc.py as the current user, over plain
# IMAP: another mail client, to seed, flag and read back the server's state.
imapc() { "$PY" "$MM_LIB/imapc.py" "$IMAP_PORT" "$MM_USER" "$MAILENV_PASS" "$@" </dev/null; }
# imap_count FOLDER: messages in FOLDER (0 when it does not exist).
imap_count() { imapc state "$1" 2>/dev/null | wc -l; }

# Messages on the server for the user (Dovecot moves new/ to cur/ when it sees them).
env_count() { find "$MD/new" "$MD/cur" -type f | wc -l; }

# The sorted SHA-256 of every message file under the given Maildirs/dirs.
hashes() {
	find "$@" -type f \( -path '*/new/*' -o -path '*/cur/*' \) -print0 2>/dev/null |
		xargs -0r sha256sum | cut -d' ' -f1 | sort
}
expected_hashes() { find "$EXPECTED" -type f -print0 | xargs -0r sha256sum | cut -d' ' -f1 | sort; }
archive_count() { hashes "$@" | wc -l; }
# Archive equals the expected set exactly: each message once, byte for byte.
archive_matches() {
	local a=$1
	if [ "$(hashes "$a")" = "$(expected_hashes)" ]; then return 0; fi
	diag "archive $a differs from $EXPECTED:"
	diff <(hashes "$a") <(expected_hashes) | head -n 20 | sed 's/^/# /'
	return 1
}

# Rows in the journal for an account (0 when there is no database).
ledger_rows() { # STATE_DIR ACCOUNT [WHERE]
	local db=$1/mailmill.db
	[ -f "$db" ] || { echo 0; return; }
	sqlite3 "$db" "SELECT count(*) FROM ledger WHERE account = '$2' ${3:+AND $3};"
}
ledger_distinct() {
	local db=$1/mailmill.db
	[ -f "$db" ] || { echo 0; return; }
	sqlite3 "$db" "SELECT count(DISTINCT uid) FROM ledger WHERE account = '$2';"
}

# ------------------------------------------------------------------ mailmilld
# mm NAME ARGS...: run mailmilld (env MM_ENV_EXTRA="VAR=value ..." adds
# variables); exit status in MM_RC, output in $T/NAME.out and $T/NAME.err.
mm() {
	local name=$1
	shift
	MM_OUT=$T/$name.out
	MM_ERR=$T/$name.err
	MM_RC=0
	# shellcheck disable=SC2086
	env ${MM_ENV_EXTRA:-} timeout -k 5 "$MM_TIMEOUT" "$MAILMILLD" "$@" \
		>"$MM_OUT" 2>"$MM_ERR" </dev/null || MM_RC=$?
	return 0
}
# rc_is DESC WANT: one test on the last mm's exit status; shows stderr if not.
rc_is() {
	if [ "$MM_RC" = "$2" ]; then
		ok "$1"
	else
		not_ok "$1"
		diag "exit status $MM_RC, want $2"
		show "$MM_ERR" 30
	fi
}
err_has() { grep -Eq -- "$1" "$MM_ERR" "$MM_OUT"; }
# The last mm reached its crash point and was killed there: --once itself
# (137: a crash point in the outbox flush) or, as in the daemon, the
# account's worker (--once then records the crash and exits 75).
mm_crashed() {
	err_has 'crash point reached' &&
		{ [ "$MM_RC" = 137 ] || { [ "$MM_RC" = 75 ] && err_has 'crashed \(signal 9'; }; }
}

# write_conf FILE: a one-account configuration.  Knobs (all optional):
#   C_NAME (acct)  C_HOST (localhost)  C_PORT ($POP3_PORT)  C_TLS (none)
#   C_USER (env_user) C_PASS ($MAILENV_PASS)  C_CA ($MAILENV_CA; "" = none)
#   C_STATE ($T/state)  C_ARCHIVE ($T/archive)  C_FORMAT (maildir)
#   C_ACCOUNT_EXTRA (lines inside the account)  C_STAGES (replaces the pipeline)
#   C_TOP_EXTRA (lines at top level)
#   C_PROTOCOL (pop3; "imap": protocol = "imap" and the port default $IMAP_PORT)
write_conf() {
	local f=$1 tls=${C_TLS:-none} port=${C_PORT:-$POP3_PORT} ca=${C_CA-$MAILENV_CA}
	[ "${C_PROTOCOL:-pop3}" = imap ] && port=${C_PORT:-$IMAP_PORT}
	{
		echo "# written by tests/lib/common.sh"
		echo "state_dir = \"${C_STATE:-$T/state}\";"
		echo "plugin_dir = \"$PLUGIN_DIR\";"
		echo "log = { level = \"${C_LOG_LEVEL:-info}\"; target = \"stderr\"; };"
		[ -n "${C_TOP_EXTRA:-}" ] && echo "$C_TOP_EXTRA"
		echo "accounts = ("
		echo "  { name = \"${C_NAME:-acct}\";"
		[ "${C_PROTOCOL:-pop3}" != pop3 ] && echo "    protocol = \"$C_PROTOCOL\";"
		echo "    host = \"${C_HOST:-localhost}\"; port = $port;"
		echo "    tls = \"$tls\";"
		[ "$tls" != none ] && [ -n "$ca" ] && echo "    ca_file = \"$ca\";"
		echo "    user = \"${C_USER:-$MM_USER}\"; password = \"${C_PASS:-$MAILENV_PASS}\";"
		[ "$tls" = none ] && echo "    allow_plaintext_password = true;"
		[ -n "${C_ACCOUNT_EXTRA:-}" ] && echo "    $C_ACCOUNT_EXTRA"
		echo "    pipeline = ("
		if [ -n "${C_STAGES:-}" ]; then
			echo "$C_STAGES"
		else
			echo "      { plugin = \"archive\"; path = \"${C_ARCHIVE:-$T/archive}\";" \
				"format = \"${C_FORMAT:-maildir}\"; }"
		fi
		echo "    );"
		echo "  }"
		echo ");"
	} >"$f"
	chmod 600 "$f"
}

# mbox_matches MBOX: the mboxrd file holds exactly the expected messages,
# each once, byte for byte once From_ quoting is undone.
mbox_matches() {
	local out
	out=$(mktemp -d "$T/mbox.XXXXXX")
	if ! "$PY" "$MM_LIB/mbox_split.py" "$1" "$out" >/dev/null 2>"$out.err"; then
		diag "$1 is not a valid mboxrd file: $(cat "$out.err")"
		return 1
	fi
	archive_matches "$out"
}

#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# Nobody else's files are trusted, and @include never ends the process:
#  - a configuration, @include file, password_file, plugin or plugin_dir that
#    another user owns or that group or others can change (or that sits in a
#    directory others can write without the sticky bit, through a symbolic
#    link too) is refused with exit 78 and one line naming the file, what was
#    found and the command that fixes it; so is a -c naming a directory or a
#    FIFO;
#  - an @include of ".", a directory, a missing file, a cycle, or nested too
#    deep is a file:line error with exit 78 naming the include (libconfig
#    alone exits 2 on a directory);
#  - SIGHUP with a configuration that became untrusted keeps the old one
#    running and logs why; a detached daemon started with a relative -c
#    reloads on SIGHUP.
# No mail server: the checks happen before any connection.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
mm_setup
N_TESTS=58
plan $N_TESTS

if [ "$(id -u)" != 0 ] || ! id nobody >/dev/null 2>&1; then
	for _ in $(seq 1 "$N_TESTS"); do skip "trust checks" "needs root and a 'nobody' user"; done
	exit 0
fi

# conf FILE [TOP] [STAGES] [SECRET]: a valid configuration, mode 600.
conf() {
	local stages=${3:-"{ plugin = \"archive\"; path = \"$T/archive\"; }"}
	local secret='password = "secret";'
	[ -n "${4:-}" ] && secret=$4
	cat >"$1" <<CONF
state_dir = "$T/state";
plugin_dir = "${PD:-$PLUGIN_DIR}";
log = { level = "info"; target = "stderr"; };
${2:-}
accounts = (
  { name = "a"; host = "127.0.0.1"; port = 1; tls = "none"; allow_plaintext_password = true;
    user = "u"; $secret interval = "1h";
    pipeline = ( $stages ); }
);
CONF
	chmod 600 "$1"
}

# refused DESC FILE FOUND FIX: exit 78 and one error line that names the
# file, says what was found and gives the fix (extended regexps).
refused() {
	rc_is "$1: exit 78" 78
	local line
	line=$(grep -E -- "$4" "$MM_ERR" | head -n 1)
	if [ -n "$line" ] && grep -Eq -- "$2" <<<"$line" && grep -Eq -- "$3" <<<"$line"; then
		ok "$1: one line names the file, what was found and the fix"
	else
		not_ok "$1: one line names the file, what was found and the fix"
		show "$MM_ERR"
	fi
}

mkdir -p "$T/c"
conf "$T/c/good.conf"
mm good -c "$T/c/good.conf" --check-config
rc_is "a root-owned mode-600 configuration in a root-owned directory passes" 0

# ---------------------------------------------------------------- the configuration
conf "$T/c/nobody.conf"
chown nobody "$T/c/nobody.conf"
mm nobody -c "$T/c/nobody.conf" --check-config
refused "configuration owned by nobody" "c/nobody\.conf" "owned by nobody" \
	"chown root:root $T/c/nobody\.conf"

conf "$T/c/gw.conf"
chmod 620 "$T/c/gw.conf"
mm gw -c "$T/c/gw.conf" --check-config
refused "group-writable configuration" "c/gw\.conf" "mode 0620" "chmod go-w $T/c/gw\.conf"

mkdir -p "$T/ww"
chmod 777 "$T/ww"
conf "$T/ww/in-ww.conf"
mm in-ww -c "$T/ww/in-ww.conf" --check-config
refused "configuration in a world-writable directory without the sticky bit" \
	"ww/in-ww\.conf.*directory $T/ww\b" "mode 0777" "chmod go-w $T/ww"

mkdir -p "$T/sticky"
chmod 1777 "$T/sticky"
conf "$T/sticky/ok.conf"
mm sticky -c "$T/sticky/ok.conf" --check-config
rc_is "configuration in a sticky world-writable directory (like /tmp): accepted" 0

ln -s "$T/ww/in-ww.conf" "$T/c/link.conf"
mm link -c "$T/c/link.conf" --check-config
refused "a symbolic link into a world-writable directory" "c/link\.conf" "directory $T/ww\b" \
	"chmod go-w $T/ww"

mkdir -p "$T/nd"
chown nobody "$T/nd"
conf "$T/nd/x.conf"
mm nobody-dir -c "$T/nd/x.conf" --check-config
refused "configuration in a directory owned by nobody" "nd/x\.conf" "directory $T/nd is owned by nobody" \
	"chown root:root $T/nd"

mm isdir -c "$T/c" --check-config
refused "-c naming a directory (libconfig alone exits 2)" "configuration file $T/c\b" \
	"is a directory" "is a directory"
mkfifo "$T/c/fifo.conf"
mm fifo -c "$T/c/fifo.conf" --check-config
refused "-c naming a FIFO: refused at once, not waited on" "fifo\.conf" "special file" \
	"not a regular file"

# ---------------------------------------------------------------- @include
# inc NAME INCLUDE-LINE: main file NAME.conf with the include on line 4.
inc() {
	conf "$T/c/$1.conf"
	sed -i "4s|^.*\$|$2|" "$T/c/$1.conf"
}
printf 'workers = 2;\n' >"$T/c/part.conf"
chmod 600 "$T/c/part.conf"
inc inc-ok '@include "part.conf"'
mm inc-ok -c "$T/c/inc-ok.conf" --check-config
rc_is "@include of a trusted file: accepted" 0

printf 'workers = 2;\n' >"$T/c/ww-part.conf"
chmod 666 "$T/c/ww-part.conf"
inc inc-ww '@include "ww-part.conf"'
mm inc-ww -c "$T/c/inc-ww.conf" --check-config
refused "world-writable @include file" "inc-ww\.conf:4: @include \"ww-part\.conf\".*ww-part\.conf" \
	"mode 0666" "chmod go-w $T/c/ww-part\.conf"

inc inc-dot '@include "."'
mm inc-dot -c "$T/c/inc-dot.conf" --check-config
refused "@include \".\"" "inc-dot\.conf:4: @include \"\.\"" "is a directory" "is a directory"
check "@include \".\": no flex scanner exit" bash -c "! grep -q 'flex scanner' '$MM_ERR'"

mkdir -p "$T/c/sub"
inc inc-dir '@include "sub"'
mm inc-dir -c "$T/c/inc-dir.conf" --check-config
refused "@include of a directory" "inc-dir\.conf:4: @include \"sub\"" "c/sub is a directory" \
	"is a directory"

inc inc-missing '@include "no-such.conf"'
mm inc-missing -c "$T/c/inc-missing.conf" --check-config
refused "@include of a missing file" "inc-missing\.conf:4: @include \"no-such\.conf\"" \
	"c/no-such\.conf" "No such file"

printf '@include "cyc-b.conf"\n' >"$T/c/cyc-a.conf"
printf '\n@include "cyc-a.conf"\n' >"$T/c/cyc-b.conf"
chmod 600 "$T/c/cyc-a.conf" "$T/c/cyc-b.conf"
inc inc-cycle '@include "cyc-a.conf"'
mm inc-cycle -c "$T/c/inc-cycle.conf" --check-config
refused "@include cycle" "cyc-b\.conf:2: @include \"cyc-a\.conf\"" "cyc-a\.conf" "cycle"

for i in 1 2 3 4 5 6 7 8 9; do
	printf '@include "deep%d.conf"\n' $((i + 1)) >"$T/c/deep$i.conf"
	chmod 600 "$T/c/deep$i.conf"
done
printf '\n' >"$T/c/deep10.conf"
chmod 600 "$T/c/deep10.conf"
inc inc-deep '@include "deep1.conf"'
mm inc-deep -c "$T/c/inc-deep.conf" --check-config
refused "@include nested too deep" "deep[0-9]+\.conf:1: @include \"deep[0-9]+\.conf\"" "nested" "deep"

inc inc-comment '/* @include "."'
sed -i '4a\@include "." */' "$T/c/inc-comment.conf"
mm inc-comment -c "$T/c/inc-comment.conf" --check-config
rc_is "@include inside a block comment is not followed (as libconfig does not)" 0

# ---------------------------------------------------------------- plugins
mkdir -p "$T/pd"
cp "$PLUGIN_DIR/archive.so" "$T/pd/archive.so"
chmod 755 "$T/pd"
chmod 644 "$T/pd/archive.so"
PD=$T/pd conf "$T/c/pd-ok.conf"
mm pd-ok -c "$T/c/pd-ok.conf" --check-config
rc_is "a trusted copy of archive.so in a trusted plugin_dir: accepted" 0

chmod 666 "$T/pd/archive.so"
mm pd-so -c "$T/c/pd-ok.conf" --check-config
refused "world-writable archive.so in plugin_dir" "pd/archive\.so" "mode 0666" \
	"chmod go-w $T/pd/archive\.so"
chmod 644 "$T/pd/archive.so"

chown nobody "$T/pd/archive.so"
mm pd-so-owner -c "$T/c/pd-ok.conf" --check-config
refused "archive.so owned by nobody" "pd/archive\.so" "owned by nobody" \
	"chown root:root $T/pd/archive\.so"
chown root "$T/pd/archive.so"

chmod 777 "$T/pd"
mm pd-ww -c "$T/c/pd-ok.conf" --check-config
refused "world-writable plugin_dir" "plugin_dir $T/pd\b" "mode 0777" "chmod go-w $T/pd"
chmod 1777 "$T/pd"
mm pd-sticky -c "$T/c/pd-ok.conf" --check-config
refused "plugin_dir sticky but world-writable: still refused" "plugin_dir $T/pd\b" "mode 1777" \
	"chmod go-w $T/pd"
chmod 755 "$T/pd"

cp "$PLUGIN_DIR/archive.so" "$T/ww/archive.so"
chmod 644 "$T/ww/archive.so"
conf "$T/c/pd-path.conf" "" "{ plugin = \"$T/ww/archive.so\"; path = \"$T/archive\"; }"
mm pd-path -c "$T/c/pd-path.conf" --check-config
refused "a plugin named by path, under a world-writable directory" "ww/archive\.so" \
	"directory $T/ww\b" "chmod go-w $T/ww"

# ---------------------------------------------------------------- password_file
echo secret >"$T/c/pw"
chmod 600 "$T/c/pw"
conf "$T/c/pw-ok.conf" "" "" "password_file = \"$T/c/pw\";"
mm pw-ok -c "$T/c/pw-ok.conf" --check-config
rc_is "a trusted password_file: accepted" 0
chown nobody "$T/c/pw"
mm pw-nobody -c "$T/c/pw-ok.conf" --check-config
refused "password_file owned by nobody" "c/pw\b" "owned by nobody" "chown root:root $T/c/pw"
chown root "$T/c/pw"

echo secret >"$T/ww/pw"
chmod 600 "$T/ww/pw"
conf "$T/c/pw-ww.conf" "" "" "password_file = \"$T/ww/pw\";"
mm pw-ww -c "$T/c/pw-ww.conf" --check-config
refused "password_file under a world-writable directory" "ww/pw\b" "directory $T/ww\b" \
	"chmod go-w $T/ww"

# ---------------------------------------------------------------- SIGHUP
alive() { kill -0 "$DPID" 2>/dev/null; }

conf "$T/c/hup.conf"
DLOG=$T/hup.log
"$MAILMILLD" -f -c "$T/c/hup.conf" >"$DLOG" 2>&1 </dev/null &
DPID=$!
sleep 1
chmod 666 "$T/c/hup.conf"
kill -HUP "$DPID"
wait_for 10 log_has "reload failed" || true
check "SIGHUP with a world-writable configuration: the reload is refused" \
	log_has "reload failed, still running the previous configuration"
check "SIGHUP: the log says why (file, mode, fix)" \
	log_has "hup\.conf has mode 0666.*chmod go-w $T/c/hup\.conf"
check "SIGHUP: the daemon keeps running the old configuration" alive
chmod 600 "$T/c/hup.conf"
chown nobody "$T/c/hup.conf"
kill -HUP "$DPID"
wait_for 10 log_has "hup\.conf is owned by nobody" || true
check "SIGHUP with a configuration owned by nobody: refused, saying so" \
	log_has "hup\.conf is owned by nobody.*chown root:root"
chown root "$T/c/hup.conf"
kill -HUP "$DPID"
wait_for 10 log_has "reloaded $T/c/hup\.conf" || true
check "SIGHUP after the fix: reloaded" log_has "reloaded $T/c/hup\.conf"
check "the daemon is still running" alive
kill -TERM "$DPID" 2>/dev/null
wait "$DPID" 2>/dev/null

# A detached daemon changes to "/": a relative -c must still reload.
mkdir -p "$T/rel/conf"
conf "$T/rel/conf/mailmill.conf" "pid_file = \"$T/rel/mailmilld.pid\";"
DLOG=$T/detached.log
(cd "$T/rel" && "$MAILMILLD" -c conf/mailmill.conf >"$DLOG" 2>&1 </dev/null)
is "detached with a relative -c: the starter exits 0" "$?" 0
pid_written() { [ -s "$T/rel/mailmilld.pid" ]; }
wait_for 10 pid_written
DPID=$(cat "$T/rel/mailmilld.pid" 2>/dev/null)
# Never signal a process group by accident (kill 0).
case $DPID in ''|*[!0-9]*|0|1) DPID=999999999 ;; esac
check "detached with a relative -c: running, pid file written" alive
kill -HUP "$DPID" 2>/dev/null
wait_for 10 log_has "reloaded|reload failed" || true
check "detached with a relative -c: SIGHUP reloads" log_has "reloaded $T/rel/conf/mailmill\.conf"
check "detached with a relative -c: no failed reload" bash -c "! grep -q 'reload failed' '$DLOG'"
kill -TERM "$DPID" 2>/dev/null
gone() { ! alive; }
wait_for 10 gone
check "the detached daemon stops on SIGTERM" gone

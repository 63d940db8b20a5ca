#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# Archive targets are safe (issue 14, item 3): a Maildir `path` that exists,
# is not a Maildir and is not empty (directly or through a symbolic link)
# is refused: nothing is created or written there, no message is deleted,
# --once exits 75 with a clear line; an empty directory becomes a Maildir;
# a folder (folder = "%Y/%m") is judged the same way; an mbox `path` that is
# a directory or a FIFO is refused the same way (and does not hang the run).
# A path below a regular file, and as root with user = "nobody" a path that
# nobody cannot create or reach, are found by --check-config: exit 78; and by
# the daemon's start (exit 78) and SIGHUP (refused, the old one kept).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
need dovecot python3 openssl
mm_setup
plan 34

env_start srv --users "notmd link empty fold mboxdir fifo"

# listing DIR: every entry below it, for "nothing was written there".
listing() { (cd "$1" && find . | sort); }

# --- a directory that is not a Maildir and not empty
env_user notmd
env_seed 3 --seed notmd
mkdir -p "$T/etc-like/conf.d"
echo "root:x:0:0" >"$T/etc-like/passwd"
before=$(listing "$T/etc-like")
C_ARCHIVE=$T/etc-like C_STATE=$T/state-notmd write_conf "$T/notmd.conf"
mm notmd-check -c "$T/notmd.conf" --check-config
rc_is "not a Maildir: --check-config passes (it may be emptied before the run)" 0
check "not a Maildir: --check-config warns about it" err_has "etc-like is not a Maildir"
mm notmd -c "$T/notmd.conf" --once
rc_is "not a Maildir: --once exits 75" 75
check "not a Maildir: a clear line names the directory and the refusal" \
	err_has "etc-like is not a Maildir \(no tmp/, new/ and cur/\) and not empty: refusing"
is "not a Maildir: said once per run, not per message" "$(grep -c 'etc-like is not a Maildir.*deferring its messages' "$MM_ERR")" 1
is "not a Maildir: nothing created or written there" "$(listing "$T/etc-like")" "$before"
is "not a Maildir: every message stays on the server" "$(env_count)" 3
check "not a Maildir: the messages are deferred" err_has "3 deferred"

# --- a symbolic link to such a directory
env_user link
env_seed 2 --seed link
mkdir -p "$T/sys-like"
echo data >"$T/sys-like/important"
ln -s "$T/sys-like" "$T/link-archive"
before=$(listing "$T/sys-like")
C_ARCHIVE=$T/link-archive C_STATE=$T/state-link write_conf "$T/link.conf"
mm link -c "$T/link.conf" --once
rc_is "symbolic link to a non-Maildir: exit 75" 75
is "symbolic link: nothing written in its target" "$(listing "$T/sys-like")" "$before"
is "symbolic link: every message stays on the server" "$(env_count)" 2

# --- an empty directory becomes a Maildir
env_user empty
env_seed 3 --seed empty
mkdir -p "$T/empty-dir"
C_ARCHIVE=$T/empty-dir C_STATE=$T/state-empty write_conf "$T/empty.conf"
mm empty -c "$T/empty.conf" --once
rc_is "empty directory: exit 0" 0
check "empty directory: became a Maildir holding every message" archive_matches "$T/empty-dir"
is "empty directory: the server is emptied" "$(env_count)" 0

# --- folders: each folder the archive would make is judged alone
env_user fold
env_seed 14 --seed fold
mkdir -p "$T/fold/2024/03"
echo "not mail" >"$T/fold/2024/03/notes.txt"
C_STATE=$T/state-fold \
C_STAGES="      { plugin = \"archive\"; path = \"$T/fold\"; folder = \"%Y/%m\"; }" \
	write_conf "$T/fold.conf"
mm fold -c "$T/fold.conf" --once
rc_is "folder that is not a Maildir: exit 75" 75
is "folder: nothing written into 2024/03" "$(listing "$T/fold/2024/03")" "$(printf '.\n./notes.txt')"
left=$(env_count)
if [ -d "$T/fold/2024/01/new" ] && [ "$left" -gt 0 ] && [ "$left" -lt 14 ]; then
	ok "folder: the other months archived and deleted, March's messages left ($left)"
else
	not_ok "folder: the other months archived and deleted, March's messages left ($left)"
	show "$MM_ERR"
fi

# --- mbox: a directory, a FIFO
env_user mboxdir
env_seed 2 --seed mboxdir
mkdir -p "$T/mbox-is-dir"
C_ARCHIVE=$T/mbox-is-dir C_FORMAT=mbox C_STATE=$T/state-mboxdir write_conf "$T/mboxdir.conf"
mm mboxdir -c "$T/mboxdir.conf" --once
rc_is "mbox path is a directory: exit 75" 75
check "mbox path is a directory: said so" err_has "mbox-is-dir exists and is not a regular file \(a directory\)"
is "mbox path is a directory: nothing written in it" "$(listing "$T/mbox-is-dir")" "."
is "mbox path is a directory: every message stays on the server" "$(env_count)" 2

env_user fifo
env_seed 2 --seed fifo
mkfifo "$T/mbox-fifo"
C_ARCHIVE=$T/mbox-fifo C_FORMAT=mbox C_STATE=$T/state-fifo write_conf "$T/fifo.conf"
MM_TIMEOUT=20 mm fifo -c "$T/fifo.conf" --once
rc_is "mbox path is a FIFO: exit 75, no hang" 75
is "mbox path is a FIFO: every message stays on the server" "$(env_count)" 2

# --- found by --check-config: below a regular file
touch "$T/plain-file"
C_ARCHIVE=$T/plain-file/archive C_STATE=$T/state-below write_conf "$T/below.conf"
mm below -c "$T/below.conf" --check-config
rc_is "path below a regular file: --check-config exits 78" 78
check "path below a regular file: names the file and file:line" \
	err_has "below\.conf:[0-9]+: .*plain-file/archive cannot be created: .*plain-file is not a directory"
C_ARCHIVE=$T/plain-file/box C_FORMAT=mbox C_STATE=$T/state-below write_conf "$T/below-mbox.conf"
mm below-mbox -c "$T/below-mbox.conf" --check-config
rc_is "mbox below a regular file: --check-config exits 78" 78

# --- found by --check-config as the worker user
if [ "$(id -u)" -ne 0 ] || ! getent passwd nobody >/dev/null; then
	for i in 1 2 3 4 5 6 7 8; do skip "as the worker user" "needs root and a user nobody"; done
	exit 0
fi
plugins_for_worker
mkdir -m 0755 "$T/root-owned"
C_ARCHIVE=$T/root-owned/archive C_STATE=$T/state-nobody write_conf "$T/root.conf"
mm root-check -c "$T/root.conf" --check-config
rc_is "without user: root can create it, --check-config exits 0" 0
C_TOP_EXTRA='user = "nobody";' C_ARCHIVE=$T/root-owned/archive C_STATE=$T/state-nobody \
	write_conf "$T/nobody.conf"
mm nobody-check -c "$T/nobody.conf" --check-config
rc_is "user = nobody, a directory only root may write: --check-config exits 78" 78
check "the line names the directory and the user" \
	err_has "root-owned/archive: the directory .*root-owned is not writable by user nobody"
mkdir -m 0700 "$T/private"
C_TOP_EXTRA='user = "nobody";' C_ARCHIVE=$T/private/sub/archive C_STATE=$T/state-nobody \
	write_conf "$T/private.conf"
mm private-check -c "$T/private.conf" --check-config
rc_is "user = nobody, below a directory nobody cannot enter: --check-config exits 78" 78
mkdir -m 0755 "$T/given"
chown nobody "$T/given"
C_TOP_EXTRA='user = "nobody";' C_ARCHIVE=$T/given/archive C_STATE=$T/state-nobody \
	write_conf "$T/given.conf"
mm given-check -c "$T/given.conf" --check-config
rc_is "user = nobody, a directory given to nobody: --check-config exits 0" 0

# --- the daemon checks as nobody too: at start, and on SIGHUP
mm nobody-start -f -c "$T/nobody.conf"
rc_is "user = nobody: the daemon refuses to start with such a path (exit 78)" 78
C_TOP_EXTRA='user = "nobody";' C_ARCHIVE=$T/given/archive C_STATE=$T/state-hup \
C_ACCOUNT_EXTRA='interval = "1h";' C_PORT=1 write_conf "$T/hup.conf"
"$MAILMILLD" -f -c "$T/hup.conf" >"$T/hup.log" 2>&1 </dev/null &
HPID=$!
hup_log() { grep -Eq "$1" "$T/hup.log"; }
# wait_log SECONDS REGEX: until the daemon's log has it.
wait_log() { timeout "$1" sh -c "until grep -Eq '$2' '$T/hup.log'; do sleep 0.2; done"; }
wait_log 20 "mailmilld .* started"
sed -i "s|$T/given/archive|$T/root-owned/archive|" "$T/hup.conf"
kill -HUP "$HPID"
wait_log 20 "reload failed"
if hup_log "reload failed, still running the previous configuration:" &&
	hup_log "root-owned/archive: the directory .*root-owned is not writable by user nobody"; then
	ok "SIGHUP: a path nobody cannot write is refused, the old configuration kept"
else
	not_ok "SIGHUP: a path nobody cannot write is refused, the old configuration kept"
	show "$T/hup.log"
fi
kill -TERM "$HPID"
wait "$HPID"
is "SIGHUP: the daemon still runs and stops cleanly" "$?" 0

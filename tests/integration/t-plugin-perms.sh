#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# The `mode`, `dir_mode` and `group` settings of the archive (Maildir with
# folders, mbox) and of the ticket's json_dir files (issue 15.1): the modes
# and group of what a real run writes, whatever the umask; the defaults
# 0600 / 0700; and bad values refused at load with file:line.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
need dovecot openssl
mm_setup
plan 19

GROUP=mail
if ! getent group "$GROUP" >/dev/null; then
	GROUP=$(id -gn)
fi
env_start srv
env_seed 3

# modes PATH...: "mode group" of each, one line each, sorted and unique.
modes() { stat -c '%a %G' "$@" | sort -u; }

# ---- explicit modes and group, a restrictive umask
mkdir -p "$T/json"
C_STAGES="      { plugin = \"ticket\"; from = \"Support <support@example.org>\";
        acknowledge = false; json_dir = \"$T/json\"; mode = \"0640\"; group = \"$GROUP\"; },
      { plugin = \"archive\"; path = \"$T/md\"; folder = \"%Y/%m\"; colour = 1; }" \
	write_conf "$T/bad-key.conf"
mm badkey -c "$T/bad-key.conf" --check-config
rc_is "an unknown archive key is refused" 78
C_STAGES="      { plugin = \"ticket\"; from = \"Support <support@example.org>\";
        acknowledge = false; json_dir = \"$T/json\"; mode = \"0640\"; group = \"$GROUP\"; },
      { plugin = \"archive\"; path = \"$T/md\"; folder = \"%Y/%m\";
        mode = 0640; dir_mode = \"2750\"; group = \"$GROUP\"; }" \
	write_conf "$T/a.conf"
C_STAGES="      { plugin = \"archive\"; path = \"$T/box.mbox\"; format = \"mbox\";
        mode = \"0660\"; group = \"$GROUP\"; }" write_conf "$T/m.conf"
old_umask=$(umask); umask 077; mm run -c "$T/a.conf" --once; umask "$old_umask"
rc_is "archive and ticket with modes: exit 0" 0
is "three messages archived" "$(archive_count "$T/md")" 3
is "Maildir files: 0640, group $GROUP" "$(modes $(find "$T/md" -type f))" "640 $GROUP"
is "Maildir folders and tmp/new/cur: 2750, group $GROUP" \
	"$(modes $(find "$T/md" -mindepth 1 -type d))" "2750 $GROUP"
is "ticket json_dir files: 0640, group $GROUP" "$(modes $(find "$T/json" -type f))" "640 $GROUP"
is "json_dir holds three documents" "$(find "$T/json" -name '*.json' | wc -l)" 3

env_seed 2
old_umask=$(umask); umask 077; mm mbox -c "$T/m.conf" --once; umask "$old_umask"
rc_is "mbox with modes: exit 0" 0
is "mbox and its index: 0660, group $GROUP" "$(modes "$T/box.mbox" "$T/box.mbox.mailmill-idx")" "660 $GROUP"

# ---- defaults: 0600 files, 0700 directories, the user's primary group
env_seed 2
C_ARCHIVE="$T/def/md" write_conf "$T/d.conf"
old_umask=$(umask); umask 000; mm def -c "$T/d.conf" --once; umask "$old_umask"
rc_is "defaults: exit 0" 0
is "default files: 0600, primary group" "$(modes $(find "$T/def/md" -type f))" "600 $(id -gn)"
is "default directories: 0700" "$(stat -c %a $(find "$T/def" -mindepth 1 -type d) | sort -u)" 700

# ---- refused at load, with file:line
bad() { # NAME SETTINGS: an archive stage with SETTINGS must not load
	C_STAGES="      { plugin = \"archive\"; path = \"$T/bad\";
        $2 }" write_conf "$T/$1.conf"
	mm "$1" -c "$T/$1.conf" --check-config
}
bad badmode 'mode = "0648";'
check "a mode that is not octal: exit 78, file:line" \
	eval '[ "$MM_RC" = 78 ] && err_has "badmode\.conf:[0-9]+: .*\`mode\` must be a file mode"'
bad bigmode 'mode = "4755";'
check "a set-uid file mode: refused" \
	eval '[ "$MM_RC" = 78 ] && err_has "bigmode\.conf:[0-9]+: .*\`mode\`"'
bad dirmode 'dir_mode = "0500";'
check "a dir_mode the owner cannot write: refused" \
	eval '[ "$MM_RC" = 78 ] && err_has "dirmode\.conf:[0-9]+: .*dir_mode"'
bad nogroup 'group = "no-such-group-mm";'
check "a group that does not exist: exit 78, file:line" \
	eval '[ "$MM_RC" = 78 ] && err_has "nogroup\.conf:[0-9]+: .*\`group\` \"no-such-group-mm\" does not exist"'
C_STAGES="      { plugin = \"ticket\"; from = \"s@example.org\"; json_dir = \"$T/json\";
        group = \"no-such-group-mm\"; }" write_conf "$T/tgroup.conf"
mm tgroup -c "$T/tgroup.conf" --check-config
check "ticket: a group that does not exist: refused with file:line" \
	eval '[ "$MM_RC" = 78 ] && err_has "tgroup\.conf:[0-9]+: .*does not exist"'

# ---- as the worker user: a group it is not in is refused at load
if [ "$(id -u)" -ne 0 ] || ! getent passwd nobody >/dev/null || id -nG nobody | grep -qw "$GROUP"; then
	skip "user = nobody: a group it is not in" "needs root, a user nobody outside group $GROUP"
	skip "user = nobody: its own group passes" "needs root and a user nobody"
else
	plugins_for_worker
	mkdir -p "$T/given" && chown nobody "$T/given"
	C_TOP_EXTRA='user = "nobody";' C_STATE=$T/state-nobody C_STAGES="      { plugin = \"archive\";
        path = \"$T/given/a\"; group = \"$GROUP\"; }" write_conf "$T/notmember.conf"
	mm notmember -c "$T/notmember.conf" --check-config
	check "user = nobody, group $GROUP it is not in: exit 78, file:line" \
		eval '[ "$MM_RC" = 78 ] && err_has "notmember\.conf:[0-9]+: .*not a member"'
	C_TOP_EXTRA='user = "nobody";' C_STATE=$T/state-nobody C_STAGES="      { plugin = \"archive\";
        path = \"$T/given/a\"; group = \"$(id -gn nobody)\"; }" write_conf "$T/member.conf"
	mm member -c "$T/member.conf" --check-config
	rc_is "user = nobody, its own primary group: --check-config exits 0" 0
fi

#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# format = "mbox": one mboxrd file (From_ lines quoted with '>', an empty line
# after each message) from which every message comes back byte for byte;
# a second run adds nothing; folder = "%Y/%m" splits a Maildir archive by date.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
need dovecot python3 openssl
mm_setup
plan 8

env_start srv --users "mbox folder"

env_user mbox
env_seed 14 --seed mbox
C_ARCHIVE=$T/archive.mbox C_STATE=$T/state-mbox C_FORMAT=mbox write_conf "$T/mbox.conf"
mm mbox -c "$T/mbox.conf" --once
rc_is "mbox: exit 0" 0
check "mbox: every message comes back byte for byte (mboxrd)" mbox_matches "$T/archive.mbox"
check "mbox: body lines 'From ' were quoted" grep -q '^>From the desk' "$T/archive.mbox"
check "mbox: already quoted '>From ' got one more '>'" grep -q '^>>From quoted once' "$T/archive.mbox"
is "mbox: server mailbox empty" "$(env_count)" 0
size=$(stat -c %s "$T/archive.mbox")
mm mbox-2 -c "$T/mbox.conf" --once
is "mbox: second run adds nothing" "$MM_RC $(stat -c %s "$T/archive.mbox")" "0 $size"

env_user folder
env_seed 14 --seed folder
C_ARCHIVE=$T/archive-folder C_STATE=$T/state-folder \
C_STAGES="      { plugin = \"archive\"; path = \"$T/archive-folder\"; format = \"maildir\"; folder = \"%Y/%m\"; }" \
	write_conf "$T/folder.conf"
mm folder -c "$T/folder.conf" --once
rc_is "folder %Y/%m: exit 0" 0
# seed.py dates these 14 messages in January to May 2024.
if archive_matches "$T/archive-folder" && [ -d "$T/archive-folder/2024/01/new" ] &&
	[ -d "$T/archive-folder/2024/05/new" ]; then
	ok "folder %Y/%m: messages under 2024/01 .. 2024/05, byte for byte"
else
	not_ok "folder %Y/%m: messages under 2024/01 .. 2024/05, byte for byte"
	find "$T/archive-folder" -maxdepth 3 | head | sed 's/^/# /'
fi

#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# Real-world messages (tests/data/corpus, see SOURCES.md there): multipart,
# 8-bit, encoded words, malformed MIME.  Each is archived unchanged, to a
# Maildir and to an mbox, and none is left on the server.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
need dovecot python3 openssl
mm_setup
plan 6

env_start srv --users "maildir mbox"

for u in maildir mbox; do
	env_user "$u"
	env_seed_files "$CORPUS_DIR"/*.eml
done

env_user maildir
C_ARCHIVE=$T/archive C_STATE=$T/state-maildir write_conf "$T/maildir.conf"
mm maildir -c "$T/maildir.conf" --once
rc_is "corpus to Maildir: exit 0" 0
check "corpus to Maildir: every message byte for byte" archive_matches "$T/archive"
is "corpus to Maildir: server mailbox empty" "$(env_count)" 0

env_user mbox
C_ARCHIVE=$T/archive.mbox C_FORMAT=mbox C_STATE=$T/state-mbox write_conf "$T/mbox.conf"
mm mbox -c "$T/mbox.conf" --once
rc_is "corpus to mbox: exit 0" 0
check "corpus to mbox: every message byte for byte" mbox_matches "$T/archive.mbox"
is "corpus to mbox: server mailbox empty" "$(env_count)" 0

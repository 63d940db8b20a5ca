#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# kill -9 at each step of a run (crash points, configure --enable-crashpoints):
# while messages arrive (before their batch commits), before the batch fsync,
# right after a journal commit (before any DELE), after the DELEs (before
# QUIT), after QUIT was sent (before its reply), after QUIT was answered
# (before the journal records the deletions).  After the next run every
# message is archived exactly once, none is lost, the server is empty and the
# journal holds no message twice.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
need dovecot python3 sqlite3 openssl
mm_setup
plan 40
N=10

if ! have_crashpoints; then
	for i in $(seq 40); do skip "crash test $i" "mailmilld built without --enable-crashpoints"; done
	exit 0
fi

env_start srv --users "retr retrlast sync commit dele quit quitok mbox"

# crash_case USER POINT FORMAT: 5 tests.
crash_case() {
	local u=$1 point=$2 fmt=$3 a=$T/archive-$1 s=$T/state-$1
	env_user "$u"
	env_seed "$N" --seed "$u"
	[ "$fmt" = mbox ] && a=$T/archive-$u.mbox
	C_ARCHIVE=$a C_STATE=$s C_FORMAT=$fmt write_conf "$T/$u.conf"

	MM_ENV_EXTRA="MAILMILL_CRASH=$point" mm "$u-crash" -c "$T/$u.conf" --once
	if mm_crashed; then
		ok "$u: killed with SIGKILL at $point"
	else
		not_ok "$u: killed with SIGKILL at $point"
		diag "exit status $MM_RC"; show "$MM_ERR"
	fi
	mm "$u-rerun" -c "$T/$u.conf" --once
	rc_is "$u: the next run exits 0" 0
	if [ "$fmt" = mbox ]; then
		check "$u: every message archived exactly once, byte for byte (mbox)" mbox_matches "$a"
	else
		check "$u: every message archived exactly once, byte for byte" archive_matches "$a"
	fi
	is "$u: server mailbox empty" "$(env_count)" 0
	# The journal may forget uids the server no longer has, but never holds one twice.
	local rows distinct
	rows=$(ledger_rows "$s" acct); distinct=$(ledger_distinct "$s" acct)
	if [ "$rows" = "$distinct" ] && [ "$rows" -le "$N" ]; then
		ok "$u: journal holds no message twice"
	else
		not_ok "$u: journal holds no message twice"; diag "rows $rows, distinct uids $distinct"
	fi
}

crash_case retr retr:4 maildir
crash_case retrlast "retr:$N" maildir
crash_case sync sync:1 maildir
crash_case commit commit:1 maildir
crash_case dele dele:1 maildir
crash_case quit quit:1 maildir
crash_case quitok quitok:1 maildir
crash_case mbox retr:6 mbox

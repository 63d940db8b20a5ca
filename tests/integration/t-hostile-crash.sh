#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# kill -9 at every crash point of a run (configure --enable-crashpoints),
# against tests/lib/badserver.py, which keeps its mailbox across connections
# and reports what it really deleted:
#   retr    a message arrived, before its pipeline (1st, 5th, 10th)
#   sync    archives written, before their fsync (maildir and mbox)
#   commit  the journal committed, before any DELE
#   dele    DELEs sent and answered, before QUIT
#   quit    QUIT being sent (protocol trace on), before its reply
#   quitok  QUIT answered (the server deleted), before the journal knows
# Then runs again until one exits 0.  Every message must be archived exactly
# once byte for byte, deleted exactly once, the journal must hold no message
# twice, and nothing may be deleted by a run killed before its commit.
# Also: a full disk (small tmpfs as the archive) leaves mail on the server.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/hostile.sh"
need python3 sqlite3
hostile_setup
N=10
CASES=10
plan $((CASES * 6 + 6 + 2))
make_msgs $N
ALL=$(seq -s, -f 'uid-%g' $N)

if ! have_crashpoints; then
	for i in $(seq $((CASES * 6))); do skip "crash test $i" "mailmilld built without --enable-crashpoints"; done
else
	# ccase NAME POINT EARLY [FORMAT] [ARGS]: EARLY=1 when the point is before the
	# journal commit (then the killed run must not have deleted anything).
	ccase() {
		local name=$1 point=$2 early=$3 fmt=${4:-maildir} args=${5:-} i dels
		bs_start "$name" '{}'
		a=$T/archive-$name
		[ "$fmt" = mbox ] && a=$T/archive-$name.mbox
		C_FORMAT=$fmt C_ARCHIVE=$a hconf "$name"
		# shellcheck disable=SC2086
		MM_ENV_EXTRA="MAILMILL_CRASH=$point" mm "$name-crash" -c "$T/$name.conf" --once $args
		if mm_crashed; then
			ok "$name: killed with SIGKILL at $point"
		else
			not_ok "$name: killed with SIGKILL at $point"
			diag "exit status $MM_RC"
			show "$MM_ERR"
		fi
		# Killed with files renamed into new/ before their flush: the
		# writer's marker stays for the rerun, which checks and drops it.
		[ "$name" = sync ] && check "$name: the killed writer's marker is in the Maildir" \
			compgen -G "$a/mailmill-unsynced.*"
		dels=$(bs_deleted)
		if [ "$early" = 1 ]; then
			is "$name: nothing deleted by the killed run" "$dels" ""
		else
			ok "$name: (deletions by the killed run allowed: [$dels])"
		fi
		for i in 1 2 3; do
			mm "$name-rerun$i" -c "$T/$name.conf" --once
			[ "$MM_RC" = 0 ] && break
		done
		bs_stop
		rc_is "$name: a later run exits 0 (after $i)" 0
		[ "$name" = sync ] && check "$name: the rerun recovered and removed the marker" \
			test -z "$(compgen -G "$a/mailmill-unsynced.*")"
		if [ "$fmt" = mbox ]; then
			EXPECTED=$T/msgs check "$name: every message archived exactly once, byte for byte (mbox)" mbox_matches "$a"
		else
			check "$name: every message archived exactly once, byte for byte" archive_has "$a" "$T"/msgs/*.eml
		fi
		is "$name: each message deleted on the server exactly once" \
			"$(bs_deleted | tr , '\n' | sort -V | paste -sd,)" "$ALL"
		local rows distinct s=$T/state-$name
		rows=$(ledger_rows "$s" acct)
		distinct=$(ledger_distinct "$s" acct)
		if [ "$rows" = "$distinct" ] && [ "$rows" -le "$N" ]; then
			ok "$name: journal holds no message twice ($rows rows)"
		else
			not_ok "$name: journal holds no message twice"
			diag "rows $rows, distinct uids $distinct"
		fi
	}
	ccase retr1 retr:1 1
	ccase retr5 retr:5 1
	ccase retr10 retr:$N 1
	ccase sync sync:1 1
	ccase sync-mbox sync:1 1 mbox
	ccase commit commit:1 1
	ccase dele dele:1 1
	ccase quit quit:1 1 maildir -vv
	ccase quitok quitok:1 0
	ccase retr3-mbox retr:3 1 mbox
fi

# ---- disk full: the archive on a 1 MiB tmpfs, nearly filled.
D=$T/small
mkdir -p "$D"
if ! mount -t tmpfs -o size=1m tmpfs "$D" 2>/dev/null; then
	for i in $(seq 6); do skip "disk full $i" "cannot mount a tmpfs (not root?)"; done
	exit 0
fi
trap 'umount "$D" 2>/dev/null; bs_cleanup' EXIT
head -c 1000000 /dev/zero >"$D/filler" 2>/dev/null || true
mkdir -p "$T/big"
for i in 1 2 3; do
	{ printf 'Subject: big %d\nMessage-ID: <big%d@example.org>\n\n' "$i" "$i"
	  head -c 60000 /dev/urandom | base64 -w 76; } >"$T/big/b$i.eml"
done
BS_MSGS="[{\"file\":\"$T/big/b1.eml\"},{\"file\":\"$T/big/b2.eml\"},{\"file\":\"$T/big/b3.eml\"}]"
bs_start diskfull '{}'
C_ARCHIVE=$D/archive hconf diskfull
mm diskfull1 -c "$T/diskfull.conf" --once
# The messages are deferred: the run worked, its exit status says 75.
if [ "$MM_RC" = 75 ] && no_crash && err_has '0 deleted.*3 deferred'; then
	ok "disk full: all 3 deferred, exit 75, no crash"
else
	not_ok "disk full: all 3 deferred, exit 75, no crash"; diag "exit $MM_RC"; show "$MM_ERR"
fi
check "disk full: the log says why" err_has 'not archived.*No space left on device'
is "disk full: nothing deleted on the server" "$(bs_deleted)" ""
rm -f "$D/filler"
mm diskfull2 -c "$T/diskfull.conf" --once
bs_stop
rc_is "disk full: after freeing space the next run exits 0" 0
check "disk full: each message archived once, byte for byte" archive_has "$D/archive" "$T"/big/*.eml
is "disk full: all deleted on the server" "$(bs_deleted)" uid-1,uid-2,uid-3
umount "$D" 2>/dev/null || true

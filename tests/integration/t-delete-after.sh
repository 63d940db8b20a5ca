#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# Archiving on a schedule (issue 15 item 9), against a real Dovecot:
#  - delete_after: each message archived on the first run and left on the
#    server; later runs do not process it again; once the journal first saw
#    it longer ago than delete_after it is deleted, newer ones stay.  The
#    clock is faked by moving the journal's first-seen time (ledger.created)
#    back in the real store file: "31 days later" without waiting.
#  - a dry run says what it would delete and deletes nothing;
#  - keep = true never deletes, however old; with delete_after it is refused;
#  - bad `at` and `delete_after` values: file:line errors.
# The `at` times of the daemon: t-at.sh.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
need dovecot sqlite3 openssl
mm_setup
plan 21
N=6
DAY=86400

env_start srv
env_seed "$N"
server_before=$(hashes "$MD")
DB=$T/state/mailmill.db
C_ACCOUNT_EXTRA='delete_after = "30d";' write_conf "$T/da.conf"
done_rows() { ledger_rows "$T/state" acct "state = 2 AND verdict = 'done'"; }

mm da-1 -c "$T/da.conf" --once
rc_is "first run exits 0" 0
check "every message archived at once, byte for byte" archive_matches "$T/archive"
is "every message left on the server, unchanged" "$(hashes "$MD")" "$server_before"
is "journal: every message done and kept for now" "$(done_rows)" "$N"

mm da-2 -c "$T/da.conf" --once -v   # -v: a run with nothing to do logs its summary at debug level
rc_is "second run exits 0" 0
check "second run: nothing fetched or processed again" err_has "$N listed, 0 fetched"
is "second run: the server unchanged" "$(hashes "$MD")" "$server_before"

# 31 days later for four of them, 29 for a fifth; two new messages arrive.
sqlite3 "$DB" "UPDATE ledger SET created = created - 31 * $DAY WHERE account = 'acct' AND uid IN
	(SELECT uid FROM ledger WHERE account = 'acct' ORDER BY uid LIMIT 4);
	UPDATE ledger SET created = created - 29 * $DAY WHERE account = 'acct' AND uid =
	(SELECT uid FROM ledger WHERE account = 'acct' ORDER BY uid LIMIT 1 OFFSET 4);"
env_seed 2 --offset "$N"
mm da-3 -c "$T/da.conf" --once
rc_is "run 31 days later exits 0" 0
check "it says how many are old enough" err_has "4 message\(s\) older than delete_after will be deleted"
is "the four older than 30 days deleted from the server, the others stay" "$(env_count)" $((N + 2 - 4))
is "journal: those four deleted, the 29-day one and the rest still kept" \
	"$(ledger_rows "$T/state" acct 'state = 3') $(done_rows)" "4 4"
check "the new messages archived, nothing archived twice" archive_matches "$T/archive"

# A dry run over mail old enough: says so, deletes nothing, writes nothing.
sqlite3 "$DB" "UPDATE ledger SET created = created - 40 * $DAY WHERE account = 'acct' AND state = 2;"
mm da-dry -c "$T/da.conf" --once --dry-run
rc_is "dry run exits 0" 0
check "dry run: says what it would delete" err_has "4 message\(s\) older than delete_after would be deleted"
is "dry run: nothing deleted, the journal unchanged" "$(env_count) $(done_rows)" "4 4"
mm da-4 -c "$T/da.conf" --once
is "the next real run deletes them: the server is empty, the archive complete" \
	"$(env_count) $(archive_count "$T/archive")" "0 $((N + 2))"

# keep = true: never deleted, however old the journal says they are.
env_seed 3 --offset $((N + 2))
C_STATE=$T/state-keep C_ARCHIVE=$T/archive-keep C_ACCOUNT_EXTRA='keep = true;' \
	write_conf "$T/keep.conf"
mm keep-1 -c "$T/keep.conf" --once
sqlite3 "$T/state-keep/mailmill.db" "UPDATE ledger SET created = created - 3650 * $DAY;"
mm keep-2 -c "$T/keep.conf" --once
rc_is "keep = true: runs exit 0" 0
is "keep = true: ten years later everything is still on the server" "$(env_count)" 3

# Refused settings, each with file:line.
C_ACCOUNT_EXTRA='keep = true; delete_after = "30d";' write_conf "$T/bad1.conf"
mm bad1 -c "$T/bad1.conf" --check-config
rc_is "delete_after with keep = true: refused (exit 78)" 78
check "... naming file:line and both keys" err_has "bad1.conf:[0-9]+: .*'delete_after' with keep = true"
C_ACCOUNT_EXTRA='at = [ "02:00", "25:00", "2:00", "02:00" ];
    delete_after = "soon";' write_conf "$T/bad2.conf"
mm bad2 -c "$T/bad2.conf" --check-config
if [ "$MM_RC" = 78 ] && err_has "bad2.conf:[0-9]+: .*\"25:00\" is not a time of day" &&
	err_has "bad2.conf:[0-9]+: .*\"2:00\" is not a time of day" &&
	err_has "bad2.conf:[0-9]+: .*\"02:00\" is given twice" &&
	err_has "bad2.conf:[0-9]+: .*\"soon\" is not a duration"; then
	ok "bad at times and durations: each refused with file:line (exit 78)"
else
	not_ok "bad at times and durations: each refused with file:line (exit 78)"
	show "$MM_ERR"
fi

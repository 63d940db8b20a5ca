#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# keep = true: mail stays on the server, and each message is archived once
# however many runs see it; new mail is picked up alone.  Also -q (no info
# lines) and -v (debug lines).
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
need dovecot python3 sqlite3 openssl
mm_setup
plan 11
N=7

env_start srv
env_seed "$N"
server_before=$(hashes "$MD")
C_ACCOUNT_EXTRA='keep = true;' write_conf "$T/keep.conf"

mm keep-1 -c "$T/keep.conf" --once
rc_is "first run exits 0" 0
check "all messages archived byte for byte" archive_matches "$T/archive"
is "every message still on the server, unchanged" "$(hashes "$MD")" "$server_before"

mm keep-2 -c "$T/keep.conf" --once -q
rc_is "second run exits 0" 0
check "-q: no info lines" eval '! grep -q " info: " "$MM_ERR"'
check "second run: still archived exactly once" archive_matches "$T/archive"
is "second run: server unchanged" "$(hashes "$MD")" "$server_before"
is "journal: one row per message" "$(ledger_rows "$T/state" acct) $(ledger_distinct "$T/state" acct)" "$N $N"

env_seed 2 --offset "$N"
mm keep-3 -c "$T/keep.conf" --once -v
rc_is "run with new mail exits 0" 0
check "-v: debug lines" grep -q " debug: " "$MM_ERR"
if archive_matches "$T/archive" && [ "$(env_count)" = $((N + 2)) ]; then
	ok "new mail archived once, old not again, all $((N + 2)) still on the server"
else
	not_ok "new mail archived once, old not again, all $((N + 2)) still on the server"
fi

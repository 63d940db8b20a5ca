#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# --dry-run fetches and runs the pipeline but deletes and writes nothing;
# max_size leaves a bigger message on the server, unfetched, and says so.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
need dovecot python3 sqlite3 openssl
mm_setup
plan 12

env_start srv --users "dry big"

# --- dry run
env_user dry
env_seed 6 --seed dry
server_before=$(hashes "$MD")
C_ARCHIVE=$T/archive-dry C_STATE=$T/state-dry write_conf "$T/dry.conf"
mm dry -c "$T/dry.conf" --once --dry-run
rc_is "--dry-run: exit 0" 0
is "--dry-run: nothing deleted" "$(hashes "$MD")" "$server_before"
is "--dry-run: no archive file written" "$(find "$T/archive-dry" -type f 2>/dev/null | wc -l)" 0
is "--dry-run: no journal rows" "$(ledger_rows "$T/state-dry" acct)" 0
check "--dry-run: says what it would do" err_has '[Ww]ould|dry'
mm dry-real -c "$T/dry.conf" --once
if [ "$MM_RC" = 0 ] && archive_matches "$T/archive-dry" && [ "$(env_count)" = 0 ]; then
	ok "a real run after --dry-run archives everything"
else
	not_ok "a real run after --dry-run archives everything"; show "$MM_ERR"
fi

# --- max_size
env_user big
env_seed 5 --seed big
"$PY" "$MM_LIB/seed.py" "$MD" 1 --kind big --size 300000 --offset 5 --seed big \
	--expected "$T/big-expected" --owner "$MAILENV_MAIL_UID:$MAILENV_MAIL_GID" >/dev/null
big_hash=$(find "$T/big-expected" -type f -print0 | xargs -0 sha256sum | cut -d' ' -f1)
C_ARCHIVE=$T/archive-big C_STATE=$T/state-big C_ACCOUNT_EXTRA='max_size = "100K";' \
	write_conf "$T/big.conf"
mm big -c "$T/big.conf" --once
rc_is "max_size: run exits 0" 0
check "max_size: the smaller messages archived" archive_matches "$T/archive-big"
is "max_size: the big message stays on the server, alone" "$(hashes "$MD")" "$big_hash"
check "max_size: the skipped message is reported" err_has 'max_size|too (big|large)|exceed|size'
mm big-2 -c "$T/big.conf" --once
rc_is "max_size: second run exits 0" 0
if archive_matches "$T/archive-big" && [ "$(hashes "$MD")" = "$big_hash" ]; then
	ok "max_size: second run changes nothing"
else
	not_ok "max_size: second run changes nothing"
fi

#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# The store's unit tests again, on PostgreSQL: a private server on loopback
# (tests/lib/pg.sh), and every test program that opens its store through
# tests/unit/store_backend.h runs with MM_TEST_PG_CONNINFO pointing at it.
# `make check` runs them on SQLite; together, the same tests on both backends.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
. "$MM_LIB/pg.sh"
need python3
pg_need
mm_setup
PROGS="test_store test_outbox_store test_oauth_store test_store_lease test_claim"
plan 6
pg_start "$T/pg"
export MM_TEST_PG_CONNINFO=$PG_CONNINFO MM_TEST_PG_PASSFILE=$PG_PASSFILE
for p in $PROGS; do
	bin=$MM_BUILDDIR/tests/unit/$p
	if [ ! -x "$bin" ]; then
		not_ok "$p on PostgreSQL: not built"
		continue
	fi
	if CMOCKA_MESSAGE_OUTPUT=TAP "$bin" >"$T/$p.log" 2>&1 &&
		! grep -q '^not ok' "$T/$p.log" && grep -q '^ok ' "$T/$p.log"; then
		ok "$p on PostgreSQL: $(grep -c '^ok [0-9]' "$T/$p.log") tests passed"
	else
		not_ok "$p on PostgreSQL"
		show "$T/$p.log" 40
	fi
done
# They really ran on PostgreSQL: the last one left its tables there.
is "the tests wrote to PostgreSQL" "$(pg_sql "SELECT count(*) FROM pg_tables WHERE tablename = 'leases'")" 1

#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# Three daemons on one PostgreSQL and one Dovecot share 200 accounts by
# leases (daemon/sched/claim.c), with no leader:
#  - every message of the 200 mailboxes is processed exactly once: one
#    archive copy, one ticket (numbers unique in the one queue across the
#    daemons), one acknowledgement over SMTP;
#  - every daemon runs some of the accounts; --status and the metrics say
#    which daemon holds which account;
#  - one daemon is killed (SIGKILL, with its workers: a host lost) in the
#    middle of runs: the other two take its accounts over once its leases
#    expire and finish them, still exactly once;
#  - a daemon stopped with SIGTERM gives its leases back.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/smtp.sh"
. "$(dirname "$0")/../lib/pg.sh"
. "$(dirname "$0")/../lib/cluster.sh"
need dovecot python3 aiosmtpd
pg_need
mm_setup
plan 16

NU=200
cl_start $NU
cl_seed 1 2
# Round 2's messages take 150 ms each in a plugin, so that runs are going
# on when a daemon is killed.
C_STAGES_FIRST="{ plugin = \"$TEST_PLUGIN_DIR/verdict.so\"; verdict = \"pass\"; subject_contains = \"[slow]\"; sleep_ms = 150; },"
for n in 1 2 3; do cl_conf $n; done
for n in 1 2 3; do cl_daemon $n; done

W=$((NU * 2))
wait_for 120 cl_all_done
is "three daemons, $NU accounts: every mailbox emptied" "$(cl_left)" 0
is "one ticket per message ($W)" "$(cl_tickets)" $W
is "ticket numbers unique in the queue across the daemons" "$(cl_ticket_numbers)" $W
is "one acknowledgement per message" "$(cl_acks)" $W
check "every message archived exactly once, byte for byte" cl_archive_exact
r1=$(cl_ran 1) r2=$(cl_ran 2) r3=$(cl_ran 3)
diag "accounts run: daemon 1: $r1, daemon 2: $r2, daemon 3: $r3"
check "the accounts are shared: each daemon ran some" \
	test "$r1" -gt 0 -a "$r2" -gt 0 -a "$r3" -gt 0
check "no account was run by two daemons in this round (each kept its own)" \
	test $((r1 + r2 + r3)) -eq $NU

"$MAILMILLD" -c "$T/d1.conf" --status >"$T/status.out" 2>&1
check "--status names the daemon that holds an account" \
	grep -Eq "^  lease: +[^ ]+:$(cl_pid 2):[0-9a-f]{8} until " "$T/status.out"
wait_for 10 test -s "$T/state1/metrics.prom"
check "the metrics name the accounts this daemon holds, with its owner id" \
	grep -Eq "^mailmill_account_lease\{account=\"a[0-9]+\",owner=\"[^\"]+:$(cl_pid 1):[0-9a-f]{8}\"\} 1$" \
	"$T/state1/metrics.prom"

# ---- SIGKILL daemon 2 and its workers in the middle of runs
cp "$T/d1.log" "$T/d1.before"; cp "$T/d3.log" "$T/d3.before"
held2=$(grep -Eo 'a[0-9]+: run finished' "$T/d2.log" | cut -d: -f1 | sort -u)
cl_seed 2 2 "[slow] Question"
working() { [ "$(pgrep -g "$(cl_pid 2)" | wc -l)" -gt 1 ]; }
wait_for 30 working
check "daemon 2 has workers running when it is killed" working
cl_kill9 2
W=$((NU * 4))
wait_for 120 cl_all_done
is "after the SIGKILL: every mailbox emptied" "$(cl_left)" 0
is "after the SIGKILL: one ticket per message ($W)" "$(cl_tickets)" $W
is "after the SIGKILL: one acknowledgement per message" "$(cl_acks)" $W
check "after the SIGKILL: every message archived exactly once" cl_archive_exact
taken=0
for a in $held2; do
	if diff "$T/d1.before" "$T/d1.log" | grep -q "^> .*$a: run finished" ||
	   diff "$T/d3.before" "$T/d3.log" | grep -q "^> .*$a: run finished"; then
		taken=$((taken + 1))
	fi
done
diag "daemon 2 had run $(echo "$held2" | wc -w) account(s); the others took $taken over"
check "the other daemons took over the killed daemon's accounts" test "$taken" -gt 0

# ---- SIGTERM: leases given back
cl_term 1; cl_term 3
sleep 1
"$MAILMILLD" -c "$T/d1.conf" --status >"$T/status2.out" 2>&1
check "after a clean stop no lease of the stopped daemons is live" \
	bash -c "! grep -Eq ':($(cl_pid 1)|$(cl_pid 3)):[0-9a-f]{8} until' '$T/status2.out'"

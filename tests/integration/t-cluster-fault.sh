#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# Three daemons on one PostgreSQL and one Dovecot, and the faults a shared
# database brings:
#  - PostgreSQL stopped for a while: runs fail (--once exits 75), nothing
#    is deleted from the server meanwhile, the daemons keep going, and when
#    it is back everything is processed, exactly once;
#  - a daemon paused (SIGSTOP, with its workers) in the middle of a run
#    past its lease: the others take its accounts over; when it resumes,
#    the fencing counter refuses its commit and it deletes nothing, and
#    every message is still processed exactly once.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/smtp.sh"
. "$(dirname "$0")/../lib/pg.sh"
. "$(dirname "$0")/../lib/cluster.sh"
need dovecot python3 aiosmtpd
pg_need
mm_setup
plan 21

NU=30
cl_start $NU
# Messages with "[slow]" in the subject take a while in a plugin: runs are
# going on when the database stops or a daemon is paused.
C_STAGES_FIRST="{ plugin = \"$TEST_PLUGIN_DIR/verdict.so\"; verdict = \"pass\"; subject_contains = \"[slow]\"; sleep_ms = 1500; },"
for n in 1 2 3 4; do cl_conf $n; done
cl_seed 1 1
for n in 1 2 3; do cl_daemon $n; done
wait_for 60 cl_all_done
is "warm-up: three daemons processed every message" "$(cl_tickets)" $NU

# ---- PostgreSQL stopped in the middle of runs
cl_seed 2 1 "[slow] Question"
# A run of daemon N is going on: its spawner has a worker.  (Its process
# group alone always holds the spawner too.)
working() {
	local sp
	sp=$(pgrep -g "$(cl_pid "$1")" -x mailmilld-spawn | head -n 1)
	[ -n "$sp" ] && pgrep -P "$sp" >/dev/null
}
wait_for 30 working 1 || diag "daemon 1 started no run in 30s"
pg_stop
# Mail that arrives while the database is down is not touched.
cl_seed 3 1
r3_left() { find "$ENV"/mail/u*/Maildir/new "$ENV"/mail/u*/Maildir/cur -name '*.R3_*' | wc -l; }
mm once -c "$T/d4.conf" --once
rc_is "--once while PostgreSQL is down exits 75" 75
sleep 5
is "nothing is deleted while the database is down" "$(r3_left)" $NU
check "the daemons keep running without their database" \
	bash -c "kill -0 $(cl_pid 1) && kill -0 $(cl_pid 2) && kill -0 $(cl_pid 3)"
check "the runs that were going on failed and said why" \
	grep -Eqh "run FAILED|cannot claim its lease|QUIT failed|cannot record" "$T/d1.log" "$T/d2.log" "$T/d3.log"
pg_restart
W=$((NU * 3))
wait_for 90 cl_all_done
is "PostgreSQL back: every mailbox emptied" "$(cl_left)" 0
is "PostgreSQL back: one ticket per message ($W)" "$(cl_tickets)" $W
is "PostgreSQL back: ticket numbers unique" "$(cl_ticket_numbers)" $W
is "PostgreSQL back: one acknowledgement per message" "$(cl_acks)" $W
check "PostgreSQL back: every message archived exactly once" cl_archive_exact
mm once2 -c "$T/d4.conf" --once
rc_is "--once exits 0 again (accounts the daemons hold are theirs, not failures)" 0

# ---- a daemon paused past its lease cannot commit when it resumes
cl_seed 4 1 "[slow] Question"
wait_for 30 working 1 || diag "daemon 1 started no run in 30s"
sleep 0.5   # its worker is inside the slow plugin now
cl_pause 1
paused_at=$(date +%s)
W=$((NU * 4))
# The others take its accounts over once its leases (3s) ran out.
wait_for 90 cl_all_done
check "while daemon 1 is paused the others process all its mail" cl_all_done
diag "took $(( $(date +%s) - paused_at ))s; now resuming daemon 1"
cl_cont 1
wait_for 20 grep -q "commit refused" "$T/d1.log"
check "the resumed daemon's commit is refused by the fencing counter" \
	grep -q "lease of account a[0-9]* lost .*commit refused" "$T/d1.log"
sleep 3
is "after the resume: one ticket per message ($W)" "$(cl_tickets)" $W
is "after the resume: one acknowledgement per message" "$(cl_acks)" $W
check "after the resume: every message archived exactly once" cl_archive_exact
check "daemon 1 runs on after its lost lease" cl_alive 1

# ---- the outbox's flush paused past its lease: it checks the lease right
# before each send, so when it resumes it sends nothing more; at most the
# message in flight when it was paused goes out twice (SMTP has no
# idempotency).  The relay answers each end of data half a second late, so
# the flush is sending when its daemon is paused.
echo 0.5 >"$SMTP_OUT/slow"
cl_seed 5 1
W=$((NU * 5))
# Wait for a flush holding many rows, then pause the daemon holding @outbox.
claimed() {
	[ "$(pg_sql "SELECT count(*) FROM outbox WHERE state = 0 AND claim_owner IS NOT NULL")" -ge 10 ]
}
holder=
find_holder() {
	local pid n
	pid=$(pg_sql "SELECT split_part(owner, ':', 2) FROM leases WHERE account = '@outbox'
		AND expires > floor(extract(epoch from clock_timestamp()))")
	for n in 1 2 3; do
		[ "$(cl_pid $n)" = "$pid" ] && holder=$n && return 0
	done
	return 1
}
wait_for 60 claimed && wait_for 10 find_holder
if [ -z "$holder" ]; then
	not_ok "a flush of the outbox was going on to pause"
else
	ok "a flush of daemon $holder holds $(pg_sql "SELECT count(*) FROM outbox WHERE state = 0 AND claim_owner IS NOT NULL") queued row(s); pausing it"
fi
cl_pause "${holder:-1}"
# Every acknowledgement (each outbox row has its own Message-ID) reached the
# relay: the others took the outbox over.
ack_ids() { grep -h -i '^Message-ID:' "$SMTP_OUT"/*.eml | sort -u | wc -l; }
acks_all() { [ "$(ack_ids)" -ge "$W" ]; }
wait_for 120 acks_all
cl_cont "${holder:-1}"
wait_for 20 grep -q "the lease on the outbox is lost" "$T/d${holder:-1}.log"
sleep 3
rm -f "$SMTP_OUT/slow"
check "the resumed flush found its outbox lease lost and sent nothing more" \
	grep -q "the lease on the outbox is lost" "$T/d${holder:-1}.log"
is "every acknowledgement reached the relay ($W distinct)" "$(ack_ids)" "$W"
total=$(cl_acks)
check "at most the one message in flight went out twice ($total sent for $W)" \
	test "$total" -ge "$W" -a "$total" -le $((W + 1))

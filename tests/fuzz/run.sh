#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# Build the libFuzzer targets with clang (ASan + UBSan) outside automake's
# build and run each for a while:
#   tests/fuzz/run.sh [SECONDS] [TARGET...]     (make fuzz FUZZ_SECONDS=60)
# Seeds: tests/fuzz/corpus/TARGET/ (also read by the make-check replay);
# new coverage goes to $FUZZ_WORK/TARGET/, crashes to $FUZZ_WORK/crash-TARGET-*.
# Copy a crashing input to tests/fuzz/corpus/TARGET/ once it is fixed: make
# check replays every file there (tests/fuzz/replay.c).
# Environment: FUZZ_WORK (default /tmp/mailmill-fuzz), CC (default clang),
# FUZZ_JOBS (default 1), FUZZ_NICE (default 10).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
SECS=${1:-60}
shift || true
TARGETS=${*:-pop3_lines pop3_session pop3_listing smtp_reply config include message token_json sasl_challenge imap_response imap_session}
WORK=${FUZZ_WORK:-/tmp/mailmill-fuzz}
CC=${CC:-clang}
mkdir -p "$WORK/obj"

FLAGS="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
PKGS="gmime-3.0 libconfig openssl sqlite3 json-glib-1.0"
# shellcheck disable=SC2046
CFLAGS="$FLAGS -std=gnu11 -I$WORK/obj -I$SRC -I$SRC/include $(pkg-config --cflags $PKGS)"
LIBS="$(pkg-config --libs $PKGS) -ldl"
# The one define the sources need from config.h.
printf '#define _GNU_SOURCE 1\n#define PACKAGE_VERSION "fuzz"\n#define PACKAGE_STRING "mailmill fuzz"\n' >"$WORK/obj/config.h"

# All of proto/ (the wire library has no outside dependencies), and the
# daemon files that configuration loading, message parsing and the token
# endpoint's JSON answers need, and the
# archive's From reader (fuzz_message holds it to GMime's answer).
CORE="core/log core/crash core/units core/trust core/cfg_include core/cfg core/cfg_value core/cfg_schema core/cfg_schedule core/cfg_account oauth/oauth_config core/secret run/message oauth/oauth_json"
objs=()
for f in $(cd "$SRC" && ls proto/*.c | sed 's/\.c$//') $(for c in $CORE; do echo "daemon/$c"; done) \
	plugins/archive_sender; do
	o=$WORK/obj/$(echo "$f" | tr / _).o
	# A header newer than the object counts too: a stale struct layout
	# makes false reports (a struct in proto/imap_int.h changed once).
	if [ ! -f "$o" ] || [ "$SRC/$f.c" -nt "$o" ] ||
		[ -n "$(find "$SRC/proto" "$SRC/daemon" "$SRC/include" -name '*.h' -newer "$o" | head -n 1)" ]; then
		# shellcheck disable=SC2086
		nice -n "${FUZZ_NICE:-10}" $CC $CFLAGS -DSYSCONFDIR='"/etc"' -DPKGLIBDIR='"/usr/lib/mailmill"' \
			-DLOCALSTATEDIR='"/var"' -c "$SRC/$f.c" -o "$o"
	fi
	objs+=("$o")
done

export LSAN_OPTIONS=suppressions=$SRC/tests/fuzz/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# A GLib critical (a g_return_if_fail of GMime's: a NULL object, a wrong
# type) is a bug in the caller: it stops the fuzzer like a crash.
# GLib stops on a breakpoint (SIGTRAP): ASan reports it and libFuzzer keeps
# the input.
export G_DEBUG=fatal-criticals
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}handle_sigtrap=1
status=0
for t in $TARGETS; do
	bin=$WORK/fuzz_$t
	# shellcheck disable=SC2086
	nice -n "${FUZZ_NICE:-10}" $CC $CFLAGS -fsanitize=fuzzer "$SRC/tests/fuzz/fuzz_$t.c" \
		"${objs[@]}" $LIBS -o "$bin"
	mkdir -p "$WORK/$t" "$SRC/tests/fuzz/corpus/$t"
	echo "=== fuzz_$t for ${SECS}s"
	if ! (cd "$WORK" && nice -n "${FUZZ_NICE:-10}" "$bin" -max_total_time="$SECS" \
		-jobs="${FUZZ_JOBS:-1}" -workers="${FUZZ_JOBS:-1}" -max_len=65536 -timeout=10 \
		-rss_limit_mb=2048 -artifact_prefix="$WORK/crash-$t-" -print_final_stats=1 \
		"$WORK/$t" "$SRC/tests/fuzz/corpus/$t" >"$WORK/$t.log" 2>&1); then
		echo "fuzz_$t FOUND A PROBLEM: see $WORK/$t.log and $WORK/crash-$t-*"
		grep -E 'ERROR|SUMMARY|runtime error' "$WORK/$t.log" | head -n 5
		status=1
	else
		grep -E '^stat::number_of_executed_units|cov:' "$WORK/$t.log" | tail -n 2
	fi
done
exit $status

#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# The plugin loader and the verdicts: a plugin built for another ABI, a
# plugin whose init fails, or a missing one is refused at start (exit 78,
# naming the file) before any connection; KEEP leaves a message on the server
# and it is never processed again; DEFER leaves it for the next run; the same
# plugin may serve two stages.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
need dovecot python3 openssl
mm_setup
plan 19

env_start srv --users "user1 keep defer twice"
env_seed 3
server_before=$(hashes "$MD")

no_login() { ! grep -q 'Login: ' "$MAILENV_LOG"; }

C_STAGES="      { plugin = \"$TEST_PLUGIN_DIR/badabi.so\"; }" write_conf "$T/badabi.conf"
mm badabi -c "$T/badabi.conf" --once
rc_is "wrong ABI: exit 78" 78
check "wrong ABI: the message names the file" err_has 'badabi\.so'
check "wrong ABI: the message names the ABI" err_has 'ABI|abi'
mm badabi-check -c "$T/badabi.conf" --check-config
rc_is "wrong ABI: --check-config exits 78" 78

C_STAGES="      { plugin = \"$TEST_PLUGIN_DIR/failinit.so\"; }" write_conf "$T/failinit.conf"
mm failinit -c "$T/failinit.conf" --once
rc_is "failing init: exit 78" 78
check "failing init: the message names the plugin" err_has 'failinit'

C_STAGES="      { plugin = \"no-such-plugin\"; }" write_conf "$T/missing.conf"
mm missing -c "$T/missing.conf" --once
rc_is "missing plugin: exit 78" 78
check "missing plugin: the message names it" err_has 'no-such-plugin'

C_STAGES="      { plugin = \"archive\"; path = \"$T/x\"; colour = \"blue\"; }" write_conf "$T/badkey.conf"
mm badkey -c "$T/badkey.conf" --check-config
rc_is "unknown plugin setting: --check-config exits 78" 78
check "unknown plugin setting: named with file:line" err_has "badkey\.conf:[0-9]+.*colour|colour.*badkey\.conf:[0-9]+"

is "no refused configuration reached the server" "$(hashes "$MD")" "$server_before"
check "no refused configuration logged in" no_login

# --- KEEP for the messages whose subject says "Plain text", archive the rest
env_user keep
env_seed 14 --seed keep
mkdir -p "$T/kept"
for f in "$EXPECTED"/*; do # the top-level header only: forwarded messages embed one
	sed '/^$/q' "$f" | grep -q '^Subject: Plain text' && mv "$f" "$T/kept/"
done
C_ARCHIVE=$T/archive-keep C_STATE=$T/state-keep \
C_STAGES="      { plugin = \"$TEST_PLUGIN_DIR/verdict.so\"; verdict = \"keep\"; subject_contains = \"Plain text\"; },
      { plugin = \"archive\"; path = \"$T/archive-keep\"; format = \"maildir\"; }" \
	write_conf "$T/keep.conf"
mm keep-1 -c "$T/keep.conf" --once
mm keep-2 -c "$T/keep.conf" --once
rc_is "KEEP verdict: runs exit 0" 0
check "KEEP verdict: the other messages archived once" archive_matches "$T/archive-keep"
is "KEEP verdict: the kept messages stay on the server" \
	"$(hashes "$MD")" "$(find "$T/kept" -type f -print0 | xargs -0r sha256sum | cut -d' ' -f1 | sort)"

# --- DEFER: nothing happens now, all of it on the next run
env_user defer
env_seed 5 --seed defer
server_before=$(hashes "$MD")
C_ARCHIVE=$T/archive-defer C_STATE=$T/state-defer \
C_STAGES="      { plugin = \"$TEST_PLUGIN_DIR/verdict.so\"; verdict = \"defer\"; },
      { plugin = \"archive\"; path = \"$T/archive-defer\"; format = \"maildir\"; }" \
	write_conf "$T/defer.conf"
mm defer -c "$T/defer.conf" --once
if [ "$(hashes "$MD")" = "$server_before" ] && [ "$(archive_count "$T/archive-defer")" = 0 ]; then
	ok "DEFER verdict: nothing archived, nothing deleted"
else
	not_ok "DEFER verdict: nothing archived, nothing deleted"
fi
C_ARCHIVE=$T/archive-defer C_STATE=$T/state-defer write_conf "$T/defer2.conf"
mm defer-2 -c "$T/defer2.conf" --once
if [ "$MM_RC" = 0 ] && archive_matches "$T/archive-defer" && [ "$(env_count)" = 0 ]; then
	ok "after DEFER: the next run archives every message and empties the server"
else
	not_ok "after DEFER: the next run archives every message and empties the server"
	show "$MM_ERR"
fi

# --- the same plugin in two stages with different settings
env_user twice
env_seed 5 --seed twice
C_ARCHIVE=$T/archive-twice C_STATE=$T/state-twice \
C_STAGES="      { plugin = \"$TEST_PLUGIN_DIR/verdict.so\"; name = \"first\"; verdict = \"pass\"; },
      { plugin = \"$TEST_PLUGIN_DIR/verdict.so\"; name = \"second\"; verdict = \"keep\"; subject_contains = \"no such subject\"; },
      { plugin = \"archive\"; path = \"$T/archive-twice\"; format = \"maildir\"; }" \
	write_conf "$T/twice.conf"
mm twice -c "$T/twice.conf" --once
rc_is "one plugin in two stages: exit 0" 0
check "one plugin in two stages: every message reached the archive" archive_matches "$T/archive-twice"

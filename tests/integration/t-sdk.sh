#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# The plugin SDK and `make install`: install the build tree into a scratch
# DESTDIR; check the header, mailmill.pc, the sample configuration (as
# mailmill.conf.example, and as mailmill.conf mode 0600 only where none
# exists: a second install keeps an edited one), the unit and the man pages
# naming the installed paths; build examples/plugin out of tree with
# `pkg-config --cflags mailmill` from that tree and install it into the
# plugindir mailmill.pc names; then the installed mailmilld, with the
# installed plugins and the example, runs a pipeline against a real Dovecot:
# subjecttag adds a header to mail whose Subject matches, a filter stage
# routes by that header, and each archive holds exactly its messages.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
need dovecot openssl
mm_setup
plan 28

D=$T/dest
# A make started by this test must not talk to the jobserver of the `make
# check` that runs it.
unset MAKEFLAGS MFLAGS MAKELEVEL
if make -C "$MM_BUILDDIR" install DESTDIR="$D" >"$T/install.out" 2>&1; then
	ok "make install DESTDIR= succeeds"
else
	not_ok "make install DESTDIR= succeeds"
	show "$T/install.out"
fi

pc=$(find "$D" -name mailmill.pc -path '*/pkgconfig/*' | head -n1)
check "mailmill.pc is installed in a pkgconfig directory" test -n "$pc"
prefix=$(sed -n 's/^prefix=//p' "$pc" 2>/dev/null)
# Relocate the installed tree's mailmill.pc (only its prefix: PKG_CONFIG_SYSROOT_DIR
# would move GMime's and libconfig's paths too).
mkdir -p "$T/pc"
sed "s|^prefix=.*|prefix=$D$prefix|" "$pc" >"$T/pc/mailmill.pc"
export PKG_CONFIG_PATH=$T/pc
cflags=$(pkg-config --cflags mailmill 2>"$T/pc.err")
plugindir=$(pkg-config --variable=plugindir mailmill)
case " $cflags " in
*" -I$D$prefix/include "*"gmime-3.0"*) ok "pkg-config --cflags: the installed include dir and GMime's" ;;
*) not_ok "pkg-config --cflags: the installed include dir and GMime's"; diag "got: $cflags"; show "$T/pc.err" ;;
esac
check "the header is installed as <mailmill/plugin.h>" \
	cmp -s "$MM_SRCDIR/include/mailmill/plugin.h" "$D$prefix/include/mailmill/plugin.h"
check "plugindir holds the shipped plugins" test -f "$plugindir/archive.so" -a -f "$plugindir/filter.so"

# ---- the sample configuration, the unit, the man pages
etc=$(dirname "$(find "$D" -name mailmill.conf.example | head -n1)")
check "mailmill.conf.example is installed" cmp -s "$MM_BUILDDIR/etc/mailmill.conf.example" "$etc/mailmill.conf.example"
is "mailmill.conf is installed where none was, mode 0600" "$(stat -c %a "$etc/mailmill.conf" 2>&1)" 600
state=$(sed -n 's/^state_dir = "\(.*\)";$/\1/p' "$etc/mailmill.conf")
is "the sample's state_dir is the state directory make install made (0700)" \
	"$(stat -c %a "$D$state" 2>&1)" 700
echo "# edited by the administrator" >>"$etc/mailmill.conf"
sum=$(sha256sum <"$etc/mailmill.conf")
make -C "$MM_BUILDDIR" install DESTDIR="$D" >"$T/install2.out" 2>&1
is "a second make install keeps an existing mailmill.conf" "$(sha256sum <"$etc/mailmill.conf")" "$sum"
check "... and says so" grep -q "mailmill.conf exists: kept" "$T/install2.out"

unit=$(find "$D" -name mailmill.service | head -n1)
exe=$(sed -n 's/^ExecStart=\([^ ]*\) .*/\1/p' "$unit")
conf=$(sed -n 's/^ExecStart=.* -c \([^ ]*\)$/\1/p' "$unit")
check "the unit's ExecStart is the installed mailmilld" test -x "$D$exe" -a -f "$D$exe"
check "the unit's -c is the installed mailmill.conf" test "$D$conf" = "$etc/mailmill.conf"
man8=$(find "$D" -name mailmilld.8 | head -n1)
check "mailmilld(8) names that configuration file" grep -qF "$conf" "$man8"
n=$(find "$D" \( -name 'mailmilld.8' -o -name 'mailmill.conf.5' -o -name 'mailmill-plugin.3' \) -path '*/man/man*' | wc -l)
is "the three man pages are installed" "$n" 3
# shellcheck disable=SC2046
check "no placeholder is left in what was generated" \
	sh -c '! grep -l "@[A-Za-z_]*@" "$@"' sh "$unit" "$etc/mailmill.conf.example" $(find "$D" -path '*/man/man*' -type f)

# ---- the example, out of tree
cp -R "$MM_SRCDIR/examples/plugin" "$T/example"
# -MD: the list of the headers it read, in subjecttag.d.
if make -C "$T/example" CFLAGS="-O2 -Wall -Wextra -Werror -std=gnu11 -MD" >"$T/example.out" 2>&1 &&
	make -C "$T/example" install >>"$T/example.out" 2>&1; then
	ok "examples/plugin builds with pkg-config and installs"
else
	not_ok "examples/plugin builds with pkg-config and installs"
	show "$T/example.out"
fi
check "... into the plugindir of mailmill.pc" test -f "$plugindir/subjecttag.so"
check "... compiled against the installed header" grep -qF -- "$D$prefix/include/mailmill/plugin.h" "$T/example/subjecttag.d"

# The EXAMPLE section of the installed mailmill-plugin(3), as a reader would
# copy it: it must compile against the SDK, and mailmilld must load it.
man3=$(find "$D" -name mailmill-plugin.3 -path '*/man3/*' | head -n1)
LC_ALL=C.UTF-8 MANWIDTH=200 man -l "$man3" 2>/dev/null |
	awk '/^EXAMPLE/ { f = 1 } f && /#include <mailmill\/plugin.h>/ { c = 1 }
		c { sub(/^       +/, ""); print } c && /^ *};/ { exit }' >"$T/bigkeep.c"
# shellcheck disable=SC2046
if cc -Wall -Wextra -Werror -std=gnu11 -fPIC $(pkg-config --cflags mailmill) -shared \
	-o "$T/bigkeep.so" "$T/bigkeep.c" >"$T/bigkeep.out" 2>&1; then
	ok "the EXAMPLE of mailmill-plugin(3) compiles against the installed SDK"
else
	not_ok "the EXAMPLE of mailmill-plugin(3) compiles against the installed SDK"
	show "$T/bigkeep.out"
fi

# ---- the installed mailmilld runs it
# shellcheck disable=SC2034 # read by mm and write_conf (common.sh)
MAILMILLD=$D$exe
PLUGIN_DIR=$plugindir
env_start srv
inv=$T/inv
other=$T/other
mkdir -p "$inv" "$other"
mkmsg() { # DIR NAME SUBJECT
	printf 'From: <a@example.com>\nTo: <b@example.org>\nSubject: %s\nMessage-ID: <%s@sdk.test>\nDate: Mon, 01 Jan 2024 10:00:00 +0000\n\nBody of %s.\n' \
		"$3" "$2" "$2" >"$1/$2.eml"
}
mkmsg "$inv" i1 "Invoice 2024-001"
mkmsg "$inv" i2 "=?UTF-8?B?$(printf 'Ihre Rechnung: INVOICE für März' | base64 -w0)?="
mkmsg "$inv" i3 "Fwd: your invoice"
mkmsg "$other" o1 "Lunch on Friday?"
mkmsg "$other" o2 "in voice mail"
env_seed_files "$inv"/*.eml "$other"/*.eml

stages() { # the subjecttag stage's settings
	cat <<EOS
      { plugin = "subjecttag"; $1 },
      { plugin = "filter"; rules = ( { header = "X-Class"; match = "^invoice\$"; goto = "invoices"; } ); },
      { plugin = "archive"; name = "main"; path = "$T/main"; },
      { plugin = "archive"; name = "invoices"; path = "$T/invoices"; }
EOS
}
C_STAGES=$(stages 'match = "invoice"; nocase = true; header = "X-Class"; value = "invoice";') \
	write_conf "$T/sdk.conf"
C_STAGES=$(stages 'match = "(invoice";') write_conf "$T/badre.conf"
C_STAGES=$(stages 'match = "x"; colour = "red";') write_conf "$T/badkey.conf"

C_STAGES="      { plugin = \"$T/bigkeep.so\"; max_size = 100; }" write_conf "$T/bigkeep.conf"
mm bigkeep -c "$T/bigkeep.conf" --check-config
rc_is "... and mailmilld loads it: --check-config exits 0" 0

mm badre -c "$T/badre.conf" --check-config
rc_is "a bad regex in the example's settings: exit 78" 78
check "... with file:line" err_has "badre.conf:[0-9]+: .*match"
mm badkey -c "$T/badkey.conf" --check-config
check "an unknown key: exit 78 naming it" test "$MM_RC" = 78 -a -n "$(grep -l colour "$MM_ERR")"

mm run -c "$T/sdk.conf" --once
rc_is "--once with the example plugin exits 0" 0
hashes_of() { sha256sum "$1"/*.eml | cut -d' ' -f1 | sort; }
is "the matching Subjects (also RFC 2047-encoded) are routed by the added header" \
	"$(hashes "$T/invoices")" "$(hashes_of "$inv")"
is "the rest is archived by the main stage, byte for byte" "$(hashes "$T/main")" "$(hashes_of "$other")"
is "the plugin logs each tagged message" "$(grep -c 'matches: X-Class: invoice' "$MM_ERR")" 3
is "the server is empty" "$(env_count)" 0

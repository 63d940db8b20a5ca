#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# The Debian package: build it from a copy of the source tree in a scratch
# directory (dpkg-buildpackage -us -uc -b, DEB_BUILD_OPTIONS=nocheck: the
# tests run elsewhere), run lintian on it (no error allowed), unpack both
# packages into a scratch root (dpkg -x) and check what an installation
# holds: the binary, the plugins, the unit with /usr/sbin and /etc/mailmill
# paths, the man pages naming them, the configuration (0600, conffile, the
# workers' user), the example, the SDK; the packaged mailmilld and plugins
# then archive a real Dovecot's mail.  Not part of `make check` (a package
# build takes a minute or two of both cores): tests/run runs it as a step of
# its own, as does `make check-deb`.  MM_KEEP=1 keeps the work dir.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@"
. "$(dirname "$0")/../lib/common.sh"
mm_setup
plan 24

for tool in dpkg-buildpackage dh lintian; do
	if ! command -v "$tool" >/dev/null; then
		echo "Bail out! $tool is missing (tests/lib/deps.sh installs it)"
		exit 1
	fi
done
unset MAKEFLAGS MFLAGS MAKELEVEL

# ---- build from a copy: dpkg-buildpackage writes ../*.deb and debian/ files.
SRC=$T/src/mailmill
mkdir -p "$SRC"
if git -C "$MM_SRCDIR" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# Tracked files and new ones not ignored: the tree as it is being changed.
	(cd "$MM_SRCDIR" && git ls-files -co --exclude-standard -z |
		xargs -0 cp --parents -t "$SRC")
else
	tar -C "$MM_SRCDIR" --exclude='./_build*' --exclude=./autom4te.cache -cf - . | tar -C "$SRC" -xf -
fi
start=$SECONDS
if (cd "$SRC" && DEB_BUILD_OPTIONS="nocheck noautodbgsym parallel=${JOBS:-2}" \
	dpkg-buildpackage -us -uc -b) >"$T/build.log" 2>&1; then
	ok "dpkg-buildpackage -us -uc -b builds the packages"
else
	not_ok "dpkg-buildpackage -us -uc -b builds the packages"
	show "$T/build.log" 40
fi
diag "package build: $((SECONDS - start)) s"
deb=$(ls "$T"/src/mailmill_*.deb 2>/dev/null | head -n1)
devdeb=$(ls "$T"/src/mailmill-dev_*.deb 2>/dev/null | head -n1)
changes=$(ls "$T"/src/mailmill_*.changes 2>/dev/null | head -n1)
check "mailmill and mailmill-dev .debs are there" test -f "$deb" -a -f "$devdeb"

lintian --pedantic -I "$changes" >"$T/lintian.out" 2>&1
sed 's/^/# lintian: /' "$T/lintian.out" | grep -v 'running with root privileges' || true
is "lintian reports no error" "$(grep -c '^E:' "$T/lintian.out")" 0

# ---- unpack into a scratch root
R=$T/root
dpkg -x "$deb" "$R" && dpkg -x "$devdeb" "$R"
check "usr/sbin/mailmilld is an executable" test -x "$R/usr/sbin/mailmilld" -a -f "$R/usr/sbin/mailmilld"
plugdir=$(dirname "$(find "$R/usr/lib" -name archive.so -path '*/mailmill/*' | head -n1)")
n=0
for p in archive autoreply filter forward pipe ticket; do
	[ -f "$plugdir/$p.so" ] && n=$((n + 1))
done
is "the six plugins are in /usr/lib/<triplet>/mailmill" "$n" 6
check "no libtool archive is shipped" test -z "$(find "$R" -name '*.la')"

unit=$R/lib/systemd/system/mailmill.service
check "the unit is installed for systemd" test -f "$unit"
check "ExecStart= is /usr/sbin/mailmilld with /etc/mailmill/mailmill.conf" \
	grep -qx 'ExecStart=/usr/sbin/mailmilld -f -c /etc/mailmill/mailmill.conf' "$unit"
check "ExecStartPre= checks that configuration" \
	grep -qx 'ExecStartPre=/usr/sbin/mailmilld --check-config -c /etc/mailmill/mailmill.conf' "$unit"
check "ReadWritePaths= is /var/lib/mailmill, nothing under /usr/local" \
	sh -c 'grep -qx "ReadWritePaths=/var/lib/mailmill" "$1" && ! grep -q /usr/local "$1"' sh "$unit"

m=$R/usr/share/man
check "mailmilld(8), mailmill.conf(5), mailmill-plugin(3) are installed" \
	test -f "$m/man8/mailmilld.8.gz" -a -f "$m/man5/mailmill.conf.5.gz" -a -f "$m/man3/mailmill-plugin.3.gz"
check "mailmilld(8) names /etc/mailmill/mailmill.conf; no man page names /usr/local" \
	sh -c 'zcat "$1" | grep -q /etc/mailmill/mailmill.conf && ! zcat "$@" | grep -q /usr/local' \
	sh "$m/man8/mailmilld.8.gz" "$m/man5/mailmill.conf.5.gz" "$m/man3/mailmill-plugin.3.gz"
# man --warnings: groff's complaints (bad requests, unknown escapes), none
# allowed; a line too long to fill at 80 columns is layout, not an error.
manwarn=
for f in "$m"/man*/*.gz; do
	w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$f" 2>&1 >/dev/null |
		grep -v -e 'cannot adjust line' -e 'cannot break line')
	[ -n "$w" ] && manwarn="$manwarn$(basename "$f"): $w"$'\n'
done
is "the man pages format without a groff warning" "$manwarn" ""

c=$R/etc/mailmill/mailmill.conf
is "/etc/mailmill/mailmill.conf is mode 0600" "$(stat -c %a "$c" 2>&1)" 600
check "... the sample, with the workers' user = \"mailmill\"" grep -qx 'user = "mailmill";' "$c"
check "... and /etc/mailmill/mailmill.conf.example next to it" test -f "$R/etc/mailmill/mailmill.conf.example"
dpkg-deb -e "$deb" "$T/control"
check "both are conffiles" sh -c 'grep -qx /etc/mailmill/mailmill.conf "$1" &&
	grep -qx /etc/mailmill/mailmill.conf.example "$1"' sh "$T/control/conffiles"
check "postinst makes the system user mailmill and /var/lib/mailmill" \
	sh -c 'grep -q "adduser --system" "$1" && grep -q "install -d -m 0700 -o mailmill" "$1"' sh "$T/control/postinst"
check "the maintainer scripts parse (sh -n)" \
	sh -c 'for f; do sh -n "$f" || exit 1; done' sh "$T"/control/preinst "$T"/control/postinst \
	"$T"/control/prerm "$T"/control/postrm
check "postinst enables the unit (dh_installsystemd)" grep -q "deb-systemd-helper enable 'mailmill.service'" "$T/control/postinst"

pc=$(find "$R/usr/lib" -name mailmill.pc | head -n1)
is "mailmill-dev: mailmill.pc's plugindir is where the plugins are" \
	"$R$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --variable=plugindir mailmill)" "$plugdir"
check "mailmill-dev: the header and the example" \
	test -f "$R/usr/include/mailmill/plugin.h" -a -f "$R/usr/share/doc/mailmill-dev/examples/subjecttag.c"

# ---- the packaged binary and plugins at work
MAILMILLD=$R/usr/sbin/mailmilld
# shellcheck disable=SC2034 # read by write_conf (common.sh)
PLUGIN_DIR=$plugdir
env_start srv
env_seed 5
write_conf "$T/deb.conf"
mm run -c "$T/deb.conf" --once
rc_is "the packaged mailmilld and archive plugin: --once exits 0" 0
check "... every message archived byte for byte" archive_matches "$T/archive"

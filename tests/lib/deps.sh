#!/bin/sh
# mailmill - ISC licence, see LICENSE
#
# Install the Debian packages the build, the tests and the demo need, when
# missing.  Needs root (or nothing to do).  A temporary /usr/sbin/policy-rc.d
# keeps apt from starting a system Dovecot on ports 110/995: the tests start
# their own private one.  (python3-aiosmtpd: the SMTP capture server of the
# outgoing-mail tests; libcurl4-openssl-dev: the ticket plugin's webhook and
# the OAuth token endpoint; libjson-glib-dev: token endpoint answers; postfix:
# the real relay of the mail-loop and OAuth SMTP tests; curl: the OAuth tests
# drive their identity provider with it; tzdata: test_at's time zones;
# libpq-dev, postgresql: the PostgreSQL store and its private test server
# (initdb, pg_ctl); debhelper, dpkg-dev, lintian: the Debian package build of
# tests/integration/t-package.sh; libmicrohttpd-dev: metrics_listen's
# /metrics and /healthz.)
set -eu

PACKAGES="build-essential autoconf automake libtool pkg-config
libgmime-3.0-dev libconfig-dev libssl-dev libsqlite3-dev libcmocka-dev
dovecot-core dovecot-pop3d dovecot-imapd openssl ca-certificates python3 python3-aiosmtpd sqlite3
libcurl4-openssl-dev libjson-glib-dev postfix curl tzdata debhelper dpkg-dev lintian
libpq-dev postgresql libmicrohttpd-dev"

missing=
for p in $PACKAGES; do
	st=$(dpkg-query -W -f '${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = installed ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages:$missing (run as root, or install them)" >&2
	exit 1
fi
echo "deps: installing$missing" >&2

policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# mailmill tests/lib/deps.sh: no service starts during install\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	made_policy=1
fi
cleanup() { [ "$made_policy" = 1 ] && rm -f "$policy"; return 0; }
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

export DEBIAN_FRONTEND=noninteractive
# An old package list cannot find anything on a fresh image: refresh once.
if ! apt-get install -y --no-install-recommends $missing >&2; then
	apt-get update >&2
	apt-get install -y --no-install-recommends $missing >&2
fi

# Without an init system policy-rc.d is not always asked; stop a system Dovecot
# this install may have started, and only if it was this install's.
case " $missing " in
*" dovecot-core "*)
	if [ -s /run/dovecot/master.pid ]; then
		/usr/sbin/dovecot stop >/dev/null 2>&1 || true
	fi
	;;
esac
case " $missing " in
*" postfix "*)
	postfix status >/dev/null 2>&1 && postfix stop >/dev/null 2>&1
	;;
esac
exit 0

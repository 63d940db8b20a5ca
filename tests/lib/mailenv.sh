#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# A private Dovecot POP3 and IMAP server on loopback for tests and the demo.
#
#   mailenv.sh start DIR [--no-ssl] [--cert-host NAME] [--users "u1 u2"] [--password PW]
#   mailenv.sh stop DIR
#   mailenv.sh certs DIR [--cert-host NAME]   only the CA and server certificate
#                     (DIR/ssl), for a test that needs them before Dovecot starts
#                     (its identity provider); a later start in DIR reuses them
#
# Everything lives in DIR: its own dovecot.conf, a users file, one Maildir per
# user, a CA and a server certificate made now, logs and the pid file.  No
# system configuration is read or written and no system service is touched.
# Ports are picked at start from the kernel's free ones, so several
# environments can run side by side (make -j2 check).  After start, DIR/env.sh
# holds what a test needs (ports, CA file, Maildir paths); source it.
# When dovecot-imapd is installed the same mailboxes are also served over
# IMAP (IMAP_PORT: plain and STARTTLS; IMAPS_PORT: implicit TLS), folders as
# Maildir++ (~/Maildir/.NAME); env.sh then says MAILENV_IMAP=yes.
#
#   --no-ssl          ssl = no: STLS is not offered and there is no POP3S port
#   --cert-host NAME  the server certificate names only NAME (a wrong-host test)
#   --oauth URL       also accept XOAUTH2 and OAUTHBEARER, each token checked by
#                     RFC 7662 introspection at URL (tests/lib/idp.py) through
#                     the oauth2 passdb; the password users keep working
#   --sasl-socket P   a Dovecot SASL listener at path P for Postfix (mode 0666;
#                     relative: in DIR/run); env.sh: MAILENV_SASL_SOCKET
set -euo pipefail

DOVECOT=${MM_DOVECOT:-/usr/sbin/dovecot}
PY=/usr/bin/python3

die() { echo "mailenv: $*" >&2; exit 1; }

usage() {
	echo "usage: $0 start DIR [--no-ssl] [--cert-host NAME] [--users LIST] [--password PW]" >&2
	echo "                 [--oauth INTROSPECTION_URL] [--sasl-socket PATH]" >&2
	echo "       $0 certs DIR [--cert-host NAME]" >&2
	echo "       $0 stop DIR" >&2
	exit 64
}

# Two distinct free TCP ports on 127.0.0.1 (and on ::1 when loopback has it).
# The kernel chooses; a race with another process is caught by the caller's
# retry when Dovecot cannot bind.
free_ports() {
	"$PY" - "$1" <<'EOF'
import socket, sys
n = int(sys.argv[1])
held, ports = [], []
while len(ports) < n:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    held.append(s)
    try:
        s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s6.bind(("::1", p))
        held.append(s6)
    except OSError as e:
        if e.errno != 99 and e.errno != 97:  # in use on ::1: pick another
            continue
    ports.append(p)
print(" ".join(map(str, ports)))
EOF
}

have_ipv6_lo() { grep -q ' lo$' /proc/net/if_inet6 2>/dev/null; }

make_certs() { # DIR CERT_HOST
	local s=$1/ssl host=$2 san
	mkdir -p "$s"
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-days 30 -sha256 -keyout "$s/ca.key" -out "$s/ca.crt" \
		-subj "/CN=mailmill test CA $$" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>"$s/openssl.log"
	if [ "$host" = localhost ]; then
		san="DNS:localhost,IP:127.0.0.1,IP:::1"
	else
		san="DNS:$host"
	fi
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
		-keyout "$s/server.key" -out "$s/server.csr" -subj "/CN=$host" 2>>"$s/openssl.log"
	printf '%s\n' "basicConstraints=CA:FALSE" \
		"keyUsage=critical,digitalSignature" \
		"extendedKeyUsage=serverAuth" \
		"subjectAltName=$san" >"$s/server.ext"
	openssl x509 -req -in "$s/server.csr" -CA "$s/ca.crt" -CAkey "$s/ca.key" \
		-CAcreateserial -days 30 -sha256 -extfile "$s/server.ext" \
		-out "$s/server.crt" 2>>"$s/openssl.log"
	chmod 600 "$s/ca.key" "$s/server.key"
	openssl verify -CAfile "$s/ca.crt" "$s/server.crt" >/dev/null ||
		die "generated certificate does not verify"
}

have_imap() { [ -e /usr/lib/dovecot/imap ] && [ -e /usr/lib/dovecot/imap-login ]; }

write_conf() { # DIR SSL POP3_PORT POP3S_PORT OAUTH_URL SASL_SOCKET IMAP_PORT IMAPS_PORT
	local d=$1 ssl=$2 p=$3 ps=$4 oauth=$5 sasl=$6 ip=$7 ips=$8 listen=127.0.0.1
	have_ipv6_lo && listen="127.0.0.1, ::1"
	{
		echo "# written by mailmill tests/lib/mailenv.sh: a private test instance"
		if [ "$ip" != 0 ]; then
			echo "protocols = pop3 imap"
		else
			echo "protocols = pop3"
		fi
		echo "listen = $listen"
		echo "base_dir = $d/run"
		echo "state_dir = $d/state"
		echo "instance_name = mmtest-$(basename "$d")-$$"
		echo "log_path = $d/log/dovecot.log"
		echo "info_log_path = $d/log/dovecot.log"
		echo "auth_verbose = yes"
		# A refused token is the point of several OAuth tests: no 2 s penalty each.
		# Nor the growing penalty (2 s, 4 s, ... 15 s) Dovecot puts on an address
		# after failures: the documented way off is an unreachable penalty socket.
		if [ -n "$oauth" ]; then
			echo "auth_failure_delay = 0"
			echo "service anvil {"
			echo "  unix_listener anvil-auth-penalty {"
			echo "    mode = 0"
			echo "  }"
			echo "}"
		fi
		if [ -n "$oauth" ]; then
			echo "auth_mechanisms = plain login xoauth2 oauthbearer"
		else
			echo "auth_mechanisms = plain login"
		fi
		echo "disable_plaintext_auth = no"
		echo "mail_location = maildir:~/Maildir"
		echo "first_valid_uid = $MAIL_UID"
		echo "first_valid_gid = $MAIL_GID"
		echo "pop3_uidl_format = %08Xu%08Xv"
		if [ "$ssl" = yes ]; then
			echo "ssl = yes"
			echo "ssl_cert = <$d/ssl/server.crt"
			echo "ssl_key = <$d/ssl/server.key"
			echo "ssl_dh = <$DH_FILE"
			echo "ssl_min_protocol = TLSv1.2"
		else
			echo "ssl = no"
		fi
		# With OAuth, each passdb serves its own mechanisms: a token is
		# never compared with a password, nor a password introspected.
		cat <<EOF
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $d/etc/users
${oauth:+  mechanisms = plain login}
}
EOF
		if [ -n "$oauth" ]; then
			cat <<EOF
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $d/etc/oauth2.conf.ext
}
EOF
			cat >"$d/etc/oauth2.conf.ext" <<EOF
introspection_mode = post
introspection_url = $oauth
username_attribute = username
active_attribute = active
active_value = true
force_introspection = yes
tls_ca_cert_file = $d/ssl/ca.crt
timeout_msecs = 5000
EOF
			chmod 644 "$d/etc/oauth2.conf.ext"
		fi
		if [ -n "$sasl" ]; then
			cat <<EOF
service auth {
  unix_listener $sasl {
    mode = 0666
  }
}
EOF
		fi
		cat <<EOF
userdb {
  driver = passwd-file
  args = username_format=%u $d/etc/users
}
service pop3-login {
  inet_listener pop3 {
    port = $p
  }
  inet_listener pop3s {
    port = $ps
    ssl = yes
  }
}
service imap-login {
  inet_listener imap {
    port = $ip
  }
  inet_listener imaps {
    port = $ips
    ssl = yes
  }
}
EOF
		# IMAP folders as Maildir++ (.NAME under the Maildir, '.' between
		# levels), the layout a test seeds by writing files.
		if [ "$ip" != 0 ]; then
			cat <<EOF
namespace inbox {
  inbox = yes
  separator = .
}
protocol imap {
  mail_max_userip_connections = 50
}
EOF
		fi
		if [ "$(id -u)" -ne 0 ]; then
			# Unprivileged: every Dovecot process runs as the caller.
			cat <<EOF
default_login_user = $(id -un)
default_internal_user = $(id -un)
default_internal_group = $(id -gn)
service anvil {
  chroot =
}
service pop3-login {
  chroot =
}
service imap-login {
  chroot =
}
EOF
		fi
	} >"$d/etc/dovecot.conf"
}

wait_port() { # PORT: up to 10 s
	local i
	for ((i = 0; i < 100; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	return 1
}

master_alive() { [ -s "$1/run/master.pid" ] && kill -0 "$(cat "$1/run/master.pid")" 2>/dev/null; }

start() {
	local d=$1 ssl=yes cert_host=localhost users="user1 user2" pw=secret oauth= sasl=
	shift
	while [ $# -gt 0 ]; do
		case $1 in
		--no-ssl) ssl=no ;;
		--cert-host) cert_host=${2:?}; shift ;;
		--users) users=${2:?}; shift ;;
		--password) pw=${2:?}; shift ;;
		--oauth) oauth=${2:?}; shift ;;
		--sasl-socket) sasl=${2:?}; shift ;;
		*) usage ;;
		esac
		shift
	done
	[ -n "$oauth" ] && [ "$ssl" = no ] && die "--oauth needs TLS"
	[ -x "$DOVECOT" ] && [ -e /usr/lib/dovecot/pop3 ] ||
		die "Dovecot is not installed (run tests/lib/deps.sh)"
	master_alive "$d" && die "a Dovecot already runs in $d"

	# Dovecot will not give mail access to root: as root, mail belongs to
	# the 'mail' account (or nobody).
	if [ "$(id -u)" -eq 0 ]; then
		local mu=mail
		getent passwd mail >/dev/null || mu=nobody
		MAIL_UID=$(id -u "$mu"); MAIL_GID=$(id -g "$mu")
	else
		MAIL_UID=$(id -u); MAIL_GID=$(id -g)
	fi
	# Dovecot's unprivileged processes (auth as 'dovecot', mail as MAIL_UID)
	# must reach the users file and the Maildirs.
	chmod 755 "$d"
	local up=$d
	while up=$(dirname "$up") && [ "$up" != / ]; do
		[ "$(stat -c %A "$up" | cut -c10)" = x ] || [ "$(stat -c %A "$up" | cut -c10)" = t ] ||
			die "$up is not searchable by others; Dovecot's unprivileged processes need it (use a directory under /tmp)"
	done
	mkdir -p "$d/etc" "$d/log" "$d/state" "$d/mail"
	DH_FILE=/usr/share/dovecot/dh.pem
	if [ "$ssl" = yes ]; then
		[ -e "$d/ssl/premade" ] || make_certs "$d" "$cert_host"
		if [ ! -r "$DH_FILE" ]; then
			DH_FILE=$d/ssl/dh.pem
			openssl dhparam -dsaparam -out "$DH_FILE" 2048 2>/dev/null
		fi
	fi
	: >"$d/etc/users"
	local u
	for u in $users; do
		echo "$u:{PLAIN}$pw:$MAIL_UID:$MAIL_GID::$d/mail/$u::" >>"$d/etc/users"
		mkdir -p "$d/mail/$u/Maildir/cur" "$d/mail/$u/Maildir/new" "$d/mail/$u/Maildir/tmp"
	done
	chmod 644 "$d/etc/users" # test passwords only; auth runs as 'dovecot'
	chown -R "$MAIL_UID:$MAIL_GID" "$d/mail"

	local try ports p ps=0 ip=0 ips=0 imap=no
	have_imap && imap=yes
	for try in 1 2 3 4 5; do
		ports=$(free_ports 4) || die "cannot find free ports"
		read -r p ps ip ips <<<"$ports"
		[ "$ssl" = yes ] || ps=0 ips=0
		[ "$imap" = yes ] || ip=0 ips=0
		write_conf "$d" "$ssl" "$p" "$ps" "$oauth" "$sasl" "$ip" "$ips"
		"$DOVECOT" -c "$d/etc/dovecot.conf" -n >/dev/null 2>"$d/log/config-check.log" ||
			{ cat "$d/log/config-check.log" >&2; die "dovecot rejects its configuration"; }
		# No inherited stdout: a caller's pipe must not stay open.
		if "$DOVECOT" -c "$d/etc/dovecot.conf" </dev/null >>"$d/log/start.log" 2>&1 &&
			wait_port "$p" && { [ "$ps" = 0 ] || wait_port "$ps"; } &&
			{ [ "$ip" = 0 ] || wait_port "$ip"; } && { [ "$ips" = 0 ] || wait_port "$ips"; }; then
			break
		fi
		stop "$d" >/dev/null 2>&1 || true
		p=
	done
	[ -n "$p" ] || { cat "$d/log/start.log" "$d/log/dovecot.log" >&2 2>/dev/null; die "dovecot did not start"; }

	{
		echo "# written by mailenv.sh start"
		echo "MAILENV_DIR='$d'"
		echo "POP3_PORT=$p"
		echo "POP3S_PORT=$ps"
		echo "MAILENV_IMAP=$imap"
		echo "IMAP_PORT=$ip"
		echo "IMAPS_PORT=$ips"
		echo "MAILENV_SSL=$ssl"
		echo "MAILENV_CA='$d/ssl/ca.crt'"
		echo "MAILENV_USERS='$users'"
		echo "MAILENV_PASS='$pw'"
		echo "MAILENV_LOG='$d/log/dovecot.log'"
		echo "MAILENV_MAIL_UID=$MAIL_UID"
		echo "MAILENV_MAIL_GID=$MAIL_GID"
		case $sasl in
		/* | '') echo "MAILENV_SASL_SOCKET='$sasl'" ;;
		*) echo "MAILENV_SASL_SOCKET='$d/run/$sasl'" ;;
		esac
	} >"$d/env.sh"
}

alive() { # PID: running (a zombie nobody reaped yet counts as gone)
	local st
	st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

stop() {
	local d=$1 pid i
	[ -s "$d/run/master.pid" ] || return 0
	pid=$(cat "$d/run/master.pid")
	if alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 10; i++)); do
			alive "$pid" || break
			sleep 0.1
		done
		# Dovecot's master lingers for seconds waiting on its children; it
		# leads their process group (it daemonized with setsid), so end the
		# whole group: a test instance has nothing to save.
		if alive "$pid" && [ "$(awk '{ print $5 }' "/proc/$pid/stat" 2>/dev/null)" = "$pid" ]; then
			kill -KILL -- "-$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$d/run/master.pid"
	return 0
}

[ $# -ge 2 ] || usage
cmd=$1
dir=$2
shift 2
case $cmd in
start)
	mkdir -p "$dir"
	start "$(cd "$dir" && pwd)" "$@"
	;;
certs)
	mkdir -p "$dir"
	host=localhost
	[ "${1:-}" = --cert-host ] && host=${2:?}
	make_certs "$(cd "$dir" && pwd)" "$host"
	chmod 755 "$dir" "$dir/ssl"
	: >"$dir/ssl/premade"
	;;
stop)
	[ -d "$dir" ] || exit 0
	stop "$(cd "$dir" && pwd)"
	;;
*) usage ;;
esac

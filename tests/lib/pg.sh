# mailmill - ISC licence, see LICENSE
#
# A private PostgreSQL server on loopback, for the tests of the PostgreSQL
# store.  Sourced by a test after tests/lib/common.sh:
#   pg_need                 before plan: skip the script when PostgreSQL's
#                           server binaries are not installed
#   pg_start DIR            initdb + pg_ctl start in DIR (a free port on
#                           127.0.0.1, password authentication over TCP); sets
#                           PG_PORT, PG_CONNINFO (no password in it),
#                           PG_PASSFILE (the password, mode 0600) and PG_BIN;
#                           stopped by the EXIT trap
#   pg_stop / pg_restart    stop the server (fast), start it again
#   pg_sql SQL              run SQL as the test's superuser, unaligned output
#   pg_createdb NAME        another database on the same server
# The server runs as an unprivileged user when the test runs as root
# (postgres refuses root): the system's `postgres` user, or `nobody`.
PG_BIN=${MM_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
PG_DIR=
PG_USER_OS=

pg_have() { [ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ]; }

pg_need() {
	pg_have && return 0
	echo "1..0 # SKIP not installed: postgresql (initdb, pg_ctl)"
	exit 0
}

# Run a PostgreSQL binary as the server's owner.
pg_as() {
	if [ -n "$PG_USER_OS" ]; then
		runuser -u "$PG_USER_OS" -- "$@"
	else
		"$@"
	fi
}

pg_free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pg_start() {
	local dir=$1 try
	PG_DIR=$dir
	mkdir -p "$dir"
	if [ "$(id -u)" = 0 ]; then
		PG_USER_OS=postgres
		id postgres >/dev/null 2>&1 || PG_USER_OS=nobody
		chown "$PG_USER_OS" "$dir"
	fi
	chmod 700 "$dir"
	# The password: a file of ours for mailmill, a copy the server's user reads.
	PG_PASSFILE=$T/pg.pass
	head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$PG_PASSFILE"
	chmod 600 "$PG_PASSFILE"
	cp "$PG_PASSFILE" "$dir/pw"
	[ -n "$PG_USER_OS" ] && chown "$PG_USER_OS" "$dir/pw"
	if ! pg_as "$PG_BIN/initdb" -D "$dir/data" -U mailmill --pwfile="$dir/pw" \
		--auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C \
		>"$dir/initdb.log" 2>&1; then
		sed 's/^/# /' "$dir/initdb.log"
		echo "Bail out! initdb failed"
		exit 1
	fi
	trap 'pg_stop; mm_cleanup' EXIT
	for try in 1 2 3; do
		PG_PORT=$(pg_free_port)
		if pg_as "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
			-o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$dir -c fsync=on -c max_connections=200" \
			start >"$dir/pg_ctl.log" 2>&1; then
			break
		fi
		PG_PORT=
	done
	if [ -z "$PG_PORT" ]; then
		sed 's/^/# /' "$dir/pg_ctl.log" "$dir/server.log" 2>/dev/null | tail -n 30
		echo "Bail out! cannot start PostgreSQL"
		exit 1
	fi
	pg_as "$PG_BIN/createdb" -h "$dir" -p "$PG_PORT" -U mailmill mailmill >/dev/null
	PG_CONNINFO="host=127.0.0.1 port=$PG_PORT dbname=mailmill user=mailmill"
	export PG_PORT PG_CONNINFO PG_PASSFILE
}

pg_stop() {
	[ -n "$PG_DIR" ] && [ -d "$PG_DIR/data" ] || return 0
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
}

pg_restart() {
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
		-o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$PG_DIR" \
		start >"$PG_DIR/pg_ctl.log" 2>&1
}

pg_sql() {
	pg_as "$PG_BIN/psql" -h "$PG_DIR" -p "$PG_PORT" -U mailmill -d "${PG_DB:-mailmill}" \
		-X -q -A -t -v ON_ERROR_STOP=1 -c "$1"
}

pg_createdb() {
	pg_as "$PG_BIN/createdb" -h "$PG_DIR" -p "$PG_PORT" -U mailmill "$1"
}

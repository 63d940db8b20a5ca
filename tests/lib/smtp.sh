# mailmill - ISC licence, see LICENSE
#
# Sourced after common.sh by tests that send mail.  Provides:
#   smtp_setup               call after mm_setup: stops every capture server on exit
#   smtp_start NAME [opts]   start tests/lib/smtp_capture.py in $T/NAME (opts: --tls
#                            for STARTTLS with the Dovecot env's certificate,
#                            --refuse ADDR); sets SMTP_PORT and SMTP_OUT
#   smtp_count               messages the last started server accepted
#   smtp_connections         connections it saw
#   smtp_conf_group [extra]  an `smtp = { ... };` group for C_TOP_EXTRA
smtp_pids=()

smtp_stop_all() {
	local p
	for p in "${smtp_pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${smtp_pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
smtp_setup() { trap 'smtp_stop_all; mm_cleanup' EXIT; }

smtp_start() {
	local name=$1 tls=0 args=() i
	shift
	mm_skip_rest aiosmtpd
	while [ $# -gt 0 ]; do
		case $1 in
		--tls) tls=1 ;;
		--refuse) args+=(--refuse "$2"); shift ;;
		esac
		shift
	done
	[ "$tls" = 1 ] && args+=(--cert "$ENV/ssl/server.crt" --key "$ENV/ssl/server.key")
	SMTP_OUT=$T/$name
	mkdir -p "$SMTP_OUT"
	/usr/bin/python3 "$MM_LIB/smtp_capture.py" --outdir "$SMTP_OUT" \
		--port-file "$SMTP_OUT/port" "${args[@]}" >"$T/$name.log" 2>&1 &
	smtp_pids+=($!)
	for i in $(seq 1 100); do
		[ -s "$SMTP_OUT/port" ] && break
		sleep 0.1
	done
	if [ ! -s "$SMTP_OUT/port" ]; then
		sed 's/^/# /' "$T/$name.log"
		echo "Bail out! cannot start the SMTP capture server"
		exit 1
	fi
	SMTP_PORT=$(cat "$SMTP_OUT/port")
}

smtp_count() { find "${1:-$SMTP_OUT}" -name '*.eml' | wc -l; }
smtp_connections() { wc -l <"${1:-$SMTP_OUT}/connections"; }

# smtp_conf_group TLS [extra lines]: the relay group pointing at the last server.
smtp_conf_group() {
	local tls=$1
	shift
	echo "smtp = { host = \"localhost\"; port = $SMTP_PORT; tls = \"$tls\";"
	[ "$tls" != none ] && [ -n "${SMTP_CA-$MAILENV_CA}" ] && echo "  ca_file = \"${SMTP_CA-$MAILENV_CA}\";"
	echo "  helo = \"mailmill.test\"; timeout = \"20s\"; $*"
	echo "};"
}

# outbox_rows STATE_DIR [WHERE]: rows in the outbox.
outbox_rows() {
	local db=$1/mailmill.db
	[ -f "$db" ] || { echo 0; return; }
	sqlite3 "$db" "SELECT count(*) FROM outbox ${2:+WHERE $2};"
}

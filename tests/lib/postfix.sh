# mailmill - ISC licence, see LICENSE
#
# A private Postfix on loopback for tests that need real delivery: its own
# config, queue and data directories under DIR, an smtpd listener on a free
# port of 127.0.0.1 and the virtual(8) delivery agent writing into the
# Dovecot test environment's Maildirs (a map entry ending in "/" is a
# Maildir), so mailmill fetches over POP3 what Postfix delivered.
#   pf_start DIR MAP [--submission]
#                       MAP: lines "address user" (user of the Dovecot env);
#                       sets PF_PORT; stopped by pf_stop_all (call it on exit).
#                       --submission: also a submission listener (PF_SUB_PORT)
#                       that demands STARTTLS (the Dovecot env's certificate)
#                       and SASL through Dovecot (the env must have been started
#                       with --sasl-socket; it offers the env's mechanisms, XOAUTH2
#                       and OAUTHBEARER with --oauth) before it relays anything
#   pf_wait_queue DIR   until the queue is empty (up to 15 s)
pf_dirs=()

pf_stop_all() {
	local d
	for d in "${pf_dirs[@]}"; do postfix -c "$d/etc" stop >/dev/null 2>&1 || true; done
}

pf_start() {
	local d=$1 map=$2 sub=${3:-} a u domains p
	mm_skip_rest postfix
	PF_PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	PF_SUB_PORT=
	[ "$sub" = --submission ] &&
		PF_SUB_PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	mkdir -p "$d/etc" "$d/queue" "$d/data"
	chown postfix "$d/data"
	: >"$d/etc/vmailbox"
	domains=""
	while read -r a u; do
		[ -n "$a" ] || continue
		echo "$a $u/Maildir/" >>"$d/etc/vmailbox"
		case " $domains " in *" ${a#*@} "*) ;; *) domains="$domains ${a#*@}" ;; esac
	done <"$map"
	cat >"$d/etc/main.cf" <<-EOT
	compatibility_level = 3.6
	queue_directory = $d/queue
	data_directory = $d/data
	mail_owner = postfix
	setgid_group = postdrop
	myhostname = mta.mailmill.test
	mydomain = mailmill.test
	mydestination =
	inet_interfaces = 127.0.0.1
	inet_protocols = ipv4
	mynetworks = 127.0.0.0/8
	smtpd_relay_restrictions = permit_mynetworks, reject
	relayhost =
	virtual_mailbox_domains =$domains
	virtual_mailbox_base = $ENV/mail
	virtual_mailbox_maps = texthash:$d/etc/vmailbox
	virtual_minimum_uid = 1
	virtual_uid_maps = static:$MAILENV_MAIL_UID
	virtual_gid_maps = static:$MAILENV_MAIL_GID
	maillog_file = $d/maillog
	maillog_file_prefixes = $d
	smtputf8_enable = no
	biff = no
	EOT
	if [ -n "$PF_SUB_PORT" ]; then
		# A 4 KB OAuth token is about 5.5 KB of base64.  As a response after 334
		# it is bounded by smtpd_sasl_response_limit (12288 by default: enough);
		# on the AUTH line itself (an initial response) by line_length_limit,
		# 2048 by default: the line is cut and Dovecot answers "Invalid base64
		# data in initial response".  mailmill keeps to RFC 4954 (no initial
		# response past 512 octets), but other clients do not: raised here.
		cat >>"$d/etc/main.cf" <<-EOT
		line_length_limit = 16384
		smtpd_tls_cert_file = $ENV/ssl/server.crt
		smtpd_tls_key_file = $ENV/ssl/server.key
		smtpd_sasl_type = dovecot
		smtpd_sasl_path = $MAILENV_SASL_SOCKET
		smtpd_sasl_authenticated_header = no
		smtpd_tls_loglevel = 1
		EOT
	fi
	cat >"$d/etc/master.cf" <<-EOT
	127.0.0.1:$PF_PORT inet n - n - - smtpd
	postlog   unix-dgram n - n - 1 postlogd
	cleanup   unix n - n - 0 cleanup
	qmgr      unix n - n 300 1 qmgr
	rewrite   unix - - n - - trivial-rewrite
	bounce    unix - - n - 0 bounce
	defer     unix - - n - 0 bounce
	trace     unix - - n - 0 bounce
	verify    unix - - n - 1 verify
	flush     unix n - n 1000? 0 flush
	proxymap  unix - - n - - proxymap
	error     unix - - n - - error
	retry     unix - - n - - error
	discard   unix - - n - - discard
	virtual   unix - n n - - virtual
	anvil     unix - - n - 1 anvil
	scache    unix - - n - 1 scache
	showq     unix n - n - - showq
	tlsmgr    unix - - n 1000? 1 tlsmgr
	EOT
	# Only an authenticated client may send anything through submission,
	# loopback or not: a delivered message proves the SASL login worked.
	if [ -n "$PF_SUB_PORT" ]; then cat >>"$d/etc/master.cf"; fi <<-EOT
	127.0.0.1:$PF_SUB_PORT inet n - n - - smtpd
	  -o syslog_name=postfix/submission
	  -o smtpd_tls_security_level=encrypt
	  -o smtpd_sasl_auth_enable=yes
	  -o smtpd_tls_auth_only=yes
	  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
	  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
	  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject
	EOT
	pf_dirs+=("$d")
	if ! postfix -c "$d/etc" start >"$d/start.log" 2>&1; then
		sed 's/^/# /' "$d/start.log"
		echo "Bail out! cannot start Postfix"
		exit 1
	fi
	for p in $PF_PORT $PF_SUB_PORT; do
		u=
		for a in $(seq 1 100); do
			"$PY" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' \
				"$p" 2>/dev/null && { u=up; break; }
			sleep 0.1
		done
		if [ -z "$u" ]; then
			sed 's/^/# /' "$d/start.log" "$d/maillog" 2>/dev/null
			echo "Bail out! Postfix does not listen on $p"
			exit 1
		fi
	done
}

pf_wait_queue() {
	local i
	for i in $(seq 1 150); do
		[ -z "$(find "$1/queue/incoming" "$1/queue/active" "$1/queue/deferred" "$1/queue/maildrop" -type f 2>/dev/null)" ] && return 0
		sleep 0.1
	done
	return 1
}

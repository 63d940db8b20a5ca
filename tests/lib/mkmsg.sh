# mailmill - ISC licence, see LICENSE
# shellcheck shell=bash
# Made-up messages for the ticket tests (t-ticket, t-ticket-robots): $M is
# where they are written; sourced after common.sh.
# mkmsg USER NAME FROM MSGID SUBJECT [header lines...]: a message into USER's Maildir.
mkmsg() {
	local user=$1 name=$2 from=$3 mid=$4 subject=$5 h f
	shift 5
	f=$M/$name.eml
	{
		echo "Return-Path: <$from>"
		echo "From: <$from>"
		echo "To: Support <support@example.org>"
		echo "Subject: $subject"
		echo "Message-ID: <$mid>"
		echo "Date: Mon, 01 Jan 2024 10:00:00 +0000"
		for h in "$@"; do echo "$h"; done
		echo
		echo "Body of $name."
	} >"$f"
	env_user "$user"
	env_seed_files "$f"
}

#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# Every setting key each shipped plugin reads is documented in
# mailmill.conf(5), in that plugin's "<NAME> STAGE SETTINGS" section.  The
# keys come from the source: the lists a plugin hands to mm_settings_check
# (static const char *const <x>_keys[] = { ... }) and the keys of its
# mm_setting_* and perms_settings calls; and every key read through a helper
# must be in the plugin's accepted list (else the plugin would refuse its own
# setting).  Needs no server.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
set -u
SRC=${MM_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
MAN=$SRC/docs/mailmill.conf.5
PLUGINS="archive autoreply filter forward pipe ticket"
n=0
fails=0
echo "1..$(($(echo $PLUGINS | wc -w) * 3))"
tap() { # OK? DESC
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi
}

# The plugin's C files (plugins/<name>.c and plugins/<name>_*.c), joined.
sources() { cat "$SRC/plugins/$1.c" "$SRC"/plugins/"$1"_*.c 2>/dev/null; }

# Keys of the *_keys[] arrays, one per line.
array_keys() {
	sources "$1" | tr '\n' ' ' |
		grep -oE 'static const char \*const [a-z_]*keys\[\] = \{[^}]*\}' |
		grep -oE '"[a-z_]+"' | tr -d '"' | sort -u
}

# Keys of the helper calls: mm_setting_*(ctx, g, "key", ...); perms_settings
# reads mode and group, and dir_mode when its with_dirs argument is 1.
helper_keys() {
	local s
	s=$(sources "$1" | tr '\n' ' ')
	grep -oE 'mm_setting_[a-z]+\([a-z]+, [a-z]+, "[a-z_]+"' <<<"$s" | grep -oE '"[a-z_]+"' | tr -d '"'
	if grep -qE 'perms_settings\([a-z]+, [a-z]+, 1,' <<<"$s"; then printf 'mode\ngroup\ndir_mode\n'
	elif grep -qE 'perms_settings\(' <<<"$s"; then printf 'mode\ngroup\n'; fi
}

# The words set in bold (.B, .BR, .TP .B) in the plugin's section of the page.
doc_keys() {
	local title
	title=$(echo "$1" | tr a-z A-Z)
	awk -v t=".SH $title STAGE SETTINGS" '
		$0 == t { on = 1; next }
		/^\.SH / { on = 0 }
		on && /^\.BR? / { for (i = 2; i <= NF; i++) { gsub(/[",]/, "", $i); print $i } }
	' "$MAN" | sort -u
}

for p in $PLUGINS; do
	acc=$(array_keys "$p")
	helpers=$(helper_keys "$p" | sort -u)
	all=$(printf '%s\n%s\n' "$acc" "$helpers" | grep . | sort -u)
	doc=$(doc_keys "$p")
	[ -n "$all" ] && [ "$(echo "$all" | wc -l)" -ge 3 ]
	tap $? "$p: keys found in the source ($(echo $all | tr ' ' ,))"
	missing=$(comm -23 <(echo "$all") <(echo "$doc"))
	[ -z "$missing" ]
	tap $? "$p: every key is in mailmill.conf(5) under ${p^^} STAGE SETTINGS${missing:+ (missing: $(echo $missing))}"
	unread=$(comm -23 <(echo "$helpers") <(echo "$acc"))
	[ -z "$unread" ]
	tap $? "$p: every key read by a helper is accepted${unread:+ (not in its keys list: $(echo $unread))}"
done
[ "$fails" = 0 ]

#!/bin/bash
# mailmill - ISC licence, see LICENSE
#
# Hostile messages, one per scenario, served by tests/lib/badserver.py: deep
# MIME nesting, very many parts, huge headers and lines, broken encoded-words
# and charsets, broken base64 and uuencode, NUL and 8-bit bytes, empty and
# header-only messages.  Each is archived byte for byte (POP3 carries lines:
# the archive has LF line ends and a final one), deleted, no crash, in time.
[ -n "${BASH_VERSION:-}" ] || exec /bin/bash "$0" "$@" # make check may use sh
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/hostile.sh"
need python3
hostile_setup
M=$T/hmsgs
mkdir -p "$M"
"$PY" - "$M" <<'PYEOF'
import os, sys
d = sys.argv[1]
H = (b"From: Hostile <h@example.org>\nTo: a@example.org\nDate: Tue, 2 Jan 2024 10:00:00 +0000\n"
     b"Message-ID: <%s@example.org>\nSubject: %s\n")
def w(name, data):
    open(os.path.join(d, name + ".eml"), "wb").write(data)
def hdr(name, extra=b""):
    return H % (name.encode(), name.encode()) + extra
# 5000 levels of multipart
n = 5000
body = b"".join(b"--b%d\nContent-Type: multipart/mixed; boundary=\"b%d\"\n\n" % (i, i + 1) for i in range(n))
w("deep-nesting", hdr("deep-nesting", b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b0\"\n\n") + body + b"leaf\n")
# 20000 parts
parts = b"".join(b"--p\nContent-Type: text/plain\n\npart %d\n" % i for i in range(20000))
w("many-parts", hdr("many-parts", b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"p\"\n\n") + parts + b"--p--\n")
# a 400 KB header of folded lines (GMime grows its header buffer linearly:
# quadratic copying under ASan, whose realloc always copies), and one 900 KB header line
w("huge-header", hdr("huge-header", b"X-Big: start\n" + b"".join(b" fold %06d\n" % i for i in range(40000))) + b"\nbody\n")
w("huge-header-line", hdr("huge-header-line", b"X-Long: " + b"h" * 900000 + b"\n") + b"\nbody\n")
w("huge-body-line", hdr("huge-body-line") + b"\n" + b"x" * 1000000 + b"\n")
# past the 1 MiB that net reads as one line: read in pieces (issue 14)
w("huge-header-line-1mb", hdr("huge-header-line-1mb", b"X-Long: " + b"h" * 1100000 + b"\n") + b"\nbody\n")
w("huge-body-line-2mb", hdr("huge-body-line-2mb") + b"\n" + b"y" * 2100000 + b"\nend\n")
w("bad-encoded-words", H % (b"bad-ew", b"=?utf-8?B?////?= =?x-unknown?Q?=FF=00?= =?utf-8?q?unterminated") +
  b"From: =?iso-2022-jp?B?GyRCJCIkJCQmGyhC=?= <=?utf-8?b?@example.org>\n"
  b"Content-Type: text/plain; charset=\"x-no-such-charset\"\n\n\xff\xfe invalid \xc3\x28 utf-8\n")
w("bad-base64", hdr("bad-base64", b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=z\n\n") +
  b"--z\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
  b"!!!!====////\x00\x01AAAA=A=A\n====\n--z\nContent-Transfer-Encoding: x-uuencode\n\n"
  b"begin 644 f\nM<broken uuencode\xff\n`\nno end\n--z\nContent-Transfer-Encoding: quoted-printable\n\n=ZZ=\n=\n--z--\n")
w("nul-8bit", hdr("nul-8bit", b"X-Nul: a\x00b\nX-8bit: \xe9t\xe9 \xff\xfe\n") + b"\nbody\x00with NUL\n\x80\x81\x82\xff\n\x00\n")
w("empty", b"")
w("header-only", hdr("header-only"))
w("no-header", b"just a body line\n.\n..\n")
w("dots", hdr("dots") + b"\n.\n..\n...\n. \n.x\n")
w("no-final-newline", hdr("no-final-newline") + b"\nlast line without newline")
w("bare-cr", hdr("bare-cr") + b"\nline\rwith\rbare CRs\r\n\r\r\n")
w("boundary-tricks", hdr("boundary-tricks", b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"\"\n\n") +
  b"--\n--\n-----\nContent-Type: multipart/alternative; boundary=\"" + b"b" * 5000 + b"\"\n\n--\n")
PYEOF
NMSG=$(ls "$M" | wc -l)
# Not a deadline test: room for a slow (sanitizer) build on a busy machine.
HC_TIMEOUT=30s
plan $((NMSG * 5 + 2))

# The archive copy of a message: POP3 gives lines, each ending in LF (CRLF
# and bare-CR handling as the server sends them: badserver keeps bare CRs).
expect() {
	"$PY" -c '
import sys
d = open(sys.argv[1], "rb").read().replace(b"\r\n", b"\n")
if d and not d.endswith(b"\n"):
    d += b"\n"
sys.stdout.buffer.write(d)' "$1" >"$2"
}

for f in "$M"/*.eml; do
	n=$(basename "$f" .eml)
	expect "$f" "$T/$n.expected"
	# A filter stage first: it parses the MIME tree (mm_msg_mime), so GMime
	# meets every hostile message too; its rule never matches.
	C_STAGES="      { plugin = \"filter\"; rules = ( { size_over = 1000000000; verdict = \"defer\"; } ); },
      { plugin = \"archive\"; path = \"$T/archive-$n\"; }" \
		hcase "$n" 0 'run finished.*1 fetched.*1 deleted' uid-1 "{\"messages\":[{\"file\":\"$f\"}]}" 60
	check "$n: archived byte for byte" archive_has "$T/archive-$n" "$T/$n.expected"
done

# Past the structure caps the plugins see the top-level header only, and the
# parse (the filter's) says so.
MM_ERR=$T/deep-nesting.err MM_OUT=/dev/null check "deep-nesting: parse capped, logged" err_has 'plugins see its top-level header only'
MM_ERR=$T/many-parts.err MM_OUT=/dev/null check "many-parts: parse capped, logged" err_has 'plugins see its top-level header only'

#!/usr/bin/python3
# mailmill - ISC licence, see LICENSE
"""rfc822_part.py SENT.eml OUT: check the structure of a forward in "attach"
mode with Python's email module (multipart/mixed: a text/plain note, then a
message/rfc822 part) and write the message/rfc822 part's body, exactly the
bytes between its header and the next boundary, with LF line ends, to OUT.
Prints what it found; exits 1 when the structure is wrong."""
import email, email.policy, sys

raw = open(sys.argv[1], "rb").read()
msg = email.message_from_bytes(raw, policy=email.policy.compat32)
if msg.get_content_type() != "multipart/mixed":
    sys.exit("top level is %s" % msg.get_content_type())
parts = msg.get_payload()
types = [p.get_content_type() for p in parts]
print("parts:", " ".join(types))
if types != ["text/plain", "message/rfc822"]:
    sys.exit("parts are %s" % types)
inner = parts[1].get_payload()[0]
print("inner-subject:", inner["Subject"])
print("inner-message-id:", inner["Message-ID"])
print("outer-subject:", msg["Subject"])
print("outer-x-loop:", msg["X-Loop"])
# The bytes as sent, not as Python would write them again: locate the second
# part between the boundary delimiters (RFC 2046 5.1.1: the CRLF before a
# delimiter belongs to it).
delim = b"\r\n--" + msg.get_boundary().encode()
chunks = raw.split(delim)
if len(chunks) < 4:
    sys.exit("expected two parts and a close delimiter, got %d chunks" % len(chunks))
part = chunks[2]
part = part[part.index(b"\r\n") + 2:]             # the rest of the delimiter line
body = part[part.index(b"\r\n\r\n") + 4:]         # after the part's own header
open(sys.argv[2], "wb").write(body.replace(b"\r\n", b"\n"))

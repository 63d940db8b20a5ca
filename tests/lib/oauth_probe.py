#!/usr/bin/python3
# mailmill - ISC licence, see LICENSE
"""Log in with an OAuth token using Python's own clients, not mailmill's:
proof that the test servers accept the IdP's tokens before any test relies
on them.

    oauth_probe.py pop3|smtp PORT CAFILE USER XOAUTH2|OAUTHBEARER TOKEN [oneline]

POP3: implicit TLS, `AUTH MECH`, the response after "+ " (oneline: on the
AUTH line, RFC 5034 SASL-IR, which Exchange Online refuses).  SMTP: STARTTLS,
`AUTH MECH`, the response after "334".  A refusal's challenge is answered
with an empty line.  Prints the server's final reply line; exit 0 when it
accepted the token, 1 when it refused it.
"""
import base64
import poplib
import smtplib
import ssl
import sys


def initial_response(mech, user, token, port):
    if mech == "XOAUTH2":
        text = "user=%s\x01auth=Bearer %s\x01\x01" % (user, token)
    else:
        text = "n,a=%s,\x01host=localhost\x01port=%d\x01auth=Bearer %s\x01\x01" % (
            user, port, token)
    return base64.b64encode(text.encode()).decode()


def pop3(port, ctx, mech, ir, oneline):
    p = poplib.POP3_SSL("localhost", port, context=ctx)
    if oneline:
        p._putcmd("AUTH %s %s" % (mech, ir))
    else:
        p._putcmd("AUTH " + mech)
        p._getline()
        p._putcmd(ir)
    line = p._getline()[0]
    if line.startswith(b"+ "):
        p._putcmd("")
        line = p._getline()[0]
    p.quit()
    return line.decode(), line.startswith(b"+OK")


def smtp(port, ctx, mech, ir, _oneline):
    s = smtplib.SMTP("localhost", port, timeout=10)
    s.starttls(context=ctx)
    s.ehlo()
    code, _ = s.docmd("AUTH", mech)
    if code == 334:
        code, text = s.docmd(ir)
    if code == 334:
        code, text = s.docmd("")
    s.quit()
    return "%d %s" % (code, text.decode()), code == 235


def main():
    if len(sys.argv) not in (7, 8):
        sys.stderr.write(__doc__)
        return 64
    proto, port, ca, user, mech, token = sys.argv[1:7]
    oneline = sys.argv[7:] == ["oneline"]
    port = int(port)
    ctx = ssl.create_default_context(cafile=ca)
    ir = initial_response(mech, user, token, port)
    line, ok = (pop3 if proto == "pop3" else smtp)(port, ctx, mech, ir, oneline)
    print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

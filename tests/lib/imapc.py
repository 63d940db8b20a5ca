#!/usr/bin/python3
# mailmill - ISC licence, see LICENSE
"""Another IMAP client, for the tests: seeds folders, plays the user's mail
program and reads back what is on the server (Python's imaplib: a real
client, independent of mailmill's own).

usage: imapc.py PORT USER PASS COMMAND ARGS...     (127.0.0.1, no TLS)

  state [FOLDER...]        one line per message: FOLDER UID FLAGS MESSAGE-ID,
                           FLAGS sorted and joined by ',' ('-' for none; never
                           \\Recent), folders in LIST order (default all of them),
                           read with EXAMINE: reading changes nothing
  folders                  the folders, one a line
  status FOLDER            UIDVALIDITY UIDNEXT MESSAGES
  append FOLDER FILE...    APPEND each file (LF turned into CRLF), creating the
                           folder when missing; flags from the environment
                           variable IMAPC_FLAGS (e.g. "\\Seen")
  flag FOLDER MSGID FLAG   UID STORE +FLAGS on the messages with this Message-ID
  copy FOLDER MSGID DEST   UID COPY of the messages with this Message-ID to DEST
                           (a person dragging mail back: a new UID in DEST)
  recreate FOLDER          the same messages, with their flags, in a new folder of
                           the same name (DELETE, CREATE, APPEND): the server
                           gives it a new UIDVALIDITY, as after a restore
"""
import email.parser
import imaplib
import os
import re
import sys

LIST_RE = re.compile(rb'\((?P<flags>[^)]*)\) (?P<sep>"[^"]*"|NIL) (?P<name>.+)$')


def unquote(s):
    s = s.decode("utf-8")
    if s.startswith('"') and s.endswith('"'):
        s = s[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return s


def quote(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ok(typ, data, what):
    if typ != "OK":
        raise SystemExit("imapc: %s: %s %r" % (what, typ, data))
    return data


def folders(m):
    out = []
    for line in ok(*m.list(), "LIST"):
        mt = LIST_RE.match(line)
        if mt and b"\\Noselect" not in mt.group("flags"):
            out.append(unquote(mt.group("name")))
    return out


def messages(m, folder):
    """[(uid, flags, message-id, raw)] of FOLDER, read-only."""
    ok(*m.select(quote(folder), readonly=True), "EXAMINE " + folder)
    typ, data = m.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
    out = []
    if typ != "OK":
        return out
    for item in data:
        if not isinstance(item, tuple):
            continue
        meta, raw = item
        uid = int(re.search(rb"UID (\d+)", meta).group(1))
        fl = re.search(rb"FLAGS \(([^)]*)\)", meta).group(1).decode().split()
        fl = sorted(f for f in fl if f != "\\Recent")
        hdr = email.parser.BytesHeaderParser().parsebytes(raw)
        out.append((uid, fl, (hdr.get("Message-ID") or "-").strip(), raw))
    m.close()
    return out


def main():
    if len(sys.argv) < 5:
        sys.stderr.write(__doc__)
        return 64
    port, user, pw, cmd, args = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
    m = imaplib.IMAP4("127.0.0.1", port)
    ok(*m.login(user, pw), "LOGIN")
    if cmd == "folders":
        print("\n".join(folders(m)))
    elif cmd == "state":
        for f in args or folders(m):
            for uid, fl, mid, _ in messages(m, f):
                print("%s %d %s %s" % (f, uid, ",".join(fl) or "-", mid))
    elif cmd == "status":
        data = ok(*m.status(quote(args[0]), "(UIDVALIDITY UIDNEXT MESSAGES)"), "STATUS")
        st = dict(re.findall(rb"(UIDVALIDITY|UIDNEXT|MESSAGES) (\d+)", data[0]))
        print(int(st[b"UIDVALIDITY"]), int(st[b"UIDNEXT"]), int(st[b"MESSAGES"]))
    elif cmd == "append":
        if args[0] not in folders(m):
            ok(*m.create(quote(args[0])), "CREATE")
        flags = os.environ.get("IMAPC_FLAGS") or None
        for path in args[1:]:
            with open(path, "rb") as f:
                raw = f.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            ok(*m.append(quote(args[0]), "(%s)" % flags if flags else None, None, raw), "APPEND")
    elif cmd in ("flag", "copy"):
        folder, mid, what = args
        ok(*m.select(quote(folder)), "SELECT")
        uids = ok(*m.uid("SEARCH", "HEADER", "Message-ID", quote(mid)), "SEARCH")[0].split()
        if not uids:
            raise SystemExit("imapc: no message %s in %s" % (mid, folder))
        for u in uids:
            if cmd == "flag":
                ok(*m.uid("STORE", u, "+FLAGS", "(%s)" % what), "STORE")
            else:
                ok(*m.uid("COPY", u, quote(what)), "COPY")
        # No CLOSE: it would expunge a \Deleted this set; the other client
        # of the tests leaves that to whoever expunges next.
        m.unselect()
    elif cmd == "recreate":
        folder = args[0]
        old = messages(m, folder)
        ok(*m.delete(quote(folder)), "DELETE")
        ok(*m.create(quote(folder)), "CREATE")
        for _, fl, _, raw in old:
            fl = [f for f in fl if f != "\\Recent"]
            ok(*m.append(quote(folder), "(%s)" % " ".join(fl) if fl else None, None, raw), "APPEND")
    else:
        sys.stderr.write(__doc__)
        return 64
    m.logout()
    return 0


if __name__ == "__main__":
    sys.exit(main())

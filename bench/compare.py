#!/usr/bin/python3
# mailmill - ISC licence, see LICENSE
"""Does an archive hold exactly the seeded messages, byte for byte?

usage: compare.py maildir SEED_DIR MAILDIR
       compare.py mbox SEED_DIR MBOX_FILE
Order and file names do not matter; CRLF line ends count as LF.  An mbox is
read as mboxrd: a "From " line starts a message, one '>' is removed from
">...From " lines, and the blank line that ends each message is not part of it.
Prints "ok" or what differs; exit status 0 either way unless usage is wrong.
"""
import collections
import hashlib
import os
import sys


def digest(data):
    return hashlib.sha256(data.replace(b"\r\n", b"\n")).hexdigest()


def files(d):
    for sub in ("", "new", "cur"):
        p = os.path.join(d, sub)
        if sub and not os.path.isdir(p):
            continue
        for name in os.listdir(p):
            f = os.path.join(p, name)
            if os.path.isfile(f):
                with open(f, "rb") as fh:
                    yield fh.read()


def mbox_messages(path):
    cur = None
    with open(path, "rb") as fh:
        for line in fh:
            if line.startswith(b"From "):
                if cur is not None:
                    yield cur
                cur = []
                continue
            if cur is None:
                raise SystemExit("mbox does not start with a From_ line")
            body = line.lstrip(b">")
            if body.startswith(b"From ") and len(body) < len(line):
                line = line[1:]
            cur.append(line)
    if cur is not None:
        yield cur


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("maildir", "mbox"):
        sys.stderr.write(__doc__)
        return 64
    want = collections.Counter(digest(d) for d in files(sys.argv[2]))
    if sys.argv[1] == "maildir":
        got = collections.Counter(digest(d) for d in files(sys.argv[3]))
    else:
        got = collections.Counter()
        for lines in mbox_messages(sys.argv[3]):
            if lines and lines[-1].strip(b"\r\n") == b"":
                lines = lines[:-1]
            got[digest(b"".join(lines))] += 1
    missing = sum((want - got).values())
    extra = sum((got - want).values())
    print("ok" if missing == 0 and extra == 0 else
          "%d seeded messages not found byte for byte, %d unexpected" % (missing, extra))
    return 0


if __name__ == "__main__":
    sys.exit(main())

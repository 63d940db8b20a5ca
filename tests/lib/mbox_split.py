#!/usr/bin/python3
# mailmill - ISC licence, see LICENSE
"""Split an mboxrd file into one file per message, strictly.

usage: mbox_split.py MBOX OUTDIR

mboxrd (the format mailmill's archive plugin writes): each message starts
with a "From " separator line, body lines matching ^>*From  carry one extra
">", and each message is followed by one empty line.  Every message is undone
exactly: the separator dropped, one ">" removed from quoted From lines, the
trailing empty line removed.  Messages go to OUTDIR/new/NNNN so that the
Maildir helpers can hash them.  Exit 1 with a reason when the file does not
follow the format (no separator first, a message not followed by an empty line).
"""
import os
import re
import sys

QUOTED = re.compile(rb"^>+From ")


def main():
    if len(sys.argv) != 3:
        print(__doc__.splitlines()[2].strip(), file=sys.stderr)
        return 64
    data = open(sys.argv[1], "rb").read()
    out = os.path.join(sys.argv[2], "new")
    os.makedirs(out, exist_ok=True)
    if not data.startswith(b"From "):
        print("mbox does not start with a From_ line", file=sys.stderr)
        return 1
    lines = data.split(b"\n")
    if lines[-1] != b"":
        print("mbox does not end with a newline", file=sys.stderr)
        return 1
    lines.pop()
    messages, cur = [], None
    for line in lines:
        if line.startswith(b"From "):
            if cur is not None:
                messages.append(cur)
            cur = []
        else:
            cur.append(line[1:] if QUOTED.match(line) else line)
    messages.append(cur)
    for n, msg in enumerate(messages):
        if not msg or msg[-1] != b"":
            print("message %d is not followed by an empty line" % (n + 1), file=sys.stderr)
            return 1
        msg.pop()
        with open(os.path.join(out, "%04d" % n), "wb") as f:
            f.write(b"".join(l + b"\n" for l in msg))
    print(len(messages))
    return 0


if __name__ == "__main__":
    sys.exit(main())

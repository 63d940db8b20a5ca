#!/usr/bin/python3
# mailmill - ISC licence, see LICENSE
"""Deterministic test messages, written straight into a Maildir's new/.

usage: seed.py MAILDIR N [--seed S] [--offset K] [--kind KIND] [--size BYTES]
               [--expected DIR] [--owner UID:GID]

Message i (from K to K+N-1) depends only on (S, i, KIND, BYTES): reruns give
the same bytes, so a test can compare an archive with what it put in.  With
--kind mixed (the default) the kinds take turns, so any 7 consecutive messages
cover them all:

  plain     7-bit text whose body has lines ".", "..x", "From ", ">From "
            (POP3 dot-stuffing and mbox From_ quoting traps)
  alt       multipart/alternative, text plus quoted-printable HTML
  attach    multipart/mixed with a base64 binary attachment
  latin1    8-bit ISO-8859-1 body, RFC 2047 Q and B encoded Subject/From
  longline  text/html with one 2500-byte line and a line of 998 bytes
  utf8      8-bit UTF-8 body, RFC 2231 encoded attachment file name
  forward   message/rfc822 inside multipart/mixed
  big       (only with --kind big) plain text padded to --size bytes

Files use LF line ends, as Dovecot stores them, and always end with LF.
--expected DIR also gets a copy of every file under the same name.
Prints one line per message: NAME SIZE KIND.
"""
import argparse
import base64
import os
import quopri
import random
import sys

MIXED = ("plain", "alt", "attach", "latin1", "longline", "utf8", "forward")
WORDS = ("mail archive server message account delivery report invoice meeting "
         "schedule backup release ticket customer support order review queue "
         "batch plugin journal mailbox quota retry window deadline notes").split()
PEOPLE = ("Ada Lovelace", "Grace Hopper", "Ken Thompson", "Barbara Liskov",
          "Dennis Ritchie", "Frances Allen", "Edsger Dijkstra")


def words(r, n):
    return " ".join(r.choice(WORDS) for _ in range(n))


def paragraph(r, lines):
    out = []
    for _ in range(lines):
        out.append(words(r, r.randrange(6, 12)).capitalize() + ".")
    return "\n".join(out) + "\n"


def head(r, i, subject, from_hdr=None, extra=()):
    # Dates spread over several months so date folders ("%Y/%m") differ.
    day = 1 + (i * 11) % 28
    month = ("Jan", "Feb", "Mar", "Apr", "May", "Jun")[(i // 3) % 6]
    name = r.choice(PEOPLE)
    addr = name.split()[0].lower() + "@example.org"
    h = [
        "Return-Path: <%s>" % addr,
        "Received: from mx.example.org (mx.example.org [192.0.2.%d])\n"
        "\tby pop.example.net with ESMTPS id %08X\n"
        "\tfor <user@example.net>; %02d %s 2024 10:%02d:00 +0000"
        % (1 + i % 250, r.getrandbits(32), day, month, i % 60),
        "Date: Mon, %02d %s 2024 10:%02d:00 +0000" % (day, month, i % 60),
        "From: %s" % (from_hdr or '"%s" <%s>' % (name, addr)),
        "To: user@example.net",
        "Subject: %s" % subject,
        "Message-ID: <mmtest.%d.%08x@example.org>" % (i, r.getrandbits(32)),
        "MIME-Version: 1.0",
    ]
    h.extend(extra)
    return "\n".join(h) + "\n"


def m_plain(r, i):
    body = (paragraph(r, 4) + ".\n" + "..leading dots\n" + "From the desk of the editor\n"
            + ">From quoted once already\n" + ">>From quoted twice\n" + paragraph(r, 3)
            + ".\n")
    return head(r, i, "Plain text %d: %s" % (i, words(r, 4)),
                extra=["Content-Type: text/plain; charset=us-ascii",
                       "Content-Transfer-Encoding: 7bit"]) + "\n" + body


def m_alt(r, i):
    b = "alt-%016x" % r.getrandbits(64)
    text = paragraph(r, 6)
    html = "<html><body>\n" + "".join("<p>%s</p>\n" % l for l in text.splitlines()) + \
        "<p>Price: 10&nbsp;&euro; = caf\u00e9 cr\u00e8me</p>\n</body></html>\n"
    qp = quopri.encodestring(html.encode("utf-8")).decode("ascii")
    return (head(r, i, "Alternative %d" % i,
                 extra=['Content-Type: multipart/alternative; boundary="%s"' % b])
            + "\nThis is a multi-part message in MIME format.\n\n"
            + "--%s\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 7bit\n\n" % b
            + text + "\n--%s\nContent-Type: text/html; charset=utf-8\n" % b
            + "Content-Transfer-Encoding: quoted-printable\n\n" + qp
            + "\n--%s--\n" % b)


def m_attach(r, i):
    b = "mixed-%016x" % r.getrandbits(64)
    blob = base64.encodebytes(r.randbytes(r.randrange(3000, 30000))).decode("ascii")
    return (head(r, i, "Report %d attached" % i,
                 extra=['Content-Type: multipart/mixed;\n boundary="%s"' % b])
            + "\n--%s\nContent-Type: text/plain; charset=us-ascii\n\n" % b + paragraph(r, 3)
            + "\n--%s\nContent-Type: application/octet-stream; name=\"report-%d.bin\"\n" % (b, i)
            + "Content-Disposition: attachment; filename=\"report-%d.bin\"\n" % i
            + "Content-Transfer-Encoding: base64\n\n" + blob + "\n--%s--\n" % b)


def m_latin1(r, i):
    subj_q = "=?ISO-8859-1?Q?Gr=FC=DFe_aus_M=FCnchen_%d?=" % i
    from_b = "=?ISO-8859-1?B?%s?= <jurgen@example.de>" % \
        base64.b64encode("Jürgen Größ".encode("latin-1")).decode("ascii")
    body = ("Sehr geehrte Damen und Herren,\n\nanbei die Übersicht für Straße "
            "und Gebühr: 12,50 DM.\nFrançais: élève, garçon, à bientôt.\n\n"
            + paragraph(r, 2) + "Mit freundlichen Grüßen\n")
    h = head(r, i, subj_q, from_hdr=from_b,
             extra=["Content-Type: text/plain; charset=ISO-8859-1",
                    "Content-Transfer-Encoding: 8bit"])
    return h.encode("ascii") + b"\n" + body.encode("latin-1")


def m_longline(r, i):
    long1 = "<p>" + words(r, 400)[:2490] + "</p>"
    exact = ("x" * 997) + "y"  # 998 bytes, RFC 5322's limit
    body = "<html><body>\n" + long1 + "\n" + exact + "\n</body></html>\n"
    return head(r, i, "Long lines %d" % i,
                extra=["Content-Type: text/html; charset=us-ascii"]) + "\n" + body


def m_utf8(r, i):
    b = "utf8-%016x" % r.getrandbits(64)
    body = ("Привет! Ваш заказ №%d отправлен.\n日本語のテキスト。\n"
            "Emoji: \U0001F4EC\n" % i) + paragraph(r, 2)
    att = base64.encodebytes(("Übersicht %d\n" % i).encode("utf-8")).decode("ascii")
    return (head(r, i, "=?UTF-8?B?%s?=" % base64.b64encode(
                ("Заказ %d — отправлен" % i).encode("utf-8")).decode("ascii"),
                 extra=['Content-Type: multipart/mixed; boundary="%s"' % b])
            + "\n--%s\nContent-Type: text/plain; charset=utf-8\n" % b
            + "Content-Transfer-Encoding: 8bit\n\n" + body
            + "\n--%s\nContent-Type: text/plain; charset=utf-8\n" % b
            + "Content-Disposition: attachment; filename*=utf-8''%C3%9Cbersicht.txt\n"
            + "Content-Transfer-Encoding: base64\n\n" + att + "\n--%s--\n" % b).encode("utf-8")


def m_forward(r, i):
    b = "fwd-%016x" % r.getrandbits(64)
    inner = m_plain(random.Random(r.getrandbits(64)), i + 100000)
    return (head(r, i, "Fwd: forwarded %d" % i,
                 extra=['Content-Type: multipart/mixed; boundary="%s"' % b])
            + "\n--%s\nContent-Type: text/plain\n\nSee the forwarded message.\n" % b
            + "\n--%s\nContent-Type: message/rfc822\n\n" % b + inner
            + "\n--%s--\n" % b)


def m_big(r, i, size):
    h = head(r, i, "Big message %d" % i,
             extra=["Content-Type: text/plain; charset=us-ascii"]) + "\n"
    out, n = [h], len(h)
    while n < size:
        line = words(r, 10)[:70] + "\n"
        out.append(line)
        n += len(line)
    return "".join(out)


KINDS = {"plain": m_plain, "alt": m_alt, "attach": m_attach, "latin1": m_latin1,
         "longline": m_longline, "utf8": m_utf8, "forward": m_forward}


def make(seed, i, kind, size):
    r = random.Random("%s/%d/%s/%d" % (seed, i, kind, size))
    if kind == "big":
        data = m_big(r, i, size)
    else:
        k = MIXED[i % len(MIXED)] if kind == "mixed" else kind
        data = KINDS[k](r, i)
        kind = k
    if isinstance(data, str):
        data = data.encode("ascii")
    assert data.endswith(b"\n") and b"\r" not in data
    return data, kind


def write(path, data, owner):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        if owner:
            os.fchown(fd, owner[0], owner[1])
    finally:
        os.close(fd)


def main():
    ap = argparse.ArgumentParser(description="write deterministic test mail into a Maildir")
    ap.add_argument("maildir")
    ap.add_argument("n", type=int)
    ap.add_argument("--seed", default="1")
    ap.add_argument("--offset", type=int, default=0)
    ap.add_argument("--kind", default="mixed", choices=("mixed", "big") + tuple(KINDS))
    ap.add_argument("--size", type=int, default=200000)
    ap.add_argument("--expected")
    ap.add_argument("--owner", help="UID:GID for the new files (when root)")
    a = ap.parse_args()
    owner = None
    if a.owner and os.geteuid() == 0:
        owner = tuple(int(x) for x in a.owner.split(":"))
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(a.maildir, sub), exist_ok=True)
    if a.expected:
        os.makedirs(a.expected, exist_ok=True)
    for i in range(a.offset, a.offset + a.n):
        data, kind = make(a.seed, i, a.kind, a.size)
        name = "%d.M%dP%s.mmtest" % (1700000000 + i, i, a.seed)
        write(os.path.join(a.maildir, "new", name), data, owner)
        if a.expected:
            write(os.path.join(a.expected, name), data, None)
        print("%s %d %s" % (name, len(data), kind))
    return 0


if __name__ == "__main__":
    sys.exit(main())

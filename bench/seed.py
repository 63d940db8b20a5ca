#!/usr/bin/python3
# mailmill - ISC licence, see LICENSE
"""Deterministic synthetic mail for the benchmark, written into a Maildir.

usage: seed.py MAILDIR PROFILE N [--seed S] [--uid U --gid G]

Message i depends only on (seed, profile, i).  Files land in MAILDIR/new
with LF line ends, named like Dovecot's own deliveries (,S=<size>,W=<size
with CRLF>) so the server need not read a file to learn its POP3 size.
Profiles:
  small  text/plain, 3.8-4.3 KB
  reply  the same, each message from a sender of its own (bench/run autoreply)
  mixed  5 % short notices, 55 % text/plain (lognormal, 1.5-24 KB),
         20 % multipart/alternative text + quoted-printable HTML,
         10 % legacy charsets (8bit / QP / base64 bodies, RFC 2047 headers),
         10 % multipart/mixed with base64 attachments (a message <= 2 MB);
         about 5 % of bodies carry lines that need dot-stuffing or mbox quoting.
         Seed 42, N 2000: mean ~38 KB.
  huge   one multipart/mixed message of about 30 MB (memory ceiling test)
Prints: messages=N bytes=<file bytes> wire_bytes=<POP3 bytes>.
"""
import argparse
import base64
import math
import os
import quopri
import random
import time

VOCAB = ("mail queue server batch archive ticket reply invoice order account customer "
         "report weekly status meeting agenda minutes backup restore disk latency network "
         "release build deploy rollback incident postmortem review budget forecast contract "
         "supplier delivery warehouse shipment payment reminder overdue subscription renew "
         "password security audit policy the a an of to and in on for with from by at is are "
         "was be this that it we you they please thanks regards hello again soon today "
         "tomorrow monday friday next last week month quarter year team project plan").split()
FIRST = "Anna Bruno Chen Dana Emil Fatima Goran Hana Igor Jana Kofi Lena Marek Nadia Omar".split()
LAST = "Novak Keller Rossi Lindqvist Okafor Haddad Tanaka Moreau Petrov Silva Weber".split()
HOSTS = "example.com example.net example.org mx.example.com shop.example.net".split()
# (charset, sample text in that language)
LEGACY = [
    ("iso-8859-1", "Sehr geehrte Kundin, Ihre Bestellung wurde geändert. Grüße aus Köln"),
    ("iso-8859-15", "Votre facture est prête, le montant dû est de 42 € à régler bientôt"),
    ("windows-1252", "Die Gebühr beträgt 12,50 € – bitte überweisen Sie „rechtzeitig“"),
    ("koi8-r", "Здравствуйте, ваш заказ отправлен, счёт во вложении"),
    ("windows-1251", "Добрый день, встреча перенесена на пятницу, спасибо"),
    ("iso-2022-jp", "お世話になっております。請求書を添付いたします。よろしくお願いします"),
    ("shift_jis", "本日の会議資料をお送りします。ご確認ください"),
    ("gb2312", "您好，您的订单已经发货，请查收附件中的发票"),
    ("big5", "您好，會議改到明天下午，謝謝"),
]
MIME_TYPES = ["application/pdf", "image/png", "image/jpeg", "application/zip",
              "application/octet-stream"]


def make_lines():
    r = random.Random("bench-vocabulary")
    out = []
    for _ in range(4096):
        words, n = [], 0
        while n < r.randrange(50, 76):
            w = r.choice(VOCAB)
            words.append(w)
            n += len(w) + 1
        s = " ".join(words)
        out.append(s[0].upper() + s[1:] + ("." if r.random() < 0.3 else ""))
    return out


LINES = make_lines()


def prose(r, size):
    """About `size` bytes of text lines, sometimes with POP3/mbox traps."""
    out, n = [], 0
    while n < size:
        s = LINES[r.randrange(len(LINES))]
        out.append(s)
        n += len(s) + 1
    if r.random() < 0.05:
        k = r.randrange(len(out) + 1)
        out[k:k] = [".", "..two dots", "From here on, a line an mbox must quote", "."]
    return "\n".join(out) + "\n"


def person(r):
    f, l = r.choice(FIRST), r.choice(LAST)
    return f + " " + l, "%s.%s@%s" % (f.lower(), l.lower(), r.choice(HOSTS))


def encoded_word(text, charset):
    """RFC 2047 B words, each short enough for a folded header line."""
    words, cur = [], ""
    for ch in text:
        if cur and len((cur + ch).encode(charset, "replace")) > 30:
            words.append(cur)
            cur = ""
        cur += ch
    words.append(cur)
    return "\n ".join("=?%s?B?%s?=" % (charset, base64.b64encode(w.encode(charset, "replace"))
                                       .decode()) for w in words)


def header_block(r, i, user, subject=None, sender=None):
    name, mail = person(r)
    when = time.gmtime(1704067200 + i * 53 + r.randrange(50))
    h = []
    for hop in range(r.randrange(1, 4)):
        h.append("Received: from relay%d.%s (relay%d.%s [198.51.100.%d])\n\tby mx.example.net "
                 "with ESMTPS id %010x\n\tfor <%s@example.net>; %s" % (
                     hop, r.choice(HOSTS), hop, r.choice(HOSTS), r.randrange(1, 255),
                     r.getrandbits(40), user, time.strftime("%a, %d %b %Y %H:%M:%S +0000", when)))
    if r.random() < 0.25:
        sig = base64.b64encode(r.randbytes(192)).decode()
        h.append("DKIM-Signature: v=1; a=rsa-sha256; d=%s; s=k1; c=relaxed/simple;\n"
                 "\th=from:to:subject:date; b=%s\n\t%s" % (r.choice(HOSTS), sig[:64], sig[64:]))
    h.append("From: " + (sender or '"%s" <%s>' % (name, mail)))
    h.append("To: %s@example.net" % user)
    if r.random() < 0.15:
        h.append("Cc: " + ",\n\t".join(person(r)[1] for _ in range(r.randrange(1, 4))))
    h.append("Subject: " + (subject or " ".join(r.choice(VOCAB) for _ in range(r.randrange(3, 8)))))
    h.append("Date: " + time.strftime("%a, %d %b %Y %H:%M:%S +0000", when))
    h.append("Message-ID: <%d.%012x@bench.%s>" % (i, r.getrandbits(48), r.choice(HOSTS)))
    if r.random() < 0.25:
        refs = ["<%x@%s>" % (r.getrandbits(36), r.choice(HOSTS)) for _ in range(r.randrange(1, 5))]
        h.append("In-Reply-To: " + refs[-1])
        h.append("References: " + "\n\t".join(refs))
    h.append("MIME-Version: 1.0")
    return "\n".join(h) + "\n"


def plain(r, i, user, size, sender=None):
    head = header_block(r, i, user, sender=sender) + \
        "Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n\n"
    return (head + prose(r, size - len(head))).encode()


def alternative(r, i, user, size):
    b = "alt-%012x" % r.getrandbits(48)
    txt = prose(r, size // 3)
    html = "<html><body style=\"font-family:sans-serif\">\n%s</body></html>\n" % "".join(
        "<p class=\"para\">%s</p>\n" % s for s in txt.splitlines() if s)
    qp = quopri.encodestring(html.encode()).decode()
    return (header_block(r, i, user) +
            "Content-Type: multipart/alternative; boundary=\"%s\"\n\n"
            "--%s\nContent-Type: text/plain; charset=us-ascii\n\n%s"
            "--%s\nContent-Type: text/html; charset=utf-8\n"
            "Content-Transfer-Encoding: quoted-printable\n\n%s\n--%s--\n" % (
                b, b, txt, b, qp, b)).encode()


def legacy(r, i, user):
    charset, sample = r.choice(LEGACY)
    body = ("\n".join(sample for _ in range(r.randrange(5, 60))) + "\n").encode(charset, "replace")
    name, mail = person(r)
    head = header_block(r, i, user, encoded_word(sample[:24], charset),
                        "%s <%s>" % (encoded_word(name, charset), mail))
    how = "7bit" if charset == "iso-2022-jp" else r.choice(["8bit", "quoted-printable", "base64"])
    if how == "quoted-printable":
        body = quopri.encodestring(body)
    elif how == "base64":
        body = base64.encodebytes(body)
    return (head + "Content-Type: text/plain; charset=%s\nContent-Transfer-Encoding: %s\n\n"
            % (charset, how)).encode() + body


def attachments(r, i, user, raw_sizes):
    b = "mix-%012x" % r.getrandbits(48)
    parts = [header_block(r, i, user) +
             "Content-Type: multipart/mixed; boundary=\"%s\"\n\n--%s\n"
             "Content-Type: text/plain; charset=us-ascii\n\n%s" % (b, b, prose(r, r.randrange(200, 2500)))]
    for k, size in enumerate(raw_sizes):
        ctype = r.choice(MIME_TYPES)
        fname = "file-%d-%d.%s" % (i, k, ctype.rsplit("/", 1)[1][:4])
        if r.random() < 0.15:
            disp = "attachment; filename*=utf-8''%C3%A4nderung-" + fname
        else:
            disp = "attachment; filename=\"%s\"" % fname
        parts.append("--%s\nContent-Type: %s; name=\"%s\"\nContent-Disposition: %s\n"
                     "Content-Transfer-Encoding: base64\n\n%s" % (
                         b, ctype, fname, disp, base64.encodebytes(r.randbytes(size)).decode()))
    parts.append("--%s--\n" % b)
    return "".join(parts).encode()


def sized(r, median, sigma, lo, hi):
    return max(lo, min(hi, int(r.lognormvariate(math.log(median), sigma))))


def message(profile, r, i, user):
    if profile == "small":
        return plain(r, i, user, r.randrange(3800, 4300))
    if profile == "reply":  # small, each from its own sender: an autoreply answers all
        return plain(r, i, user, r.randrange(3800, 4300),
                     sender='"Customer %d" <customer%d@example.com>' % (i, i))
    if profile == "huge":
        return attachments(r, i, user, [22 << 20])
    if profile != "mixed":
        raise SystemExit("seed.py: unknown profile %r (small, reply, mixed, huge)" % profile)
    x = r.random()
    if x < 0.05:
        return plain(r, i, user, r.randrange(600, 2000))
    if x < 0.60:
        return plain(r, i, user, sized(r, 5000, 0.65, 1500, 24000))
    if x < 0.80:
        return alternative(r, i, user, sized(r, 9000, 0.6, 3000, 40000))
    if x < 0.90:
        return legacy(r, i, user)
    sizes = [sized(r, 85000, 1.25, 6000, 1400000) for _ in range(1 if r.random() < 0.8 else 3)]
    while sum(sizes) > 1490000:  # base64 grows by 4/3: stay under 2 MB
        sizes = [s * 3 // 4 for s in sizes]
    return attachments(r, i, user, sizes)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("maildir")
    ap.add_argument("profile")
    ap.add_argument("n", type=int)
    ap.add_argument("--seed", default="42")
    ap.add_argument("--user", default="user1")
    ap.add_argument("--uid", type=int, default=-1)
    ap.add_argument("--gid", type=int, default=-1)
    a = ap.parse_args()
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(a.maildir, sub), exist_ok=True)
    total = wire = 0
    for i in range(a.n):
        data = message(a.profile, random.Random("%s:%s:%d" % (a.seed, a.profile, i)), i, a.user)
        w = len(data) + data.count(b"\n")
        name = "%d.M%06dP1.bench,S=%d,W=%d" % (1704067200 + i, i, len(data), w)
        with open(os.path.join(a.maildir, "new", name), "xb") as f:
            f.write(data)
            if a.uid >= 0:
                os.fchown(f.fileno(), a.uid, a.gid)
        total += len(data)
        wire += w
    if a.uid >= 0:
        for d in ("", "tmp", "new", "cur"):
            os.chown(os.path.join(a.maildir, d), a.uid, a.gid)
    print("messages=%d bytes=%d wire_bytes=%d" % (a.n, total, wire))


if __name__ == "__main__":
    main()

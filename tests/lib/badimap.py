# mailmill - ISC licence, see LICENSE
"""The IMAP mode of tests/lib/badserver.py (scenario "mode": "imap").

One mailbox, INBOX, holds the scenario's messages with UIDs 1..N (or
"imap_uids") under UIDVALIDITY "uidvalidity" (default 1000); other folders
can be created and receive moved or copied mail.  It answers what an account
run sends: CAPABILITY, STARTTLS, LOGIN, AUTHENTICATE PLAIN (SASL-IR too),
ENABLE, ID, LIST, CREATE, SELECT/EXAMINE, STATUS, UID SEARCH, UID FETCH
(BODY.PEEK[...], RFC822.SIZE, FLAGS, UID), UID STORE, UID COPY, UID MOVE,
UID EXPUNGE, EXPUNGE, CLOSE, UNSELECT, NOOP, IDLE, LOGOUT.  Rules match the
command without its tag ("UID FETCH 2 (BODY.PEEK[])", "LOGIN", ...) and
"{tag}" in a rule's reply, prepend or append is the command's tag.

Scenario keys of this mode:
  capability   the CAPABILITY list replacing the default (IMAP4rev1 SASL-IR
               AUTH=PLAIN UIDPLUS MOVE IDLE ENABLE, plus STARTTLS when tls is
               "starttls" before TLS); capability_tls: the list after STARTTLS
  uidvalidity  INBOX's UIDVALIDITY (default 1000)
  imap_uids    the INBOX UIDs of the messages (default 1..N)
  sizes        RFC822.SIZE values replacing the real ones (lies)
Rule keys of this mode, besides badserver.py's:
  prepend / prepend_b64   bytes sent before the reply (untagged responses
               in odd places)
  vanish       list of UIDs another client expunges just before the reply
               (the message disappears while it is fetched): "* n EXPUNGE"
               goes first, and the report's "vanished" lists them
The report's "deleted" lists the UIDs (as strings) the client removed from
INBOX (UID EXPUNGE, MOVE); "bare_expunge" counts EXPUNGE or CLOSE that
removed \\Deleted mail; "flags" maps each remaining UID to its flags;
"folders" maps each other folder to the UIDs of INBOX copied or moved there.
"""
import asyncio
import base64
import re

DEFAULT_CAPA = ["IMAP4rev1", "SASL-IR", "AUTH=PLAIN", "UIDPLUS", "MOVE", "IDLE", "ENABLE"]
LITERAL_RE = re.compile(rb"\{(\d+)(\+?)\}$")


def b(s):
    return s.encode("latin-1") if isinstance(s, str) else s


def parse_set(text, uids):
    """The UIDs of `uids` (sorted list) in the IMAP sequence set `text`."""
    top = uids[-1] if uids else 0
    out = set()
    for part in text.split(","):
        lo, _, hi = part.partition(":")
        try:
            lo = top if lo == "*" else int(lo)
            hi = lo if not hi else (top if hi == "*" else int(hi))
        except ValueError:
            return None
        lo, hi = min(lo, hi), max(lo, hi)
        out.update(u for u in uids if lo <= u <= hi)
    return sorted(out)


def atoms(text):
    """Split an IMAP argument list into atoms and quoted strings (unquoted)."""
    out, i = [], 0
    while i < len(text):
        if text[i] == " ":
            i += 1
        elif text[i] == '"':
            j, s = i + 1, ""
            while j < len(text) and text[j] != '"':
                if text[j] == "\\" and j + 1 < len(text):
                    j += 1
                s += text[j]
                j += 1
            out.append(s)
            i = j + 1
        else:
            j = text.find(" ", i)
            j = len(text) if j < 0 else j
            out.append(text[i:j])
            i = j
    return out


def state(srv):
    """The mailboxes, made from the scenario at first use."""
    if not hasattr(srv, "imap"):
        n = len(srv.msgs)
        uids = srv.sc.get("imap_uids") or list(range(1, n + 1))
        srv.imap = {"uids": list(uids), "data": dict(zip(uids, srv.msgs)),
                    "flags": {u: set() for u in uids}, "folders": {}}
        srv.report.update({"deleted": [], "bare_expunge": 0, "flags": {}, "folders": {}})
    return srv.imap


def report(srv):
    """The IMAP state into the report (badserver's Server.save)."""
    st = state(srv)
    rep = srv.report
    rep["remaining"] = [str(u) for u in st["uids"]]
    rep["flags"] = {str(u): sorted(st["flags"][u]) for u in st["uids"]}
    rep["folders"] = {f: [str(u) for u in us] for f, us in st["folders"].items()}


class ImapMixin:
    """Methods of badserver.Session for the IMAP mode."""

    def imap_state(self):
        return state(self.srv)

    def imap_capa(self):
        sc = self.srv.sc
        if self.tls and "capability_tls" in sc:
            return sc["capability_tls"]
        if "capability" in sc:
            return sc["capability"]
        capa = list(DEFAULT_CAPA)
        if self.srv.tlsmode == "starttls" and not self.tls:
            capa.append("STARTTLS")
        return capa

    async def imap_readcmd(self):
        """One command, its client literals read in: (tag, text) or raises."""
        line = await self.readline()
        parts = []
        while True:
            m = LITERAL_RE.search(line)
            if not m:
                parts.append(line)
                break
            n = int(m.group(1))
            if n > 1 << 20:
                raise ConnectionError("client literal too big")
            if not m.group(2):
                self.w.write(b"+ go ahead\r\n")
                await self.w.drain()
            data = await self.r.readexactly(n)
            parts.append(line[:m.start()] + b'"' + data.replace(b'"', b'\\"') + b'"')
            line = await self.readline()
        text = b"".join(parts).decode("latin-1")
        tag, _, rest = text.partition(" ")
        return tag, rest

    async def isend(self, tag, event, data, hook=None):
        """badserver's send() with {tag} put in and prepend/vanish applied."""
        rule = self.srv.rule_for(event, self.n)
        self.srv.forced = [None]
        if rule is not None:
            pre = b""
            for u in rule.get("vanish", []):
                seq = self.imap_remove(u, by_client=False)
                if seq is not None:
                    pre += b"* %d EXPUNGE\r\n" % seq
                    self.srv.report.setdefault("vanished", []).append(str(u))
            pre += b(rule.get("prepend", "")) or base64.b64decode(rule.get("prepend_b64", ""))
            if pre:
                self.w.write(pre.replace(b"{tag}", b(tag)))
                await self.w.drain()
            fixed = dict(rule)
            for k in ("reply", "append"):
                if k in fixed:
                    fixed[k] = fixed[k].replace("{tag}", tag)
            fixed.pop("vanish", None)
            # send() looks the rule up again: hand it this one.
            self.srv.forced = [fixed]
        return await self.send(event, data, hook)

    def imap_remove(self, uid, by_client=True):
        st = self.imap_state()
        if uid not in st["data"] or uid not in st["uids"]:
            return None
        seq = st["uids"].index(uid) + 1
        st["uids"].remove(uid)
        if by_client:
            self.srv.report["deleted"].append(str(uid))
        return seq

    def fetch_item(self, uid, items):
        st = self.imap_state()
        raw = st["data"][uid].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        out = [b"UID %d" % uid]
        if "RFC822.SIZE" in items:
            sizes = self.srv.sc.get("sizes")  # lies, as POP3's LIST can tell
            i = sorted(st["data"]).index(uid)
            n = sizes[i] if sizes is not None and i < len(sizes) else len(raw)
            out.append(b"RFC822.SIZE %d" % n)
        if "FLAGS" in items:
            out.append(b"FLAGS (%s)" % b(" ".join(sorted(st["flags"][uid]))))
        for sec in re.findall(r"BODY(?:\.PEEK)?\[([^\]]*)\]", items):
            head, _, body = raw.partition(b"\r\n\r\n")
            if sec == "":
                part = raw
            elif sec.upper() == "HEADER":
                part = head + b"\r\n\r\n"
            elif sec.upper() == "TEXT":
                part = body
            else:
                want = [w.upper() for w in re.findall(r"[\w-]+", sec.split("(", 1)[-1])]
                lines = re.split(rb"\r\n(?![ \t])", head)
                part = b"".join(ln + b"\r\n" for ln in lines
                                if ln.split(b":", 1)[0].decode("latin-1").upper() in want) + b"\r\n"
            out.append(b"BODY[%s] {%d}\r\n" % (b(sec), len(part)) + part)
        return b" ".join(out)

    async def imap(self):
        srv = self.srv
        st = self.imap_state()
        user = srv.sc.get("user", "user1")
        pw = srv.sc.get("pass", "secret")
        selected = None
        await self.send("@greeting", b"* OK [CAPABILITY %s] badserver IMAP ready\r\n"
                        % b(" ".join(self.imap_capa())))
        while True:
            tag, text = await self.imap_readcmd()
            self.log_imap(text)
            words = text.split(" ")
            cmd = words[0].upper()
            uidcmd = None
            if cmd == "UID" and len(words) > 1:
                uidcmd = words[1].upper()
            args = atoms(" ".join(words[1:])) if uidcmd is None else words[2:]
            ok = b"%s OK %s completed\r\n" % (b(tag), b(cmd))
            if cmd == "CAPABILITY":
                await self.isend(tag, text, b"* CAPABILITY %s\r\n" % b(" ".join(self.imap_capa())) + ok)
            elif cmd == "STARTTLS" and srv.tlsmode == "starttls" and not self.tls:
                rule, full = await self.isend(tag, text, b"%s OK begin TLS\r\n" % b(tag))
                if rule is None or (full and " OK" in rule.get("reply", " OK")):
                    await self.starttls(text)
            elif cmd == "LOGIN":
                good = len(args) >= 2 and (user == "any" or args[0] == user) and \
                    (pw == "any" or args[1] == pw)
                rule, _ = await self.isend(tag, text, ok if good else
                                           b"%s NO [AUTHENTICATIONFAILED] bad credentials\r\n" % b(tag))
                self.authed = good and (rule is None or " OK" in rule.get("reply", " OK"))
            elif cmd == "AUTHENTICATE" and args and args[0].upper() == "PLAIN":
                if len(args) > 1:
                    resp = args[1]
                else:
                    self.w.write(b"+ \r\n")
                    await self.w.drain()
                    self.in_auth = True
                    resp = (await self.readline()).decode("latin-1")
                    self.in_auth = False
                try:
                    _, u, p = base64.b64decode(resp).decode("latin-1").split("\0")
                except Exception:
                    u = p = None
                good = (user == "any" or u == user) and (pw == "any" or p == pw)
                rule, _ = await self.isend(tag, text, ok if good else
                                           b"%s NO [AUTHENTICATIONFAILED] bad credentials\r\n" % b(tag))
                self.authed = good and (rule is None or " OK" in rule.get("reply", " OK"))
            elif cmd == "LOGOUT":
                await self.isend(tag, text, b"* BYE logging out\r\n" + ok)
                self.w.close()
                return
            elif cmd in ("NOOP", "ENABLE", "ID", "CHECK"):
                await self.isend(tag, text, ok)
            elif cmd == "IDLE":
                self.w.write(b"+ idling\r\n")
                await self.w.drain()
                await self.readline()
                await self.isend(tag, text, ok)
            elif not self.authed:
                await self.isend(tag, text, b"%s BAD not logged in\r\n" % b(tag))
            elif cmd == "LIST":
                out = b'* LIST (\\HasNoChildren) "/" INBOX\r\n'
                for f in st["folders"]:
                    out += b'* LIST (\\HasNoChildren) "/" "%s"\r\n' % b(f)
                await self.isend(tag, text, out + ok)
            elif cmd == "CREATE":
                name = args[0] if args else ""
                if name.upper() == "INBOX" or name in st["folders"]:
                    await self.isend(tag, text, b"%s NO [ALREADYEXISTS] exists\r\n" % b(tag))
                else:
                    st["folders"][name] = []
                    await self.isend(tag, text, ok)
            elif cmd in ("SELECT", "EXAMINE", "STATUS"):
                name = args[0] if args else ""
                if name.upper() != "INBOX" and name not in st["folders"]:
                    await self.isend(tag, text, b"%s NO [NONEXISTENT] no such folder\r\n" % b(tag))
                    continue
                mine = name.upper() == "INBOX"
                n = len(st["uids"]) if mine else len(st["folders"][name])
                nxt = (max(st["data"]) + 1) if st["data"] else 1
                v = srv.sc.get("uidvalidity", 1000) if mine else 2000
                if cmd == "STATUS":
                    await self.isend(tag, text, b'* STATUS "%s" (MESSAGES %d UIDNEXT %d UIDVALIDITY %d)\r\n'
                                     % (b(name), n, nxt, v) + ok)
                    continue
                selected = name if mine else None
                rw = b"READ-WRITE" if cmd == "SELECT" else b"READ-ONLY"
                await self.isend(tag, text, b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
                                 b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] ok\r\n"
                                 b"* %d EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY %d] ok\r\n"
                                 b"* OK [UIDNEXT %d] ok\r\n%s OK [%s] %s completed\r\n"
                                 % (n, v, nxt, b(tag), rw, b(cmd)))
            elif cmd in ("CLOSE", "UNSELECT", "EXPUNGE"):
                gone = b""
                if cmd != "UNSELECT" and selected is not None:
                    for u in [u for u in st["uids"] if "\\Deleted" in st["flags"][u]]:
                        seq = self.imap_remove(u, by_client=True)
                        srv.report["bare_expunge"] += 1
                        if cmd == "EXPUNGE":
                            gone += b"* %d EXPUNGE\r\n" % seq
                if cmd != "EXPUNGE":
                    selected = None
                await self.isend(tag, text, gone + ok)
            elif selected is None:
                await self.isend(tag, text, b"%s BAD no mailbox selected\r\n" % b(tag))
            elif uidcmd is not None:
                await self.imap_uid(tag, text, uidcmd, args, ok)
            else:
                await self.isend(tag, text, b"%s BAD unknown command\r\n" % b(tag))
            srv.save()

    def log_imap(self, text):
        word = text.split(" ", 1)[0].upper()
        shown = text[:200]
        if word in ("LOGIN", "AUTHENTICATE") or getattr(self, "in_auth", False):
            shown = word + " <redacted>"
            if not self.tls and self.srv.tlsmode != "none":
                self.srv.report["secret_before_tls"] = True
        self.srv.report["commands"].append("%d: %s" % (self.n, shown))

    async def imap_uid(self, tag, text, uidcmd, args, ok):
        st = self.imap_state()
        uids = parse_set(args[0], st["uids"]) if args else None
        if uidcmd == "SEARCH":
            crit = " ".join(args).upper()
            hits = list(st["uids"])
            m = re.search(r"UID (\S+)", crit)
            if m:
                hits = parse_set(m.group(1), hits) or []
            if "UNDELETED" in crit:
                hits = [u for u in hits if "\\Deleted" not in st["flags"][u]]
            await self.isend(tag, text, b"* SEARCH%s\r\n" % b"".join(b" %d" % u for u in hits) + ok)
            return
        if uids is None:
            await self.isend(tag, text, b"%s BAD bad set\r\n" % b(tag))
            return
        items = " ".join(args[1:])
        if uidcmd == "FETCH":
            out = b""
            for u in uids:
                if u in st["uids"]:
                    out += b"* %d FETCH (%s)\r\n" % (st["uids"].index(u) + 1, self.fetch_item(u, items.upper()))
            await self.isend(tag, text, out + ok)
        elif uidcmd == "STORE":
            mode = args[1].upper() if len(args) > 1 else ""
            fl = set(re.findall(r"[\\$\w-]+", " ".join(args[2:])))
            out = b""
            for u in uids:
                if mode.startswith("+"):
                    st["flags"][u] |= fl
                elif mode.startswith("-"):
                    st["flags"][u] -= fl
                else:
                    st["flags"][u] = set(fl)
                if "SILENT" not in mode:
                    out += b"* %d FETCH (UID %d FLAGS (%s))\r\n" % (
                        st["uids"].index(u) + 1, u, b(" ".join(sorted(st["flags"][u]))))
            await self.isend(tag, text, out + ok)
        elif uidcmd in ("COPY", "MOVE"):
            dest = atoms(" ".join(args[1:]))[0] if len(args) > 1 else ""
            if dest not in st["folders"]:
                await self.isend(tag, text, b"%s NO [TRYCREATE] no such folder\r\n" % b(tag))
                return
            out = b""
            if uids:
                base = len(st["folders"][dest]) + 1
                out = b"* OK [COPYUID 2000 %s %d:%d] copied\r\n" % (
                    b(",".join(map(str, uids))), base, base + len(uids) - 1)
            if uidcmd == "MOVE":
                seqs = []

                def commit(rule, full, sent, uids=uids, dest=dest):
                    if rule is None or (full and b" OK" in sent):
                        st["folders"][dest].extend(uids)
                        for u in uids:
                            self.imap_remove(u)
                for u in uids:
                    seqs.append(st["uids"].index(u) + 1)
                for s in sorted(seqs, reverse=True):
                    out += b"* %d EXPUNGE\r\n" % s
                await self.isend(tag, text, out + ok, commit)
            else:
                st["folders"][dest].extend(uids)
                await self.isend(tag, text, out + ok)
        elif uidcmd == "EXPUNGE":
            out = b""
            for u in [u for u in uids if "\\Deleted" in st["flags"][u]]:
                out += b"* %d EXPUNGE\r\n" % self.imap_remove(u)
            await self.isend(tag, text, out + ok)
        else:
            await self.isend(tag, text, b"%s BAD unknown UID command\r\n" % b(tag))

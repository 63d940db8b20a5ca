#!/usr/bin/python3
# mailmill - ISC licence, see LICENSE
"""A scriptable, misbehaving POP3 / SMTP / IMAP server for the hostile-world tests.

    badserver.py SCENARIO.json PORTFILE REPORT.json

Listens on 127.0.0.1 (port chosen by the kernel, written to PORTFILE once it
accepts connections), behaves like a correct server unless the scenario says
otherwise, and keeps REPORT.json up to date with what it really did: the UIDs
it deleted (DELE followed by a QUIT whose +OK reply was sent in full), the
messages it accepted (SMTP end of data answered 250), every command it saw
(secrets redacted) and whether a secret arrived before TLS.  Stops on SIGTERM.

Scenario (JSON object; every key optional):
  mode        "pop3" (default), "smtp" or "imap" (tests/lib/badimap.py says
              what the IMAP mode answers and its own keys)
  tls         "none" (default), "implicit", "starttls"
  cert, key   PEM files for TLS (make them at test time, tests/data/tls/mkcerts.sh)
  user, pass  accepted credentials (default "user1" / "secret"); "any" accepts all
  messages    list of {"file": PATH} | {"text": STR} | {"b64": STR} (POP3 mailbox)
  repeat      the mailbox is `messages` this many times over (default 1)
  uids        UIDL values replacing the default "uid-N" (None: leave it out)
  sizes       LIST sizes replacing the real ones (lies)
  capa        POP3 CAPA lines (default TOP UIDL USER PIPELINING SASL PLAIN,
              plus STLS when tls is starttls); capa_tls: the list after STLS
  ehlo        SMTP EHLO keywords (default PIPELINING 8BITMIME SIZE ..., STARTTLS,
              AUTH PLAIN LOGIN); ehlo_tls: after STARTTLS
  oauth       an Exchange Online-like POP3 login (tls "implicit" or "starttls"):
              {"introspect": URL of tests/lib/idp.py's /introspect, "ca": CA file,
               "ttl": seconds a token is honoured after it was issued (the
               server's own expiry, shorter than the IdP says; default none),
               "oneline": accept the one-line `AUTH XOAUTH2 <b64>` (default no:
               "-ERR Protocol error", as Exchange Online), "mechs": SASL names
               for CAPA (default ["XOAUTH2"])}.  A good token: "+OK"; a bad one:
              "+ <base64 JSON challenge>", then after the client's empty line
              "-ERR Authentication failure".  USER/PASS and AUTH PLAIN are
              refused ("-ERR Basic authentication is disabled").  The report's
              "oauth" lists each attempt: {"mech", "user", "token_len", "result"
              ("ok", "refused", "oneline", "not-empty" (the client did not
              answer the challenge with an empty line))}.
  rules       list of rules, each applied to the first matching event:
    match     regex (case-insensitive) on the command line ("RETR 2", "DELE",
              "QUIT"), or an event: "@greeting", "@eom" (SMTP end of data),
              "@tls" (just after the go-ahead for STLS/STARTTLS)
    nth       only the Nth matching event (1-based); default: every one
    session   only in the Nth connection (1-based); default: every one
    delay     seconds to wait before answering
    reply / reply_b64 / reply_file   bytes sent instead of the normal reply
    append / append_b64 bytes sent right after the reply (e.g. injection)
    truncate  send only the first N bytes of the reply
    chunk, gap  send the reply in chunks of `chunk` bytes `gap` s apart (drip)
    then      "close", "reset" (TCP RST), "hang" (read and ignore until the
              client leaves), or nothing (go on)
    commit    for QUIT: whether the deletions are committed (default: when the
              reply sent starts with +OK and "then" did not cut it short)
"""
import asyncio
import base64
import json
import os
import re
import signal
import socket
import ssl
import struct
import sys
import time
import urllib.parse
import urllib.request

import badimap

SECRET_WORDS = ("PASS", "APOP", "AUTH")


def b(s):
    return s.encode("latin-1") if isinstance(s, str) else s


class Server:
    def __init__(self, sc, portfile, reportfile):
        self.sc = sc
        self.portfile = portfile
        self.reportfile = reportfile
        self.mode = sc.get("mode", "pop3")
        self.tlsmode = sc.get("tls", "none")
        self.sessions = 0
        self.counts = {}  # (rule index) -> matches so far
        self.msgs = []
        for i, m in enumerate(sc.get("messages", [])):
            if "file" in m:
                with open(m["file"], "rb") as f:
                    data = f.read()
            elif "b64" in m:
                data = base64.b64decode(m["b64"])
            else:
                data = b(m.get("text", ""))
            self.msgs.append(data)
        # A big mailbox without a big scenario (argv is bounded): the list again.
        self.msgs = self.msgs * int(sc.get("repeat", 1))
        uids = sc.get("uids")
        self.uids = [uids[i] if uids is not None and i < len(uids) else "uid-%d" % (i + 1)
                     for i in range(len(self.msgs))]
        self.present = [True] * len(self.msgs)
        self.report = {"deleted": [], "remaining": list(self.uids), "accepted": [],
                       "commands": [], "sessions": 0, "secret_before_tls": False,
                       "quit_ok": 0, "oauth": []}
        self.ctx = None
        if self.tlsmode != "none":
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(sc["cert"], sc["key"])

    def save(self):
        self.report["sessions"] = self.sessions
        if self.mode == "imap":
            badimap.report(self)
        else:
            self.report["remaining"] = [u for u, p in zip(self.uids, self.present) if p]
        tmp = self.reportfile + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.report, f, indent=1)
        os.replace(tmp, self.reportfile)

    def rule_for(self, event, session):
        # The IMAP mode looked the rule up already (badimap.isend).
        forced, self.forced = getattr(self, "forced", None), None
        if forced is not None:
            return forced[0]
        for i, r in enumerate(self.sc.get("rules", [])):
            if not re.search(r["match"], event, re.I):
                continue
            if "session" in r and r["session"] != session:
                continue
            n = self.counts.get(i, 0) + 1
            self.counts[i] = n
            if "nth" in r and r["nth"] != n:
                continue
            return r
        return None

    async def serve(self):
        srv = await asyncio.start_server(self.client, "127.0.0.1", 0,
                                         ssl=self.ctx if self.tlsmode == "implicit" else None,
                                         limit=1 << 20)
        port = srv.sockets[0].getsockname()[1]
        with open(self.portfile + ".tmp", "w") as f:
            f.write("%d\n" % port)
        os.replace(self.portfile + ".tmp", self.portfile)
        self.save()
        async with srv:
            await srv.serve_forever()

    async def client(self, reader, writer):
        self.sessions += 1
        sess = Session(self, reader, writer, self.sessions)
        try:
            await sess.run()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            self.save()
            try:
                writer.close()
            except Exception:
                pass


class Cut(Exception):
    """The rule ended the session (close, reset, hang)."""


class Session(badimap.ImapMixin):
    def __init__(self, srv, reader, writer, n):
        self.srv = srv
        self.r = reader
        self.w = writer
        self.n = n
        self.tls = srv.tlsmode == "implicit"
        self.deleted = set()
        self.authed = False

    def log(self, line):
        word = line.split(b" ", 1)[0].upper().decode("latin-1", "replace")
        if word in SECRET_WORDS or getattr(self, "in_auth", False):
            shown = word + " <redacted>"
            if not self.tls and self.srv.tlsmode != "none":
                self.srv.report["secret_before_tls"] = True
        else:
            shown = line[:200].decode("latin-1")
        self.srv.report["commands"].append("%d: %s" % (self.n, shown))

    async def readline(self):
        line = await self.r.readline()
        if not line:
            raise ConnectionError("client closed")
        return line.rstrip(b"\r\n")

    async def send(self, event, data, hook=None):
        """Send the normal reply `data` for `event`, as the rules say.
        Returns (rule, whether the reply went out in full); hook(rule, full,
        bytes sent) runs before a rule's "then" ends the session."""
        rule = self.srv.rule_for(event, self.n)
        if rule is None:
            self.w.write(data)
            await self.w.drain()
            if hook is not None:
                hook(None, True, data)
            return None, True
        if "delay" in rule:
            await asyncio.sleep(rule["delay"])
        if "reply" in rule:
            data = b(rule["reply"])
        elif "reply_b64" in rule:
            data = base64.b64decode(rule["reply_b64"])
        elif "reply_file" in rule:
            with open(rule["reply_file"], "rb") as f:
                data = f.read()
        full = True
        if "truncate" in rule:
            full = rule["truncate"] >= len(data)
            data = data[:rule["truncate"]]
        if "append" in rule:
            data += b(rule["append"])
        elif "append_b64" in rule:
            data += base64.b64decode(rule["append_b64"])
        chunk = rule.get("chunk", 0)
        if chunk > 0:
            for i in range(0, len(data), chunk):
                self.w.write(data[i:i + chunk])
                await self.w.drain()
                await asyncio.sleep(rule.get("gap", 0))
        elif data:
            self.w.write(data)
            await self.w.drain()
        if hook is not None:
            hook(rule, full, data)
        await self.after(rule)
        return rule, full

    async def after(self, rule):
        then = rule.get("then")
        if then == "close":
            await self.w.drain()
            self.w.close()
            raise Cut()
        if then == "reset":
            sock = self.w.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.w.transport.abort()
            raise Cut()
        if then == "hang":
            while await self.r.read(65536):
                pass
            raise Cut()

    async def starttls(self, event_data):
        """Go-ahead sent; an "@tls" rule may inject bytes right behind it."""
        rule = self.srv.rule_for("@tls", self.n)
        if rule is not None:
            if "append" in rule:
                self.w.write(b(rule["append"]))
                await self.w.drain()
            if "delay" in rule:
                await asyncio.sleep(rule["delay"])
            await self.after(rule)
        await self.w.start_tls(self.srv.ctx)
        self.tls = True

    async def run(self):
        try:
            if self.srv.mode == "smtp":
                await self.smtp()
            elif self.srv.mode == "imap":
                await self.imap()
            else:
                await self.pop3()
        except Cut:
            pass

    # ------------------------------------------------------------ POP3
    def capa(self):
        sc = self.srv.sc
        if self.tls and "capa_tls" in sc:
            lines = sc["capa_tls"]
        elif "capa" in sc:
            lines = sc["capa"]
        elif "oauth" in sc:
            lines = ["TOP", "UIDL", "USER",
                     "SASL " + " ".join(sc["oauth"].get("mechs", ["XOAUTH2"]))]
            if self.srv.tlsmode == "starttls" and not self.tls:
                lines.append("STLS")
        else:
            lines = ["TOP", "UIDL", "USER", "PIPELINING", "SASL PLAIN"]
            if self.srv.tlsmode == "starttls" and not self.tls:
                lines.append("STLS")
        return b"+OK capabilities\r\n" + b"".join(b(x) + b"\r\n" for x in lines) + b".\r\n"

    def msgno(self, arg):
        try:
            i = int(arg) - 1
        except ValueError:
            return None
        if 0 <= i < len(self.srv.msgs) and self.srv.present[i] and i not in self.deleted:
            return i
        return None

    def size(self, i):
        sizes = self.srv.sc.get("sizes")
        if sizes is not None and i < len(sizes):
            return str(sizes[i])
        return str(len(self.srv.msgs[i].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")))

    @staticmethod
    def stuffed(data):
        lines = data.replace(b"\r\n", b"\n").split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        out = b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n" for ln in lines)
        return b"+OK message follows\r\n" + out + b".\r\n"

    async def pop3(self):
        srv = self.srv
        user = srv.sc.get("user", "user1")
        pw = srv.sc.get("pass", "secret")
        await self.send("@greeting", b"+OK badserver ready <1.2@badserver>\r\n")
        given = None
        while True:
            line = await self.readline()
            self.log(line)
            parts = line.decode("latin-1").split(" ")
            cmd, args = parts[0].upper(), parts[1:]
            text = line.decode("latin-1")
            if cmd == "CAPA":
                await self.send(text, self.capa())
            elif cmd == "STLS" and srv.tlsmode == "starttls" and not self.tls:
                rule, full = await self.send(text, b"+OK begin TLS\r\n")
                if rule is None or (full and rule.get("reply", "+OK").startswith("+OK")):
                    await self.starttls(text)
            elif "oauth" in srv.sc and cmd in ("USER", "PASS") or \
                    "oauth" in srv.sc and cmd == "AUTH" and args and args[0].upper() == "PLAIN":
                await self.send(text, b"-ERR Basic authentication is disabled\r\n")
            elif "oauth" in srv.sc and cmd == "AUTH" and args and \
                    args[0].upper() in ("XOAUTH2", "OAUTHBEARER"):
                await self.oauth_login(text, args)
            elif cmd == "USER":
                given = args[0] if args else ""
                await self.send(text, b"+OK\r\n")
            elif cmd == "PASS":
                ok = (user == "any" or given == user) and (pw == "any" or " ".join(args) == pw)
                rule, _ = await self.send(text, b"+OK logged in\r\n" if ok else
                                          b"-ERR [AUTH] bad credentials\r\n")
                self.authed = ok and (rule is None or b(rule.get("reply", "+OK")).startswith(b"+OK"))
            elif cmd == "AUTH" and args and args[0].upper() == "PLAIN":
                resp = await self.sasl_response(args)
                try:
                    _, u, p = base64.b64decode(resp).decode("latin-1").split("\0")
                except Exception:
                    u = p = None
                ok = (user == "any" or u == user) and (pw == "any" or p == pw)
                rule, _ = await self.send(text, b"+OK logged in\r\n" if ok else
                                          b"-ERR [AUTH] bad credentials\r\n")
                self.authed = ok and (rule is None or b(rule.get("reply", "+OK")).startswith(b"+OK"))
            elif cmd == "QUIT":
                def commit_quit(rule, full, sent):
                    commit = full and sent.startswith(b"+OK")
                    if rule is not None and "commit" in rule:
                        commit = rule["commit"]
                    if commit and self.authed:
                        for i in sorted(self.deleted):
                            srv.present[i] = False
                            srv.report["deleted"].append(srv.uids[i])
                        srv.report["quit_ok"] += 1
                await self.send(text, b"+OK bye\r\n", commit_quit)
                self.w.close()
                return
            elif cmd == "NOOP" or cmd == "RSET":
                if cmd == "RSET":
                    self.deleted.clear()
                await self.send(text, b"+OK\r\n")
            elif not self.authed:
                await self.send(text, b"-ERR not logged in\r\n")
            elif cmd == "STAT":
                live = [i for i in range(len(srv.msgs)) if srv.present[i] and i not in self.deleted]
                tot = sum(int(self.size(i)) for i in live)
                await self.send(text, b"+OK %d %d\r\n" % (len(live), tot))
            elif cmd == "LIST" and not args:
                out = b"+OK scan listing\r\n"
                for i in range(len(srv.msgs)):
                    if srv.present[i] and i not in self.deleted:
                        out += b"%d %s\r\n" % (i + 1, b(self.size(i)))
                await self.send(text, out + b".\r\n")
            elif cmd == "UIDL" and not args:
                out = b"+OK unique-id listing\r\n"
                for i in range(len(srv.msgs)):
                    if srv.present[i] and i not in self.deleted and srv.uids[i] is not None:
                        out += b"%d %s\r\n" % (i + 1, b(srv.uids[i]))
                await self.send(text, out + b".\r\n")
            elif cmd in ("LIST", "UIDL", "RETR", "DELE", "TOP") and args:
                i = self.msgno(args[0])
                if i is None:
                    await self.send(text, b"-ERR no such message\r\n")
                elif cmd == "LIST":
                    await self.send(text, b"+OK %d %s\r\n" % (i + 1, b(self.size(i))))
                elif cmd == "UIDL":
                    await self.send(text, b"+OK %d %s\r\n" % (i + 1, b(srv.uids[i] or "")))
                elif cmd == "RETR":
                    await self.send(text, self.stuffed(srv.msgs[i]))
                elif cmd == "TOP":
                    await self.send(text, self.stuffed(srv.msgs[i].split(b"\n\n")[0] + b"\n\n"))
                else:
                    rule, _ = await self.send(text, b"+OK deleted\r\n")
                    # A refused DELE deletes nothing.
                    if rule is None or b(rule.get("reply", "+OK")).startswith(b"+OK"):
                        self.deleted.add(i)
            else:
                await self.send(text, b"-ERR unknown command\r\n")

    async def sasl_response(self, args):
        """The initial response: on the AUTH line, or after a "+ " go-ahead."""
        if len(args) > 1:
            return args[1]
        self.w.write(b"+ \r\n")
        await self.w.drain()
        self.in_auth = True
        resp = (await self.readline()).decode("latin-1")
        self.in_auth = False
        self.log(b"AUTH-RESPONSE")
        return resp

    # ------------------------------------------------------------ OAuth
    def introspect(self, token):
        """(user, issued-at) of a live token, or None (blocking: run in a thread)."""
        o = self.srv.sc["oauth"]
        ctx = ssl.create_default_context(cafile=o["ca"])
        body = urllib.parse.urlencode({"token": token}).encode()
        try:
            with urllib.request.urlopen(o["introspect"], body, context=ctx, timeout=10) as r:
                ans = json.load(r)
        except Exception as e:
            sys.stderr.write("badserver: introspection failed: %s\n" % e)
            return None
        if ans.get("active") is not True:
            return None
        return ans.get("username"), ans.get("iat", 0)

    async def oauth_login(self, text, args):
        o = self.srv.sc["oauth"]
        mech = args[0].upper()
        entry = {"mech": mech, "user": None, "token_len": 0, "result": "refused"}
        self.srv.report["oauth"].append(entry)
        if mech not in o.get("mechs", ["XOAUTH2"]) or not self.tls:
            await self.send(text, b"-ERR Unrecognized authentication type\r\n")
            return
        if len(args) > 1 and not o.get("oneline"):
            entry["result"] = "oneline"
            await self.send(text, b"-ERR Protocol error\r\n")
            return
        resp = await self.sasl_response(args)
        try:
            fields = base64.b64decode(resp, validate=True).decode("latin-1").split("\x01")
        except Exception:
            fields = []
        user = token = None
        for f in fields:
            if f.startswith("user="):
                user = f[5:]
            elif f.startswith("n,a="):
                user = f[4:].split(",", 1)[0]
            elif f.startswith("auth=Bearer "):
                token = f[12:]
        entry["user"], entry["token_len"] = user, len(token or "")
        who = None
        if token:
            who = await asyncio.get_running_loop().run_in_executor(None, self.introspect, token)
        good = who is not None and who[0] == user and \
            ("ttl" not in o or time.time() - who[1] < o["ttl"])
        if good:
            entry["result"] = "ok"
            rule, _ = await self.send(text, b"+OK User successfully authenticated.\r\n")
            self.authed = rule is None or b(rule.get("reply", "+OK")).startswith(b"+OK")
            return
        challenge = json.dumps({"status": "invalid_token", "schemes": "bearer",
                                "scope": "https://outlook.office.com/POP.AccessAsUser.All"})
        self.w.write(b"+ " + base64.b64encode(challenge.encode()) + b"\r\n")
        await self.w.drain()
        answer = await self.readline()
        self.log(b"AUTH-CHALLENGE-ANSWER")
        if answer not in (b"", b"*"):
            entry["result"] = "not-empty"
        await self.send(text, b"-ERR Authentication failure: unknown user name or bad password.\r\n")

    # ------------------------------------------------------------ SMTP
    def ehlo(self):
        sc = self.srv.sc
        if self.tls and "ehlo_tls" in sc:
            kw = sc["ehlo_tls"]
        elif "ehlo" in sc:
            kw = sc["ehlo"]
        else:
            kw = ["PIPELINING", "8BITMIME", "SIZE 10485760", "ENHANCEDSTATUSCODES",
                  "AUTH PLAIN LOGIN"]
            if self.srv.tlsmode == "starttls" and not self.tls:
                kw.append("STARTTLS")
        lines = ["badserver"] + kw
        return b"".join(b"250%s%s\r\n" % (b"-" if i < len(lines) - 1 else b" ", b(x))
                        for i, x in enumerate(lines))

    async def smtp(self):
        srv = self.srv
        await self.send("@greeting", b"220 badserver ESMTP\r\n")
        env_from, rcpts = None, []
        while True:
            line = await self.readline()
            self.log(line)
            text = line.decode("latin-1")
            cmd = text.split(" ", 1)[0].upper()
            if cmd in ("EHLO", "HELO"):
                await self.send(text, self.ehlo() if cmd == "EHLO" else b"250 badserver\r\n")
            elif cmd == "STARTTLS" and srv.tlsmode == "starttls" and not self.tls:
                rule, full = await self.send(text, b"220 2.0.0 go ahead\r\n")
                if rule is None or (full and rule.get("reply", "220").startswith("220")):
                    await self.starttls(text)
            elif cmd == "AUTH":
                words = text.split(" ")
                if len(words) < 3:
                    self.w.write(b"334 \r\n")
                    await self.w.drain()
                    self.in_auth = True
                    await self.readline()
                    if len(words) > 1 and words[1].upper() == "LOGIN":
                        self.w.write(b"334 UGFzc3dvcmQ6\r\n")
                        await self.w.drain()
                        await self.readline()
                    self.in_auth = False
                await self.send(text, b"235 2.7.0 authenticated\r\n")
            elif cmd == "MAIL":
                rule, _ = await self.send(text, b"250 2.1.0 ok\r\n")
                if rule is None or rule.get("reply", "250").startswith("250"):
                    env_from, rcpts = text[10:].strip(), []
            elif cmd == "RCPT":
                rule, _ = await self.send(text, b"250 2.1.5 ok\r\n")
                if rule is None or rule.get("reply", "250").startswith("250"):
                    rcpts.append(text[8:].strip())
            elif cmd == "DATA":
                ok = env_from is not None and rcpts
                rule, _ = await self.send(text, b"354 go ahead\r\n" if ok else
                                          b"503 5.5.1 no valid recipients\r\n")
                sent = b"354" if rule is None else b(rule.get("reply", "354"))
                if not ok or not sent.startswith(b"354"):
                    continue
                body = []
                while True:
                    ln = await self.r.readline()
                    if not ln:
                        raise ConnectionError("closed in DATA")
                    if ln in (b".\r\n", b".\n"):
                        break
                    body.append(ln[1:] if ln.startswith(b".") else ln)
                def accept(rule, full, sent, env_from=env_from, rcpts=rcpts):
                    # commit: the server queued it whatever the client saw (RFC 1047).
                    if (rule is not None and rule.get("commit")) or (full and sent.startswith(b"250")):
                        srv.report["accepted"].append(
                            {"from": env_from, "rcpts": rcpts,
                             "data": base64.b64encode(b"".join(body)).decode()})
                await self.send("@eom", b"250 2.0.0 queued\r\n", accept)
                env_from, rcpts = None, []
            elif cmd == "RSET":
                env_from, rcpts = None, []
                await self.send(text, b"250 2.0.0 ok\r\n")
            elif cmd == "NOOP":
                await self.send(text, b"250 2.0.0 ok\r\n")
            elif cmd == "QUIT":
                await self.send(text, b"221 2.0.0 bye\r\n")
                self.w.close()
                return
            else:
                await self.send(text, b"500 5.5.2 unknown command\r\n")


def main():
    if len(sys.argv) != 4:
        sys.stderr.write("usage: badserver.py SCENARIO.json PORTFILE REPORT.json\n")
        return 64
    with open(sys.argv[1]) as f:
        sc = json.load(f)
    srv = Server(sc, sys.argv[2], sys.argv[3])
    loop = asyncio.new_event_loop()
    task = loop.create_task(srv.serve())
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    loop.add_signal_handler(signal.SIGINT, task.cancel)
    try:
        loop.run_until_complete(task)
    except asyncio.CancelledError:
        pass
    finally:
        loop.close()  # now, not from a destructor at exit (a spurious traceback)
    srv.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())

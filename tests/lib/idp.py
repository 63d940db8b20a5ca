#!/usr/bin/python3
# mailmill - ISC licence, see LICENSE
"""A loopback OAuth 2.0 identity provider for the tests (HTTPS, stdlib only).

    idp.py serve DIR --cert CRT --key KEY [--client ID[:SECRET]]... [knob=value]...
    idp.py ctl DIR knob=value...      change knobs of the running server
    idp.py op DIR OP [ARG]            seed USER (prints a new refresh token),
                                      issue USER (prints a new access token: a
                                      token_command),
                                      revoke (every refresh token), expire
                                      (every access token issued so far), reset
                                      (the device counters and "polls", for the
                                      next sign-in)
    idp.py stats DIR [NAME]           the counters as JSON, or one counter's value
    idp.py secrets DIR                every token issued and every client secret,
                                      one a line (for grep -F -f: none may be in a log)

`serve` listens on 127.0.0.1 (a port the kernel picks, written to DIR/port
once it accepts connections; DIR/url holds https://localhost:PORT).  The other
verbs talk to it over the same HTTPS port and trust DIR/ca (a copy of the CA
named by --ca, default the directory of CRT's ca.crt).  So may a test with
curl, which starts much faster than Python: POST /control with a JSON body
{"knobs": {...}, "op": OP, "arg": ARG} or a form (op, arg, any other key a
knob); GET /stats (JSON), GET /stats/NAME (one counter, plain text), GET
/secrets.

Endpoints:
  POST /token       grant_type refresh_token (rotation: every use returns a new
                    refresh token and retires the old one; a retired or unknown
                    one is 400 invalid_grant), client_credentials (confidential
                    clients only; secret in the body or HTTP Basic), and
                    urn:ietf:params:oauth:grant-type:device_code (RFC 8628:
                    authorization_pending, slow_down, expired_token,
                    access_denied).  Answers as RFC 6749 section 5.
  POST /devicecode  RFC 8628 device authorization: device_code, user_code,
                    verification_uri, interval, expires_in.
  POST /introspect  RFC 7662 for Dovecot's oauth2 passdb: {"active": true,
                    "username": USER, "exp": T, "iat": T, "scope": S} or
                    {"active": false}.

Knobs (serve arguments or ctl):
  access_ttl=S       lifetime of an access token (expires_in and exp), default 3600
  token_size=N       length of an access token (random b64token characters); 0: about 40
  delay=S            the token and device endpoints wait S seconds before answering;
                     a request whose client left meanwhile is dropped unprocessed
                     (counted "abandoned"): a refresh token it carried stays valid
  down=1             the token and device endpoints answer 503 with an HTML page;
                     down=2: they close the connection without answering
  reject_access=1    introspection says every access token is inactive
  rotate=0           refresh keeps the same refresh token (default 1: rotation)
  device_user=U      the user a device sign-in is approved for (default user1)
  approve_after=N    the device code is approved at the Nth poll (default 1; -1 never)
  slow_down=N,M      the Nth, Mth poll answers slow_down
  deny=1             polls answer access_denied
  device_ttl=S       a device code expires after S seconds (default 600)
  interval=S         the interval announced (default 1)
  cc_user=U          the username of a client-credentials token (default user1)

Counters (stats): requests per endpoint ("token", "devicecode", "introspect"),
per grant ("grant:refresh_token", ...) and per outcome ("refresh_ok",
"refresh_retired" (a rotated-out token came back), "refresh_revoked" (one
revoked by op revoke came back), "refresh_unknown", "abandoned",
"invalid_client", "device_pending", "device_slow_down", "device_expired",
"device_denied", "device_ok", "device_too_fast" (a poll sooner than the
interval asked), "cc_ok", "introspect_active", "introspect_inactive"), plus
"polls" (seconds between device polls) and "scopes" (the scopes asked).
"""
import base64
import http.server
import json
import os
import secrets
import select
import socketserver
import ssl
import string
import sys
import threading
import time
import urllib.parse
import urllib.request

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
TOKEN_CHARS = string.ascii_letters + string.digits + "-._~"
KNOBS = {"access_ttl": 3600.0, "token_size": 0, "delay": 0.0, "down": 0,
         "reject_access": 0, "rotate": 1, "device_user": "user1", "approve_after": 1,
         "slow_down": "", "deny": 0, "device_ttl": 600.0, "interval": 1,
         "cc_user": "user1"}


def knob_value(name, text):
    if name not in KNOBS:
        raise ValueError("unknown knob %s" % name)
    kind = type(KNOBS[name])
    return kind(text) if kind is not str else text


class State:
    def __init__(self, clients, knobs):
        self.lock = threading.Lock()
        self.clients = clients          # id -> secret or None (public)
        self.knobs = dict(KNOBS)
        self.knobs.update(knobs)
        self.access = {}                # token -> {"user", "exp", "iat", "scope", "live"}
        self.refresh = {}               # token -> {"user", "client", "live"}
        self.devices = {}               # device_code -> {...}
        self.issued = []
        self.counters = {"polls": [], "scopes": []}

    def count(self, name):
        self.counters[name] = self.counters.get(name, 0) + 1

    def new_access(self, user, scope):
        size = int(self.knobs["token_size"])
        tok = "at-" + secrets.token_urlsafe(30)
        if size > len(tok):
            tok += "".join(secrets.choice(TOKEN_CHARS) for _ in range(size - len(tok)))
        now = time.time()
        ttl = float(self.knobs["access_ttl"])
        self.access[tok] = {"user": user, "iat": int(now), "exp": int(now + ttl),
                            "expf": now + ttl, "scope": scope, "live": True}
        self.issued.append(tok)
        return tok, ttl

    def new_refresh(self, user, client):
        tok = "rt-" + secrets.token_urlsafe(32)
        self.refresh[tok] = {"user": user, "client": client, "live": True}
        self.issued.append(tok)
        return tok


def form(handler):
    n = int(handler.headers.get("Content-Length") or 0)
    body = handler.rfile.read(n).decode("utf-8", "replace") if n else ""
    return {k: v[0] for k, v in urllib.parse.parse_qs(body, keep_blank_values=True).items()}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mailmill-test-idp/1"

    def log_message(self, fmt, *args):
        # Request lines only (no bodies: they carry the tokens).
        sys.stderr.write("idp: %s\n" % (fmt % args))

    def reply(self, code, obj, ctype="application/json", extra=None):
        data = (json.dumps(obj) if ctype == "application/json" else obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def error(self, code, err, desc):
        self.reply(code, {"error": err, "error_description": desc})

    def do_GET(self):
        st = self.server.state
        if self.path == "/stats":
            with st.lock:
                self.reply(200, st.counters)
        elif self.path.startswith("/stats/"):
            with st.lock:
                v = st.counters.get(self.path[7:], 0)
            self.reply(200, (json.dumps(v) if isinstance(v, list) else str(v)) + "\n",
                       "text/plain")
        elif self.path == "/secrets":
            with st.lock:
                lines = st.issued + [s for s in st.clients.values() if s]
            self.reply(200, "".join(x + "\n" for x in lines), "text/plain")
        else:
            self.reply(404, {"error": "not_found"})

    def do_POST(self):
        st = self.server.state
        path = self.path.split("?", 1)[0]
        f = form(self) if path != "/control" else None
        if path in ("/token", "/devicecode"):
            with st.lock:
                st.count(path[1:])
                delay, down = float(st.knobs["delay"]), int(st.knobs["down"])
            if delay > 0:
                time.sleep(delay)
                # Readable now means the client closed: it gave up waiting.
                if select.select([self.connection], [], [], 0)[0]:
                    with st.lock:
                        st.count("abandoned")
                    self.close_connection = True
                    return
            if down == 2:
                self.close_connection = True
                return
            if down:
                self.reply(503, "<html><body>Service Unavailable</body></html>", "text/html")
                return
        if path == "/token":
            self.token(st, f)
        elif path == "/devicecode":
            self.devicecode(st, f)
        elif path == "/introspect":
            self.introspect(st, f)
        elif path == "/control":
            self.control(st)
        else:
            self.reply(404, {"error": "not_found"})

    def client(self, st, f):
        """(client_id, authenticated) or None after answering invalid_client."""
        cid, sec = f.get("client_id"), f.get("client_secret")
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                u, p = base64.b64decode(auth[6:]).decode().split(":", 1)
                cid, sec = urllib.parse.unquote(u), urllib.parse.unquote(p)
            except Exception:
                pass
        if cid not in st.clients or (st.clients[cid] is not None and st.clients[cid] != sec):
            st.count("invalid_client")
            self.error(401, "invalid_client", "unknown client or wrong secret")
            return None
        return cid, st.clients[cid] is not None

    def answer_tokens(self, st, user, scope, refresh_for=None, old=None):
        at, ttl = st.new_access(user, scope)
        out = {"token_type": "Bearer", "access_token": at, "expires_in": int(ttl),
               "scope": scope}
        if refresh_for is not None:
            out["refresh_token"] = old if old and not int(st.knobs["rotate"]) \
                else st.new_refresh(user, refresh_for)
        self.reply(200, out)

    def token(self, st, f):
        with st.lock:
            grant = f.get("grant_type", "")
            st.count("grant:" + grant)
            if "scope" in f:
                st.counters["scopes"].append(f["scope"])
            c = self.client(st, f)
            if c is None:
                return
            cid, confidential = c
            scope = f.get("scope", "")
            if grant == "refresh_token":
                rt = st.refresh.get(f.get("refresh_token", ""))
                if rt is None or rt["client"] != cid:
                    st.count("refresh_unknown")
                    self.error(400, "invalid_grant", "AADSTS70000: unknown refresh token")
                elif rt.get("revoked"):
                    st.count("refresh_revoked")
                    self.error(400, "invalid_grant",
                               "AADSTS50173: the grant was revoked; sign in again")
                elif not rt["live"]:
                    st.count("refresh_retired")
                    self.error(400, "invalid_grant",
                               "AADSTS70000: the refresh token was revoked or already used")
                else:
                    st.count("refresh_ok")
                    if int(st.knobs["rotate"]):
                        rt["live"] = False
                    self.answer_tokens(st, rt["user"], scope, cid, f.get("refresh_token"))
            elif grant == "client_credentials":
                if not confidential:
                    st.count("invalid_client")
                    self.error(401, "invalid_client", "client_credentials needs a secret")
                    return
                st.count("cc_ok")
                self.answer_tokens(st, st.knobs["cc_user"], scope)
            elif grant == DEVICE_GRANT:
                self.device_poll(st, f, cid)
            else:
                self.error(400, "unsupported_grant_type", grant)

    def device_poll(self, st, f, cid):
        d = st.devices.get(f.get("device_code", ""))
        if d is None or d["client"] != cid:
            self.error(400, "invalid_grant", "unknown device code")
            return
        now = time.time()
        d["polls"] += 1
        if d["last"] is not None:
            gap = now - d["last"]
            st.counters["polls"].append(round(gap, 2))
            if gap < d["interval"] - 0.2:
                st.count("device_too_fast")
        d["last"] = now
        slow = [int(x) for x in str(st.knobs["slow_down"]).split(",") if x.strip()]
        after = int(st.knobs["approve_after"])
        if now > d["expires"]:
            st.count("device_expired")
            self.error(400, "expired_token", "the device code expired")
        elif int(st.knobs["deny"]):
            st.count("device_denied")
            self.error(400, "access_denied", "the user declined")
        elif d["polls"] in slow:
            st.count("device_slow_down")
            d["interval"] += 5  # what the client must now keep to (RFC 8628 3.5)
            self.error(400, "slow_down", "polling too fast")
        elif after < 0 or d["polls"] < after or d["done"]:
            st.count("device_pending")
            self.error(400, "authorization_pending", "waiting for the user")
        else:
            st.count("device_ok")
            d["done"] = True
            self.answer_tokens(st, st.knobs["device_user"], d["scope"], cid)

    def devicecode(self, st, f):
        with st.lock:
            c = self.client(st, f)
            if c is None:
                return
            if "scope" in f:
                st.counters["scopes"].append(f["scope"])
            code = "dc-" + secrets.token_urlsafe(24)
            user_code = "%04d-%04d" % (secrets.randbelow(10000), secrets.randbelow(10000))
            ttl, iv = float(st.knobs["device_ttl"]), int(st.knobs["interval"])
            st.devices[code] = {"client": c[0], "scope": f.get("scope", ""), "polls": 0,
                                "last": None, "interval": iv, "expires": time.time() + ttl,
                                "done": False}
            st.issued.append(code)
            port = self.server.server_address[1]
            self.reply(200, {"device_code": code, "user_code": user_code,
                             "verification_uri": "https://localhost:%d/device" % port,
                             "expires_in": int(ttl), "interval": iv,
                             "message": "To sign in, open https://localhost:%d/device and "
                                        "enter the code %s." % (port, user_code)})

    def introspect(self, st, f):
        with st.lock:
            st.count("introspect")
            a = st.access.get(f.get("token", ""))
            live = (a is not None and a["live"] and time.time() < a["expf"]
                    and not int(st.knobs["reject_access"]))
            if not live:
                st.count("introspect_inactive")
                self.reply(200, {"active": False})
                return
            st.count("introspect_active")
            self.reply(200, {"active": True, "username": a["user"], "exp": a["exp"],
                             "iat": a["iat"], "scope": a["scope"], "token_type": "Bearer"})

    def control(self, st):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        if self.headers.get("Content-Type", "").startswith("application/json"):
            req = json.loads(body or b"{}")
        else:
            f = {k: v[0] for k, v in
                 urllib.parse.parse_qs(body.decode(), keep_blank_values=True).items()}
            req = {"op": f.pop("op", None), "arg": f.pop("arg", None), "form": True,
                   "knobs": f}
        with st.lock:
            try:
                for k, v in req.get("knobs", {}).items():
                    st.knobs[k] = knob_value(k, str(v))
            except ValueError as e:
                self.reply(400, {"error": str(e)})
                return
            op, out = req.get("op"), {}
            if op == "seed":
                out["refresh_token"] = st.new_refresh(req["arg"], req.get("client") or
                                                      next(iter(st.clients)))
            elif op == "issue":
                st.count("issue")
                out["access_token"] = st.new_access(req["arg"], "")[0]
            elif op == "revoke":
                for r in st.refresh.values():
                    r["revoked"] = True
            elif op == "expire":
                for a in st.access.values():
                    a["live"] = False
            elif op == "reset":
                st.counters = {k: v for k, v in st.counters.items()
                               if not k.startswith("device")}
                st.counters["polls"] = []
            if req.get("form"):
                self.reply(200, "".join(v + "\n" for v in out.values()), "text/plain")
            else:
                self.reply(200, out)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def call(d, method, path, body=None):
    with open(os.path.join(d, "url")) as f:
        url = f.read().strip()
    ctx = ssl.create_default_context(cafile=os.path.join(d, "ca"))
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        return r.read().decode()


def serve(argv):
    d = argv[0]
    clients, knobs, cert = {}, {}, {}
    i = 1
    while i < len(argv):
        a = argv[i]
        if a in ("--cert", "--key", "--ca", "--client"):
            v = argv[i + 1]
            i += 2
            if a == "--client":
                cid, _, sec = v.partition(":")
                clients[cid] = sec or None
            else:
                cert[a[2:]] = v
            continue
        k, _, v = a.partition("=")
        knobs[k] = knob_value(k, v)
        i += 1
    if not clients:
        clients = {"mailmill-test": None}
    os.makedirs(d, exist_ok=True)
    ca = cert.get("ca") or os.path.join(os.path.dirname(cert["cert"]), "ca.crt")
    with open(ca) as src, open(os.path.join(d, "ca"), "w") as dst:
        dst.write(src.read())
    srv = Server(("127.0.0.1", 0), Handler)
    srv.state = State(clients, knobs)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert["cert"], cert["key"])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    port = srv.server_address[1]
    for name, text in (("url", "https://localhost:%d\n" % port), ("port", "%d\n" % port)):
        with open(os.path.join(d, name + ".tmp"), "w") as f:
            f.write(text)
        os.replace(os.path.join(d, name + ".tmp"), os.path.join(d, name))
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def main():
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__)
        return 64
    verb, d, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
    if verb == "serve":
        return serve(sys.argv[2:])
    if verb == "ctl":
        knobs = dict(a.partition("=")[::2] for a in rest)
        call(d, "POST", "/control", {"knobs": knobs})
    elif verb == "op":
        out = json.loads(call(d, "POST", "/control",
                              {"op": rest[0], "arg": rest[1] if len(rest) > 1 else None}))
        for k in ("refresh_token", "access_token"):
            if k in out:
                print(out[k])
    elif verb == "stats":
        st = json.loads(call(d, "GET", "/stats"))
        if rest:
            v = st.get(rest[0], 0)
            print(json.dumps(v) if isinstance(v, list) else v)
        else:
            print(json.dumps(st, indent=1))
    elif verb == "secrets":
        sys.stdout.write(call(d, "GET", "/secrets"))
    else:
        sys.stderr.write(__doc__)
        return 64
    return 0


if __name__ == "__main__":
    sys.exit(main())

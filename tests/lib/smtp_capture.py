#!/usr/bin/python3
# mailmill - ISC licence, see LICENSE
"""A capturing SMTP server for the integration tests (aiosmtpd, loopback).

Writes its port to --port-file once listening.  Every accepted message is
saved in --outdir as NNNN.eml (the bytes as received after the final dot,
CRLF line ends, dot-unstuffed) and NNNN.json (envelope and options).  Every
new connection appends a line to OUTDIR/connections.

Failure knobs, read on each transaction so a test can flip them between runs:
  --refuse ADDR        550 5.1.1 to RCPT TO:<ADDR> (repeatable)
  OUTDIR/tempfail      exists: 451 4.3.0 after the final dot
  OUTDIR/permfail      exists: 554 5.7.1 after the final dot
Without --cert/--key there is no STARTTLS.
"""
import argparse, asyncio, json, os, signal, socket, ssl, threading
from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, outdir, refuse):
        self.outdir, self.refuse, self.lock, self.seq = outdir, refuse, threading.Lock(), 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        # Once per client connection: its EHLO before any TLS (a STARTTLS
        # client says EHLO again over TLS; aiosmtpd's own start-up probe never
        # says EHLO).  Implicit TLS is not used by these tests.
        session.host_name = hostname
        if session.ssl is None:
            with open(os.path.join(self.outdir, "connections"), "a") as f:
                f.write("connection\n")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse:
            return "550 5.1.1 <%s>: no such user here" % address
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if os.path.exists(os.path.join(self.outdir, "tempfail")):
            return "451 4.3.0 try again later (test)"
        if os.path.exists(os.path.join(self.outdir, "permfail")):
            return "554 5.7.1 message refused (test)"
        with self.lock:
            self.seq += 1
            n = self.seq
        base = os.path.join(self.outdir, "%04d" % n)
        meta = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                "mail_options": envelope.mail_options, "rcpt_options": envelope.rcpt_options,
                "tls": session.ssl is not None}
        for suffix, data in ((".eml", envelope.original_content),
                             (".json", json.dumps(meta).encode())):
            with open(base + suffix + ".tmp", "wb") as f:
                f.write(data)
            os.rename(base + suffix + ".tmp", base + suffix)
        # A file "slow" holding seconds: the reply to the end of data comes
        # that late (a message in flight while its sender is paused).
        try:
            with open(os.path.join(self.outdir, "slow")) as f:
                await asyncio.sleep(float(f.read().strip() or "0"))
        except (OSError, ValueError):
            pass
        return "250 2.0.0 OK saved as %04d" % n


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--refuse", action="append", default=[])
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    open(os.path.join(a.outdir, "connections"), "a").close()
    kw = dict(decode_data=False, data_size_limit=0, hostname="127.0.0.1",
              server_hostname="capture.localhost")
    if a.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)
        kw["tls_context"] = ctx
    handler = Handler(a.outdir, [r.lower() for r in a.refuse])
    ctrl = None
    for _ in range(20):
        try:
            ctrl = Controller(handler, port=free_port(), **kw)
            ctrl.start()
            break
        except OSError:
            ctrl = None
    if ctrl is None:
        raise SystemExit("no free port")
    with open(a.port_file + ".tmp", "w") as f:
        f.write("%d\n" % ctrl.port)
    os.rename(a.port_file + ".tmp", a.port_file)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    ctrl.stop()


if __name__ == "__main__":
    main()

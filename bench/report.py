#!/usr/bin/python3
# mailmill - ISC licence, see LICENSE
"""Median table and mailmill's ratios from bench/run's results.tsv.

usage: report.py RESULTS.tsv VERSIONS.txt  (Markdown on stdout)
       report.py --autoreply AUTOREPLY.tsv VERSIONS.txt
A cell with any run that failed its checks is FAILED and gets no figures:
a fast wrong answer is not a result.
"""
import csv
import statistics
import sys

PEERS = ("mpop", "fdm", "fetchmail", "getmail")


def autoreply():
    rows = list(csv.DictReader(open(sys.argv[2]), delimiter="\t"))
    cells = {}
    for r in rows:
        cells.setdefault(r["row"], []).append(r)
    what = {"raw": "raw pipelined client (RETR+DELE, nothing stored)",
            "mailmill": "fetch -> autoreply -> smtp-sink -> DELE (--once)",
            "queue": "fetch -> autoreply -> reply queued -> DELE (--once, no relay: the account run alone)",
            "flush": "mailmilld --flush: queued replies, one relay connection",
            "smtp-source": "smtp-source -c -d -l SIZE -m N -s 1 -> the same smtp-sink"}
    rate = {}
    print("| row | what | msg/s | CPU s | peak RSS MB | runs | status |")
    print("|---|---|--:|--:|--:|--:|---|")
    for name, rs in cells.items():
        bad = [r["status"] for r in rs if r["status"] != "ok"]
        if bad:
            print("| %s | %s | | | | %d | FAILED: %s |" % (name, what.get(name, ""), len(rs),
                                                        "; ".join(bad)))
            continue
        wall = statistics.median(float(r["wall_s"]) for r in rs)
        cpu = statistics.median(float(r["user_s"]) + float(r["sys_s"]) for r in rs)
        rss = statistics.median(int(r["maxrss_kb"]) for r in rs) / 1024
        rate[name] = int(rs[0]["messages"]) / wall
        print("| %s | %s | %.0f | %.2f | %.1f | %d | ok |" % (name, what.get(name, ""),
                                                          rate[name], cpu, rss, len(rs)))
    print()
    r = lambda a, b: "%.2f" % (rate[a] / rate[b]) if a in rate and b in rate else "-"
    print("autoreply pipeline ÷ raw client: %s (the account run alone, replies queued: %s); "
          "outbox flush ÷ smtp-source: %s" % (
              r("mailmill", "raw"), r("queue", "raw"), r("flush", "smtp-source")))
    print()
    for line in open(sys.argv[3]):
        print("- " + line.rstrip())


def main():
    if sys.argv[1] == "--autoreply":
        return autoreply()
    rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
    cells = {}
    for r in rows:
        cells.setdefault((r["workload"] + ":" + r["n"], r["transport"], r["tool"]), []).append(r)
    out = {}
    print("| workload | transport | tool | msg/s | MB/s | CPU s | server CPU s | peak RSS MB "
          "| runs | status |")
    print("|---|---|---|--:|--:|--:|--:|--:|--:|---|")
    for (wl, tr, tool), rs in cells.items():
        bad = [r["status"] for r in rs if r["status"] != "ok"]
        if bad:
            st = bad[0] if bad[0] == "not built" or bad[0].startswith("n/a") \
                else "FAILED: " + "; ".join(bad)
            print("| %s | %s | %s | | | | | | %d | %s |" % (wl, tr, tool, len(rs), st))
            continue
        n = int(rs[0]["n"])
        wall = statistics.median(float(r["wall_s"]) for r in rs)
        cpu = statistics.median(float(r["user_s"]) + float(r["sys_s"]) for r in rs)
        srv = [float(r["server_cpu_s"]) for r in rs if r.get("server_cpu_s")]
        rss = statistics.median(int(r["maxrss_kb"]) for r in rs) / 1024
        rate = n / wall
        out[(wl, tr, tool)] = rate
        print("| %s | %s | %s | %.0f | %.1f | %.2f | %s | %.1f | %d | ok |" % (
            wl, tr, tool, rate, int(rs[0]["wire_bytes"]) / 1e6 / wall, cpu,
            "%.2f" % statistics.median(srv) if srv else "", rss, len(rs)))

    def ratio(a, b):
        return "%.2f" % (a / b) if a and b else "-"

    def paired(wl, tr, tool, ref):
        """The median over rounds of ref's wall time / tool's, with their range:
        the two ran one after the other (bench/run is run-major)."""
        a = {r["run"]: float(r["wall_s"]) for r in cells.get((wl, tr, tool), [])
             if r["status"] == "ok"}
        b = {r["run"]: float(r["wall_s"]) for r in cells.get((wl, tr, ref), [])
             if r["status"] == "ok"}
        q = sorted(b[k] / a[k] for k in a if k in b and a[k] > 0)
        if not q or not out.get((wl, tr, tool)) or not out.get((wl, tr, ref)):
            return "-"
        return "%.2f (%.2f-%.2f)" % (statistics.median(q), q[0], q[-1])

    print()
    print("| workload | transport | mailmill ÷ fastest peer | ÷ raw | ÷ durable-write limit "
          "| ÷ durable, paired runs | mbox ÷ fetchmail | mbox ÷ fastest peer | mbox ÷ raw |")
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|")
    for wl, tr in dict.fromkeys((k[0], k[1]) for k in cells):
        g = lambda t: out.get((wl, tr, t))
        peers = [(g(p), p) for p in PEERS if g(p)]
        best, name = max(peers) if peers else (None, "")
        mm, mb = g("mailmill"), g("mailmill-mbox")
        print("| %s | %s | %s%s | %s | %s | %s | %s | %s | %s |" % (
            wl, tr, ratio(mm, best), " (%s)" % name if name else "", ratio(mm, g("raw")),
            ratio(mm, g("durable")), paired(wl, tr, "mailmill", "durable"),
            ratio(mb, g("fetchmail")), ratio(mb, best), ratio(mb, g("raw"))))
    print()
    print("msg/s and MB/s from the median wall time; MB = 10^6 bytes on the POP3 wire "
          "(IMAP sends the same bytes less the dot-stuffing). "
          "Transports imap and imaps: after = delete (UID STORE \\Deleted + UID EXPUNGE; "
          "fetchmail, fdm and getmail: \\Deleted + EXPUNGE); imap-move, imaps-move: after = "
          "move to Processed (UID MOVE; getmail: move_on_delete, COPY + \\Deleted). "
          "CPU s = user + system of the tool and its children; server CPU s = Dovecot's "
          "processes that ended during the run (its imap process for the connection); "
          "peak RSS = /usr/bin/time %M. "
          "raw = pipelined client (rawpop, rawimap) writing to /dev/null; durable = the same "
          "client writing a Maildir file per message, one syncfs + fsync of new/ before QUIT "
          "(IMAP: before the messages leave the folder). Paired: the median over rounds of "
          "the durable client's wall time / mailmill's in the same round (the tools run "
          "one after the other in each round), and its range.")
    print()
    for line in open(sys.argv[2]):
        print("- " + line.rstrip())


if __name__ == "__main__":
    main()

#!/usr/bin/python3
# mailmill - ISC licence, see LICENSE
"""Per-function instruction counts of a bench/callgrind run, two builds side by side.

    bench/cgfuncs.py [--inclusive] [--match REGEX] [--top N] BEFORE_DIR AFTER_DIR

Each DIR is one case's BENCH_DIR/out/NAME-CASE: the callgrind files of the
parent, its dump parts and its forked children, summed per function.
callgrind_annotate cannot be used on them one by one: the parts dumped
before a fork, and the children, show all of their cost under
__libc_start_main in its flat view.  Self cost is what a function ran
itself; --inclusive adds what it called (a recursive call counted once).
Needs the files uncompressed (bench/callgrind writes them so).
"""
import argparse
import collections
import glob
import re

NAME = re.compile(r"^\(\d+\) ?")


def profile(d, inclusive):
    cost = collections.Counter()
    for path in glob.glob(d + "/callgrind.out.*"):
        fn = callee = None
        in_call = False
        with open(path, errors="replace") as f:
            for line in f:
                if line.startswith("fn="):
                    fn, callee, in_call = NAME.sub("", line[3:].strip()), None, False
                elif line.startswith("cfn="):
                    callee = NAME.sub("", line[4:].strip())
                elif line.startswith("calls="):
                    in_call = True
                elif fn is not None and (line[:1].isdigit() or line[:1] in "+-*"):
                    parts = line.split()
                    if len(parts) < 2:
                        continue
                    if in_call:
                        # the cost of the call just named: inclusive only
                        in_call = False
                        if inclusive and callee != fn:
                            cost[fn] += int(parts[1])
                    else:
                        cost[fn] += int(parts[1])
    return cost


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--inclusive", action="store_true")
    ap.add_argument("--match", default=None, help="only functions matching REGEX")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("before")
    ap.add_argument("after")
    a = ap.parse_args()
    b, c = profile(a.before, a.inclusive), profile(a.after, a.inclusive)
    if not a.inclusive:
        print("%14d %14d %+14d  total" % (sum(b.values()), sum(c.values()),
                                          sum(c.values()) - sum(b.values())))
    pat = re.compile(a.match) if a.match else None
    names = [k for k in set(b) | set(c) if pat is None or pat.search(k)]
    for k in sorted(names, key=lambda k: -abs(c[k] - b[k]))[:a.top]:
        print("%14d %14d %+14d  %s" % (b[k], c[k], c[k] - b[k], k))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
# mailmill - ISC licence, see LICENSE
"""Strict check of a Prometheus text-format file (exposition format 0.0.4).
usage: promparse.py FILE [NAME{labels} ...]
Exits 1 naming the line if the file does not parse: every sample line must
be NAME{label="value",...} VALUE, names and label names valid, label values
properly escaped, values numbers, a family's TYPE before its samples and at
most once, no sample twice.  Then prints the value of each NAME{labels}
asked for (labels in any order; "-" when absent), one per line; with
NAME only, the sum over every sample of that name.
"""
import math
import re
import sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"^(%s)(\{(?:%s=%s(?:,%s=%s)*,?)?\})? (\S+)( -?\d+)?$"
                    % (NAME, LABEL, VALUE, LABEL, VALUE))
PAIR = re.compile(r"(%s)=(%s)" % (LABEL, VALUE))
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def die(n, line, why):
    print("line %d: %s: %r" % (n, why, line), file=sys.stderr)
    sys.exit(1)


def parse(path):
    samples, typed, seen_samples = {}, {}, set()
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text and not text.endswith("\n"):
        die(0, text[-40:], "no final newline")
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] == "TYPE":
                if len(parts) != 4 or parts[3] not in TYPES or not re.fullmatch(NAME, parts[2]):
                    die(n, line, "bad TYPE")
                if parts[2] in typed or parts[2] in seen_samples:
                    die(n, line, "TYPE repeated or after samples")
                typed[parts[2]] = parts[3]
            elif len(parts) >= 3 and parts[1] == "HELP":
                if not re.fullmatch(NAME, parts[2]):
                    die(n, line, "bad HELP")
            continue
        if line.strip() == "":
            continue
        m = SAMPLE.match(line)
        if not m:
            die(n, line, "not a sample")
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        try:
            v = float(value)
        except ValueError:
            die(n, line, "value is not a number")
        if typed.get(name) == "counter" and (v < 0 or math.isnan(v)):
            die(n, line, "negative counter")
        pairs = tuple(sorted(PAIR.findall(labels)))
        if len(set(k for k, _ in pairs)) != len(pairs):
            die(n, line, "label repeated")
        key = (name, pairs)
        if key in samples:
            die(n, line, "sample repeated")
        samples[key] = v
        seen_samples.add(name)
    return samples


def main():
    samples = parse(sys.argv[1])
    for q in sys.argv[2:]:
        m = re.fullmatch(r"(%s)(\{.*\})?" % NAME, q)
        if not m:
            print("-")
            continue
        if m.group(2) is None:
            vals = [v for (n, _), v in samples.items() if n == m.group(1)]
            print("%g" % sum(vals) if vals else "-")
            continue
        want = tuple(sorted(PAIR.findall(m.group(2))))
        v = samples.get((m.group(1), want))
        print("-" if v is None else "%g" % v)


if __name__ == "__main__":
    main()

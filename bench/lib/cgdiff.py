#!/usr/bin/env python3
"""Instructions and simulated branch mispredictions per function, run B minus run A.

    bench/lib/cgdiff.py A.cg B.cg DIVISOR [N]

A.cg, B.cg: callgrind outputs (valgrind --tool=callgrind --branch-sim=yes), DIVISOR: what to
divide by (packets, or the frames that differ between A and B), N: rows (default 30). See
docs/benchmarking.md, "Deterministic counts"."""
import collections, re, subprocess, sys
def load(f):
    out = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", "--auto=no", f],
                         capture_output=True, text=True).stdout
    d = collections.defaultdict(lambda: [0, 0, 0])
    tot = None
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+([\d,.]+)(?: \([^)]*\))?\s+([\d,.]+)(?: \([^)]*\))?\s+([\d,.]+)(?: \([^)]*\))?\s+([\d,.]+)(?: \([^)]*\))?\s+(.*)$", line)
        if not m:
            continue
        num = lambda s: 0 if s == "." else int(s.replace(",", ""))
        ir, bc, bcm, bi, bim, fn = num(m[1]), num(m[2]), num(m[3]), num(m[4]), num(m[5]), m[6]
        if "PROGRAM TOTALS" in fn:
            tot = (ir, bcm + bim)
            continue
        fn = fn.split(":", 1)[1] if ":" in fn else fn
        fn = re.sub(r" \[.*\]$", "", fn)
        d[fn][0] += ir
        d[fn][1] += bcm + bim
    return d, tot
a, ta = load(sys.argv[1]); b, tb = load(sys.argv[2]); div = float(sys.argv[3])
n = int(sys.argv[4]) if len(sys.argv) > 4 else 30
print(f"TOTAL  Ir {(tb[0]-ta[0])/div:9.1f}  mispred {(tb[1]-ta[1])/div:6.2f}")
rows = sorted(((b[k][0]-a[k][0], b[k][1]-a[k][1], k) for k in set(a)|set(b)), key=lambda r: -abs(r[0]) - 20*abs(r[1]))
for ir, bm, k in rows[:n]:
    print(f"{ir/div:9.1f} {bm/div:7.2f}  {k[:150]}")

#!/usr/bin/env python3
"""Compare two bench/run.sh result files and print the regressions.

    bench/compare.py OLD.json NEW.json [--threshold PCT]

For every (harness, system, frame size) in both files: the median Mpps of NEW against OLD,
and for pollfwd each stage's cycles per packet. A change counts only when it is larger than
the threshold (default 5 %) AND larger than the spread (max-min)/median of either run, so the
noise of a busy machine is not reported as a regression. Exit status: 0 no regression,
1 at least one regression, 2 bad input.
"""

import argparse
import json
import sys

ORDER_H = ["inproc", "memif"]
ORDER_S = ["testpmd-io", "l3fwd-lpm", "pollfwd-xconnect", "pollfwd-forward", "pollfwd-chain"]
ORDER_Z = ["64", "128", "256", "512", "1024", "1280", "1518", "imix"]


def rank(lst, v):
    return lst.index(v) if v in lst else len(lst)


def load(path):
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"compare: {path}: {e}")
    if doc.get("schema") != 1 or "results" not in doc:
        sys.exit(f"compare: {path}: not a bench/run.sh result file (schema 1)")
    return {(r["harness"], r["system"], r["size"]): r for r in doc["results"]
            if "median_mpps" in r}, doc


def verdict(delta_pct, band, higher_is_better=True):
    d = delta_pct if higher_is_better else -delta_pct
    if d < -band:
        return "REGRESSION"
    if d > band:
        return "improved"
    return "~"


def compare(old, new, threshold):
    """Returns (lines, regressions, improvements, unchanged)."""
    lines = []
    reg = imp = same = 0
    keys = sorted(set(old) | set(new),
                  key=lambda k: (rank(ORDER_H, k[0]), rank(ORDER_S, k[1]), rank(ORDER_Z, k[2])))
    lines.append(f"{'harness':<7} {'system':<17} {'size':>5} {'old Mpps':>9} {'new Mpps':>9} "
                 f"{'change':>8} {'noise':>6}  verdict")
    for k in keys:
        h, s, z = k
        if k not in new:
            lines.append(f"{h:<7} {s:<17} {z:>5} {old[k]['median_mpps']:>9.3f} {'-':>9} "
                         f"{'':>8} {'':>6}  missing in new")
            continue
        if k not in old:
            lines.append(f"{h:<7} {s:<17} {z:>5} {'-':>9} {new[k]['median_mpps']:>9.3f} "
                         f"{'':>8} {'':>6}  new")
            continue
        a, b = old[k], new[k]
        band = max(threshold, a.get("spread_pct", 0.0), b.get("spread_pct", 0.0))
        delta = 100.0 * (b["median_mpps"] - a["median_mpps"]) / a["median_mpps"] \
            if a["median_mpps"] > 0 else 0.0
        v = verdict(delta, band)
        reg += v == "REGRESSION"
        imp += v == "improved"
        same += v == "~"
        lines.append(f"{h:<7} {s:<17} {z:>5} {a['median_mpps']:>9.3f} {b['median_mpps']:>9.3f} "
                     f"{delta:>+7.1f}% {band:>5.1f}%  {v}")
        pa, pb = a.get("pollfwd"), b.get("pollfwd")
        if pa and pb:
            for stage, ca in pa["stage_cycles_per_packet"].items():
                cb = pb["stage_cycles_per_packet"].get(stage)
                if cb is None or ca <= 0:
                    continue
                d = 100.0 * (cb - ca) / ca
                sv = verdict(d, band, higher_is_better=False)
                if sv != "~":
                    reg += sv == "REGRESSION"
                    imp += sv == "improved"
                    lines.append(f"{'':<7} {'  stage ' + stage:<17} {'':>5} {ca:>9.1f} {cb:>9.1f} "
                                 f"{d:>+7.1f}% {band:>5.1f}%  {sv} (cycles/packet)")
    return lines, reg, imp, same


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--threshold", type=float, default=5.0,
                    help="smallest change reported, percent (default 5)")
    a = ap.parse_args()
    old, od = load(a.old)
    new, nd = load(a.new)
    print(f"old: {a.old} ({od['host'].get('pollfwd_commit', '?')}, {od.get('started', '?')}, "
          f"load {od['host'].get('loadavg_start', ['?'])[0]})")
    print(f"new: {a.new} ({nd['host'].get('pollfwd_commit', '?')}, {nd.get('started', '?')}, "
          f"load {nd['host'].get('loadavg_start', ['?'])[0]})")
    lines, reg, imp, same = compare(old, new, a.threshold)
    print("\n".join(lines))
    print(f"{reg} regression(s), {imp} improvement(s), {same} unchanged "
          f"(threshold {a.threshold:g} % or the runs' spread, whichever is larger)")
    return 1 if reg else 0


if __name__ == "__main__":
    sys.exit(main())

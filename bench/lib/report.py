#!/usr/bin/env python3
"""Markdown tables of a bench/run.sh result file (for docs/performance.md).

    python3 bench/lib/report.py bench/results/X.json
"""

import json
import sys

LABELS = {
    "testpmd-io": "testpmd io",
    "l3fwd-lpm": "l3fwd lpm",
    "pollfwd-xconnect": "pollfwd xconnect",
    "pollfwd-forward": "pollfwd forward",
    "pollfwd-chain": "pollfwd full chain",
}
TITLES = {
    "inproc": "Harness 1, in-process (net_pcap infinite_rx source -> net_null sink)",
    "memif": ("Harness 2, two processes (testpmd flowgen <-> memif <-> system; IMIX: testpmd io "
              "from a pcap), what came back"),
}


def cell(r, key="median_mpps"):
    if not r or key not in r:
        return "-"
    if key == "median_mpps":
        return f"{r[key]:.2f} ({r['min_mpps']:.1f}-{r['max_mpps']:.1f})"
    return f"{r[key]:.2f}"


def tables(doc):
    p = doc["params"]
    out = []
    for h in p["harnesses"]:
        rows = [r for r in doc["results"] if r["harness"] == h]
        sizes = [s for s in p["sizes"] if any(r["size"] == s and "median_mpps" in r for r in rows)]
        if not sizes:
            continue
        find = lambda s, z: next((r for r in rows if r["system"] == s and r["size"] == z), None)  # noqa: E731
        out.append(f"**{TITLES[h]}**: median Mpps (min-max) of {p['trials']} x {p['seconds']:g} s")
        out.append("")
        out.append("| system | " + " | ".join(sizes) + " |")
        out.append("|---|" + "---:|" * len(sizes))
        for s in p["systems"]:
            out.append(f"| {LABELS[s]} | " + " | ".join(cell(find(s, z)) for z in sizes) + " |")
        if any("median_mpps_per_cpu" in r for r in rows):
            out.append("")
            out.append("Mpps / CPU share of the worker thread in the window (estimate for a CPU of "
                       "its own; the share in parentheses):")
            out.append("")
            out.append("| system | " + " | ".join(sizes) + " |")
            out.append("|---|" + "---:|" * len(sizes))
            for s in p["systems"]:
                cells = []
                for z in sizes:
                    r = find(s, z)
                    cells.append(f"{r['median_mpps_per_cpu']:.1f} ({r['worker_cpu_pct']:.0f}%)"
                                 if r and "median_mpps_per_cpu" in r else "-")
                out.append(f"| {LABELS[s]} | " + " | ".join(cells) + " |")
        pf = [s for s in p["systems"] if s.startswith("pollfwd")]
        if pf:
            out.append("")
            out.append("pollfwd over the same windows (medians): cycles/packet per stage, whole loop, "
                       "rx-to-tx dwell p50/p99/p99.9 (us):")
            out.append("")
            out.append("| system | size | stages (cycles/packet) | loop | dwell p50/p99/p99.9 | drops |")
            out.append("|---|---:|---|---:|---|---:|")
            for s in pf:
                for z in sizes:
                    r = find(s, z)
                    if not r or "pollfwd" not in r:
                        continue
                    q = r["pollfwd"]
                    st = ", ".join(f"{k} {v:.0f}" for k, v in q["stage_cycles_per_packet"].items())
                    out.append(f"| {LABELS[s]} | {z} | {st} | {q['loop_cycles_per_packet']:.0f} | "
                               f"{q['dwell_p50_us']:g}/{q['dwell_p99_us']:g}/{q['dwell_p999_us']:g} | "
                               f"{q['drops']} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(tables(json.load(open(sys.argv[1]))))

#!/usr/bin/env python3
"""Mpps by frame size per system, one panel per harness, as a standalone SVG (no dependencies).

    python3 bench/lib/plot.py bench/results/X.json [out.svg]
"""

import json
import sys
from pathlib import Path
from xml.sax.saxutils import escape

COLORS = {
    "testpmd-io": "#7f7f7f",
    "l3fwd-lpm": "#1f77b4",
    "pollfwd-xconnect": "#d62728",
    "pollfwd-forward": "#2ca02c",
    "pollfwd-chain": "#9467bd",
}
DASH = {"testpmd-io": "6,4", "l3fwd-lpm": "2,3"}
LABELS = {
    "testpmd-io": "testpmd io (I/O floor)",
    "l3fwd-lpm": "l3fwd lpm",
    "pollfwd-xconnect": "pollfwd xconnect",
    "pollfwd-forward": "pollfwd forward",
    "pollfwd-chain": "pollfwd classify+nat+policer+forward",
}
TITLES = {
    "inproc": "In-process: net_pcap infinite_rx -> net_null sink",
    "memif": "Two processes: testpmd flowgen (IMIX: io from pcap) <-> memif <-> system",
}


def nice_max(v):
    """A round axis maximum >= v."""
    if v <= 0:
        return 1.0
    for step in (1, 2, 2.5, 5, 10, 20, 25, 50, 100):
        top = step * (int(v / step) + 1)
        if top / step <= 8:
            return float(top)
    return float(v * 1.1)


def panel(doc, harness, x0, y0, w, h):
    sizes = doc["params"]["sizes"]
    rows = [r for r in doc["results"] if r["harness"] == harness and "median_mpps" in r]
    if not rows:
        return []
    cats = [s for s in sizes if any(r["size"] == s for r in rows)]
    ymax = nice_max(max(r["max_mpps"] for r in rows))
    px = lambda i: x0 + 50 + (w - 70) * (i + 0.5) / len(cats)  # noqa: E731
    py = lambda v: y0 + h - 40 - (h - 70) * v / ymax  # noqa: E731
    out = [
        f'<text x="{x0 + w / 2}" y="{y0 + 16}" text-anchor="middle" font-weight="bold">'
        f"{escape(TITLES.get(harness, harness))}</text>",
        f'<line x1="{x0 + 50}" y1="{py(0)}" x2="{x0 + w - 20}" y2="{py(0)}" stroke="black"/>',
        f'<line x1="{x0 + 50}" y1="{py(0)}" x2="{x0 + 50}" y2="{py(ymax)}" stroke="black"/>',
        f'<text x="{x0 + 12}" y="{y0 + h / 2}" transform="rotate(-90 {x0 + 12} {y0 + h / 2})" '
        f'text-anchor="middle">Mpps (median)</text>',
        f'<text x="{x0 + w / 2}" y="{y0 + h - 6}" text-anchor="middle">frame size (bytes, incl. FCS)</text>',
    ]
    for k in range(6):
        v = ymax * k / 5
        out.append(f'<line x1="{x0 + 50}" y1="{py(v):.1f}" x2="{x0 + w - 20}" y2="{py(v):.1f}" '
                   f'stroke="#dddddd"/>')
        out.append(f'<text x="{x0 + 45}" y="{py(v) + 4:.1f}" text-anchor="end" font-size="11">'
                   f"{v:g}</text>")
    for i, s in enumerate(cats):
        out.append(f'<text x="{px(i):.1f}" y="{py(0) + 16:.1f}" text-anchor="middle" '
                   f'font-size="11">{escape(s.upper() if s == "imix" else s)}</text>')
    for system in doc["params"]["systems"]:
        pts = []
        for i, s in enumerate(cats):
            r = next((r for r in rows if r["system"] == system and r["size"] == s), None)
            if r:
                pts.append((px(i), py(r["median_mpps"]), py(r["min_mpps"]), py(r["max_mpps"])))
        if not pts:
            continue
        c = COLORS.get(system, "black")
        dash = f' stroke-dasharray="{DASH[system]}"' if system in DASH else ""
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="2"{dash}/>')
        for x, y, lo, hi in pts:
            out.append(f'<line x1="{x:.1f}" y1="{lo:.1f}" x2="{x:.1f}" y2="{hi:.1f}" stroke="{c}"/>')
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{c}"/>')
    return out


def write_svg(doc, path):
    harnesses = [h for h in doc["params"]["harnesses"]
                 if any(r["harness"] == h and "median_mpps" in r for r in doc["results"])]
    pw, ph = 560, 360
    width = max(1, len(harnesses)) * pw + 20
    legend_y = ph + 40
    height = legend_y + 22 * ((len(doc["params"]["systems"]) + 1) // 2) + 40
    host = doc.get("host", {})
    p = doc["params"]
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="13">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="20" font-size="15" font-weight="bold">pollfwd side-by-side benchmark '
        f'({escape(doc.get("started", ""))})</text>',
    ]
    for i, h in enumerate(harnesses):
        out += panel(doc, h, 10 + i * pw, 30, pw, ph)
    for i, system in enumerate(p["systems"]):
        x = 20 + (i % 2) * 380
        y = legend_y + 22 * (i // 2)
        c = COLORS.get(system, "black")
        dash = f' stroke-dasharray="{DASH[system]}"' if system in DASH else ""
        out.append(f'<line x1="{x}" y1="{y}" x2="{x + 30}" y2="{y}" stroke="{c}" '
                   f'stroke-width="2"{dash}/>')
        out.append(f'<text x="{x + 38}" y="{y + 4}">{escape(LABELS.get(system, system))}</text>')
    note = (f"one worker lcore each, burst {p['burst']}, {p['trials']} trial(s) x {p['seconds']:g} s, "
            f"bars = min..max; {host.get('cpus', '?')} CPUs {host.get('cpu', '')}; "
            f"DPDK {host.get('dpdk', '?')}; pollfwd {host.get('pollfwd_commit', '?')}")
    out.append(f'<text x="10" y="{height - 12}" font-size="11">{escape(note)}</text>')
    out.append("</svg>")
    Path(path).write_text("\n".join(out) + "\n")


def write_chain_svg(doc, path):
    """bench/chain.sh's plot: Mpps per system with its ratio to l3fwd-lpm (left), and pollfwd's
    cycles/packet per stage of the full chain next to issue 14's targets (right)."""
    res = [r for r in doc["results"] if "median_mpps" in r and r["system"] != "nat-rate"]
    figs = doc.get("figures", {})
    width, height = 1080, 420
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="20" font-size="15" font-weight="bold">pollfwd full chain vs DPDK '
        f'({escape(doc.get("started", ""))}): one worker, 64 B</text>',
    ]
    x0, y0, w, h = 270, 40, 320, 300
    ymax = nice_max(max((r["max_mpps"] for r in res), default=1))
    bh = h / max(1, len(res))
    for k in range(6):
        v = ymax * k / 5
        x = x0 + w * v / ymax
        out.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y0 + h}" stroke="#dddddd"/>')
        out.append(f'<text x="{x:.1f}" y="{y0 + h + 14}" text-anchor="middle" font-size="11">'
                   f"{v:g}</text>")
    out.append(f'<text x="{x0 + w / 2}" y="{y0 + h + 30}" text-anchor="middle">Mpps (median, '
               f"bars = min..max)</text>")
    for i, r in enumerate(res):
        y = y0 + i * bh + bh * 0.15
        c = "#1f77b4" if r["system"] in ("l3fwd-lpm", "testpmd-io") else "#9467bd"
        ratio = figs.get(f"ratio.{r['system']}")
        out.append(f'<text x="{x0 - 6}" y="{y + bh * 0.45:.1f}" text-anchor="end">'
                   f"{escape(r.get('label', r['system']))}</text>")
        out.append(f'<rect x="{x0}" y="{y:.1f}" width="{w * r["median_mpps"] / ymax:.1f}" '
                   f'height="{bh * 0.7:.1f}" fill="{c}"/>')
        lo, hi = x0 + w * r["min_mpps"] / ymax, x0 + w * r["max_mpps"] / ymax
        out.append(f'<line x1="{lo:.1f}" y1="{y + bh * 0.35:.1f}" x2="{hi:.1f}" '
                   f'y2="{y + bh * 0.35:.1f}" stroke="black"/>')
        txt = f"{r['median_mpps']:.2f}" + (f" ({ratio:.2f}x)" if ratio else "")
        out.append(f'<text x="{max(hi, x0 + w * r["median_mpps"] / ymax) + 4:.1f}" '
                   f'y="{y + bh * 0.45:.1f}" font-size="11">{escape(txt)}</text>')
    # stage cycles vs targets
    stages = [("classify", 25, "chain-64k"), ("nat", 50, "chain-64k"), ("nat", 70, "chain-1m"),
              ("policer", 15, "chain-64k"), ("forward", 15, "chain-64k")]
    vals = [(f"{s} ({'1M' if sysn == 'chain-1m' else '64k'})", figs.get(f"stage.{sysn}.{s}"), t)
            for s, t, sysn in stages]
    x1, w1 = 790, 250
    cmax = nice_max(max([v for _, v, _ in vals if v is not None] + [t for _, _, t in vals]))
    bh1 = h / len(vals)
    for k in range(6):
        v = cmax * k / 5
        x = x1 + w1 * v / cmax
        out.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y0 + h}" stroke="#dddddd"/>')
        out.append(f'<text x="{x:.1f}" y="{y0 + h + 14}" text-anchor="middle" font-size="11">'
                   f"{v:g}</text>")
    out.append(f'<text x="{x1 + w1 / 2}" y="{y0 + h + 30}" text-anchor="middle">full chain: '
               f"cycles/packet per stage (| = target)</text>")
    for i, (name, v, t) in enumerate(vals):
        y = y0 + i * bh1 + bh1 * 0.2
        out.append(f'<text x="{x1 - 6}" y="{y + bh1 * 0.4:.1f}" text-anchor="end">'
                   f"{escape(name)}</text>")
        if v is not None:
            c = "#2ca02c" if v <= t else "#d62728"
            out.append(f'<rect x="{x1}" y="{y:.1f}" width="{w1 * min(v, cmax) / cmax:.1f}" '
                       f'height="{bh1 * 0.6:.1f}" fill="{c}"/>')
            out.append(f'<text x="{x1 + w1 * min(v, cmax) / cmax + 4:.1f}" y="{y + bh1 * 0.4:.1f}" '
                       f'font-size="11">{v:.1f}</text>')
        xt = x1 + w1 * t / cmax
        out.append(f'<line x1="{xt:.1f}" y1="{y - 4:.1f}" x2="{xt:.1f}" y2="{y + bh1 * 0.6 + 4:.1f}" '
                   f'stroke="black" stroke-width="2"/>')
    host = doc.get("host", {})
    p = doc["params"]
    note = (f"{p['trials']} trial(s) x {p['seconds']:g} s; {host.get('cpus', '?')} CPUs "
            f"{host.get('cpu', '')}; DPDK {host.get('dpdk', '?')}; pollfwd "
            f"{host.get('pollfwd_commit', '?')}")
    out.append(f'<text x="10" y="{height - 12}" font-size="11">{escape(note)}</text>')
    out.append("</svg>")
    Path(path).write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    src = Path(sys.argv[1])
    dst = Path(sys.argv[2]) if len(sys.argv) == 3 else src.with_suffix(".svg")
    d = json.loads(src.read_text())
    (write_chain_svg if d.get("kind") == "chain" else write_svg)(d, dst)
    print(dst)

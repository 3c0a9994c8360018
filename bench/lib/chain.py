#!/usr/bin/env python3
"""The full chain at line rate (issue 14): every figure of its targets in one run.

`bench/chain.sh` builds what is needed and runs this script; see docs/benchmarking.md.

Harness (the suite's harness 1, bench/lib/bench.py): one process per trial, one worker lcore,
burst 32, 64-byte UDP frames from a net_pcap `infinite_rx=1` source on port 0 to a net_null
`no-rx=1` sink on port 1; counted: the sink's transmitted packets (DPDK telemetry, once a
second, after a warm-up). Systems, interleaved trial by trial:

  l3fwd-lpm     DPDK's l3fwd, LPM mode (its built-in routes), 1,024 flows   (the reference)
  testpmd-io    dpdk-testpmd io, 1,024 flows                                (the I/O floor)
  forward       pollfwd ["forward"], 10k routes, 1,024 flows (the same pcap as l3fwd's)
  nat-64k       pollfwd ["nat", "forward"], 65,536 flows = sessions
  chain-64k     pollfwd ["classify", "nat", "policer", "forward"], 65,536 flows = sessions
  chain-1m      the same chain, 1,048,576 flows = sessions
  nat-rate      pollfwd ["nat", "forward"] with max_sessions 65,536 and LRU reclaim on the
                1,048,576-flow pcap: every packet is a new flow (the table fills, then every
                packet reclaims the least recently used session): sessions created per second
                from NAT's `sessions_created` counter, sampled once a second
  nonat         pollfwd ["classify", "policer", "forward"], the 65,536-flow pcap (the chain
                without NAT, the reference of nonat-2w)
  nonat-2w, chain-64k-2w
                nonat and chain-64k on two workers: the source port has two RX queues (the
                pcap's frames dealt alternately to two files, as RSS spreads flows without
                regard to NAT's owner of a host), worker 1 on CPU 1, worker 2 on CPU 0 beside
                the management thread (`share_main_cpu`: two CPUs here); figure: each worker's
                cycles per packet it sends, against the one-worker system's loop

The chain: 1,000 ACL rules (the suite's seeded set, none matching this traffic, default
permit), NAT44 (pool 198.51.100.32/27, endpoint-independent filtering), one trTCM meter whose
rates no traffic reaches (nothing dropped), forward with 10k /24 routes and a static
neighbour. pollfwd's own `runtime` gives each stage's cycles per packet over the window;
`nat.summary` the sessions and table bytes per session. Each figure is printed next to its
target with met / not met; results JSON and an SVG go to bench/results/chain-<timestamp>.*.
"""

import argparse
import datetime
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))
import bench  # noqa: E402  (bench/lib/bench.py: processes, telemetry, control socket, lock)
import plot  # noqa: E402

SYSTEMS = ["l3fwd-lpm", "testpmd-io", "forward", "nat-64k", "chain-64k", "chain-1m", "nat-rate",
           "nonat", "nonat-2w", "chain-64k-2w"]
LABELS = {
    "l3fwd-lpm": "DPDK l3fwd-lpm (C)",
    "testpmd-io": "testpmd io (C, I/O floor)",
    "forward": "pollfwd forward (10k routes)",
    "nat-64k": "pollfwd nat + forward, 64k sessions",
    "chain-64k": "pollfwd full chain, 64k sessions",
    "chain-1m": "pollfwd full chain, 1M sessions",
    "nat-rate": "pollfwd nat + forward, new flow every packet",
    "nonat": "pollfwd classify + policer + forward",
    "nonat-2w": "pollfwd classify + policer + forward, 2 workers",
    "chain-64k-2w": "pollfwd full chain, 64k sessions, 2 workers",
}
FLOWS = {"forward": 1024, "nat-64k": 65536, "chain-64k": 65536, "chain-1m": 1 << 20,
         "nat-rate": 1 << 20, "nonat": 65536, "nonat-2w": 65536, "chain-64k-2w": 65536}
STAGES = {"forward": ["forward"], "nat-64k": ["nat", "forward"], "nat-rate": ["nat", "forward"],
          "chain-64k": ["classify", "nat", "policer", "forward"],
          "chain-1m": ["classify", "nat", "policer", "forward"],
          "nonat": ["classify", "policer", "forward"],
          "nonat-2w": ["classify", "policer", "forward"],
          "chain-64k-2w": ["classify", "nat", "policer", "forward"]}
# Two-worker systems and the one-worker system each is compared with.
TWO_WORKERS = {"nonat-2w": "nonat", "chain-64k-2w": "chain-64k"}
ROUTES = 10000
RATE_TABLE = 65536  # nat-rate's max_sessions

# Targets of issue 14: (figure key, label, comparison, value).
TARGETS = [
    ("ratio.forward", "forward alone / l3fwd-lpm", ">=", 1.0),
    ("ratio.chain-64k", "full chain 64k / l3fwd-lpm", ">=", 0.35),
    ("ratio.chain-1m", "full chain 1M / l3fwd-lpm", ">=", 0.25),
    ("stage.chain-64k.classify", "classify, 1k rules (cycles/packet)", "<=", 25),
    ("stage.chain-64k.nat", "NAT, 64k sessions (cycles/packet)", "<=", 50),
    ("stage.chain-1m.nat", "NAT, 1M sessions (cycles/packet)", "<=", 70),
    ("stage.chain-64k.policer", "policer, one trTCM (cycles/packet)", "<=", 15),
    ("stage.chain-64k.forward", "forward in the chain (cycles/packet)", "<=", 15),
    ("nat.bytes_per_session_1m", "NAT table bytes per session at 1M", "<=", 96),
    ("nat.new_sessions_per_s", "NAT new sessions/s per core", ">=", 5e6),
    ("workers.chain-64k-2w", "full chain, 2 workers: per-worker cyc/pkt x 1 worker", "<=", 1.10),
]


def log(msg=""):
    print(msg, flush=True)


def ip(a):
    return ".".join(str((a >> k) & 255) for k in (24, 16, 8, 0))


# --------------------------------------------------------------------------------------------
# Setup: the suite's Setup (pcaps, ACL rules, testpmd/l3fwd command lines) plus pollfwd configs


class ChainSetup(bench.Setup):
    def __init__(self, args, work):
        super().__init__(args, work)
        base = 0xC6120000  # 198.18.0.0: 10k /24s from there (198.18.1.0/24 is l3fwd's traffic)
        self.routes = [f'  {{ prefix = "{ip(base + (i << 8))}/24", via = "203.0.113.2" }},'
                       for i in range(ROUTES)]

    def flows_pcap(self, n):
        """n distinct UDP flows from 4,096 inside hosts 10.8.x.y to 192.0.2.1:9, 60-byte
        frames in shuffled order (appliance/examples/nat_bench.rs `pcap`, as bench/nat.sh)."""
        path = self.work / f"flows-{n}.pcap"
        if not path.exists():
            subprocess.run([self.a.nat_bench, "pcap", str(path), str(n)], check=True,
                           stdout=subprocess.DEVNULL)
        return path

    def split_pcap(self, path, k):
        """`path`'s frames dealt in turn to k files (one per RX queue; a frame is a flow)."""
        outs = [self.work / f"{path.stem}-q{i}of{k}.pcap" for i in range(k)]
        if not all(o.exists() for o in outs):
            d = path.read_bytes()
            bufs = [bytearray(d[:24]) for _ in range(k)]
            off, i = 24, 0
            while off < len(d):
                incl = int.from_bytes(d[off + 8:off + 12], "little")
                bufs[i % k] += d[off:off + 16 + incl]
                off += 16 + incl
                i += 1
            for o, b in zip(outs, bufs):
                o.write_bytes(bytes(b))
        return outs

    def chain_config(self, system):
        flows = FLOWS[system]
        two = system in TWO_WORKERS
        if system == "forward":
            pcap = self.pcap("64", bench.FLOWS)  # l3fwd's and testpmd's pcap
            mempool = ["[mempool]", "mbufs = 16383"]
        else:
            pcap = self.flows_pcap(flows)
            # net_pcap keeps the whole file in mbufs: small ones (the frames are 60 bytes)
            mempool = ["[mempool]", f"mbufs = {(flows + 16384 * (1 + two)) | 8191}",
                       "data_room = 384"]
        src = f"rx_pcap={pcap}"
        if two:
            src = ",".join(f"rx_pcap={q}" for q in self.split_pcap(pcap, 2))
        stages = "stages = [" + ", ".join(f'"{s}"' for s in STAGES[system]) + "]"
        out = ["[eal]", "main_lcore = 0", "main_cpu = 0", 'file_prefix = "pfbench-chain"',
               *(["share_main_cpu = true"] if two else []),
               *mempool, "[runtime]", f"burst = {bench.BURST}",
               "[[port]]", 'name = "p0"', f'device = "net_pcap0,{src},infinite_rx=1"',
               'address = "10.8.0.1/16"', *(["rx_queues = 2"] if two else []),
               "[[port]]", 'name = "p1"', f'device = "{self.sink()}"',
               'address = "203.0.113.1/24"', *(["rx_queues = 2"] if two else []),
               "[[lcore]]", "id = 1", "cpu = 1", 'rx = [{ port = "p0" }, { port = "p1" }]',
               stages]
        if two:
            out += ["[[lcore]]", "id = 2", "cpu = 0",
                    'rx = [{ port = "p0", queue = 1 }, { port = "p1", queue = 1 }]', stages]
        out += ["[forward]", "routes = [", *self.routes,
               '  { prefix = "192.0.2.0/24", via = "203.0.113.2" },', "]",
               'neighbors = [{ address = "203.0.113.2", mac = "02:00:00:00:00:02", port = "p1" }]']
        if "classify" in STAGES[system]:
            out += ["[classify]", 'default = "permit"',
                    f'rules_file = "{self.work / "acl-1k.toml"}"']
        if "nat" in STAGES[system]:
            table = RATE_TABLE if system == "nat-rate" else flows
            out += ["[nat]", 'inside = ["p0"]', 'outside = ["p1"]', 'pool = ["198.51.100.32/27"]',
                    'filtering = "endpoint-independent"', f"max_sessions = {table}", "seed = 5"]
            if system == "nat-rate":
                out.append("lru_reclaim = true")
        if "policer" in STAGES[system]:
            out += ["[policer]", "[[policer.policers]]", 'name = "bench"', 'kind = "trtcm"',
                    'units = "bytes"', "cir = 100_000_000_000", "pir = 100_000_000_000",
                    "cbs = 10_000_000", "pbs = 10_000_000"]
        out += ["[control]", f'socket = "{self.work / "ctl-chain.sock"}"']
        path = self.work / f"{system}.toml"
        path.write_text("\n".join(out) + "\n")
        return path

    def check(self, system):
        """None if the config passes `pollfwd --check`, else the reason."""
        r = subprocess.run([self.pollfwd, "--config", str(self.chain_config(system)), "--check"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            msg = (r.stderr or r.stdout).strip().splitlines()
            return msg[-1] if msg else f"--check exited {r.returncode}"
        return None


# --------------------------------------------------------------------------------------------
# One trial


def nat_counters(ctl):
    s = bench.Control(ctl).call("nat.summary")
    created = sum(w["counters"].get("sessions_created", 0) for w in s["workers"])
    return s, created


def trial(setup, system, idx):
    """One run of `system`: Mpps over the window, pollfwd's runtime figures, NAT summary."""
    a = setup.a
    if system in ("l3fwd-lpm", "testpmd-io"):
        return bench.trial_inproc(setup, system, "64", idx)
    cfg = setup.chain_config(system)
    ctl = setup.work / "ctl-chain.sock"
    cmd = [setup.pollfwd, "--config", str(cfg), "--summary", "json",
           "--duration", str(a.warmup + a.seconds + 60)]
    logf = setup.work / f"log-{system}-{idx}.txt"
    has_nat = "nat" in STAGES[system]
    with bench.BusyLock():
        load = os.getloadavg()[0]
        proc = bench.Proc(system, cmd, logf, a.warmup + a.seconds + 90)
        tel = bench.Telemetry("pfbench-chain")
        try:
            tel.connect(proc.p, timeout=60)  # a 1M-frame pcap takes a while to load
            count = lambda: tel.total([0, 1], "opackets")  # noqa: E731
            bench.wait_flowing(count, proc, timeout=60)
            time.sleep(a.warmup)
            bench.pollfwd_window_start(ctl)
            cpu0 = bench.thread_times(proc)

            def read():
                v = {"out": count()}
                if system == "nat-rate":
                    v["created"] = nat_counters(ctl)[1]
                return v

            samples = bench.sample_window(read, a.seconds)
            cpu = bench.thread_cpu_pct(cpu0, bench.thread_times(proc),
                                       samples[-1][0] - samples[0][0])
            pf = bench.pollfwd_window_end(ctl)
            nat = nat_counters(ctl)[0] if has_nat else None
        except Exception as e:
            raise RuntimeError(f"{system}: {e}\n{proc.tail()}") from None
        finally:
            tel.close()
            rc = proc.stop()
    mpps, per_s = bench.rates(samples, "out")
    r = {"mpps": round(mpps, 4), "per_second_mpps": [round(x, 4) for x in per_s],
         "loadavg_1m": round(load, 2), "exit_code": rc, "thread_cpu_pct": cpu, "pollfwd": pf}
    if nat:
        r["nat"] = {"sessions": nat["sessions"], "capacity": nat["capacity"],
                    "bytes_per_session": round(nat["bytes_per_session"], 1),
                    "table_bytes": nat["table_bytes"]}
    if system == "nat-rate":
        rate, per_s_created = bench.rates(samples, "created")
        r["new_sessions_per_s"] = round(rate * 1e6)
        r["per_second_new_sessions"] = [round(x * 1e6) for x in per_s_created]
    return r


# --------------------------------------------------------------------------------------------
# Figures, targets, table (pure: unit-tested in test_bench.py)


def figures(results):
    """{figure key: value} from the summarised results {system: summary}."""
    f = {}
    for s, r in results.items():
        if "median_mpps" not in r:
            continue
        f[f"mpps.{s}"] = r["median_mpps"]
        if "median_mpps_per_cpu" in r:
            f[f"mpps_per_cpu.{s}"] = r["median_mpps_per_cpu"]
        for st, c in r.get("pollfwd", {}).get("stage_cycles_per_packet", {}).items():
            f[f"stage.{s}.{st}"] = c
    base = f.get("mpps.l3fwd-lpm")
    if base:
        for s in results:
            if s != "l3fwd-lpm" and f"mpps.{s}" in f and s != "nat-rate":
                f[f"ratio.{s}"] = round(f[f"mpps.{s}"] / base, 3)
    if "nat" in results.get("chain-1m", {}):
        f["nat.bytes_per_session_1m"] = results["chain-1m"]["nat"]["bytes_per_session"]
    if "new_sessions_per_s" in results.get("nat-rate", {}):
        f["nat.new_sessions_per_s"] = results["nat-rate"]["new_sessions_per_s"]
    for s, one in TWO_WORKERS.items():
        ws = results.get(s, {}).get("pollfwd", {}).get("workers")
        if not ws:
            continue
        per = [w["loop_cycles_per_packet"] for w in ws]
        f[f"worker_cycles.{s}"] = per
        f[f"handoff_share.{s}"] = round(
            sum(w["handoff_out"] for w in ws) / max(1, sum(w["tx_packets"] for w in ws)), 3)
        base = results.get(one, {}).get("pollfwd", {}).get("loop_cycles_per_packet")
        if base:
            f[f"workers.{s}"] = round(statistics.mean(per) / base, 3)
    return f


def verdicts(figs):
    """[(key, label, op, target, value or None, 'met' / 'not met' / 'not measured')]."""
    out = []
    for key, label, op, target in TARGETS:
        v = figs.get(key)
        if v is None:
            out.append((key, label, op, target, None, "not measured"))
            continue
        ok = v >= target if op == ">=" else v <= target
        out.append((key, label, op, target, v, "met" if ok else "not met"))
    return out


def summarize_system(trials, system):
    s = bench.summarize(trials, system)
    nats = [t["nat"] for t in trials if t.get("nat")]
    if nats:
        s["nat"] = {"sessions": max(n["sessions"] for n in nats), "capacity": nats[0]["capacity"],
                    "bytes_per_session": statistics.median(n["bytes_per_session"] for n in nats),
                    "table_bytes": nats[0]["table_bytes"]}
    rates = [t["new_sessions_per_s"] for t in trials if "new_sessions_per_s" in t]
    if rates:
        s["new_sessions_per_s"] = round(statistics.median(rates))
    return s


def fmt(v, op=None):
    if v is None:
        return "-"
    if abs(v) >= 1e5:
        return f"{v / 1e6:.2f} M"
    return f"{v:g}" if isinstance(v, int) else f"{v:.2f}"


def table_lines(doc):
    res = {r["system"]: r for r in doc["results"]}
    figs = doc["figures"]
    p = doc["params"]
    lines = [f"issue 14 harness: 1 worker, burst {p['burst']}, 64 B UDP, net_pcap infinite_rx -> "
             f"net_null sink; {p['trials']} trial(s) x {p['seconds']:g} s (medians; spread = "
             "(max-min)/median; per CPU = Mpps / the worker's CPU share)",
             f"  {'system':<46}{'Mpps':>8}{'spread':>8}{'per CPU':>9}{'x l3fwd':>9}"]
    for s in p["systems"]:
        r = res.get(s, {})
        if "median_mpps" not in r:
            lines.append(f"  {LABELS[s]:<46}{r.get('error', 'not run')[:60]}")
            continue
        ratio = figs.get(f"ratio.{s}", 1.0 if s == "l3fwd-lpm" else None)
        pc = r.get("median_mpps_per_cpu")
        lines.append(f"  {LABELS[s]:<46}{r['median_mpps']:>8.2f}{r['spread_pct']:>7.0f}%"
                     f"{(f'{pc:.2f}' if pc else '-'):>9}{(f'{ratio:.2f}' if ratio else '-'):>9}")
    lines.append("  pollfwd runtime over the window: cycles/packet per stage, whole loop")
    for s in p["systems"]:
        q = res.get(s, {}).get("pollfwd")
        if q:
            st = " ".join(f"{k} {v:.1f}" for k, v in q["stage_cycles_per_packet"].items())
            lines.append(f"    {LABELS[s]:<44} {st:<48} loop {q['loop_cycles_per_packet']:.1f}"
                         + (f"  drops {q['drops']}" if q["drops"] else ""))
    for s in p["systems"]:
        n = res.get(s, {}).get("nat")
        if n:
            lines.append(f"  NAT {LABELS[s]}: {n['sessions']} sessions of {n['capacity']}, "
                         f"{n['bytes_per_session']:.1f} bytes/session in the session table "
                         f"({n['table_bytes'] / max(1, n['capacity']):.1f} with the port and "
                         "fragment tables)")
    if "new_sessions_per_s" in res.get("nat-rate", {}):
        lines.append(f"  NAT new-session rate: {res['nat-rate']['new_sessions_per_s'] / 1e6:.2f} M "
                     f"sessions/s on one core (table of {RATE_TABLE} full, LRU reclaim: every "
                     "packet creates a session and reclaims one)")
    lines.append("  targets (issue 14):")
    for _, label, op, target, v, verdict in verdicts(figs):
        lines.append(f"    {label:<42} {fmt(v):>9}  target {op} {fmt(target):<7} {verdict}")
    for s, one in TWO_WORKERS.items():
        per = figs.get(f"worker_cycles.{s}")
        if per is None:
            continue
        x = figs.get(f"workers.{s}")
        lines.append(f"  {LABELS[s]}: per-worker cycles/packet "
                     + ", ".join(f"{c:.1f}" for c in per)
                     + (f" = {x:.2f} x {LABELS[one]}'s loop" if x else "")
                     + f"; {100 * figs[f'handoff_share.{s}']:.0f} % of the packets handed to the "
                     "other worker (NAT's owner of the inside host)")
    return lines


def markdown(doc):
    """docs/performance.md's tables of a result file (`--report FILE --markdown`)."""
    res = {r["system"]: r for r in doc["results"]}
    figs = doc["figures"]
    out = ["| system | Mpps (min-max) | per CPU | x l3fwd-lpm | cycles/packet in the stages | loop |",
           "|---|---:|---:|---:|---|---:|"]
    for s in doc["params"]["systems"]:
        r = res.get(s, {})
        if "median_mpps" not in r:
            continue
        ratio = figs.get(f"ratio.{s}", 1.0 if s == "l3fwd-lpm" else None)
        q = r.get("pollfwd")
        st = ", ".join(f"{k} {v:.0f}" for k, v in q["stage_cycles_per_packet"].items()) if q else ""
        pc = r.get("median_mpps_per_cpu")
        out.append(f"| {LABELS[s]} | {r['median_mpps']:.2f} ({r['min_mpps']:.1f}-{r['max_mpps']:.1f}) | "
                   f"{f'{pc:.2f}' if pc else '-'} | {f'{ratio:.2f}' if ratio else '-'} | {st} | "
                   f"{q['loop_cycles_per_packet']:.0f} |" if q else
                   f"| {LABELS[s]} | {r['median_mpps']:.2f} ({r['min_mpps']:.1f}-{r['max_mpps']:.1f}) | "
                   f"{f'{pc:.2f}' if pc else '-'} | {f'{ratio:.2f}' if ratio else '-'} | | |")
    out += ["", "| target (issue 14) | measured | verdict |", "|---|---:|---|"]
    for _, label, op, target, v, verdict in verdicts(figs):
        out.append(f"| {label} {op} {fmt(target)} | {fmt(v)} | {verdict} |")
    return "\n".join(out)


def host_info():
    return bench.host_info()


def main():
    signal.signal(signal.SIGTERM, bench.on_sigterm)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 trial of 2 s per system")
    ap.add_argument("--trials", type=int)
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--out", help="result JSON (default bench/results/chain-<timestamp>.json)")
    ap.add_argument("--report", metavar="FILE.json", help="no run: print the table of a result file")
    ap.add_argument("--markdown", action="store_true", help="with --report: markdown tables")
    ap.add_argument("--pollfwd")
    ap.add_argument("--pollfwdctl")
    ap.add_argument("--l3fwd")
    ap.add_argument("--nat-bench", dest="nat_bench")
    a = ap.parse_args()
    if a.report:
        doc = json.loads(Path(a.report).read_text())
        if a.markdown:
            log(markdown(doc))
            return 0
        for line in table_lines(doc):
            log(line)
        return 0
    if not (a.pollfwd and a.pollfwdctl and a.l3fwd and a.nat_bench):
        ap.error("--pollfwd, --pollfwdctl, --l3fwd and --nat-bench are required (bench/chain.sh)")
    a.trials = a.trials or (1 if a.quick else 3)
    a.seconds = a.seconds or (2.0 if a.quick else 5.0)
    systems = a.systems.replace(",", " ").split()
    for s in systems:
        if s not in SYSTEMS:
            ap.error(f"unknown system {s!r} ({', '.join(SYSTEMS)})")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    info = host_info()
    out = Path(a.out) if a.out else REPO / "bench" / "results" / f"chain-{stamp}.json"
    work = Path(f"/tmp/pfbench-chain-{os.getpid()}")
    work.mkdir(parents=True, exist_ok=True)
    setup = ChainSetup(a, work)
    errors = {}
    for s in systems:
        if s in STAGES:
            why = setup.check(s)
            if why:
                errors[s] = f"skipped: {why}"
                log(f"skipped: {LABELS[s]}: {why}")
    log(f"chain bench: {len(systems)} systems, {a.trials} trial(s) x {a.seconds:g} s "
        f"(+{a.warmup:g} s warm-up); work dir {work}")
    trials = {s: [] for s in systems}
    for t in range(1, a.trials + 1):
        for s in systems:
            if s in errors:
                continue
            try:
                r = trial(setup, s, t)
            except Exception as e:
                errors[s] = str(e).splitlines()[0]
                log(f"  trial {t} {LABELS[s]:<46}: ERROR {e}")
                continue
            trials[s].append(r)
            extra = ""
            if r.get("pollfwd"):
                extra += f"  loop {r['pollfwd']['loop_cycles_per_packet']:.0f} cyc/pkt"
            if r.get("nat"):
                extra += f"  sessions {r['nat']['sessions']}"
            if "new_sessions_per_s" in r:
                extra += f"  new sessions {r['new_sessions_per_s'] / 1e6:.2f} M/s"
            log(f"  trial {t} {LABELS[s]:<46}: {r['mpps']:7.3f} Mpps{extra}  "
                f"[load {r['loadavg_1m']:.1f}]")
    results = []
    summ = {}
    for s in systems:
        r = {"system": s, "label": LABELS[s]}
        if trials[s]:
            r.update(summarize_system(trials[s], s))
            summ[s] = r
        if s in errors:
            r["error"] = errors[s]
        r["trials"] = trials[s]
        results.append(r)
    info["loadavg_end"] = list(os.getloadavg())
    figs = figures(summ)
    doc = {"schema": 1, "kind": "chain", "started": stamp, "host": info,
           "params": {"trials": a.trials, "seconds": a.seconds, "warmup": a.warmup,
                      "burst": bench.BURST, "frame": 64, "acl_rules": bench.ACL_RULES,
                      "routes": ROUTES, "flows": {s: FLOWS.get(s, bench.FLOWS) for s in systems},
                      "rate_table": RATE_TABLE, "systems": systems, "quick": a.quick},
           "results": results, "figures": figs,
           "targets": [{"figure": k, "label": lb, "op": op, "target": tg, "value": v,
                        "verdict": vd} for k, lb, op, tg, v, vd in verdicts(figs)]}
    for f in work.glob("*.pcap"):
        f.unlink()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    svg = out.with_suffix(".svg")
    plot.write_chain_svg(doc, svg)
    log()
    for line in table_lines(doc):
        log(line)
    log()
    log(f"results: {out}")
    log(f"plot:    {svg}")
    log(f"logs:    {work}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Unit tests of the benchmark tooling that needs no DPDK: result summaries, rate arithmetic,
the regression comparison, the SVG plot, and the pollfwd configs the suite writes (checked
with `pollfwd --check`, which starts no EAL; needs the debug binaries: scripts/test.sh builds
them first). Run: python3 -m unittest discover -s bench/lib
"""

import json
import os
import subprocess
import sys
import tempfile
import types
import unittest
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import bench  # noqa: E402
import chain  # noqa: E402
import compare  # noqa: E402
import plot  # noqa: E402
import report  # noqa: E402


def result(h, s, z, med, spread=2.0, lo=None, hi=None, pollfwd=None):
    r = {"harness": h, "system": s, "size": z, "median_mpps": med,
         "min_mpps": lo if lo is not None else med * 0.99,
         "max_mpps": hi if hi is not None else med * 1.01, "spread_pct": spread, "trials": []}
    if pollfwd:
        r["pollfwd"] = pollfwd
    return r


def doc(results, systems=None, sizes=None):
    return {"schema": 1, "started": "20260101-000000",
            "host": {"pollfwd_commit": "abc", "loadavg_start": [0.1], "cpus": 2, "cpu": "x",
                     "dpdk": "22.11"},
            "params": {"sizes": sizes or ["64", "1518", "imix"], "trials": 3, "seconds": 5,
                       "burst": 32, "harnesses": ["inproc", "memif"],
                       "systems": systems or ["testpmd-io", "pollfwd-xconnect"]},
            "results": results}


class Arithmetic(unittest.TestCase):
    def test_rates_over_the_window(self):
        samples = [(10.0, {"out": 0}), (11.0, {"out": 2_000_000}), (12.0, {"out": 5_000_000})]
        mpps, per_s = bench.rates(samples, "out")
        self.assertAlmostEqual(mpps, 2.5)
        self.assertEqual([round(x, 6) for x in per_s], [2.0, 3.0])

    def test_summary_median_spread_and_pollfwd(self):
        pf = lambda c: {"stage_cycles_per_packet": {"xconnect": c}, "loop_cycles_per_packet": c * 10,  # noqa: E731
                        "dwell_p50_us": 0.4, "dwell_p99_us": 0.8, "dwell_p999_us": 1.6,
                        "drops": 0, "busy_pct": 100.0}
        trials = [{"mpps": 10.0, "pollfwd": pf(7.0)}, {"mpps": 12.0, "pollfwd": pf(6.0)},
                  {"mpps": 11.0, "pollfwd": pf(8.0)}]
        s = bench.summarize(trials)
        self.assertEqual(s["median_mpps"], 11.0)
        self.assertEqual((s["min_mpps"], s["max_mpps"]), (10.0, 12.0))
        self.assertEqual(s["spread_pct"], 18.2)
        self.assertEqual(s["pollfwd"]["stage_cycles_per_packet"], {"xconnect": 7.0})
        self.assertEqual(s["pollfwd"]["loop_cycles_per_packet"], 70.0)
        self.assertNotIn("worker_cpu_pct", s)  # no thread figures: no CPU share
        self.assertNotIn("workers", s["pollfwd"])  # one worker: no per-worker figures
        # Two workers: each worker's figures, the median over trials.
        w = lambda c, h: {"loop_cycles_per_packet": c, "tx_packets": 100, "handoff_in": h,  # noqa: E731
                          "handoff_out": h}
        for t, (a, b) in zip(trials, [(300.0, 310.0), (320.0, 330.0), (310.0, 350.0)]):
            t["pollfwd"]["workers"] = [w(a, 10), w(b, 20)]
        s = bench.summarize(trials)
        self.assertEqual([x["loop_cycles_per_packet"] for x in s["pollfwd"]["workers"]],
                         [310.0, 330.0])
        self.assertEqual([x["handoff_out"] for x in s["pollfwd"]["workers"]], [10, 20])

    def test_cpu_share_normalisation(self):
        trials = [{"mpps": 10.0, "thread_cpu_pct": {"lcore-worker-1": 50.0, "pollfwd": 1.0}},
                  {"mpps": 18.0, "thread_cpu_pct": {"lcore-worker-1": 90.0}},
                  {"mpps": 20.0, "thread_cpu_pct": {"lcore-worker-1": 100.0}}]
        s = bench.summarize(trials, "pollfwd-xconnect")
        self.assertEqual(s["worker_cpu_pct"], 90.0)
        self.assertEqual(s["median_mpps_per_cpu"], 20.0)
        # l3fwd's only lcore is its main thread
        s = bench.summarize([{"mpps": 8.0, "thread_cpu_pct": {"l3fwd": 80.0}}], "l3fwd-lpm")
        self.assertEqual(s["median_mpps_per_cpu"], 10.0)
        self.assertFalse(bench.is_worker_thread("pollfwd-xconnect", "pollfwd"))
        self.assertTrue(bench.is_worker_thread("testpmd-io", "rte-worker-1"))

    def test_imix_average_frame(self):
        self.assertAlmostEqual(bench.avg_frame("imix"), (7 * 64 + 4 * 570 + 1518) / 12)
        self.assertEqual(bench.avg_frame("1518"), 1518.0)


class PollfwdConfigs(unittest.TestCase):
    """Every pollfwd config the suite writes passes `pollfwd --check` (a config the daemon
    refuses would make the suite skip that system). Needs the debug binaries, which
    scripts/test.sh builds before running these tests."""

    def test_generated_configs_pass_check(self):
        root = HERE.parent.parent
        target = Path(os.environ.get("CARGO_TARGET_DIR", root / "target")) / "debug"
        pollfwd, ctl = target / "pollfwd", target / "pollfwdctl"
        self.assertTrue(pollfwd.exists() and ctl.exists(),
                        f"{target}: build first (cargo build --workspace --bins)")
        with tempfile.TemporaryDirectory() as d:
            args = types.SimpleNamespace(pollfwd=str(pollfwd), pollfwdctl=str(ctl))
            setup = bench.Setup(args, Path(d))
            for system in ["pollfwd-xconnect", "pollfwd-forward", "pollfwd-chain"]:
                self.assertIsNone(setup.check_pollfwd(system), system)

    def test_harness_command_lines(self):
        """Harness 1 sinks into net_null (no-rx); harness 2's IMIX generator is testpmd io with
        each memif server paired to a net_pcap IMIX source, counted on the memif ports."""
        root = HERE.parent.parent
        target = Path(os.environ.get("CARGO_TARGET_DIR", root / "target")) / "debug"
        with tempfile.TemporaryDirectory() as d:
            args = types.SimpleNamespace(pollfwd=str(target / "pollfwd"),
                                         pollfwdctl=str(target / "pollfwdctl"), l3fwd="l3fwd",
                                         warmup=1, seconds=2)
            setup = bench.Setup(args, Path(d))
            for system in ["testpmd-io", "l3fwd-lpm", "pollfwd-xconnect"]:
                cmd, _, _ = setup.inproc(system, "64")
                text = " ".join(cmd)
                if system == "pollfwd-xconnect":
                    text = Path(cmd[2]).read_text()
                self.assertIn("net_null1,no-rx=1", text, system)
                self.assertIn("infinite_rx=1", text, system)
            cmd, _, ports = setup.generator("64")
            self.assertIn("--forward-mode=flowgen", cmd)
            self.assertEqual(ports, [0, 1])
            cmd, _, ports = setup.generator("imix")
            self.assertIn("--forward-mode=io", cmd)
            self.assertIn("--no-flush-rx", cmd)
            self.assertEqual(ports, [1, 3])
            vdevs = [c.split("=", 1)[1].split(",")[0] for c in cmd if c.startswith("--vdev=")]
            self.assertEqual(vdevs, ["net_pcap0", "net_memif0", "net_pcap1", "net_memif1"])
            for side, dst in ((0, "10.253.0.1"), (1, "10.253.2.1")):
                data = setup.imix_pcap(side).read_bytes()
                frames, off, sizes = 0, 24, set()
                while off < len(data):
                    incl = int.from_bytes(data[off + 8:off + 12], "little")
                    frame = data[off + 16:off + 16 + incl]
                    self.assertEqual(frame[30:34], bytes(int(x) for x in dst.split(".")))
                    sizes.add(int.from_bytes(data[off + 12:off + 16], "little"))
                    frames, off = frames + 1, off + 16 + incl
                self.assertEqual(frames, 1020)
                self.assertEqual(len(sizes), 3, sizes)  # 64, 570, 1518 less the FCS


class Compare(unittest.TestCase):
    def run_compare(self, old, new, threshold=5.0):
        key = lambda d: {(r["harness"], r["system"], r["size"]): r for r in d["results"]}  # noqa: E731
        return compare.compare(key(old), key(new), threshold)

    def test_regression_improvement_and_noise(self):
        old = doc([result("inproc", "testpmd-io", "64", 40.0),
                   result("inproc", "pollfwd-xconnect", "64", 38.0),
                   result("inproc", "pollfwd-xconnect", "1518", 3.0),
                   result("memif", "pollfwd-xconnect", "64", 5.0, spread=30.0)])
        new = doc([result("inproc", "testpmd-io", "64", 40.5),      # +1.25 %: noise
                   result("inproc", "pollfwd-xconnect", "64", 30.0),  # -21 %: regression
                   result("inproc", "pollfwd-xconnect", "1518", 3.6),  # +20 %: improved
                   result("memif", "pollfwd-xconnect", "64", 4.0)])    # -20 % < 30 % spread
        lines, reg, imp, same = self.run_compare(old, new)
        self.assertEqual((reg, imp, same), (1, 1, 2))
        row = next(line for line in lines if "pollfwd-xconnect" in line and " 64 " in line
                   and line.startswith("inproc"))
        self.assertIn("REGRESSION", row)
        self.assertIn("-21.1%", row)

    def test_stage_cycles_regression(self):
        pf = lambda c: {"stage_cycles_per_packet": {"forward": c}}  # noqa: E731
        old = doc([result("inproc", "pollfwd-forward", "64", 10.0, pollfwd=pf(100.0))])
        new = doc([result("inproc", "pollfwd-forward", "64", 10.0, pollfwd=pf(130.0))])
        lines, reg, imp, same = self.run_compare(old, new)
        self.assertEqual((reg, imp, same), (1, 0, 1))
        self.assertTrue(any("stage forward" in line and "REGRESSION" in line for line in lines))

    def test_missing_and_new_rows(self):
        old = doc([result("inproc", "l3fwd-lpm", "64", 30.0)])
        new = doc([result("inproc", "pollfwd-chain", "64", 3.0)])
        lines, reg, imp, same = self.run_compare(old, new)
        self.assertEqual((reg, imp, same), (0, 0, 0))
        self.assertTrue(any("missing in new" in line for line in lines))
        self.assertTrue(any(line.rstrip().endswith("new") and "pollfwd-chain" in line
                            for line in lines))

    def test_exit_status_of_the_script(self):
        with tempfile.TemporaryDirectory() as d:
            a, b = Path(d) / "a.json", Path(d) / "b.json"
            a.write_text(json.dumps(doc([result("inproc", "testpmd-io", "64", 40.0)])))
            b.write_text(json.dumps(doc([result("inproc", "testpmd-io", "64", 20.0)])))
            script = HERE.parent / "compare.py"
            r = subprocess.run([sys.executable, script, str(a), str(b)], capture_output=True,
                               text=True)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn("1 regression(s), 0 improvement(s), 0 unchanged", r.stdout)
            r = subprocess.run([sys.executable, script, str(a), str(a)], capture_output=True,
                               text=True)
            self.assertEqual(r.returncode, 0)
            bad = Path(d) / "bad.json"
            bad.write_text("{}")
            r = subprocess.run([sys.executable, script, str(a), str(bad)], capture_output=True,
                               text=True)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("not a bench/run.sh result file", r.stderr)


class Plot(unittest.TestCase):
    def test_svg_has_one_line_per_system_and_harness(self):
        rs = []
        for h in ("inproc", "memif"):
            for s, base in (("testpmd-io", 40.0), ("pollfwd-xconnect", 38.0)):
                for z, f in (("64", 1.0), ("1518", 0.1), ("imix", 0.3)):
                    if h == "memif" and z == "imix":
                        continue
                    rs.append(result(h, s, z, base * f))
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "p.svg"
            plot.write_svg(doc(rs), out)
            root = ET.parse(out).getroot()
            ns = {"s": "http://www.w3.org/2000/svg"}
            lines = root.findall(".//s:polyline", ns)
            self.assertEqual(len(lines), 4)  # 2 systems x 2 harnesses
            self.assertEqual(len(root.findall(".//s:circle", ns)), 2 * 3 + 2 * 2)
            texts = [t.text for t in root.findall(".//s:text", ns)]
            self.assertIn("IMIX", texts)
            self.assertIn("pollfwd xconnect", texts)

    def test_markdown_report(self):
        pf = {"stage_cycles_per_packet": {"xconnect": 7.2}, "loop_cycles_per_packet": 109.1,
              "dwell_p50_us": 0.098, "dwell_p99_us": 0.197, "dwell_p999_us": 0.394, "drops": 0}
        d = doc([result("inproc", "testpmd-io", "64", 40.0, lo=39.0, hi=41.0),
                 result("inproc", "pollfwd-xconnect", "64", 38.0, lo=37.0, hi=39.5, pollfwd=pf)],
                sizes=["64"])
        d["params"]["harnesses"] = ["inproc"]
        md = report.tables(d).splitlines()
        self.assertIn("| system | 64 |", md)
        self.assertIn("| testpmd io | 40.00 (39.0-41.0) |", md)
        self.assertIn("| pollfwd xconnect | 64 | xconnect 7 | 109 | 0.098/0.197/0.394 | 0 |", md)

    def test_nice_axis_maximum(self):
        self.assertEqual(plot.nice_max(38.0), 40.0)
        self.assertEqual(plot.nice_max(3.2), 4.0)
        self.assertGreaterEqual(plot.nice_max(0.42), 0.42)


LUA = "lua5.3"
MOCK = HERE.parent / "pktgen" / "test" / "mock_pktgen.lua"


def run_lua(script, out, **env):
    import os
    e = dict(os.environ)
    e.update({k: str(v) for k, v in env.items()})
    e["PF_OUT"] = str(out)
    return subprocess.run([LUA, str(MOCK), str(HERE.parent / "pktgen" / script)],
                          capture_output=True, text=True, env=e, cwd=HERE.parent.parent)


class Chain(unittest.TestCase):
    """bench/chain.sh (bench/lib/chain.py): issue 14's figures, targets and verdicts."""

    def results(self):
        pf = lambda st: {"stage_cycles_per_packet": st, "loop_cycles_per_packet": 300.0,  # noqa: E731
                         "drops": 0}
        return {
            "l3fwd-lpm": {"median_mpps": 50.0, "max_mpps": 51.0, "min_mpps": 49.0},
            "testpmd-io": {"median_mpps": 60.0, "max_mpps": 61.0, "min_mpps": 59.0},
            "forward": {"median_mpps": 48.0, "max_mpps": 49.0, "min_mpps": 47.0,
                        "pollfwd": pf({"forward": 14.0})},
            "chain-64k": {"median_mpps": 20.0, "max_mpps": 21.0, "min_mpps": 19.0,
                          "pollfwd": pf({"classify": 24.0, "nat": 60.0, "policer": 15.0,
                                         "forward": 16.0})},
            "chain-1m": {"median_mpps": 10.0, "max_mpps": 11.0, "min_mpps": 9.0,
                         "pollfwd": pf({"classify": 30.0, "nat": 90.0, "policer": 10.0,
                                        "forward": 12.0}),
                         "nat": {"sessions": 1 << 20, "capacity": 1 << 20,
                                 "bytes_per_session": 96.0, "table_bytes": 143_151_360}},
        }

    def test_figures_ratios_and_verdicts(self):
        f = chain.figures(self.results())
        self.assertEqual(f["ratio.forward"], 0.96)
        self.assertEqual(f["ratio.chain-64k"], 0.4)
        self.assertEqual(f["ratio.chain-1m"], 0.2)
        self.assertEqual(f["ratio.testpmd-io"], 1.2)
        self.assertNotIn("ratio.l3fwd-lpm", f)
        self.assertEqual(f["stage.chain-1m.nat"], 90.0)
        self.assertEqual(f["nat.bytes_per_session_1m"], 96.0)
        v = {k: (val, verdict) for k, _, _, _, val, verdict in chain.verdicts(f)}
        self.assertEqual(v["ratio.forward"], (0.96, "not met"))
        self.assertEqual(v["ratio.chain-64k"], (0.4, "met"))
        self.assertEqual(v["ratio.chain-1m"], (0.2, "not met"))
        self.assertEqual(v["stage.chain-64k.classify"][1], "met")
        self.assertEqual(v["stage.chain-64k.policer"][1], "met")  # the bound itself meets
        self.assertEqual(v["stage.chain-64k.nat"][1], "not met")
        self.assertEqual(v["stage.chain-64k.forward"][1], "not met")
        self.assertEqual(v["stage.chain-1m.nat"][1], "not met")
        self.assertEqual(v["nat.bytes_per_session_1m"][1], "met")
        self.assertEqual(v["nat.new_sessions_per_s"], (None, "not measured"))
        self.assertEqual(len(v), len(chain.TARGETS))

    def test_two_workers_against_one(self):
        r = self.results()
        w = lambda c, tx, out: {"loop_cycles_per_packet": c, "tx_packets": tx,  # noqa: E731
                                "handoff_in": out, "handoff_out": out}
        r["chain-64k-2w"] = {"median_mpps": 24.0, "max_mpps": 25.0, "min_mpps": 23.0,
                             "pollfwd": {"stage_cycles_per_packet": {"nat": 60.0},
                                         "loop_cycles_per_packet": 320.0, "drops": 0,
                                         "workers": [w(320.0, 1000, 500), w(340.0, 1000, 500)]}}
        f = chain.figures(r)
        self.assertEqual(f["worker_cycles.chain-64k-2w"], [320.0, 340.0])
        self.assertEqual(f["workers.chain-64k-2w"], 1.1)  # mean 330 over chain-64k's loop 300
        self.assertEqual(f["handoff_share.chain-64k-2w"], 0.5)
        v = {k: (val, verdict) for k, _, _, _, val, verdict in chain.verdicts(f)}
        self.assertEqual(v["workers.chain-64k-2w"], (1.1, "met"))
        # Without the one-worker run: the workers' cycles, no ratio, no verdict.
        del r["chain-64k"]
        f = chain.figures(r)
        self.assertIn("worker_cycles.chain-64k-2w", f)
        self.assertNotIn("workers.chain-64k-2w", f)
        v = {k: verdict for k, _, _, _, _, verdict in chain.verdicts(f)}
        self.assertEqual(v["workers.chain-64k-2w"], "not measured")

    def test_no_reference_no_ratio(self):
        r = self.results()
        del r["l3fwd-lpm"]
        f = chain.figures(r)
        self.assertFalse(any(k.startswith("ratio.") for k in f))
        v = {k: verdict for k, _, _, _, _, verdict in chain.verdicts(f)}
        self.assertEqual(v["ratio.chain-64k"], "not measured")

    def test_new_session_rate_from_the_created_counter(self):
        samples = [(0.0, {"out": 0, "created": 100}),
                   (1.0, {"out": 6_000_000, "created": 3_900_100}),
                   (2.0, {"out": 12_000_000, "created": 8_000_100})]
        rate, per_s = bench.rates(samples, "created")
        self.assertAlmostEqual(rate * 1e6, 4_000_000)
        self.assertEqual([round(x * 1e6) for x in per_s], [3_900_000, 4_100_000])
        s = chain.summarize_system(
            [{"mpps": 6.0, "new_sessions_per_s": 4_000_000},
             {"mpps": 5.0, "new_sessions_per_s": 3_000_000},
             {"mpps": 7.0, "new_sessions_per_s": 5_500_000}], "nat-rate")
        self.assertEqual(s["new_sessions_per_s"], 4_000_000)
        self.assertEqual(s["median_mpps"], 6.0)
        r = self.results()
        r["nat-rate"] = s
        f = chain.figures(r)
        self.assertEqual(f["nat.new_sessions_per_s"], 4_000_000)
        self.assertNotIn("ratio.nat-rate", f)  # a churn figure, not a forwarding rate
        v = {k: verdict for k, _, _, _, _, verdict in chain.verdicts(f)}
        self.assertEqual(v["nat.new_sessions_per_s"], "not met")

    def test_table_and_plot(self):
        res = self.results()
        res["nat-64k"] = {"error": "boom"}
        results = [dict(r, system=s, label=chain.LABELS[s], spread_pct=2.0)
                   for s, r in res.items()]
        d = {"kind": "chain", "started": "20260101-000000", "host": {"cpus": 2},
             "params": {"trials": 1, "seconds": 2, "burst": 32, "systems": list(res)},
             "results": results, "figures": chain.figures(self.results())}
        text = "\n".join(chain.table_lines(d))
        self.assertRegex(text, r"full chain 64k / l3fwd-lpm\s+0.40\s+target >= 0.35\s+met")
        self.assertRegex(text, r"NAT, 1M sessions \(cycles/packet\)\s+90.00\s+target <= 70\s+not met")
        self.assertRegex(text, r"NAT new sessions/s per core\s+-\s+target >= 5.00 M\s+not measured")
        self.assertRegex(text, r"nat \+ forward, 64k sessions\s+boom")
        self.assertIn(f"1M sessions: {1 << 20} sessions of {1 << 20}, 96.0 bytes/session in the "
                      "session table (136.5 with the port and fragment tables)", text)
        self.assertRegex(text, r"pollfwd full chain, 1M sessions\s+10.00\s+\d+%\s+-\s+0.20")
        md = chain.markdown(d)
        self.assertIn("| pollfwd full chain, 64k sessions | 20.00 (19.0-21.0) | - | 0.40 | "
                      "classify 24, nat 60, policer 15, forward 16 | 300 |", md)
        self.assertIn("| DPDK l3fwd-lpm (C) | 50.00 (49.0-51.0) | - | 1.00 | | |", md)
        self.assertIn("| NAT table bytes per session at 1M <= 96 | 96.00 | met |", md)
        self.assertNotIn("boom", md)
        with tempfile.TemporaryDirectory() as t:
            svg = Path(t) / "c.svg"
            plot.write_chain_svg(d, svg)
            root = ET.parse(svg).getroot()
            texts = [e.text for e in root.iter("{http://www.w3.org/2000/svg}text")]
            self.assertIn("20.00 (0.40x)", texts)
            self.assertIn("nat (1M)", texts)
            self.assertIn("90.0", texts)
            rects = list(root.iter("{http://www.w3.org/2000/svg}rect"))
            self.assertEqual(len(rects), 1 + 5 + 5)  # background, 5 systems, 5 stage bars

    def test_chain_configs_pass_check(self):
        root = HERE.parent.parent
        target = Path(os.environ.get("CARGO_TARGET_DIR", root / "target")) / "debug"
        pollfwd, ctl = target / "pollfwd", target / "pollfwdctl"
        self.assertTrue(pollfwd.exists() and ctl.exists(),
                        f"{target}: build first (cargo build --workspace --bins)")
        with tempfile.TemporaryDirectory() as d:
            args = types.SimpleNamespace(pollfwd=str(pollfwd), pollfwdctl=str(ctl),
                                         nat_bench="/nonexistent")
            setup = chain.ChainSetup(args, Path(d))
            for n in set(chain.FLOWS.values()):  # no nat_bench needed: empty pcaps
                (Path(d) / f"flows-{n}.pcap").write_bytes(setup.empty.read_bytes())
            for system in chain.STAGES:
                self.assertIsNone(setup.check(system), system)
                text = (Path(d) / f"{system}.toml").read_text()
                self.assertEqual(text.count('/24", via'), chain.ROUTES + 1, system)
                self.assertIn("net_null1,no-rx=1", text)
            text = (Path(d) / "nat-rate.toml").read_text()
            self.assertIn("lru_reclaim = true", text)
            self.assertIn(f"max_sessions = {chain.RATE_TABLE}", text)
            self.assertIn(f"max_sessions = {1 << 20}", (Path(d) / "chain-1m.toml").read_text())
            self.assertIn('kind = "trtcm"', (Path(d) / "chain-64k.toml").read_text())


def csv_rows(path):
    import csv
    with open(path) as f:
        return list(csv.DictReader(f))


@unittest.skipUnless(subprocess.run(["which", LUA], capture_output=True).returncode == 0,
                     "lua5.3 not installed (scripts/install-deps.sh installs it)")
class PktgenScripts(unittest.TestCase):
    """The Pktgen-DPDK scripts against mock_pktgen.lua: a 10 Gb/s link and a DUT that
    forwards at most 5 Mpps (64-byte line rate is 14.88 Mpps, so zero loss ends at 33.6 %)."""

    def test_rfc2544_search_finds_the_zero_loss_rate(self):
        with tempfile.TemporaryDirectory() as d:
            r = run_lua("rfc2544.lua", Path(d) / "r", PF_SIZES="64,1518", PF_TRIAL_S=1,
                        PF_WARMUP_S=0)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            rows = {row["frame_bytes"]: row for row in csv_rows(Path(d) / "r-rfc2544.csv")}
            r64 = rows["64"]
            self.assertEqual(r64["status"], "ok")
            # the flat-out trial: the generator reaches line rate, the DUT forwards 5 Mpps
            self.assertAlmostEqual(float(r64["max_offered_mpps"]), 14.881, 2)
            self.assertAlmostEqual(float(r64["max_forwarding_mpps"]), 5.0, 3)
            self.assertAlmostEqual(float(r64["resolution_mpps"]), 0.025, 3)  # 0.5 % of 5 Mpps
            fwd = float(r64["throughput_mpps"])
            self.assertGreaterEqual(fwd, 5.0 - 0.025)  # within the resolution below the limit
            self.assertLessEqual(fwd, 5.0)
            self.assertEqual(r64["offered_mpps"], r64["throughput_mpps"])  # zero loss
            self.assertEqual(r64["frames_lost"], "0")
            self.assertEqual(rows["1518"]["status"], "generator-bound")  # below 5 Mpps flat out
            self.assertEqual(rows["1518"]["trials"], "1")
            trials = csv_rows(Path(d) / "r-rfc2544-trials.csv")
            self.assertEqual(len(trials), int(r64["trials"]) + 1)
            self.assertEqual(trials[0]["kind"], "flat-out")
            self.assertTrue(all((row["pass"] == "1") == (row["frames_sent"] == row["frames_received"])
                                for row in trials))
            self.assertTrue(all(row["valid"] == "1" for row in trials))
            self.assertIn("RFC 2544 throughput", (Path(d) / "r-rfc2544.txt").read_text())
            # the trials ran out before the interval was narrower than the resolution
            r = run_lua("rfc2544.lua", Path(d) / "u", PF_SIZES="64", PF_TRIAL_S=1,
                        PF_WARMUP_S=0, PF_MAX_ITER=3, MOCK_DUT_PPS=4e6)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            row = csv_rows(Path(d) / "u-rfc2544.csv")[0]
            self.assertEqual((row["status"], row["trials"]), ("unconverged", "3"), row)

    def test_rfc2544_loss_tolerance(self):
        with tempfile.TemporaryDirectory() as d:
            r = run_lua("rfc2544.lua", Path(d) / "r", PF_SIZES="64", PF_TRIAL_S=1,
                        PF_WARMUP_S=0, PF_LOSS_TOL=1, PF_RESOLUTION=0.1)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            row = csv_rows(Path(d) / "r-rfc2544.csv")[0]
            # 1 % loss allowed: offered may reach 5 Mpps / 0.99 = 5.0505 Mpps.
            self.assertGreater(float(row["offered_mpps"]), 5.0)
            self.assertLessEqual(float(row["offered_mpps"]), 5.051)
            self.assertLessEqual(float(row["loss_pct"]), 1.0)
            self.assertEqual(row["loss_tol_pct"], "1")

    # What pktgen 23.06.1 did in the one-box memif lab: a "100 Gb/s" link, a generator that
    # tops out at 12.5 Mpps whatever rate it is asked for, pacing 10 % above the asked rate,
    # and random bursts of loss while it runs flat out; the DUT could forward 20 Mpps.
    MEMIF_LAB = dict(MOCK_LINK_MBPS=100000, MOCK_GEN_PPS=12.5e6, MOCK_DUT_PPS=20e6,
                     MOCK_RATE_GAIN=1.1, MOCK_FLATOUT_LOSS=128)

    def test_rfc2544_measures_the_offered_rate(self):
        """Every trial's offered rate is measured; the result is a rate the generator really
        offered, never a percentage of a link rate it cannot reach (issue 19: '19.922 % =
        12.68 Mpps' from flat-out trials that passed or failed by chance)."""
        with tempfile.TemporaryDirectory() as d:
            for seed in (1, 2, 3):
                r = run_lua("rfc2544.lua", Path(d) / "r", PF_SIZES="64", PF_TRIAL_S=1,
                            PF_WARMUP_S=0, MOCK_SEED=seed, **self.MEMIF_LAB)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                row = csv_rows(Path(d) / "r-rfc2544.csv")[0]
                trials = csv_rows(Path(d) / "r-rfc2544-trials.csv")
                offered, fwd = float(row["offered_mpps"]), float(row["throughput_mpps"])
                self.assertAlmostEqual(float(row["max_offered_mpps"]), 12.5, 3)
                # nothing above what the generator can send, and no loss below that: the result
                # is within the resolution (0.5 % of the ~12.5 Mpps forwarded flat out)
                self.assertLessEqual(offered, 12.5)
                self.assertGreaterEqual(fwd, 12.5 * (1 - 0.005) - 0.001, (seed, row))
                self.assertIn(row["status"], ("ok", "generator-bound"))
                self.assertEqual(row["frames_lost"], "0")
                # the rate percent pktgen was given is not the rate it sent (10 % pacing error):
                # the reported rate is the measured one
                for t in trials:
                    if t["kind"] == "flat-out":
                        self.assertEqual(t["asked_mpps"], "flat-out")
                        continue
                    asked = float(t["asked_mpps"])
                    self.assertEqual(t["valid"] == "1", float(t["offered_mpps"]) >= 0.98 * asked, t)
                    if t["pass"] == "1":
                        self.assertEqual(t["valid"], "1")
                        self.assertEqual(t["frames_sent"], t["frames_received"])

    def test_an_invalid_trial_is_retried_and_never_passes(self):
        """A trial asked for more than the generator can send is flagged invalid, retried,
        and does not count as a pass (pflib's checked_trial)."""
        r = self.run_snippet(
            'local pf = dofile("bench/pktgen/pflib.lua")\n'
            'local cfg = pf.config(); cfg.trial_ms = 1000; pf.prepare(cfg)\n'
            'local seen = {}\n'
            'local t = pf.checked_trial(cfg, 14e6, "search", function(t) seen[#seen + 1] = t end)\n'
            'print(string.format("attempts %d valid %s pass %s offered %.2f", #seen, tostring(t.valid),'
            ' tostring(t.pass), t.tx_pps / 1e6))\n'
            'local t2 = pf.checked_trial(cfg, 5e6, "search")\n'
            'print(string.format("then valid %s offered %.3f", tostring(t2.valid), t2.tx_pps / 1e6))',
            MOCK_LINK_MBPS=100000, MOCK_GEN_PPS=12.5e6, MOCK_DUT_PPS=20e6, MOCK_RATE_GAIN=1.1)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("attempts 2 valid false pass false offered 12.50", r.stdout)
        # what it learnt from the capped trials is dropped: the next trial lands on its rate
        self.assertIn("then valid true offered 5.500", r.stdout)  # 10 % pacing error, not learnt yet

    def test_warmup_at_a_low_absolute_rate(self):
        """The warm-up runs at PF_WARMUP_MPPS (0.1 Mpps), not a percentage of the link: on a
        memif "100 Gb/s" link 10 % would be 14.9 Mpps (issue 19)."""
        r = self.run_snippet(
            'local pf = dofile("bench/pktgen/pflib.lua")\n'
            'local cfg = pf.config(); pf.prepare(cfg); pf.warmup(cfg)\n'
            'print("warm-up frames " .. pktgen.portStats("0", "port")[0].opackets)',
            MOCK_LINK_MBPS=100000, PF_WARMUP_S=2)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("warm-up frames 200000", r.stdout)  # 2 s at 0.1 Mpps
        r = self.run_snippet('local pf = dofile("bench/pktgen/pflib.lua"); pf.config()',
                             PF_WARMUP_RATE=10)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("PF_WARMUP_MPPS", r.stderr)

    def test_imix_refuses_a_mix_that_is_not_on_the_wire(self):
        """pktgen 23.06.1 does not apply sequence packets set from Lua (every frame stayed
        64 bytes): imix.lua must refuse to print a figure instead of '36.29 Gb/s'."""
        with tempfile.TemporaryDirectory() as d:
            for mode, env in (("seq", {}), ("pcap", {})):  # pcap: pktgen given no -s file
                r = run_lua("imix.lua", Path(d) / "i", PF_DURATION_S=2, PF_WARMUP_S=0,
                            PF_IMIX_MODE=mode, **env)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                row = csv_rows(Path(d) / "i-imix.csv")[0]
                self.assertEqual(row["status"], "refused", (mode, row))
                self.assertEqual(row["tx_mean_bytes"], "64.0")
                for k in ("offered_mpps", "forwarded_mpps", "rx_l2_gbps", "rx_l1_gbps"):
                    self.assertEqual(row[k], "", k)
                self.assertIn("REFUSED", r.stdout)
                self.assertNotIn("Gb/s", r.stdout)
            # PF_SEARCH=1 refuses too
            r = run_lua("imix.lua", Path(d) / "s", PF_TRIAL_S=1, PF_WARMUP_S=0,
                        PF_IMIX_MODE="seq", PF_SEARCH=1)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertEqual(csv_rows(Path(d) / "s-imix.csv")[0]["status"], "refused")

    def test_imix_pcap_replay_and_bytes_measured(self):
        with tempfile.TemporaryDirectory() as d:
            r = run_lua("imix.lua", Path(d) / "i", PF_DURATION_S=3, PF_MPPS=1.5, PF_WARMUP_S=0,
                        MOCK_PCAP="imix", MOCK_RATE_GAIN=1.2)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            row = csv_rows(Path(d) / "i-imix.csv")[0]
            self.assertEqual(row["status"], "ok")
            self.assertEqual(row["frames_sent"], row["frames_received"])
            self.assertEqual(row["tx_mean_bytes"], "353.8")
            offered = float(row["offered_mpps"])
            self.assertAlmostEqual(offered, 1.8, 2)  # pktgen's 20 % pacing error, measured
            # Gb/s from the bytes received: 353.83 bytes per frame incl. FCS
            self.assertAlmostEqual(float(row["rx_l2_gbps"]), offered * 353.8333 * 8 / 1e3, 2)
            self.assertAlmostEqual(float(row["rx_l1_gbps"]), offered * 373.8333 * 8 / 1e3, 2)
            # the same run with sequence packets applied (a pktgen that does) passes the check
            r = run_lua("imix.lua", Path(d) / "q", PF_DURATION_S=2, PF_WARMUP_S=0,
                        PF_IMIX_MODE="seq", MOCK_SEQ_APPLIED=1)
            self.assertEqual(csv_rows(Path(d) / "q-imix.csv")[0]["status"], "ok")

    def test_flows_runs(self):
        with tempfile.TemporaryDirectory() as d:
            r = run_lua("flows.lua", Path(d) / "f", PF_DURATION_S=3, PF_WARMUP_S=0)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("65344 flows", r.stdout)
            rows = csv_rows(Path(d) / "f-flows.csv")
            self.assertEqual(len(rows), 3)
            # per-second rows lag by up to the 1 s counter refresh; the totals are exact
            self.assertLessEqual(int(rows[-1]["frames_received"]), 15000000)
            self.assertGreaterEqual(int(rows[-1]["frames_received"]), 10000000)
            total = csv_rows(Path(d) / "f-flows-total.csv")[0]
            self.assertEqual(total["frames_received"], "15000000")  # 3 s at the 5 Mpps cap
            self.assertEqual(total["flows"], "65344")
            self.assertEqual(total["asked_mpps"], "flat-out")
            self.assertEqual(total["latency_samples"], "0")  # PF_LATENCY not set
            self.assertEqual(total["latency_avg_us"], "")
            r = run_lua("flows.lua", Path(d) / "s", PF_SEARCH=1, PF_TRIAL_S=1, PF_WARMUP_S=0)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            trials = csv_rows(Path(d) / "s-flows-trials.csv")
            self.assertEqual(trials[0]["kind"], "flat-out")
            self.assertIn("forwarded 5.0000 Mpps", r.stdout)

    def test_latency_measured_on_the_receiving_ports(self):
        """PF_LATENCY=1: probes enabled on the tx and the rx ports, figures read from the rx
        port (the mock, like pktgen 23.06, measures a probe only where latency is on)."""
        with tempfile.TemporaryDirectory() as d:
            r = run_lua("rfc2544.lua", Path(d) / "r", PF_SIZES="64,1518", PF_TRIAL_S=1,
                        PF_WARMUP_S=0, PF_LATENCY=1, PF_CONFIRM_S=2, MOCK_LATENCY_US=20)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            for row in csv_rows(Path(d) / "r-rfc2544.csv"):
                # the confirming trial alone (pktgen.clr first): 2 s, a probe every 10 ms
                self.assertEqual(row["latency_samples"], "200", row)
                lo, avg, hi = (float(row[k]) for k in
                               ("latency_min_us", "latency_avg_us", "latency_max_us"))
                self.assertEqual((lo, hi), (20.0, 24.0))
                self.assertTrue(lo < avg < hi, row)
                self.assertEqual(row["frames_lost"], "0")
            self.assertIn("latency avg", (Path(d) / "r-rfc2544.txt").read_text())
            r = run_lua("imix.lua", Path(d) / "i", PF_DURATION_S=3, PF_MPPS=1.5, PF_WARMUP_S=0,
                        PF_LATENCY=1, MOCK_PCAP="imix")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            row = csv_rows(Path(d) / "i-imix.csv")[0]
            self.assertEqual(row["latency_samples"], "300")
            self.assertEqual(float(row["latency_max_us"]), 12.0)
            self.assertEqual(row["frames_sent"], row["frames_received"])
            r = run_lua("flows.lua", Path(d) / "f", PF_DURATION_S=2, PF_WARMUP_S=0,
                        PF_LATENCY=1)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            total = csv_rows(Path(d) / "f-flows-total.csv")[0]
            self.assertEqual(total["latency_samples"], "200")
            self.assertEqual(float(total["latency_min_us"]), 8.0)

    def run_snippet(self, code, **env):
        import os
        e = dict(os.environ)
        e.update({k: str(v) for k, v in env.items()})
        with tempfile.TemporaryDirectory() as d:
            e.setdefault("PF_OUT", str(Path(d) / "o"))
            f = Path(d) / "s.lua"
            f.write_text(code + "\npktgen.quit()\n")
            return subprocess.run([LUA, str(MOCK), str(f)], capture_output=True, text=True,
                                  env=e, cwd=HERE.parent.parent)

    def test_mock_keeps_pktgens_facts(self):
        # latency on the sending port only: nothing is measured on the receiving port
        r = self.run_snippet(
            'pktgen.latency("0", "enable"); pktgen.start("0"); pktgen.delay(1000)\n'
            'print("probes " .. pktgen.pktStats("1")[1].latency.num_pkts)')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("probes 0", r.stdout)
        r = self.run_snippet(
            'pktgen.latency("0,1", "enable"); pktgen.start("0"); pktgen.delay(1000)\n'
            'print("probes " .. pktgen.pktStats("1")[1].latency.num_pkts)')
        self.assertIn("probes 100", r.stdout)
        # the link state freezes while the screen is off
        r = self.run_snippet('pktgen.screen("off"); pktgen.delay(3000)\n'
                             'print("link " .. pktgen.linkState("0")[0])\n'
                             'pktgen.screen("on"); pktgen.delay(1)\n'
                             'print("link " .. pktgen.linkState("0")[0])')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("link <--Down-->\nlink <UP-10000-FD>", r.stdout)
        # pktgen.delay takes an integer (luaL_checkinteger)
        r = self.run_snippet("pktgen.delay(2.0); pktgen.delay('3'); pktgen.delay(1.5)")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no integer representation: 1.5", r.stderr)

    def test_a_wrong_call_fails(self):
        with tempfile.TemporaryDirectory() as d:
            bad = Path(d) / "bad.lua"
            bad.write_text('pktgen.set("0", "rate")\n')
            r = subprocess.run([LUA, str(MOCK), str(bad)], capture_output=True, text=True)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("lpktgenlib.c wants 3", r.stderr)


if __name__ == "__main__":
    unittest.main()

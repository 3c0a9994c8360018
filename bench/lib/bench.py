#!/usr/bin/env python3
"""pollfwd side-by-side benchmark: pollfwd next to DPDK's own forwarders, same harness, same run.

`bench/run.sh` builds what is needed and runs this script; see docs/benchmarking.md.

Systems (one worker lcore each, burst 32, same traffic, same virtual ports):
  testpmd-io        dpdk-testpmd --forward-mode=io            (the I/O floor)
  l3fwd-lpm         DPDK's l3fwd example, LPM mode
  pollfwd-xconnect  pollfwd, chain ["xconnect"]
  pollfwd-forward   pollfwd, chain ["forward"] (IPv4 router, LPM + static neighbour)
  pollfwd-chain     pollfwd, chain ["classify", "nat", "policer", "forward"]
                    (1k ACL rules, 64k NAT sessions, one meter, forward)
A pollfwd system whose stages do not exist in this build (its config fails `pollfwd --check`)
is skipped with a printed reason.

Harnesses:
  inproc  one process: net_pcap infinite_rx=1 source (a pcap replayed forever) -> net_null
          sink (no-rx=1: it receives nothing, counts and frees what it is given). Counted: the
          sink port's tx packets.
  memif   two processes: dpdk-testpmd --forward-mode=flowgen on two memif SERVER ports (CPU 0),
          the system under test on two memif CLIENT ports (CPU 1). Counted: what comes back to
          the generator (its rx packets), next to what it offered (its tx packets). IMIX:
          the generator is dpdk-testpmd --forward-mode=io, each memif server paired with a
          net_pcap port replaying an IMIX pcap (infinite_rx=1).

Every rate is measured the same way for every system: DPDK telemetry (`/ethdev/stats,N` on the
process's telemetry socket) sampled once a second after a warm-up; Mpps = packets counted
between the first and the last sample / time between them. Each DPDK process runs bounded
(`timeout`) while this script holds /tmp/pollfwd-busy.lock (both processes of a memif trial
under one hold), so at most two lcores busy-poll at once. Trials are interleaved (trial 1 of
every size and system, then trial 2, ...) and medians reported with min/max.

For pollfwd the control socket gives the runtime counters of the measurement window alone
(`clear` at its start, `runtime` and `lcores` at its end): cycles per packet of each stage and
of the whole loop, rx-to-tx dwell percentiles, drops by reason.
"""

import argparse
import datetime
import fcntl
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))
import plot  # noqa: E402  (bench/lib/plot.py)

LOCK = "/tmp/pollfwd-busy.lock"
ALL_SIZES = ["64", "128", "256", "512", "1024", "1280", "1518", "imix"]
QUICK_SIZES = ["64", "1518", "imix"]
IMIX_PATTERN = [64, 64, 570, 64, 64, 570, 64, 64, 570, 64, 570, 1518]  # 7:4:1, as pollfwdctl
SYSTEMS = ["testpmd-io", "l3fwd-lpm", "pollfwd-xconnect", "pollfwd-forward", "pollfwd-chain"]
LABELS = {
    "testpmd-io": "testpmd io",
    "l3fwd-lpm": "l3fwd lpm",
    "pollfwd-xconnect": "pollfwd xconnect",
    "pollfwd-forward": "pollfwd forward",
    "pollfwd-chain": "pollfwd full chain",
}
HARNESSES = ["inproc", "memif"]
HARNESS_TITLE = {
    "inproc": "harness 1 (in-process): net_pcap infinite_rx source -> net_null sink",
    "memif": "harness 2 (two processes): testpmd flowgen (IMIX: io from net_pcap) on memif servers"
             " <-> system on memif clients",
}
BURST = 32
FLOWS = 1024  # flows of the common traffic
CHAIN_FLOWS = 65536  # flows (= NAT sessions) of the full-chain traffic, harness 1
ACL_RULES = 1000


def log(msg=""):
    print(msg, flush=True)


def avg_frame(size):
    if size == "imix":
        return sum(IMIX_PATTERN) / len(IMIX_PATTERN)
    return float(size)


# --------------------------------------------------------------------------------------------
# Talking to the processes under test


def runtime_dir():
    if os.geteuid() == 0:
        return Path("/var/run/dpdk")
    return Path(os.environ.get("XDG_RUNTIME_DIR", "/tmp")) / "dpdk"


class Telemetry:
    """Client of a DPDK process's telemetry socket (SOCK_SEQPACKET, JSON replies)."""

    def __init__(self, prefix):
        self.path = runtime_dir() / prefix / "dpdk_telemetry.v2"
        self.sock = None

    def connect(self, proc, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"exited with {proc.returncode} before its telemetry socket")
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                s.settimeout(5)
                s.connect(str(self.path))
                s.recv(1024)  # greeting: {"version":..., "pid":..., "max_output_len":...}
                self.sock = s
                return
            except OSError:
                s.close()
                time.sleep(0.1)
        raise RuntimeError(f"no telemetry socket at {self.path} within {timeout:.0f} s")

    def stats(self, port):
        self.sock.send(f"/ethdev/stats,{port}".encode())
        reply = json.loads(self.sock.recv(65536))
        return reply["/ethdev/stats"]

    def total(self, ports, field):
        return sum(self.stats(p)[field] for p in ports)

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None


class Control:
    """pollfwd's control socket: one JSON object per line each way."""

    def __init__(self, path):
        self.path = path

    def call(self, cmd, args=None, timeout=10.0):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(self.path))
            s.sendall((json.dumps({"v": 1, "cmd": cmd, "args": args or {}}) + "\n").encode())
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        reply = json.loads(buf)
        if not reply.get("ok"):
            raise RuntimeError(f"pollfwd {cmd}: {reply.get('error')}")
        return reply["data"]


class Proc:
    """A bounded DPDK process: `timeout -s INT` guarantees it ends even if this script dies."""

    def __init__(self, name, cmd, logfile, bound_s):
        self.name = name
        self.logfile = logfile
        self.cmd = ["timeout", "-k", "5", "-s", "INT", str(int(bound_s))] + cmd
        self.fh = open(logfile, "w")
        self.p = subprocess.Popen(
            self.cmd, stdin=subprocess.DEVNULL, stdout=self.fh, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def interrupt(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)

    def stop(self, grace=15.0):
        """SIGINT (timeout forwards it), then SIGKILL to the process group we created."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
            try:
                self.p.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
        self.fh.close()
        return self.p.returncode

    def tail(self, n=15):
        try:
            return "".join(open(self.logfile).readlines()[-n:])
        except OSError:
            return ""


def thread_times(proc):
    """{thread name: CPU seconds} of the DPDK process under `timeout` (its only child)."""
    clk = os.sysconf("SC_CLK_TCK")
    out = {}
    try:
        kids = Path(f"/proc/{proc.p.pid}/task/{proc.p.pid}/children").read_text().split()
        for pid in kids:
            for task in Path(f"/proc/{pid}/task").iterdir():
                stat = (task / "stat").read_text()
                name = stat[stat.index("(") + 1:stat.rindex(")")]
                fields = stat[stat.rindex(")") + 2:].split()
                cpu = (int(fields[11]) + int(fields[12])) / clk  # utime + stime
                key = name if name not in out else f"{name}/{task.name}"
                out[key] = cpu
    except (OSError, ValueError):
        pass
    return out


def thread_cpu_pct(before, after, seconds):
    """CPU % of each thread over the window (threads present at both ends, >= 1 %)."""
    pct = {k: round(100 * (after[k] - before[k]) / seconds, 1) for k in after if k in before}
    return {k: v for k, v in sorted(pct.items(), key=lambda kv: -kv[1]) if v >= 1.0}


class BusyLock:
    """The machine-wide busy-polling lock (same lock as `flock /tmp/pollfwd-busy.lock`)."""

    def __enter__(self):
        self.fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o666)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


# --------------------------------------------------------------------------------------------
# Traffic, configs and command lines


class Setup:
    def __init__(self, args, work):
        self.a = args
        self.work = work
        self.pollfwd = args.pollfwd
        self.pollfwdctl = args.pollfwdctl
        self.empty = work / "empty.pcap"
        self.gen_pcap(self.empty, 0, 1, "64")
        self.write_acl_rules()
        self.write_l3fwd_routes()

    # ---- traffic
    def gen_pcap(self, path, count, flows, size, dst="198.18.1.1"):
        cmd = [self.pollfwdctl, "gen-pcap", "-o", str(path), "-n", str(count), "--flows",
               str(max(1, flows)), "--sizes", size, "--proto", "udp", "--src-ip", "10.0.0.1",
               "--dst-ip", dst, "--src-port", "1024", "--dst-port", "9"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    def pcap(self, size, flows):
        """The pcap replayed by the in-process source: `flows` flows, one frame each."""
        path = self.work / f"in-{size}-{flows}.pcap"
        if not path.exists():
            n = flows
            if size == "imix":  # whole 7:4:1 patterns
                n -= n % len(IMIX_PATTERN)
            self.gen_pcap(path, n, n, size)
        return path

    # ---- l3fwd routes. Memif harness: flowgen sends, on both ports, to 10.253.0.0 + flow
    # (flows 0..1023 = 10.253.0.0 - 10.253.3.255); half the flows are routed to each port so
    # that what comes back is spread over both links like with io/xconnect (the generator
    # drains at most one burst per port per loop).
    def write_l3fwd_routes(self):
        self.l3fwd_v4 = self.work / "l3fwd-v4.cfg"
        self.l3fwd_v6 = self.work / "l3fwd-v6.cfg"
        self.l3fwd_v4.write_text("R10.253.0.0/23 1\nR10.253.2.0/23 0\nR198.18.1.0/24 1\n")
        self.l3fwd_v6.write_text("R2001:0200:0000:0000:0000:0000:0000:0000/64 0\n")

    # ---- ACL: 1k rules, seeded; 32 match the traffic's flows, the rest do not (default permit)
    def write_acl_rules(self):
        rng = random.Random(ACL_RULES)
        lines = ["rules = ["]
        for _ in range(32):
            f = rng.randrange(FLOWS)
            lines.append(f'  {{ src = "10.0.{(1 + f) // 256}.{(1 + f) % 256}", proto = "udp", '
                         f'sport = {1024 + f}, dport = 9 }},')

        def ip(a):
            return ".".join(str((a >> k) & 255) for k in (24, 16, 8, 0))

        for _ in range(ACL_RULES - 32):
            sl, dl = rng.choice([16, 24, 28, 32]), rng.choice([16, 24, 32])
            s = ((172 << 24) | (16 << 16) | rng.randrange(1 << 20)) & ((0xFFFFFFFF << (32 - sl)) & 0xFFFFFFFF)
            d = ((192 << 24) | (168 << 16) | rng.randrange(1 << 16)) & ((0xFFFFFFFF << (32 - dl)) & 0xFFFFFFFF)
            lo = rng.randrange(1, 60000)
            hi = lo + rng.choice([0, 0, 10, 100, 1000])
            lines.append(f'  {{ src = "{ip(s)}/{sl}", dst = "{ip(d)}/{dl}", '
                         f'proto = "{rng.choice(["tcp", "udp"])}", dport = "{lo}-{hi}", '
                         f'action = "{rng.choice(["permit", "deny"])}" }},')
        lines.append("]")
        (self.work / "acl-1k.toml").write_text("\n".join(lines) + "\n")

    # ---- pollfwd configs
    def pollfwd_config(self, system, harness, devs, mbufs):
        """devs: [(name, devargs)] in port order. Returns the config path."""
        stages = {
            "pollfwd-xconnect": ["xconnect"],
            "pollfwd-forward": ["forward"],
            "pollfwd-chain": ["classify", "nat", "policer", "forward"],
        }[system]
        addr = {"p0": "192.0.2.1/24", "p1": "198.51.100.1/24", "p2": "203.0.113.1/24"}
        routed = system != "pollfwd-xconnect"
        out = [
            "[eal]", "main_lcore = 0", "main_cpu = 0", f'file_prefix = "pfbench-pf-{harness}"',
            "[mempool]", f"mbufs = {mbufs}",
            "[runtime]", f"burst = {BURST}",
        ]
        for name, dev in devs:
            out += ["[[port]]", f'name = "{name}"', f'device = "{dev}"']
            if routed:
                out.append(f'address = "{addr[name]}"')
        rx = ", ".join(f'{{ port = "{n}" }}' for n, _ in devs)
        out += ["[[lcore]]", "id = 1", "cpu = 1", f"rx = [{rx}]",
                "stages = [" + ", ".join(f'"{s}"' for s in stages) + "]"]
        if system == "pollfwd-xconnect":
            out += ["[xconnect]", 'pairs = [["p0", "p1"]]']
        if routed:
            out += [
                "[forward]",
                "routes = [",
                '  { prefix = "198.18.1.0/24", via = "198.51.100.2" },',
                '  { prefix = "10.253.0.0/23", via = "198.51.100.2" },',
                '  { prefix = "10.253.2.0/23", via = "192.0.2.2" },',
                "]",
                "neighbors = [",
                '  { address = "198.51.100.2", mac = "02:00:00:00:01:02", port = "p1" },',
                '  { address = "192.0.2.2", mac = "02:00:00:00:00:02", port = "p0" },',
                "]",
            ]
        if system == "pollfwd-chain":
            inside, outside = (["p0"], ["p1"]) if harness == "inproc" else (["p0", "p1"], ["p2"])
            q = lambda v: "[" + ", ".join(f'"{x}"' for x in v) + "]"  # noqa: E731
            out += [
                "[classify]", 'default = "permit"', f'rules_file = "{self.work / "acl-1k.toml"}"',
                "[nat]", f"inside = {q(inside)}", f"outside = {q(outside)}",
                'pool = ["198.51.100.16/30"]', "max_sessions = 262144", "seed = 7",
                "[policer]", "[[policer.policers]]", 'name = "bench"', 'kind = "srtcm"', 'units = "bytes"',
                "cir = 100_000_000_000", "cbs = 10_000_000", "ebs = 10_000_000",
            ]
        out += ["[control]", f'socket = "{self.work / ("ctl-" + harness + ".sock")}"']
        path = self.work / f"{system}-{harness}.toml"
        path.write_text("\n".join(out) + "\n")
        return path

    def check_pollfwd(self, system):
        """None if the system's stages exist in this build, else the reason to skip it."""
        for harness in HARNESSES:
            devs = [("p0", "net_null0"), ("p1", "net_null1")]
            if system == "pollfwd-chain" and harness == "memif":
                devs.append(("p2", "net_null2"))
            cfg = self.pollfwd_config(system, harness, devs, 16383)
            r = subprocess.run([self.pollfwd, "--config", str(cfg), "--check"],
                               capture_output=True, text=True)
            if r.returncode != 0:
                msg = (r.stderr or r.stdout).strip().splitlines()
                return msg[-1] if msg else f"--check exited {r.returncode}"
        return None

    # ---- command lines per harness
    def inproc(self, system, size):
        """(cmd, telemetry prefix, control socket or None) for harness 1."""
        flows = CHAIN_FLOWS if system == "pollfwd-chain" else FLOWS
        pcap = self.pcap(size, flows)
        src = f"net_pcap0,rx_pcap={pcap},infinite_rx=1"
        sink = self.sink()
        if system == "testpmd-io":
            prefix = "pfbench-tp"
            cmd = ["dpdk-testpmd", "--no-pci", "--lcores=0@0,1@1", f"--file-prefix={prefix}",
                   "--in-memory", f"--vdev={src}", f"--vdev={sink}", "--",
                   "--forward-mode=io", "--stats-period", "1", "--no-flush-rx",
                   f"--burst={BURST}", "--total-num-mbufs=16384"]
            return cmd, prefix, None
        if system == "l3fwd-lpm":
            prefix = "pfbench-l3"
            cmd = [self.a.l3fwd, "--no-pci", "--lcores=1@1", f"--file-prefix={prefix}",
                   "--in-memory", f"--vdev={src}", f"--vdev={sink}", "--", "-p", "0x3", "-P",
                   "--parse-ptype", "--config=(0,0,1),(1,0,1)"]
            return cmd, prefix, None
        mbufs = 131071 if flows > 8192 else 16383
        cfg = self.pollfwd_config(system, "inproc", [("p0", src), ("p1", sink)], mbufs)
        return ([self.pollfwd, "--config", str(cfg), "--summary", "json",
                 "--duration", str(self.a.warmup + self.a.seconds + 30)],
                "pfbench-pf-inproc", self.work / "ctl-inproc.sock")

    def sink(self):
        """Harness 1's sink port: net_null with no-rx=1 (its rx returns nothing, its tx frees
        and counts). BENCH_SINK=pcap: the former sink, net_pcap with an empty rx file and no tx
        file (docs/benchmarking.md compares the two)."""
        if os.environ.get("BENCH_SINK", "null") == "pcap":
            return f"net_pcap1,rx_pcap={self.empty}"
        return "net_null1,no-rx=1"

    def memif_sockets(self):
        return [self.work / "memif0.sock", self.work / "memif1.sock"]

    def generator(self, size):
        """(cmd, telemetry prefix, its memif port ids) of harness 2's generator."""
        socks = self.memif_sockets()
        prefix = "pfbench-gen"
        cmd = ["dpdk-testpmd", "--no-pci", "--lcores=0@0,1@0", f"--file-prefix={prefix}",
               "--in-memory"]
        servers = [f"net_memif{i},role=server,id=0,socket={s},socket-abstract=no"
                   for i, s in enumerate(socks)]
        if size == "imix":
            # flowgen sends one frame size: for IMIX the generator is testpmd io with each
            # memif server paired to a net_pcap port that replays an IMIX pcap forever (ports
            # 0<->1 and 2<->3: pcap port 0 feeds memif port 1 and drops what comes back on it;
            # the same for 2 and 3). Destinations in flowgen's ranges: 10.253.0.0/23 from memif
            # 0 (routed to port 1), 10.253.2.0/23 from memif 1 (routed to port 0), so every
            # system sends each side's traffic out of the other side, like io and xconnect.
            for i, s in enumerate(servers):
                pcap = self.imix_pcap(i)
                cmd += [f"--vdev=net_pcap{i},rx_pcap={pcap},infinite_rx=1", f"--vdev={s}"]
            cmd += ["--", "--forward-mode=io", "--no-flush-rx", f"--burst={BURST}",
                    "--stats-period", "1", "--total-num-mbufs=16384"]
            return cmd, prefix, [1, 3]
        cmd += [f"--vdev={s}" for s in servers]
        # flowgen: `--txpkts` is the frame size including FCS (60 bytes on the wire for 64).
        cmd += ["--", "--forward-mode=flowgen", f"--flowgen-flows={FLOWS}", f"--txpkts={size}",
                f"--burst={BURST}", "--stats-period", "1", "--total-num-mbufs=16384"]
        return cmd, prefix, [0, 1]

    def imix_pcap(self, side):
        """IMIX for the memif generator's side 0 or 1: 1,020 frames, one flow each, to
        10.253.0.1 (side 0, routed to port 1) or 10.253.2.1 (side 1, routed to port 0)."""
        path = self.work / f"memif-imix-{side}.pcap"
        if not path.exists():
            n = FLOWS - FLOWS % len(IMIX_PATTERN)
            self.gen_pcap(path, n, n, "imix", dst=("10.253.0.1", "10.253.2.1")[side])
        return path

    def memif(self, system):
        """(cmd, telemetry prefix, control socket or None) of the system under test, harness 2."""
        socks = self.memif_sockets()
        clients = [f"net_memif{i},role=client,id=0,socket={s},socket-abstract=no"
                   for i, s in enumerate(socks)]
        if system == "testpmd-io":
            prefix = "pfbench-tp"
            cmd = ["dpdk-testpmd", "--no-pci", "--lcores=0@0,1@1", f"--file-prefix={prefix}",
                   "--in-memory"] + [f"--vdev={c}" for c in clients] + [
                "--", "--forward-mode=io", "--stats-period", "1", f"--burst={BURST}",
                "--total-num-mbufs=16384"]
            return cmd, prefix, None
        if system == "l3fwd-lpm":
            prefix = "pfbench-l3"
            cmd = [self.a.l3fwd, "--no-pci", "--lcores=1@1", f"--file-prefix={prefix}",
                   "--in-memory"] + [f"--vdev={c}" for c in clients] + [
                "--", "-p", "0x3", "-P", "--parse-ptype", "--config=(0,0,1),(1,0,1)",
                f"--rule_ipv4={self.l3fwd_v4}", f"--rule_ipv6={self.l3fwd_v6}"]
            return cmd, prefix, None
        devs = [("p0", clients[0]), ("p1", clients[1])]
        if system == "pollfwd-chain":
            devs.append(("p2", f"net_pcap2,rx_pcap={self.empty}"))  # NAT outside, unused
        cfg = self.pollfwd_config(system, "memif", devs, 16383)
        return ([self.pollfwd, "--config", str(cfg), "--summary", "json",
                 "--duration", str(self.a.warmup + self.a.seconds + 30)],
                "pfbench-pf-memif", self.work / "ctl-memif.sock")


# --------------------------------------------------------------------------------------------
# One trial


def wait_flowing(read, proc, timeout=15.0):
    """Waits until the counter `read()` grows."""
    first = read()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.p.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.p.returncode}")
        time.sleep(0.2)
        if read() > first:
            return
    raise RuntimeError(f"no packets counted within {timeout:.0f} s")


def sample_window(read, seconds):
    """Samples `read()` (a dict of counters) once a second; returns (t, values) pairs."""
    samples = [(time.monotonic(), read())]
    for i in range(1, int(round(seconds)) + 1):
        target = samples[0][0] + i
        time.sleep(max(0.0, target - time.monotonic()))
        samples.append((time.monotonic(), read()))
    return samples


def rates(samples, key):
    (t0, v0), (t1, v1) = samples[0], samples[-1]
    per_s = [(b[1][key] - a[1][key]) / (b[0] - a[0]) / 1e6 for a, b in zip(samples, samples[1:])]
    return (v1[key] - v0[key]) / (t1 - t0) / 1e6, per_s


def pollfwd_window_start(ctl):
    if ctl:
        Control(ctl).call("clear")


def pollfwd_window_end(ctl):
    """Runtime figures of the measurement window (counters were cleared at its start)."""
    if not ctl:
        return None
    c = Control(ctl)
    rt = c.call("runtime")
    lc = c.call("lcores")
    hz = rt["tsc_hz"]
    l_rt, l_lc = rt["lcores"][0], lc[0]
    tx = max(1, l_lc["tx_packets"])
    d = l_rt["dwell"]
    return {
        "stage_cycles_per_packet": {s["stage"]: s["cycles_per_packet"] for s in l_rt["stages"]},
        "packets_per_call": {s["stage"]: s["packets_per_call"] for s in l_rt["stages"]},
        "loop_cycles_per_packet": round((l_lc["busy_cycles"] + l_lc["idle_cycles"]) / tx, 1),
        "busy_pct": l_lc["busy_pct"],
        "dwell_p50_us": round(d["p50_ns"] / 1e3, 3),
        "dwell_p99_us": round(d["p99_ns"] / 1e3, 3),
        "dwell_p999_us": round(d["p999_ns"] / 1e3, 3),
        "dwell_bursts": d["bursts"],
        "rx_packets": l_lc["rx_packets"],
        "tx_packets": l_lc["tx_packets"],
        "drops": l_lc["drops"],
        "drops_by_reason": l_lc["drops_by_reason"],
        "tsc_hz": hz,
        # Every worker lcore's own loop (several workers: each one's cycles per packet it sent,
        # and the packets it handed to another worker or took from one).
        "workers": [{"loop_cycles_per_packet": round((w["busy_cycles"] + w["idle_cycles"])
                                                     / max(1, w["tx_packets"]), 1),
                     "tx_packets": w["tx_packets"], "busy_pct": w["busy_pct"],
                     "handoff_in": w.get("handoff_in", 0), "handoff_out": w.get("handoff_out", 0)}
                    for w in lc],
    }


def trial_inproc(setup, system, size, idx):
    a = setup.a
    cmd, prefix, ctl = setup.inproc(system, size)
    logf = setup.work / f"log-inproc-{system}-{size}-{idx}.txt"
    with BusyLock():
        load = os.getloadavg()[0]
        proc = Proc(system, cmd, logf, a.warmup + a.seconds + 40)
        tel = Telemetry(prefix)
        try:
            tel.connect(proc.p)
            count = lambda: tel.total([0, 1], "opackets")  # noqa: E731  (only the sink transmits)
            wait_flowing(count, proc)
            time.sleep(a.warmup)
            pollfwd_window_start(ctl)
            cpu0 = thread_times(proc)
            samples = sample_window(lambda: {"out": count()}, a.seconds)
            cpu = thread_cpu_pct(cpu0, thread_times(proc), samples[-1][0] - samples[0][0])
            pf = pollfwd_window_end(ctl)
        except Exception as e:
            raise RuntimeError(f"{system} {size}B: {e}\n{proc.tail()}") from None
        finally:  # also on Ctrl-C: never leave a busy-polling process behind the lock
            tel.close()
            rc = proc.stop()
    mpps, per_s = rates(samples, "out")
    return {"mpps": round(mpps, 4), "per_second_mpps": [round(x, 4) for x in per_s],
            "loadavg_1m": round(load, 2), "exit_code": rc, "thread_cpu_pct": cpu,
            "pollfwd": pf}


def trial_memif(setup, system, size, idx):
    a = setup.a
    gcmd, gprefix, gports = setup.generator(size)
    cmd, prefix, ctl = setup.memif(system)
    for s in setup.memif_sockets():
        s.unlink(missing_ok=True)
    glog = setup.work / f"log-memif-gen-{system}-{size}-{idx}.txt"
    logf = setup.work / f"log-memif-{system}-{size}-{idx}.txt"
    with BusyLock():
        load = os.getloadavg()[0]
        bound = a.warmup + a.seconds + 40
        gen = Proc("generator", gcmd, glog, bound + 10)
        sut = None
        gtel = Telemetry(gprefix)
        try:
            gtel.connect(gen.p)
            deadline = time.monotonic() + 10
            while not all(s.exists() for s in setup.memif_sockets()):
                if time.monotonic() > deadline or gen.p.poll() is not None:
                    raise RuntimeError("generator's memif sockets did not appear")
                time.sleep(0.1)
            sut = Proc(system, cmd, logf, bound)
            stel = Telemetry(prefix)
            stel.connect(sut.p)
            stel.close()
            back = lambda: gtel.total(gports, "ipackets")  # noqa: E731
            wait_flowing(back, sut)
            time.sleep(a.warmup)
            pollfwd_window_start(ctl)
            cpu0, gcpu0 = thread_times(sut), thread_times(gen)
            samples = sample_window(
                lambda: {"back": back(), "offered": gtel.total(gports, "opackets")}, a.seconds)
            span = samples[-1][0] - samples[0][0]
            cpu = thread_cpu_pct(cpu0, thread_times(sut), span)
            gcpu = thread_cpu_pct(gcpu0, thread_times(gen), span)
            pf = pollfwd_window_end(ctl)
        except Exception as e:
            tail = (sut.tail() if sut else "") + gen.tail()
            raise RuntimeError(f"{system} {size}B (memif): {e}\n{tail}") from None
        finally:  # also on Ctrl-C: never leave a busy-polling process behind the lock
            gtel.close()
            # The server (generator) first, then the client: testpmd can crash when its memif
            # peer leaves while it is still forwarding (docs/benchmarking.md).
            # BENCH_MEMIF_STOP=client-first|together tries other orders.
            order = os.environ.get("BENCH_MEMIF_STOP", "server-first")
            if sut is None:
                rc, grc = None, gen.stop()
            elif order == "client-first":
                rc, grc = sut.stop(), gen.stop()
            elif order == "server-first":
                grc, rc = gen.stop(), sut.stop()
            else:
                sut.interrupt()
                gen.interrupt()
                rc, grc = sut.stop(), gen.stop()
    for s in setup.memif_sockets():
        s.unlink(missing_ok=True)
    mpps, per_s = rates(samples, "back")
    offered, _ = rates(samples, "offered")
    return {"mpps": round(mpps, 4), "offered_mpps": round(offered, 4),
            "per_second_mpps": [round(x, 4) for x in per_s], "loadavg_1m": round(load, 2),
            "exit_code": rc, "generator_exit_code": grc, "thread_cpu_pct": cpu,
            "generator_thread_cpu_pct": gcpu, "pollfwd": pf}


# --------------------------------------------------------------------------------------------
# Summaries


def summarize(trials, system=""):
    m = [t["mpps"] for t in trials]
    med = statistics.median(m)
    out = {
        "median_mpps": round(med, 4),
        "min_mpps": round(min(m), 4),
        "max_mpps": round(max(m), 4),
        "spread_pct": round(100 * (max(m) - min(m)) / med, 1) if med > 0 else 0.0,
    }
    # CPU share the worker thread actually got during the window (other work on the machine
    # takes the rest): Mpps / share estimates the rate on a CPU of its own.
    shares = []
    for t in trials:
        w = [v for k, v in t.get("thread_cpu_pct", {}).items() if is_worker_thread(system, k)]
        if w:
            shares.append(max(w) / 100)
    if len(shares) == len(trials) and all(x > 0 for x in shares):
        out["worker_cpu_pct"] = round(100 * statistics.median(shares), 1)
        out["median_mpps_per_cpu"] = round(
            statistics.median(t["mpps"] / x for t, x in zip(trials, shares)), 4)
    gshares = [max(t["generator_thread_cpu_pct"].values(), default=0) / 100 for t in trials
               if t.get("generator_thread_cpu_pct")]
    if gshares:
        out["generator_cpu_pct"] = round(100 * statistics.median(gshares), 1)
    if "offered_mpps" in trials[0]:
        out["median_offered_mpps"] = round(statistics.median(t["offered_mpps"] for t in trials), 4)
    pfs = [t["pollfwd"] for t in trials if t.get("pollfwd")]
    if pfs:
        stages = pfs[0]["stage_cycles_per_packet"].keys()
        out["pollfwd"] = {
            "stage_cycles_per_packet": {
                s: round(statistics.median(p["stage_cycles_per_packet"][s] for p in pfs), 1)
                for s in stages},
            "loop_cycles_per_packet": round(
                statistics.median(p["loop_cycles_per_packet"] for p in pfs), 1),
            "dwell_p50_us": statistics.median(p["dwell_p50_us"] for p in pfs),
            "dwell_p99_us": statistics.median(p["dwell_p99_us"] for p in pfs),
            "dwell_p999_us": statistics.median(p["dwell_p999_us"] for p in pfs),
            "busy_pct": statistics.median(p["busy_pct"] for p in pfs),
            "drops": max(p["drops"] for p in pfs),
        }
        if all(len(p.get("workers", [])) > 1 for p in pfs):
            n = len(pfs[0]["workers"])
            out["pollfwd"]["workers"] = [{
                k: round(statistics.median(p["workers"][i][k] for p in pfs), 1)
                for k in ("loop_cycles_per_packet", "tx_packets", "handoff_in", "handoff_out")}
                for i in range(n)]
    return out


def is_worker_thread(system, name):
    """The busy-polling thread of a system: DPDK worker lcores, or l3fwd's main lcore (its
    only lcore, `-l 1`)."""
    base = name.split("/")[0]
    return base.startswith(("lcore-worker", "rte-worker")) or (
        system == "l3fwd-lpm" and base == "l3fwd")


def idle_check(rows):
    """Busiest non-worker thread per system over every trial: main lcores must not busy-poll."""
    out = []
    for r in rows:
        for t in r.get("trials", []):
            for who, key in (("", "thread_cpu_pct"), ("generator ", "generator_thread_cpu_pct")):
                sysname = r["system"] if not who else "generator"
                for name, pct in t.get(key, {}).items():
                    if not is_worker_thread(sysname, name):
                        out.append((pct, f"{who}{LABELS.get(r['system'], r['system'])} "
                                         f"{r['size']}: thread {name} {pct:.0f}%"))
    return max(out) if out else None


def print_tables(doc):
    sizes = doc["params"]["sizes"]
    for h in doc["params"]["harnesses"]:
        rows = [r for r in doc["results"] if r["harness"] == h]
        if not rows:
            continue
        log()
        log(HARNESS_TITLE[h])
        log(f"  median Mpps over {doc['params']['trials']} trial(s) of {doc['params']['seconds']} s"
            " (spread = (max-min)/median)")
        head = f"  {'system':<20}" + "".join(f"{s:>13}" for s in sizes)
        log(head)
        for sysname in doc["params"]["systems"]:
            line = f"  {LABELS[sysname]:<20}"
            got = False
            for s in sizes:
                r = next((r for r in rows if r["system"] == sysname and r["size"] == s), None)
                if r and "median_mpps" in r:
                    got = True
                    line += f"{r['median_mpps']:>7.2f} ±{r['spread_pct']:>3.0f}%"
                elif r and r.get("error"):
                    line += f"{'error':>13}"
                else:
                    line += f"{'-':>13}"
            if got:
                log(line)
        if any("worker_cpu_pct" in r for r in rows):
            log("  worker thread's CPU share in the window (%, median) and Mpps / share "
                "(estimate for a CPU of its own):")
            for sysname in doc["params"]["systems"]:
                line = f"  {LABELS[sysname]:<20}"
                got = False
                for s in sizes:
                    r = next((r for r in rows if r["system"] == sysname and r["size"] == s
                              and "worker_cpu_pct" in r), None)
                    if r:
                        got = True
                        line += f"{r['median_mpps_per_cpu']:>7.2f} ({r['worker_cpu_pct']:>3.0f}%)"
                    else:
                        line += f"{'-':>13}"
                if got:
                    log(line)
        if h == "memif":
            log("  offered by the generator (Mpps, median; it slows down when the system's rings"
                " stay full) and the CPU share its forwarding thread got:")
            for sysname in doc["params"]["systems"]:
                line = f"  {LABELS[sysname]:<20}"
                got = False
                for s in sizes:
                    r = next((r for r in rows if r["system"] == sysname and r["size"] == s
                              and "median_offered_mpps" in r), None)
                    if r:
                        got = True
                        g = r.get("generator_cpu_pct")
                        line += (f"{r['median_offered_mpps']:>7.2f} ({g:>3.0f}%)" if g is not None
                                 else f"{r['median_offered_mpps']:>8.2f}     ")
                    else:
                        line += f"{'-':>13}"
                if got:
                    log(line)
        base = {r["size"]: r["median_mpps"] for r in rows
                if r["system"] == "testpmd-io" and "median_mpps" in r}
        if base and any(s.startswith("pollfwd") for s in doc["params"]["systems"]):
            log("  ratio to testpmd io (same harness, same size):")
        for sysname in [s for s in doc["params"]["systems"] if s.startswith("pollfwd")]:
            line = f"  {LABELS[sysname]:<20}"
            got = False
            for s in sizes:
                r = next((r for r in rows if r["system"] == sysname and r["size"] == s
                          and "median_mpps" in r), None)
                if r and base.get(s):
                    got = True
                    line += f"{r['median_mpps'] / base[s]:>9.2f}    "
                else:
                    line += f"{'-':>13}"
            if got:
                log(line)
        worst = idle_check(rows)
        if worst is None and any(t.get("thread_cpu_pct") for r in rows for t in r["trials"]):
            log("  main lcores idle: no thread but the workers above 1 % CPU in any window")
        elif worst:
            log(f"  busiest non-worker thread (main lcores, management, telemetry): {worst[1]}"
                + ("  <- more than a sleeping main lcore" if worst[0] > 20 else ""))
        pf = [r for r in rows if r.get("pollfwd")]
        if pf:
            log("  pollfwd runtime over the window (medians): cycles/packet per stage and of the"
                " whole loop; rx-to-tx dwell per burst")
            for r in pf:
                p = r["pollfwd"]
                st = " ".join(f"{k} {v:.1f}" for k, v in p["stage_cycles_per_packet"].items())
                log(f"    {LABELS[r['system']]:<19} {r['size']:>5}: {st:<52} loop "
                    f"{p['loop_cycles_per_packet']:>6.1f}  dwell p50/p99/p99.9 "
                    f"{p['dwell_p50_us']:.1f}/{p['dwell_p99_us']:.1f}/{p['dwell_p999_us']:.1f} us"
                    f"  busy {p.get('busy_pct', 0):.0f}%"
                    + (f"  drops {p['drops']}" if p["drops"] else ""))


def host_info():
    def sh(*cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO).stdout.strip()
        except OSError:
            return ""

    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    dirty = sh("git", "status", "--porcelain", "--untracked-files=no")
    return {
        "hostname": platform.node(),
        "cpu": model,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "dpdk": sh("pkg-config", "--modversion", "libdpdk"),
        "pollfwd_commit": sh("git", "rev-parse", "--short", "HEAD") + ("+dirty" if dirty else ""),
        "loadavg_start": list(os.getloadavg()),
    }


def on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main():
    signal.signal(signal.SIGTERM, on_sigterm)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"sizes {' '.join(QUICK_SIZES)}, 1 trial of 2 s (a few minutes)")
    ap.add_argument("--sizes", help="frame sizes incl. FCS and/or imix, e.g. '64 512 imix'")
    ap.add_argument("--trials", type=int)
    ap.add_argument("--seconds", type=float, help="measurement window per trial")
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds before the window")
    ap.add_argument("--harness", default="inproc,memif", help="inproc, memif or both")
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--out", help="result JSON (default bench/results/<timestamp>.json)")
    ap.add_argument("--report", metavar="FILE.json",
                    help="no run: recompute the summaries of a result file, print its tables, "
                         "rewrite it and its SVG")
    ap.add_argument("--pollfwd")
    ap.add_argument("--pollfwdctl")
    ap.add_argument("--l3fwd")
    a = ap.parse_args()
    if a.report:
        path = Path(a.report)
        doc = json.loads(path.read_text())
        for r in doc["results"]:
            if r["trials"]:
                r.update(summarize(r["trials"], r["system"]))
        path.write_text(json.dumps(doc, indent=1) + "\n")
        plot.write_svg(doc, path.with_suffix(".svg"))
        print_tables(doc)
        return 0
    if not (a.pollfwd and a.pollfwdctl and a.l3fwd):
        ap.error("--pollfwd, --pollfwdctl and --l3fwd are required (bench/run.sh passes them)")
    a.trials = a.trials or (1 if a.quick else 3)
    a.seconds = a.seconds or (2.0 if a.quick else 5.0)
    sizes = (a.sizes.replace(",", " ").split() if a.sizes
             else (QUICK_SIZES if a.quick else ALL_SIZES))
    for s in sizes:
        if s != "imix" and not (s.isdigit() and 64 <= int(s) <= 1518):
            ap.error(f"bad size {s!r}: 64..1518 or imix")
    harnesses = [h for h in a.harness.replace(",", " ").split()]
    systems = [s for s in a.systems.replace(",", " ").split()]
    for h in harnesses:
        if h not in HARNESSES:
            ap.error(f"unknown harness {h!r} (inproc, memif)")
    for s in systems:
        if s not in SYSTEMS:
            ap.error(f"unknown system {s!r} ({', '.join(SYSTEMS)})")

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    info = host_info()  # at the start: load average before the run, the tree being measured
    out = Path(a.out) if a.out else REPO / "bench" / "results" / f"{stamp}.json"
    work = Path(f"/tmp/pfbench-{os.getpid()}")
    work.mkdir(parents=True, exist_ok=True)
    setup = Setup(a, work)

    skipped = {}
    for s in systems:
        if s.startswith("pollfwd"):
            why = setup.check_pollfwd(s)
            if why:
                skipped[s] = why
                log(f"skipped: {LABELS[s]}: stage not available ({why})")
    run_systems = [s for s in systems if s not in skipped]
    plan = [(h, s, z) for h in harnesses for z in sizes for s in run_systems]
    est = len(plan) * a.trials * (a.warmup + a.seconds + 3)
    log(f"pollfwd bench: {len(run_systems)} systems x {len(sizes)} sizes x {len(harnesses)} "
        f"harness(es), {a.trials} trial(s) x {a.seconds:g} s (+{a.warmup:g} s warm-up); "
        f"{len(plan) * a.trials} runs, about {est / 60:.0f} min; work dir {work}")

    trials = {k: [] for k in plan}
    errors = {}
    for t in range(1, a.trials + 1):
        for key in plan:
            h, s, z = key
            if key in errors:
                continue
            try:
                r = (trial_inproc if h == "inproc" else trial_memif)(setup, s, z, t)
            except Exception as e:  # one broken system must not end the run
                errors[key] = str(e).splitlines()[0]
                log(f"  trial {t} {h:<6} {LABELS[s]:<19} {z:>5}: ERROR {e}")
                continue
            trials[key].append(r)
            extra = f" (offered {r['offered_mpps']:.2f})" if "offered_mpps" in r else ""
            pf = r.get("pollfwd")
            if pf:
                extra += (f"  loop {pf['loop_cycles_per_packet']:.0f} cyc/pkt, dwell p99 "
                          f"{pf['dwell_p99_us']:.1f} us" + (f", drops {pf['drops']}" if pf["drops"] else ""))
            log(f"  trial {t} {h:<6} {LABELS[s]:<19} {z:>5}: {r['mpps']:7.3f} Mpps{extra}"
                f"  [load {r['loadavg_1m']:.1f}]")

    results = []
    for key in plan:
        h, s, z = key
        r = {"harness": h, "system": s, "size": z, "avg_frame_bytes": round(avg_frame(z), 2)}
        if trials[key]:
            r.update(summarize(trials[key], s))
            r["gbps"] = round(r["median_mpps"] * avg_frame(z) * 8 / 1000, 3)
        if key in errors:
            r["error"] = errors[key]
        r["trials"] = trials[key]
        results.append(r)
    info["loadavg_end"] = list(os.getloadavg())
    doc = {
        "schema": 1,
        "started": stamp,
        "host": info,
        "params": {"sizes": sizes, "trials": a.trials, "seconds": a.seconds, "warmup": a.warmup,
                   "burst": BURST, "flows": FLOWS, "chain_flows_inproc": CHAIN_FLOWS,
                   "acl_rules": ACL_RULES, "harnesses": harnesses, "systems": run_systems,
                   "quick": a.quick},
        "skipped": [{"system": s, "reason": why} for s, why in skipped.items()],
        "results": results,
    }
    for f in work.glob("*.pcap"):  # up to ~100 MB each; the logs and configs stay
        f.unlink()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    svg = out.with_suffix(".svg")
    plot.write_svg(doc, svg)
    print_tables(doc)
    log()
    log(f"results: {out}")
    log(f"plot:    {svg}")
    log(f"logs:    {work}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

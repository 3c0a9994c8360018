#!/usr/bin/env bash
# Hostile traffic and the legitimate rate (issue 18, "pcap labs"): the full chain
# classify -> nat -> policer -> forward on one worker lcore, release build, --no-pci,
# net_pcap infinite_rx=1 source on the inside port "lan" -> net_pcap sink "wan" (empty rx
# file, no tx file). Two inputs with the same legitimate frames (appliance/examples/
# hostile_pcap.rs): clean.pcap = N frames of an inside host (UDP 64/570 B and TCP, 64 flows,
# translated by NAT and routed to a static gateway), mixed.pcap = the same N frames with one
# hostile frame of lab::hostile's corpus (the inside-port kinds, in turn) after every EVERY.
# Each trial warms WARM seconds, then measures MEASURE seconds between two `stats` snapshots:
# the legitimate rate is the inside port's receive rate times the legitimate share of the
# file (N / frames per file; net_pcap replays the file in order and the worker keeps up with
# every frame it is given, so every replayed frame is processed), i.e. legitimate frames
# handled per second. Trials alternate clean and mixed (the machine is noisy); medians and
# the ratio mixed/clean are printed. A benchmark, not a test: the figures depend on the
# machine; docs/reliability.md records them.
#
#   bench/hostile.sh [TRIALS] [MEASURE_SECONDS] [N] [EVERY]   (default 3 trials of 4 s, 4096, 16)
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-3}
secs=${2:-4}
n=${3:-4096}
every=${4:-16}
warm=${WARM:-2}
work=$(mktemp -d /tmp/pollfwd-bench-hostile.XXXXXX)
cleanup() {
    rm -rf "$work"
    rm -rf /var/run/dpdk/pfbench-hostile 2>/dev/null || true
}
trap cleanup EXIT
cargo build --release --quiet -p pollfwd --bins --example hostile_pcap
tgt=$(realpath -m "${CARGO_TARGET_DIR:-target}")
ctl=$tgt/release/pollfwdctl
read -r _ legit _ hostile _ kinds < <("$tgt/release/examples/hostile_pcap" "$work" "$n" "$every")

config() { # name input
    cat > "$work/$1.toml" <<TOML
[eal]
file_prefix = "pfbench-hostile"
[mempool]
mbufs = 32767
[[port]]
name = "lan"
device = "net_pcap0,rx_pcap=$work/$2,infinite_rx=1"
address = "10.0.0.1/24"
[[port]]
name = "wan"
device = "net_pcap1,rx_pcap=$work/empty.pcap"
address = "198.51.100.1/24"
[[lcore]]
id = 1
rx = [{ port = "lan" }, { port = "wan" }]
stages = ["classify", "nat", "policer", "forward"]
[classify]
default = "permit"
classes = ["bulk", "web"]
rules = [
  { dst = "203.0.113.0/24", action = "deny" },
  { proto = "udp", action = "permit", class = "bulk" },
  { proto = "tcp", action = "permit", class = "web" },
]
[nat]
inside = ["lan"]
outside = ["wan"]
pool = ["198.51.100.16/28"]
max_sessions = 65536
[policer]
policers = [
  { name = "bulk", kind = "srtcm", cir = 100000000000, cbs = 100000000, ebs = 0, bind = { class = "bulk" } },
  { name = "web", kind = "srtcm", cir = 100000000000, cbs = 100000000, ebs = 0, bind = { class = "web", per_source = true, max_sources = 4096 } },
]
[forward]
routes = [{ prefix = "0.0.0.0/0", via = "198.51.100.254" }]
neighbors = [
  { address = "198.51.100.254", mac = "02:00:00:00:01:fe", port = "wan" },
  { address = "10.0.0.2", mac = "02:00:00:00:00:10", port = "lan" },
]
proxy_arp = [{ prefix = "198.51.100.16/28", port = "wan" }]
[control]
socket = "$work/ctl.sock"
TOML
    "$tgt/release/pollfwd" --config "$work/$1.toml" --check >/dev/null
}

trial() { # name frames_per_file -> "legit_Mpps all_Mpps wan_tx_Mpps"
    flock /tmp/pollfwd-busy.lock bash -c '
        "$0" --config "$1" --duration "$2" --summary json > "$3.json" 2> "$3.err" &
        pid=$!
        sleep "$4"
        "$5" --socket "$6" call stats > "$3.s1"
        sleep "$7"
        "$5" --socket "$6" call stats > "$3.s2"
        wait $pid
    ' "$tgt/release/pollfwd" "$work/$1.toml" "$((warm + secs + 1))" "$work/$1" "$warm" "$ctl" \
        "$work/ctl.sock" "$secs" || { cat "$work/$1.err" >&2; exit 1; }
    python3 - "$work/$1" "$legit" "$2" <<'PY'
import json, sys
b, legit, per_file = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s1, s2 = json.load(open(b + ".s1")), json.load(open(b + ".s2"))
dt = s2["uptime_s"] - s1["uptime_s"]
p = lambda s, name, f: next(x for x in s["ports"] if x["name"] == name)[f]
rx = p(s2, "lan", "rx_packets") - p(s1, "lan", "rx_packets")
tx = p(s2, "wan", "tx_packets") - p(s1, "wan", "tx_packets")
print(f"{rx * legit / per_file / dt / 1e6:.3f} {rx / dt / 1e6:.3f} {tx / dt / 1e6:.3f}")
PY
}

config clean clean.pcap
config mixed mixed.pcap
echo "harness: full chain, 1 worker, net_pcap infinite_rx -> sink; $legit legitimate frames per file, mixed adds $hostile hostile ones ($kinds kinds, 1 per $every); warm ${warm}s, measured ${secs}s, $trials trials"
declare -a cl mx
for t in $(seq 1 "$trials"); do
    c=$(trial clean "$legit")
    m=$(trial mixed "$((legit + hostile))")
    echo "trial $t: clean legit/all/wan-tx Mpps $c | mixed $m"
    cl+=("${c%% *}")
    mx+=("${m%% *}")
done
python3 - "${cl[*]}" "${mx[*]}" <<'PY'
import statistics, sys
c = [float(x) for x in sys.argv[1].split()]
m = [float(x) for x in sys.argv[2].split()]
mc, mm = statistics.median(c), statistics.median(m)
r = mm / mc if mc else 0.0
print(f"legitimate rate, median: clean {mc:.3f} Mpps, mixed {mm:.3f} Mpps, ratio {r:.3f} "
      f"({'within' if r >= 0.9 else 'NOT within'} 10 % of clean)")
PY

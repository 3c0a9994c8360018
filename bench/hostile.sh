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
# --per-kind: the cost of each kind alone. Files kind-NAME.pcap hold the same N legitimate
# frames with that kind's frames only, one after every EVERY; each round measures, for every
# kind, clean.pcap and right after it the kind's file, and the report gives per kind (median
# over rounds) the cost of one hostile frame from the worker's busy TSC cycles ((cycles per
# kind file - cycles per clean file) / hostile frames per file), in cycles and in legitimate
# frames, the legitimate rate's ratio to clean, and the worker's own per-stage cycles per
# packet with the kind (`runtime`, sampled bursts). A share of 1 in 4 (EVERY=4) makes a
# kind's cost stand out of the machine's noise. KINDS="name ..." measures those kinds only.
# PERF_DIR=DIR (an existing directory): each trial also records the process with `perf record
# -g` during its measured seconds, into DIR/NAME.perf.data (the last trial of each name kept).
#
#   bench/hostile.sh [TRIALS] [MEASURE_SECONDS] [N] [EVERY]   (default 3 trials of 4 s, 4096, 16)
#   bench/hostile.sh --per-kind [ROUNDS] [MEASURE_SECONDS] [N] [EVERY]  (default 1 round of 2 s, 4096, 4)
set -euo pipefail
cd "$(dirname "$0")/.."
per_kind=
if [ "${1:-}" = --per-kind ]; then
    per_kind=1
    shift
    set -- "${1:-1}" "${2:-2}" "${3:-4096}" "${4:-4}"
fi
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
"$tgt/release/examples/hostile_pcap" "$work" "$n" "$every" ${per_kind:+--per-kind} > "$work/files"
read -r _ legit _ hostile _ kinds < "$work/files"

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

trial() { # name frames_per_file -> "legit_Mpps all_Mpps wan_tx_Mpps busy_cycles_per_frame"
    flock /tmp/pollfwd-busy.lock bash -c '
        rm -f "$6"
        "$0" --config "$1" --duration "$2" --summary json > "$3.json" 2> "$3.err" &
        pid=$!
        # Warm-up counts from the control socket being up (start-up is slower under load).
        for _ in $(seq 100); do [ -S "$6" ] && break; sleep 0.1; done
        sleep "$4"
        "$5" --socket "$6" call stats > "$3.s1"
        "$5" --socket "$6" call runtime > "$3.r1"
        if [ -n "$8" ]; then
            perf record -q -F 2999 -g -p "$pid" -o "$8/$(basename "$3").perf.data" -- sleep "$7" \
                2> /dev/null
        else
            sleep "$7"
        fi
        "$5" --socket "$6" call stats > "$3.s2"
        "$5" --socket "$6" call runtime > "$3.r2"
        kill -INT $pid
        wait $pid
    ' "$tgt/release/pollfwd" "$work/$1.toml" "$((warm + secs + 60))" "$work/$1" "$warm" "$ctl" \
        "$work/ctl.sock" "$secs" "${PERF_DIR:-}" || { cat "$work/$1.err" >&2; exit 1; }
    python3 - "$work/$1" "$legit" "$2" <<'PY'
import json, sys
b, legit, per_file = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s1, s2 = json.load(open(b + ".s1")), json.load(open(b + ".s2"))
dt = s2["uptime_s"] - s1["uptime_s"]
p = lambda s, name, f: next(x for x in s["ports"] if x["name"] == name)[f]
rx = p(s2, "lan", "rx_packets") - p(s1, "lan", "rx_packets")
tx = p(s2, "wan", "tx_packets") - p(s1, "wan", "tx_packets")
busy = s2["lcores"][0]["busy_cycles"] - s1["lcores"][0]["busy_cycles"]
lrx = s2["lcores"][0]["rx_packets"] - s1["lcores"][0]["rx_packets"]
# Per-stage cycles per packet of the sampled bursts between the two runtime snapshots.
r1, r2 = (json.load(open(b + x))["lcores"][0]["stages"] for x in (".r1", ".r2"))
st = " ".join(
    f"{a['stage']}={(b2['cycles'] - a['cycles']) / max(1, b2['timed_packets'] - a['timed_packets']):.0f}"
    for a, b2 in zip(r1, r2))
print(f"{rx * legit / per_file / dt / 1e6:.3f} {rx / dt / 1e6:.3f} {tx / dt / 1e6:.3f} "
      f"{busy / max(1, lrx):.1f} {st}")
PY
}

config clean clean.pcap
if [ -n "$per_kind" ]; then
    echo "per kind: full chain, 1 worker, net_pcap infinite_rx -> sink; $legit legitimate frames per file and one frame of the kind after every $every; warm ${warm}s, measured ${secs}s, $trials rounds"
    out=$work/per-kind.txt
    : > "$out"
    echo "kind H (legit all wan-tx Mpps, cycles/frame, stages) with the kind | clean before it"
    # KINDS="a b": those kinds only (the names the report prints).
    if [ -n "${KINDS:-}" ]; then
        awk -v k=" $KINDS " '$1 != "kind" || index(k, " " $2 " ")' "$work/files" > "$work/files.k"
        mv "$work/files.k" "$work/files"
    fi
    while read -r tag name h; do
        [ "$tag" = kind ] || continue
        config "kind-$name" "kind-$name.pcap"
    done < "$work/files"
    # Each kind right after a clean run: the pair shares the machine's load of the moment.
    for t in $(seq 1 "$trials"); do
        while read -r tag name h; do
            [ "$tag" = kind ] || continue
            c=$(trial clean "$legit")
            k=$(trial "kind-$name" "$((legit + h))")
            echo "$name $h $k | $c" | tee -a "$out"
        done < "$work/files"
    done
    python3 - "$out" "$legit" "$every" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
n = int(sys.argv[2])
for line in open(sys.argv[1]):
    kind, clean = line.split("|")
    k, c = kind.split(), clean.split()
    h = int(k[1])
    kc, cc = float(k[5]), float(c[3])
    # A hostile frame's cycles: the kind's file less the clean file, per hostile frame.
    cost = (kc * (n + h) - cc * n) / h
    rows[k[0]].append((cost, cost / cc, float(k[2]) / float(c[0]), cc, " ".join(k[6:])))
med = lambda v, i: statistics.median(r[i] for r in v)
print(f"{'kind':28} {'cyc/hostile':>11} {'x legit':>7} {'ratio':>6} {'legit cyc':>9}  stages with the kind")
res = sorted(((med(v, 1), k, v) for k, v in rows.items()), reverse=True)
for x, k, v in res:
    print(f"{k:28} {med(v, 0):11.0f} {x:7.2f} {med(v, 2):6.3f} {med(v, 3):9.0f}  {v[-1][4]}")
mean = statistics.mean(r[0] for r in res)
# At a lower share a burst holds fewer hostile frames to share its moves: the mixed run at
# 1 in 16 is the figure to quote, this one says which kinds cost most.
print(f"mean over kinds: a hostile frame costs {mean:.2f} legitimate frames at 1 in {sys.argv[3]}")
PY
    exit 0
fi
config mixed mixed.pcap
echo "harness: full chain, 1 worker, net_pcap infinite_rx -> sink; $legit legitimate frames per file, mixed adds $hostile hostile ones ($kinds kinds, 1 per $every); warm ${warm}s, measured ${secs}s, $trials trials"
declare -a cl mx
for t in $(seq 1 "$trials"); do
    c=$(trial clean "$legit")
    m=$(trial mixed "$((legit + hostile))")
    echo "trial $t: clean legit/all/wan-tx Mpps, cycles/frame, stage cycles/pkt $c | mixed $m"
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

#!/usr/bin/env bash
# pollfwd `xconnect` vs `dpdk-testpmd --forward-mode=io` on the same harness: net_pcap
# infinite_rx=1 source of 64-byte UDP frames -> net_pcap sink (empty rx file, no tx file: it
# counts and drops), one worker lcore each, burst 32, --no-pci. Trials are interleaved (the
# machine is noisy) and the medians compared. Prints Mpps per trial, median, spread, the
# ratio, and pollfwd's cycles per packet.
#
#   bench/xconnect.sh [TRIALS] [SECONDS]     (default 3 trials of 5 s)
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-3}
secs=${2:-5}
size=${BENCH_FRAME_SIZE:-64}
work=$(mktemp -d /tmp/pollfwd-bench-xc.XXXXXX)
trap 'rm -rf "$work" /var/run/dpdk/pfbench-xc /var/run/dpdk/pfbench-tp' EXIT
cargo build --release --quiet
ctl=target/release/pollfwdctl
$ctl gen-pcap -o "$work/in.pcap" -n 1024 --flows 64 --sizes "$size" >/dev/null
$ctl gen-pcap -o "$work/empty.pcap" -n 0 >/dev/null
src="net_pcap0,rx_pcap=$work/in.pcap,infinite_rx=1"
sink="net_pcap1,rx_pcap=$work/empty.pcap"
cat > "$work/xc.toml" <<TOML
[eal]
file_prefix = "pfbench-xc"
[mempool]
mbufs = 8191
[[port]]
name = "p0"
device = "$src"
[[port]]
name = "p1"
device = "$sink"
[[lcore]]
id = 1
rx = [{ port = "p0" }, { port = "p1" }]
stages = ["xconnect"]
[xconnect]
pairs = [["p0", "p1"]]
[control]
socket = "$work/ctl.sock"
TOML

testpmd_trial() {
    # Median of the per-second Tx-pps of port 1 (the sink), skipping the first sample.
    flock /tmp/pollfwd-busy.lock timeout -s INT $((secs + 2)) dpdk-testpmd --no-pci -l 0,1 \
        --file-prefix=pfbench-tp --in-memory --vdev="$src" --vdev="$sink" -- \
        --forward-mode=io --stats-period 1 --no-flush-rx --burst=32 --total-num-mbufs=8192 \
        > "$work/tp.out" 2>&1 || true
    python3 - "$work/tp.out" <<'PY'
import re, statistics, sys
txt = open(sys.argv[1]).read()
tx = [int(x) for x in re.findall(r"Tx-pps:\s+(\d+)", txt)]
# Two ports print per period: take the non-zero (sink) values, drop the ramp-up sample.
vals = [v for v in tx if v > 0][1:] or [0]
print(f"{statistics.median(vals) / 1e6:.3f}")
PY
}

pollfwd_trial() {
    flock /tmp/pollfwd-busy.lock target/release/pollfwd --config "$work/xc.toml" \
        --duration "$secs" --summary json > "$work/pf.json" 2> "$work/pf.err"
    python3 - "$work/pf.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
p1 = next(p for p in s["ports"] if p["name"] == "p1")
l = s["lcores"][0]
mpps = p1["tx_packets"] / s["duration_s"] / 1e6
cpp = (l["busy_cycles"] + l["idle_cycles"]) / max(1, l["tx_packets"])
stage = l["runtime"][0]["cycles_per_packet"]
print(f"{mpps:.3f} {cpp:.1f} {stage:.1f}")
PY
}

echo "harness: net_pcap infinite_rx ${size}B UDP -> net_pcap sink, 1 worker lcore, burst 32, ${trials}x${secs}s"
tp=(); pf=(); cpp=(); stc=()
for i in $(seq 1 "$trials"); do
    t=$(testpmd_trial); tp+=("$t")
    read -r m c s < <(pollfwd_trial); pf+=("$m"); cpp+=("$c"); stc+=("$s")
    printf "trial %d: testpmd io %s Mpps   pollfwd xconnect %s Mpps (%s cycles/pkt, stage %s)\n" "$i" "$t" "$m" "$c" "$s"
done
python3 - "${tp[*]}" "${pf[*]}" "${cpp[*]}" "${stc[*]}" <<'PY'
import statistics, sys
tp = [float(x) for x in sys.argv[1].split()]
pf = [float(x) for x in sys.argv[2].split()]
cpp = [float(x) for x in sys.argv[3].split()]
stc = [float(x) for x in sys.argv[4].split()]
def fmt(v): return f"median {statistics.median(v):6.2f}  min {min(v):6.2f}  max {max(v):6.2f}"
print(f"testpmd --forward-mode=io : {fmt(tp)} Mpps")
print(f"pollfwd xconnect          : {fmt(pf)} Mpps")
print(f"pollfwd cycles/packet     : median {statistics.median(cpp):.1f} (whole loop), xconnect stage {statistics.median(stc):.1f}")
r = statistics.median(pf) / statistics.median(tp) if statistics.median(tp) else 0
print(f"ratio pollfwd/testpmd     : {r:.3f}  (target >= 0.95)")
PY

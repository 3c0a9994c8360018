#!/usr/bin/env bash
# Pipeline mode vs run-to-completion on the same chain: net_pcap infinite_rx=1 source of 64-byte
# UDP frames -> macswap -> xconnect -> net_pcap sink (empty rx file, no tx file), burst 32,
# --no-pci, under the busy-polling lock. Trials interleaved, medians and best printed.
#   rtc      : one worker lcore runs ["macswap", "xconnect"]
#   pipeline : lcore 1 (CPU 0, shared with the sleeping main lcore) runs ["macswap"] and hands
#              every packet over an SP/SC rte_ring to lcore 2 (CPU 1), which runs ["xconnect"]
# Figures: forwarded Mpps (p1 tx), ring_full drops per second, and the cycles per packet each
# lcore spends in its loop.
#
#   bench/pipeline.sh [TRIALS] [SECONDS]     (default 3 trials of 4 s)
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-3}
secs=${2:-4}
target=${CARGO_TARGET_DIR:-target}
work=$(mktemp -d /tmp/pollfwd-bench-pipe.XXXXXX)
trap 'rm -rf "$work"' EXIT
cargo build --release --quiet -p pollfwd
ctl=$target/release/pollfwdctl
$ctl gen-pcap -o "$work/in.pcap" -n 1024 --flows 1024 --sizes 64 >/dev/null
$ctl gen-pcap -o "$work/empty.pcap" -n 0 >/dev/null
common="[eal]
file_prefix = \"pfbench-pipe\"
main_lcore = 0
main_cpu = 0
share_main_cpu = true
[mempool]
mbufs = 16383
[runtime]
ring_size = 4096
[[port]]
name = \"p0\"
device = \"net_pcap0,rx_pcap=$work/in.pcap,infinite_rx=1\"
[[port]]
name = \"p1\"
device = \"net_pcap1,rx_pcap=$work/empty.pcap\"
[xconnect]
pairs = [[\"p0\", \"p1\"]]
[control]
socket = \"$work/ctl.sock\""
cat > "$work/rtc.toml" <<TOML
$common
[[lcore]]
id = 1
cpu = 1
rx = [{ port = "p0" }, { port = "p1" }]
stages = ["macswap", "xconnect"]
TOML
cat > "$work/pipeline.toml" <<TOML
$common
[[lcore]]
id = 1
cpu = 0
rx = [{ port = "p0" }, { port = "p1" }]
stages = ["macswap"]
pipeline_to = 2
tx_ports = []
[[lcore]]
id = 2
cpu = 1
stages = ["xconnect"]
TOML

trial() {
    flock /tmp/pollfwd-busy.lock "$target/release/pollfwd" --config "$work/$1.toml" \
        --duration "$secs" --summary json > "$work/$1.json" 2> "$work/$1.err"
    python3 - "$work/$1.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
p1 = next(p for p in s["ports"] if p["name"] == "p1")
d = s["duration_s"]
full = s["totals"]["drops_by_reason"].get("ring_full", 0)
cpp = [f'{(l["busy_cycles"] + l["idle_cycles"]) / max(1, l["rx_packets"] + l["ring_in"]):.1f}' for l in s["lcores"]]
print(f'{p1["tx_packets"] / d / 1e6:.3f} {full / d / 1e6:.3f} {"/".join(cpp)}')
PY
}

echo "harness: net_pcap infinite_rx 64B UDP -> macswap -> xconnect -> net_pcap sink, burst 32, ${trials}x${secs}s"
declare -A mp fl
for i in $(seq 1 "$trials"); do
    for v in rtc pipeline; do
        read -r m f c < <(trial "$v")
        mp[$v]+="$m "; fl[$v]+="$f "
        printf "trial %d %-9s forwarded %7s Mpps  ring_full %6s Mpps  loop cycles/packet per lcore %s\n" "$i" "$v" "$m" "$f" "$c"
    done
done
for v in rtc pipeline; do
    python3 - "$v" "${mp[$v]}" "${fl[$v]}" <<'PY'
import statistics, sys
v = [float(x) for x in sys.argv[2].split()]
f = [float(x) for x in sys.argv[3].split()]
print(f"{sys.argv[1]:<9} forwarded median {statistics.median(v):6.2f} Mpps, best {max(v):6.2f} Mpps; ring_full median {statistics.median(f):.2f} Mpps")
PY
done

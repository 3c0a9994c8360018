#!/usr/bin/env bash
# NAT44 cost with 1k, 64k and 1M active sessions, next to the NAT-less chain on the same
# harness: net_pcap infinite_rx=1 source on the inside port p0 (a pcap of N distinct UDP flows,
# 60-byte frames, one frame per flow in shuffled order, so every pass touches all N sessions)
# -> net_pcap sink p1 (empty rx file, no tx file), one worker lcore, burst 32, --no-pci,
# chains ["xconnect"] and ["nat", "xconnect"]. Each trial runs WARM seconds (sessions get
# created), then measures MEASURE seconds between two `stats`/`runtime` snapshots over the
# control socket: Mpps out of p1, loop cycles per packet, and the NAT stage's cycles per
# packet. Trials are interleaved (the machine is noisy); medians are printed. Then the NAT
# core alone, in memory (appliance/examples/nat_bench.rs): ns and cycles per packet with and
# without burst prefetching, both directions, and the session table's bytes per session.
# Last, the session index against rte_hash on the same lookups (bench/nat/rte_hash_cmp.c).
#
#   bench/nat.sh [TRIALS] [MEASURE_SECONDS] [SIZES...]   (default 3 trials of 4 s; 1024 65536 1048576)
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-3}
secs=${2:-4}
shift 2 2>/dev/null || true
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(1024 65536 1048576)
warm=${WARM:-3}
work=$(mktemp -d /tmp/pollfwd-bench-nat.XXXXXX)
trap 'rm -rf "$work"' EXIT
cargo build --release --quiet -p pollfwd --bins --example nat_bench
tgt=$(realpath -m "${CARGO_TARGET_DIR:-target}")  # absolute: trials cd into their work directory
ctl=$tgt/release/pollfwdctl
$ctl gen-pcap -o "$work/empty.pcap" -n 0 >/dev/null

config() { # name chain n
    local n=$3 mbufs=$(( ($3 + 16384) | 8191 ))
    cat > "$work/$1.toml" <<TOML
[eal]
file_prefix = "pfbench-nat"
[mempool]
mbufs = $mbufs
data_room = 384
[[port]]
name = "p0"
device = "net_pcap0,rx_pcap=$work/flows-$n.pcap,infinite_rx=1"
[[port]]
name = "p1"
device = "net_pcap1,rx_pcap=$work/empty.pcap"
[[lcore]]
id = 1
rx = [{ port = "p0" }, { port = "p1" }]
stages = $2
[xconnect]
pairs = [["p0", "p1"]]
[control]
socket = "$work/ctl.sock"
[nat]
inside = ["p0"]
outside = ["p1"]
pool = ["198.51.100.32/27"]
filtering = "endpoint-independent"
max_sessions = $(python3 -c "print(1 << ($n - 1).bit_length())")
seed = 5
TOML
}

trial() { # config -> "Mpps loop_cpp nat_cpp sessions"
    flock /tmp/pollfwd-busy.lock bash -c '
        "$0" --config "$1" --duration "$2" --summary json > "$3.json" 2> "$3.err" &
        pid=$!
        sleep "$4"
        "$5" --socket "$6" call stats > "$3.s1" && "$5" --socket "$6" call runtime > "$3.r1"
        sleep "$7"
        "$5" --socket "$6" call stats > "$3.s2" && "$5" --socket "$6" call runtime > "$3.r2"
        "$5" --socket "$6" call nat.summary > "$3.nat" 2>/dev/null || echo "{}" > "$3.nat"
        wait $pid
    ' "$tgt/release/pollfwd" "$work/$1.toml" "$((warm + secs + 2))" "$work/$1" "$warm" "$ctl" \
        "$work/ctl.sock" "$secs" || { cat "$work/$1.err" >&2; exit 1; }
    python3 - "$work/$1" <<'PY'
import json, sys
b = sys.argv[1]
s1, s2 = json.load(open(b + ".s1")), json.load(open(b + ".s2"))
r1, r2 = json.load(open(b + ".r1")), json.load(open(b + ".r2"))
nat = json.load(open(b + ".nat"))
dt = s2["uptime_s"] - s1["uptime_s"]
p = lambda s: next(x for x in s["ports"] if x["name"] == "p1")["tx_packets"]
pk = p(s2) - p(s1)
l1, l2 = s1["lcores"][0], s2["lcores"][0]
cyc = (l2["busy_cycles"] + l2["idle_cycles"]) - (l1["busy_cycles"] + l1["idle_cycles"])
def stage(r, name):
    for st in r["lcores"][0]["stages"]:
        if st["stage"] == name:
            return st["cycles"], st["packets"]
    return 0, 0
c1, n1 = stage(r1, "nat")
c2, n2 = stage(r2, "nat")
natc = (c2 - c1) / (n2 - n1) if n2 > n1 else 0.0
print(f"{pk / dt / 1e6:.3f} {cyc / max(pk, 1):.1f} {natc:.1f} {nat.get('sessions', 0)}")
PY
}

echo "harness: net_pcap infinite_rx 60B UDP, N flows -> net_pcap sink, 1 worker, burst 32; warm ${warm}s, measured ${secs}s, ${trials} trials"
declare -A mp lc nc
for n in "${sizes[@]}"; do
    "$tgt/release/examples/nat_bench" pcap "$work/flows-$n.pcap" "$n"
    config "xc-$n" '["xconnect"]' "$n"
    config "nat-$n" '["nat", "xconnect"]' "$n"
done
for i in $(seq 1 "$trials"); do
    for n in "${sizes[@]}"; do
        for c in "xc-$n" "nat-$n"; do
            read -r m l s ns < <(trial "$c")
            mp[$c]+="$m "; lc[$c]+="$l "; nc[$c]+="$s "
            printf "trial %d %-12s: %7s Mpps  loop %7s cycles/pkt  nat stage %7s cycles/pkt  sessions %s\n" \
                "$i" "$c" "$m" "$l" "$s" "$ns"
        done
    done
done
args=()
for n in "${sizes[@]}"; do
    args+=("$n" "${mp[xc-$n]}" "${lc[xc-$n]}" "${mp[nat-$n]}" "${lc[nat-$n]}" "${nc[nat-$n]}")
done
python3 - "${args[@]}" <<'PY'
import statistics, sys
a = sys.argv[1:]
med = lambda v: statistics.median(float(x) for x in v.split())
print(f"{'sessions':>9} {'xconnect Mpps':>14} {'cyc/pkt':>8} {'nat+xc Mpps':>12} {'cyc/pkt':>8} {'nat stage cyc/pkt':>18} {'ratio':>6}   (medians)")
for i in range(0, len(a), 6):
    n, xm, xl, nm, nl, ns = a[i:i + 6]
    print(f"{n:>9} {med(xm):14.2f} {med(xl):8.1f} {med(nm):12.2f} {med(nl):8.1f} {med(ns):18.1f} {med(nm) / med(xm):6.2f}")
PY
echo
flock /tmp/pollfwd-busy.lock taskset -c 1 "$tgt/release/examples/nat_bench" core "${sizes[@]}"

# The session index against DPDK's rte_hash on the same lookups (bursts of 32, random order,
# the session record read after each hit), thread CPU time.
echo
echo "session lookup: pollfwd's open-addressing index vs rte_hash_lookup_bulk_data (CRC32), 16-byte keys"
gcc -O3 $(pkg-config --cflags libdpdk) -o "$work/rte_hash_cmp" bench/nat/rte_hash_cmp.c \
    $(pkg-config --libs libdpdk) -lrte_hash
for n in "${sizes[@]}"; do
    flock /tmp/pollfwd-busy.lock taskset -c 1 "$tgt/release/examples/nat_bench" index "$n"
    flock /tmp/pollfwd-busy.lock "$work/rte_hash_cmp" --no-pci -l 1 --file-prefix pfbench-hash \
        --in-memory --log-level=error -- "$n" | grep -v '^EAL'
done

#!/usr/bin/env bash
# Forward + NAT44 with 1k, 64k and 1M active sessions, next to forward alone on the same
# harness: net_pcap infinite_rx=1 source on the inside port p0 (a pcap of N distinct UDP flows
# from 4096 inside hosts 10.8.x.y to 192.0.2.1, 60-byte frames, one frame per flow in shuffled
# order, so every pass touches all N sessions) -> net_pcap sink p1 (empty rx file, no tx
# file), one worker lcore, burst 32, --no-pci, chains ["forward"] and ["nat", "forward"] with
# the same routes and static neighbour as bench/forward.sh does it (p0 10.8.0.1/16, p1
# 192.0.2.254/24, a default route via 192.0.2.1, 192.0.2.1 a static neighbour on p1: every
# frame is routed out of p1 without ARP). NAT: pool 198.51.100.32/27, endpoint-independent
# filtering, max_sessions = N. Each trial runs WARM seconds (sessions get created), then
# measures MEASURE seconds between two `stats`/`runtime` snapshots over the control socket:
# Mpps out of p1, loop cycles per packet, the NAT and forward stages' cycles per packet, the
# sessions reached and the session table's bytes per session (nat.summary). Trials are
# interleaved (the machine is noisy); medians are printed. Then (unless NAT_BENCH_QUICK=1) the
# NAT core alone, in memory (appliance/examples/nat_bench.rs: lookups, then new sessions into an
# empty table and with LRU reclaim), and the session index against
# rte_hash on the same lookups (bench/nat/rte_hash_cmp.c).
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
cleanup() {
    rm -rf "$work"
    rm -f /dev/hugepages/pfbench-nat* 2>/dev/null || true
    rm -rf /var/run/dpdk/pfbench-nat 2>/dev/null || true
}
trap cleanup EXIT
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
address = "10.8.0.1/16"
[[port]]
name = "p1"
device = "net_pcap1,rx_pcap=$work/empty.pcap"
address = "192.0.2.254/24"
[[lcore]]
id = 1
rx = [{ port = "p0" }, { port = "p1" }]
stages = $2
[control]
socket = "$work/ctl.sock"
[forward]
routes = [{ prefix = "0.0.0.0/0", via = "192.0.2.1" }]
neighbors = [{ address = "192.0.2.1", mac = "02:00:00:00:00:01", port = "p1" }]
[nat]
inside = ["p0"]
outside = ["p1"]
pool = ["198.51.100.32/27"]
filtering = "endpoint-independent"
max_sessions = $n
seed = 5
TOML
    "$tgt/release/pollfwd" --config "$work/$1.toml" --check >/dev/null
}

trial() { # config -> "Mpps loop_cpp nat_cpp fwd_cpp sessions bytes_per_session all_bytes_per_session drops"
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
drops = l2["drops"] - l1["drops"]
def stage(r, name):
    for st in r["lcores"][0]["stages"]:
        if st["stage"] == name:
            return st["cycles"], st["timed_packets"]  # stage timing samples bursts
    return 0, 0
def cpp(name):
    c1, n1 = stage(r1, name)
    c2, n2 = stage(r2, name)
    return (c2 - c1) / (n2 - n1) if n2 > n1 else 0.0
print(f"{pk / dt / 1e6:.3f} {cyc / max(pk, 1):.1f} {cpp('nat'):.1f} {cpp('forward'):.1f} "
      f"{nat.get('sessions', 0)} {nat.get('bytes_per_session', 0):.1f} "
      f"{nat.get('table_bytes', 0) / max(nat.get('capacity', 1), 1):.1f} {drops}")
PY
}

echo "harness: net_pcap infinite_rx 60B UDP, N flows -> net_pcap sink, 1 worker, burst 32; warm ${warm}s, measured ${secs}s, ${trials} trials"
declare -A mp lc nc fc
for n in "${sizes[@]}"; do
    "$tgt/release/examples/nat_bench" pcap "$work/flows-$n.pcap" "$n"
    config "fwd-$n" '["forward"]' "$n"
    config "nat-$n" '["nat", "forward"]' "$n"
done
declare -A sess bps
for i in $(seq 1 "$trials"); do
    for n in "${sizes[@]}"; do
        for c in "fwd-$n" "nat-$n"; do
            read -r m l s f ns b ab d < <(trial "$c")
            mp[$c]+="$m "; lc[$c]+="$l "; nc[$c]+="$s "; fc[$c]+="$f "
            [ "$c" = "nat-$n" ] && { sess[$n]=$ns; bps[$n]="$b/$ab"; }
            printf "trial %d %-12s: %7s Mpps  loop %7s cycles/pkt  nat %6s  forward %6s cycles/pkt  sessions %s  B/session %s (all NAT tables %s)  drops %s\n" \
                "$i" "$c" "$m" "$l" "$s" "$f" "$ns" "$b" "$ab" "$d"
        done
    done
done
args=()
for n in "${sizes[@]}"; do
    args+=("$n" "${mp[fwd-$n]}" "${lc[fwd-$n]}" "${mp[nat-$n]}" "${lc[nat-$n]}" "${nc[nat-$n]}" \
        "${fc[nat-$n]}" "${sess[$n]}" "${bps[$n]}")
done
python3 - "${args[@]}" <<'PY'
import statistics, sys
a = sys.argv[1:]
med = lambda v: statistics.median(float(x) for x in v.split())
print(f"{'flows':>8} {'forward Mpps':>13} {'cyc/pkt':>8} {'nat+fwd Mpps':>13} {'cyc/pkt':>8} "
      f"{'nat stage':>10} {'fwd stage':>10} {'ratio':>6} {'sessions':>9} {'B/session (all)':>16}   (medians)")
for i in range(0, len(a), 9):
    n, fm, fl, nm, nl, ns, nf, se, b = a[i:i + 9]
    print(f"{n:>8} {med(fm):13.2f} {med(fl):8.1f} {med(nm):13.2f} {med(nl):8.1f} {med(ns):10.1f} "
          f"{med(nf):10.1f} {med(nm) / med(fm):6.2f} {se:>9} {b:>16}")
PY
[ "${NAT_BENCH_QUICK:-0}" = 1 ] && exit 0
echo
flock /tmp/pollfwd-busy.lock taskset -c 1 "$tgt/release/examples/nat_bench" core "${sizes[@]}"
echo
flock /tmp/pollfwd-busy.lock taskset -c 1 "$tgt/release/examples/nat_bench" churn "${sizes[@]}"

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

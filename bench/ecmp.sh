#!/usr/bin/env bash
# Forward over multipath routes (ECMP) against a single next hop, on the same harness and
# traffic. One worker lcore, release build, --no-pci, burst 32: net_pcap infinite_rx=1 source
# of 2048 64-byte UDP frames (2048 flows to random hosts of 10k /24 prefixes in 198.18/15) ->
# net_pcap sink (empty rx file, no tx file). Cases, each with static neighbours for the
# gateways:
#   single      a default route via one gateway (the fast loop's route memo)
#   ecmp2       a default route over 2 gateways (the fast loop's group memo)
#   ecmp4       a default route over 4 gateways
#   ecmp2-10k   the 10k /24 prefixes each over the same 2 gateways (a group per prefix:
#               the general path, see docs/forward.md "ECMP")
# Rate = the sink port's TX packets between two `stats` snapshots SECONDS apart, after 2 s of
# warm-up; the forward stage's cycles per packet from the runtime counters. Trials alternate
# the cases (the machine is noisy); medians and each case's ratio to `single` are printed.
#
#   bench/ecmp.sh [TRIALS] [SECONDS]     (default 3 trials of 3 s)
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-3}
secs=${2:-3}
warm=2
work=$(mktemp -d /tmp/pollfwd-bench-ecmp.XXXXXX)
cleanup() {
    rm -rf "$work"
    rm -rf /var/run/dpdk/pfbench-ecmp 2>/dev/null || true
}
trap cleanup EXIT
cargo build --release --quiet -p pollfwd --bins
tgt=$(realpath -m "${CARGO_TARGET_DIR:-target}")
pollfwd=$tgt/release/pollfwd
ctl=$tgt/release/pollfwdctl
cases="single ecmp2 ecmp4 ecmp2-10k"

python3 - "$work" <<'PY'
import random, struct, sys
work = sys.argv[1]

def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s > 0xffff:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

def pcap(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", i // 1000000, i % 1000000, len(fr), len(fr)))
            f.write(fr)

def frame(src, dst, sport):
    payload = bytes(18)
    udp = struct.pack("!HHHH", sport, 9, 8 + len(payload), 0) + payload
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                               src.to_bytes(4, "big"), dst.to_bytes(4, "big")))
    ip[10:12] = struct.pack("!H", csum(bytes(ip)))
    eth = bytes.fromhex("020000000001") + bytes.fromhex("027063617000") + b"\x08\x00"
    return eth + bytes(ip) + udp

pcap(f"{work}/empty.pcap", [])
rng = random.Random(10000)
prefixes = [0xC6120000 + (i << 8) for i in range(10000)]
ip = lambda a: ".".join(str((a >> k) & 255) for k in (24, 16, 8, 0))
pcap(f"{work}/in.pcap", [frame(0xC0000200 | (10 + k % 200),
                               rng.choice(prefixes) | rng.randrange(1, 255), 1024 + k % 4096)
                         for k in range(2048)])
gws = [f'"203.0.113.{k}"' for k in (2, 3, 4, 5)]
routes = {
    "single": f'routes = [{{ prefix = "0.0.0.0/0", via = {gws[0]} }}]\n',
    "ecmp2": f'routes = [{{ prefix = "0.0.0.0/0", via = [{", ".join(gws[:2])}] }}]\n',
    "ecmp4": f'routes = [{{ prefix = "0.0.0.0/0", via = [{", ".join(gws)}] }}]\n',
    "ecmp2-10k": "routes = [\n" + "".join(
        f'  {{ prefix = "{ip(p)}/24", via = [{", ".join(gws[:2])}] }},\n' for p in prefixes) + "]\n",
}
neigh = ", ".join(f'{{ address = {g}, mac = "02:00:00:00:00:0{k + 2}", port = "p1" }}'
                  for k, g in enumerate(gws))
for name, r in routes.items():
    with open(f"{work}/{name}.toml", "w") as f:
        f.write(f'''[runtime]
burst = 32
[eal]
file_prefix = "pfbench-ecmp"
[mempool]
mbufs = 8191
[[port]]
name = "p0"
device = "net_pcap0,rx_pcap={work}/in.pcap,infinite_rx=1"
address = "192.0.2.1/24"
[[port]]
name = "p1"
device = "net_pcap1,rx_pcap={work}/empty.pcap"
address = "203.0.113.1/24"
[[lcore]]
id = 1
rx = [{{ port = "p0" }}, {{ port = "p1" }}]
stages = ["forward"]
[control]
socket = "{work}/ctl.sock"
[forward]
neighbors = [{neigh}]
{r}''')
PY

trial() { # case -> "Mpps stage_cycles"
    rm -rf /var/run/dpdk/pfbench-ecmp
    flock /tmp/pollfwd-busy.lock bash -c '
        "$0" --config "$1.toml" --duration "$2" --summary json > "$1.json" 2> "$1.err" &
        for i in $(seq 1 100); do "$3" --socket "$4" call stats > /dev/null 2>&1 && break; sleep 0.1; done
        sleep "$5"
        "$3" --socket "$4" call stats > "$1.s1"
        sleep "$6"
        "$3" --socket "$4" call stats > "$1.s2"
        wait
    ' "$pollfwd" "$work/$1" $((warm + secs + 2)) "$ctl" "$work/ctl.sock" "$warm" "$secs"
    python3 - "$work/$1" <<'PY'
import json, sys
base = sys.argv[1]
s1, s2 = (json.load(open(f"{base}.{k}")) for k in ("s1", "s2"))
tx = lambda s: next(p["tx_packets"] for p in s["ports"] if p["name"] == "p1")
mpps = (tx(s2) - tx(s1)) / (s2["uptime_s"] - s1["uptime_s"]) / 1e6
end = json.load(open(f"{base}.json"))
st = next(r for r in end["lcores"][0]["runtime"] if r["stage"] == "forward")
assert end["totals"]["drops"] == 0, "drops"
print(f"{mpps:.3f} {st['cycles_per_packet']:.1f}")
PY
}

echo "harness: net_pcap infinite_rx 2048 64-byte UDP frames -> net_pcap sink, 1 worker lcore, burst 32,"
echo "         ${trials}x${secs}s per case, interleaved"
declare -A mpps cyc
for i in $(seq 1 "$trials"); do
    line="trial $i:"
    for c in $cases; do
        read -r m y < <(trial "$c")
        mpps[$c]+="$m "
        cyc[$c]+="$y "
        line+=" $c $m Mpps (stage $y)"
    done
    echo "$line"
done
args=()
for c in $cases; do args+=("$c" "${mpps[$c]}" "${cyc[$c]}"); done
python3 - "${args[@]}" <<'PY'
import statistics as st, sys
a = sys.argv[1:]
rows = [(a[k], [float(x) for x in a[k + 1].split()], [float(x) for x in a[k + 2].split()])
        for k in range(0, len(a), 3)]
base = st.median(rows[0][1])
print(f"{'case':>10} {'Mpps (median)':>14} {'forward cyc/pkt':>16} {'x single':>9}")
for name, m, c in rows:
    print(f"{name:>10} {st.median(m):>14.2f} {st.median(c):>16.1f} {st.median(m) / base:>9.2f}")
PY

#!/usr/bin/env bash
# Forward with a VLAN sub-interface on each side vs untagged forward (issue: "within 5 % of
# untagged forward"). One worker lcore, release build, --no-pci, burst 32, 10k /24 routes:
# net_pcap infinite_rx=1 source of 2048 UDP frames (64 bytes untagged; the same frames with an
# 802.1Q tag for VLAN 10, 68 bytes, for the VLAN runs) -> net_pcap sink (empty rx file, no tx
# file). Untagged: p0 192.0.2.1/24 -> p1 203.0.113.1/24. VLAN: interface p0.10 (VLAN 10 on
# p0) -> interface p1.20 (VLAN 20 on p1): every packet has its tag popped on receive and a
# new one pushed on transmit. Rate = the sink port's TX packets between two `stats` snapshots
# MEASURE seconds apart, after WARM seconds. Trials alternate untagged and VLAN (the machine
# is noisy); medians, bests and the ratio VLAN / untagged are printed, with pollfwd's forward
# stage cycles per packet and the lcore's whole loop (TSC Hz / rate). A third run per trial
# forwards the untagged packets padded to 68 bytes, the tagged frames' length: net_pcap copies
# every frame, and a 68-byte one spans two cache lines, so it tells the harness's share of the
# difference from the VLAN work's (also measured alone, in memory: examples/vlan_bench.rs).
#
# PERF_DIR=DIR (an existing directory): each run also records the process with `perf record -g`
# during its measured seconds, into DIR/NAME.perf.data (untagged, vlan, untagged68).
#
#   bench/vlan.sh [TRIALS] [MEASURE_SECONDS]     (default 5 trials of 4 s)
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-5}
secs=${2:-4}
warm=${WARM:-2}
work=$(mktemp -d /tmp/pollfwd-bench-vlan.XXXXXX)
cleanup() {
    rm -rf "$work"
    rm -rf /var/run/dpdk/pfbench-vlan 2>/dev/null || true
}
trap cleanup EXIT
cargo build --release --quiet -p pollfwd --bins
tgt=$(realpath -m "${CARGO_TARGET_DIR:-target}")
pollfwd=$tgt/release/pollfwd
ctl=$tgt/release/pollfwdctl

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

def frame(src, dst, sport, vlan, pad=0):
    payload = bytes(18 + pad)
    udp = struct.pack("!HHHH", sport, 9, 8 + len(payload), 0) + payload
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                               src.to_bytes(4, "big"), dst.to_bytes(4, "big")))
    ip[10:12] = struct.pack("!H", csum(bytes(ip)))
    macs = bytes.fromhex("027063617000") + bytes.fromhex("020000000001")
    tag = struct.pack("!HH", 0x8100, vlan) if vlan else b""
    return macs + tag + b"\x08\x00" + bytes(ip) + udp

pcap(f"{work}/empty.pcap", [])
rng = random.Random(10000)
prefixes = [0xC6120000 + (i << 8) for i in range(10000)]
ip = lambda a: ".".join(str((a >> k) & 255) for k in (24, 16, 8, 0))
with open(f"{work}/routes.toml", "w") as f:
    f.write("routes = [\n")
    for p in prefixes:
        f.write(f'  {{ prefix = "{ip(p)}/24", via = "203.0.113.2" }},\n')
    f.write("]\n")
flows = [(0xC0000200 | (10 + k % 200), rng.choice(prefixes) | rng.randrange(1, 255), 1024 + k % 4096)
         for k in range(2048)]
pcap(f"{work}/untagged.pcap", [frame(s, d, p, 0) for s, d, p in flows])
pcap(f"{work}/vlan.pcap", [frame(s, d, p, 10) for s, d, p in flows])
pcap(f"{work}/untagged68.pcap", [frame(s, d, p, 0, 4) for s, d, p in flows])
PY

common() { # input
    cat <<TOML
[runtime]
burst = 32
[eal]
file_prefix = "pfbench-vlan"
[mempool]
mbufs = 8191
[[port]]
name = "p0"
device = "net_pcap0,rx_pcap=$work/$1,infinite_rx=1"
[[port]]
name = "p1"
device = "net_pcap1,rx_pcap=$work/empty.pcap"
[[lcore]]
id = 1
rx = [{ port = "p0" }, { port = "p1" }]
stages = ["forward"]
[control]
socket = "$work/ctl.sock"
TOML
}
{
    common untagged.pcap
    cat <<TOML
[forward]
neighbors = [{ address = "203.0.113.2", mac = "02:00:00:00:00:02", port = "p1" }]
$(cat "$work/routes.toml")
TOML
} | sed 's|^device = "net_pcap0.*|&\naddress = "192.0.2.1/24"|; s|^device = "net_pcap1.*|&\naddress = "203.0.113.1/24"|' \
    > "$work/untagged.toml"
sed 's|untagged.pcap|untagged68.pcap|' "$work/untagged.toml" > "$work/untagged68.toml"
{
    common vlan.pcap
    cat <<TOML
[[interface]]
name = "p0.10"
port = "p0"
vlan = 10
address = "192.0.2.1/24"
[[interface]]
name = "p1.20"
port = "p1"
vlan = 20
address = "203.0.113.1/24"
[forward]
neighbors = [{ address = "203.0.113.2", mac = "02:00:00:00:00:02", port = "p1.20" }]
$(cat "$work/routes.toml")
TOML
} > "$work/vlan.toml"

trial() { # name -> "Mpps stage_cycles tsc_hz drops"
    rm -rf /var/run/dpdk/pfbench-vlan
    local dur=$((warm + secs + 1))
    [ -n "${PERF_DIR:-}" ] && dur=$((dur + 4)) # perf's start-up
    flock /tmp/pollfwd-busy.lock bash -c '
        "$0" --config "$1" --duration "$2" --summary json > "$3.json" 2> "$3.err" &
        pid=$!
        for i in $(seq 1 100); do "$4" --socket "$5" call stats > /dev/null 2>&1 && break; sleep 0.1; done
        sleep "$6"
        "$4" --socket "$5" call stats > "$3.s1"
        if [ -n "$8" ]; then
            perf record -q -F 2999 -g -p "$pid" -o "$8/$(basename "$3").perf.data" -- sleep "$7" \
                2> /dev/null
        else
            sleep "$7"
        fi
        "$4" --socket "$5" call stats > "$3.s2"
        wait $pid
    ' "$pollfwd" "$work/$1.toml" "$dur" "$work/$1" "$ctl" "$work/ctl.sock" "$warm" "$secs" \
        "${PERF_DIR:-}"
    python3 - "$work/$1" "$1" <<'PY'
import json, sys
base, name = sys.argv[1], sys.argv[2]
s1, s2 = (json.load(open(f"{base}.{k}")) for k in ("s1", "s2"))
tx = lambda s: next(p["tx_packets"] for p in s["ports"] if p["name"] == "p1")
secs = s2["uptime_s"] - s1["uptime_s"]
mpps = (tx(s2) - tx(s1)) / secs / 1e6
end = json.load(open(f"{base}.json"))
st = next(r for r in end["lcores"][0]["runtime"] if r["stage"] == "forward")
if name == "vlan":
    v = {i["name"]: i for i in end["interfaces"]}
    assert v["p1.20"]["tx_packets"] > 0 and v["p0.10"]["rx_packets"] > 0, "VLAN counters"
print(f"{mpps:.3f} {st['cycles_per_packet']:.1f} {end['tsc_hz']} {end['totals']['drops']}")
PY
}

echo "harness: net_pcap infinite_rx 2048 UDP frames (64 B untagged / 68 B with VLAN 10) -> net_pcap sink,"
echo "         10k routes, 1 worker lcore, burst 32, ${trials}x${secs}s per side, interleaved"
u=(); v=(); w=(); uc=(); vc=(); hz=0
for i in $(seq 1 "$trials"); do
    read -r a ca hz da < <(trial untagged)
    read -r b cb hz db < <(trial vlan)
    read -r c _ hz _ < <(trial untagged68)
    u+=("$a"); v+=("$b"); w+=("$c"); uc+=("$ca"); vc+=("$cb")
    printf "trial %d: untagged %s Mpps (forward stage %s cyc/pkt, drops %s) | VLAN %s Mpps (stage %s, drops %s) | untagged 68 B %s Mpps\n" \
        "$i" "$a" "$ca" "$da" "$b" "$cb" "$db" "$c"
done
python3 - "$hz" "${u[*]}" "${v[*]}" "${uc[*]}" "${vc[*]}" "${w[*]}" <<'PY'
import statistics as st, sys
hz = float(sys.argv[1])
u, v, uc, vc, w = ([float(x) for x in a.split()] for a in sys.argv[2:7])
cyc = lambda m: hz / (m * 1e6) if m else 0
mu, mv = st.median(u), st.median(v)
print(f"median: untagged {mu:.2f} Mpps ({cyc(mu):.1f} cyc/pkt, stage {st.median(uc):.1f}), "
      f"VLAN {mv:.2f} Mpps ({cyc(mv):.1f} cyc/pkt, stage {st.median(vc):.1f}), ratio {mv / mu:.3f}")
print(f"best:   untagged {max(u):.2f}, VLAN {max(v):.2f}, ratio {max(v) / max(u):.3f}   (target >= 0.95)")
# Each VLAN run against the untagged run right before it (the machine's load of the moment).
pairs = [b / a for a, b in zip(u, v) if a]
print("per-trial ratios " + " ".join(f"{x:.3f}" for x in pairs) + f", median {st.median(pairs):.3f}")
mw = st.median(w)
print(f"harness: the same packets untagged padded to 68 B (the tagged frames' size) {mw:.2f} Mpps "
      f"({cyc(mw):.1f} cyc/pkt): VLAN / untagged 68 B = {mv / mw:.3f}")
PY

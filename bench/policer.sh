#!/usr/bin/env bash
# The policer stage's cost: one worker lcore, net_pcap infinite_rx=1 source of 64-byte UDP
# frames -> [policer ->] xconnect -> net_pcap sink (empty rx file, no tx file: counts and
# drops), burst 32, --no-pci, under the busy-polling lock. Trials are interleaved (the machine
# is noisy); medians are printed. Variants:
#   xconnect        : no policer (baseline)
#   pass-aggregate  : one default srTCM policer at 100 Gbit/s (every packet green, forwarded)
#   drop-aggregate  : one default srTCM policer at 8 Mbit/s (almost every packet red, dropped)
#   pass-per-source : trTCM per source, 1024 sources, 100 Gbit/s each, yellow remarked
#   pass-per-source-v6 : the same on 64-byte UDP/IPv6 frames from 1024 /64 prefixes (the
#                     IPv6 parse and the 128-bit keyed table)
# Figures: packets processed per second (p0 rx), forwarded per second (p1 tx), and the
# policer stage's cycles per packet (pollfwd's own per-stage TSC accounting).
#
#   bench/policer.sh [TRIALS] [SECONDS]     (default 3 trials of 4 s)
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-3}
secs=${2:-4}
target=${CARGO_TARGET_DIR:-target}
work=$(mktemp -d /tmp/pollfwd-bench-pol.XXXXXX)
trap 'rm -rf "$work"' EXIT
cargo build --release --quiet -p pollfwd
ctl=$target/release/pollfwdctl
$ctl gen-pcap -o "$work/in.pcap" -n 1024 --flows 1024 --sizes 64 >/dev/null
$ctl gen-pcap -o "$work/empty.pcap" -n 0 >/dev/null
# 1024 64-byte UDP/IPv6 frames, source 2001:db8:N::1 (one /64 each) -> 2001:db8:ffff::1.
python3 - "$work/in6.pcap" <<'PY'
import struct, sys
with open(sys.argv[1], "wb") as o:
    o.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    for i in range(1024):
        src = bytes.fromhex("20010db8") + struct.pack(">H", i) + bytes(9) + b"\x01"
        dst = bytes.fromhex("20010db8ffff") + bytes(9) + b"\x01"
        ip = struct.pack(">IHBB", 6 << 28, 10, 17, 64) + src + dst
        f = bytes.fromhex("02000000000202000000000186dd") + ip + struct.pack(">HHHH", 1234, 9, 10, 0) + bytes(2)
        o.write(struct.pack("<IIII", 0, 0, len(f), len(f)) + f)
PY

conf() { # name stages policer-section [input pcap]
    local input=${4:-in.pcap}
    cat > "$work/$1.toml" <<TOML
[eal]
file_prefix = "pfbench-pol"
[mempool]
mbufs = 8191
[[port]]
name = "p0"
device = "net_pcap0,rx_pcap=$work/$input,infinite_rx=1"
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
$3
TOML
}
conf xconnect '["xconnect"]' ''
conf pass-aggregate '["policer", "xconnect"]' '
[policer]
[[policer.policers]]
name = "all"
kind = "srtcm"
cir = 100_000_000_000
cbs = 1_000_000
ebs = 1_000_000'
conf drop-aggregate '["policer", "xconnect"]' '
[policer]
[[policer.policers]]
name = "all"
kind = "srtcm"
cir = 8_000_000
cbs = 100_000'
conf pass-per-source '["policer", "xconnect"]' '
[policer]
[[policer.policers]]
name = "each"
kind = "trtcm"
cir = 100_000_000
pir = 100_000_000_000
cbs = 10_000
pbs = 1_000_000
yellow = "remark:AF12"
bind = { per_source = true, max_sources = 4096, idle_s = 60 }'
conf pass-per-source-v6 '["policer", "xconnect"]' "$(sed -n '/^\[policer\]/,$p' "$work/pass-per-source.toml")" in6.pcap

variants=(xconnect pass-aggregate drop-aggregate pass-per-source pass-per-source-v6)
trial() {
    flock /tmp/pollfwd-busy.lock "$target/release/pollfwd" --config "$work/$1.toml" \
        --duration "$secs" --summary json > "$work/$1.json" 2> "$work/$1.err"
    python3 - "$work/$1.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
p0 = next(p for p in s["ports"] if p["name"] == "p0")
p1 = next(p for p in s["ports"] if p["name"] == "p1")
l = s["lcores"][0]
st = {r["stage"]: r["cycles_per_packet"] for r in l["runtime"]}
print(f'{p0["rx_packets"] / s["duration_s"] / 1e6:.3f} {p1["tx_packets"] / s["duration_s"] / 1e6:.3f} {st.get("policer", 0):.1f}')
PY
}

echo "harness: net_pcap infinite_rx 64B UDP (1024 sources) -> [policer ->] xconnect -> net_pcap sink, 1 worker lcore, burst 32, ${trials}x${secs}s"
declare -A rx tx cyc
for i in $(seq 1 "$trials"); do
    for v in "${variants[@]}"; do
        read -r r t c < <(trial "$v")
        rx[$v]+="$r "; tx[$v]+="$t "; cyc[$v]+="$c "
        printf "trial %d %-16s processed %7s Mpps  forwarded %7s Mpps  policer %6s cycles/pkt\n" "$i" "$v" "$r" "$t" "$c"
    done
done
for v in "${variants[@]}"; do
    python3 - "$v" "${rx[$v]}" "${tx[$v]}" "${cyc[$v]}" <<'PY'
import statistics, sys
m = lambda s: statistics.median(float(x) for x in s.split())
hi = lambda s: max(float(x) for x in s.split())
lo = lambda s: min(float(x) for x in s.split())
# Other processes only add time: the best trial is the cleanest estimate, the median what a
# busy machine gives.
print(f"median {sys.argv[1]:<16} processed {m(sys.argv[2]):6.2f} Mpps  forwarded {m(sys.argv[3]):6.2f} Mpps  policer {m(sys.argv[4]):6.1f} cycles/packet"
      f"   best: {hi(sys.argv[2]):6.2f} Mpps, {lo(sys.argv[4]):6.1f} cycles/packet")
PY
done

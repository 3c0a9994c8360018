#!/usr/bin/env bash
# pollfwd `classify` (rte_acl) cost with 0, 1k and 10k rules: chain ["classify", "xconnect"],
# net_pcap infinite_rx=1 source of 64-byte UDP frames (256 flows) -> net_pcap sink (empty rx
# file, no tx file), one worker lcore, burst 32, --no-pci. Trials are interleaved (the machine
# is noisy) and medians reported. Prints, per rule-set size: Mpps out of the sink port, cycles
# per packet of the classify stage alone (the runtime counters), and of the whole loop, and the
# rte_acl classify method the stage ran with (`method` of acl.counters).
#
# Rule sets (seeded, identical every run): random source/destination prefixes (/16../32) in
# 10/8 and 172.16/12, TCP or UDP, random destination-port ranges, half permit half deny (none
# matches the traffic), plus 32 rules matching the traffic's flows by source /32 and source
# port, then default permit: every packet walks the full tries and most hit a rule.
#
#   bench/classify.sh [TRIALS] [SECONDS]     (default 3 trials of 5 s)
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-3}
secs=${2:-5}
work=$(mktemp -d /tmp/pollfwd-bench-acl.XXXXXX)
trap 'rm -rf "$work" /var/run/dpdk/pfbench-acl' EXIT
cargo build --release --quiet -p pollfwd
tgt=$(realpath -m "${CARGO_TARGET_DIR:-target}")  # absolute: trials cd into their work directory
ctl=$tgt/release/pollfwdctl
$ctl gen-pcap -o "$work/in.pcap" -n 1024 --flows 256 --sizes 64 --proto udp >/dev/null
$ctl gen-pcap -o "$work/empty.pcap" -n 0 >/dev/null

python3 - "$work" <<'PY'
import random, sys
work = sys.argv[1]
for n in (1000, 10000):
    rng = random.Random(n)
    lines = ["rules = ["]
    # Rules matching the traffic: 198.18.0.1 + f, source port 1024 + f (f < 256).
    for i in range(32):
        f = rng.randrange(256)
        lines.append(f'  {{ src = "198.18.{(1 + f) // 256}.{(1 + f) % 256}", proto = "udp", '
                     f'sport = {1024 + f}, dport = 9 }},')
    for i in range(n - 32):
        sl, dl = rng.choice([16, 24, 28, 32]), rng.choice([16, 24, 32])
        s = (10 << 24) | rng.randrange(1 << 24)
        d = (172 << 24) | (16 << 16) | rng.randrange(1 << 20)
        s &= (0xffffffff << (32 - sl)) & 0xffffffff
        d &= (0xffffffff << (32 - dl)) & 0xffffffff
        ip = lambda a: ".".join(str((a >> k) & 255) for k in (24, 16, 8, 0))
        lo = rng.randrange(1, 60000)
        hi = lo + rng.choice([0, 0, 10, 100, 1000])
        proto = rng.choice(["tcp", "udp"])
        act = rng.choice(["permit", "deny"])
        lines.append(f'  {{ src = "{ip(s)}/{sl}", dst = "{ip(d)}/{dl}", proto = "{proto}", '
                     f'dport = "{lo}-{hi}", action = "{act}" }},')
    lines.append("]")
    open(f"{work}/rules-{n}.toml", "w").write("\n".join(lines) + "\n")
PY

config() { # name rules-file-or-empty
    local rules=""
    [ -n "$2" ] && rules="rules_file = \"$2\""
    cat > "$work/$1.toml" <<TOML
[eal]
file_prefix = "pfbench-acl"
[mempool]
mbufs = 8191
[[port]]
name = "p0"
device = "net_pcap0,rx_pcap=$work/in.pcap,infinite_rx=1"
[[port]]
name = "p1"
device = "net_pcap1,rx_pcap=$work/empty.pcap"
[[lcore]]
id = 1
rx = [{ port = "p0" }, { port = "p1" }]
stages = ["classify", "xconnect"]
[xconnect]
pairs = [["p0", "p1"]]
[classify]
default = "permit"
$rules
[control]
socket = "$work/ctl.sock"
TOML
}
config r0 ""
config r1k "rules-1000.toml"
config r10k "rules-10000.toml"

trial() { # config name -> "Mpps stage_cpp loop_cpp"
    flock /tmp/pollfwd-busy.lock "$tgt/release/pollfwd" --config "$work/$1.toml" \
        --duration "$secs" --summary json > "$work/$1.json" 2> "$work/$1.err" \
        || { cat "$work/$1.err" >&2; exit 1; }
    python3 - "$work/$1.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
p1 = next(p for p in s["ports"] if p["name"] == "p1")
l = s["lcores"][0]
st = next(r for r in l["runtime"] if r["stage"] == "classify")
mpps = p1["tx_packets"] / s["duration_s"] / 1e6
loop = (l["busy_cycles"] + l["idle_cycles"]) / max(1, l["tx_packets"])
hits = sum(r["packets"] for r in s["nf"]["classify"]["rules"])
method = s["nf"]["classify"].get("method") or "none"
print(f"{mpps:.3f} {st['cycles_per_packet']:.1f} {loop:.1f} {hits} {method}")
PY
}

echo "harness: net_pcap infinite_rx 64B UDP (256 flows) -> net_pcap sink, chain classify -> xconnect, 1 worker, burst 32, ${trials}x${secs}s"
declare -A mp sc lc
for i in $(seq 1 "$trials"); do
    for c in r0 r1k r10k; do
        read -r m s l h a < <(trial "$c")
        mp[$c]+="$m "; sc[$c]+="$s "; lc[$c]+="$l "
        printf "trial %d %-5s: %7s Mpps  classify %6s cycles/pkt  loop %6s cycles/pkt  (%s rule hits, rte_acl method %s)\n" \
            "$i" "$c" "$m" "$s" "$l" "$h" "$a"
    done
done
python3 - "${mp[r0]}" "${sc[r0]}" "${lc[r0]}" "${mp[r1k]}" "${sc[r1k]}" "${lc[r1k]}" \
    "${mp[r10k]}" "${sc[r10k]}" "${lc[r10k]}" <<'PY'
import statistics, sys
a = [[float(x) for x in v.split()] for v in sys.argv[1:]]
med = statistics.median
print(f"{'rules':>6} {'Mpps':>8} {'classify cyc/pkt':>17} {'loop cyc/pkt':>13}   (medians; min-max of classify)")
for name, (m, s, l) in zip(["0", "1000", "10000"], [a[0:3], a[3:6], a[6:9]]):
    print(f"{name:>6} {med(m):8.2f} {med(s):17.1f} {med(l):13.1f}   ({min(s):.1f}-{max(s):.1f})")
base = med(a[1])
print(f"rte_acl lookup cost over the empty set: 1k rules +{med(a[4]) - base:.1f}, 10k rules +{med(a[7]) - base:.1f} cycles/pkt")
PY

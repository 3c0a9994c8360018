#!/usr/bin/env bash
# The one-box memif lab for real, with dpdk-testpmd standing in for Pktgen-DPDK: testpmd
# serves the two memif sockets of configs/lab-memif.toml (SERVER role, CPU 0), pollfwd runs
# that config unchanged (memif CLIENTS, worker on CPU 1), traffic flows for a few seconds, and
# the script prints what the generator sent and what came back, next to pollfwd's counters.
#
#   bench/memif-lab.sh [SECONDS] [FRAME_SIZE] [MODE]     (default 5 s, 64 bytes, flowgen)
#
# MODE flowgen (default): testpmd generates 1024 UDP flows on both ports and counts what it
#   receives. MODE txonly: testpmd only transmits and never polls its RX queues, so nothing is
#   counted back and pollfwd's transmits stall on full memif rings (counted as tx_full drops):
#   useful to see that failure mode, not to measure.
# Both processes run --no-pci, bounded, while this script holds /tmp/pollfwd-busy.lock (one
# busy lcore each: 2 in all). The memif socket files are removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
size=${2:-64}
mode=${3:-flowgen}
case "$mode" in flowgen|txonly) ;; *) echo "memif-lab: MODE is flowgen or txonly" >&2; exit 2 ;; esac
case "$size" in ''|*[!0-9]*) echo "memif-lab: FRAME_SIZE is a number (64..1518)" >&2; exit 2 ;; esac
if [ -z "${PF_MEMIF_LAB_LOCKED:-}" ]; then
    PF_MEMIF_LAB_LOCKED=1 exec flock /tmp/pollfwd-busy.lock "$0" "$@"
fi
cfg=configs/lab-memif.toml
tgt=$(realpath -m "${CARGO_TARGET_DIR:-target}")  # absolute: trials cd into their work directory
pollfwd=$tgt/release/pollfwd
[ -x "$pollfwd" ] || cargo build --release --quiet -p pollfwd
# The socket paths come from the config, so that the lab checked here is the documented one.
mapfile -t socks < <(grep '^device' "$cfg" | grep -o 'socket=[^,"]*' | cut -d= -f2)
[ "${#socks[@]}" -eq 2 ] || { echo "memif-lab: expected 2 memif sockets in $cfg" >&2; exit 1; }
work=$(mktemp -d /tmp/pollfwd-memif-lab.XXXXXX)
gen_pid=""
pf_pid=""
cleanup() {
    for p in $pf_pid $gen_pid; do kill -INT "$p" 2>/dev/null || true; done
    for p in $pf_pid $gen_pid; do wait "$p" 2>/dev/null || true; done
    rm -f "${socks[@]}"
    rm -rf "$work"
}
trap cleanup EXIT
rm -f "${socks[@]}"
mkdir -p "$(dirname "${socks[0]}")"

"$pollfwd" --config "$cfg" --check >/dev/null
gen_args=(--no-pci --lcores=0@0,1@0 --file-prefix=pfbench-lab-gen --in-memory)
for i in 0 1; do
    gen_args+=("--vdev=net_memif$i,role=server,id=0,socket=${socks[$i]},socket-abstract=no")
done
gen_args+=(-- "--forward-mode=$mode" --txpkts="$size" --burst=32 --stats-period 1
           --total-num-mbufs=16384)
[ "$mode" = flowgen ] && gen_args+=(--flowgen-flows=1024)
echo "memif-lab: generator: dpdk-testpmd ${gen_args[*]}"
timeout -k 5 -s INT $((secs + 40)) dpdk-testpmd "${gen_args[@]}" >"$work/gen.log" 2>&1 &
gen_pid=$!
for _ in $(seq 100); do
    [ -S "${socks[0]}" ] && [ -S "${socks[1]}" ] && break
    kill -0 "$gen_pid" 2>/dev/null || { cat "$work/gen.log" >&2; exit 1; }
    sleep 0.1
done
[ -S "${socks[0]}" ] && [ -S "${socks[1]}" ] || { echo "memif-lab: no memif sockets" >&2; exit 1; }
echo "memif-lab: pollfwd --config $cfg (memif clients), $secs s of ${size}-byte frames ($mode)"
timeout -k 5 -s INT $((secs + 30)) "$pollfwd" --config "$cfg" --summary json \
    >"$work/pf.json" 2>"$work/pf.err" &
pf_pid=$!
# Sample the generator's counters through its telemetry socket while both run, then stop the
# server (testpmd) first, then pollfwd: testpmd can crash when its memif peer leaves while it
# is still forwarding (DPDK-NOTES; PF_LAB_STOP=client-first|together to try other orders).
python3 - "$secs" >"$work/gen.json" <<'PY'
import json, sys, time
sys.path.insert(0, "bench/lib")
from bench import Telemetry

class P:  # what Telemetry.connect polls
    def poll(self):
        return None

secs = float(sys.argv[1])
t = Telemetry("pfbench-lab-gen")
t.connect(P())
time.sleep(1.0)  # pollfwd starts, links come up
t0, a = time.monotonic(), [t.stats(p) for p in (0, 1)]
time.sleep(secs)
t1, b = time.monotonic(), [t.stats(p) for p in (0, 1)]
d = lambda k: sum(y[k] - x[k] for x, y in zip(a, b))
print(json.dumps({"seconds": t1 - t0, "tx": d("opackets"), "rx": d("ipackets"),
                  "tx_total": sum(x["opackets"] for x in b), "rx_total": sum(x["ipackets"] for x in b)}))
PY
pf_rc=0
gen_rc=0
case "${PF_LAB_STOP:-server-first}" in
    client-first)
        kill -INT "$pf_pid" 2>/dev/null || true
        wait "$pf_pid" || pf_rc=$?
        kill -INT "$gen_pid" 2>/dev/null || true
        wait "$gen_pid" 2>/dev/null || gen_rc=$? ;;
    server-first)
        kill -INT "$gen_pid" 2>/dev/null || true
        wait "$gen_pid" 2>/dev/null || gen_rc=$?
        kill -INT "$pf_pid" 2>/dev/null || true
        wait "$pf_pid" || pf_rc=$? ;;
    *)
        kill -INT "$pf_pid" "$gen_pid" 2>/dev/null || true
        wait "$pf_pid" || pf_rc=$?
        wait "$gen_pid" 2>/dev/null || gen_rc=$? ;;
esac
pf_pid=""; gen_pid=""
python3 - "$work/gen.json" "$work/pf.json" "$pf_rc" "$gen_rc" <<'PY'
import json, sys
g = json.load(open(sys.argv[1]))
try:
    s = json.load(open(sys.argv[2]))
except ValueError:
    sys.exit("memif-lab: pollfwd printed no summary (see its stderr)")
pf_rc, gen_rc = int(sys.argv[3]), int(sys.argv[4])
l = s["lcores"][0]
secs = g["seconds"]
print(f"generator (testpmd, memif servers), {secs:.2f} s window:")
print(f"  sent      {g['tx']:>12}  ({g['tx'] / secs / 1e6:.3f} Mpps)")
print(f"  came back {g['rx']:>12}  ({g['rx'] / secs / 1e6:.3f} Mpps, "
      f"{100 * g['rx'] / g['tx'] if g['tx'] else 0:.1f} % of sent)")
print(f"pollfwd (configs/lab-memif.toml, memif clients), whole run {s['duration_s']:.1f} s:")
print(f"  lcore {l['lcore']}: rx {l['rx_packets']}  tx {l['tx_packets']}  drops {l['drops']} "
      f"{l['drops_by_reason'] or ''}  busy {l['busy_pct']} %  stages {' -> '.join(l['stages'])}")
for r in l["runtime"]:
    print(f"  stage {r['stage']}: {r['cycles_per_packet']:.1f} cycles/packet, "
          f"{r['packets_per_call']:.1f} packets/call")
print(f"  dwell p50/p99/p99.9: {l['dwell_p50_cycles']}/{l['dwell_p99_cycles']}/"
      f"{l['dwell_p999_cycles']} cycles (tsc {s['tsc_hz'] / 1e9:.2f} GHz)")
print(f"exit codes: pollfwd {pf_rc}, testpmd {gen_rc}"
      + ("  (testpmd crashed on the memif disconnect: a known testpmd/memif issue, after the "
         "measurement)" if gen_rc not in (0, 130) else ""))
if pf_rc != 0:
    sys.exit(1)
if g["tx"] == 0:
    sys.exit("memif-lab: the generator sent nothing")
PY

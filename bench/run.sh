#!/usr/bin/env bash
# The side-by-side benchmark in one command: pollfwd next to DPDK's own forwarders, measured
# in the same run on the same harness (docs/benchmarking.md).
#
#   bench/run.sh [--quick] [--sizes "64 128 ... imix"] [--trials N] [--seconds S]
#                [--harness inproc,memif] [--systems testpmd-io,l3fwd-lpm,...] [--out FILE]
#                [--no-build]
#
# Builds what it needs (release pollfwd/pollfwdctl; DPDK's l3fwd from /usr/share/dpdk/examples
# via bench/lib/l3fwd.sh), then measures, one worker lcore each, burst 32: testpmd io, l3fwd
# lpm, pollfwd xconnect, pollfwd forward, pollfwd classify+nat+policer+forward, for frame sizes
# 64 128 256 512 1024 1280 1518 and IMIX, on harness 1 (in-process net_pcap source -> net_null sink)
# and harness 2 (testpmd flowgen, for IMIX testpmd io from a pcap, on memif servers <-> system
# under test on memif clients).
# Prints a table, writes bench/results/<timestamp>.json and .svg (Mpps by frame size).
# Default: 3 trials of 5 s (about 30 min); --quick: 64, 1518, IMIX, 1 trial of 2 s (~3 min).
# Every DPDK process runs bounded, --no-pci, under /tmp/pollfwd-busy.lock.
set -euo pipefail
cd "$(dirname "$0")/.."
build=1
args=()
for a in "$@"; do
    case "$a" in
        --no-build) build=0 ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) args+=("$a") ;;
    esac
done
for d in "$HOME/.cargo/bin" /root/.cargo/bin; do
    [ -d "$d" ] && case ":$PATH:" in *":$d:"*) ;; *) PATH="$d:$PATH" ;; esac
done
export PATH
tgt=$(realpath -m "${CARGO_TARGET_DIR:-target}")  # absolute: trials cd into their work directory
for tool in dpdk-testpmd python3 flock timeout pkg-config make cc; do
    command -v "$tool" >/dev/null || { echo "bench: $tool not found (run scripts/install-deps.sh)" >&2; exit 1; }
done
if [ "$build" = 1 ]; then
    echo "bench: building pollfwd (release) ..."
    cargo build --release --quiet -p pollfwd
fi
# shellcheck source=bench/lib/l3fwd.sh
. bench/lib/l3fwd.sh
echo "bench: building l3fwd ..."
l3fwd=$(l3fwd_build)
# The DPDK runtime directories of every trial (prefixes pfbench-*) go when the suite ends.
trap 'rm -rf /var/run/dpdk/pfbench-* 2>/dev/null || true' EXIT
python3 bench/lib/bench.py --pollfwd "$tgt/release/pollfwd" \
    --pollfwdctl "$tgt/release/pollfwdctl" --l3fwd "$l3fwd" ${args[@]+"${args[@]}"}

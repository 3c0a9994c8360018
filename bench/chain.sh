#!/usr/bin/env bash
# The full chain at line rate (issue 14): every figure of its targets, measured in one run next
# to DPDK l3fwd-lpm and testpmd io on the same harness (docs/benchmarking.md, "The full chain").
#
#   bench/chain.sh [--quick] [--trials N] [--seconds S] [--systems l3fwd-lpm,chain-64k,...]
#                  [--out FILE] [--no-build]
#   bench/chain.sh --report bench/results/chain-X.json    (print the table of a result file)
#
# One worker, 64 B UDP, net_pcap infinite_rx source -> net_null sink: l3fwd-lpm, testpmd io,
# pollfwd forward (10k routes), nat + forward (64k sessions), classify + nat + policer + forward
# (64k and 1M sessions), and NAT's new-session rate (a new flow every packet, LRU churn).
# Prints Mpps, ratios to l3fwd-lpm, per-stage cycles/packet, NAT bytes/session and sessions/s
# next to the targets (met / not met); writes bench/results/chain-<timestamp>.json and .svg.
# Default: 3 trials of 5 s (about 7 min); --quick (or CHAIN_QUICK=1): 1 trial of 2 s (~3 min).
# Every DPDK process runs bounded, --no-pci, --in-memory, under /tmp/pollfwd-busy.lock.
set -euo pipefail
cd "$(dirname "$0")/.."
build=1
args=()
[ "${CHAIN_QUICK:-0}" = 1 ] && args+=(--quick)
for a in "$@"; do
    case "$a" in
        --no-build) build=0 ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) args+=("$a") ;;
    esac
done
for d in "$HOME/.cargo/bin" /root/.cargo/bin; do
    [ -d "$d" ] && case ":$PATH:" in *":$d:"*) ;; *) PATH="$d:$PATH" ;; esac
done
export PATH
tgt=$(realpath -m "${CARGO_TARGET_DIR:-target}")
for tool in dpdk-testpmd python3 flock timeout pkg-config make cc; do
    command -v "$tool" >/dev/null || { echo "chain: $tool not found (run scripts/install-deps.sh)" >&2; exit 1; }
done
if [ "$build" = 1 ]; then
    echo "chain: building pollfwd and nat_bench (release) ..."
    cargo build --release --quiet -p pollfwd --bins --example nat_bench
fi
# shellcheck source=bench/lib/l3fwd.sh
. bench/lib/l3fwd.sh
echo "chain: building l3fwd ..."
l3fwd=$(l3fwd_build)
# The DPDK runtime directories of the trials go when the run ends, under the busy lock: the
# suite's testpmd and l3fwd prefixes are shared with bench/run.sh, which may be running a trial.
trap 'flock /tmp/pollfwd-busy.lock rm -rf /var/run/dpdk/pfbench-chain /var/run/dpdk/pfbench-tp \
    /var/run/dpdk/pfbench-l3 2>/dev/null || true' EXIT
python3 bench/lib/chain.py --pollfwd "$tgt/release/pollfwd" --pollfwdctl "$tgt/release/pollfwdctl" \
    --l3fwd "$l3fwd" --nat-bench "$tgt/release/examples/nat_bench" ${args[@]+"${args[@]}"}

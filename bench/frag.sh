#!/usr/bin/env bash
# IPv4 fragmentation cost: the forward stage's own fragmenter against DPDK's
# rte_ipv4_fragment_packet (zero copy, 2-segment fragments) and
# rte_ipv4_fragment_copy_nonseg_packet (copy), on real mbufs without a PMD
# (appliance/examples/frag_bench.rs: 4000- and 9000-byte datagrams cut for MTU 1500, bursts
# of 32, TSC cycles per datagram, min and median over ROUNDS). One lcore (the EAL's main),
# under the busy-polling lock; run it niced on a quiet machine.
#
#   bench/frag.sh [ROUNDS]     (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p pollfwd --example frag_bench
tgt=$(realpath -m "${CARGO_TARGET_DIR:-target}")
exec "$tgt/release/examples/frag_bench" "${1:-200}"

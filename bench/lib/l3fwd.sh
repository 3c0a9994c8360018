#!/usr/bin/env bash
# Shared build helper: DPDK's own l3fwd from the dpdk-doc example sources, patched for virtual
# PMDs, built once and cached. Source it, then call `l3fwd_build`; it prints the binary's path.
#
#   . bench/lib/l3fwd.sh
#   l3fwd=$(l3fwd_build) || exit 1
#   flock /tmp/pollfwd-busy.lock "$l3fwd" --no-pci -l 1 --in-memory --vdev=... -- \
#       -p 0x3 -P --parse-ptype --config="(0,0,1),(1,0,1)"
#
# What it changes in its copy (nothing else):
# - main.c's port_conf asks for RX checksum offload (`.offloads = RTE_ETH_RX_OFFLOAD_CHECKSUM`);
#   virtual PMDs (net_pcap, net_memif) have none and configure fails with -22: set it to 0.
# The build lives in $L3FWD_DIR (default: <cargo target dir>/l3fwd), is rebuilt only when the
# example sources or DPDK's pkg-config file change, and uses DPDK's own Makefile (`make shared`).

l3fwd_build() {
    local src=${L3FWD_SRC:-/usr/share/dpdk/examples}
    local repo
    repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    local tgt=${CARGO_TARGET_DIR:-$repo/target}
    local dir=${L3FWD_DIR:-$tgt/l3fwd}
    if [ ! -f "$src/l3fwd/main.c" ] || [ ! -d "$src/common" ]; then
        echo "l3fwd: $src/l3fwd not found: install the dpdk-doc package (scripts/install-deps.sh)" >&2
        return 1
    fi
    local stamp
    stamp=$(cat "$src"/l3fwd/*.c "$src"/l3fwd/*.h "$(pkg-config --path libdpdk)" | md5sum | cut -c1-16)
    if [ -x "$dir/l3fwd/build/l3fwd" ] && [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ]; then
        echo "$dir/l3fwd/build/l3fwd"
        return 0
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    cp -r "$src/common" "$src/l3fwd" "$dir/"
    # RX checksum offload off (see above); fail loudly if the line moved.
    sed -i 's/\.offloads = RTE_ETH_RX_OFFLOAD_CHECKSUM,/.offloads = 0, \/* pollfwd bench: virtual PMDs have no RX checksum offload *\//' \
        "$dir/l3fwd/main.c"
    if grep -q "RTE_ETH_RX_OFFLOAD_CHECKSUM," "$dir/l3fwd/main.c"; then
        echo "l3fwd: could not disable RX checksum offload in $dir/l3fwd/main.c" >&2
        return 1
    fi
    if ! make -C "$dir/l3fwd" -j2 shared >"$dir/build.log" 2>&1; then
        echo "l3fwd: build failed, see $dir/build.log" >&2
        tail -20 "$dir/build.log" >&2
        return 1
    fi
    echo "$stamp" >"$dir/.stamp"
    echo "$dir/l3fwd/build/l3fwd"
}

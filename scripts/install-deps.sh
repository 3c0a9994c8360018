#!/usr/bin/env bash
# Installs what pollfwd needs on Debian 12 (root): DPDK 22.11 (libdpdk-dev, dpdk-dev tools,
# dpdk-doc example sources), libclang for bindgen, hwloc, libpcap, the tools the network
# namespace tests use, g++ (libFuzzer, built by the fuzz targets' libfuzzer-sys), and reserves
# hugepages. Idempotent. Needs a Rust toolchain (cargo >= 1.85) already on PATH (rustup);
# Debian's own rustc is too old for edition 2024.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps.sh: must run as root (try: sudo $0)" >&2
    exit 1
fi
pkgs=(libdpdk-dev dpdk-dev dpdk-doc libclang-dev clang pkg-config libhwloc-dev libpcap-dev
      make gcc g++ python3 iproute2 iputils-ping netcat-openbsd traceroute ethtool curl lua5.3 util-linux systemd dpkg-dev
      frr)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
    for d in "$HOME/.cargo/bin" /root/.cargo/bin /usr/local/cargo/bin; do
        [ -x "$d/cargo" ] && export PATH="$d:$PATH" && break
    done
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "install-deps: cargo not found: install Rust >= 1.85 with rustup (https://rustup.rs), then re-run" >&2
    exit 1
fi
pkg-config --atleast-version=22.11 libdpdk || { echo "install-deps: DPDK >= 22.11 not found after install" >&2; exit 1; }
# Hugepages: 1 GiB of 2 MiB pages (idempotent; never lowers an existing reservation).
"$here/hugepages.sh" --mb "${POLLFWD_HUGEPAGES_MB:-1024}" || {
    rc=$?
    [ "$rc" -eq 3 ] && echo "install-deps: fewer hugepages than asked; continuing" >&2 || exit "$rc"
}
echo "install-deps: OK (DPDK $(pkg-config --modversion libdpdk), $(cargo --version))"

#!/usr/bin/env bash
# One command for a fresh Debian 12 machine (root): installs what pollfwd needs, builds it in
# release mode and runs the bundled virtual-port lab for a bounded time, printing per-port rates
# every second and the summary at the end.
#
#   scripts/demo.sh [SECONDS]        (default 10)
#
# The lab: two net_pcap ports (no NIC, no PCI: pollfwd passes --no-pci). Port "lan" replays
# lab/demo-in.pcap (IMIX, UDP/TCP/ICMP from 64 inside hosts) forever; packets go through the
# full chain of configs/lab-full.toml (classify -> NAT44 -> policer -> forward) and leave on
# "wan", a sink that counts and drops them. POLLFWD_DEMO_CONFIG=configs/lab-demo.toml runs the
# plain macswap/xconnect lab instead.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-${POLLFWD_DEMO_SECONDS:-10}}
case "$secs" in ''|*[!0-9.]*) echo "demo.sh: SECONDS must be a number" >&2; exit 2 ;; esac
if [ "$(id -u)" -eq 0 ]; then
    scripts/install-deps.sh
else
    echo "demo.sh: not root: skipping install-deps (DPDK needs root for hugepages anyway)" >&2
fi
for d in "$HOME/.cargo/bin" /root/.cargo/bin; do
    [ -d "$d" ] && case ":$PATH:" in *":$d:"*) ;; *) PATH="$d:$PATH" ;; esac
done
echo "== building (release)"
cargo build --release --quiet
mkdir -p lab
target/release/pollfwdctl gen-pcap -o lab/demo-in.pcap -n 4096 --flows 64 --sizes imix --proto mix \
    --src-ip 10.0.0.2 --dst-ip 198.19.0.1 --dst-mac "02:00:00:00:00:10"
target/release/pollfwdctl gen-pcap -o lab/empty.pcap -n 0
config=${POLLFWD_DEMO_CONFIG:-configs/lab-full.toml}
echo "== running the lab for ${secs} s ($config); Ctrl-C stops it early"
# Stay within the machine's busy-polling budget if other DPDK runs share it.
exec flock -w 600 /tmp/pollfwd-busy.lock \
    target/release/pollfwd --config "$config" --duration "$secs" --stats-interval 1

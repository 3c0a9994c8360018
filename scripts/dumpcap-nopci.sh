#!/usr/bin/env bash
# dpdk-dumpcap on a machine whose PCI bus DPDK must not touch (these labs: the only PCI NIC is
# the host's own link). dpdk-dumpcap 22.11 accepts no EAL arguments, so it cannot be given
# --no-pci; this wrapper adds it twice over:
#   - LD_PRELOAD of scripts/nopci-preload.c, which appends --no-pci to rte_eal_init's arguments;
#   - SYSFS_PCI_DEVICES pointing at an empty directory (where DPDK's PCI bus looks for devices),
#     so even without the shim the scan finds nothing.
# Arguments are dpdk-dumpcap's, e.g. (pollfwd must run with in_memory = false):
#   scripts/dumpcap-nopci.sh --file-prefix=pollfwd-lab -i 0 -c 1000 -P -w /tmp/cap.pcap
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v dpdk-dumpcap >/dev/null || { echo "dumpcap-nopci: dpdk-dumpcap not found (apt install dpdk)" >&2; exit 1; }
cache=${POLLFWD_CACHE:-/tmp/pollfwd-cache-$(id -u)}
so=$cache/nopci-preload.so
mkdir -p "$cache"
if [ ! -f "$so" ] || [ "$here/nopci-preload.c" -nt "$so" ]; then
    cc -shared -fPIC -O2 -Wall -o "$so.$$" "$here/nopci-preload.c" -ldl
    mv "$so.$$" "$so"
fi
empty=$(mktemp -d /tmp/pollfwd-nopci.XXXXXX)
trap 'rmdir "$empty"' EXIT
rc=0
SYSFS_PCI_DEVICES=$empty LD_PRELOAD=$so dpdk-dumpcap "$@" || rc=$?
exit "$rc"

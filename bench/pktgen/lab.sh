#!/usr/bin/env bash
# The one-box Pktgen-DPDK lab: Pktgen-DPDK (memif SERVERS, CPU 0) and pollfwd (memif CLIENTS,
# worker on CPU 1) on one machine, one lab script, bounded, cleaned up afterwards.
#
#   PKTGEN=/path/to/Pktgen-DPDK/build/app/pktgen bench/pktgen/lab.sh SCRIPT [OUT_DIR]
#
# SCRIPT is rfc2544.lua, imix.lua or flows.lua (or a path); the PF_* variables of README.md pass
# through to it (PF_OUT is set here: OUT_DIR/<script name>, default OUT_DIR
# pktgen-lab-<date>). What it does, in order:
#  1. takes /tmp/pollfwd-busy.lock (pktgen's rx/tx lcore and timer thread on CPU 0, pollfwd's
#     worker on CPU 1: no other busy-polling test may run at the same time);
#  2. writes a copy of PF_LAB_CONFIG (default configs/lab-memif.toml) whose memif sockets,
#     control socket and file prefix are private to this run;
#  3. starts pktgen (--no-pci, --huge-unlink, its own --file-prefix, `-m 1.[0-1]`: one lcore for
#     rx and tx of both ports, on PF_LAB_GEN_CPU), with `-s 0:FILE` for imix.lua (an IMIX pcap
#     written by `pollfwdctl gen-pcap --sizes imix` unless PF_LAB_PCAP names one);
#  4. waits until pktgen has started its ports (its prompt) and only then starts pollfwd: a DPDK
#     memif client that connects before the server's port is started can stay down;
#  5. waits for the script to end pktgen (at most PF_LAB_TIMEOUT seconds, default 600), stops
#     pollfwd (SIGINT, its JSON summary goes to OUT_DIR/pollfwd-summary.json), and removes the
#     sockets, pktgen's /var/run/dpdk directory and its hugepage files.
# Needs: a pktgen built as README.md says (Lua on; the memif MTU patch; the small-mbuf patch or
# about 2.5 GB of free 2 MB hugepages), pollfwd and pollfwdctl (POLLFWD_BIN_DIR, default
# target/release), `script` (util-linux).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
usage() { echo "usage: PKTGEN=.../app/pktgen $0 rfc2544.lua|imix.lua|flows.lua [OUT_DIR]" >&2; exit 2; }
[ $# -ge 1 ] || usage
script_arg=$1
out=${2:-pktgen-lab-$(date +%Y%m%d-%H%M%S)}
if [ -z "${PF_LAB_LOCKED:-}" ]; then
    PF_LAB_LOCKED=1 exec flock /tmp/pollfwd-busy.lock "$0" "$@"
fi
case "$script_arg" in */*) lua=$(realpath "$script_arg") ;; *) lua=$here/$script_arg ;; esac
[ -f "$lua" ] || { echo "lab: no script $lua" >&2; exit 2; }
pktgen=${PKTGEN:-}
[ -x "$pktgen" ] || { echo "lab: set PKTGEN to the pktgen binary (README.md: building it)" >&2; exit 2; }
bins=${POLLFWD_BIN_DIR:-$root/target/release}
pollfwd=$bins/pollfwd
pollfwdctl=$bins/pollfwdctl
[ -x "$pollfwd" ] && [ -x "$pollfwdctl" ] || { echo "lab: no $pollfwd / $pollfwdctl (cargo build --release)" >&2; exit 2; }
command -v script >/dev/null || { echo "lab: needs script(1) (util-linux): pktgen wants a terminal" >&2; exit 2; }
config=${PF_LAB_CONFIG:-$root/configs/lab-memif.toml}
gen_cpu=${PF_LAB_GEN_CPU:-0}
timeout_s=${PF_LAB_TIMEOUT:-600}
mkdir -p "$out"
out=$(realpath "$out")
name=$(basename "$lua" .lua)

work=$(mktemp -d /tmp/pollfwd-pktgen-lab.XXXXXX)
gen_prefix=pf-lab-gen-$$
gen_pid=""
pf_pid=""
cleanup() {
    for p in $pf_pid $gen_pid; do kill -INT "$p" 2>/dev/null || true; done
    for p in $pf_pid $gen_pid; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work" "/var/run/dpdk/$gen_prefix" # --huge-unlink: no hugepage file is left
}
trap cleanup EXIT

# A private copy of the lab config: the sockets, the control socket and the file prefix.
sock0=$work/memif0.sock
sock1=$work/memif1.sock
sed -e "s#socket=[^,\"]*memif0[^,\"]*#socket=$sock0#" \
    -e "s#socket=[^,\"]*memif1[^,\"]*#socket=$sock1#" \
    -e "s#^file_prefix = .*#file_prefix = \"pf-lab-dut-$$\"#" \
    -e "s#^socket = .*#socket = \"$work/control.sock\"#" "$config" >"$work/pollfwd.toml"
grep -q "socket=$sock0" "$work/pollfwd.toml" && grep -q "socket=$sock1" "$work/pollfwd.toml" \
    || { echo "lab: $config: expected memif ports p0 (…memif0…) and p1 (…memif1…)" >&2; exit 1; }
"$pollfwd" --config "$work/pollfwd.toml" --check >/dev/null

app_args=(-P -m "1.[0-1]")
if [ "$name" = imix ] && [ "${PF_IMIX_MODE:-pcap}" = pcap ]; then
    pcap=${PF_LAB_PCAP:-$work/imix.pcap}
    [ -f "$pcap" ] || "$pollfwdctl" gen-pcap -o "$pcap" -n 1200 --sizes imix --flows 1200 >/dev/null
    app_args+=(-s "0:$pcap")
fi
gen=("$pktgen" --no-pci --huge-unlink "--file-prefix=$gen_prefix" "--lcores=0@$gen_cpu,1@$gen_cpu"
     "--vdev=net_memif0,role=server,id=0,socket=$sock0,socket-abstract=no"
     "--vdev=net_memif1,role=server,id=0,socket=$sock1,socket-abstract=no"
     -- "${app_args[@]}" -f "$lua")
echo "lab: ${gen[*]}" | tee "$out/lab.txt"
export PF_OUT=$out/$name
# pktgen wants a terminal: script(1) gives it one (and runs the command through sh -c).
(cd "$work" && exec timeout -k 5 "$timeout_s" script -qfec "$(printf '%q ' "${gen[@]}")" /dev/null) \
    >"$work/pktgen.log" 2>&1 &
gen_pid=$!
started=""
for _ in $(seq 600); do
    if grep -aq "Pktgen:/>" "$work/pktgen.log" && [ -S "$sock0" ] && [ -S "$sock1" ]; then
        started=1
        break
    fi
    kill -0 "$gen_pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$started" ]; then
    sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' "$work/pktgen.log" | tail -20 >&2
    echo "lab: pktgen did not start its ports (log above)" >&2
    exit 1
fi
echo "lab: pktgen's ports are up; starting pollfwd (memif clients) on $config's lcores" | tee -a "$out/lab.txt"
timeout -k 5 -s INT "$timeout_s" "$pollfwd" --config "$work/pollfwd.toml" --summary json \
    >"$out/pollfwd-summary.json" 2>"$out/pollfwd.log" &
pf_pid=$!
rc=0
wait "$gen_pid" || rc=$?
gen_pid=""
kill -INT "$pf_pid" 2>/dev/null || true
wait "$pf_pid" || true
pf_pid=""
sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' "$work/pktgen.log" >"$out/pktgen.log"
[ "$rc" -eq 0 ] || echo "lab: pktgen ended with status $rc (124: PF_LAB_TIMEOUT reached)" >&2
echo "lab: results in $out:"
ls "$out"
exit "$rc"

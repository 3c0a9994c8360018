#!/usr/bin/env bash
# Soak and leak test (issue 18): the real pollfwd binary running the full chain
# classify -> nat -> policer -> forward on ONE worker lcore (the only busy-polling lcore;
# --no-pci, net_af_packet ports on veth pairs) between Linux hosts in network namespaces this
# script creates and deletes, for MINUTES minutes (default 10; fractions allowed) under:
#   - mixed traffic with NAT churn (scripts/soak-traffic.py: 24 new UDP flows and 3 TCP
#     connections every second from 8 inside addresses, a steady UDP stream, ping, datagrams
#     to a closed port, to an ACL-denied network and with TTL 1), NAT timeouts of 2-4 s;
#   - control-plane changes every second, in one sequence: `route add`/`route del`,
#     `acl add`/`acl del`, and every 10th second `reload` of a config that alternates between
#     two versions (routes, an ACL rule and a policer rate differ);
#   - clients hammering the control socket: two pollfwdctl loops (counters, tables, metrics)
#     and one socket client sending valid, unknown, malformed and abandoned requests.
# Then it stops the traffic, waits for the NAT timeouts, stops pollfwd with SIGTERM and
# prints a one-screen report. Exit status 1 if any check fails:
#   mempool   mbufs in use back to the idle baseline (taken before the traffic)
#   nat       NAT sessions 0 after the timeouts
#   rss       VmRSS flat within 1 % after warm-up (the first quarter of the load, >= 15 s,
#             which opens with a burst of concurrent control clients and a reload of each
#             config version)
#   fds       open files (/proc/PID/fd) back to the idle count
#   accounting  at the end, from pollfwd's own counters: rx + originated == tx + drops
#             (rx, tx: the lcores' counters, equal to the ports'; drops: all reasons, tx_full
#             and shutdown included; originated: forward's ARP requests and ICMP errors)
#   control   every route/ACL change and reload succeeded, every socket reply was JSON
#   crash     pollfwd exited 0 with its summary, no failed lcore (watchdog), no panic; the
#             traffic really flowed
#
#   scripts/soak.sh [MINUTES]
#
# Binaries: $POLLFWD and $POLLFWDCTL if set (the e2e test passes its own), else a release
# build (cargo build --release). Needs root, iproute2, ethtool, ping, python3. Takes the
# machine's busy-polling lock /tmp/pollfwd-busy.lock itself (do not hold it when calling).
# Everything it starts is stopped by PID; its namespaces, work directory and
# /var/run/dpdk/<prefix> are removed on exit, pass or fail.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
minutes=${1:-${SOAK_MINUTES:-10}}
case "$minutes" in '' | *[!0-9.]*) echo "soak.sh: MINUTES must be a number" >&2; exit 2 ;; esac
secs=$(python3 -c "print(max(20, round(float('$minutes') * 60)))")

if [ -z "${SOAK_LOCKED:-}" ]; then
    exec env SOAK_LOCKED=1 flock -w 1200 /tmp/pollfwd-busy.lock "$0" "$@"
fi
[ "$(id -u)" -eq 0 ] || { echo "soak.sh: needs root (namespaces, veth pairs, DPDK)" >&2; exit 2; }
for t in ip ethtool ping python3 flock; do
    command -v "$t" >/dev/null || { echo "soak.sh: '$t' is missing (scripts/install-deps.sh)" >&2; exit 2; }
done
if [ -z "${POLLFWD:-}" ] || [ -z "${POLLFWDCTL:-}" ]; then
    for d in "$HOME/.cargo/bin" /root/.cargo/bin; do
        [ -d "$d" ] && case ":$PATH:" in *":$d:"*) ;; *) PATH="$d:$PATH" ;; esac
    done
    cargo build --release --quiet -p pollfwd --bins
    tgt=$(realpath -m "${CARGO_TARGET_DIR:-target}")
    POLLFWD=$tgt/release/pollfwd
    POLLFWDCTL=$tgt/release/pollfwdctl
fi
traffic=$root/scripts/soak-traffic.py

id=$$
ns_in=pfs-in-$id ns_out=pfs-out-$id ns_r=pfs-r-$id
prefix=pfsoak-$id
work=$(mktemp -d /tmp/pollfwd-soak.XXXXXX)
sock=$work/ctl.sock
pids=()     # everything started in the background, stopped by PID at exit
pf_pid=""
cleanup() {
    set +e
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    if [ -n "$pf_pid" ] && kill -0 "$pf_pid" 2>/dev/null; then
        kill -TERM "$pf_pid"; sleep 2; kill -KILL "$pf_pid" 2>/dev/null
    fi
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    for n in "$ns_in" "$ns_out" "$ns_r"; do ip netns del "$n" 2>/dev/null; done
    rm -rf "/var/run/dpdk/$prefix"
    if [ -n "${SOAK_KEEP:-}" ]; then echo "soak.sh: work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Hosts: inside (10.0.0.2-9), outside server (198.51.100.2), router (pollfwd).
for n in "$ns_in" "$ns_out" "$ns_r"; do
    ip netns add "$n"
    ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip netns exec "$n" ip link set lo up
done
ip link add pfsi0 netns "$ns_in" type veth peer name pfsi1 netns "$ns_r"
ip link add pfso0 netns "$ns_out" type veth peer name pfso1 netns "$ns_r"
for e in pfsi1 pfso1; do ip -n "$ns_r" link set "$e" up; done
ip netns exec "$ns_in" ethtool -K pfsi0 tx off >/dev/null
ip netns exec "$ns_out" ethtool -K pfso0 tx off >/dev/null
srcs=()
for h in 2 3 4 5 6 7 8 9; do
    ip -n "$ns_in" addr add "10.0.0.$h/24" dev pfsi0
    srcs+=("10.0.0.$h")
done
ip -n "$ns_in" link set pfsi0 up
ip -n "$ns_in" route add default via 10.0.0.1
ip -n "$ns_out" addr add 198.51.100.2/24 dev pfso0
ip -n "$ns_out" link set pfso0 up

# --- Config: version A or B (reloads alternate; [nat] never changes: a reload refuses that).
config() { # A|B
    local extra_route="" extra_rule="" cir=200000000
    if [ "$1" = B ]; then
        extra_route=', { prefix = "192.0.2.128/25", via = "198.51.100.2" }'
        extra_rule='{ dst = "203.0.113.77/32", action = "deny" },'
        cir=300000000
    fi
    cat > "$work/pollfwd.toml.new" <<TOML
[eal]
file_prefix = "$prefix"

[mempool]
mbufs = 8191

[[port]]
name = "in"
device = "net_af_packet0,iface=pfsi1"
address = "10.0.0.1/24"

[[port]]
name = "out"
device = "net_af_packet1,iface=pfso1"
address = "198.51.100.1/24"

[[lcore]]
id = 1
rx = [{ port = "in" }, { port = "out" }]
stages = ["classify", "nat", "policer", "forward"]

[classify]
default = "permit"
classes = ["bulk"]
rules = [
  $extra_rule
  { dst = "203.0.113.0/24", action = "deny" },
  { proto = "udp", dport = 7007, action = "permit", class = "bulk" },
]

[nat]
inside = ["in"]
outside = ["out"]
pool = ["198.51.100.16/30"]
max_sessions = 65536
timeouts = { udp = 2, tcp_established = 4, tcp_transitory = 2, icmp = 2 }

[policer]
policers = [
  { name = "bulk", kind = "srtcm", cir = $cir, cbs = 1000000, ebs = 1000000, bind = { class = "bulk", per_source = true, max_sources = 1024 } },
]

[forward]
routes = [{ prefix = "0.0.0.0/0", via = "198.51.100.2" }$extra_route]
arp_timeout_s = 30

[control]
socket = "$sock"
TOML
    mv "$work/pollfwd.toml.new" "$work/pollfwd.toml"
}
config A
"$POLLFWD" --config "$work/pollfwd.toml" --check >/dev/null

# --- Start pollfwd in the router namespace (ip netns exec execs it: $! is pollfwd).
start=$(date +%s)
ip netns exec "$ns_r" "$POLLFWD" --config "$work/pollfwd.toml" --summary json \
    --duration $((secs + 120)) > "$work/summary.json" 2> "$work/pollfwd.err" &
pf_pid=$!
for _ in $(seq 1 200); do
    "$POLLFWDCTL" --socket "$sock" --timeout 1 call version >/dev/null 2>&1 && break
    kill -0 "$pf_pid" 2>/dev/null || { cat "$work/pollfwd.err" >&2; echo "soak.sh: pollfwd exited at start" >&2; exit 1; }
    sleep 0.1
done
ctl() { "$POLLFWDCTL" --socket "$sock" "$@"; }
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$pf_pid/status"; }
rss_parts() { awk '/^Rss(Anon|File|Shmem):/ {printf "%s%s", sep, $2; sep="/"}' "/proc/$pf_pid/status"; }
# Open files other than DPDK's hugepage segments (memfd:seg_*, which come and go with the
# DPDK heap: counted apart, as hugepage segments).
fds() { for f in /proc/"$pf_pid"/fd/*; do readlink "$f"; done | grep -vc '^/memfd:seg_'; }
segs() { for f in /proc/"$pf_pid"/fd/*; do readlink "$f"; done | grep -c '^/memfd:seg_' || true; }
fd_list() { for f in /proc/"$pf_pid"/fd/*; do readlink "$f"; done | grep -v '^/memfd:seg_' | sed 's/\[[0-9]*\]/[N]/' | sort; }
# jget EXPR: a Python expression over the JSON on stdin (`d`), printed (fails on None).
jget() { python3 -c "import json,sys; d=json.load(sys.stdin); v=$1; print(v) if v is not None else sys.exit(1)"; }
in_use() { ctl --json mempools | jget 'sum(p["in_use"] for p in d)'; }
sessions() { ctl call nat.summary | jget 'd["sessions"]'; }

# Idle baselines: ARP resolved both ways first (a ping), then nothing moves.
ip netns exec "$ns_in" ping -q -c 2 -W 1 198.51.100.2 >/dev/null 2>&1 || true
sleep 3   # the ping's NAT session (ICMP, 2 s) expires
base_in_use=$(in_use)
base_fds=$(fds)
base_segs=$(segs)
fd_list > "$work/fds.idle"
base_rss=$(rss)

# --- Load.
ip netns exec "$ns_out" python3 "$traffic" server $((secs + 5)) > "$work/server.json" &
pids+=($!)
sleep 0.5
ip netns exec "$ns_in" python3 "$traffic" client "$secs" 198.51.100.2 "${srcs[@]}" > "$work/client.json" 2> "$work/client.err" &
client_pid=$!
pids+=($client_pid)
ip netns exec "$ns_in" ping -q -i 0.05 -w "$secs" 198.51.100.2 > "$work/ping.txt" 2>&1 &
pids+=($!)
traffic_start=$(date +%s)
deadline=$(( traffic_start + secs ))
# Warm-up opens with a burst of 12 concurrent control clients for 5 s and a reload of each
# config version, so that every control-server thread, malloc arena and table size the load
# will use exists before RSS is judged (a reload's first new tables move glibc's mmap
# threshold: later tables of that size come from the heap, which keeps its pages).
python3 "$traffic" burst 5 "$sock" 12 > "$work/burst.json" || true
for v in B A B A; do config $v; ctl --timeout 10 reload >/dev/null; sleep 0.5; done

hammer() { # name commands...: a pollfwdctl loop until the deadline; counts failures
    local name=$1 ok=0 bad=0; shift
    while [ "$(date +%s)" -lt "$deadline" ]; do
        for c in "$@"; do
            # shellcheck disable=SC2086
            if ctl --timeout 5 $c >/dev/null 2>&1; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
        done
        sleep 0.05
    done
    echo "{\"ok\": $ok, \"failed\": $bad}" > "$work/$name.json"
}
hammer hammer1 "--json stats" "--json ports" "--json lcores" "--json mempools" "--json runtime" "metrics" &
pids+=($!)
hammer hammer2 "--json nat sessions --limit 5" "--json neigh list" "--json acl list" "--json route list" "--json policer list" &
pids+=($!)
python3 "$traffic" control "$secs" "$sock" > "$work/control.json" &
pids+=($!)

changes() { # one sequence of control-plane changes per second until the deadline
    local i=0 ok=0 bad=0 reloads=0 id
    while [ "$(date +%s)" -lt "$deadline" ]; do
        i=$((i + 1))
        if [ $((i % 10)) -eq 0 ]; then
            if [ $(((i / 10) % 2)) -eq 1 ]; then config B; else config A; fi
            if ctl --timeout 10 reload >/dev/null 2>>"$work/changes.err"; then ok=$((ok + 1)); reloads=$((reloads + 1)); else bad=$((bad + 1)); fi
        else
            local p="10.$((100 + i % 100)).$((i % 250)).0/24"
            if ctl route add "prefix=$p" via=198.51.100.2 >/dev/null 2>>"$work/changes.err"; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
            if id=$(ctl --json acl add "dst=203.0.113.$((100 + i % 100))/32" proto=udp action=deny 2>>"$work/changes.err" | jget 'd.get("id")' 2>/dev/null); then
                ok=$((ok + 1))
                sleep 0.3
                if ctl acl del "id=$id" >/dev/null 2>>"$work/changes.err"; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
            else
                bad=$((bad + 1))
            fi
            if ctl route del "prefix=$p" >/dev/null 2>>"$work/changes.err"; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
        fi
        sleep 0.5
    done
    echo "{\"ok\": $ok, \"failed\": $bad, \"reloads\": $reloads}" > "$work/changes.json"
}
changes &
pids+=($!)

# --- Sampling while the load runs.
warm=$(( (traffic_start - start) + (secs / 4 > 15 ? secs / 4 : 15) ))
: > "$work/samples"
peak_sessions=0
while [ "$(date +%s)" -lt "$deadline" ]; do
    sleep 2
    kill -0 "$pf_pid" 2>/dev/null || break
    t=$(( $(date +%s) - start ))
    s=$(sessions 2>/dev/null || echo 0)
    [ "$s" -gt "$peak_sessions" ] && peak_sessions=$s
    echo "$t $(rss) $(fds) $s $(rss_parts) $(segs)" >> "$work/samples"
done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
pids=()

# --- Quiet: NAT timeouts expire (4 s at most, plus a housekeeping granule), ARP waits end.
drain_start=$(date +%s)
end_sessions=-1
for _ in $(seq 1 60); do
    end_sessions=$(sessions 2>/dev/null || echo -1)
    [ "$end_sessions" = 0 ] && break
    sleep 0.5
done
drain_s=$(( $(date +%s) - drain_start ))
sleep 1
end_in_use=$(in_use 2>/dev/null || echo -1)
# A control client that just left is closed by its server thread a moment later.
for _ in 1 2 3 4 5 6; do
    end_fds=$(fds 2>/dev/null || echo -1)
    [ "$end_fds" = "$base_fds" ] && break
    sleep 0.5
done
fd_list > "$work/fds.end" 2>/dev/null || true
end_segs=$(segs 2>/dev/null || echo -1)
end_rss=$(rss 2>/dev/null || echo -1)

kill -TERM "$pf_pid" 2>/dev/null || true
rc=0
wait "$pf_pid" || rc=$?
pf_pid=""
elapsed=$(( $(date +%s) - start ))

# --- Report.
python3 - "$work" "$rc" "$secs" "$warm" "$base_in_use" "$end_in_use" "$base_fds" "$end_fds" \
    "$base_rss" "$end_rss" "$peak_sessions" "$end_sessions" "$drain_s" "$elapsed" \
    "$base_segs" "$end_segs" <<'PY'
import json, sys
(work, rc, secs, warm, b_use, e_use, b_fd, e_fd, b_rss, e_rss, peak, e_sess, drain,
 elapsed, b_segs, e_segs) = sys.argv[1:]
rc, secs, warm = int(rc), int(secs), int(warm)
def load(name, default=None):
    try:
        return json.load(open(f"{work}/{name}"))
    except Exception:
        return default
err = open(f"{work}/pollfwd.err", errors="replace").read()
s = load("summary.json")
checks = []
def check(name, ok, text):
    checks.append((name, bool(ok), text))

samples = [tuple(int(x) for x in l.split()[:4]) + (l.split()[4], int(l.split()[5]))
           for l in open(f"{work}/samples") if l.strip()]
after = [x for x in samples if x[0] >= warm]
client = load("client.json", {})
ctl1, ctl2 = load("hammer1.json", {}), load("hammer2.json", {})
sockc, chg = load("control.json", {}), load("changes.json", {})
ping = open(f"{work}/ping.txt").read().strip().splitlines()
ping = next((l for l in ping if "transmitted" in l), "no ping summary")

print(f"== pollfwd soak: {secs} s of load, {elapsed} s in all; full chain, 1 worker, net_af_packet on veth")
if s:
    t = s["totals"]
    f = s["nf"]["forward"]["totals"]
    rx = sum(l["rx_packets"] for l in s["lcores"])
    tx = sum(l["tx_packets"] for l in s["lcores"])
    prx = sum(p["rx_packets"] for p in s["ports"])
    ptx = sum(p["tx_packets"] for p in s["ports"])
    drops = t["drops"]
    orig = (f["arp_requests_sent"] + f["icmp_errors_sent"]
            + f["fragments_sent"] - f["fragmented"])
    top = sorted(t["drops_by_reason"].items(), key=lambda kv: -kv[1])[:6]
    nat = s["nf"]["nat"]["workers"][0]["counters"]
    print(f"traffic   rx {rx} tx {tx} drops {drops} ({', '.join(f'{k} {v}' for k, v in top)})")
    print(f"          originated {orig} (ARP requests {f['arp_requests_sent']}, ICMP errors "
          f"{f['icmp_errors_sent']}, fragments {f['fragments_sent'] - f['fragmented']}); port missed {sum(p['rx_missed'] for p in s['ports'])}")
    print(f"nat       created {nat['sessions_created']} expired {nat['sessions_expired']} "
          f"peak {peak} in2out {nat['in2out']} out2in {nat['out2in']}")
    check("accounting", rx + orig == tx + drops and prx == rx and ptx == tx,
          f"rx {rx} + originated {orig} = {rx + orig}; tx {tx} + drops {drops} = {tx + drops}; "
          f"ports rx {prx} tx {ptx}")
else:
    check("accounting", False, "no summary")
print(f"hosts     {json.dumps(client)}")
print(f"          ping: {ping}")
print(f"control   pollfwdctl loops {ctl1} {ctl2}; socket client {sockc}; changes {chg}")
print(f"samples   t s: RSS KiB (anon/file/shmem), fds, sessions, hugepage segments")
step = max(1, len(samples) // 6)
print("          " + "  ".join(f"{x[0]}: {x[1]} ({x[4]}) {x[2]} {x[3]} {x[5]}" for x in samples[::step][:3]))
print("          " + "  ".join(f"{x[0]}: {x[1]} ({x[4]}) {x[2]} {x[3]} {x[5]}" for x in samples[::step][3:6]))
check("mempool", b_use == e_use and int(e_use) >= 0, f"mbufs in use: idle {b_use}, after the load {e_use}")
check("nat", e_sess == "0", f"sessions: peak {peak}, {e_sess} after {drain} s of quiet")
if after:
    lo, hi = min(x[1] for x in after), max(x[1] for x in after)
    check("rss", (hi - lo) * 100 <= lo * 1 and int(e_rss) <= hi,
          f"after warm-up ({warm} s): {lo}..{hi} KiB ({(hi - lo) * 100 / lo:.2f} %), idle {b_rss}, end {e_rss}")
else:
    check("rss", False, "no sample after warm-up")
check("fds", b_fd == e_fd, f"open files: idle {b_fd}, end {e_fd}, during {min((x[2] for x in samples), default=0)}..{max((x[2] for x in samples), default=0)}; hugepage segments idle {b_segs}, end {e_segs}, during {min((x[5] for x in samples), default=0)}..{max((x[5] for x in samples), default=0)}")
control_ok = (chg.get("failed", 1) == 0 and chg.get("reloads", 0) > 0 and ctl1.get("failed", 1) == 0
              and ctl2.get("failed", 1) == 0 and sockc.get("bad_replies", 1) == 0
              and sockc.get("connect_failed", 1) == 0)
check("control", control_ok, "changes, reloads and socket clients all answered")
flowed = client.get("udp_back", 0) > 0 and client.get("tcp_ok", 0) > 0 and client.get("stream_back", 0) > 0
failed = s.get("failed_lcores", []) if s else ["no summary"]
check("crash", rc == 0 and s is not None and not failed and "panic" not in err and flowed,
      f"exit {rc}, summary {'yes' if s else 'no'}, failed lcores {failed}, traffic flowed both ways: {flowed}")
print()
for name, ok, text in checks:
    print(f"{'PASS' if ok else 'FAIL'}  {name:<10} {text}")
bad = [n for n, ok, _ in checks if not ok]
print("soak: " + ("PASS" if not bad else "FAIL (" + ", ".join(bad) + ")"))
if bad and err.strip():
    print("pollfwd stderr (last lines):\n" + "\n".join(err.strip().splitlines()[-15:]))
if "fds" in bad:
    import subprocess
    print("fd diff (idle -> end):\n" + subprocess.run(["diff", f"{work}/fds.idle", f"{work}/fds.end"],
          capture_output=True, text=True).stdout)
if "control" in bad:
    print("changes errors:\n" + open(f"{work}/changes.err").read()[-1500:])
sys.exit(1 if bad else 0)
PY

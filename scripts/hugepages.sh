#!/usr/bin/env bash
# Reserve, inspect and release hugepages for pollfwd (DPDK). See docs/hugepages.md.
#
# Exit codes: 0 ok, 1 not root, 2 usage error or unsupported page size / node,
#             3 the kernel granted fewer pages than asked.
set -euo pipefail

readonly PROG=hugepages.sh
readonly NODE_SYSFS=/sys/devices/system/node
readonly GLOBAL_SYSFS=/sys/kernel/mm/hugepages
readonly ORIG_ARGS="$*"

usage() {
    cat <<'EOF'
Usage:
  scripts/hugepages.sh [--size 2M|1G] [--mb N | --pages N] [--node N|all] [--exact]
  scripts/hugepages.sh --status
  scripts/hugepages.sh --release [--size 2M|1G] [--node N|all]
  scripts/hugepages.sh --help

Reserve hugepages for DPDK (default: 1024 MiB of 2M pages on every NUMA node), mount
hugetlbfs if no mount for that page size exists, and print what the kernel granted.

Options:
  --size 2M|1G   page size (default 2M). 1G pages usually need the boot parameters
                 "default_hugepagesz=1G hugepagesz=1G hugepages=N" to be available.
  --mb N         MiB to reserve per node (default 1024), rounded up to whole pages.
  --pages N      number of pages to reserve per node (instead of --mb).
  --node N|all   NUMA node to act on (default all nodes with memory). Without NUMA
                 sysfs the system-wide pool is used and only 0 or all are accepted.
  --exact        set the reservation to exactly the request, even if that lowers it
                 (by default an existing reservation that is large enough is kept).
  --status       print total/free pages per node and size, and the hugetlbfs mounts.
                 Does not need root.
  --release      set the reservation of the chosen size back to 0. Only pages not in
                 use are returned; pages held by running processes or by files left in
                 a hugetlbfs mount stay until those go away.
  --help         this text.

Exit codes: 0 ok, 1 not root, 2 usage error or unsupported size/node,
            3 the kernel granted fewer pages than asked (warning printed).
EOF
}

die() { # die CODE MESSAGE
    echo "$PROG: $2" >&2
    exit "$1"
}

warn() { echo "$PROG: warning: $*" >&2; }

# Expand a sysfs CPU/node list such as "0-2,4" into "0 1 2 4".
expand_list() {
    local part out=()
    local IFS=,
    for part in $1; do
        if [[ $part == *-* ]]; then
            local i
            for ((i = ${part%-*}; i <= ${part#*-}; i++)); do out+=("$i"); done
        elif [[ -n $part ]]; then
            out+=("$part")
        fi
    done
    echo "${out[*]:-}"
}

# Page size argument -> size in kB.
size_kb() {
    case "${1,,}" in
        2m | 2mb | 2048k | 2048kb) echo 2048 ;;
        1g | 1gb | 1024m | 1048576k | 1048576kb) echo 1048576 ;;
        *) die 2 "unsupported page size '$1' (use 2M or 1G)" ;;
    esac
}

# Size in kB -> human label.
size_label() {
    if (($1 >= 1048576)); then echo "$(($1 / 1048576))G"; else echo "$(($1 / 1024))M"; fi
}

have_numa() {
    compgen -G "$NODE_SYSFS/node[0-9]*/hugepages" >/dev/null
}

# Nodes that hold hugepages, in numeric order.
all_nodes() {
    local d n nodes=()
    for d in "$NODE_SYSFS"/node[0-9]*; do
        [[ -d $d/hugepages ]] || continue
        n=${d##*/node}
        nodes+=("$n")
    done
    # Memoryless nodes cannot hold pages: skip them when the kernel says which have memory.
    if [[ -r $NODE_SYSFS/has_memory ]]; then
        local mem keep=() m
        mem=" $(expand_list "$(cat "$NODE_SYSFS/has_memory")") "
        for n in "${nodes[@]}"; do
            m=" $n "
            [[ $mem == *"$m"* ]] && keep+=("$n")
        done
        nodes=("${keep[@]}")
    fi
    printf '%s\n' "${nodes[@]}" | sort -n | paste -sd ' ' -
}

# sysfs directory of the pool for node $1 ("" = system-wide) and size $2 (kB).
pool_dir() {
    if [[ -n $1 ]]; then
        echo "$NODE_SYSFS/node$1/hugepages/hugepages-$2kB"
    else
        echo "$GLOBAL_SYSFS/hugepages-$2kB"
    fi
}

pool_name() { if [[ -n $1 ]]; then echo "node$1"; else echo "system"; fi; }

# Default hugepage size in kB (the size of a hugetlbfs mount without pagesize=).
default_size_kb() {
    awk '/^Hugepagesize:/ { print $2 }' /proc/meminfo
}

# Page size in kB of a hugetlbfs mount, from its options in /proc/mounts.
mount_size_kb() { # mount_size_kb OPTIONS
    local opt v
    local IFS=,
    for opt in $1; do
        if [[ $opt == pagesize=* ]]; then
            v=${opt#pagesize=}
            case "$v" in
                *G) echo $((${v%G} * 1048576)) ;;
                *M) echo $((${v%M} * 1024)) ;;
                *K | *k) echo "${v%[Kk]}" ;;
                *) echo $((v / 1024)) ;;
            esac
            return
        fi
    done
    default_size_kb
}

# Prints "mountpoint sizekB" for each hugetlbfs mount.
hugetlbfs_mounts() {
    local mnt fstype opts
    while read -r _ mnt fstype opts _; do
        [[ $fstype == hugetlbfs ]] || continue
        echo "$mnt $(mount_size_kb "$opts")"
    done </proc/mounts
}

# Makes sure some hugetlbfs mount serves pages of size $1 kB.
ensure_mount() {
    local kb=$1 label mnt size target opts=()
    label=$(size_label "$kb")
    while read -r mnt size; do
        if [[ $size == "$kb" ]]; then
            echo "hugetlbfs for $label pages already mounted at $mnt"
            return
        fi
    done < <(hugetlbfs_mounts)
    target=/dev/hugepages
    if mountpoint -q "$target"; then
        target=/dev/hugepages-$label
    fi
    mkdir -p "$target"
    if [[ $kb != "$(default_size_kb)" ]]; then
        opts=(-o "pagesize=$label")
    fi
    mount -t hugetlbfs "${opts[@]}" nodev "$target"
    echo "mounted hugetlbfs for $label pages at $target"
}

# ---- argument parsing ------------------------------------------------------------------------

action=reserve
size_arg=2M
mb=""
pages=""
node_arg=all
exact=0

need_value() { [[ $# -ge 2 && -n $2 ]] || die 2 "$1 needs a value (see --help)"; }

while (($#)); do
    case "$1" in
        --size) need_value "$@"; size_arg=$2; shift 2 ;;
        --size=*) size_arg=${1#*=}; shift ;;
        --mb) need_value "$@"; mb=$2; shift 2 ;;
        --mb=*) mb=${1#*=}; shift ;;
        --pages) need_value "$@"; pages=$2; shift 2 ;;
        --pages=*) pages=${1#*=}; shift ;;
        --node) need_value "$@"; node_arg=$2; shift 2 ;;
        --node=*) node_arg=${1#*=}; shift ;;
        --exact) exact=1; shift ;;
        --status) action=status; shift ;;
        --release) action=release; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die 2 "unknown argument '$1' (see --help)" ;;
    esac
done

[[ -z $mb || -z $pages ]] || die 2 "give --mb or --pages, not both"
[[ -z $mb || $mb =~ ^[0-9]+$ ]] || die 2 "--mb wants a number of MiB, got '$mb'"
[[ -z $pages || $pages =~ ^[0-9]+$ ]] || die 2 "--pages wants a number, got '$pages'"
[[ $node_arg == all || $node_arg =~ ^[0-9]+$ ]] || die 2 "--node wants a number or 'all', got '$node_arg'"
if [[ $action != reserve ]] && [[ -n $mb || -n $pages || $exact == 1 ]]; then
    die 2 "--mb, --pages and --exact only apply when reserving"
fi

# ---- status ----------------------------------------------------------------------------------

print_status() {
    local nodes=() n d kb total free surp files mnt size
    if have_numa; then
        read -r -a nodes <<<"$(all_nodes)"
    else
        nodes=("")
    fi
    printf '%-8s %-5s %8s %8s %8s %10s\n' POOL SIZE TOTAL FREE SURPLUS TOTAL_MIB
    for n in "${nodes[@]}"; do
        for d in "$GLOBAL_SYSFS"/hugepages-*kB; do
            kb=${d##*/hugepages-}
            kb=${kb%kB}
            d=$(pool_dir "$n" "$kb")
            [[ -r $d/nr_hugepages ]] || continue
            total=$(cat "$d/nr_hugepages")
            free=$(cat "$d/free_hugepages")
            surp=$(cat "$d/surplus_hugepages" 2>/dev/null || echo 0)
            printf '%-8s %-5s %8s %8s %8s %10s\n' "$(pool_name "$n")" "$(size_label "$kb")" \
                "$total" "$free" "$surp" "$((total * kb / 1024))"
        done
    done
    echo
    echo "hugetlbfs mounts:"
    local any=0
    while read -r mnt size; do
        any=1
        files=$(find "$mnt" -maxdepth 1 -type f 2>/dev/null | wc -l)
        printf '  %-24s pagesize %-4s %s file(s)\n' "$mnt" "$(size_label "$size")" "$files"
    done < <(hugetlbfs_mounts)
    ((any)) || echo "  (none: DPDK needs one unless run with --in-memory; reserving mounts one)"
    if [[ -d /var/run/dpdk ]]; then
        local prefixes
        prefixes=$(find /var/run/dpdk -mindepth 1 -maxdepth 1 -type d -printf '%f ' 2>/dev/null)
        [[ -z $prefixes ]] || echo "DPDK runtime dirs in /var/run/dpdk (left after exit): $prefixes"
    fi
}

if [[ $action == status ]]; then
    print_status
    exit 0
fi

# ---- reserve / release -----------------------------------------------------------------------

if [[ $(id -u) != 0 ]]; then
    echo "$PROG: must run as root (try: sudo scripts/hugepages.sh${ORIG_ARGS:+ $ORIG_ARGS})" >&2
    exit 1
fi

kb=$(size_kb "$size_arg")
label=$(size_label "$kb")
[[ -d $GLOBAL_SYSFS/hugepages-${kb}kB ]] ||
    die 2 "this kernel offers no $label pages ($GLOBAL_SYSFS/hugepages-${kb}kB missing)$(
        [[ $kb == 1048576 ]] && echo '; 1G pages need CPU flag pdpe1gb and usually the boot parameters default_hugepagesz=1G hugepagesz=1G hugepages=N'
    )"

# The pools to act on: node numbers, or "" for the system-wide pool.
pools=()
if have_numa; then
    if [[ $node_arg == all ]]; then
        read -r -a pools <<<"$(all_nodes)"
        ((${#pools[@]})) || die 2 "no NUMA node with memory found under $NODE_SYSFS"
    else
        [[ -d $NODE_SYSFS/node$node_arg/hugepages ]] ||
            die 2 "no NUMA node $node_arg (nodes: $(all_nodes))"
        pools=("$node_arg")
    fi
else
    [[ $node_arg == all || $node_arg == 0 ]] ||
        die 2 "no NUMA sysfs on this machine: only --node 0 or all (the system-wide pool)"
    pools=("")
fi

# Writes $2 to the pool of node $1, retrying once after memory compaction if short.
set_pool() {
    local d
    d=$(pool_dir "$1" "$kb")
    echo "$2" >"$d/nr_hugepages"
    if (($(cat "$d/nr_hugepages") < $2)) && [[ -w /proc/sys/vm/compact_memory ]]; then
        # Fragmented memory is the usual cause (above all for 1G pages): compact and retry.
        echo 1 >/proc/sys/vm/compact_memory || true
        echo "$2" >"$d/nr_hugepages"
    fi
}

if [[ $action == release ]]; then
    for n in "${pools[@]}"; do
        d=$(pool_dir "$n" "$kb")
        before=$(cat "$d/nr_hugepages")
        echo 0 >"$d/nr_hugepages"
        after=$(cat "$d/nr_hugepages")
        echo "$(pool_name "$n"): $label pages $before -> $after (returned $((before - after)) to the kernel)"
        if ((after > 0)); then
            echo "  $after page(s) still in use: only free pages are returned; the rest go back when" \
                "the processes using them exit or their files in hugetlbfs are deleted"
        fi
    done
    exit 0
fi

if [[ -n $pages ]]; then
    want=$pages
else
    want_mb=${mb:-1024}
    want=$(((want_mb * 1024 + kb - 1) / kb))
    if ((want * kb != want_mb * 1024)); then
        echo "note: $want_mb MiB is not a whole number of $label pages; reserving $want ($((want * kb / 1024)) MiB)"
    fi
fi

short=0
for n in "${pools[@]}"; do
    d=$(pool_dir "$n" "$kb")
    name=$(pool_name "$n")
    cur=$(cat "$d/nr_hugepages")
    if ((cur == want)); then
        echo "$name: already $cur $label pages reserved"
    elif ((cur > want && exact == 0)); then
        echo "$name: already $cur $label pages reserved (>= $want asked; use --exact to lower)"
    else
        set_pool "$n" "$want"
        echo "$name: $label pages $cur -> $(cat "$d/nr_hugepages") (asked $want)"
    fi
    got=$(cat "$d/nr_hugepages")
    free=$(cat "$d/free_hugepages")
    echo "  $name: $got x $label = $((got * kb / 1024)) MiB reserved, $free page(s) free"
    if ((got < want)); then
        warn "$name: the kernel granted only $got of $want $label pages (memory fragmented or too" \
            "small; try again after freeing memory, or reserve at boot)"
        short=1
    fi
done

ensure_mount "$kb"

if ((short)); then
    exit 3
fi

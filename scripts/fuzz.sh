#!/usr/bin/env bash
# Runs every coverage-guided fuzz target (fuzz/, cargo fuzz with libFuzzer) for SECONDS each
# (default 60), one after the other at nice 19, and prints per target the executions, the
# coverage libFuzzer reached (cov: edges, ft: features) and whether it crashed. Exits non-zero
# if any target crashed (the input is in fuzz/artifacts/<target>/). docs/reliability.md.
#
#   scripts/fuzz.sh [SECONDS]          FUZZ_TARGETS="packets nat_stateful" scripts/fuzz.sh 30
#
# Stable Rust: targets are built with `--sanitizer none` (AddressSanitizer needs nightly; the
# code under test has no `unsafe` outside the DPDK binding). cargo-fuzz is installed if
# missing (a pinned version). Each target starts from the committed seeds (fuzz/corpus/<t>)
# and keeps what it finds in fuzz/target/corpus/<t> (not committed). The stage targets start
# one EAL per fuzz process (--no-pci --in-memory, a private file prefix; nothing polls).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
targets=${FUZZ_TARGETS:-"packets config control stages nat_stateful"}
CARGO_FUZZ_VERSION=0.13.2
for d in "$HOME/.cargo/bin" /root/.cargo/bin; do
    [ -d "$d" ] && case ":$PATH:" in *":$d:"*) ;; *) PATH="$d:$PATH" ;; esac
done
export PATH
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --quiet
fi
cd fuzz
echo "== fuzz: building the targets (cargo fuzz build --sanitizer none)"
nice -n 19 cargo fuzz build --sanitizer none
summary=()
failed=0
for t in $targets; do
    work="target/corpus/$t"
    mkdir -p "$work" "corpus/$t"
    log="target/fuzz-$t.log"
    echo "== fuzz: $t for ${secs} s"
    rc=0
    nice -n 19 cargo fuzz run --sanitizer none "$t" "$work" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -print_final_stats=1 >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
    if [ "$rc" -ne 0 ]; then
        failed=1
        grep -E -A6 "panicked|ERROR: libFuzzer|deadly signal" "$log" | head -20 || true
        summary+=("$(printf '%-14s CRASH  executions %-10s %s (log: fuzz/%s)' "$t" "${execs:-?}" "$cov" "$log")")
    else
        summary+=("$(printf '%-14s ok     executions %-10s %s' "$t" "${execs:-?}" "$cov")")
    fi
done
echo "== fuzz summary (${secs} s per target)"
printf '%s\n' "${summary[@]}"
exit "$failed"

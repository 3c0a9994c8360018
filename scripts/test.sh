#!/usr/bin/env bash
# Installs what pollfwd needs (root, Debian 12) and runs every test: formatting and clippy,
# unit tests, DPDK API tests (one EAL per test binary, --no-pci --in-memory), and end-to-end
# tests that start the real pollfwd binary on virtual ports (net_pcap labs, network namespaces
# with net_af_packet). End-to-end tests serialise their DPDK processes on
# /tmp/pollfwd-busy.lock so that no more than two lcores busy-poll at once.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then
    scripts/install-deps.sh
else
    echo "test.sh: not root: skipping install-deps (packages and hugepages must already be there)" >&2
fi
for d in "$HOME/.cargo/bin" /root/.cargo/bin; do
    [ -d "$d" ] && case ":$PATH:" in *":$d:"*) ;; *) PATH="$d:$PATH" ;; esac
done
export PATH
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== fuzz targets, a few seconds each (scripts/fuzz.sh; fails on a crash)"
scripts/fuzz.sh "${POLLFWD_FUZZ_SECONDS:-5}"
if compgen -G "bench/pktgen/*.lua" >/dev/null; then
    echo "== luac -p bench/pktgen/*.lua"
    luac5.3 -p bench/pktgen/*.lua
fi
echo "== shell scripts parse"
for s in scripts/*.sh bench/*.sh bench/lib/*.sh; do [ -f "$s" ] && bash -n "$s"; done
echo "== bench tooling (compare, plot, summaries; Pktgen scripts against a mock pktgen)"
cargo build --workspace --bins --quiet   # the bench tests check the configs they write
PYTHONDONTWRITEBYTECODE=1 python3 -m unittest discover -s bench/lib
# DPDK runtime directories the tests create (prefixes pf-*, pft-*) go when the run ends.
trap 'rm -rf /var/run/dpdk/pf-* /var/run/dpdk/pft-* 2>/dev/null || true' EXIT
echo "== cargo test"
cargo test --workspace --no-fail-fast "$@"
echo "== pollfwdctl's command parsing in a release build (the .deb ships release binaries; clap's release build answers some lookups differently)"
cargo test --release -p pollfwd --bin pollfwdctl

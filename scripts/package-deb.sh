#!/usr/bin/env bash
# Builds a Debian package of pollfwd: dist/pollfwd_<version>_<arch>.deb (docs/operations.md,
# "Installing").
#
#   scripts/package-deb.sh                 # cargo build --release, then package
#   scripts/package-deb.sh --no-build      # package the release binaries already built
#   scripts/package-deb.sh --bin-dir DIR   # package the binaries in DIR (e.g. target/debug)
#   scripts/package-deb.sh --out DIR       # write the .deb into DIR (default dist/)
#
# The package holds /usr/bin/pollfwd and /usr/bin/pollfwdctl, the systemd unit
# (packaging/pollfwd.service), the sysusers.d entry creating the control group `pollfwd`, the
# tmpfiles.d entry for /run/dpdk, /etc/pollfwd/pollfwd.toml (configs/pollfwd.toml, a conffile),
# every configs/*.toml as examples, README and docs/ in /usr/share/doc/pollfwd, the man pages
# (`pollfwdctl man --dir`) and bash/zsh/fish completions (`pollfwdctl completions`). Its
# Depends are computed from the binaries by dpkg-shlibdeps (the DPDK 22.11 libraries, hwloc...),
# plus the DPDK plugins it loads (mempool ring driver, PMDs). Installing does not enable or start the service; an upgrade restarts a running
# one. Needs dpkg-dev (scripts/install-deps.sh installs it). Nothing here needs root.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=1
bindir=""
out="$root/dist"
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) build=0 ;;
        --bin-dir) bindir=$(cd "$2" && pwd); build=0; shift ;;
        --out) mkdir -p "$2"; out=$(cd "$2" && pwd); shift ;;
        -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "package-deb.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
target=${CARGO_TARGET_DIR:-$root/target}
if [ "$build" = 1 ]; then
    cargo build --release -p pollfwd --bins
fi
bindir=${bindir:-$target/release}
for b in pollfwd pollfwdctl; do
    [ -x "$bindir/$b" ] || { echo "package-deb.sh: $bindir/$b not found (build first, or drop --no-build)" >&2; exit 1; }
done
for t in dpkg-deb dpkg-shlibdeps; do
    command -v "$t" >/dev/null || { echo "package-deb.sh: $t not found (apt-get install dpkg-dev)" >&2; exit 1; }
done

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkg="$stage/pollfwd"
doc="$pkg/usr/share/doc/pollfwd"

install -Dm755 "$bindir/pollfwd" "$pkg/usr/bin/pollfwd"
install -Dm755 "$bindir/pollfwdctl" "$pkg/usr/bin/pollfwdctl"
# Debug info out, symbols kept (panic backtraces name functions).
strip --strip-debug "$pkg/usr/bin/pollfwd" "$pkg/usr/bin/pollfwdctl"
install -Dm644 packaging/pollfwd.service "$pkg/usr/lib/systemd/system/pollfwd.service"
install -Dm644 packaging/pollfwd.sysusers "$pkg/usr/lib/sysusers.d/pollfwd.conf"
install -Dm644 packaging/pollfwd.tmpfiles "$pkg/usr/lib/tmpfiles.d/pollfwd.conf"
install -Dm640 configs/pollfwd.toml "$pkg/etc/pollfwd/pollfwd.toml"
for f in configs/*.toml; do
    install -Dm644 "$f" "$doc/examples/$(basename "$f")"
done
install -Dm644 README.md "$doc/README.md"
for f in docs/*.md; do
    install -Dm644 "$f" "$doc/$(basename "$f")"
done
cat > "$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: pollfwd

Files: *
Copyright: the pollfwd authors
License: BSD-3-Clause
 See /usr/share/common-licenses/BSD.
EOF
mkdir -p "$pkg/usr/share/man/man1"
"$pkg/usr/bin/pollfwdctl" man --dir "$pkg/usr/share/man/man1"
gzip -9n "$pkg"/usr/share/man/man1/*.1
install -d "$pkg/usr/share/bash-completion/completions" "$pkg/usr/share/zsh/vendor-completions" \
    "$pkg/usr/share/fish/vendor_completions.d"
"$pkg/usr/bin/pollfwdctl" completions bash > "$pkg/usr/share/bash-completion/completions/pollfwdctl"
"$pkg/usr/bin/pollfwdctl" completions zsh > "$pkg/usr/share/zsh/vendor-completions/_pollfwdctl"
"$pkg/usr/bin/pollfwdctl" completions fish > "$pkg/usr/share/fish/vendor_completions.d/pollfwdctl.fish"

# Depends from the binaries' shared libraries (dpkg-shlibdeps wants a debian/control beside it).
mkdir -p "$stage/src/debian"
: > "$stage/src/debian/control"
depends=$(cd "$stage/src" && dpkg-shlibdeps -O -e"$pkg/usr/bin/pollfwd" -e"$pkg/usr/bin/pollfwdctl" 2>/dev/null \
    | sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "package-deb.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
# DPDK loads drivers as plugins, which no binary links: the mempool driver every pool needs and
# the net_null PMD of the shipped config are required, the lab PMDs and Debian's NIC PMDs
# (through the dpdk package) recommended. Their package names carry DPDK's ABI (23 for 22.11).
abi=$(printf '%s\n' "$depends" | grep -o 'librte-eal[0-9]*' | head -1 | sed 's/librte-eal//')
[ -n "$abi" ] || { echo "package-deb.sh: no librte-eal in the dependencies: $depends" >&2; exit 1; }

mkdir -p "$pkg/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
cat > "$pkg/DEBIAN/control" <<EOF
Package: pollfwd
Version: $version
Architecture: $arch
Maintainer: ${POLLFWD_MAINTAINER:-pollfwd maintainers <pollfwd@localhost>}
Installed-Size: $size
Depends: $depends, systemd, librte-mempool-ring$abi, librte-net-null$abi
Recommends: dpdk, librte-net-pcap$abi, librte-net-af-packet$abi, librte-net-memif$abi, librte-net-ring$abi
Suggests: dpdk-dev
Section: net
Priority: optional
Description: DPDK poll-mode forwarding appliance
 pollfwd forwards packets between DPDK ports on pinned worker lcores, each running a
 chain of network functions (classify/ACL, NAT44, policer, IPv4 forwarding; xconnect and
 macswap for labs). pollfwdctl is its operator CLI on a Unix control socket.
 .
 The service (pollfwd.service, Type=notify) reads /etc/pollfwd/pollfwd.toml; members of
 the group pollfwd may use pollfwdctl. It is not enabled on installation: configure the
 ports first (/usr/share/doc/pollfwd/operations.md).
EOF
echo /etc/pollfwd/pollfwd.toml > "$pkg/DEBIAN/conffiles"
cat > "$pkg/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    systemd-sysusers pollfwd.conf || true
    systemd-tmpfiles --create pollfwd.conf || true
    if getent group pollfwd >/dev/null; then
        chgrp pollfwd /etc/pollfwd/pollfwd.toml
    fi
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload || true
        # An upgrade restarts a running service (the new binary); a first install starts nothing.
        if [ -n "$2" ]; then
            systemctl try-restart pollfwd.service || true
        fi
    fi
fi
EOF
cat > "$pkg/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
    systemctl stop pollfwd.service || true
    systemctl disable pollfwd.service >/dev/null 2>&1 || true
fi
EOF
cat > "$pkg/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi
EOF
chmod 755 "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/prerm" "$pkg/DEBIAN/postrm"
(cd "$pkg" && find . -type f ! -path './DEBIAN/*' ! -path './etc/*' -printf '%P\0' \
    | sort -z | xargs -0 md5sum) > "$stage/md5sums"
mv "$stage/md5sums" "$pkg/DEBIAN/md5sums"
mkdir -p "$out"
deb="$out/pollfwd_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >/dev/null
echo "$deb"

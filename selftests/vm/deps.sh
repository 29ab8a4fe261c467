#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Install everything the build and the VM tests need.  Idempotent, and a
# quick no-op (no apt at all) when everything is already there.
#
# Kernels: Debian's 6.1 LTS from bookworm and 6.12 LTS from
# bookworm-backports, both as versioned packages so that neither replaces
# the other.  The backports suite is added by reusing the archive URI
# already configured on this machine.
set -euo pipefail

cache=${ELASTICQ_CACHE:-/var/cache/elasticq}
here=$(cd "$(dirname "$0")" && pwd)

pkgs=(qemu-system-x86 busybox-static cpio kmod xz-utils gzip gcc make perl
      clang libclang-rt-14-dev liburing-dev liburcu-dev pkg-config sparse
      linux-source-6.1 flex bison bc libelf-dev gnuplot-nox)

log() { echo "deps: $*" >&2; }

missing_pkgs() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
			grep -q '^install ok installed$' || echo "$p"
	done
}

# The Debian archive URI this machine already uses (deb822 or one-line form).
archive_uri() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -e "$f" ] || continue
		awk '/^URIs:/ { uri = $2 } /^Suites:/ && / bookworm( |$)/ { s = 1 }
		     /^$/ { if (s && uri) { print uri; exit } s = 0; uri = "" }
		     END { if (s && uri) print uri }' "$f"
	done | head -n 1 | grep . && return
	awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' \
		/etc/apt/sources.list 2>/dev/null | grep .
}

add_backports() {
	if grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
		return 1
	fi
	local uri
	uri=$(archive_uri) || { log "no Debian archive in apt sources"; exit 1; }
	log "adding bookworm-backports from $uri"
	cat > /etc/apt/sources.list.d/elasticq-backports.sources <<EOT
Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOT
}

# The versioned image package that the newest metapackage of a series
# (6.1, 6.12) and flavour (amd64, rt-amd64) points to.
kernel_pkg() {
	apt-cache show "linux-image-$2" |
		awk -v series="$1" '
		/^Version:/ { v = $2 }
		/^Depends:/ { split($2, d, " "); p = d[1]
			      if (index(p, "linux-image-" series ".") == 1) print v, p }' |
		sort -V | tail -n 1 | cut -d' ' -f2
}

have_kernel() {
	local k
	k=$("$here/kernels.sh")
	[[ $k =~ (^|$'\n')${1//./\\.}\.[^$'\n']*[0-9]-$2($'\n'|$) ]]
}

kernels_missing() {
	local series flavour
	for flavour in amd64 rt-amd64; do
		for series in 6.1 6.12; do
			have_kernel "$series" "$flavour" || echo "$series $flavour"
		done
	done
}

need=$(missing_pkgs "${pkgs[@]}")
kneed=$(kernels_missing)
if [ -n "$need" ] || [ -n "$kneed" ]; then
	add_backports || true
	log "apt-get update"
	apt-get update -qq
	kpkgs=()
	while read -r series flavour; do
		[ -n "$series" ] || continue
		img=$(kernel_pkg "$series" "$flavour")
		[ -n "$img" ] || { log "no $series $flavour kernel in apt"; exit 1; }
		kpkgs+=("$img" "${img/linux-image-/linux-headers-}")
	done <<< "$kneed"
	log "installing: $need ${kpkgs[*]}"
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends $need "${kpkgs[@]}" >&2
fi

# Files from linux-source-6.1, extracted once, never copied into the repo.
src=$cache/linux-source
if [ ! -e "$src/.done" ]; then
	log "extracting kselftest and checkpatch files from linux-source-6.1"
	tarball=$(ls /usr/src/linux-source-6.1.tar.* | head -n 1)
	rm -rf "$src" && mkdir -p "$src/ksft" "$src/scripts"
	tmp=$(mktemp -d)
	top=linux-source-6.1
	tar -xf "$tarball" -C "$tmp" \
		$top/tools/testing/selftests/kselftest_harness.h \
		$top/tools/testing/selftests/kselftest.h \
		$top/scripts/checkpatch.pl $top/scripts/spelling.txt \
		$top/scripts/const_structs.checkpatch
	mv "$tmp/$top"/tools/testing/selftests/*.h "$src/ksft/"
	mv "$tmp/$top"/scripts/* "$src/scripts/"
	rm -rf "$tmp"
	touch "$src/.done"
fi

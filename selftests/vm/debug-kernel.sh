#!/bin/bash
# SPDX-License-Identifier: MIT
#
# debug-kernel.sh FLAVOUR   (FLAVOUR: kasan | kcsan)
#
# Build, once, a debug kernel for QEMU from Debian's linux-source-6.1 and
# print the path of its build tree on stdout: the directory that holds
# arch/x86/boot/bzImage, .config and Module.symvers, usable for external
# modules with `make -C DIR M=... modules` and booted by `run-vm.sh -K DIR`.
#
# Config: tinyconfig + kvm_guest.config + config/base.config +
# config/FLAVOUR.config, then olddefconfig; every option the two fragments
# ask for is checked in the final .config.  Everything is built in.
#
# Cache (ELASTICQ_CACHE, default /var/cache/elasticq):
#   kernels/linux-source-6.1-<pkgver>/       the tarball, extracted once
#   kernels/<flavour>-<pkgver>-<hash>/       O= build tree; <hash> covers the
#                                            fragments, this script and the
#                                            compiler
# A finished tree only appears by rename, so its presence means it is
# complete; builds of the same tree are serialised with flock.
#
# Environment: ELASTICQ_JOBS (make -j, default: number of CPUs),
# ELASTICQ_LINUX_TARBALL (default /usr/src/linux-source-6.1.tar.xz).
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
HERE=$(dirname "$SELF")
CACHE=${ELASTICQ_CACHE:-/var/cache/elasticq}
KCACHE=$CACHE/kernels
TARBALL=${ELASTICQ_LINUX_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
JOBS=${ELASTICQ_JOBS:-$(nproc)}

log() { echo "debug-kernel: $*" >&2; }
die() { log "$*"; exit 1; }

FLAVOUR=${1:-}
case $FLAVOUR in
kasan | kcsan) ;;
*) echo "usage: $0 kasan|kcsan" >&2; exit 2 ;;
esac
FRAGMENTS=("$HERE/config/base.config" "$HERE/config/$FLAVOUR.config")
for f in "${FRAGMENTS[@]}"; do [[ -r $f ]] || die "missing $f"; done
[[ -r $TARBALL ]] || die "no $TARBALL (apt-get install linux-source-6.1)"
# Build dependencies of the kernel itself (objtool needs libelf).
for t in gcc make flex bison bc perl; do
	command -v "$t" >/dev/null || die "$t missing (apt-get install $t)"
done
[[ -e /usr/include/gelf.h ]] || die "libelf headers missing (apt-get install libelf-dev)"

# Source version: the Debian package version when the tarball is the
# packaged one, else the tarball's size and mtime.
SRCVER=$(dpkg-query -S "$TARBALL" >/dev/null 2>&1 &&
	dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null) ||
	SRCVER=$(stat -c '%s-%Y' "$TARBALL")
SRCVER=${SRCVER//[^A-Za-z0-9.+_-]/_}
CCID=$(gcc --version | head -n 1)
HASH=$( { cat "${FRAGMENTS[@]}" "$SELF"; echo "$CCID"; } | sha256sum | cut -c1-12)
SRC=$KCACHE/linux-source-6.1-$SRCVER
OUT=$KCACHE/$FLAVOUR-$SRCVER-$HASH

# Fast path: a finished tree exists only once renamed into place.
if [[ -f $OUT/arch/x86/boot/bzImage ]]; then
	echo "$OUT"
	exit 0
fi

mkdir -p "$KCACHE"
TMP=''
cleanup() { [[ -z $TMP ]] || rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# The extracted source, shared by every flavour and config.
if [[ ! -f $SRC/Makefile ]]; then
	exec {srclock}>"$KCACHE/.lock-src-$SRCVER"
	flock "$srclock"
	if [[ ! -f $SRC/Makefile ]]; then
		rm -rf "$SRC".tmp.* # left by a killed run
		log "extracting $TARBALL to $SRC"
		TMP=$(mktemp -d "$SRC.tmp.XXXXXX")
		t0=$SECONDS
		nice -n 19 tar -xf "$TARBALL" -C "$TMP" --strip-components=1
		mv -T "$TMP" "$SRC"
		TMP=''
		log "extracted in $((SECONDS - t0)) s"
	fi
	exec {srclock}>&-
fi

exec {lockfd}>"$KCACHE/.lock-$FLAVOUR-$SRCVER-$HASH"
flock "$lockfd"
if [[ -f $OUT/arch/x86/boot/bzImage ]]; then
	echo "$OUT"
	exit 0
fi

rm -rf "$OUT".tmp.* # left by a killed or failed run
TMP=$(mktemp -d "$OUT.tmp.XXXXXX")
chmod 755 "$TMP"
BLOG=$TMP/elasticq-build.log
kmake() { nice -n 19 make -C "$SRC" O="$TMP" "$@" >>"$BLOG" 2>&1; }
failed() {
	log "$* failed; the end of $BLOG:"
	tail -n 40 "$BLOG" | sed 's/^/debug-kernel:   /' >&2
	TMP='' # keep the log for inspection
	exit 1
}

log "configuring $FLAVOUR kernel in $TMP"
t0=$SECONDS
kmake tinyconfig || failed "make tinyconfig"
# kernel/configs/ in 6.1, arch/x86/configs/ in later kernels.
kvm=$(ls "$SRC"/kernel/configs/kvm_guest.config "$SRC"/arch/x86/configs/kvm_guest.config \
	2>/dev/null | head -n 1) || true
[[ -n $kvm ]] || failed "finding kvm_guest.config"
(cd "$SRC" && nice -n 19 scripts/kconfig/merge_config.sh -m -O "$TMP" \
	"$TMP/.config" "$kvm" "${FRAGMENTS[@]}") \
	>>"$BLOG" 2>&1 || failed "merge_config.sh"
kmake olddefconfig || failed "make olddefconfig"

# Every option the repository's fragments ask for must have survived
# olddefconfig (it silently drops options whose dependencies are unmet).
dropped=()
while IFS= read -r line; do
	if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
		want="${BASH_REMATCH[1]}=${BASH_REMATCH[2]}"
		grep -qxF "$want" "$TMP/.config" || dropped+=("$want (got: $(
			grep -E "^(# )?${BASH_REMATCH[1]}[= ]" "$TMP/.config" || echo unset))")
	elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
		! grep -qE "^${BASH_REMATCH[1]}=" "$TMP/.config" ||
			dropped+=("$line (got: $(grep -E "^${BASH_REMATCH[1]}=" "$TMP/.config"))")
	fi
done < <(cat "${FRAGMENTS[@]}")
if [[ ${#dropped[@]} -gt 0 ]]; then
	log "options requested by the fragments but not in the final .config:"
	printf 'debug-kernel:   %s\n' "${dropped[@]}" >&2
	failed "config check"
fi
log "configured in $((SECONDS - t0)) s; building with -j$JOBS (nice 19), log $BLOG"

t0=$SECONDS
kmake -j"$JOBS" all || failed "make all"
for f in arch/x86/boot/bzImage Module.symvers .config include/config/kernel.release; do
	[[ -e $TMP/$f ]] || failed "build did not produce $f"
done
log "built $(cat "$TMP/include/config/kernel.release") in $((SECONDS - t0)) s"
rm -f "$TMP"/.tmp_vmlinux* # link intermediates, 100 MB

# Rename into place: other processes only ever see a complete tree.
rm -rf "$OUT"
mv -T "$TMP" "$OUT"
TMP=''
exec {lockfd}>&-
echo "$OUT"

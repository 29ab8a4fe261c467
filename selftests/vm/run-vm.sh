#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Boot a Debian kernel under QEMU with the host root filesystem shared
# read-only over virtio-9p, optionally insmod a module, run one command in
# the guest and report its output, exit code and any kernel problem reports.
# The host kernel cannot load modules, hence the VM.
#
# -k KVER boots /boot/vmlinuz-KVER with its virtio and 9p modules in the
# initramfs; -K BUILD_TREE boots a self-built kernel (debug-kernel.sh) that
# has them built in, with an initramfs that holds no modules.
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
CACHE=${ELASTICQ_CACHE:-/var/cache/elasticq}
# Kernel problem reports. WARNING:/BUG: are anchored at the start of a
# message because boot prints benign "Spectre V2 : WARNING: ..." lines; a
# user process's "traps: ... general protection fault ip:..." is not one.
TS='^(\[ *[0-9]+\.[0-9]+\] )?(\[ *[CT][0-9]+\] )?'
PROBLEM_RE="${TS}(WARNING:|BUG:)|Oops|kernel BUG at|general protection fault(,|: [0-9a-f]{4} \[#)|Kernel panic|possible circular locking|possible recursive locking|inconsistent lock state|suspicious RCU usage|INFO: trying to register non-static key|self-detected stall|rcu: INFO:|detected stalls|blocked for more than|soft lockup|hard LOCKUP|UBSAN:|KASAN:|KCSAN:|sleeping function called|unreferenced object"

log() { echo "run-vm: $*" >&2; }
die() { log "$*"; exit 2; }
usage() {
	echo "usage: $0 {-k KVER | -K BUILD_TREE} -o OUTDIR [-t TIMEOUT_SECONDS] [-m MODULE.ko] [-p \"module params\"] -- CMD [ARGS...]" >&2
	echo "       $0 --scan-only LOGFILE...   (print kernel problem reports; exit 126 if any)" >&2
	exit 2
}

# A log without its KCSAN reports that do not involve elasticq: the 6.1
# core kernel has known benign data races (scheduler statistics, page
# cache flags) that KCSAN reports at random.  A report involves elasticq
# when one of its stacks runs module code ("[elasticq]") or it names an
# eq_ function.  Serial console lines end in \r\n.
relevant_log() {
	tr -d '\r' <"$1" | awk '
	function flush() {
		if (nblk == 0) return
		if (!kcsan || mine) for (i = 1; i <= nblk; i++) print blk[i]
		else print "(KCSAN report outside elasticq left out: " title ")"
		nblk = 0; kcsan = 0; mine = 0
	}
	/========================================/ && nblk > 0 { blk[++nblk] = $0; flush(); next }
	/========================================/ { blk[++nblk] = $0; next }
	nblk > 0 {
		blk[++nblk] = $0
		if ($0 ~ /BUG: KCSAN:/) { kcsan = 1; title = $0; sub(/.*BUG: KCSAN: /, "", title) }
		if ($0 ~ /\[elasticq\]|[ \/]eq_[a-z_]+/) mine = 1
		if (nblk > 400) flush()
		next
	}
	{ print }
	END { flush() }'
}

# Print matching lines with context, one section per log; return 1 if none.
# (Not grep -q: under pipefail, its early exit fails the pipeline with
# SIGPIPE whenever the match comes before the end of a long log.)
scan_logs() {
	local f found=1 matches
	for f in "$@"; do
		[[ -f $f ]] || continue
		matches=$(relevant_log "$f" | grep -nE -B5 -A30 "$PROBLEM_RE") || true
		if [[ -n $matches ]]; then
			echo "==== $f ===="
			printf '%s\n' "$matches"
			found=0
		fi
	done
	return "$found"
}

if [[ ${1:-} == --scan-only ]]; then
	shift
	[[ $# -gt 0 ]] || usage
	if scan_logs "$@"; then exit 126; fi
	exit 0
fi

KVER='' KTREE='' OUTDIR='' TIMEOUT=600 MODULE='' PARAMS=''
while getopts 'k:K:o:t:m:p:h' opt; do
	case $opt in
	k) KVER=$OPTARG ;;
	K) KTREE=$OPTARG ;;
	o) OUTDIR=$OPTARG ;;
	t) TIMEOUT=$OPTARG ;;
	m) MODULE=$OPTARG ;;
	p) PARAMS=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[[ -n $KVER || -n $KTREE ]] && [[ -n $OUTDIR && $# -gt 0 ]] || usage
[[ -z $KVER || -z $KTREE ]] || die "-k and -K are exclusive"
[[ $TIMEOUT =~ ^[0-9]+$ ]] || die "bad timeout: $TIMEOUT"
if [[ -n $KTREE ]]; then
	KTREE=$(readlink -f "$KTREE")
	KERNEL=$KTREE/arch/x86/boot/bzImage
	[[ -r $KERNEL ]] || die "no kernel $KERNEL"
	KVER=$(cat "$KTREE/include/config/kernel.release") ||
		die "no kernel release in $KTREE"
	# Names the per-kernel cache files (KVM probe result).
	KID=tree-${KTREE##*/}-$(echo "$KTREE" | sha256sum | cut -c1-8)
	# Same for every such kernel: busybox and /init, no modules.
	INITRD=$CACHE/initramfs-builtin.cpio.gz
	# The pc machine's ACPI _PRT is an AML loop that a KASAN+lockdep kernel
	# under TCG cannot finish within ACPICA's 30 s loop timeout (twice,
	# then PCI INTx has no GSI); q35's is a plain table.
	MACHINE=(-machine q35)
else
	KERNEL=/boot/vmlinuz-$KVER
	[[ -r $KERNEL ]] || die "no kernel $KERNEL"
	[[ -d /lib/modules/$KVER ]] || die "no /lib/modules/$KVER"
	KID=$KVER
	INITRD=$CACHE/initramfs-$KVER.cpio.gz
	MACHINE=()
fi
mkdir -p "$OUTDIR" "$CACHE"
OUTDIR=$(readlink -f "$OUTDIR")
TMPD=$(mktemp -d /tmp/run-vm.XXXXXX)
trap 'rm -rf "$TMPD"' EXIT

# Runs in the guest as PID 1 from the initramfs (busybox sh).
write_init() {
	cat <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
say() { echo "elasticq-init: $*"; }
# Exiting PID 1 would panic (and look like a kernel problem): power off.
# KCSAN off first: stopping the other CPUs races benignly with them.
off() {
	sync
	K=/newroot/sys/kernel/debug/kcsan
	[ -e $K ] && echo off >$K
	echo o >/proc/sysrq-trigger; sleep 20; poweroff -f
}
for m in /lib/modules/*.ko; do
	[ -e "$m" ] || continue # none: the kernel has everything built in
	insmod "$m" || say "insmod $m failed"
done
if grep -q elasticq.probe /proc/cmdline; then say probe-ok; off; fi
R=/newroot O=/newroot/tmp/results
OPTS=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o $OPTS,ro hostroot $R || { say "cannot mount host root"; off; }
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/pts $R/dev/shm $R/dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666 devpts $R/dev/pts
mount -t tmpfs tmpfs $R/dev/shm
mount -t mqueue mqueue $R/dev/mqueue
mount -t debugfs debugfs $R/sys/kernel/debug 2>/dev/null
# The host directory the command runs in, if the tmpfs below would hide it
# (a clone under /tmp): kept aside, then put back at its own path.
KEEP=$(sed -n 's/.*elasticq\.keep=\([^ ]*\).*/\1/p' /proc/cmdline)
if [ -n "$KEEP" ]; then
	mkdir -p /keep
	mount -o bind "$R$KEEP" /keep || say "cannot keep $KEEP"
fi
mount -t tmpfs tmpfs $R/tmp
mount -t tmpfs tmpfs $R/run
if [ -n "$KEEP" ]; then
	mkdir -p "$R$KEEP"
	mount -o move /keep "$R$KEEP" || say "cannot put back $KEEP"
fi
mkdir -p $O
mount -t 9p -o $OPTS results $O || { say "cannot mount results"; off; }
say root-mounted
if [ -f $O/guest-insmod.sh ]; then
	chroot $R /bin/bash /tmp/results/guest-insmod.sh >$O/insmod.log 2>&1 </dev/null
	echo $? >$O/insmod-rc
fi
if [ ! -f $O/insmod-rc ] || [ "$(cat $O/insmod-rc)" = 0 ]; then
	chroot $R /bin/bash /tmp/results/guest-cmd.sh >$O/output 2>&1 </dev/null
	rc=$?
	dmesg >$O/dmesg.txt
	echo $rc >$O/rc
else
	dmesg >$O/dmesg.txt
fi
say done
off
EOF
}

# Modules needed to reach the 9p root, in load order. modprobe takes one
# module per call (extra words would be module parameters). None for a
# self-built kernel (-K): it has them built in.
module_chain() {
	local m
	[[ -z $KTREE ]] || return 0
	for m in virtio_pci 9pnet_virtio 9p; do
		modprobe -S "$KVER" --show-depends "$m"
	done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }'
}

build_initramfs() {
	local img=$1 stage=$TMPD/stage n=10 ko dst
	exec {lockfd}>"$CACHE/.lock-$(basename "$img" .cpio.gz)"
	flock "$lockfd"
	if [[ -s $img && ! $SELF -nt $img ]]; then
		exec {lockfd}>&-
		return
	fi
	log "building $img"
	mkdir -p "$stage"/{bin,dev,proc,sys,newroot,lib/modules}
	cp /bin/busybox "$stage/bin/busybox"
	write_init >"$stage/init"
	chmod 755 "$stage/init"
	while read -r ko; do
		# Busybox insmod cannot read compressed modules (6.12 ships .ko.xz).
		dst=$(basename "$ko")
		dst=$stage/lib/modules/$n-${dst%.ko*}.ko
		case $ko in
		*.xz) xz -dc "$ko" >"$dst" ;;
		*.zst) zstd -qdc "$ko" >"$dst" ;;
		*.gz) gzip -dc "$ko" >"$dst" ;;
		*) cp "$ko" "$dst" ;;
		esac
		n=$((n + 1))
	done < <(module_chain)
	[[ -n $KTREE ]] || ls "$stage"/lib/modules/*-9p.ko >/dev/null 2>&1 ||
		log "warning: 9p.ko not in the module chain (built in?)"
	(cd "$stage" && find . | cpio -o -H newc -R 0:0 --quiet) | gzip -6 >"$img.tmp.$$"
	mv "$img.tmp.$$" "$img"
	exec {lockfd}>&-
}

QEMU_BASE=(qemu-system-x86_64 "${MACHINE[@]}" -smp 2 -m 2048 -nographic -no-reboot -nodefaults
	-monitor none -kernel "$KERNEL")
CMDLINE="console=ttyS0 loglevel=5 panic=-1"
# Debug kernels: unmerged slab caches, so that failslab can target the
# module's kmalloc caches alone (faultinject.c) and reports name them.
[[ -z $KTREE ]] || CMDLINE+=" slub_nomerge"
# KCSAN: sample every 20th access, not every 4000th: under emulation the
# default let a race between four producers through unreported.
[[ $KVER != *-kcsan ]] || CMDLINE+=" kcsan.skip_watch=20"

# Normal kernels hang early under KVM on some hosts, so only trust KVM after
# a short boot to the init marker. Cached per host kernel and guest kernel.
choose_accel() {
	local cachef out
	case ${ELASTICQ_ACCEL:-} in
	kvm | tcg) echo "$ELASTICQ_ACCEL"; return ;;
	'') ;;
	*) die "ELASTICQ_ACCEL must be kvm or tcg" ;;
	esac
	cachef=$CACHE/accel-$(uname -r)-$KID
	exec {probefd}>"$CACHE/.lock-probe-$KID"
	flock "$probefd"
	if [[ ! -s $cachef ]]; then
		out=tcg
		if [[ -w /dev/kvm ]]; then
			log "probing KVM with $KVER (20 s at most)"
			timeout --kill-after=5 20 "${QEMU_BASE[@]}" -accel kvm -cpu host \
				-initrd "$INITRD" -serial "file:$TMPD/probe.log" \
				-append "$CMDLINE elasticq.probe=1" </dev/null >/dev/null 2>&1 || true
			grep -q 'elasticq-init: probe-ok' "$TMPD/probe.log" 2>/dev/null && out=kvm
		fi
		echo "$out" >"$cachef"
	fi
	exec {probefd}>&-
	cat "$cachef"
}

# Stale results from an earlier run would be mistaken for this run's.
rm -f "$OUTDIR"/{console.log,qemu.log,output,rc,dmesg.txt,insmod.log,insmod-rc} \
	"$OUTDIR"/{guest-cmd.sh,guest-insmod.sh,kernel-problems.txt,status}

build_initramfs "$INITRD"
ACCEL=$(choose_accel)
if [[ $ACCEL == kvm ]]; then
	ACCEL_ARGS=(-accel kvm -cpu host)
else
	# No 5-level paging: one KASAN boot in four faulted in identify_cpu
	# with it, and no test needs it.
	ACCEL_ARGS=(-accel "tcg,thread=multi" -cpu max,la57=off)
fi

# The guest mounts tmpfs on /tmp and /run, hiding the host's copies there.
hidden() { [[ $1 == /tmp/* || $1 == /run/* || $1 == /tmp || $1 == /run ]]; }
GUEST_KO=''
if [[ -n $MODULE ]]; then
	[[ -r $MODULE ]] || die "cannot read module $MODULE"
	GUEST_KO=$(readlink -f "$MODULE")
	if hidden "$GUEST_KO"; then
		cp "$GUEST_KO" "$OUTDIR/"
		GUEST_KO=/tmp/results/$(basename "$GUEST_KO")
	fi
	read -r -a pwords <<<"$PARAMS"
	{
		echo 'export PATH=/usr/sbin:/usr/bin:/sbin:/bin'
		printf 'exec insmod %q' "$GUEST_KO"
		[[ ${#pwords[@]} -eq 0 ]] || printf ' %q' "${pwords[@]}"
		echo
	} >"$OUTDIR/guest-insmod.sh"
fi
CWD=$(pwd -P)
if hidden "$CWD"; then
	[[ $CWD =~ ^[A-Za-z0-9/._+-]+$ ]] ||
		die "$CWD is hidden by the guest's tmpfs and has odd characters"
	CMDLINE+=" elasticq.keep=$CWD"
fi
{
	echo '#!/bin/bash'
	printf 'cd %q || exit\n' "$CWD"
	printf 'export ELASTICQ_KO=%q ELASTICQ_KO_PARAMS=%q ELASTICQ_KVER=%q\n' \
		"$GUEST_KO" "$PARAMS" "$KVER"
	echo 'export ELASTICQ_RESULTS=/tmp/results HOME=/root'
	echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
	printf 'exec'
	printf ' %q' "$@"
	echo
} >"$OUTDIR/guest-cmd.sh"

log "booting $KVER ($ACCEL, timeout ${TIMEOUT}s)"
start=$SECONDS
qrc=0
timeout --kill-after=10 "$TIMEOUT" "${QEMU_BASE[@]}" "${ACCEL_ARGS[@]}" \
	-initrd "$INITRD" -append "$CMDLINE" -serial "file:$OUTDIR/console.log" \
	-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
	-virtfs "local,path=$OUTDIR,mount_tag=results,security_model=none" \
	</dev/null >"$OUTDIR/qemu.log" 2>&1 || qrc=$?
log "VM finished after $((SECONDS - start)) s (qemu rc=$qrc)"

problems=0
if scan_logs "$OUTDIR/console.log" "$OUTDIR/dmesg.txt" >"$OUTDIR/kernel-problems.txt"; then
	problems=1
	log "kernel problems found, see $OUTDIR/kernel-problems.txt:"
	# grep -n marks matching lines "N:" and context lines "N-".
	grep -E '^[0-9]+:' "$OUTDIR/kernel-problems.txt" | head -5 | sed 's/^/run-vm:   /' >&2 || true
else
	rm -f "$OUTDIR/kernel-problems.txt"
fi

extra=''
[[ $problems -eq 1 ]] && extra=' +kernel-problems'
if [[ $qrc -eq 124 || $qrc -eq 137 ]]; then
	status=timeout code=124
	log "timed out after ${TIMEOUT}s"
elif [[ -f $OUTDIR/insmod-rc && $(cat "$OUTDIR/insmod-rc") != 0 ]]; then
	status=module-load-failed code=125
	log "loading $MODULE failed:"
	sed 's/^/run-vm:   /' "$OUTDIR/insmod.log" >&2
elif [[ ! -s $OUTDIR/rc ]]; then
	status=no-result code=125
	if [[ $qrc -ne 0 ]]; then
		log "qemu failed:"
		tail -5 "$OUTDIR/qemu.log" | sed 's/^/run-vm:   /' >&2
	elif ! grep -q 'elasticq-init: root-mounted' "$OUTDIR/console.log" 2>/dev/null; then
		log "guest did not boot to the host root, see $OUTDIR/console.log"
	else
		log "guest stopped before the command finished, see $OUTDIR/console.log"
	fi
elif [[ $problems -eq 1 ]]; then
	status=kernel-problems code=126 extra=''
else
	code=$(cat "$OUTDIR/rc")
	if [[ $code -eq 0 ]]; then status=ok; else status="cmd-failed rc=$code"; fi
fi
echo "$status$extra" >"$OUTDIR/status"
log "status: $status$extra"
[[ -f $OUTDIR/output ]] && cat "$OUTDIR/output"
exit "$code"

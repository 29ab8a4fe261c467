#!/bin/bash
# SPDX-License-Identifier: MIT
#
# `make check`: every test of elasticq as one TAP stream.
#   1. lint: checkpatch --strict, sparse, W=1 -Werror builds, uapi as C90
#   2. the queue core's unit tests in userspace under ASan+UBSan and TSan,
#      its fuzz corpus replayed and $FUZZ_SECONDS (60) of libFuzzer
#   3. for each kernel (lane): Debian's 6.1 and 6.12, generic and PREEMPT_RT
#      ($KVERS), then the KASAN+lockdep and KCSAN kernels built from
#      linux-source-6.1: build the module, boot the kernel under QEMU, load
#      the module, run the kselftests, check the kernel log (and, in the
#      KASAN kernel, that kmemleak finds nothing of elasticq's)
# $LANES, if set, names the lanes to run (e.g. "6.1.0-56-amd64 kasan").
# The last line is "N passed, N failed"; the exit status is non-zero if
# anything failed.
set -uo pipefail

cd "$(dirname "$0")/.."
build=${EQ_BUILD:-build}
out=$build/check
mkdir -p "$out"
read -r -a kvers <<< "${KVERS:-$(selftests/vm/kernels.sh | tr '\n' ' ')}"

n=0 pass=0 fail=0 skip=0

point() {	# point OK DESCRIPTION [LOGFILE]
	n=$((n + 1))
	if [ "$1" = ok ]; then
		pass=$((pass + 1))
		echo "ok $n $2"
	else
		fail=$((fail + 1))
		echo "not ok $n $2"
		[ -n "${3:-}" ] && [ -s "$3" ] && tail -n 40 "$3" | sed 's/^/#   /'
	fi
}

# step NAME LOGFILE COMMAND...: one result for a command that must succeed.
step() {
	local name=$1 log=$2
	shift 2
	if "$@" > "$log" 2>&1; then point ok "$name"; else point fail "$name" "$log"; fi
}

# merge PREFIX FILE: the framed output of run-tests.sh, renumbered.
merge() {
	local counts
	awk -v prefix="$1" -v start=$n -f selftests/tap-merge.awk "$2" > "$2.tap"
	counts=$(tail -n 1 "$2.tap")
	sed '$d' "$2.tap"
	read -r _ n p f s <<< "$counts"
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
}

# silent LOGFILE COMMAND...: succeed if COMMAND succeeds and prints nothing.
silent() {
	local log=$1
	shift
	"$@" > "$log" 2>&1 && [ ! -s "$log" ]
}

echo "TAP version 13"

step "lint: checkpatch --strict on kmod/ and uapi/" "$out/checkpatch.log" \
	silent "$out/checkpatch.out" make -s checkpatch
step "lint: uapi header compiles standalone as C90 with -Wall" \
	"$out/uapi.log" make -s uapi-check
step "build: userspace" "$out/userspace.log" make -s userspace selftests
step "build: unit tests (ASan+UBSan, TSan)" "$out/unit-build.log" make -s unit

# The lock-free core's race test: 400000 messages here (10 million when
# asked: ELASTICQ_LF_MESSAGES=10000000, minutes under TSan).
ELASTICQ_LF_MESSAGES=${ELASTICQ_LF_MESSAGES:-400000} \
	selftests/run-tests.sh "$build"/core/* > "$out/unit.out" 2>&1
merge "unit: " "$out/unit.out"

# The core under libFuzzer against its reference model: the corpus replayed
# (gcc, ASan+UBSan), then a short fuzzing run from it (clang).
{
	echo "### begin fuzz-replay"
	selftests/fuzz/run.sh --replay
	echo "### end fuzz-replay rc=$?"
	echo "### begin ring_fuzz"
	selftests/fuzz/run.sh "${FUZZ_SECONDS:-60}"
	echo "### end ring_fuzz rc=$?"
} > "$out/fuzz.out" 2>&1
merge "unit: " "$out/fuzz.out"

# lane NAME BOOT_OPTION BOOT_ARG MOD_KDIR [EXTRA_GUEST_TESTS...]: build the
# module for one kernel, then boot it twice: every test with the default
# queue (and the queues the tests create) lock-based, then lock-free
# (module parameter variant=1).  Each boot's kernel log is checked.
# The lock-free boot leaves out what does not depend on the variant or
# needs several consumers: named (the registry, roles and permissions),
# module (parameters, load and unload), fuzz_dev (its oracle models the
# lock-based queue) and untake_order (faults of several consumers).
LOCKFREE_SKIP=' named module fuzz_dev untake_order '
lane() {
	local name=$1 bootopt=$2 bootarg=$3 kdir=$4
	shift 4
	local ko=$build/kmod-$name/kmod/elasticq.ko

	step "$name: module builds with W=1 -Werror" "$out/$name-build.log" \
		make -s module-for MOD_NAME="$name" MOD_KDIR="$kdir"
	[ -e "$ko" ] || return
	lane_boot "$name" "$bootopt" "$bootarg" "$ko" "" "$@"
	lane_boot "$name lock-free" "$bootopt" "$bootarg" "$ko" variant=1 "$@"
}

# lane_boot LABEL BOOT_OPTION BOOT_ARG KO PARAMS [EXTRA_GUEST_TESTS...]
lane_boot() {
	local label=$1 bootopt=$2 bootarg=$3 ko=$4 params=$5 rc t
	shift 5
	local vmout=$out/vm-${label// /-} tests=()

	for t in "$build"/selftests/*; do
		[[ -n $params && $LOCKFREE_SKIP == *" ${t##*/} "* ]] ||
			tests+=("$t")
	done
	rm -rf "$vmout" && mkdir -p "$vmout"
	selftests/vm/run-vm.sh "$bootopt" "$bootarg" -o "$vmout" \
		-t "${VM_TIMEOUT:-2400}" -m "$PWD/$ko" -p "$params" -- \
		sh -c '[ -w /sys/kernel/debug/kmemleak ] &&
			echo clear > /sys/kernel/debug/kmemleak
			exec selftests/run-tests.sh "$@"' guest \
		"${tests[@]}" "$@" > "$vmout/tests.out" 2> "$vmout/run-vm.log"
	rc=$?
	merge "$label: " "$vmout/tests.out"
	if [ "$(grep -c '^### end ' "$vmout/tests.out")" -ne $((${#tests[@]} + $#)) ]; then
		point fail "$label: every test binary ran" "$vmout/run-vm.log"
	fi
	case $rc in
	0) point ok "$label: kernel log clean (no oops, warning, lockdep, stall)" ;;
	124) point fail "$label: VM finished in time" "$vmout/console.log" ;;
	125) point fail "$label: VM booted and loaded the module" "$vmout/console.log" ;;
	126) point fail "$label: kernel log clean" "$vmout/kernel-problems.txt" ;;
	*) point fail "$label: the guest ran the tests (status $rc)" "$vmout/run-vm.log" ;;
	esac
}

selected() { [ -z "${LANES:-}" ] || [[ " $LANES " == *" $1 "* ]]; }

for k in "${kvers[@]}"; do
	selected "$k" || continue
	step "$k: sparse reports nothing" "$out/$k-sparse.log" \
		silent "$out/$k-sparse.out" make -s sparse KVER="$k"
	lane "$k" -k "$k" "/lib/modules/$k/build"
done

# The debug kernels (debug-kernel.sh builds them once and caches them):
# KASAN+lockdep+kmemleak+failslab, then KCSAN.  After the tests in the
# kmemleak kernel, a scan must find nothing elasticq allocated.
for flavour in kasan kcsan; do
	selected "$flavour" || continue
	if ! tree=$(selftests/vm/debug-kernel.sh "$flavour" 2> "$out/$flavour-kernel.log"); then
		point fail "$flavour: debug kernel builds" "$out/$flavour-kernel.log"
		continue
	fi
	point ok "$flavour: debug kernel builds ($(cat "$tree/include/config/kernel.release"))"
	extra=()
	[ "$flavour" = kasan ] && extra=(selftests/vm/kmemleak-check.sh)
	lane "$flavour" -K "$tree" "$tree" "${extra[@]}"
done

echo "1..$n"
if [ "$skip" -gt 0 ]; then
	echo "$pass passed, $fail failed, $skip skipped"
else
	echo "$pass passed, $fail failed"
fi
[ "$fail" -eq 0 ]

#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The queue core (kmod/eq_ring.c) under libFuzzer, checked against the model
# in ring_model.h by ring_fuzz.c.  Prints TAP (a plan and one result).
#
#   selftests/fuzz/run.sh SECONDS
#	build build/fuzz/ring_fuzz (clang, libFuzzer + ASan + UBSan) and fuzz
#	for SECONDS, starting from a copy of selftests/fuzz/corpus/ring (the
#	repository is not modified)
#   selftests/fuzz/run.sh --update-corpus SECONDS
#	the same, then merge into selftests/fuzz/corpus/ring: the seed-* files
#	(from gen_seeds.py) stay, and the rest is re-minimized with -merge=1
#	from the old corpus plus what this run found (for `make fuzz`)
#   selftests/fuzz/run.sh --replay [FILE-OR-DIR...]
#	build build/fuzz/ring_replay without libFuzzer ($CC, default gcc,
#	ASan + UBSan) and run the corpus (or the given inputs) through it once
#
# Environment: BUILD or EQ_BUILD (build), CLANG (clang-14, else clang), CC (gcc),
# FUZZ_ARGS (extra libFuzzer options, e.g. "-fork=2").
#
# A failing input (mismatch with the model, sanitizer report, leak, timeout)
# fails the result and is kept as build/fuzz/crash-* (or timeout-*, oom-*,
# leak-*); reproduce it with build/fuzz/ring_fuzz FILE, and with
# RING_FUZZ_TRACE=1 in the environment to see every operation.
set -uo pipefail

cd "$(dirname "$0")/../.." || exit 2
build=${BUILD:-${EQ_BUILD:-build}}
out=$build/fuzz
corpus=selftests/fuzz/corpus/ring
srcs=(kmod/eq_ring.c selftests/core/shim/shim.c selftests/fuzz/ring_fuzz.c)
cflags=(-std=gnu11 -O1 -g -Wall -Wextra -Werror -D_GNU_SOURCE
	-Iselftests/core/shim -Iuapi -Ikmod)

usage() {
	echo "usage: $0 [--update-corpus] SECONDS | --replay [FILE-OR-DIR...]" >&2
	exit 2
}

mode=fuzz
case ${1:-} in
--replay) mode=replay; shift ;;
--update-corpus) mode=update; shift ;;
esac

# excerpt LOGFILE: from the first report of a problem on, else the end
excerpt() {
	local first
	first=$(grep -n -m 1 -E 'MISMATCH|ERROR|runtime error|WARNING|died on' \
		"$1" | cut -d: -f1)
	if [ -n "$first" ]; then
		tail -n +"$first" "$1" | grep -vE '^ +#[0-9]+ .*(fuzzer::|libc_start|_start )' | head -n 40
	else
		tail -n 40 "$1"
	fi
}

# tap OK DESCRIPTION [LOGFILE]: the plan and the result, the log if failed
tap() {
	echo "1..1"
	if [ "$1" = ok ]; then
		echo "ok 1 $2"
	else
		echo "not ok 1 $2"
		[ -n "${3:-}" ] && [ -s "$3" ] && excerpt "$3" | sed 's/^/#   /'
	fi
}

mkdir -p "$out"

if [ $mode = replay ]; then
	cc=${CC:-gcc}
	[ "$cc" = cc ] && cc=gcc	# make's default CC
	log=$out/ring_replay.log
	if ! "$cc" "${cflags[@]}" -DRING_FUZZ_REPLAY \
			-fsanitize=address,undefined -fno-sanitize-recover=all \
			-o "$out/ring_replay" "${srcs[@]}" -lpthread -lurcu-memb > "$log" 2>&1; then
		tap fail "fuzz: ring_replay builds with $cc" "$log"
		exit 1
	fi
	[ $# -gt 0 ] || set -- "$corpus"
	start=$(date +%s%N)
	# (braces: the shell's own "Illegal instruction" goes to /dev/null)
	{ "$out/ring_replay" "$@" > "$log" 2>&1; rc=$?; } 2>/dev/null
	ms=$((($(date +%s%N) - start) / 1000000))
	n=$(sed -n 's/^ring_replay: \([0-9]*\) inputs replayed.*/\1/p' "$log")
	if [ $rc -eq 0 ] && [ -n "$n" ] && [ "$n" -gt 0 ]; then
		tap ok "fuzz: ring_replay ($cc) $n inputs in $((ms / 1000)).$((ms % 1000 / 100)) s"
		exit 0
	fi
	tap fail "fuzz: ring_replay ($cc) replays the corpus (status $rc)" "$log"
	exit 1
fi

secs=${1:-}
if ! [[ $secs =~ ^[0-9]+$ ]] || [ "$secs" -eq 0 ]; then
	usage
fi

clang=${CLANG:-$(command -v clang-14 || command -v clang || echo clang-14)}
log=$out/ring_fuzz.log
if ! "$clang" "${cflags[@]}" -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=all -o "$out/ring_fuzz" "${srcs[@]}" \
		-lpthread -lurcu-memb > "$log" 2>&1; then
	tap fail "fuzz: ring_fuzz builds with $clang" "$log"
	exit 1
fi

# fuzz on a scratch copy; libFuzzer adds what it finds there
work=$out/work
rm -rf "$work" && mkdir -p "$work/corpus" && cp "$corpus"/* "$work/corpus/"
stamp=$out/.stamp
touch "$stamp"
start=$(date +%s)
# shellcheck disable=SC2086
"$out/ring_fuzz" -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
	-artifact_prefix="$out/" ${FUZZ_ARGS:-} "$work/corpus" > "$log" 2>&1
rc=$?
elapsed=$(($(date +%s) - start))
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
if [ -z "$runs" ]; then	# with -fork: the last status line
	runs=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
fi
last=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -n 1)
crash=$(find "$out" -maxdepth 1 -newer "$stamp" -type f \
	\( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \
	-o -name 'leak-*' -o -name 'slow-unit-*' \) | head -n 1)
stats() { [ -n "$last" ] && echo "# ${last#*	}" | sed 's/  */ /g'; }

if [ $rc -ne 0 ] || [ -n "$crash" ]; then
	tap fail "fuzz: ring_fuzz ${runs:-?} runs in $elapsed s (status $rc${crash:+, input kept as $crash})" "$log"
	stats
	[ -n "$crash" ] && echo "# reproduce: $out/ring_fuzz $crash (RING_FUZZ_TRACE=1: every operation)"
	exit 1
fi
tap ok "fuzz: ring_fuzz ${runs:-?} runs in $elapsed s"
stats

if [ $mode = update ]; then
	new=$out/merged
	rm -rf "$new" && mkdir -p "$new"
	cp "$corpus"/seed-* "$new/" 2>/dev/null
	# -use_counters=0: one input per new edge, not per new hit count, so
	# the corpus stays at a hundred files or so
	if ! "$out/ring_fuzz" -merge=1 -use_counters=0 "$new" "$corpus" \
			"$work/corpus" > "$out/merge.log" 2>&1; then
		echo "# merge failed, corpus unchanged:"
		tail -n 20 "$out/merge.log" | sed 's/^/#   /'
		exit 1
	fi
	before=$(find "$corpus" -type f | wc -l)
	rm -f "$corpus"/* && cp "$new"/* "$corpus/"
	echo "# corpus: $before -> $(find "$corpus" -type f | wc -l) files," \
		"$(du -sb "$corpus" | cut -f1) bytes ($corpus)"
fi
exit 0

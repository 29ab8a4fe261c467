#!/bin/bash
# SPDX-License-Identifier: MIT
#
# `make bench`: boot one VM with the module loaded, run eq-bench in it, then
# render its CSV as a chart on the host (gnuplot is not needed in the
# guest).  The guest sees the host read-only; run-vm.sh's output directory
# is its one writable directory ($ELASTICQ_RESULTS in the guest), so the
# CSV is written there and copied next to the chart.
#
# usage: run-bench.sh KVER MODULE.ko OUTDIR [eq-bench arguments...]
set -euo pipefail

[[ $# -ge 3 ]] || { echo "usage: $0 KVER MODULE.ko OUTDIR [eq-bench args]" >&2; exit 2; }
kver=$1 ko=$2 out=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
bench=$(readlink -f "${EQ_BENCH:-build/bin/eq-bench}")

rm -rf "$out"
mkdir -p "$out"
rc=0
# 25 minutes at most: the default run takes about 6 under TCG.
"$here/../../selftests/vm/run-vm.sh" -k "$kver" -o "$out/vm" -t 1500 -m "$ko" -- \
	bash -c 'exec "$0" -o "$ELASTICQ_RESULTS" "$@"' "$bench" "$@" || rc=$?
for f in bench.csv bench-runs.csv; do
	[[ -f $out/vm/$f ]] && cp "$out/vm/$f" "$out/$f"
done
if [[ -s $out/bench.csv ]]; then
	gnuplot -e "csv='$out/bench.csv'; png='$out/bench.png'" "$here/bench.gp"
	echo "eq-bench: CSV $out/bench.csv (per run: $out/bench-runs.csv), chart $out/bench.png"
else
	echo "eq-bench: no CSV (see $out/vm/output and $out/vm/console.log)" >&2
fi
# eq-bench's own status: non-zero when a run failed its verification.
exit "$rc"

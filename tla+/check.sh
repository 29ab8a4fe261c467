#!/bin/sh
# SPDX-License-Identifier: GPL-2.0 OR MIT
#
# Run TLC on every configuration in this directory and check that each
# ends as README says: the models as implemented pass, every mutant or
# negative configuration is caught by the property it is meant to break
# (the property is checked in TLC's output, not only its exit status).
#
# usage: check.sh path/to/tla2tools.jar [outdir] [workers]
#
# TLC runs in a copy of this directory under outdir (default build/tla),
# so its by-products (states/, trace specs) stay out of the tree; its
# output for <cfg> is kept in outdir/<cfg>.log.
set -u

[ $# -ge 1 ] || { echo "usage: $0 tla2tools.jar [outdir] [workers]" >&2; exit 2; }
jar=$(readlink -f "$1") || exit 2
[ -r "$jar" ] || { echo "$0: cannot read $1" >&2; exit 2; }
out=${2:-build/tla}
workers=${3:-2}
src=$(cd "$(dirname "$0")" && pwd)

# module  config  expected result:
#   pass       TLC finds no error (exit 0)
#   inv:NAME   TLC reports invariant NAME violated (exit 12)
#   prop:NAME  TLC reports a temporal property violated (exit 13); the
#              configuration must check NAME and no other property
RUNS="
ElasticMPSC ElasticMPSC             pass
ElasticMPSC ElasticMPSC_Mutant      inv:ExactlyOnce
ElasticMPSC ElasticMPSC_Cap1        inv:ExactlyOnce
ElasticMPSC ElasticMPSC_NoGrace     inv:NoTouchFreed
UringCmd    UringCmd                pass
UringCmd    UringCmd_61             pass
UringCmd    UringCmd_FreeBeforeDone inv:NoTouchFreed
UringCmd    UringCmd_DoneThenFree   inv:NoTouchDone
UringCmd    UringCmd_CloseRace      prop:CloseEnds
"

# Every configuration in the directory has an expected result above.
listed=$(echo "$RUNS" | awk 'NF { print $2 ".cfg" }' | sort)
present=$(cd "$src" && ls *.cfg | sort)
if [ "$listed" != "$present" ]; then
	echo "$0: the configurations listed here and those in $src differ:" >&2
	echo "listed:  " $listed >&2
	echo "present: " $present >&2
	exit 1
fi

mkdir -p "$out" || exit 1
out=$(cd "$out" && pwd)
work=$out/work
rm -rf "$work" && mkdir -p "$work" && cp "$src"/*.tla "$src"/*.cfg "$work"/ ||
	exit 1

fails=0
summary=$out/summary
: > "$summary"
echo "$RUNS" | awk 'NF' | {
	while read -r mod cfg expect; do
		log=$out/$cfg.log
		t0=$(date +%s)
		(cd "$work" && java -XX:+UseParallelGC -cp "$jar" tlc2.TLC \
			-workers "$workers" -cleanup -config "$cfg.cfg" "$mod.tla") \
			> "$log" 2>&1
		rc=$?
		secs=$(( $(date +%s) - t0 ))
		name=${expect#*:}
		case $expect in
		pass)
			want=0
			msg="Model checking completed. No error has been found." ;;
		inv:*)
			want=12
			msg="Error: Invariant $name is violated." ;;
		prop:*)
			want=13
			msg="Error: Temporal properties were violated." ;;
		esac
		verdict=ok
		if [ "$rc" -ne "$want" ] || ! grep -qxF "$msg" "$log"; then
			verdict=FAILED
		fi
		# A temporal violation does not name its property: the
		# configuration must check exactly the expected one.
		if [ "${expect%%:*}" = prop ]; then
			props=$(sed -n '/^PROPERTIES/,/^[A-Z]/p' "$work/$cfg.cfg" |
				awk 'NR > 1 && NF && !/^[A-Z]+$/ { print $1 }')
			[ "$props" = "$name" ] || verdict=FAILED
		fi
		[ $verdict = ok ] || fails=$((fails + 1))
		states=$(sed -n 's/^\([0-9,]*\) states generated, \([0-9,]*\) distinct.*/\1 states generated, \2 distinct/p' "$log" | tail -n 1)
		depth=$(sed -n 's/^The depth of the complete state graph search is \([0-9]*\).*/\1/p' "$log" | tail -n 1)
		line=$(printf '%-24s expect %-17s exit %-3s %-6s %s, depth %s, %ss' \
			"$cfg" "$expect" "$rc" "$verdict" "${states:-? states}" "${depth:-?}" "$secs")
		echo "make tla: $line"
		echo "$line" >> "$summary"
		[ $verdict = ok ] || echo "make tla: $cfg: see $log" >&2
	done
	exit $fails
}
fails=$?
echo "make tla: summary ($out/summary):"
sed 's/^/  /' "$summary"
if [ $fails -ne 0 ]; then
	echo "make tla: $fails configuration(s) did not end as expected"
	exit 1
fi
echo "make tla: every model passes and every mutant is caught, as expected"

#!/bin/bash
# SPDX-License-Identifier: MIT
# In a kernel with kmemleak, after the tests: scan, and fail (as a TAP test)
# if an object that elasticq allocated since the last "clear" is
# unreferenced.  check.sh clears before the tests, so what is reported was
# leaked by them.  Objects whose allocation backtrace does not pass through
# the module (the core kernel's own, rarer leaks) are listed, not failed.
k=/sys/kernel/debug/kmemleak
echo "1..1"
if [ ! -w $k ]; then
	echo "ok 1 kmemleak # SKIP no $k"
	exit 0
fi
# Two scans: an object must be seen unreferenced twice to be reported,
# and freshly freed RCU objects need a grace period to go.
echo scan > $k && sleep 6 && echo scan > $k
cat $k | awk -v out=/dev/stdout '
	function flush() {
		if (obj == "") return
		if (mine) { mineobjs = mineobjs obj; nmine++ }
		else { others = others obj; nothers++ }
		obj = ""; mine = 0
	}
	/^unreferenced object/ { flush() }
	{ obj = obj "# " $0 "\n"; if ($0 ~ /\[elasticq\]|[ \/]eq_[a-z_]+/) mine = 1 }
	END {
		flush()
		if (nothers) printf "# %d unreferenced objects outside elasticq:\n%s", nothers, others
		if (nmine) {
			printf "%s", mineobjs
			printf "not ok 1 kmemleak: %d unreferenced objects allocated by elasticq\n", nmine
			exit 1
		}
		print "ok 1 kmemleak: nothing allocated by elasticq is unreferenced"
	}'

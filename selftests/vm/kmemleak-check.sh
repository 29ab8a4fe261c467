#!/bin/bash
# SPDX-License-Identifier: MIT
# In a kernel with kmemleak, after the tests: scan, and fail (as a TAP test)
# if anything allocated since the last "clear" is unreferenced.  check.sh
# clears before the tests, so whatever is reported was leaked by them.
k=/sys/kernel/debug/kmemleak
echo "1..1"
if [ ! -w $k ]; then
	echo "ok 1 kmemleak # SKIP no $k"
	exit 0
fi
# Two scans: an object must be seen unreferenced twice to be reported,
# and freshly freed RCU objects need a grace period to go.
echo scan > $k && sleep 6 && echo scan > $k
report=$(cat $k)
if [ -n "$report" ]; then
	printf '%s\n' "$report" | sed 's/^/# /'
	echo "not ok 1 kmemleak: $(grep -c '^unreferenced object' <<< "$report") unreferenced objects"
	exit 1
fi
echo "ok 1 kmemleak: nothing unreferenced after the tests"

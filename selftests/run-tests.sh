#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Run test binaries one after another (in a VM guest or on the host) and
# frame each one's TAP output, so that tap-merge.awk can attribute every
# result and notice a binary that died part-way or never finished.
timeout=${ELASTICQ_TEST_TIMEOUT:-900}
for t in "$@"; do
	name=${t##*/}
	echo "### begin $name"
	timeout -k 10 "$timeout" "$t" </dev/null 2>&1
	echo "### end $name rc=$?"
done

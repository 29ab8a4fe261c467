#!/bin/bash
# SPDX-License-Identifier: MIT
# Print the Debian kernels the tests boot, one per line: the newest
# installed 6.1 and 6.12, generic then PREEMPT_RT flavour, each with its
# image and build tree present.  (The self-built debug kernels come from
# debug-kernel.sh.)
set -euo pipefail
for flavour in amd64 rt-amd64; do
	for series in '6\.1\.[0-9]+-[0-9]+' '6\.12\.[0-9]+\+deb[0-9.]+'; do
		for d in /lib/modules/*; do
			v=${d##*/}
			[[ $v =~ ^${series}-${flavour}$ ]] || continue
			[ -e "/boot/vmlinuz-$v" ] && [ -e "$d/build/Makefile" ] &&
				echo "$v"
		done | sort -V | tail -n 1
	done
done

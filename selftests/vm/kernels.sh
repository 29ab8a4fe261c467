#!/bin/bash
# SPDX-License-Identifier: MIT
# Print the kernels the tests boot: the newest installed Debian 6.1 and 6.12
# (generic amd64 flavour), each with its image and build tree present.
set -euo pipefail
for series in '6\.1\.[0-9]+-[0-9]+' '6\.12\.[0-9]+\+deb[0-9.]+'; do
	for d in /lib/modules/*; do
		v=${d##*/}
		[[ $v =~ ^${series}-amd64$ ]] || continue
		[ -e "/boot/vmlinuz-$v" ] && [ -e "$d/build/Makefile" ] && echo "$v"
	done | sort -V | tail -n 1
done

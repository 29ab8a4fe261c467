# SPDX-License-Identifier: MIT
#
# The chart of eq-bench's bench.csv: one panel per (message size,
# producers), a bar per transport at its median messages/s with the min-max
# range as an error bar; elasticq in blue, the other transports in grey.
#
#   gnuplot -e "csv='bench.csv'; png='bench.png'" userspace/bench/bench.gp
#
# Columns (see the CSV header): 1 transport, 2 elasticq (1/0), 3 producers,
# 4 size, 7-9 median/min/max messages/s, 16 panel, 17 place in the panel.
set datafile separator ","
set datafile columnheaders
set terminal pngcairo size 1600,1100 font ",10" noenhanced
set output png

stats csv using 16 nooutput
panels = int(STATS_max) + 1
stats csv using 17 nooutput
bars = int(STATS_max) + 1
# Each panel's title, from its first row (before the ranges below, which
# stats would apply).
array titles[panels]
do for [p = 0:panels - 1] {
	stats csv every ::(p * bars)::(p * bars) using 3 nooutput
	np = int(STATS_max)
	stats csv every ::(p * bars)::(p * bars) using 4 nooutput
	titles[p + 1] = sprintf("%d producer%s, %d-byte messages", np, \
		np > 1 ? "s" : "", int(STATS_max))
}

set style fill solid 0.8 border -1
set boxwidth 0.7
set logscale y
set grid ytics
set ylabel "messages/s (median, min-max)"
set xtics rotate by -35 left nomirror font ",9"
set xrange [-0.6:bars - 0.4]
set key off
set bmargin 7

set multiplot layout int((panels + 1) / 2), 2 \
	title "eq-bench: elasticq against mqueue, pipes and AF_UNIX (one VM boot)"
do for [p = 0:panels - 1] {
	set title titles[p + 1]
	# A panel's rows are consecutive (eq-bench writes them so), and every
	# panel has the same transports: rows p*bars .. p*bars+bars-1.
	plot csv every ::(p * bars)::(p * bars + bars - 1) \
		using 17:7:8:9:(0.7):($2 == 1 ? 0x3060c0 : 0x999999):xticlabels(1) \
		with boxerrorbars lc rgb variable
}
unset multiplot

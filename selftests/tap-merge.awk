# SPDX-License-Identifier: MIT
#
# Renumber the framed TAP of run-tests.sh into one stream.
#   -v prefix=STR  put before every test name (e.g. the kernel)
#   -v start=N     number of the last test already printed
# A binary that exits non-zero without a failing result, prints fewer
# results than its plan, or has no end marker (it hung, or the VM died)
# adds a failing result of its own.  The last line is "#COUNTS n pass fail
# skip" for the caller.
function result(ok, desc) {
	n++
	if (!ok) {
		fail++
		bfail++
	} else if (desc ~ /# *SKIP/) {
		skip++
	} else {
		pass++
	}
	printf "%s %d %s\n", ok ? "ok" : "not ok", n, desc
}
function close_block(rc) {
	if (plan > bres)
		result(0, prefix bin ": " plan - bres " of " plan " results missing")
	else if (rc != 0 && !bfail)
		result(0, prefix bin ": exited with status " rc)
	inblock = 0
}
BEGIN { n = start; pass = fail = skip = 0 }
/^### begin / { if (inblock) close_block("unfinished"); bin = $3; inblock = 1
		plan = bres = bfail = 0; next }
/^### end / { rc = $4; sub(/^rc=/, "", rc); close_block(rc + 0); next }
/^(not )?ok [0-9]+/ && inblock {
	ok = $1 == "ok"
	sub(/^(not )?ok [0-9]+ ?(- )?/, "")
	bres++
	result(ok, prefix bin ": " $0)
	next
}
/^1\.\.[0-9]+/ && inblock { plan = substr($1, 4) + 0; next }
/^TAP version/ { next }
{ print (/^#/ ? "" : "# ") $0 }
END {
	if (inblock) {
		print "# " bin " did not finish"
		close_block("unfinished")
	}
	printf "#COUNTS %d %d %d %d\n", n, pass, fail, skip
}

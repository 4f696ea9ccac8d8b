#!/bin/sh
# counted.sh: an A/B of flowd's ingest that the machine's noise does not
# move. flowd-bench's ingest run (batches of 10,000, 60 simulated minutes
# of the rush hour by default) is run once against flowd built from each
# checkout, flowd under valgrind's cachegrind: instructions and simulated
# cache misses are counted, not timed, so one pair is enough and the two
# runs may share the cores. flowd runs with GOMAXPROCS=1 (valgrind runs one
# thread at a time, and idle Ps would spin) and without RDTSCP, which this
# valgrind does not know.
#
# usage: bench/counted.sh CHECKOUT_A CHECKOUT_B [MINUTES [EVENTS_A_REQUEST]]   (from the module root)
# EVENTS_A_REQUEST "detectors" counts the second feed (bench.DetectorFeed,
# its 120 minutes; MINUTES then only shortens the city it also generates).
# prints, for each: instructions, first-level and last-level cache misses
# (a last level of 8 MiB), and B/A. Each run takes 1.5–2 minutes at 60
# minutes; the cachegrind files stay in $OUT (default /tmp/flowd-counted).
set -eu
a=$1 b=$2 minutes=${3:-60} batch=${4:-10000}
out=${OUT:-/tmp/flowd-counted}
command -v valgrind >/dev/null || { echo "counted.sh: needs valgrind (apt-get install valgrind)" >&2; exit 2; }
mkdir -p "$out"
go build -o "$out/flowd-bench" ./bench/cmd/flowd-bench
run() { # tag checkout
	rm -f "$out/$1".cg.*
	GOMAXPROCS=1 GODEBUG=cpu.rdtscp=off \
		FLOWD_BENCH_WRAP="valgrind --tool=cachegrind --cache-sim=yes --LL=8388608,16,64 --cachegrind-out-file=$out/$1.cg.%p" \
		"$out/flowd-bench" -root "$2" -only-ingest "$batch" -minutes "$minutes" -offset 8h -runs 1 -peer off >"$out/$1.log" 2>&1 ||
		{ echo "counted.sh: the run of $2 failed; see $out/$1.log" >&2; return 1; }
}
run a "$a" &
pa=$!
run b "$b"
wait $pa
summary() { grep '^summary:' "$(ls "$out/$1".cg.* | head -1)"; }
# summary: Ir I1mr ILmr Dr D1mr DLmr Dw D1mw DLmw
printf '%s\n%s\n' "$(summary a)" "$(summary b)" | awk -v a="$a" -v b="$b" '
{ ir[NR] = $2; l1[NR] = $3 + $6 + $9; ll[NR] = $4 + $7 + $10 }
END {
	printf "%-10s %14s %14s %14s\n", "", "instructions", "L1 misses", "LL misses"
	printf "%-10s %14.0f %14.0f %14.0f  %s\n", "A", ir[1], l1[1], ll[1], a
	printf "%-10s %14.0f %14.0f %14.0f  %s\n", "B", ir[2], l1[2], ll[2], b
	printf "%-10s %14.3f %14.3f %14.3f\n", "B/A", ir[2] / ir[1], l1[2] / l1[1], ll[2] / ll[1]
}'

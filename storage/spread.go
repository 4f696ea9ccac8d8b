package storage

// Readings spread over minutes. A detector reading of several minutes (an
// hourly count, a 5-minute one) counts evenly over its minutes, but the
// store keeps it as one row per hour it touches, not one per minute: the
// row of its first minute in that hour, whose sub-key is its number of
// minutes there (2 to 60), holding their sum. Ingest makes every such
// row even (a run of minutes with the same count; see ingest's addSpread),
// so that rows that add up in one bucket still spread exactly. Scans of
// the minute tier read a row back as its minutes' shares; in the hour tier
// it is the hour's share as it is. Metrics that spread are named by vocab.Spreads;
// their rows of a single minute have sub-key 0, like any other metric's.

// maxSpread is the most minutes a spread row covers: a piece never
// crosses an hour, so that the hour tier takes it whole and a scan from
// any minute finds it in the rows from that minute's hour on.
const maxSpread = 60

// SpreadShare is minute i's share (0 ≤ i < n) of v spread over n minutes:
// the quotient, plus one for each of the first remainder minutes.
func SpreadShare(v, n, i int64) int64 {
	q, r := v/n, v%n
	if i < r {
		q++
	}
	return q
}

// eachShare calls fn with each minute of [from, to) among the n minutes
// from m whose share of v is not zero, and that share (a minute spread
// nothing is no bucket, as before spread rows).
func eachShare(m, n, v, from, to int64, fn func(minute, v int64)) {
	for x := max(m, from); x < min(m+n, to); x++ {
		if s := SpreadShare(v, n, x-m); s != 0 {
			fn(x, s)
		}
	}
}

// SpreadPiece returns the length of the piece of a reading spread over the
// minutes [minute, end) that starts at minute: up to the end of its hour.
func SpreadPiece(minute, end int64) int64 {
	return min(end, TierHour.Truncate(minute)+maxSpread) - minute
}

// In a seriesTable (a batch, a WAL record, the memtable) a cell's runs of
// every length are one series, keyed by spreadSub, each point packing its
// run's length below its sum: runs of many lengths (every hourly count of
// a quiet sensor has its own) would otherwise each make a series. A flush
// writes them as rows keyed by their length.
const (
	spreadSub     = 1 << 63 // the sub-key of a cell's spread series
	spreadLenBits = 6       // maxSpread fits
	maxSpreadSum  = 1<<(63-spreadLenBits) - 1
)

// packSpread packs a run of n minutes (2 to maxSpread) and its sum v
// (0 ≤ v ≤ maxSpreadSum) into a point value.
func packSpread(n, v int64) int64 { return v<<spreadLenBits | n }

// unpackSpread splits a spread point's value into its run's length and sum.
func unpackSpread(p int64) (n, v int64) { return p & (1<<spreadLenBits - 1), p >> spreadLenBits }

// addSpread returns the packed sum of two packed points of the same
// length, saturating like SatAdd.
func addSpread(a, b int64) int64 {
	n, x := unpackSpread(a)
	_, y := unpackSpread(b)
	return packSpread(n, min(SatAdd(x, y), maxSpreadSum))
}

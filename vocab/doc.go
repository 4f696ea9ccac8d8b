// Package vocab is the vocabulary that flowd's packages share: the names of
// the metrics and how their buckets combine (sums, or the maxima of sketch
// registers), which of them describe people, the HyperLogLog sketch of
// distinct cards, ranges of H3 cell ids, and minute bucketing of time.
//
// It imports nothing of flowd, so ingest, storage, api and dashboard can all
// speak it without importing each other.
package vocab

// Package bench runs flowd end to end beside its peer, VictoriaMetrics
// single-node, on the synthetic city of package city: it builds and starts
// both servers as child processes on 127.0.0.1, feeds them the same day,
// and measures ingest rate and CPU, bytes on disk per stored value after
// merges, query latency and peak memory. cmd/flowd-bench drives it and
// writes the tables of BENCH.md.
package bench

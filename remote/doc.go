// Package remote is flowd's remote tier: it ships every finished minute
// bucket and hourly rollup to VictoriaMetrics, from a durable outbox under
// the data directory, and reads history back from it with MetricsQL.
//
// A flush tells the outbox every row it writes (storage.FlushWatch) before
// the row's part is in place; the outbox keeps them in journals. Once a
// minute is older than the lateness horizon it is finished: the cutter sums
// the journals' rows of the finished minutes (and of the hours they end)
// into final values, writes them as a segment ready to POST, and moves the
// cut on. A row that reaches a flush after its bucket was cut is late: the
// cutter reads that bucket's new total from the store and ships it again
// under the same timestamp, which VictoriaMetrics' deduplication resolves
// to the larger, newer total. The sender POSTs segments in order, with
// retries and backoff, and removes each once VictoriaMetrics took it. The
// outbox's files are described in docs/remote.md.
package remote

package storage

import (
	"io"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// durationBuckets are the upper bounds, in seconds, of the store's latency
// histograms: an fsync takes from a tenth of a millisecond (a fast SSD)
// to seconds (a failing disk), a flush or merge up to minutes.
var durationBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}

// storeMetrics are the store's figures for /metrics: the timings and
// counts of its group commits, flushes and merges, and gauges over a
// snapshot of Stats taken once a scrape. Each is updated once a group
// commit, flush or merge, never once a bucket.
type storeMetrics struct {
	set *metrics.Set

	walWrite   *metrics.PrometheusHistogram
	walGroups  *metrics.Counter
	walRecords *metrics.Counter
	walBytes   *metrics.Counter
	walErrors  *metrics.Counter
	flush      *metrics.PrometheusHistogram
	flushFails *metrics.Counter
	merge      [numTiers]*metrics.PrometheusHistogram
	mergedAway [numTiers]*metrics.Counter
	walDamaged *metrics.Counter

	stats atomic.Pointer[Stats] // the snapshot the gauges read
}

func newStoreMetrics() *storeMetrics {
	set := metrics.NewSet()
	m := &storeMetrics{
		set:        set,
		walWrite:   set.NewPrometheusHistogramExt("flowd_wal_fsync_duration_seconds", durationBuckets),
		walGroups:  set.NewCounter("flowd_wal_group_commits_total"),
		walRecords: set.NewCounter("flowd_wal_records_total"),
		walBytes:   set.NewCounter("flowd_wal_written_bytes_total"),
		walErrors:  set.NewCounter("flowd_wal_write_errors_total"),
		flush:      set.NewPrometheusHistogramExt("flowd_flush_duration_seconds", durationBuckets),
		flushFails: set.NewCounter("flowd_flush_errors_total"),
		walDamaged: set.NewCounter("flowd_wal_damaged_records_total"),
	}
	m.stats.Store(&Stats{})
	for t := range numTiers {
		tier := `{tier="` + t.String() + `"}`
		m.merge[t] = set.NewPrometheusHistogramExt("flowd_merge_duration_seconds"+tier, durationBuckets)
		m.mergedAway[t] = set.NewCounter("flowd_merged_parts_total" + tier)
		m.gauge("flowd_parts"+tier, func(st *Stats) float64 { return float64(st.Parts[t]) })
		m.gauge("flowd_part_rows"+tier, func(st *Stats) float64 { return float64(st.PartRows[t]) })
		m.gauge("flowd_part_bytes"+tier, func(st *Stats) float64 { return float64(st.PartBytes[t]) })
		m.gauge("flowd_memtable_rows"+tier, func(st *Stats) float64 { return float64(st.MemtableRows[t]) })
	}
	m.gauge("flowd_pending_flushes", func(st *Stats) float64 { return float64(st.PendingFlush) })
	m.gauge("flowd_quarantined_parts", func(st *Stats) float64 { return float64(st.Quarantined) })
	m.gauge("flowd_parts_missing", func(st *Stats) float64 { return float64(st.PartsMissing) })
	m.gauge("flowd_wal_damaged_segments", func(st *Stats) float64 { return float64(st.WALDamagedSegments) })
	m.gauge("flowd_block_cache_bytes", func(st *Stats) float64 { return float64(st.BlockCache) })
	m.gauge("flowd_metrics", func(st *Stats) float64 { return float64(st.Metrics) })
	set.NewGauge("flowd_memtable_pool_bytes", func() float64 { return float64(PoolBytes()) })
	return m
}

func (m *storeMetrics) gauge(name string, f func(*Stats) float64) {
	m.set.NewGauge(name, func() float64 { return f(m.stats.Load()) })
}

// walWritten records a group commit of records totalling size bytes that
// started at start.
func (m *storeMetrics) walWritten(records [][]byte, start time.Time, err error) {
	if err != nil {
		m.walErrors.Inc()
		return
	}
	m.walWrite.UpdateDuration(start)
	m.walGroups.Inc()
	m.walRecords.Add(len(records))
	size := 0
	for _, r := range records {
		size += len(r)
	}
	m.walBytes.Add(size)
}

// flushed records a flush that started at start.
func (m *storeMetrics) flushed(start time.Time, err error) {
	if err != nil {
		m.flushFails.Inc()
		return
	}
	m.flush.UpdateDuration(start)
}

// merged records a merge of n parts of tier t that started at start.
func (m *storeMetrics) merged(t Tier, n int, start time.Time, err error) {
	if err == nil {
		m.merge[t].UpdateDuration(start)
		m.mergedAway[t].Add(n)
	}
}

// WriteMetrics writes the store's figures in the Prometheus text format.
func (s *Store) WriteMetrics(w io.Writer) {
	st := s.Stats()
	s.metrics.stats.Store(&st)
	s.metrics.walDamaged.Set(uint64(st.WALDamagedRecords))
	s.metrics.set.WritePrometheus(w)
}

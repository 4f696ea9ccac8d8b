package api

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

func init() {
	// promtool and Prometheus read a family's TYPE line; the library
	// writes one only when asked.
	metrics.ExposeMetadata(true)
}

// latencyBuckets are the upper bounds, in seconds, of the request and
// query latency histograms: an ingest answers after an fsync (a
// millisecond or more), a query from under a millisecond to seconds.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// serverMetrics are the API's own figures for /metrics: each route's
// requests by status class and latency, the queries' compute time, and the
// privacy budgets run out. A request costs one map lookup, one histogram
// update and one counter increment.
type serverMetrics struct {
	set       *metrics.Set
	routes    map[*Route]*routeMetrics
	unrouted  *routeMetrics
	queries   map[string]*metrics.PrometheusHistogram // by path
	exhausted *metrics.Counter

	// The connections' figures, set from Conns.Stats once a scrape.
	conns                                   atomic.Pointer[ConnStats]
	accepted, evicted, refused, acceptError *metrics.Counter
}

// routeMetrics are one route's figures.
type routeMetrics struct {
	labels  string // method="GET",route="/api/v1/series"
	latency *metrics.PrometheusHistogram
	// byClass counts answers by status class (1xx to 5xx), made on first
	// use so that a route's unused classes print nothing.
	byClass [6]atomic.Pointer[metrics.Counter]
}

// newServerMetrics makes the figures of every route of the table; the
// routes are keyed by their address in routes, as the router keeps them.
func newServerMetrics(routes []Route) *serverMetrics {
	m := &serverMetrics{
		set:     metrics.NewSet(),
		routes:  make(map[*Route]*routeMetrics, len(routes)),
		queries: map[string]*metrics.PrometheusHistogram{},
	}
	for i := range routes {
		rt := &routes[i]
		m.routes[rt] = m.newRoute(`method="` + rt.Method + `",route="` + rt.Path + `"`)
		if rt.Limit == LimitQuery && m.queries[rt.Path] == nil {
			m.queries[rt.Path] = m.set.NewPrometheusHistogramExt(`flowd_query_duration_seconds{route="`+rt.Path+`"}`, latencyBuckets)
		}
	}
	// A request no route takes is counted without its method and path,
	// which the caller chooses.
	m.unrouted = m.newRoute(`method="",route="unrouted"`)
	m.exhausted = m.set.NewCounter("flowd_privacy_budget_exhausted_total")
	m.set.NewGauge("flowd_uptime_seconds", func() float64 { return time.Since(startTime).Seconds() })
	m.conns.Store(&ConnStats{})
	m.set.NewGauge("flowd_connections", func() float64 { return float64(m.conns.Load().Open) })
	m.set.NewGauge("flowd_connections_anonymous", func() float64 { return float64(m.conns.Load().Anonymous) })
	m.accepted = m.set.NewCounter("flowd_connections_accepted_total")
	m.evicted = m.set.NewCounter("flowd_connections_evicted_total")
	m.refused = m.set.NewCounter("flowd_connections_refused_total")
	m.acceptError = m.set.NewCounter("flowd_accept_errors_total")
	return m
}

// setConns takes the connections' figures for the scrape under way.
func (m *serverMetrics) setConns(cs ConnStats) {
	m.conns.Store(&cs)
	m.accepted.Set(uint64(cs.Accepted))
	m.evicted.Set(uint64(cs.Evicted))
	m.refused.Set(uint64(cs.Refused))
	m.acceptError.Set(uint64(cs.AcceptError))
}

func (m *serverMetrics) newRoute(labels string) *routeMetrics {
	return &routeMetrics{labels: labels, latency: m.set.NewPrometheusHistogramExt("flowd_http_request_duration_seconds{"+labels+"}", latencyBuckets)}
}

// request records an answered request of rt that started at start.
func (m *serverMetrics) request(rt *Route, status int, start time.Time) {
	rm := m.routes[rt]
	if rm == nil {
		rm = m.unrouted
	}
	rm.latency.UpdateDuration(start)
	class := min(max(status/100, 0), len(rm.byClass)-1)
	c := rm.byClass[class].Load()
	if c == nil {
		c = m.set.GetOrCreateCounter(`flowd_http_requests_total{` + rm.labels + `,code="` + strconv.Itoa(class) + `xx"}`)
		rm.byClass[class].Store(c)
	}
	c.Inc()
}

// query records the time a query of the route at path took to parse,
// compute and release, after it had its query slot.
func (m *serverMetrics) query(path []byte, start time.Time) {
	if h := m.queries[string(path)]; h != nil {
		h.UpdateDuration(start)
	}
}

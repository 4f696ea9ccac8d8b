package ingest

import (
	"io"

	"github.com/VictoriaMetrics/metrics"
)

// Why the bucketer refused a valid line, by the field its LineError names.
const (
	refusedTooOld = iota
	refusedUnknownStation
	refusedUnknownSensor
	refusedUnknownSite
	refusedClass
	refusedLocation
	refusedOther
	numRefusals
)

// refusalNames are the reason labels of refused lines in /metrics.
var refusalNames = [numRefusals]string{"too_old", "unknown_station", "unknown_sensor", "unknown_site", "class", "location", "other"}

// refusalOf returns why the bucketer refused a line, from the field it
// named: the time past the retention, an id the registry lacks, a class
// that names no metric (or one past -max-metrics), a coordinate H3 cannot
// place.
func refusalOf(field string) int {
	switch field {
	case "time":
		return refusedTooOld
	case "station":
		return refusedUnknownStation
	case "sensor":
		return refusedUnknownSensor
	case "site":
		return refusedUnknownSite
	case "class":
		return refusedClass
	case "lat", "lng":
		return refusedLocation
	}
	return refusedOther
}

// handlerMetrics are ingest's figures for /metrics, by source (the
// endpoint: swipes, counts, footfall, or influx for line protocol). They
// are added once a request, never once an event.
type handlerMetrics struct {
	set     *metrics.Set
	sources map[string]*sourceMetrics
	// legs and trips count the destinations inferred for tap-in-only
	// lines.
	legs, trips *metrics.Counter
}

// sourceMetrics are one source's figures.
type sourceMetrics struct {
	name   string
	set    *metrics.Set
	events *metrics.Counter
	hourly *metrics.Counter
}

// Sources of ingest, as the source label of ingest's metrics names them.
const (
	sourceSwipes   = "swipes"
	sourceCounts   = "counts"
	sourceFootfall = "footfall"
	sourceInflux   = "influx"
)

func newHandlerMetrics() *handlerMetrics {
	m := &handlerMetrics{set: metrics.NewSet(), sources: map[string]*sourceMetrics{}}
	m.legs = m.set.NewCounter("flowd_trip_legs_inferred_total")
	m.trips = m.set.NewCounter("flowd_trips_inferred_total")
	for _, name := range []string{sourceSwipes, sourceCounts, sourceFootfall, sourceInflux} {
		label := `{source="` + name + `"}`
		m.sources[name] = &sourceMetrics{
			name: name, set: m.set,
			events: m.set.NewCounter("flowd_ingest_events_total" + label),
			hourly: m.set.NewCounter("flowd_ingest_hourly_only_events_total" + label),
		}
	}
	return m
}

// source returns the figures of the named source.
func (m *handlerMetrics) source(name string) *sourceMetrics {
	sm := m.sources[name]
	if sm == nil {
		panic("BUG: ingest source " + name + " has no metrics")
	}
	return sm
}

// rejected adds n lines rejected for reason; the counter of a reason is
// made the first time it is needed, so that /metrics lists only the
// reasons that happened.
func (sm *sourceMetrics) rejected(reason string, n int) {
	if n > 0 {
		sm.set.GetOrCreateCounter(`flowd_ingest_rejected_lines_total{source="` + sm.name + `",reason="` + reason + `"}`).Add(n)
	}
}

// refused counts a request refused whole for reason.
func (sm *sourceMetrics) refused(reason string) {
	sm.set.GetOrCreateCounter(`flowd_ingest_requests_refused_total{source="` + sm.name + `",reason="` + reason + `"}`).Inc()
}

// batch adds what one request kept and rejected.
func (sm *sourceMetrics) batch(bt *Batch, decodeErrs []LineError) {
	sm.events.Add(bt.Accepted())
	sm.hourly.Add(bt.HourlyOnly())
	invalid := 0
	for i := range decodeErrs {
		invalid += decodeErrs[i].Lines()
	}
	sm.rejected("invalid", invalid)
	for r, n := range bt.refusals {
		sm.rejected(refusalNames[r], n)
	}
}

// WriteMetrics writes ingest's figures in the Prometheus text format.
func (h *Handler) WriteMetrics(w io.Writer) { h.metrics.set.WritePrometheus(w) }

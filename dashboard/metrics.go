package dashboard

import (
	"fmt"
	"io"
	"strings"

	"github.com/VictoriaMetrics/metrics"
)

// WriteMetrics writes the live view's figures in the Prometheus text
// format: the live clients and what was sent to them, skipped or dropped,
// and each site's level, occupancy and ratio to its capacity.
func (d *Dashboard) WriteMetrics(w io.Writer) {
	st := d.Hub.Stats()
	metrics.WriteGaugeUint64(w, "flowd_live_clients", uint64(st.Clients))
	metrics.WriteGaugeUint64(w, "flowd_live_clients_deflate", uint64(st.Deflate))
	metrics.WriteGaugeUint64(w, "flowd_live_subscriptions", uint64(st.Shapes))
	metrics.WriteCounterUint64(w, "flowd_live_frames_sent_total", uint64(st.Frames))
	metrics.WriteCounterUint64(w, "flowd_live_sent_bytes_total", uint64(st.Bytes))
	metrics.WriteCounterUint64(w, "flowd_live_frames_skipped_total", uint64(st.Skipped))
	metrics.WriteCounterUint64(w, "flowd_live_clients_dropped_total", uint64(st.Dropped))
	metrics.WriteCounterUint64(w, "flowd_live_clients_refused_total", uint64(st.Refused))
	metrics.WriteCounterUint64(w, "flowd_live_ingest_yields_total", uint64(st.Yields))
	metrics.WriteCounterUint64(w, "flowd_live_deltas_lost_total", uint64(st.LostDeltas))
	sites := d.Sites.All()
	perSite := func(name string, v func(*SiteStatus) float64) {
		if len(sites) == 0 {
			return
		}
		metrics.WriteMetadataIfNeeded(w, name, "gauge")
		for i := range sites {
			fmt.Fprintf(w, "%s{site=\"%s\"} %g\n", name, labelValue(sites[i].ID), v(&sites[i]))
		}
	}
	perSite("flowd_site_level", func(s *SiteStatus) float64 { return float64(s.Level) })
	perSite("flowd_site_occupancy", func(s *SiteStatus) float64 { return float64(s.Occupancy) })
	perSite("flowd_site_occupancy_ratio", func(s *SiteStatus) float64 { return s.Ratio })
}

// labelValue escapes a Prometheus label value: backslash, double quote
// and newline.
func labelValue(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

package main

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/flowd/flowd/bench"
)

type report struct {
	cfg        config
	machine    string
	started    time.Time
	took       time.Duration
	day        *bench.Day
	ingest     []ingestConfig
	peerIngest *ingestConfig
	peerAggr   *ingestConfig
	det        *bench.DetectorFeed
	detImport  *ingestConfig // the peer's, of the detector feed
	detAggr    *ingestConfig
	flowdSize  bench.StoreSize
	peerSize   bench.StoreSize
	area       bench.Area
	queries    []querySpec
	explicit   string
	corridor   *bench.Corridor
	live       []bench.LiveResult
	// liveBaselines are the runs without clients, by ingest rate; live[0]
	// is their median.
	liveBaselines []bench.LiveResult
}

func medianOf(rs []bench.SendResult, f func(bench.SendResult) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	sort.Float64s(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// roundRatio compares flowd's events per CPU-second with the peer's
// round by round: the runs of one round are minutes apart, side by side,
// so the machine's drift over a run (this shared machine moves by a third
// between hours) cancels in each round's ratio, where the median of each
// side taken apart can pair one side's fast round with the other's slow
// one. It returns the median of the rounds' ratios and the column's text:
// that median and the rounds' ratios. Results of unequal rounds fall back
// to the ratio of the medians.
func roundRatio(flowd, peer []bench.SendResult) (float64, string) {
	if len(flowd) != len(peer) || len(flowd) == 0 {
		a, b := medianOf(flowd, bench.SendResult.PerCPU), medianOf(peer, bench.SendResult.PerCPU)
		if b == 0 {
			return 0, "–"
		}
		return a / b, ratio(a, b)
	}
	rs := make([]float64, len(flowd))
	by := make([]string, len(flowd))
	for i := range flowd {
		if p := peer[i].PerCPU(); p > 0 {
			rs[i] = flowd[i].PerCPU() / p
		}
		by[i] = fmt.Sprintf("%.2f", rs[i])
	}
	sorted := slices.Clone(rs)
	sort.Float64s(sorted)
	m := sorted[len(sorted)/2]
	if len(sorted)%2 == 0 {
		m = (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2
	}
	if len(rs) == 1 {
		return m, fmt.Sprintf("%.2f×", m)
	}
	return m, fmt.Sprintf("%.2f× (by round %s)", m, strings.Join(by, ", "))
}

func millions(v float64) string { return fmt.Sprintf("%.2f M", v/1e6) }

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// verdict is the plain word beside a goal.
func verdict(met bool) string {
	if met {
		return "**met**"
	}
	return "**behind**"
}

func (r *report) write(w io.Writer) {
	c, d := r.cfg, r.day
	fmt.Fprintf(w, "Run of %s, %v in all. Machine: %s.\n\n", r.started.UTC().Format("2006-01-02 15:04 MST"), r.took.Round(time.Second), r.machine)
	fmt.Fprintf(w, "Data: the synthetic city (seed 1, scale %g, %d cameras, %d stations, %d sites), %d simulated minutes from %s: "+
		"%d events (%d swipes, %d detector counts, %d footfall readings) making %d minute buckets in %d (metric, cell) series. "+
		"Medians of %d runs, made in rounds of one run of every configuration (flowd's and the peer's side by side); each ingest run starts a fresh server; %d concurrent senders.\n\n",
		c.scale, len(d.City.Sensors), len(d.City.Stations), len(d.City.Sites), d.Minutes, d.Start.Format(time.RFC3339),
		d.Events(), d.EventsByKind[0], d.EventsByKind[1], d.EventsByKind[2], len(d.Samples), len(d.Series), c.runs, c.senders)
	r.writeIngest(w)
	r.writeStore(w)
	r.writeQueries(w)
	r.writeMemory(w)
	r.writeLive(w)
}

// ingestRow writes one server's ingest configuration as a table row.
func ingestRow(w io.Writer, server, input, batch string, ic *ingestConfig) {
	fmt.Fprintf(w, "| %s | %s | %s | %s | %.2f | %s | %.2f | %d MB |\n", server, input, batch,
		millions(medianOf(ic.results, bench.SendResult.Rate)), medianOf(ic.results, func(s bench.SendResult) float64 { return s.ServerCPU.Seconds() }),
		millions(medianOf(ic.results, bench.SendResult.PerCPU)),
		medianOf(ic.results, func(s bench.SendResult) float64 { return s.ClientCPU.Seconds() }),
		int64(peakRSS(ic))>>20)
}

func peakRSS(ic *ingestConfig) float64 {
	return medianOf(ic.results, func(s bench.SendResult) float64 { return float64(s.PeakRSS) })
}

// writeIngest writes the ingest rates and the goals on them.
func (r *report) writeIngest(w io.Writer) {
	fmt.Fprintf(w, "#### Ingest\n\n")
	fmt.Fprintf(w, "| server | input | per request | events/s | server CPU-s | events per CPU-s | client CPU-s | peak RSS |\n|---|---|---:|---:|---:|---:|---:|---:|\n")
	var mainRate, mainPerCPU, smallPerCPU float64
	var main *ingestConfig
	for i := range r.ingest {
		ic := &r.ingest[i]
		if ic.main {
			mainRate, mainPerCPU = medianOf(ic.results, bench.SendResult.Rate), medianOf(ic.results, bench.SendResult.PerCPU)
			main = ic
		}
		if ic.batch == 1000 && ic.name == r.mainName() {
			smallPerCPU = medianOf(ic.results, bench.SendResult.PerCPU)
		}
		ingestRow(w, "flowd", fmt.Sprintf("%s (%d events, durable acks)", ic.name, ic.results[0].Events), fmt.Sprint(ic.batch), ic)
	}
	var peerPerCPU, aggrPerCPU float64
	if pi := r.peerIngest; pi != nil {
		peerPerCPU = medianOf(pi.results, bench.SendResult.PerCPU)
		ingestRow(w, "VictoriaMetrics", fmt.Sprintf("%s (%d samples, acked before fsync)", pi.name, pi.results[0].Events), fmt.Sprint(pi.batch), pi)
	}
	if pa := r.peerAggr; pa != nil {
		aggrPerCPU = medianOf(pa.results, bench.SendResult.PerCPU)
		ingestRow(w, "VictoriaMetrics", fmt.Sprintf("%s (%d events as raw samples, acked before fsync)", pa.name, pa.results[0].Events), fmt.Sprintf("%d lines", pa.batch), pa)
	}
	if pi := r.detImport; pi != nil {
		ingestRow(w, "VictoriaMetrics", fmt.Sprintf("%s (%d samples, acked before fsync)", pi.name, pi.results[0].Events), fmt.Sprint(pi.batch), pi)
	}
	if pa := r.detAggr; pa != nil {
		ingestRow(w, "VictoriaMetrics", fmt.Sprintf("%s (%d events as raw samples, acked before fsync)", pa.name, pa.results[0].Events), fmt.Sprintf("%d lines", pa.batch), pa)
	}
	fmt.Fprintf(w, "\n| goal (issues 6, 10) | flowd | peer | ratio flowd/peer | verdict |\n|---|---:|---:|---:|---|\n")
	fmt.Fprintf(w, "| ≥ 2.5 M registry-located events/s | %s/s | – | – | %s |\n", millions(mainRate), verdict(mainRate >= 2.5e6))
	fmt.Fprintf(w, "| ≥ 2.0 M events per server CPU-s, batches of 10,000 | %s | – | – | %s |\n", millions(mainPerCPU), verdict(mainPerCPU >= 2e6))
	fmt.Fprintf(w, "| ≥ 1.0 M events per server CPU-s, batches of 1,000 | %s | – | – | %s |\n", millions(smallPerCPU), verdict(smallPerCPU >= 1e6))
	if r.peerAggr != nil && main != nil {
		x, text := roundRatio(main.results, r.peerAggr.results)
		fmt.Fprintf(w, "| ≥ 3× the peer's events per CPU-s, the peer summing by stream aggregation (by arrival, see Peer input) | %s | %s | %s | %s |\n",
			millions(mainPerCPU), millions(aggrPerCPU), text, verdict(x >= 3))
	}
	if r.peerIngest != nil && main != nil {
		x, text := roundRatio(main.results, r.peerIngest.results)
		fmt.Fprintf(w, "| ≥ 0.75× the peer's import of ready minute buckets, per CPU-s | %s | %s | %s | %s |\n",
			millions(mainPerCPU), millions(peerPerCPU), text, verdict(x >= 0.75))
	}
	if r.peerAggr != nil || r.peerIngest != nil {
		fmt.Fprintf(w, "\nThe ratios against the peer are the median of the rounds' ratios, each round's flowd run over the peer's run of the same round, minutes apart (the columns beside them are medians of each server's runs taken apart).\n")
	}
	r.writeDetectorGoals(w)
}

// writeDetectorGoals writes issue 10's goals measured on the detector feed,
// the second workload: the same goals as the city's, on another feed.
func (r *report) writeDetectorGoals(w io.Writer) {
	var det *ingestConfig
	for i := range r.ingest {
		if r.ingest[i].detectors {
			det = &r.ingest[i]
		}
	}
	if det == nil {
		return
	}
	f := r.det
	perCPU := medianOf(det.results, bench.SendResult.PerCPU)
	fmt.Fprintf(w, "\nThe detector feed (issue 10's second workload; `bench.DetectorFeed`): %d detectors over about 90 × 95 km, each on a base cell of its own, "+
		"each reporting a count of cars and their mean speed every minute, %d minutes from %s: %d events making %d minute buckets in %d series. "+
		"No line names the sensor of the line before it. The peer's series carry the cell label alone. "+
		"Medians of %d runs, in as many rounds (`-detector-runs`: its runs take seconds, and its ratios move most from round to round).\n\n",
		f.Detectors, f.Minutes, f.Start.Format(time.RFC3339), f.Events, len(f.Samples), len(f.Series), len(det.results))
	fmt.Fprintf(w, "| goal (issue 10), the detector feed | flowd | peer | ratio flowd/peer | verdict |\n|---|---:|---:|---:|---|\n")
	fmt.Fprintf(w, "| ≥ 2.0 M events per server CPU-s, batches of 10,000 | %s | – | – | %s |\n", millions(perCPU), verdict(perCPU >= 2e6))
	if pa := r.detAggr; pa != nil {
		aggr := medianOf(pa.results, bench.SendResult.PerCPU)
		x, text := roundRatio(det.results, pa.results)
		fmt.Fprintf(w, "| ≥ 3× the peer's events per CPU-s, the peer summing by stream aggregation (by arrival, see Peer input) | %s | %s | %s | %s |\n",
			millions(perCPU), millions(aggr), text, verdict(x >= 3))
	}
	if pi := r.detImport; pi != nil {
		imp := medianOf(pi.results, bench.SendResult.PerCPU)
		x, text := roundRatio(det.results, pi.results)
		fmt.Fprintf(w, "| ≥ 0.75× the peer's import of ready minute buckets, per CPU-s | %s | %s | %s | %s |\n",
			millions(perCPU), millions(imp), text, verdict(x >= 0.75))
		nv := float64(len(f.Samples)) / 1e6
		fr, pr := peakRSS(det), peakRSS(pi)
		fmt.Fprintf(w, "| peak RSS ≤ 0.5× the peer's per million cell-minutes | %.1f MB | %.1f MB | %s | %s |\n",
			fr/(1<<20)/nv, pr/(1<<20)/nv, ratio(fr, pr), verdict(fr <= 0.5*pr))
	}
}

// mainName is the input of the main ingest configuration.
func (r *report) mainName() string {
	for _, ic := range r.ingest {
		if ic.main {
			return ic.name
		}
	}
	return ""
}

// writeStore writes the bytes on disk per stored value.
func (r *report) writeStore(w io.Writer) {
	d := r.day
	fmt.Fprintf(w, "\n#### Store: bytes on disk per stored value after merges\n\n")
	nv := float64(len(d.Samples))
	fs := r.flowdSize
	fmt.Fprintf(w, "| server | what | values | bytes on disk (du) | apparent bytes | parts | bytes per value |\n|---|---|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(w, "| flowd | minute tier parts | %d | %d | – | %d | %.3f |\n", len(d.Samples), fs.MinuteDisk, fs.Parts[0], float64(fs.MinuteDisk)/nv)
	fmt.Fprintf(w, "| flowd | whole store dir (minute, hour and day tiers) | %d | %d | %d | %d | %.3f |\n", len(d.Samples), fs.Disk, fs.Apparent, fs.Parts[0]+fs.Parts[1]+fs.Parts[2], float64(fs.Disk)/nv)
	if r.peerIngest == nil {
		return
	}
	fmt.Fprintf(w, "| VictoriaMetrics | whole -storageDataPath | %d | %d | %d | – | %.3f |\n", len(d.Samples), r.peerSize.Disk, r.peerSize.Apparent, float64(r.peerSize.Disk)/nv)
	fmt.Fprintf(w, "\n| goal (issue 3) | flowd | peer | ratio | verdict |\n|---|---:|---:|---:|---|\n")
	fmt.Fprintf(w, "| ≤ 0.8× the peer's bytes per value (minute tier) | %.3f | %.3f | %s | %s |\n",
		float64(fs.MinuteDisk)/nv, float64(r.peerSize.Disk)/nv, ratio(float64(fs.MinuteDisk), float64(r.peerSize.Disk)), verdict(float64(fs.MinuteDisk) <= 0.8*float64(r.peerSize.Disk)))
	fmt.Fprintf(w, "| ≤ 0.8× the peer's bytes per value (whole store) | %.3f | %.3f | %s | %s |\n",
		float64(fs.Disk)/nv, float64(r.peerSize.Disk)/nv, ratio(float64(fs.Disk), float64(r.peerSize.Disk)), verdict(float64(fs.Disk) <= 0.8*float64(r.peerSize.Disk)))
}

// writeQueries writes the query latencies and the goals on them.
func (r *report) writeQueries(w io.Writer) {
	fmt.Fprintf(w, "\n#### Queries\n\n")
	fmt.Fprintf(w, "The area is every base (res-9) cell holding `%s`: %d cells, named in the query by their %d res-%d parents "+
		"(flowd: `cells=` of the parents, scanned as child id ranges; peer: a `cell%d=~\"…\"` label match). "+
		"Cold is the first query after the server starts on the settled data (page cache warm), the median of %d such starts; second is the query after it, which fills flowd's block cache (a block is kept from its second read); warm is the median of %d more (the second among them). "+
		"Every answer's total was checked against the generated day.\n\n",
		r.area.Metric, len(r.area.Cells), len(r.area.Cover), r.area.Res, r.area.Res, max(r.cfg.colds, 1), r.cfg.queries)
	fmt.Fprintf(w, "| query | answer | flowd cold | flowd second | flowd warm p50 | peer cold | peer warm p50 | ratio warm flowd/peer |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, q := range r.queries {
		pc, pw, rt := peerColumns(q.flowdRes, q.peerRes)
		second := "–"
		if len(q.flowdRes.warm) > 0 {
			second = ms(q.flowdRes.warm[0])
		}
		fmt.Fprintf(w, "| %s | %d items, %d KB | %s | %s | %s | %s | %s | %s |\n", q.name, q.flowdRes.items, q.flowdRes.bytes>>10,
			ms(q.flowdRes.cold.Took), second, ms(bench.Median(q.flowdRes.warm)), pc, pw, rt)
	}
	if len(r.queries) > 0 {
		q := r.queries[0]
		fmt.Fprintf(w, "\n| goal (issue 3/6) | flowd | peer | ratio | verdict |\n|---|---:|---:|---:|---|\n")
		fw := bench.Median(q.flowdRes.warm)
		if q.peerRes.ok {
			pw := bench.Median(q.peerRes.warm)
			fmt.Fprintf(w, "| series warm p50 ≤ 0.25× the peer's | %s | %s | %s | %s |\n", ms(fw), ms(pw), ratio(float64(fw), float64(pw)), verdict(float64(fw) <= 0.25*float64(pw)))
		}
		first := ms(q.flowdRes.cold.Took)
		if len(q.flowdRes.colds) > 1 {
			each := make([]string, len(q.flowdRes.colds))
			for i, d := range q.flowdRes.colds {
				each[i] = ms(d)
			}
			first += " (of " + strings.Join(each, ", ") + ")"
		}
		fmt.Fprintf(w, "| series first query < 30 ms, median of fresh starts | %s | – | – | %s |\n", first, verdict(q.flowdRes.cold.Took < 30*time.Millisecond))
	}
	if cr := r.corridor; cr != nil && len(cr.Cells) > 0 {
		fmt.Fprintf(w, "\nThe corridor runs %v (lat, lng) through %d res-9 cells in %d segments; flowd answers `POST /api/v1/corridor` with the load of each segment per minute, "+
			"the peer `sum by (cell) (sum_over_time(%s{cell=~\"…\"}[1m]))` at `step=60s` (POSTed), its per-cell series summed into the same segments by the bench (included in its time).\n",
			cr.Path, len(cr.Cells), len(cr.Segments), cr.Metric)
	}
	fmt.Fprintf(w, "\nThe same series query with all %d base cells listed in `cells=` (a %d-byte URL): %s\n", len(r.area.Cells), 16*len(r.area.Cells), r.explicit)
}

// writeMemory writes each server's peak memory per million cell-minutes.
func (r *report) writeMemory(w io.Writer) {
	d := r.day
	nv := float64(len(d.Samples))
	fmt.Fprintf(w, "\n#### Memory\n\n")
	fmt.Fprintf(w, "Peak RSS (VmHWM) of the server over its ingest run, per million cell-minutes (minute buckets) it took in.\n\n")
	fmt.Fprintf(w, "| server | run | cell-minutes | peak RSS | MB per million cell-minutes |\n|---|---|---:|---:|---:|\n")
	for i := range r.ingest {
		ic := &r.ingest[i]
		if !ic.main {
			continue
		}
		rss := peakRSS(ic)
		fmt.Fprintf(w, "| flowd | %s, batch %d | %d | %d MB | %.1f |\n", ic.name, ic.batch, len(d.Samples), int64(rss)>>20, rss/(1<<20)/(nv/1e6))
	}
	var flowdRSS float64
	for i := range r.ingest {
		if r.ingest[i].main {
			flowdRSS = peakRSS(&r.ingest[i])
		}
	}
	if pi := r.peerIngest; pi != nil {
		rss := peakRSS(pi)
		fmt.Fprintf(w, "| VictoriaMetrics | %s | %d | %d MB | %.1f |\n", pi.name, len(d.Samples), int64(rss)>>20, rss/(1<<20)/(nv/1e6))
		fmt.Fprintf(w, "\n| goal (issue 10) | flowd | peer | ratio | verdict |\n|---|---:|---:|---:|---|\n")
		fmt.Fprintf(w, "| peak RSS ≤ 0.5× the peer's per million cell-minutes | %.1f MB | %.1f MB | %s | %s |\n",
			flowdRSS/(1<<20)/(nv/1e6), rss/(1<<20)/(nv/1e6), ratio(flowdRSS, rss), verdict(flowdRSS <= 0.5*rss))
	}
	fmt.Fprintln(w)
}

package main

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowd/flowd/bench"
	"github.com/flowd/flowd/demo/city"
)

// ingestConfig is one ingest configuration and its runs' results.
type ingestConfig struct {
	name  string
	batch int
	reqs  []bench.Request
	main  bool
	// detectors marks a configuration of the detector feed (see
	// bench.DetectorFeed) rather than the city.
	detectors bool
	results   []bench.SendResult
}

// ingestJob is an ingest configuration and the server its runs go to.
type ingestJob struct {
	ic      *ingestConfig
	dirName string
	start   func(dir string) (*bench.Proc, error)
	// keep, when not nil, receives the server of the configuration's
	// last run, left running (the store the queries read).
	keep **bench.Proc
}

// ingest sends the day to flowd in each configuration and, unless
// ingest alone was asked for, to the peer: -runs rounds, each making one
// run of every configuration, so that the machine's slower and faster
// spells fall on flowd and the peer alike and the ratios between them
// are read from runs made side by side. Until 3 Dec 2026, 09:00 UTC,
// flowd's runs all came first and the peer's after them.
func (b *benchRun) ingest() error {
	jobs, err := b.flowdJobs()
	if err != nil {
		return err
	}
	peer, err := b.peerJobs()
	if err != nil {
		return err
	}
	jobs = append(jobs, peer...)
	for run := range b.c.rounds() {
		for _, j := range jobs {
			if run >= b.c.runsOf(j.ic) {
				continue
			}
			p, err := b.once(j.ic, j.dirName, run, j.start, j.keep != nil && run == b.c.runsOf(j.ic)-1)
			if err != nil {
				return err
			}
			if p != nil {
				*j.keep = p
			}
		}
	}
	return nil
}

// runsOf is how many runs configuration ic makes: -runs, or for the
// detector feed's -detector-runs when that is more. The detector feed's
// runs take seconds, and its round ratios against the peer moved from
// 2.23 to 3.12 within one full run (4 Dec 2026), so it gets more rounds
// than the city for a steadier median at little cost.
func (c *config) runsOf(ic *ingestConfig) int {
	if ic.detectors {
		return max(c.runs, c.detRuns)
	}
	return c.runs
}

// rounds is how many rounds ingest makes: enough for every configuration.
func (c *config) rounds() int { return max(c.runs, c.detRuns) }

// flowdJobs returns flowd's ingest configurations, the main one keeping
// its last server for the queries.
func (b *benchRun) flowdJobs() ([]ingestJob, error) {
	day := b.day
	paths := make([]string, len(city.Kinds))
	blocks := make([][]bench.Block, len(city.Kinds))
	for i, k := range city.Kinds {
		paths[i], blocks[i] = k.Path(), day.Blocks[i]
	}
	swipePath := []string{city.KindSwipe.Path()}
	configs := []ingestConfig{
		{name: "all kinds, registry ids", batch: 1000, reqs: bench.FlowdRequests(blocks, paths, 1000)},
		{name: "swipes, station ids", batch: 5000, reqs: bench.FlowdRequests([][]bench.Block{day.Blocks[0]}, swipePath, 5000)},
		{name: "swipes, raw lat/lng", batch: 5000, reqs: bench.FlowdRequests([][]bench.Block{day.RawSwipes}, swipePath, 5000)},
		{name: "all kinds, registry ids", batch: 10000, reqs: bench.FlowdRequests(blocks, paths, 10000), main: true},
	}
	if f := b.det; f != nil {
		configs = append(configs, ingestConfig{name: detectorInput(f), batch: 10000, reqs: f.FlowdRequests(10000), detectors: true})
	}
	if keep := b.c.onlyIngest(); keep != nil {
		configs = slices.DeleteFunc(configs, func(ic ingestConfig) bool {
			if ic.detectors {
				return !keep["detectors"]
			}
			return !keep[strconv.Itoa(ic.batch)]
		})
		if len(configs) == 0 {
			return nil, fmt.Errorf("-only-ingest %q: no ingest configuration has those batch sizes (1000, 5000, 10000) or names (detectors)", b.c.onlyIngst)
		}
	}
	b.r.ingest = configs
	var jobs []ingestJob
	for i := range b.r.ingest {
		j := ingestJob{ic: &b.r.ingest[i], dirName: fmt.Sprintf("flowd-%d", i), start: func(dir string) (*bench.Proc, error) { return b.startFlowd(dir) }}
		if j.ic.detectors {
			j.start = b.startFlowdDetectors
		}
		if j.ic.main {
			j.keep = &b.kept
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// peerJobs returns the peer's configurations, none without a peer: the
// day's buckets, its server kept for the queries, and raw events of a
// stretch of the day through stream aggregation.
func (b *benchRun) peerJobs() ([]ingestJob, error) {
	if b.peerBin == "" {
		return nil, nil
	}
	c, day := b.c, b.day
	ofCity, detectors := true, b.det != nil
	if keep := c.onlyIngest(); keep != nil {
		ofCity, detectors = keep["10000"], detectors && keep["detectors"]
	}
	var jobs []ingestJob
	if detectors {
		f := b.det
		b.r.detImport = &ingestConfig{name: "the detector feed's minute buckets, /api/v1/import", batch: c.peerBatch, reqs: bench.PeerRequests(f.PeerImport(c.peerBatch)), detectors: true}
		b.r.detAggr = &ingestConfig{name: "the detector feed's raw events, stream aggregation to 1m sums, /api/v1/import/prometheus", batch: c.peerBatch, reqs: f.Raw, detectors: true}
		jobs = append(jobs,
			ingestJob{ic: b.r.detImport, dirName: "peer-det", start: func(dir string) (*bench.Proc, error) { return bench.StartPeer(b.peerBin, dir) }},
			ingestJob{ic: b.r.detAggr, dirName: "peer-det-aggr", start: func(dir string) (*bench.Proc, error) { return bench.StartPeerAggr(b.peerBin, dir) }})
	}
	if !ofCity {
		return jobs, nil
	}
	b.r.peerIngest = &ingestConfig{name: "pre-bucketed samples, /api/v1/import", batch: c.peerBatch, reqs: bench.PeerRequests(day.PeerImport(c.peerBatch)), main: true}
	from := 8 * 60
	if from+c.aggrMin > c.minutes {
		from = max(0, c.minutes-c.aggrMin)
	}
	to := min(from+c.aggrMin, c.minutes)
	raw, err := day.PeerRawRequests(from, to, c.peerBatch)
	if err != nil {
		return nil, err
	}
	b.r.peerAggr = &ingestConfig{name: fmt.Sprintf("raw events of minutes %d–%d, stream aggregation to 1m sums, /api/v1/import/prometheus", from, to), batch: c.peerBatch, reqs: raw}
	keep := &b.peer
	if c.onlyIngst != "" {
		keep = nil // no queries follow
	}
	return append([]ingestJob{
		{ic: b.r.peerIngest, dirName: "peer", start: func(dir string) (*bench.Proc, error) { return bench.StartPeer(b.peerBin, dir) }, keep: keep},
		{ic: b.r.peerAggr, dirName: "peer-aggr", start: func(dir string) (*bench.Proc, error) { return bench.StartPeerAggr(b.peerBin, dir) }},
	}, jobs...), nil
}

// onlyIngest returns the configurations -only-ingest names (batch sizes,
// "detectors"), nil for all of them.
func (c config) onlyIngest() map[string]bool {
	if c.onlyIngst == "" || c.onlyIngst == "all" {
		return nil
	}
	keep := map[string]bool{}
	for _, f := range strings.Split(c.onlyIngst, ",") {
		keep[strings.TrimSpace(f)] = true
	}
	return keep
}

// detectorInput names the detector feed's flowd configuration.
func detectorInput(f *bench.DetectorFeed) string {
	return fmt.Sprintf("detector feed (%d detectors, a cell each, a count and speed a minute)", f.Detectors)
}

// startFlowdDetectors starts flowd on a new data directory with the
// detector feed's registry.
func (b *benchRun) startFlowdDetectors(dir string) (*bench.Proc, error) {
	p, err := bench.StartFlowd(b.flowdBin, dir)
	if err != nil {
		return nil, err
	}
	if err := bench.PutSensors(b.ctx, p, b.det.SensorsCSV); err != nil {
		p.Stop(10 * time.Second)
		return nil, err
	}
	return p, nil
}

// once sends ic's requests to a new server that start runs in a new
// directory named after dirName and the run. With keep the server is
// returned running; otherwise it is stopped and its data removed.
func (b *benchRun) once(ic *ingestConfig, dirName string, run int, start func(dir string) (*bench.Proc, error), keep bool) (*bench.Proc, error) {
	dir := filepath.Join(b.c.work, fmt.Sprintf("%s-%d", dirName, run))
	p, err := start(dir)
	if err != nil {
		return nil, err
	}
	res, err := bench.Send(b.ctx, p, ic.reqs, b.c.senders)
	if err != nil {
		p.Stop(10 * time.Second)
		return nil, fmt.Errorf("%s ingest %s: %w\n%s", p.Name, ic.name, err, p.Tail())
	}
	log.Printf("%s %s, batch %d: %.0f events/s, %.0f per CPU-s (%.2f CPU-s, settled %.0f s after the last acknowledgement), peak RSS %d MB", p.Name, ic.name, ic.batch, res.Rate(), res.PerCPU(), res.ServerCPU.Seconds(), res.Settle.Seconds(), res.PeakRSS>>20)
	ic.results = append(ic.results, res)
	if keep {
		return p, nil
	}
	if err := p.Stop(30 * time.Second); err != nil {
		return nil, err
	}
	os.RemoveAll(dir)
	return nil, nil
}

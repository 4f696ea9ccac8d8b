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
	name    string
	batch   int
	reqs    []bench.Request
	main    bool
	results []bench.SendResult
}

// ingestFlowd sends the day to flowd in each configuration, -runs times,
// and keeps the main configuration's last server for the queries.
func (b *benchRun) ingestFlowd() error {
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
	if only := b.c.onlyIngst; only != "" && only != "all" {
		keep := map[string]bool{}
		for _, f := range strings.Split(only, ",") {
			keep[strings.TrimSpace(f)] = true
		}
		configs = slices.DeleteFunc(configs, func(ic ingestConfig) bool { return !keep[strconv.Itoa(ic.batch)] })
		if len(configs) == 0 {
			return fmt.Errorf("-only-ingest %q: no ingest configuration has those batch sizes (1000, 5000, 10000)", only)
		}
	}
	for i := range configs {
		ic := &configs[i]
		p, err := b.repeat(ic, fmt.Sprintf("flowd-%d", i), func(dir string) (*bench.Proc, error) { return b.startFlowd(dir) })
		if err != nil {
			return err
		}
		if p != nil {
			b.kept = p
		}
	}
	b.r.ingest = configs
	return nil
}

// ingestPeer sends the day's buckets to the peer, kept for the queries,
// and its raw events of a stretch of the day through stream aggregation.
func (b *benchRun) ingestPeer() error {
	if b.peerBin == "" {
		return nil
	}
	c, day := b.c, b.day
	pc := ingestConfig{name: "pre-bucketed samples, /api/v1/import", batch: c.peerBatch, reqs: bench.PeerRequests(day.PeerImport(c.peerBatch)), main: true}
	var err error
	if b.peer, err = b.repeat(&pc, "peer", func(dir string) (*bench.Proc, error) { return bench.StartPeer(b.peerBin, dir) }); err != nil {
		return err
	}
	b.r.peerIngest = &pc

	from := 8 * 60
	if from+c.aggrMin > c.minutes {
		from = max(0, c.minutes-c.aggrMin)
	}
	to := min(from+c.aggrMin, c.minutes)
	raw, err := day.PeerRawRequests(from, to, c.peerBatch)
	if err != nil {
		return err
	}
	ac := ingestConfig{name: fmt.Sprintf("raw events of minutes %d–%d, stream aggregation to 1m sums, /api/v1/import/prometheus", from, to), batch: c.peerBatch, reqs: raw}
	if _, err := b.repeat(&ac, "peer-aggr", func(dir string) (*bench.Proc, error) { return bench.StartPeerAggr(b.peerBin, dir) }); err != nil {
		return err
	}
	b.r.peerAggr = &ac
	return nil
}

// repeat sends ic's requests -runs times, each to a new server that start
// runs in a new directory named after dirName and the run. The last run's
// server of a main configuration is returned running; the others are
// stopped and their data removed.
func (b *benchRun) repeat(ic *ingestConfig, dirName string, start func(dir string) (*bench.Proc, error)) (*bench.Proc, error) {
	for run := range b.c.runs {
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
		if ic.main && run == b.c.runs-1 {
			return p, nil
		}
		if err := p.Stop(30 * time.Second); err != nil {
			return nil, err
		}
		os.RemoveAll(dir)
	}
	return nil, nil
}

package main

import (
	"cmp"
	"fmt"
	"log"
	"slices"
	"strings"
	"time"

	"github.com/flowd/flowd/bench"
)

// querySpec is one query asked of flowd and the peer, and its results.
type querySpec struct {
	name     string
	flowd    func(*bench.Proc) (bench.Timed, error)
	peer     func(*bench.Proc) (bench.Timed, error)
	want     int64
	flowdRes queryResult
	peerRes  queryResult
}

type queryResult struct {
	ok    bool
	cold  bench.Timed     // the median of colds
	colds []time.Duration // each fresh process's first answer, sorted
	warm  []time.Duration
	items int
	bytes int
}

// peerColumns are a query row's peer cold, peer warm and warm ratio
// columns, dashes where the peer did not answer.
func peerColumns(flowd, peer queryResult) (cold, warm, ratioWarm string) {
	if !peer.ok {
		return "–", "–", "–"
	}
	return ms(peer.cold.Took), ms(bench.Median(peer.warm)), ratio(float64(bench.Median(flowd.warm)), float64(bench.Median(peer.warm)))
}

// measure starts a server on existing data and times its first answer
// (cold: a new process, the page cache as the previous one left it), colds
// times over, a new process each time, keeping the median; then n more
// answers of the last process (warm). It checks each total against want
// (or, when want is negative, against the first answer, which q checks
// itself), and stops the server.
func measure(name string, startFn func() (*bench.Proc, error), q func(*bench.Proc) (bench.Timed, error), want int64, n, colds int) (queryResult, error) {
	var r queryResult
	var p *bench.Proc
	var firsts []bench.Timed
	for i := range max(colds, 1) {
		if p != nil {
			if err := p.Stop(60 * time.Second); err != nil {
				return r, err
			}
		}
		var err error
		if p, err = startFn(); err != nil {
			return r, err
		}
		if i == 0 {
			defer func() { p.Stop(60 * time.Second) }()
		}
		t, err := q(p)
		if err != nil {
			return r, err
		}
		if want < 0 {
			want = t.Total
		} else if t.Total != want {
			return r, fmt.Errorf("%s: answered a total of %d, the day holds %d", name, t.Total, want)
		}
		firsts = append(firsts, t)
	}
	// A first answer moved by two to four times between full runs on this
	// shared machine: the median of several fresh processes.
	slices.SortFunc(firsts, func(a, b bench.Timed) int { return cmp.Compare(a.Took, b.Took) })
	r.cold = firsts[len(firsts)/2]
	r.colds = make([]time.Duration, len(firsts))
	for i, t := range firsts {
		r.colds[i] = t.Took
	}
	for range n {
		t, err := q(p)
		if err != nil {
			return r, err
		}
		if t.Total != want {
			return r, fmt.Errorf("%s: answered a total of %d, the day holds %d", name, t.Total, want)
		}
		r.warm = append(r.warm, t.Took)
	}
	r.ok, r.items, r.bytes = true, r.cold.Items, r.cold.Bytes
	second := time.Duration(0)
	if len(r.warm) > 0 {
		second = r.warm[0]
	}
	log.Printf("%s %s: cold %v (median of %v), second %v, warm median %v", p.Name, name, r.cold.Took.Round(time.Microsecond), r.colds, second.Round(time.Microsecond), bench.Median(r.warm).Round(time.Microsecond))
	return r, nil
}

// query measures each query on flowd's settled data and on the peer's.
func (b *benchRun) query() error {
	c, day := b.c, b.day
	area := day.AreaOf("count_car", c.coverRes)
	b.r.area = area
	cor := bench.BenchCorridor("count_car")
	checkCorridor := func(t bench.Timed, err error) (bench.Timed, error) {
		if want := cor.Total(day, 0, c.minutes); err == nil && t.Total != want {
			err = fmt.Errorf("corridor total %d, the day holds %d in its %d cells", t.Total, want, len(cor.Cells))
		}
		return t, err
	}
	qs := []querySpec{
		{name: fmt.Sprintf("series: %d cells × %d min at 1-minute step", len(area.Cells), c.minutes),
			flowd: func(p *bench.Proc) (bench.Timed, error) { return bench.FlowdSeries(p, day, area, 0, c.minutes) },
			peer:  func(p *bench.Proc) (bench.Timed, error) { return bench.PeerSeries(p, day, area, 0, c.minutes) },
			want:  day.Total(area.Metric, 0, c.minutes)},
		{name: fmt.Sprintf("density map, res 8, %d-minute window", c.densityW),
			flowd: func(p *bench.Proc) (bench.Timed, error) {
				return bench.FlowdDensity(p, day, area, 8, c.minutes-c.densityW, c.minutes)
			},
			peer: func(p *bench.Proc) (bench.Timed, error) {
				return bench.PeerDensity(p, day, area, 8, c.minutes-c.densityW, c.minutes)
			},
			want: day.Total(area.Metric, c.minutes-c.densityW, c.minutes)},
		{name: fmt.Sprintf("corridor: %.0f m wide, %.0f m segments, %d min at 1-minute step", cor.Width, cor.Segment, c.minutes),
			flowd: func(p *bench.Proc) (bench.Timed, error) {
				return checkCorridor(bench.FlowdCorridor(p, day, cor, 0, c.minutes))
			},
			peer: func(p *bench.Proc) (bench.Timed, error) {
				return checkCorridor(bench.PeerCorridor(p, day, cor, 0, c.minutes))
			},
			want: -1},
	}
	flowdDir := b.kept.Dir
	for i := range qs {
		if err := b.measureBoth(&qs[i], flowdDir); err != nil {
			return err
		}
	}
	b.r.queries = qs
	b.r.corridor = cor
	b.r.explicit = explicitCells(b.flowdBin, flowdDir, day, area)
	if b.peer != nil {
		b.peer.Stop(60 * time.Second)
	}
	return nil
}

// measureBoth measures q on flowd, then on the peer restarted on its data.
func (b *benchRun) measureBoth(q *querySpec, flowdDir string) error {
	var err error
	if q.flowdRes, err = measure(q.name, func() (*bench.Proc, error) { return bench.StartFlowd(b.flowdBin, flowdDir) }, q.flowd, q.want, b.c.queries, b.c.colds); err != nil {
		return fmt.Errorf("flowd %s: %w", q.name, err)
	}
	if b.peer == nil {
		return nil
	}
	peerDir := b.peer.Dir
	if err := b.peer.Stop(60 * time.Second); err != nil {
		return err
	}
	if q.peerRes, err = measure(q.name, func() (*bench.Proc, error) { return bench.StartPeer(b.peerBin, peerDir) }, q.peer, q.want, b.c.queries, b.c.colds); err != nil {
		return fmt.Errorf("peer %s: %w", q.name, err)
	}
	b.peer, err = bench.StartPeer(b.peerBin, peerDir)
	return err
}

// explicitCells tries the series query with every base cell listed in the
// URL, which is how a caller holding 2,000 cells would ask.
func explicitCells(bin, dir string, day *bench.Day, a bench.Area) string {
	p, err := bench.StartFlowd(bin, dir)
	if err != nil {
		return err.Error()
	}
	defer p.Stop(60 * time.Second)
	full := a
	full.Cover, full.Res = a.Cells, day.Res
	t, err := bench.FlowdSeries(p, day, full, 0, day.Minutes)
	if err != nil {
		msg := err.Error()
		if _, after, ok := strings.Cut(msg, ": 400 Bad Request: "); ok {
			msg = "400 Bad Request: " + after
		}
		if len(msg) > 160 {
			msg = msg[:160] + "…"
		}
		return "fails with `" + strings.ReplaceAll(msg, "`", "'") + "`"
	}
	return fmt.Sprintf("works: %v for %d cells", t.Took.Round(time.Microsecond), len(a.Cells))
}

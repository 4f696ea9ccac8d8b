package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/flowd/flowd/bench"
	"github.com/flowd/flowd/demo/city"
)

// The year run's own block of BENCH.md, apart from the main run's.
const (
	yearBeginMarker = "<!-- flowd-bench-year:begin -->"
	yearEndMarker   = "<!-- flowd-bench-year:end -->"
)

// yearStart is the first UTC midnight of the city's first Monday: the
// year's hours follow the city's weekdays, weekends and holidays of 2019.
var yearStart = time.Date(2019, 1, 7, 0, 0, 0, 0, time.UTC)

// yearRun is the -year run: long ranges of the hour and day tiers (issue
// 17), flowd beside the peer on the same year of hourly counts.
type yearRun struct {
	b         *benchRun
	year      *bench.Year
	flowdDir  string
	peerDir   string
	flowdSize bench.StoreSize
	writeTime time.Duration
	peerTime  time.Duration
	queries   []yearQuery
}

type yearQuery struct {
	querySpec
	goal time.Duration // the bound on flowd's warm median; 0: none
}

// runYear builds the year, writes it into flowd's store and the peer's,
// measures the queries and prints (or puts into -update) their table.
func (b *benchRun) runYear() error {
	c := b.c
	y := &yearRun{b: b, flowdDir: filepath.Join(c.work, "flowd-year"), peerDir: filepath.Join(c.work, "peer-year")}
	b.cty = city.New(city.Config{Seed: 1, Scale: c.scale, Cameras: c.cameras})
	hours := 24 * c.yearDays
	log.Printf("generating %d hours of car counts from %s", hours, yearStart.Format(time.RFC3339))
	var err error
	if y.year, err = bench.GenerateYear(b.cty, yearStart, hours, 9, c.coverRes); err != nil {
		return err
	}
	log.Printf("generated %d cells × %d hours in %v", len(y.year.Cells), hours, y.year.GenTime.Round(time.Millisecond))
	t0 := time.Now()
	if y.flowdSize, err = y.year.WriteFlowd(filepath.Join(y.flowdDir, "data")); err != nil {
		return err
	}
	y.writeTime = time.Since(t0)
	log.Printf("flowd's store written and settled in %v: parts %v, rows %v", y.writeTime.Round(time.Second), y.flowdSize.Parts, y.flowdSize.Rows)
	if b.peerBin != "" {
		p, err := bench.StartPeer(b.peerBin, y.peerDir)
		if err != nil {
			return err
		}
		t0 = time.Now()
		if err := y.year.PeerImport(p); err != nil {
			p.Stop(60 * time.Second)
			return err
		}
		if _, err := bench.SettlePeer(p); err != nil {
			p.Stop(60 * time.Second)
			return err
		}
		y.peerTime = time.Since(t0)
		log.Printf("the peer imported and merged the year in %v", y.peerTime.Round(time.Second))
		if err := p.Stop(60 * time.Second); err != nil {
			return err
		}
	}
	if err := y.measure(); err != nil {
		return err
	}
	b.r.took = time.Since(b.r.started)
	var out bytes.Buffer
	y.write(&out)
	os.Stdout.Write(out.Bytes())
	if c.update != "" {
		return replaceBetween(c.update, yearBeginMarker, yearEndMarker, out.Bytes())
	}
	return nil
}

// measure asks each query of flowd and of the peer, each on a server
// started for it on the settled data.
func (y *yearRun) measure() error {
	yr, c := y.year, y.b.c
	hours := yr.Hours
	month := 24 * 30
	y.queries = []yearQuery{
		{querySpec: querySpec{name: fmt.Sprintf("density, res 7, the whole year (%d days, midnight to midnight UTC)", c.yearDays),
			flowd: func(p *bench.Proc) (bench.Timed, error) { return bench.FlowdYearDensity(p, yr, 7, 0, hours) },
			peer:  func(p *bench.Proc) (bench.Timed, error) { return bench.PeerYearDensity(p, yr, 7, 0, hours) },
			want:  yr.Total(0, hours)}, goal: 100 * time.Millisecond},
		{querySpec: querySpec{name: fmt.Sprintf("series of all %d cells, the last 30 days at 1-hour step", len(yr.Cells)),
			flowd: func(p *bench.Proc) (bench.Timed, error) { return bench.FlowdYearSeries(p, yr, hours-month, hours) },
			peer:  func(p *bench.Proc) (bench.Timed, error) { return bench.PeerYearSeries(p, yr, hours-month, hours) },
			want:  yr.Total(hours-month, hours)}, goal: 50 * time.Millisecond},
		{querySpec: querySpec{name: "density, res 7, the year less an hour at each end",
			flowd: func(p *bench.Proc) (bench.Timed, error) { return bench.FlowdYearDensity(p, yr, 7, 1, hours-1) },
			peer:  func(p *bench.Proc) (bench.Timed, error) { return bench.PeerYearDensity(p, yr, 7, 1, hours-1) },
			want:  yr.Total(1, hours-1)}},
	}
	for i := range y.queries {
		q := &y.queries[i]
		var err error
		if q.flowdRes, err = measure(q.name, func() (*bench.Proc, error) { return bench.StartFlowd(y.b.flowdBin, y.flowdDir) }, q.flowd, q.want, c.queries, 1); err != nil {
			return fmt.Errorf("flowd %s: %w", q.name, err)
		}
		if y.b.peerBin == "" {
			continue
		}
		if q.peerRes, err = measure(q.name, func() (*bench.Proc, error) { return bench.StartPeer(y.b.peerBin, y.peerDir) }, q.peer, q.want, c.queries, 1); err != nil {
			return fmt.Errorf("peer %s: %w", q.name, err)
		}
	}
	return nil
}

// write prints the year run's section.
func (y *yearRun) write(w io.Writer) {
	r, yr, c := y.b.r, y.year, y.b.c
	fmt.Fprintf(w, "Run of %s, %v in all. Machine: %s.\n\n", r.started.UTC().Format("2006-01-02 15:04 MST"), r.took.Round(time.Second), r.machine)
	fmt.Fprintf(w, "Data: `%s` of the synthetic city (seed 1, scale %g, %d detectors) hour by hour over %d days from %s: "+
		"%d res-9 cells × %d hours = %d hourly values (each detector's hour is 60 times its draw for the hour's middle minute, "+
		"generated in %v). flowd's store was written in this process as ingest writes hourly readings (a run of 60 minutes per cell and hour), "+
		"a flush a week, then merged until still (%v): hour tier %d rows in %d parts, day tier %d rows in %d parts. "+
		"The peer got the same values through `/api/v1/import`, each stamped at its hour's last minute so that a `[1h]` window ending on the hour holds it "+
		"(imported and merged in %v). "+
		"The queries name the city by the cells' %d res-%d parents (flowd `cells=`, peer `cell%d=~\"…\"`). "+
		"Cold is the first query after the server starts on the settled data; warm is the median of %d more; every answer's total was checked against the generated year.\n\n",
		bench.YearMetric, c.scale, len(y.b.cty.Sensors), c.yearDays, yr.Start.Format("2006-01-02"),
		len(yr.Cells), yr.Hours, yr.Rows(), yr.GenTime.Round(time.Millisecond),
		y.writeTime.Round(time.Second), y.flowdSize.Rows[1], y.flowdSize.Parts[1], y.flowdSize.Rows[2], y.flowdSize.Parts[2],
		y.peerTime.Round(time.Second), len(yr.Cover), yr.CoverRes, yr.CoverRes, c.queries)
	fmt.Fprintf(w, "| query | flowd's tier | answer | flowd cold | flowd warm p50 | peer cold | peer warm p50 | ratio warm flowd/peer | goal (issue 17) | verdict |\n|---|---|---:|---:|---:|---:|---:|---:|---|---|\n")
	for _, q := range y.queries {
		pc, pw, rt := peerColumns(q.flowdRes, q.peerRes)
		goal, v := "–", "–"
		if q.goal > 0 {
			fw := bench.Median(q.flowdRes.warm)
			goal = "warm ≤ " + ms(q.goal)
			v = verdict(fw <= q.goal)
		}
		fmt.Fprintf(w, "| %s | %s | %d items, %d KB | %s | %s | %s | %s | %s | %s | %s |\n", q.name, q.flowdRes.cold.Tier, q.flowdRes.items, q.flowdRes.bytes>>10,
			ms(q.flowdRes.cold.Took), ms(bench.Median(q.flowdRes.warm)), pc, pw, rt, goal, v)
	}
}

// replaceBetween puts text between the markers begin and end of path.
func replaceBetween(path, begin, end string, text []byte) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i := bytes.Index(data, []byte(begin))
	j := bytes.Index(data, []byte(end))
	if i < 0 || j < i {
		return errors.New(path + ": no " + begin + " … " + end + " block to replace")
	}
	var out bytes.Buffer
	out.Write(data[:i+len(begin)])
	out.WriteString("\n")
	out.Write(text)
	out.Write(data[j:])
	return os.WriteFile(path, out.Bytes(), 0o644)
}

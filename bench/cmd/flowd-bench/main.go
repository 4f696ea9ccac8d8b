// Command flowd-bench runs flowd end to end beside VictoriaMetrics on the
// synthetic city and prints the tables of BENCH.md: ingest rate and CPU,
// bytes per stored value after merges, query latency and peak memory.
//
//	go run ./bench/cmd/flowd-bench -update BENCH.md   # the full run (make bench)
//	go run ./bench/cmd/flowd-bench -quick             # a small one (make bench-quick)
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/flowd/flowd/bench"
	"github.com/flowd/flowd/demo/city"
)

type config struct {
	root      string
	work      string
	keep      bool
	update    string
	peer      string
	scale     float64
	cameras   int
	minutes   int
	offset    time.Duration
	runs      int
	detRuns   int
	queries   int
	colds     int
	senders   int
	quick     bool
	densityW  int
	coverRes  int
	peerBatch int
	cpuprof   string
	aggrMin   int
	live      string
	liveSecs  int
	livePlain bool
	liveHold  time.Duration
	onlyLive  bool
	onlyIngst string
	year      bool
	yearDays  int
	detectors int
	detMin    int
}

func main() {
	log.SetFlags(log.Ltime)
	if len(os.Args) > 1 && os.Args[1] == liveFleetCommand {
		if err := bench.ServeLiveFleet(os.Stdin, os.Stdout); err != nil {
			log.Fatalf("flowd-bench %s: %v", liveFleetCommand, err)
		}
		return
	}
	c := config{}
	fs := flag.NewFlagSet("flowd-bench", flag.ExitOnError)
	fs.StringVar(&c.root, "root", ".", "the flowd module to build")
	fs.StringVar(&c.work, "work", "", "directory for binaries and data (default: a new temp dir, removed after)")
	fs.BoolVar(&c.keep, "keep", false, "keep the work directory")
	fs.StringVar(&c.update, "update", "", "rewrite the tables between the flowd-bench markers of this file (BENCH.md)")
	fs.StringVar(&c.peer, "peer", "install", "VictoriaMetrics: install (go install it if missing), auto (use it if present) or off")
	fs.Float64Var(&c.scale, "scale", 0.25, "city traffic scale (1 = an ordinary day, about 3 M taps)")
	fs.IntVar(&c.cameras, "cameras", 5000, "roadside detectors (5,000 fall in about 2,100 res-9 cells)")
	fs.IntVar(&c.minutes, "minutes", 1440, "simulated minutes, from the city's first Monday")
	fs.DurationVar(&c.offset, "offset", 0, "start this long after the city's first Monday 00:00")
	fs.IntVar(&c.runs, "runs", 3, "runs of each ingest configuration (medians are reported)")
	fs.IntVar(&c.detRuns, "detector-runs", 5, "runs of each configuration of the detector feed, whose runs are short and whose ratio to the peer moves most from round to round (at least -runs)")
	fs.IntVar(&c.queries, "queries", 7, "warm repetitions of each query")
	fs.IntVar(&c.colds, "cold-starts", 5, "fresh server processes whose first answer to each query is timed (the cold column is their median)")
	fs.IntVar(&c.senders, "senders", 4, "concurrent ingest requests")
	fs.BoolVar(&c.quick, "quick", false, "a small run: 3 simulated hours, one run each, peer only if installed")
	fs.IntVar(&c.densityW, "density-window", 60, "minutes summed by the density map")
	fs.IntVar(&c.coverRes, "cover-res", 6, "resolution of the coarse cells naming the query area")
	fs.IntVar(&c.peerBatch, "peer-batch", 10000, "samples per peer import request")
	fs.IntVar(&c.aggrMin, "aggr-minutes", 120, "minutes of raw events (from 08:00 of the day when it has them) sent to the peer with stream aggregation")
	fs.StringVar(&c.live, "live-clients", "0,1000,10000,50000", "live map runs: WebSocket clients in each (0: ingest alone, the baseline)")
	fs.IntVar(&c.liveSecs, "live-seconds", 10, "seconds of ingest in each live run")
	fs.BoolVar(&c.livePlain, "live-plain", false, "live map runs: clients offer no compression (by default they offer permessage-deflate, as browsers do)")
	fs.DurationVar(&c.liveHold, "live-hold", 3*time.Minute, "in live runs of 10,000 clients or more: idle time before their memory is read, and light load after their ingest before it is read again")
	fs.BoolVar(&c.onlyLive, "only-live", false, "run the live map runs alone and print their tables")
	fs.StringVar(&c.onlyIngst, "only-ingest", "", "run flowd's ingest configurations of these batch sizes alone (comma-separated, e.g. 10000; \"detectors\" for the detector feed; \"all\" for every one) and print their table: a quick A/B of ingest; with -peer, the peer's configurations of the same feeds too")
	fs.BoolVar(&c.year, "year", false, "run the long-range queries alone (issue 17): a year of hourly car counts written into flowd's store and the peer's, density over the year and a month's series; -update rewrites the flowd-bench-year block")
	fs.IntVar(&c.yearDays, "year-days", 365, "days of the -year run")
	fs.IntVar(&c.detectors, "detectors", 20000, "detectors of the second ingest feed, a cell each (0: no second feed)")
	fs.IntVar(&c.detMin, "detector-minutes", 120, "minutes of the second ingest feed")
	fs.StringVar(&c.cpuprof, "cpuprofile", "", "write this process's CPU profile (the load generator's, not flowd's)")
	fs.Parse(os.Args[1:])
	if c.cpuprof != "" {
		f, err := os.Create(c.cpuprof)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if c.quick {
		c.minutes, c.offset, c.runs, c.detRuns, c.queries, c.colds = 180, 7*time.Hour, 1, 1, 3, 1
		c.detMin = 30
		c.live, c.liveSecs, c.liveHold = "0,200,1000", 5, 0
		if c.peer == "install" {
			c.peer = "auto"
		}
	}
	peerSet := false
	fs.Visit(func(f *flag.Flag) { peerSet = peerSet || f.Name == "peer" })
	if c.onlyLive || c.onlyIngst != "" && !peerSet {
		c.peer = "off"
	}
	if err := run(c); err != nil {
		pprof.StopCPUProfile()
		log.Fatalf("flowd-bench: %v", err)
	}
}

// benchRun is one run of flowd-bench: its settings, the binaries, the
// synthetic day, the servers it keeps between phases, and the report it
// fills.
type benchRun struct {
	c        config
	ctx      context.Context
	r        *report
	flowdBin string
	peerBin  string
	cty      *city.City
	day      *bench.Day
	det      *bench.DetectorFeed // the second ingest feed, nil without one
	kept     *bench.Proc         // flowd holding the main ingest run's data
	peer     *bench.Proc         // the peer holding the same day, nil without one
}

func run(c config) error {
	if c.work == "" {
		dir, err := os.MkdirTemp("", "flowd-bench-")
		if err != nil {
			return err
		}
		c.work = dir
		if !c.keep {
			defer os.RemoveAll(dir)
		}
	}
	b := &benchRun{c: c, ctx: context.Background(), r: &report{cfg: c, started: time.Now(), machine: machine()}}
	steps := []func() error{b.build, b.generate, b.ingest, b.settle, b.query, b.liveRuns}
	switch {
	case c.onlyLive:
		steps = []func() error{b.build, b.liveRuns}
	case c.onlyIngst != "":
		steps = []func() error{b.build, b.generate, b.ingest}
	case c.year:
		if err := b.build(); err != nil {
			return err
		}
		return b.runYear()
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	b.r.took = time.Since(b.r.started)
	var out bytes.Buffer
	if c.onlyIngst != "" {
		if b.kept != nil {
			if err := b.kept.Stop(60 * time.Second); err != nil {
				return err
			}
		}
		b.r.writeIngest(&out)
		os.Stdout.Write(out.Bytes())
		return nil
	}
	if c.onlyLive {
		b.r.writeLive(&out)
		os.Stdout.Write(out.Bytes())
		return nil
	}
	b.r.write(&out)
	os.Stdout.Write(out.Bytes())
	if c.update != "" {
		return replaceBlock(c.update, out.Bytes())
	}
	return nil
}

// build builds flowd and finds or installs the peer, as -peer says.
func (b *benchRun) build() error {
	log.Printf("building flowd")
	var err error
	if b.flowdBin, err = bench.BuildFlowd(b.c.root, b.c.work); err != nil {
		return err
	}
	switch b.c.peer {
	case "install":
		b.peerBin, err = bench.PeerBinary(b.ctx, log.Printf)
		return err
	case "auto":
		if p, err := exec.LookPath("victoria-metrics"); err == nil {
			b.peerBin = p
		} else if gp, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			p := filepath.Join(strings.TrimSpace(string(gp)), "bin", "victoria-metrics")
			if _, err := os.Stat(p); err == nil {
				b.peerBin = p
			}
		}
		if b.peerBin == "" {
			log.Printf("victoria-metrics is not installed; running without the peer (make bench installs it)")
		}
	case "off":
	default:
		return fmt.Errorf("-peer %q: want install, auto or off", b.c.peer)
	}
	return nil
}

// generate makes the synthetic day every phase sends and checks against.
func (b *benchRun) generate() error {
	c := b.c
	b.cty = city.New(city.Config{Seed: 1, Scale: c.scale, Cameras: c.cameras})
	start := city.DefaultStart.Add(c.offset)
	log.Printf("generating %d simulated minutes from %s", c.minutes, start.Format(time.RFC3339))
	day, err := bench.GenerateDay(b.cty, start, c.minutes, 9)
	if err != nil {
		return err
	}
	b.day, b.r.day = day, day
	log.Printf("generated %d events (%d swipes, %d counts, %d footfall), %d buckets in %d series, in %v",
		day.Events(), day.EventsByKind[0], day.EventsByKind[1], day.EventsByKind[2], len(day.Samples), len(day.Series), day.GenTime.Round(time.Millisecond))
	if c.detectors > 0 {
		t0 := time.Now()
		b.det = bench.GenerateDetectors(2, c.detectors, c.detMin, city.DefaultStart.Add(8*time.Hour), 9, c.peerBatch)
		b.r.det = b.det
		log.Printf("generated the detector feed: %d events of %d detectors, %d buckets, in %v", b.det.Events, c.detectors, len(b.det.Samples), time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

// settle closes, reopens and merges the kept stores so that their sizes
// and the queries see settled data.
func (b *benchRun) settle() error {
	log.Printf("settling flowd's store (close, reopen, merge)")
	if err := b.kept.Stop(60 * time.Second); err != nil {
		return err
	}
	var err error
	if b.r.flowdSize, err = bench.SettleFlowd(filepath.Join(b.kept.Dir, "data")); err != nil {
		return err
	}
	if b.peer != nil {
		log.Printf("settling the peer's store (force_flush, force_merge)")
		if b.r.peerSize, err = bench.SettlePeer(b.peer); err != nil {
			return err
		}
	}
	return nil
}

// startFlowd starts flowd on a new data directory with the city's
// registries.
func (b *benchRun) startFlowd(dir string, args ...string) (*bench.Proc, error) {
	p, err := bench.StartFlowd(b.flowdBin, dir, args...)
	if err != nil {
		return nil, err
	}
	if err := bench.PutRegistries(b.ctx, p, b.cty); err != nil {
		p.Stop(10 * time.Second)
		return nil, err
	}
	return p, nil
}

func machine() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d CPUs (nproc)", runtime.NumCPU())
	if out, err := exec.Command("lscpu").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(line, "Model name:"); ok {
				fmt.Fprintf(&b, ", %s", strings.TrimSpace(v))
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				var kb int64
				fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb)
				fmt.Fprintf(&b, ", %.1f GiB RAM", float64(kb)/(1<<20))
			}
		}
	}
	fmt.Fprintf(&b, ", %s", runtime.Version())
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		fmt.Fprintf(&b, "; flowd at %s", strings.TrimSpace(string(out)))
	}
	return b.String()
}

const (
	beginMarker = "<!-- flowd-bench:begin -->"
	endMarker   = "<!-- flowd-bench:end -->"
)

// replaceBlock puts tables between the markers of path.
func replaceBlock(path string, tables []byte) error {
	return replaceBetween(path, beginMarker, endMarker, tables)
}

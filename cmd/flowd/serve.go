package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	_ "time/tzdata" // -site-tz on machines without a zone database

	"github.com/flowd/flowd/api"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/ingest"
	"github.com/flowd/flowd/internal/gcfloor"
	"github.com/flowd/flowd/internal/hugepages"
	"github.com/flowd/flowd/remote"
	"github.com/flowd/flowd/storage"
)

type serveConfig struct {
	listen        string
	data          string
	res           int
	secretFile    string
	cardRotate    time.Duration
	stations      string
	sensors       string
	sites         string
	flush         time.Duration
	retainMinutes time.Duration
	retainHours   time.Duration
	maxBody       int
	maxInflight   int
	minFreeDisk   int64
	tripWindow    time.Duration
	maxAhead      time.Duration
	blockCache    int64
	memtableBytes int
	hugePages     bool
	maxMetrics    int
	gcPercent     int
	gcFloor       int64
	demo          bool
	demoScale     float64
	entitySeries  bool
	demoShift     time.Duration
	live          liveConfig
	security      securityConfig
	privacy       privacyConfig
	forecast      forecastConfig
	infer         inferConfig
	riderGroups   string
	export        exportSchedule
	remote        remoteConfig
	role          string
}

func serveFlags(args []string) (*serveConfig, error) {
	c := &serveConfig{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8080", "address `ADDR` (host:port) to serve HTTP and WebSockets on")
	fs.StringVar(&c.data, "data", "./flowd-data", "data directory `DIR`: store, WAL, registries")
	fs.IntVar(&c.res, "res", 9, "base H3 resolution of the buckets (0-15)")
	fs.DurationVar(&c.cardRotate, "card-key-rotate", 0, "write a new card pseudonymisation key this often, as a SIGHUP after writing one by hand does; at least -trip-window, so that no trip is open across two keys (default 0: off)")
	fs.StringVar(&c.secretFile, "secret-file", "", "`FILE` holding the card pseudonymisation key, created with mode 0600 if absent (default <data>/secret.key)")
	fs.StringVar(&c.stations, "stations", "", "`FILE` of stations to load at start: GTFS stops.txt, CSV (id,name,lat,lng[,line]) or JSON")
	fs.StringVar(&c.sensors, "sensors", "", "`FILE` of sensors to load at start: CSV (id,name,lat,lng[,kind]) or GeoJSON points")
	fs.StringVar(&c.sites, "sites", "", "`FILE` of scenic sites to load at start: GeoJSON polygons with id, name, capacity, daily_capacity")
	fs.DurationVar(&c.flush, "flush-interval", time.Minute, "how often the in-memory table is written as parts")
	fs.DurationVar(&c.retainMinutes, "retention-minute", 30*24*time.Hour, "how long minute buckets are kept")
	fs.DurationVar(&c.retainHours, "retention-hour", 2*365*24*time.Hour, "how long hourly rollups are kept")
	fs.IntVar(&c.maxBody, "max-body", 64<<20, "largest request body in bytes (as sent, before decompression)")
	fs.IntVar(&c.maxInflight, "max-ingest-inflight", 64, "ingest requests served at once; beyond it 429")
	fs.Int64Var(&c.minFreeDisk, "min-free-disk", api.DefaultMinFreeDisk, "free bytes of the data disk under which /readyz answers 503")
	fs.DurationVar(&c.tripWindow, "trip-window", 3*time.Hour, "longest time between a tap-in and its tap-out for them to make a trip")
	fs.DurationVar(&c.maxAhead, "max-clock-skew", ingest.DefaultMaxAhead, "how far past the server's clock an event may be stamped; a later one is refused with a line error")
	fs.Int64Var(&c.blockCache, "block-cache", 256<<20, "bytes of decoded blocks kept for repeated queries, most of them compact, 4–14 bytes a row (0: none)")
	fs.IntVar(&c.memtableBytes, "memtable-bytes", 32<<20, "bytes of buckets held in memory before a flush writes them as parts")
	fs.IntVar(&c.maxMetrics, "max-metrics", 1024, "metric names kept; a detector class makes two, and a new class past it is refused with a line error")
	fs.BoolVar(&c.hugePages, "huge-pages", true, "where the system gives transparent huge pages on request (madvise), ask them for the heap: a first touch of memory then maps 2 MiB, not 4 KiB (fewer page faults and TLB misses)")
	fs.IntVar(&c.gcPercent, "gogc", 30, "Go's GC target percentage (the GOGC environment variable wins); flowd's tables hold no pointers, so a low value costs little")
	fs.Int64Var(&c.gcFloor, "gc-floor", 48<<20, "bytes the heap may grow to before a collection, whatever -gogc (0: none): a small heap, a fresh server's, then does not collect at every few megabytes")
	fs.BoolVar(&c.entitySeries, "entity-series", false, "keep the own figures of a sensor, station or site that shares its H3 cell with another apart, so that sensor=, station= and site= answer them; each such reading then costs two rows (off: the cell's figures, their sum, only)")
	fs.BoolVar(&c.demo, "demo", false, "feed the synthetic Hangzhou city into this server, following the clock")
	fs.Float64Var(&c.demoScale, "demo-scale", 0.05, "size of the demo city's traffic (1 = a realistic day)")
	fs.DurationVar(&c.demoShift, "demo-shift", 0, "move the demo city's hours: at time t it lives Hangzhou's t+shift (e.g. to see its afternoon at any hour)")
	liveFlags(fs, &c.live)
	securityFlags(fs, &c.security)
	privacyFlags(fs, &c.privacy)
	forecastFlags(fs, &c.forecast)
	inferFlags(fs, &c.infer)
	fs.StringVar(&c.riderGroups, "rider-groups", "", "map card categories (the AFC exports' payType) to rider groups counted apart: \"1=adult,2=student,3=senior\", or a `FILE` of value=group lines")
	exportScheduleFlags(fs, &c.export)
	remoteFlags(fs, &c.remote)
	fs.StringVar(&c.role, "role", "all", "\"all\": ingest and answer; \"query\": a query node, which ingests nothing and answers from VictoriaMetrics (-remote-read) and its -peers, its -remote-history all unless given")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: flowd serve [flags]\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), tokenFileHelp)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := c.checkRole(fs); err != nil {
		return nil, err
	}
	if c.res < 0 || c.res > 15 {
		return nil, fmt.Errorf("-res %d: want an H3 resolution from 0 to 15", c.res)
	}
	if c.maxAhead <= 0 {
		return nil, fmt.Errorf("-max-clock-skew %v: want a positive duration", c.maxAhead)
	}
	if c.blockCache <= 0 {
		c.blockCache = -1 // the store reads 0 as its default
	}
	if c.secretFile == "" {
		c.secretFile = filepath.Join(c.data, "secret.key")
	}
	if c.cardRotate != 0 && c.cardRotate < c.tripWindow {
		return nil, fmt.Errorf("-card-key-rotate %v is shorter than -trip-window %v: a trip open across two rotations would be lost; rotate less often or shorten the window", c.cardRotate, c.tripWindow)
	}
	if c.export.dir != "" {
		if c.security.tokens == "" {
			return nil, fmt.Errorf("-export-dir %s needs -tokens: the export reads as a read token, through the privacy layer, and without tokens every caller is an admin who sees exact figures", c.export.dir)
		}
		if c.export.every < time.Minute {
			return nil, fmt.Errorf("-export-every %v: want a minute or more", c.export.every)
		}
		if _, err := c.export.config("export-"); err != nil {
			return nil, err
		}
	}
	if c.demoShift%time.Minute != 0 || c.demoShift <= -24*time.Hour || c.demoShift >= 24*time.Hour {
		return nil, fmt.Errorf("-demo-shift %v: want whole minutes within a day either way", c.demoShift)
	}
	if c.demo && c.live.siteTZ == "" {
		// The demo city keeps Hangzhou's hours, moved by -demo-shift; so
		// do its sites' days.
		c.live.siteTZ = "Asia/Shanghai"
		if c.demoShift != 0 {
			c.live.siteLoc = time.FixedZone("CST"+c.demoShift.String(), int((8*time.Hour+c.demoShift)/time.Second))
		}
	}
	return c, nil
}

// tokenFileHelp describes the file -tokens names, after the flags.
const tokenFileHelp = `
The -tokens file holds one token a line, "SHA256 ROLE [NAME]": the
token's SHA-256 in hex, its role (ingest, read or admin) and a name for
the logs and the audit log; blank lines and lines starting with # are
skipped. A JSON array of {"sha256": ..., "role": ..., "name": ...} is
read too.
"flowd token -role read -name planner -file FILE" makes a token and
appends its line.
`

func serve(args []string) error {
	c, err := serveFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if os.Getenv("GOGC") == "" {
		gcfloor.Keep(c.gcPercent, uint64(max(c.gcFloor, 0)))
	}
	if c.hugePages {
		adviseHugePages(c)
	}
	if err := os.MkdirAll(c.data, 0o755); err != nil {
		return err
	}
	if c.export.dir != "" {
		if err := os.MkdirAll(c.export.dir, 0o755); err != nil {
			return fmt.Errorf("-export-dir: %w", err)
		}
	}
	outbox, err := c.remote.outbox(c.data, time.Now())
	if err != nil {
		return err
	}
	failpoint := failpointFromEnv()
	opts := storage.Options{
		FlushInterval:   c.flush,
		Retention:       [storage.NumTiers]time.Duration{c.retainMinutes, c.retainHours},
		Failpoint:       failpoint,
		BlockCacheBytes: c.blockCache,
		MemtableBytes:   c.memtableBytes,
		HugePages:       c.hugePages,
		MaxMetrics:      c.maxMetrics,
	}
	if outbox != nil {
		opts.Watch = outbox
	}
	st, err := storage.Open(filepath.Join(c.data, "store"), opts)
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Printf("flowd: closing the store: %v", err)
		}
	}()
	var rt *remote.Tier
	if outbox != nil {
		if rt, err = c.remote.tier(outbox, st, c.res, failpoint); err != nil {
			return err
		}
		defer rt.Close()
		log.Printf("flowd: shipping finished buckets to %s as node %q", rt.Status().URL, c.remote.node)
	}
	cards, err := ingest.LoadOrCreateKey(c.secretFile)
	if err != nil {
		return err
	}
	reg, regDir, err := openRegistry(c)
	if err != nil {
		return err
	}

	inf, inferWindow, err := c.infer.inference(reg)
	if err != nil {
		return err
	}
	groups, err := riderGroups(c.riderGroups, st)
	if err != nil {
		return err
	}
	b := &ingest.Bucketer{Registry: reg, Store: st, Cards: cards, Res: c.res, Trips: ingest.NewTrips(st, c.tripWindow, inf), Groups: groups, MaxAhead: c.maxAhead, EntitySeries: c.entitySeries}
	ih := ingest.NewHandler(b, c.maxInflight)
	layer, err := c.privacy.layer(c.data, c.res, c.tripWindow, inferWindow)
	if err != nil {
		return err
	}
	defer layer.Close()
	fc, err := c.forecast.tracker(st, reg, layer, b)
	if err != nil {
		return err
	}
	d, stopLive, err := startLive(st, reg, b, c.data, c.live, fc, c.forecast.warnHorizon)
	if err != nil {
		return err
	}
	defer stopLive()
	if c.live.yield > 0 {
		ih.Yield = func() { d.Hub.Yield(c.live.yield) }
	}
	go fc.Run()
	defer fc.Close()
	parts := api.Parts{Ingest: ih, Live: d, Forecasts: fc, Remote: rt}
	if c.role == "query" {
		parts.Ingest = nil // its ingest routes answer 404
	}
	srv := api.NewServer(st, reg, regDir, parts)
	srv.EntitySeries = c.entitySeries
	srv.Privacy = layer
	if srv.History, err = c.remote.history(rt, c.res); err != nil {
		return err
	}
	if srv.History != nil && len(srv.History.Peers) > 0 {
		// A query node: its live map sums the peers' live state.
		stop := startLiveFeed(srv.History.Peers, st, d.Hub, c.live)
		defer stop()
		d.Sites.ReadFrom(srv.Buckets())
	}
	srv.MinFreeDisk = c.minFreeDisk
	sec, err := setupSecurity(c.security, c.listen, c.data, srv, ih)
	if err != nil {
		return err
	}
	defer sec.Close()
	sec.guard.HangUp = d.Hub.HangUp
	sec.cards, sec.cardKeyFile = cards, c.secretFile
	var demo *demoFeed
	if c.demo {
		demo = &demoFeed{scale: c.demoScale, shift: c.demoShift, store: st, dayStart: d.Sites.DayStart}
	}
	return listenAndServe(srv, sec, c, demo)
}

// listenAndServe serves srv on c.listen, with the demo feed when asked,
// until SIGINT or SIGTERM; then it lets the requests in flight finish.
func listenAndServe(srv *api.Server, sec *security, c *serveConfig, demo *demoFeed) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln, scheme := sec.Listen(ln)
	go sec.reloadOnHUP(ctx)
	if c.cardRotate > 0 {
		go sec.rotateCardKey(ctx, c.cardRotate)
	}
	log.Printf("flowd: serving on %s://%s (data in %s, base resolution %d)", scheme, addr, c.data, c.res)
	fmt.Printf("flowd listening on %s://%s\n", scheme, addr)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln, c.maxBody) }()
	if demo != nil {
		go demo.run(ctx, scheme+"://"+addr, sec.DemoToken())
	}
	if c.export.dir != "" {
		ec, _ := c.export.config("export-") // checked by serveFlags
		ec.URL, ec.Token, ec.Client = selfURL(scheme, addr), sec.ExportToken(), selfClient()
		go runExports(ctx, c.export, ec, log.Printf)
	}
	select {
	case <-ctx.Done():
		log.Printf("flowd: shutting down")
	case err := <-errc:
		return err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		return errors.New("requests still in flight after 10 s; stopping anyway")
	}
}

// openRegistry loads the registries saved in the data directory, then the
// files named by flags over them, and saves the result.
func openRegistry(c *serveConfig) (*geo.Registry, string, error) {
	reg := geo.New(c.res)
	regDir := filepath.Join(c.data, "registry")
	if err := os.MkdirAll(regDir, 0o755); err != nil {
		return nil, "", err
	}
	if err := reg.Load(regDir); err != nil {
		return nil, "", fmt.Errorf("registry in %s: %w", regDir, err)
	}
	if err := loadRegistryFiles(reg, c); err != nil {
		return nil, "", err
	}
	return reg, regDir, reg.Save(regDir)
}

// loadRegistryFiles replaces the registry sets that flags name files of.
func loadRegistryFiles(reg *geo.Registry, c *serveConfig) error {
	for _, f := range []struct{ set, path string }{
		{geo.SetStations, c.stations}, {geo.SetSensors, c.sensors}, {geo.SetSites, c.sites},
	} {
		if f.path == "" {
			continue
		}
		rd, err := os.Open(f.path)
		if err != nil {
			return err
		}
		_, notes, err := reg.PutFileNoted(f.set, f.path, rd)
		rd.Close()
		if err != nil {
			return err
		}
		for _, note := range notes {
			log.Printf("flowd: registry: %s", note)
		}
	}
	return nil
}

// failpointFromEnv reads FLOWD_FAILPOINT=<name>[:<n>], used by the crash
// tests: the process kills itself with SIGKILL the n-th time (default the
// first) the store reaches the named moment.
func failpointFromEnv() func(string) {
	spec := os.Getenv("FLOWD_FAILPOINT")
	if spec == "" {
		return nil
	}
	name, nth, _ := strings.Cut(spec, ":")
	n, err := strconv.Atoi(nth)
	if err != nil || n < 1 {
		n = 1
	}
	var hits atomic.Int64
	return func(point string) {
		if point == name && hits.Add(1) == int64(n) {
			log.Printf("flowd: failpoint %s reached; killing the process", point)
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
}

// checkRole checks -role against the other flags: a query node ships
// nothing, feeds no demo and reads somewhere; it reads every step
// VictoriaMetrics holds whole unless -remote-history says otherwise.
func (c *serveConfig) checkRole(fs *flag.FlagSet) error {
	switch c.role {
	case "all":
		return nil
	case "query":
	default:
		return fmt.Errorf("-role %q: want all or query", c.role)
	}
	switch {
	case c.remote.url != "":
		return errors.New("-role query ingests nothing and so ships nothing: drop -remote (the ingest nodes ship; the query node reads with -remote-read)")
	case c.demo:
		return errors.New("-role query ingests nothing: run -demo on an ingest node")
	case c.remote.read == "" && c.remote.peers == "":
		return errors.New("-role query needs -remote-read (VictoriaMetrics or vmselect) and -peers (the ingest nodes), or at least one of them")
	}
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "remote-history" })
	if !given {
		c.remote.historyMode = "all"
	}
	return nil
}

// adviseHugePages asks huge pages for the heap flowd's tables will fill:
// the memtables (two while one is flushed: their lists; their points'
// pages are mapped apart, storage's page pool, and counted as held by the
// watch), the block cache and the rest, twice over for the GC's room.
// What it could not do is said, not fatal.
func adviseHugePages(c *serveConfig) {
	reserve := max(512<<20, 256<<20+2*(2*c.memtableBytes+int(c.blockCache)))
	advised, err := hugepages.Heap(reserve, storage.PoolBytes, func(format string, args ...any) {
		log.Printf("flowd: "+format, args...)
	})
	switch {
	case err != nil:
		log.Printf("flowd: huge pages for the heap: %v; ordinary pages instead", err)
	case advised > 0:
		log.Printf("flowd: the heap's first %d MiB in transparent huge pages", advised>>20)
	}
}

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/flowd/flowd/export"
	"github.com/flowd/flowd/geo"
)

// exportFlags are the flags `flowd export` and serve's -export-* share.
type exportFlags struct {
	res     int
	metrics string
	bbox    string
}

func (e *exportFlags) register(fs *flag.FlagSet, prefix string) {
	fs.IntVar(&e.res, prefix+"res", 8, "H3 resolution of the cell tables: 7 or 8")
	fs.StringVar(&e.metrics, prefix+"metrics", "", "comma-separated `METRICS` of the cell tables (default every count the server lists but sketches, speeds and trip metrics)")
	fs.StringVar(&e.bbox, prefix+"bbox", "", "area of the cell tables, `west,south,east,north` in degrees (default the stations', sensors' and sites' extent)")
}

// config checks the flags and returns the export's configuration; errors
// name the flag with its prefix.
func (e *exportFlags) config(prefix string) (export.Config, error) {
	c := export.Config{Res: e.res, BBox: e.bbox}
	if e.res != 7 && e.res != 8 {
		return c, fmt.Errorf("-%sres %d: want 7 or 8 (resolution 9 is the stations' table)", prefix, e.res)
	}
	if e.bbox != "" {
		if _, err := geo.ParseBBox(e.bbox); err != nil {
			return c, fmt.Errorf("-%sbbox %q: %v", prefix, e.bbox, err)
		}
	}
	if e.metrics != "" {
		for _, m := range strings.Split(e.metrics, ",") {
			if m = strings.TrimSpace(m); m == "" {
				return c, fmt.Errorf("-%smetrics %q: an empty name", prefix, e.metrics)
			}
			c.Metrics = append(c.Metrics, m)
		}
	}
	return c, nil
}

// exportCmd serves `flowd export`: it reads privacy-safe aggregates of
// UTC days from a running flowd with a read token and writes them as CSV,
// GeoJSON and a manifest into a directory per day.
func exportCmd(args []string) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	url := fs.String("url", "http://127.0.0.1:8080", "flowd to export from")
	token := fs.String("token", os.Getenv("FLOWD_TOKEN"), "bearer token with the read role (default $FLOWD_TOKEN); an admin's is refused, its figures being exact")
	dir := fs.String("dir", "", "`DIR` to write each day's directory (YYYY-MM-DD) into (required)")
	dayFlag := fs.String("day", "", "last UTC `DAY` to export, YYYY-MM-DD (default the last day the server has released in full)")
	days := fs.Int("days", 1, "how many days to export, ending with -day")
	var ef exportFlags
	ef.register(fs, "")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: flowd export -dir DIR [flags]\n\nWrites per cell and hour, per station and hour and the station OD matrix of each\nUTC day as CSV and GeoJSON, with a manifest.json stating the privacy mechanism,\ninto DIR/YYYY-MM-DD/. Every figure is a read token's answer through the privacy\nlayer; re-running gives the same bytes. See docs/privacy.md.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("export: unexpected argument %q: flags only", fs.Arg(0))
	}
	if *dir == "" {
		fs.Usage()
		return errors.New("export: -dir is required")
	}
	if *days < 1 || *days > 366 {
		return fmt.Errorf("export: -days %d: want 1 to 366", *days)
	}
	c, err := ef.config("")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	c.URL, c.Token, c.Dir = *url, *token, *dir
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var last time.Time
	if *dayFlag != "" {
		if last, err = time.Parse(time.DateOnly, *dayFlag); err != nil {
			return fmt.Errorf("export: -day %q: want YYYY-MM-DD", *dayFlag)
		}
	} else if last, err = export.LastSettledDay(ctx, c); err != nil {
		return err
	}
	p := newExportProgress(os.Stderr)
	c.Progress = p.report
	for i := *days - 1; i >= 0; i-- {
		day := last.AddDate(0, 0, -i)
		p.start(day)
		m, err := export.Day(ctx, c, day)
		p.end()
		if err != nil {
			return err
		}
		rows := 0
		for _, t := range m.Tables {
			rows += t.Rows
		}
		fmt.Fprintf(os.Stderr, "export: %s: %d rows in %d tables written to %s\n", m.Day, rows, len(m.Tables), c.Dir+string(os.PathSeparator)+m.Day)
	}
	return nil
}

// exportProgress shows an export's answers received: a line redrawn in
// place on a terminal, elsewhere a plain line every tenth of the way.
type exportProgress struct {
	w     *os.File
	tty   bool
	day   time.Time
	began time.Time
	shown int // tenths shown
}

func newExportProgress(w *os.File) *exportProgress {
	fi, err := w.Stat()
	return &exportProgress{w: w, tty: err == nil && fi.Mode()&os.ModeCharDevice != 0}
}

func (p *exportProgress) start(day time.Time) {
	p.day, p.began, p.shown = day, time.Now(), -1
}

func (p *exportProgress) report(done, total int, what string) {
	line := fmt.Sprintf("export: %s: %d/%d answers (%3.0f%%) %s", p.day.Format(time.DateOnly), done, total, 100*float64(done)/float64(total), what)
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		return
	}
	if tenth := 10 * done / total; tenth > p.shown {
		p.shown = tenth
		fmt.Fprintln(p.w, line)
	}
}

func (p *exportProgress) end() {
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// exportSchedule holds serve's -export-* flags.
type exportSchedule struct {
	dir   string
	every time.Duration
	exportFlags
}

func exportScheduleFlags(fs *flag.FlagSet, s *exportSchedule) {
	fs.StringVar(&s.dir, "export-dir", "", "write open data into `DIR` as flowd export does: at start and every -export-every, each UTC day released in full since the last one written there (a week at most); needs -tokens, as it reads as a read token")
	fs.DurationVar(&s.every, "export-every", 24*time.Hour, "how often -export-dir looks for days to write")
	s.register(fs, "export-")
}

// exportCatchUp is how many days back a scheduled export writes the days
// it missed (the server was down, the day had not settled).
const exportCatchUp = 7

// runExports writes the days due into s.dir at once and every s.every
// until ctx ends, reading the server at url with the read token token.
func runExports(ctx context.Context, s exportSchedule, c export.Config, logf func(string, ...any)) {
	c.Dir = s.dir
	for {
		if err := exportDue(ctx, c, logf); err != nil && ctx.Err() == nil {
			logf("flowd: export: %v; trying again in %v", err, s.every)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.every):
		}
	}
}

// exportDue writes the last day released in full and the days before it,
// back to the newest one the directory has a manifest of, at most a week.
func exportDue(ctx context.Context, c export.Config, logf func(string, ...any)) error {
	last, err := export.LastSettledDay(ctx, c)
	if err != nil {
		return err
	}
	first := last
	for back := 1; back < exportCatchUp; back++ {
		d := last.AddDate(0, 0, -back)
		if _, err := os.Stat(filepath.Join(c.Dir, d.Format(time.DateOnly), export.ManifestName)); err == nil {
			break
		}
		first = d
	}
	for d := first; !d.After(last); d = d.AddDate(0, 0, 1) {
		if _, err := os.Stat(filepath.Join(c.Dir, d.Format(time.DateOnly), export.ManifestName)); err == nil {
			continue
		}
		m, err := export.Day(ctx, c, d)
		if err != nil {
			return err
		}
		logf("flowd: export: %s written to %s", m.Day, filepath.Join(c.Dir, m.Day))
	}
	return nil
}

// selfURL returns the URL this server answers at on this machine: a
// listener on every interface is reached through loopback.
func selfURL(scheme, addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
	}
	return scheme + "://" + addr
}

// selfClient is the client of a server's requests to itself: over TLS it
// does not check the certificate, which names the server's public name,
// not the loopback address it dials.
func selfClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	return &http.Client{Transport: tr, Timeout: 5 * time.Minute}
}

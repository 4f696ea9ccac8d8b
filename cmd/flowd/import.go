package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flowd/flowd/cityfile"
	"github.com/flowd/flowd/ingest"
	"github.com/valyala/fastjson"
)

// importJob is one file of `flowd import`.
type importJob struct {
	path   string
	kind   string // swipes, counts or footfall
	csv    bool
	gzip   bool
	spec   *cityfile.Spec // nil: flowd's own lines, sent as they are
	header string         // CSV header line, sent in front of every batch
	index  int            // in the import's list of files
}

// importBatch is a run of records of one file, posted as one request.
type importBatch struct {
	job       *importJob
	seq       int // of the batch within its file
	firstLine int // file line number of the batch's first data line
	lastLine  int // file line number of its last record
	body      []byte
	events    int
	// srcLines maps the batch's event lines to their source lines, for
	// files whose records become several events (nil: one line each).
	srcLines []int
	// What the reader found itself, counted when the batch is acknowledged
	// so that a resumed import counts each once.
	missing, rejected int
	notes, gaps       []string // rejected records, missing cells
	final             bool     // the file's last batch
}

type importStats struct {
	read, total       atomic.Int64 // bytes of the files
	accepted, refused atomic.Int64
	missing           atomic.Int64
}

// importCmd serves `flowd import`: it streams history files — flowd's
// NDJSON or CSV, or the layouts cities publish (cityfile) — to a running
// flowd in batches, with a progress bar, lists every rejected line by file
// and line number, and keeps its progress so that an interrupted import
// resumes where it stopped.
func importCmd(args []string) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	url := fs.String("url", "http://127.0.0.1:8080", "flowd to import into")
	token := fs.String("token", os.Getenv("FLOWD_TOKEN"), "bearer token with the ingest role (default $FLOWD_TOKEN)")
	kind := fs.String("kind", "", "swipes, counts or footfall (default: from the file name)")
	layout := fs.String("layout", "", "the files' layout: "+strings.Join(cityfile.Layouts, ", ")+" (default flowd, or the -map file's)")
	mapFile := fs.String("map", "", "a JSON mapping `FILE` saying how the files' columns become flowd's events (docs/import.md)")
	tz := fs.String("tz", "", "IANA `zone` of times written without an offset, such as Australia/Melbourne (default UTC, or the -map file's)")
	batchLines := fs.Int("batch", 10000, "events per request")
	senders := fs.Int("senders", 1, "requests in flight; more than 1 posts batches out of order, which breaks trip matching of swipes (a tap-out whose tap-in arrives later counts as unmatched)")
	maxErrors := fs.Int("show-errors", 20, "rejected lines to print, and as many missing cells")
	stateDir := fs.String("state", defaultStateDir(), "`folder` where an import keeps its progress until it ends, to resume after an interruption")
	fresh := fs.Bool("fresh", false, "start over, forgetting the progress of an interrupted import of the same files")
	inflight := fs.String("inflight", "", "`how` to resume an import stopped while a batch awaited the server's answer: resend that batch, or skip it as kept (see docs/import.md)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: flowd import [flags] FILE...

Files are NDJSON (.ndjson, .jsonl, .json) or CSV with a header row (.csv, .txt),
optionally .gz; their kind comes from -kind or a name containing swipes, counts,
footfall or afc. Other layouts (wide tables, AFC exports by station number,
GTFS-ride board_alight.txt, PeMS station files) are read with -layout or -map;
docs/import.md describes them, with the real samples of ../shared/data.

An interrupted import (Ctrl-C) finishes the batch in flight, keeps its progress
under -state and resumes when run again with the same files.

Exit status: 0 when every line was kept, 2 when some were rejected, 3 when none
was kept, 130 when interrupted, 1 when the import failed (a server not reachable,
a file not readable).`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("import: no files given")
	}
	if *inflight != "" && *inflight != "resend" && *inflight != "skip" {
		return fmt.Errorf("import: -inflight %q: want resend or skip", *inflight)
	}
	spec, err := importSpec(*layout, *mapFile, *tz)
	if err != nil {
		return err
	}
	var jobs []*importJob
	st := &importStats{}
	for i, p := range fs.Args() {
		j, err := newImportJob(p, *kind, spec)
		if err != nil {
			return err
		}
		j.index = i
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st.total.Add(fi.Size())
		jobs = append(jobs, j)
	}
	ledger, err := openLedger(*stateDir, *url, *kind, fs.Args(), spec, *fresh)
	if err != nil {
		return err
	}
	if err := ledger.settleInFlight(*inflight); err != nil {
		return err
	}
	st.accepted.Store(ledger.state.Accepted)
	st.refused.Store(ledger.state.Rejected)
	st.missing.Store(ledger.state.Missing)

	// The first interrupt stops reading and lets the batches in flight get
	// their answers, so that the progress kept is exact; a second one
	// abandons them (their fate is then unknown, see -inflight).
	readCtx, stopReading := context.WithCancel(context.Background())
	sendCtx, abandon := context.WithCancel(context.Background())
	defer stopReading()
	defer abandon()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var interrupted atomic.Bool
	go func() {
		if _, ok := <-sigs; !ok {
			return
		}
		interrupted.Store(true)
		stopReading()
		fmt.Fprintln(os.Stderr, "\ninterrupted: waiting for the batch in flight (interrupt again to abandon it)")
		if _, ok := <-sigs; ok {
			abandon()
		}
	}()

	client := &http.Client{Timeout: 5 * time.Minute}
	if err := reachable(readCtx, client, *url); err != nil {
		return err
	}
	var reg *cityfile.Registry
	if spec != nil && spec.Layout == cityfile.LayoutWide {
		if reg, err = fetchRegistry(readCtx, client, *url, *token, spec.Kind); err != nil {
			fmt.Fprintf(os.Stderr, "import: %v; columns are mapped by the mapping file alone\n", err)
		}
	}

	batches := make(chan importBatch, *senders)
	shown := &shownLines{max: int64(*maxErrors)}
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	bar := newProgress(os.Stderr, st)
	for range *senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				if readCtx.Err() != nil {
					// Interrupted or failed: a batch not yet sent is left
					// for the resumed import.
					continue
				}
				if err := postBatch(sendCtx, client, *url, *token, b, st, bar, shown, ledger); err != nil {
					errOnce.Do(func() { firstErr = err; stopReading() })
				}
			}
		}()
	}
	go bar.run(readCtx)
	var readErr error
	for _, j := range jobs {
		from := ledger.doneLine(j.index)
		if from < 0 {
			continue // imported before the interruption
		}
		if from > 0 {
			bar.println(fmt.Sprintf("resuming %s after line %d", j.path, from))
		}
		if readErr = readJob(readCtx, j, ledger, *batchLines, st, batches, reg, bar); readErr != nil {
			break
		}
	}
	close(batches)
	wg.Wait()
	stopped := interrupted.Load() || firstErr != nil || (readErr != nil && readCtx.Err() == nil)
	bar.finish()
	verb := "imported"
	if stopped {
		verb = "stopped: kept"
	}
	missing := ""
	if n := st.missing.Load(); n > 0 {
		missing = fmt.Sprintf("; %d cells missing", n)
	}
	fmt.Fprintf(os.Stderr, "%s %d events from %d files in %v; %d lines rejected%s\n",
		verb, st.accepted.Load(), len(jobs), bar.elapsed().Round(time.Millisecond), st.refused.Load(), missing)
	if stopped {
		if err := ledger.save(); err != nil {
			return err
		}
	}
	switch {
	case readErr != nil && readCtx.Err() == nil:
		return readErr
	case firstErr != nil:
		return fmt.Errorf("%w (run the same command again to resume)", firstErr)
	case interrupted.Load():
		return exitError{130, "interrupted; run the same command again to resume (" + ledger.path + ")"}
	}
	if err := ledger.finish(); err != nil {
		return err
	}
	switch {
	case st.accepted.Load() == 0 && st.refused.Load() > 0:
		return exitError{3, "no line was kept"}
	case st.refused.Load() > 0:
		return exitError{2, fmt.Sprintf("%d lines were rejected", st.refused.Load())}
	}
	return nil
}

// importSpec returns the layout of the files from -layout, -map and -tz;
// nil for flowd's own lines sent as they are.
func importSpec(layout, mapFile, tz string) (*cityfile.Spec, error) {
	var sp *cityfile.Spec
	var err error
	switch {
	case mapFile != "":
		if sp, err = cityfile.LoadSpec(mapFile); err != nil {
			return nil, fmt.Errorf("import: %w", err)
		}
		if layout != "" && layout != sp.Layout {
			return nil, fmt.Errorf("import: -layout %s, but the mapping file %s says %s", layout, mapFile, sp.Layout)
		}
	case layout == cityfile.LayoutWide || layout == cityfile.LayoutRows:
		return nil, fmt.Errorf("import: -layout %s needs a mapping file (-map) naming its columns; docs/import.md has examples", layout)
	case layout != "":
		if sp, err = cityfile.SpecFor(layout); err != nil {
			return nil, fmt.Errorf("import: -layout: %w", err)
		}
	}
	if tz != "" {
		if _, err := cityfile.NewClock(tz, false); err != nil {
			return nil, fmt.Errorf("import: -tz: %w", err)
		}
		if sp == nil {
			sp, _ = cityfile.SpecFor(cityfile.LayoutFlowd)
		}
		sp.TZ = tz
	}
	if sp != nil && sp.Layout == cityfile.LayoutFlowd && sp.TZ == "" {
		return nil, nil
	}
	return sp, nil
}

// exitError ends flowd with its code, having said why.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

// reachable fails at once, and clearly, when no flowd answers at url:
// rather than retrying each batch against a stopped server.
func reachable(ctx context.Context, client *http.Client, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimSuffix(url, "/")+"/healthz", nil)
	if err != nil {
		return fmt.Errorf("import: -url %q: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("import: the server is not reachable at %s (is flowd running? -url sets where): %w", url, err)
	}
	resp.Body.Close()
	return nil
}

func newImportJob(path, kind string, spec *cityfile.Spec) (*importJob, error) {
	j := &importJob{path: path, kind: kind, spec: spec}
	name := strings.ToLower(filepath.Base(path))
	if n, ok := strings.CutSuffix(name, ".gz"); ok {
		j.gzip, name = true, n
	}
	if spec != nil && spec.Layout != cityfile.LayoutFlowd {
		// The layout says what the file is and what it becomes.
		j.csv, j.kind = true, spec.Kind
		return j, nil
	}
	switch filepath.Ext(name) {
	case ".csv", ".txt":
		j.csv = true
	case ".ndjson", ".jsonl", ".json":
	default:
		return nil, fmt.Errorf("import: %s: want a .csv, .txt, .ndjson, .jsonl or .json file (optionally .gz), or give its -layout", path)
	}
	if j.kind == "" {
		for _, k := range []string{"swipes", "counts", "footfall", "afc"} {
			if strings.Contains(name, k) {
				j.kind = k
				break
			}
		}
		if j.kind == "afc" {
			j.kind = "swipes"
		}
	}
	switch j.kind {
	case "swipes", "counts", "footfall":
	case "":
		return nil, fmt.Errorf("import: %s: cannot tell the kind from the name; give -kind swipes, counts or footfall", path)
	default:
		return nil, fmt.Errorf("import: -kind %q: want swipes, counts or footfall", j.kind)
	}
	return j, nil
}

// countingReader counts the bytes read from the file, before decompression,
// for the progress bar.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// openImport opens a job's file, decompressed.
func openImport(j *importJob, st *importStats) (io.Reader, func(), error) {
	f, err := os.Open(j.path)
	if err != nil {
		return nil, nil, err
	}
	var r io.Reader = countingReader{bufio.NewReaderSize(f, 1<<20), &st.read}
	if j.gzip {
		zr, err := gzip.NewReader(r)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("%s: %w", j.path, err)
		}
		return zr, func() { zr.Close(); f.Close() }, nil
	}
	return r, func() { f.Close() }, nil
}

// batcher gathers a file's records into batches and hands them on.
type batcher struct {
	ctx   context.Context
	j     *importJob
	out   chan<- importBatch
	limit int
	b     importBatch
	open  bool // b holds a record
	seq   int
}

// start opens a batch at a record of the given line, unless one is open.
func (bt *batcher) start(line int) {
	if bt.open {
		return
	}
	bt.open = true
	bt.b.firstLine = line
	if bt.j.csv {
		bt.b.body = append(bt.b.body, bt.j.header...)
	}
}

// send hands the batch on when it is full, or at the end (force).
func (bt *batcher) send(force bool) bool {
	if !bt.open || (!force && bt.b.events < bt.limit) {
		return true
	}
	bt.b.job, bt.b.seq, bt.b.final = bt.j, bt.seq, force
	select {
	case bt.out <- bt.b:
	case <-bt.ctx.Done():
		return false
	}
	bt.seq++
	bt.b, bt.open = importBatch{}, false
	return true
}

// readJob reads the records of a file the ledger does not have yet and
// sends them in batches.
func readJob(ctx context.Context, j *importJob, ledger *importLedger, batchLines int, st *importStats, out chan<- importBatch, reg *cityfile.Registry, bar *progress) error {
	r, closeFile, err := openImport(j, st)
	if err != nil {
		return err
	}
	defer closeFile()
	bt := &batcher{ctx: ctx, j: j, out: out, limit: batchLines}
	if j.csv && j.spec != nil {
		err = readRecords(ctx, j, r, ledger, bt, reg, bar)
	} else {
		err = readLines(ctx, j, r, ledger, bt)
	}
	if err != nil {
		return err
	}
	if !bt.send(true) {
		return ctx.Err()
	}
	return nil
}

// readLines sends flowd's own lines as they are (NDJSON lines rewritten
// when a zone is given).
func readLines(ctx context.Context, j *importJob, r io.Reader, ledger *importLedger, bt *batcher) error {
	br := bufio.NewReaderSize(r, 1<<20)
	line := 0
	if j.csv {
		h, err := br.ReadString('\n')
		if err != nil && err != io.EOF {
			return fmt.Errorf("%s: %w", j.path, err)
		}
		line++
		j.header = strings.TrimRight(h, "\r\n") + "\n"
		if err := checkHeader(j); err != nil {
			return err
		}
	}
	var clock *cityfile.Clock
	var jp fastjson.Parser
	if j.spec != nil && j.spec.TZ != "" {
		clock, _ = cityfile.NewClock(j.spec.TZ, false)
	}
	var long []byte // a line longer than the buffer, gathered: the server rejects it by its line limit
	for {
		l, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long, l...)
			continue
		}
		if len(long) > 0 {
			long = append(long, l...)
			l = long
		}
		if len(l) > 0 {
			line++
			if !ledger.skip(j.index, line) {
				bt.start(line)
				bt.b.lastLine = line
				var terr error
				if clock != nil {
					l, terr = clock.RetimeJSON(&jp, l)
				}
				if terr != nil {
					bt.b.rejected++
					bt.b.notes = append(bt.b.notes, fmt.Sprintf("%s:%d: field \"time\": %v", j.path, line, terr))
				} else {
					bt.b.body = append(bt.b.body, l...)
					if l[len(l)-1] != '\n' {
						bt.b.body = append(bt.b.body, '\n')
					}
					bt.b.events++
				}
				if !bt.send(false) {
					return ctx.Err()
				}
			}
		}
		long = long[:0]
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s line %d: %w", j.path, line, err)
		}
	}
}

// checkHeader decodes a CSV file's header as the server will, so that a
// header lacking columns fails the import once, listing them, rather than
// once per batch.
func checkHeader(j *importJob) error {
	r := strings.NewReader(j.header)
	var errs []ingest.LineError
	switch j.kind {
	case "swipes":
		errs, _ = ingest.DecodeSwipes(r, ingest.CSV, len(j.header)+1, func(int, *ingest.Swipe) {})
	case "counts":
		errs, _ = ingest.DecodeCounts(r, ingest.CSV, len(j.header)+1, func(int, *ingest.Count) {})
	case "footfall":
		errs, _ = ingest.DecodeFootfall(r, ingest.CSV, len(j.header)+1, func(int, *ingest.Footfall) {})
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s:1: the header of %s: %s (other layouts: -layout or -map, see docs/import.md)", j.path, j.kind, errs[0].Reason)
	}
	return nil
}

// readRecords reads a CSV file of a city's layout and sends its records as
// flowd's events.
func readRecords(ctx context.Context, j *importJob, r io.Reader, ledger *importLedger, bt *batcher, reg *cityfile.Registry, bar *progress) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.ReuseRecord = true
	var header []string
	if j.spec.HasHeader() {
		h, err := cr.Read()
		if err == io.EOF {
			return fmt.Errorf("%s: empty file; want a header row", j.path)
		}
		if err != nil {
			return fmt.Errorf("%s: header: %w", j.path, err)
		}
		header = append([]string(nil), h...)
	}
	var conv cityfile.Converter
	var err error
	if j.spec.Layout == cityfile.LayoutFlowd {
		conv, err = cityfile.NewRetime(j.kind, j.spec.TZ, header)
	} else {
		conv, err = cityfile.New(j.spec, header, reg)
	}
	if err != nil {
		return fmt.Errorf("%s line 1: %w", j.path, err)
	}
	if w, ok := conv.(interface{ Warnings() []string }); ok && ledger.doneLine(j.index) == 0 {
		for _, msg := range w.Warnings() {
			bar.println(j.path + ": " + msg)
		}
	}
	j.header = conv.Header()
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		var line int
		var pe *csv.ParseError
		switch {
		case err == nil:
			line, _ = cr.FieldPos(0)
		case errors.As(err, &pe):
			line = pe.StartLine
		default:
			return fmt.Errorf("%s: %w", j.path, err)
		}
		if ledger.skip(j.index, line) {
			continue
		}
		bt.start(line)
		if pe != nil {
			bt.b.rejected++
			bt.b.notes = append(bt.b.notes, fmt.Sprintf("%s:%d: %v", j.path, pe.Line, pe.Err))
		} else {
			var res cityfile.Result
			bt.b.body, res = conv.Convert(line, rec, bt.b.body)
			for range res.Events {
				bt.b.srcLines = append(bt.b.srcLines, line)
			}
			bt.b.events += res.Events
			bt.b.missing += len(res.Missing)
			bt.b.rejected += len(res.Rejected)
			for _, p := range res.Rejected {
				bt.b.notes = append(bt.b.notes, fmt.Sprintf("%s:%d: field %q value %q: %s", j.path, p.Line, p.Field, p.Value, p.Reason))
			}
			for _, p := range res.Missing {
				bt.b.gaps = append(bt.b.gaps, fmt.Sprintf("%s:%d: column %q value %q: missing (not counted as 0)", j.path, p.Line, p.Field, p.Value))
			}
		}
		bt.b.lastLine = line
		if !bt.send(false) {
			return ctx.Err()
		}
	}
}

// postBatch sends one batch, retrying while the server is busy or its disk
// is full, prints its rejected lines with file line numbers, and records
// in the ledger what the server acknowledged. A batch is retried only when
// the server surely did not keep it: an answer that says so, or a
// connection that never opened. Any other failure leaves the batch marked
// in flight: whether the server kept it is unknown (see -inflight).
func postBatch(ctx context.Context, client *http.Client, url, token string, b importBatch, st *importStats, bar *progress, shown *shownLines, ledger *importLedger) error {
	if b.events == 0 {
		// Nothing for the server: only what the reader found.
		return ledger.acknowledged(b, 0, 0, func() { tally(b, nil, st, bar, shown) })
	}
	ctype := "application/x-ndjson"
	if b.job.csv {
		ctype = "text/csv"
	}
	if err := ledger.sending(b); err != nil {
		return err
	}
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, "POST", url+"/api/v1/ingest/"+b.job.kind, strings.NewReader(string(b.body)))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", ctype)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() != nil || !notSent(err) {
				return fmt.Errorf("%s lines %d-%d: the server did not answer: %w", b.job.path, b.firstLine, b.lastLine, err)
			}
			// A few seconds ride out a restart; past them the import stops,
			// resumable, rather than wait on a server that is gone.
			if attempt >= 5 {
				ledger.refused(b) // never sent
				return fmt.Errorf("%s lines %d-%d: the server is no longer reachable at %s: %w", b.job.path, b.firstLine, b.lastLine, url, err)
			}
		} else {
			data, _ := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
			resp.Body.Close()
			var a ingest.Answer
			json.Unmarshal(data, &a)
			switch {
			case resp.StatusCode == 200 || (resp.StatusCode == 400 && a.Error == ""):
				return ledger.acknowledged(b, int64(a.Accepted), int64(a.RejectedTotal), func() { tally(b, &a, st, bar, shown) })
			case resp.StatusCode == 429 || resp.StatusCode == 503:
				if attempt >= 30 {
					ledger.refused(b)
					return fmt.Errorf("%s lines %d-%d: server still busy after %d tries: %s", b.job.path, b.firstLine, b.lastLine, attempt+1, a.Error)
				}
			default:
				ledger.refused(b)
				return fmt.Errorf("%s lines %d-%d: %s: %s", b.job.path, b.firstLine, b.lastLine, resp.Status, strings.TrimSpace(string(data)))
			}
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return fmt.Errorf("%s lines %d-%d: abandoned while waiting to retry", b.job.path, b.firstLine, b.lastLine)
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// notSent reports whether a request failed before a connection carried it.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// tally counts an acknowledged batch and prints its problems: the
// server's rejected lines, numbered as in the file, and what the reader
// found itself.
func tally(b importBatch, a *ingest.Answer, st *importStats, bar *progress, shown *shownLines) {
	st.refused.Add(int64(b.rejected))
	st.missing.Add(int64(b.missing))
	for _, n := range b.notes {
		if shown.rejected.Add(1) <= shown.max {
			bar.println(n)
		}
	}
	for _, n := range b.gaps {
		if shown.missing.Add(1) <= shown.max {
			bar.println(n)
		}
	}
	if a == nil {
		return
	}
	st.accepted.Add(int64(a.Accepted))
	st.refused.Add(int64(a.RejectedTotal))
	for _, r := range a.Rejected {
		if shown.rejected.Add(1) > shown.max {
			break
		}
		// The server numbers the lines of the batch, its header included
		// for CSV.
		i := r.Line - 1
		if b.job.csv {
			i--
		}
		fileLine := b.firstLine + i
		if b.srcLines != nil && i >= 0 && i < len(b.srcLines) {
			fileLine = b.srcLines[i]
		}
		bar.println(fmt.Sprintf("%s:%d: field %q value %q: %s", b.job.path, fileLine, r.Field, r.Value, r.Reason))
	}
}

// shownLines counts the rejected lines and missing cells printed, each up
// to max.
type shownLines struct {
	rejected, missing atomic.Int64
	max               int64
}

// fetchRegistry reads the server's sensors (for counts) or sites (for
// footfall) as id and name pairs, to map a wide table's header names.
func fetchRegistry(ctx context.Context, client *http.Client, url, token, kind string) (*cityfile.Registry, error) {
	what := "sensors"
	if kind == "footfall" {
		what = "sites"
	}
	req, err := http.NewRequestWithContext(ctx, "GET", url+"/api/v1/"+what, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading the server's %s: %w", what, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("reading the server's %s: %s (a token with the read role lets import map names)", what, resp.Status)
	}
	var pairs [][2]string
	if kind == "footfall" {
		var fc struct {
			Features []struct {
				Properties struct {
					ID   string `json:"id"`
					Name string `json:"name"`
				} `json:"properties"`
			} `json:"features"`
		}
		if err := json.Unmarshal(data, &fc); err != nil {
			return nil, fmt.Errorf("reading the server's sites: %w", err)
		}
		for _, f := range fc.Features {
			pairs = append(pairs, [2]string{f.Properties.ID, f.Properties.Name})
		}
	} else {
		var list []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		}
		if err := json.Unmarshal(data, &list); err != nil {
			return nil, fmt.Errorf("reading the server's sensors: %w", err)
		}
		for _, s := range list {
			pairs = append(pairs, [2]string{s.ID, s.Name})
		}
	}
	return cityfile.NewRegistry(pairs), nil
}

// progress draws a bar of bytes read on a terminal, or a line every few
// seconds elsewhere.
type progress struct {
	w     *os.File
	st    *importStats
	start time.Time
	tty   bool
	done  chan struct{}
	once  sync.Once
	mu    sync.Mutex
}

func newProgress(w *os.File, st *importStats) *progress {
	fi, err := w.Stat()
	tty := err == nil && fi.Mode()&os.ModeCharDevice != 0
	return &progress{w: w, st: st, start: time.Now(), tty: tty, done: make(chan struct{})}
}

func (p *progress) elapsed() time.Duration { return time.Since(p.start) }

func (p *progress) run(ctx context.Context) {
	every := 200 * time.Millisecond
	if !p.tty {
		every = 2 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.draw(false)
		case <-p.done:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (p *progress) finish() {
	p.once.Do(func() {
		close(p.done)
		p.draw(true)
	})
}

// println writes a line of its own: on a terminal it first clears the
// bar, which the next tick draws again; elsewhere no escape is written.
func (p *progress) println(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		line = "\r\033[K" + line
	}
	fmt.Fprintln(p.w, line)
}

func (p *progress) draw(final bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	read, total := p.st.read.Load(), max(p.st.total.Load(), 1)
	frac := min(float64(read)/float64(total), 1)
	secs := p.elapsed().Seconds()
	rate := float64(p.st.accepted.Load()) / max(secs, 1e-3)
	eta := "--"
	if frac > 0 && !final {
		eta = (time.Duration(secs*(1-frac)/frac) * time.Second).Round(time.Second).String()
	}
	const width = 30
	filled := int(frac * width)
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", width-filled)
	if filled < width {
		bar = bar[:filled] + ">" + bar[filled+1:]
	}
	line := fmt.Sprintf("[%s] %3.0f%% %.1f/%.1f MB  %d events  %.0f events/s  ETA %s",
		bar, 100*frac, float64(read)/1e6, float64(total)/1e6, p.st.accepted.Load(), rate, eta)
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		if final {
			fmt.Fprintln(p.w)
		}
		return
	}
	fmt.Fprintln(p.w, line)
}

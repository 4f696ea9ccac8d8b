package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flowd/flowd/ingest"
)

// importJob is one file of `flowd import`.
type importJob struct {
	path   string
	kind   string // swipes, counts or footfall
	csv    bool
	gzip   bool
	header string // CSV header line, sent in front of every batch
}

// importBatch is a run of lines of one file, posted as one request.
type importBatch struct {
	job       *importJob
	firstLine int // file line number of the batch's first data line
	body      []byte
	lines     int
}

type importStats struct {
	read, total       atomic.Int64 // bytes of the files
	accepted, refused atomic.Int64
}

// importCmd serves `flowd import`: it streams history files (NDJSON or CSV,
// plain or .gz) to a running flowd in batches, with a progress bar, and
// lists every rejected line by file and line number.
func importCmd(args []string) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	url := fs.String("url", "http://127.0.0.1:8080", "flowd to import into")
	token := fs.String("token", os.Getenv("FLOWD_TOKEN"), "bearer token with the ingest role (default $FLOWD_TOKEN)")
	kind := fs.String("kind", "", "swipes, counts or footfall (default: from the file name)")
	batchLines := fs.Int("batch", 10000, "lines per request")
	senders := fs.Int("senders", 1, "requests in flight; more than 1 posts batches out of order, which breaks trip matching of swipes (a tap-out whose tap-in arrives later counts as unmatched)")
	maxErrors := fs.Int("show-errors", 20, "rejected lines to print")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: flowd import [flags] FILE...\n\nFiles are NDJSON (.ndjson, .jsonl, .json) or CSV with a header row (.csv), optionally .gz;\ntheir kind comes from -kind or a name containing swipes, counts, footfall or afc.\nExit status: 0 when every line was kept, 2 when some were rejected, 3 when none\nwas kept, 1 when the import failed (a server not reachable, a file not readable).")
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
	var jobs []*importJob
	st := &importStats{}
	for _, p := range fs.Args() {
		j, err := newImportJob(p, *kind)
		if err != nil {
			return err
		}
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st.total.Add(fi.Size())
		jobs = append(jobs, j)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	client := &http.Client{Timeout: 5 * time.Minute}
	if err := reachable(ctx, client, *url); err != nil {
		return err
	}

	batches := make(chan importBatch, *senders)
	var shown atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	bar := newProgress(os.Stderr, st)
	for range *senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				if err := postBatch(ctx, client, *url, *token, b, st, bar, &shown, int64(*maxErrors)); err != nil {
					errOnce.Do(func() { firstErr = err; stop() })
				}
			}
		}()
	}
	go bar.run(ctx)
	var readErr error
	for _, j := range jobs {
		if readErr = readJob(ctx, j, *batchLines, st, batches); readErr != nil {
			break
		}
	}
	close(batches)
	wg.Wait()
	failed := firstErr != nil || readErr != nil || ctx.Err() != nil
	bar.finish()
	verb := "imported"
	if failed {
		verb = "stopped: kept"
	}
	fmt.Fprintf(os.Stderr, "%s %d events from %d files in %v; %d lines rejected\n",
		verb, st.accepted.Load(), len(jobs), bar.elapsed().Round(time.Millisecond), st.refused.Load())
	switch {
	case readErr != nil && ctx.Err() == nil:
		return readErr
	case firstErr != nil:
		return firstErr
	case ctx.Err() != nil:
		return ctx.Err()
	case st.accepted.Load() == 0 && st.refused.Load() > 0:
		return exitError{3, "no line was kept"}
	case st.refused.Load() > 0:
		return exitError{2, fmt.Sprintf("%d lines were rejected", st.refused.Load())}
	}
	return nil
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

func newImportJob(path, kind string) (*importJob, error) {
	j := &importJob{path: path, kind: kind}
	name := strings.ToLower(filepath.Base(path))
	if n, ok := strings.CutSuffix(name, ".gz"); ok {
		j.gzip, name = true, n
	}
	switch filepath.Ext(name) {
	case ".csv":
		j.csv = true
	case ".ndjson", ".jsonl", ".json":
	default:
		return nil, fmt.Errorf("import: %s: want a .csv, .ndjson, .jsonl or .json file (optionally .gz)", path)
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

func readJob(ctx context.Context, j *importJob, batchLines int, st *importStats, out chan<- importBatch) error {
	f, err := os.Open(j.path)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = countingReader{bufio.NewReaderSize(f, 1<<20), &st.read}
	if j.gzip {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return fmt.Errorf("%s: %w", j.path, err)
		}
		defer zr.Close()
		r = zr
	}
	br := bufio.NewReaderSize(r, 1<<20)
	line := 0
	if j.csv {
		h, err := br.ReadString('\n')
		if err != nil && err != io.EOF {
			return fmt.Errorf("%s: %w", j.path, err)
		}
		line++
		j.header = strings.TrimRight(h, "\r\n") + "\n"
	}
	b := importBatch{job: j, firstLine: line + 1}
	send := func() bool {
		if b.lines == 0 {
			return true
		}
		select {
		case out <- b:
		case <-ctx.Done():
			return false
		}
		b = importBatch{job: j, firstLine: line + 1}
		return true
	}
	partial := false // the previous read ended inside a line
	for {
		l, err := br.ReadSlice('\n')
		if len(l) > 0 {
			if !partial {
				line++
				if b.lines == 0 && j.csv {
					b.body = append(b.body, j.header...)
				}
				b.lines++
			}
			b.body = append(b.body, l...)
			// A line longer than the buffer arrives in pieces; the server
			// rejects it by its line limit.
			partial = err == bufio.ErrBufferFull
			if !partial && l[len(l)-1] != '\n' {
				b.body = append(b.body, '\n')
			}
			if !partial && b.lines >= batchLines && !send() {
				return ctx.Err()
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s line %d: %w", j.path, line, err)
		}
	}
	if !send() {
		return ctx.Err()
	}
	return nil
}

// postBatch sends one batch, retrying while the server is busy or its disk
// is full, and prints its rejected lines with file line numbers.
func postBatch(ctx context.Context, client *http.Client, url, token string, b importBatch, st *importStats, bar *progress, shown *atomic.Int64, maxShown int64) error {
	ctype := "application/x-ndjson"
	if b.job.csv {
		ctype = "text/csv"
	}
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, "POST", url+"/api/v1/ingest/"+b.job.kind, bytes.NewReader(b.body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", ctype)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if attempt >= 8 {
				return err
			}
		} else {
			data, _ := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
			resp.Body.Close()
			var a ingest.Answer
			json.Unmarshal(data, &a)
			switch {
			case resp.StatusCode == 200 || (resp.StatusCode == 400 && a.Error == ""):
				st.accepted.Add(int64(a.Accepted))
				st.refused.Add(int64(a.RejectedTotal))
				for _, r := range a.Rejected {
					if shown.Add(1) > maxShown {
						break
					}
					// The server numbers the lines of the batch, its header
					// included for CSV.
					fileLine := b.firstLine + r.Line - 1
					if b.job.csv {
						fileLine--
					}
					bar.println(fmt.Sprintf("%s:%d: field %q value %q: %s", b.job.path, fileLine, r.Field, r.Value, r.Reason))
				}
				return nil
			case resp.StatusCode == 429 || resp.StatusCode == 503:
				if attempt >= 30 {
					return fmt.Errorf("%s lines %d-%d: server still busy after %d tries: %s", b.job.path, b.firstLine, b.firstLine+b.lines-1, attempt+1, a.Error)
				}
			default:
				return fmt.Errorf("%s lines %d-%d: %s: %s", b.job.path, b.firstLine, b.firstLine+b.lines-1, resp.Status, strings.TrimSpace(string(data)))
			}
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(2*backoff, 10*time.Second)
	}
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
	if p.tty {
		line = "\r\033[K" + line
	}
	fmt.Fprintln(p.w, line)
}

func (p *progress) draw(final bool) {
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

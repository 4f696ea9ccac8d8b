package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/flowd/flowd/cityfile"
)

// importLedger is what an import has had acknowledged, kept in a file under
// -state so that an interrupted import resumes where it stopped and ends
// with the totals an uninterrupted one would have.
//
// The server answers a batch only once it is durable, so a batch is done
// exactly when its answer came: the ledger records it then (after the
// answer, before the next batch is counted). A batch is marked in flight
// before it is sent; the first interrupt lets every batch in flight get its
// answer, so the mark is cleared again. Only a second interrupt, a killed
// process or a lost connection leaves a mark, and then whether the server
// kept that batch is unknown: resuming asks which (-inflight).
type importLedger struct {
	mu    sync.Mutex
	path  string
	state ledgerState
	next  []int              // per file: the next batch whose answer moves Done
	ahead []map[int]lineSpan // per file: batches answered before their turn
	// kept says the ledger is on disk: this run sent a batch, or resumes.
	kept bool
	// before holds, per file, the spans an earlier run had acknowledged
	// past its Done.
	before [][]lineSpan
}

// ledgerState is the ledger file's content.
type ledgerState struct {
	URL      string       `json:"url"`
	Files    []ledgerFile `json:"files"`
	Accepted int64        `json:"accepted"`
	Rejected int64        `json:"rejected"`
	Missing  int64        `json:"missing"`
	InFlight []lineSpan   `json:"in_flight,omitempty"`
}

// ledgerFile is one input file and how far it is done.
type ledgerFile struct {
	Path    string    `json:"path"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mod_time"`
	// Done is the last source line whose record is acknowledged, with all
	// before it; -1 once the whole file is.
	Done int `json:"done"`
	// Acked lists the line spans acknowledged past Done (with several
	// senders, a later batch may be answered before an earlier one).
	Acked []lineSpan `json:"acked,omitempty"`
}

// lineSpan is a batch's lines in its file; in flight, also what it holds.
type lineSpan struct {
	File  int  `json:"file"`
	Seq   int  `json:"-"`
	From  int  `json:"from"`
	To    int  `json:"to"`
	Final bool `json:"-"`
	// Events the batch sent, and the rejected records and missing cells
	// the importer found in its lines.
	Events   int `json:"events,omitempty"`
	Rejected int `json:"rejected,omitempty"`
	Missing  int `json:"missing,omitempty"`
}

// defaultStateDir is where import keeps its ledgers: $XDG_STATE_HOME/flowd
// or ~/.local/state/flowd.
func defaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "flowd")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "flowd")
	}
	return ".flowd-import"
}

// openLedger opens the ledger of importing these files into url this way,
// resuming it when an earlier run left one (unless fresh).
func openLedger(dir, url, kind string, paths []string, spec *cityfile.Spec, fresh bool) (*importLedger, error) {
	h := sha256.New()
	fmt.Fprintln(h, url)
	fmt.Fprintln(h, kind)
	if spec != nil {
		b, _ := json.Marshal(spec)
		h.Write(b)
	}
	var files []ledgerFile
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		fmt.Fprintln(h, abs)
		files = append(files, ledgerFile{Path: abs, Size: fi.Size(), ModTime: fi.ModTime().UTC()})
	}
	l := &importLedger{
		path:  filepath.Join(dir, "import-"+hex.EncodeToString(h.Sum(nil))[:16]+".json"),
		state: ledgerState{URL: url, Files: files},
		next:  make([]int, len(files)),
		ahead: make([]map[int]lineSpan, len(files)),
	}
	for i := range l.ahead {
		l.ahead[i] = map[int]lineSpan{}
	}
	data, err := os.ReadFile(l.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return l, nil
	case err != nil:
		return nil, fmt.Errorf("import: reading the progress of an earlier run: %w", err)
	case fresh:
		return l, os.Remove(l.path)
	}
	var old ledgerState
	if err := json.Unmarshal(data, &old); err != nil || len(old.Files) != len(files) {
		return nil, fmt.Errorf("import: %s holds no progress of these files (%v); -fresh starts over", l.path, err)
	}
	for i, f := range old.Files {
		if f.Size != files[i].Size || !f.ModTime.Equal(files[i].ModTime) {
			return nil, fmt.Errorf("import: %s changed since the interrupted import (%d bytes, modified %v; then %d bytes, %v): its progress no longer applies; -fresh starts over",
				files[i].Path, files[i].Size, files[i].ModTime, f.Size, f.ModTime)
		}
	}
	l.state, l.kept = old, true
	return l, nil
}

// keepBefore notes the spans acknowledged by earlier runs, which this
// run's answers must not drop from the ledger.
func (l *importLedger) keepBefore() {
	l.before = make([][]lineSpan, len(l.state.Files))
	for i, f := range l.state.Files {
		l.before[i] = append([]lineSpan(nil), f.Acked...)
	}
}

// settleInFlight deals with batches a stopped import sent without an
// answer: how says whether the server kept them (skip) or not (resend).
func (l *importLedger) settleInFlight(how string) error {
	if len(l.state.InFlight) == 0 {
		l.keepBefore()
		return nil
	}
	if how == "" {
		var b strings.Builder
		for _, s := range l.state.InFlight {
			fmt.Fprintf(&b, "\n  %s lines %d-%d", l.state.Files[s.File].Path, s.From, s.To)
		}
		return fmt.Errorf("import: the earlier run was stopped while these batches awaited the server's answer, so whether it kept them is unknown:%s\n"+
			"see whether their events are in flowd (a series over their times), then run again with -inflight skip if they are or -inflight resend if not", b.String())
	}
	for _, s := range l.state.InFlight {
		if how == "skip" {
			// The server's answer, with any lines it refused, was lost:
			// its events are counted as kept.
			f := &l.state.Files[s.File]
			f.Acked = append(f.Acked, s)
			l.state.Accepted += int64(s.Events)
			l.state.Rejected += int64(s.Rejected)
			l.state.Missing += int64(s.Missing)
			fmt.Fprintf(os.Stderr, "import: -inflight skip: %s lines %d-%d taken as kept, all %d events (the server's answer, with any line it refused, was lost)\n",
				l.state.Files[s.File].Path, s.From, s.To, s.Events)
		}
	}
	l.state.InFlight = nil
	l.keepBefore()
	return nil
}

// doneLine returns the last line of file i already imported, -1 for all.
func (l *importLedger) doneLine(i int) int { return l.state.Files[i].Done }

// skip reports whether the record at line of file i was imported before.
func (l *importLedger) skip(i, line int) bool {
	f := &l.state.Files[i]
	if f.Done < 0 || line <= f.Done {
		return true
	}
	for _, s := range f.Acked {
		if line >= s.From && line <= s.To {
			return true
		}
	}
	return false
}

func spanOf(b importBatch) lineSpan {
	return lineSpan{File: b.job.index, Seq: b.seq, From: b.firstLine, To: b.lastLine, Final: b.final,
		Events: b.events, Rejected: b.rejected, Missing: b.missing}
}

// sending marks a batch in flight, durably, before it is posted.
func (l *importLedger) sending(b importBatch) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.state.InFlight = append(l.state.InFlight, spanOf(b))
	l.kept = true
	return l.saveLocked()
}

// refused clears the mark of a batch the server answered without keeping.
func (l *importLedger) refused(b importBatch) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dropInFlight(spanOf(b))
	l.saveLocked()
}

func (l *importLedger) dropInFlight(s lineSpan) {
	for k, f := range l.state.InFlight {
		if f.File == s.File && f.From == s.From {
			l.state.InFlight = append(l.state.InFlight[:k], l.state.InFlight[k+1:]...)
			return
		}
	}
}

// acknowledged records a batch the server answered, with what it kept and
// refused; count adds it to the run's figures under the same lock, so that
// the figures and the ledger never disagree.
func (l *importLedger) acknowledged(b importBatch, accepted, rejected int64, count func()) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := spanOf(b)
	l.dropInFlight(s)
	count()
	l.state.Accepted += accepted
	l.state.Rejected += rejected + int64(b.rejected)
	l.state.Missing += int64(b.missing)
	f := &l.state.Files[s.File]
	l.ahead[s.File][s.Seq] = s
	for {
		n, ok := l.ahead[s.File][l.next[s.File]]
		if !ok {
			break
		}
		delete(l.ahead[s.File], n.Seq)
		l.next[s.File]++
		f.Done = n.To
		if n.Final {
			f.Done = -1
		}
	}
	f.Acked = f.Acked[:0]
	for _, a := range l.before[s.File] {
		if f.Done >= 0 && a.To > f.Done {
			f.Acked = append(f.Acked, a)
		}
	}
	for _, a := range l.ahead[s.File] {
		f.Acked = append(f.Acked, a)
	}
	l.kept = true
	return l.saveLocked()
}

// save writes the ledger of an import that stopped, unless it stopped
// before anything was sent (a header that did not fit, say).
func (l *importLedger) save() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.kept {
		return nil
	}
	return l.saveLocked()
}

// saveLocked writes the ledger to a temporary file, syncs it and renames
// it over the last, so that a crash leaves one whole ledger or the other.
func (l *importLedger) saveLocked() error {
	if err := os.MkdirAll(filepath.Dir(l.path), 0o700); err != nil {
		return fmt.Errorf("import: keeping progress under -state: %w", err)
	}
	data, _ := json.MarshalIndent(l.state, "", "  ")
	tmp := l.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("import: keeping progress under -state: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, l.path)
	}
	if err != nil {
		return fmt.Errorf("import: keeping progress under -state: %w", err)
	}
	return nil
}

// finish forgets the ledger of an import that ran to its end.
func (l *importLedger) finish() error {
	err := os.Remove(l.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

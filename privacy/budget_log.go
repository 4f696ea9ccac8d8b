package privacy

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// budgetLog is the file the ledger writes each charge to before the answer
// goes out, so that a restart does not hand every token a fresh budget: an
// attacker must not be able to reset it by waiting for (or causing) one.
// It is append-only within a day, one line a charge,
//
//	DAY CALLER COST SHAPE
//
// DAY the UTC day (unix days), CALLER the token's name as a Go-quoted
// ASCII string (a space as \x20), COST the ε charged and SHAPE the hex id of the answer's figures.
// Each line is fsynced before the charge counts. A new day truncates it:
// a crash in between leaves the old day's lines, which the next day's
// first charge sets aside as the ledger does in memory. docs/privacy.md
// describes it too.
type budgetLog struct {
	path string
	f    *os.File
}

// KeepBudgets makes the layer's budgets survive restarts: it loads the
// charges of the latest day the file at path holds (a torn last line, from
// a crash while writing it, is dropped: its answer never went out), and
// from now on writes every charge there, fsynced, before the answer is
// released. A line that cannot be read is an error naming it. With no
// budget (Policy.Budget 0) nothing is refused, and nothing is kept.
func (l *Layer) KeepBudgets(path string) error {
	if l.p.Budget == 0 {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("privacy: budgets: %w", err)
	}
	whole := data
	if i := bytes.LastIndexByte(data, '\n'); i+1 < len(data) {
		whole = data[:i+1] // a torn last line
	}
	lg := &l.ledger
	lg.mu.Lock()
	defer lg.mu.Unlock()
	for n, line := range strings.Split(strings.TrimSuffix(string(whole), "\n"), "\n") {
		if line == "" {
			continue
		}
		if err := lg.replay(line); err != nil {
			return fmt.Errorf("privacy: budgets: %s line %d %q: %w", path, n+1, line, err)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("privacy: budgets: %w", err)
	}
	if len(whole) < len(data) {
		err = f.Truncate(int64(len(whole)))
	}
	if err == nil {
		_, err = f.Seek(int64(len(whole)), 0)
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("privacy: budgets: %w", err)
	}
	lg.file = &budgetLog{path: path, f: f}
	return nil
}

// Close closes the file of the budgets, if KeepBudgets opened one.
func (l *Layer) Close() error {
	lg := &l.ledger
	lg.mu.Lock()
	defer lg.mu.Unlock()
	if lg.file == nil {
		return nil
	}
	err := lg.file.f.Close()
	lg.file = nil
	return err
}

// replay applies one line of the file to the ledger: the lines of a later
// day than the ledger's replace what it holds, those of an earlier one are
// passed over.
func (lg *ledger) replay(line string) error {
	fields := strings.Fields(line)
	if len(fields) != 4 {
		return errors.New("want DAY CALLER COST SHAPE")
	}
	day, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil {
		return fmt.Errorf("day %q: not a number", fields[0])
	}
	caller, err := strconv.Unquote(fields[1])
	if err != nil {
		return fmt.Errorf("caller %s: not a quoted string", fields[1])
	}
	cost, err := strconv.ParseFloat(fields[2], 64)
	if err != nil || cost < 0 {
		return fmt.Errorf("cost %q: not an ε", fields[2])
	}
	shape, err := strconv.ParseUint(fields[3], 16, 64)
	if err != nil {
		return fmt.Errorf("shape %q: not a hex id", fields[3])
	}
	switch {
	case day < lg.day:
		return nil
	case day > lg.day || lg.accounts == nil:
		lg.day, lg.accounts = day, map[string]*account{}
	}
	a := lg.account(caller)
	a.spent += cost
	a.paid[shape] = true
	return nil
}

// write records one charge, durably, before it counts. The first charge of
// a new day empties the file first.
func (b *budgetLog) write(newDay bool, day int64, caller string, cost float64, shape uint64) error {
	if newDay {
		if err := b.f.Truncate(0); err != nil {
			return fmt.Errorf("privacy: budgets: %w", err)
		}
		if _, err := b.f.Seek(0, 0); err != nil {
			return fmt.Errorf("privacy: budgets: %w", err)
		}
	}
	// A space in a name is escaped too, so that it reads back as one field.
	name := strings.ReplaceAll(strconv.QuoteToASCII(caller), " ", `\x20`)
	line := fmt.Sprintf("%d %s %s %x\n", day, name, strconv.FormatFloat(cost, 'g', -1, 64), shape)
	if _, err := b.f.WriteString(line); err != nil {
		return fmt.Errorf("privacy: budgets: writing %s: %w", b.path, err)
	}
	if err := b.f.Sync(); err != nil {
		return fmt.Errorf("privacy: budgets: syncing %s: %w", b.path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

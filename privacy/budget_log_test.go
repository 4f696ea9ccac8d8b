package privacy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/vocab"
)

// TestBudgetsKeptAcrossRestarts: a layer that keeps its budgets in a file
// and is built again over it (a restart) still refuses a token that spent
// its day's budget, still answers what it paid for at no cost, drops a
// torn last line, refuses to start over a damaged one naming it, and
// starts the file afresh on a new day.
func TestBudgetsKeptAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "privacy-budgets.log")
	two := rangesOf(t, cellA, cellB)
	open := func() *Layer {
		t.Helper()
		l := testLayer(t, func(p *Policy) { p.Budget = 1 })
		if err := l.KeepBudgets(path); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	ask := func(l *Layer, caller string, at time.Time, h int64) error {
		r := l.For(caller, at)
		r.Count(Figure{vocab.SwipesIn, r.Area(two), nil, hour(h), hour(h + 1)}, 50)
		return r.Charge()
	}
	l := open()
	for _, h := range []int64{0, 1} {
		if err := ask(l, "planner one", now, h); err != nil {
			t.Fatalf("within the budget: %v", err)
		}
	}
	l.Close()

	// A crash while a charge was written leaves a torn line.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`19787 "planner one" 0.`)
	f.Close()
	l = open()
	var be *BudgetError
	if err := ask(l, "planner one", now, 2); !errors.As(err, &be) || be.Spent != 1 {
		t.Fatalf("after a restart, past the budget: %v, want a budget error having spent 1", err)
	}
	if err := ask(l, "planner one", now, 1); err != nil {
		t.Errorf("after a restart, an answer already paid for: %v", err)
	}
	if err := ask(l, "other", now, 2); err != nil {
		t.Errorf("after a restart, another token: %v", err)
	}
	l.Close()
	data, _ := os.ReadFile(path)
	if lines := strings.Split(strings.TrimSpace(string(data)), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], `19787 "planner\x20one" 0.5 `) {
		t.Errorf("the file holds %q: want three whole lines, the torn one dropped", data)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}

	// The next day starts the file again.
	l = open()
	if err := ask(l, "planner one", now.Add(24*time.Hour), 2); err != nil {
		t.Errorf("the next day: %v", err)
	}
	l.Close()
	if data, _ := os.ReadFile(path); strings.Count(string(data), "\n") != 1 || !strings.HasPrefix(string(data), "19788 ") {
		t.Errorf("the next day the file holds %q: want its one charge", data)
	}

	// A damaged line is not skipped: that would hand back its ε.
	os.WriteFile(path, []byte("19788 \"planner\\x20one\" 0.5 a1\n19788 planner 0.5 a2\n"), 0o600)
	err := testLayer(t, func(p *Policy) { p.Budget = 1 }).KeepBudgets(path)
	if err == nil || !strings.Contains(err.Error(), `line 2 "19788 planner 0.5 a2": caller planner: not a quoted string`) {
		t.Errorf("a damaged line: %v", err)
	}
}

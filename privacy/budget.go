package privacy

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// ledger holds what each caller has spent today (UTC) and the answers it
// was charged for, so that asking again for the same figures, which come
// back the same, costs nothing. Kept in memory only, a restart would begin
// a new day's accounts; KeepBudgets gives it a file it writes each charge
// to first.
type ledger struct {
	mu       sync.Mutex
	day      int64
	accounts map[string]*account
	file     *budgetLog // nil: in memory only
	// newDay says that the file still holds an earlier day's charges.
	newDay bool
}

type account struct {
	spent float64
	paid  map[uint64]bool // shapes charged today
}

// BudgetError is an answer refused because it would take the caller past
// its budget; the API answers it 429.
type BudgetError struct {
	Caller              string
	Cost, Spent, Budget float64
	// Renews is when the day's budget starts again.
	Renews time.Time
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("token %q has spent ε %.3g of its daily privacy budget of %.3g; this answer would cost %.3g more. "+
		"The budget renews at %s; figures already released to it today, and figures of one cell over one aligned bin, cost nothing",
		e.Caller, e.Spent, e.Budget, e.Cost, e.Renews.Format(time.RFC3339))
}

// Charge works out what the answer cost, ε times the most figures outside
// the pyramid one event is in, per metric (at least what Within said), and takes it from the caller's
// budget for today; an answer with the same figures as one the caller was
// charged for today is free. Past the budget it returns a *BudgetError and
// charges nothing.
func (r *Release) Charge() error {
	if r.exact || len(r.figs) == 0 {
		return nil
	}
	byMetric := map[string][]figure{}
	var shape uint64
	for _, f := range r.figs {
		byMetric[f.metric] = append(byMetric[f.metric], f)
		// A sum is the same whatever order the figures came in, so the
		// same figures asked through another route are the same shape.
		shape += f.id*0x9e3779b97f4a7c15 | 1
	}
	overlap := 0
	for metric, figs := range byMetric {
		overlap += max(maxOverlap(figs), r.within[metric])
	}
	cost := r.l.p.Epsilon * float64(overlap)
	return r.l.ledger.charge(r, shape, cost)
}

func (lg *ledger) charge(r *Release, shape uint64, cost float64) error {
	day := r.now / 1440
	lg.mu.Lock()
	defer lg.mu.Unlock()
	if day != lg.day || lg.accounts == nil {
		lg.newDay = true
		lg.day, lg.accounts = day, map[string]*account{}
	}
	a := lg.account(r.caller)
	r.spent = a.spent
	if a.paid[shape] {
		return nil
	}
	budget := r.l.p.Budget
	if budget > 0 && a.spent+cost > budget+1e-9 {
		return &BudgetError{Caller: r.caller, Cost: cost, Spent: a.spent, Budget: budget, Renews: time.Unix((day+1)*86400, 0).UTC()}
	}
	if lg.file != nil && budget > 0 {
		if err := lg.file.write(lg.newDay, day, r.caller, cost, shape); err != nil {
			return err
		}
		lg.newDay = false
	}
	a.spent += cost
	if budget > 0 {
		// Each shape kept cost at least ε, so the budget bounds them;
		// without one they are not kept, as nothing is refused.
		a.paid[shape] = true
	}
	r.cost, r.spent = cost, a.spent
	return nil
}

// spentBy returns what caller has spent on day.
func (lg *ledger) spentBy(caller string, day int64) float64 {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	if a := lg.accounts[caller]; a != nil && day == lg.day {
		return a.spent
	}
	return 0
}

// account returns the caller's account of the ledger's day, opening it.
func (lg *ledger) account(caller string) *account {
	a := lg.accounts[caller]
	if a == nil {
		a = &account{paid: map[uint64]bool{}}
		lg.accounts[caller] = a
	}
	return a
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

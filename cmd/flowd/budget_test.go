package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestBudgetSurvivesRestart plays an analyst who has spent the day's
// privacy budget and hopes a restart of the server (a deploy, a crash it
// can provoke) hands it a fresh one: after a SIGKILL and a start over the
// same data directory, a new answer outside the pyramid is still refused
// with 429, while an answer it paid for before is still free.
func TestBudgetSurvivesRestart(t *testing.T) {
	data := t.TempDir()
	flags := append(registryFlags(t), "-tokens", writeTokens(t), "-privacy-budget", "1")
	c := startFlowd(t, data, flags...)
	day := time.Now().UTC().Truncate(24 * time.Hour)
	// Two cells side by side, over an hour two days back: an area of two
	// cells is outside the pyramid, so each answer costs ε = 0.5.
	a := cellOf(t, 30.2500, 120.1500, 9)
	b := a.GridDisk(1)[1]
	ask := func(c *child, h int) response {
		from := day.Add(-48*time.Hour + time.Duration(h)*time.Hour)
		return authDo(t, "GET", fmt.Sprintf("%s/api/v1/series?metric=swipes_in&cells=%s,%s&step=1h&from=%d&to=%d",
			c.url, a, b, from.Unix(), from.Add(time.Hour).Unix()), tokRead, "", nil)
	}
	for h := range 2 {
		if r := ask(c, h); r.status != 200 || !strings.Contains(string(r.body), `"cost":0.5`) {
			t.Fatalf("answer %d within the budget: %s", h, r)
		}
	}
	if r := ask(c, 2); r.status != 429 {
		t.Fatalf("past the budget: %s; want 429", r)
	}

	c.kill()
	c = startFlowd(t, data, flags...)
	r, paid := ask(c, 3), ask(c, 1)
	if time.Now().UTC().Truncate(24*time.Hour) != day {
		t.Skip("the UTC day turned during the test, which renews every budget; run it again")
	}
	if r.status != 429 || !strings.Contains(string(r.body), `token \"planner\" has spent ε 1 of its daily privacy budget of 1`) {
		t.Errorf("after a restart, a new answer: %s; want 429 naming the spent budget", r)
	}
	if paid.status != 200 || !strings.Contains(string(paid.body), `"cost":0,"spent":1,`) {
		t.Errorf("after a restart, an answer paid for before: %s; want it free", paid)
	}
}

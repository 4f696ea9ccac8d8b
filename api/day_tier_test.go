package api_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/flowd/flowd/api"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/internal/flowdtest"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

// A window of whole UTC days reads the day tier, a row per cell and day,
// and answers what the hours of the window sum to; a window with hours
// at its edges answers the same sums whichever tiers it reads, and so
// does top.
func TestDensityOfWholeDaysReadsTheDayTier(t *testing.T) {
	now := time.Now().UTC()
	midnight := now.Truncate(24 * time.Hour)
	fs := flowdtest.New(t, t.TempDir(), func(*storage.Store, *geo.Registry) (api.Parts, func()) { return api.Parts{}, nil })
	fs.API.Now = func() time.Time { return now }
	id, err := fs.Store.MetricID(vocab.SwipesIn)
	if err != nil {
		t.Fatal(err)
	}
	cells := costCells()
	type bucket struct {
		cell   h3.Cell
		minute int64
		value  int64
	}
	var all []bucket
	start := midnight.Add(-40*24*time.Hour).Unix() / 60
	for h := start; h < now.Unix()/60-60; h += 60 {
		var ds []storage.Delta
		for i, c := range cells {
			b := bucket{c, h + int64(i%60), int64(1 + (i+int(h/60))%5)}
			all = append(all, b)
			ds = append(ds, storage.Delta{Key: storage.Key{Metric: id, Cell: uint64(c), Minute: b.minute}, Value: b.value})
		}
		if err := fs.Store.Add(ds); err != nil {
			t.Fatal(err)
		}
		if h%(7*1440) == 0 {
			if err := fs.Store.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	fs.Serve()
	want := func(res int, from, to int64) map[string]int64 {
		sums := map[string]int64{}
		for _, b := range all {
			if b.minute >= from && b.minute < to {
				sums[b.cell.Parent(res).String()] += b.value
			}
		}
		return sums
	}
	type answer struct {
		Tier  string
		From  time.Time
		To    time.Time
		Total int64
		Cells []struct {
			Cell  string
			Value int64
		}
	}
	ask := func(route string, res int, from, to time.Time) answer {
		t.Helper()
		path := fmt.Sprintf("/api/v1/%s?metric=swipes_in&bbox=%s&res=%d&from=%d&to=%d", route, costBBox, res, from.Unix(), to.Unix())
		if route == "top" {
			path += "&k=1000"
		}
		code, body := getStatus(t, fs.URL, path)
		if code != 200 {
			t.Fatalf("%s: %d %.300s", path, code, body)
		}
		var a answer
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			t.Fatal(err)
		}
		return a
	}
	for _, tc := range []struct {
		name     string
		from, to time.Time
		dayTier  bool
	}{
		{"30 whole days", midnight.Add(-30 * 24 * time.Hour), midnight, true},
		{"whole days to this hour", midnight.Add(-30 * 24 * time.Hour), now.Truncate(time.Hour), true},
		{"hours at both edges", midnight.Add(-30*24*time.Hour + 5*time.Hour), midnight.Add(-7 * time.Hour), false},
	} {
		for _, route := range []string{"density", "top"} {
			for _, res := range []int{7, 9} {
				a := ask(route, res, tc.from, tc.to)
				if tc.dayTier && a.Tier != "day" {
					t.Errorf("%s, %s at res %d: tier %q, want the day tier", tc.name, route, res, a.Tier)
				}
				if !a.From.Equal(tc.from) || !a.To.Equal(tc.to) {
					t.Errorf("%s, %s at res %d: answered %v to %v, want %v to %v", tc.name, route, res, a.From, a.To, tc.from, tc.to)
				}
				w := want(res, tc.from.Unix()/60, tc.to.Unix()/60)
				if len(a.Cells) != len(w) {
					t.Errorf("%s, %s at res %d (tier %s): %d cells, want %d", tc.name, route, res, a.Tier, len(a.Cells), len(w))
				}
				for _, c := range a.Cells {
					if c.Value != w[c.Cell] {
						t.Errorf("%s, %s at res %d (tier %s): cell %s = %d, want %d", tc.name, route, res, a.Tier, c.Cell, c.Value, w[c.Cell])
					}
				}
			}
		}
	}
}

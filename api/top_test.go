package api_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uber/h3-go/v4"
)

// topReply is what the tests read of a top answer.
type topReply struct {
	Res   int `json:"res"`
	Seen  int `json:"seen"`
	Cells []struct {
		Cell  string `json:"cell"`
		Value int64  `json:"value"`
	} `json:"cells"`
}

func (r topReply) pairs() []string {
	out := make([]string, len(r.Cells))
	for i, c := range r.Cells {
		out[i] = fmt.Sprintf("%s=%d", c.Cell, c.Value)
	}
	return out
}

func TestTopCellsExact(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Minute)
	s := startQueryServer(t, now)
	at := func(lat, lng float64) h3.Cell { return h3.LatLngToCell(h3.LatLng{Lat: lat, Lng: lng}, 9) }
	west, mid, east, far := at(30.25, 120.10), at(30.25, 120.15), at(30.25, 120.20), at(31.20, 121.45)
	tie := at(30.30, 120.15)
	s.postSwipes(t, []swipe{
		{west.LatLng(), now.Add(-3 * time.Minute), 5},
		{west.LatLng(), now.Add(-10 * time.Minute), 4}, // 9 in the last 15 minutes
		{mid.LatLng(), now.Add(-1 * time.Minute), 12},
		{east.LatLng(), now, 7},                       // the current minute counts
		{tie.LatLng(), now.Add(-2 * time.Minute), 7},  // ties east
		{far.LatLng(), now.Add(-5 * time.Minute), 30}, // Shanghai
		{mid.LatLng(), now.Add(-20 * time.Minute), 100},
	})
	lower, higher := min(east, tie), max(east, tie)
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"k=3", []string{fmt.Sprintf("%s=30", far), fmt.Sprintf("%s=12", mid), fmt.Sprintf("%s=9", west)}},
		{"k=10", []string{fmt.Sprintf("%s=30", far), fmt.Sprintf("%s=12", mid), fmt.Sprintf("%s=9", west), fmt.Sprintf("%s=7", lower), fmt.Sprintf("%s=7", higher)}},
		{"k=2&window=30m", []string{fmt.Sprintf("%s=112", mid), fmt.Sprintf("%s=30", far)}},
		{"k=2&bbox=" + url.QueryEscape("120.0,30.2,120.3,30.4"), []string{fmt.Sprintf("%s=12", mid), fmt.Sprintf("%s=9", west)}},
		{fmt.Sprintf("k=5&from=%d&to=%d", now.Add(-20*time.Minute).Unix(), now.Add(-9*time.Minute).Unix()), []string{fmt.Sprintf("%s=100", mid), fmt.Sprintf("%s=4", west)}},
	} {
		var got topReply
		s.call(t, "/api/v1/top?metric=swipes_in&"+tc.query, nil, 200, &got)
		if !slices.Equal(got.pairs(), tc.want) {
			t.Errorf("%s: %v, want %v", tc.query, got.pairs(), tc.want)
		}
	}
	// At res 5 children add up in their parents.
	res5 := map[h3.Cell]int64{}
	for c, v := range map[h3.Cell]int64{west: 9, mid: 12, east: 7, tie: 7, far: 30} {
		res5[c.Parent(5)] += v
	}
	var want5 []string
	for c, v := range res5 {
		want5 = append(want5, fmt.Sprintf("%s=%d", c, v))
	}
	var got5 topReply
	s.call(t, "/api/v1/top?metric=swipes_in&res=5", nil, 200, &got5)
	if got5.Res != 5 || len(res5) < 2 || !sameSet(got5.pairs(), want5) {
		t.Errorf("res 5: %v, want %v", got5.pairs(), want5)
	}
	for _, q := range []string{"k=0", "k=x", "res=10", "window=30s", "bbox=1,2", "from=2030-01-01T00:00:00Z"} {
		var e struct{ Error string }
		s.call(t, "/api/v1/top?metric=swipes_in&"+q, nil, 400, &e)
		name, _, _ := strings.Cut(q, "=")
		if !strings.Contains(e.Error, fmt.Sprintf("parameter %q", name)) {
			t.Errorf("%s: error %q does not name %s", q, e.Error, name)
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

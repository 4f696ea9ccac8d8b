package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// liveMap follows a live WebSocket's cells frames into a map of cell to
// sum, as the page does.
type liveMap struct {
	t     *testing.T
	conn  *websocket.Conn
	cells map[string]int64
}

func dialLive(t *testing.T, c *child, metric string, res int) *liveMap {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(c.url, "http")+"/api/v1/live", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.WriteJSON(map[string]any{"type": "subscribe", "bbox": [4]float64{120.10, 30.20, 120.20, 30.30}, "res": res, "metric": metric})
	return &liveMap{t: t, conn: conn, cells: map[string]int64{}}
}

// waitFor reads frames until the map holds want exactly, and fails with
// what it holds after 20 s.
func (l *liveMap) waitFor(want map[string]int64, what string) {
	l.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for fmt.Sprint(l.cells) != fmt.Sprint(want) {
		if time.Now().After(deadline) {
			l.t.Fatalf("%s: the query node's live map holds %v, want %v", what, l.cells, want)
		}
		l.conn.SetReadDeadline(deadline)
		_, msg, err := l.conn.ReadMessage()
		if err != nil {
			l.t.Fatalf("%s: reading the live map: %v (it holds %v, want %v)", what, err, l.cells, want)
		}
		var f struct {
			Type  string
			Full  bool
			Set   [][2]any
			Del   []string
			Error string
		}
		if err := json.Unmarshal(msg, &f); err != nil {
			l.t.Fatalf("a live frame %s: %v", msg, err)
		}
		if f.Type == "error" {
			l.t.Fatalf("%s: the live map answered an error: %s", what, msg)
		}
		if f.Type != "cells" {
			continue
		}
		if f.Full {
			clear(l.cells)
		}
		for _, s := range f.Set {
			l.cells[s[0].(string)] = int64(s[1].(float64))
		}
		for _, d := range f.Del {
			delete(l.cells, d)
		}
	}
}

// densityCells is a density answer as a map of cell to value.
func densityCells(d densityAnswer) map[string]int64 {
	m := map[string]int64{}
	for _, c := range d.Cells {
		m[c.Cell] = c.Value
	}
	return m
}

// TestQueryNodeServesTheDashboard: a query node over two ingest nodes (the
// second with a replica) serves the page and a live map that sums the
// ingest nodes' live state — what one node fed everything shows on its
// own live map and density of the live window — following new events as
// they arrive, and history from VictoriaMetrics, which it goes on serving
// with an ingest node stopped.
func TestQueryNodeServesTheDashboard(t *testing.T) {
	vm := startVictoriaMetrics(t)
	now := time.Now().UTC()
	t0 := now.Truncate(time.Minute).Add(-30 * time.Minute)
	at := func(m int) string { return t0.Add(time.Duration(m) * time.Minute).Format(time.RFC3339) }
	cars := func(from, to, base int) string {
		var b strings.Builder
		for m := from; m <= to; m++ {
			fmt.Fprintf(&b, "{\"time\":%q,\"sensor\":\"D1\",\"class\":\"car\",\"count\":%d}\n", at(m), base+m)
		}
		return b.String()
	}
	var footfall strings.Builder
	for m := 0; m <= 30; m++ {
		fmt.Fprintf(&footfall, "{\"time\":%q,\"site\":\"lake\",\"in\":%d,\"out\":1}\n", at(m), m+1)
	}
	ship := func(node string) []string {
		return append(registryFlags(t), "-flush-interval", "1s", "-remote", vm.url(), "-node", node, "-remote-lateness", "0s")
	}
	a := startFlowd(t, t.TempDir(), ship("a")...)
	b := startFlowd(t, t.TempDir(), ship("b")...)
	b2 := startFlowd(t, t.TempDir(), ship("b")...)
	one := startFlowd(t, t.TempDir(), append(registryFlags(t), "-live-tick", "200ms")...)
	posted := time.Now()
	// Minute 30 is the current one: on the live maps, not finished.
	a.post(t, "counts", "application/x-ndjson", cars(0, 30, 10), false)
	b.post(t, "counts", "application/x-ndjson", cars(20, 30, 100), false)
	b2.post(t, "counts", "application/x-ndjson", cars(20, 30, 100), false)
	b.post(t, "footfall", "application/x-ndjson", footfall.String(), false)
	b2.post(t, "footfall", "application/x-ndjson", footfall.String(), false)
	one.post(t, "counts", "application/x-ndjson", cars(0, 30, 10), false)
	one.post(t, "counts", "application/x-ndjson", cars(20, 30, 100), false)
	one.post(t, "footfall", "application/x-ndjson", footfall.String(), false)
	for _, n := range []*child{a, b, b2} {
		n.waitShipped(t, t0.Add(30*time.Minute), posted)
	}
	vm.sums("count_car", t0, t0.Add(time.Minute), time.Minute) // flushes what it took

	q := startFlowd(t, t.TempDir(), append(registryFlags(t), "-remote-read", vm.url(), "-remote-history", "all",
		"-peers", a.url+","+b.url+"|"+b2.url, "-live-tick", "200ms")...)

	// The page and its configuration.
	if r := q.get(t, "/"); r.status != 200 || !strings.Contains(string(r.body), "<html") {
		t.Fatalf("the query node's page: %d %.200s", r.status, r.body)
	}
	if r := q.get(t, "/api/v1/dashboard/config"); r.status != 200 {
		t.Fatalf("the query node's dashboard config: %s", r)
	}

	// The live map: what one node fed everything shows, at the base and a
	// coarser resolution.
	window := "metric=%s&bbox=" + testBBox + "&res=%d&window=5m"
	for _, metric := range []string{"count_car", "footfall_in"} {
		for _, res := range []int{9, 7} {
			want := densityCells(one.density(t, fmt.Sprintf(window, metric, res)))
			if len(want) == 0 {
				t.Fatalf("one node's density of %s over the live window is empty", metric)
			}
			dialLive(t, q, metric, res).waitFor(want, fmt.Sprintf("%s at res %d", metric, res))
			dialLive(t, one, metric, res).waitFor(want, fmt.Sprintf("one node's %s at res %d", metric, res))
		}
	}

	// New events at an ingest node reach the query node's live map.
	live := dialLive(t, q, "count_car", 9)
	live.waitFor(densityCells(one.density(t, fmt.Sprintf(window, "count_car", 9))), "count_car before new events")
	more := fmt.Sprintf("{\"time\":%q,\"sensor\":\"D1\",\"class\":\"car\",\"count\":1000}\n", at(29))
	a.post(t, "counts", "application/x-ndjson", more, false)
	one.post(t, "counts", "application/x-ndjson", more, false)
	live.waitFor(densityCells(one.density(t, fmt.Sprintf(window, "count_car", 9))), "count_car after new events at a")

	// History from VictoriaMetrics, the same with a stopped.
	past := fmt.Sprintf("metric=count_car&bbox=%s&res=8&from=%d&to=%d", testBBox, t0.Unix(), t0.Add(25*time.Minute).Unix())
	want := one.density(t, past)
	for _, stage := range []string{"every node up", "a stopped"} {
		got := getAnswer[densityAnswer](t, q, "/api/v1/density?"+past)
		if fmt.Sprint(got.Cells) != fmt.Sprint(want.Cells) || got.RemoteUntil == nil || want.Total == 0 {
			t.Errorf("%s: the query node's past density (remote until %v) %v, one node's %v", stage, got.RemoteUntil, got.Cells, want.Cells)
		}
		series := fmt.Sprintf("metric=count_car&bbox=%s&from=%d&to=%d&step=5m", testBBox, t0.Unix(), t0.Add(25*time.Minute).Unix())
		if got, want := q.series(t, series), one.series(t, series); fmt.Sprint(got.Points) != fmt.Sprint(want.Points) {
			t.Errorf("%s: the query node's past series %v, one node's %v", stage, got.Points, want.Points)
		}
		a.stop()
	}
	// The live map goes on with the nodes that answer: b's footfall.
	dialLive(t, q, "footfall_in", 9).waitFor(densityCells(one.density(t, fmt.Sprintf(window, "footfall_in", 9))), "footfall_in with a stopped")
}

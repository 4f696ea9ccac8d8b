package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/api"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/ingest"
	"github.com/flowd/flowd/internal/flowdtest"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

// queryServer is a flowd with a store, a res-9 registry and swipe ingest,
// serving on 127.0.0.1 with a fixed clock.
type queryServer struct {
	url string
	st  *storage.Store
	now time.Time
}

func startQueryServer(t testing.TB, now time.Time) *queryServer {
	t.Helper()
	fs := flowdtest.New(t, t.TempDir(), func(st *storage.Store, reg *geo.Registry) (api.Parts, func()) {
		return api.Parts{Ingest: ingest.NewHandler(newBucketer(t, st, reg), 8)}, nil
	})
	fs.API.Now = func() time.Time { return now }
	fs.Serve()
	return &queryServer{url: fs.URL, st: fs.Store, now: now}
}

// newBucketer buckets swipes, with a card key in a temporary directory.
func newBucketer(t testing.TB, st *storage.Store, reg *geo.Registry) *ingest.Bucketer {
	cards, err := ingest.LoadOrCreateKey(filepath.Join(t.TempDir(), "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	return &ingest.Bucketer{Registry: reg, Store: st, Cards: cards, Res: 9}
}

// swipe is one tap-in to post: n taps at a point and minute.
type swipe struct {
	at     h3.LatLng
	minute time.Time
	n      int
}

func (s *queryServer) postSwipes(t testing.TB, swipes []swipe) {
	t.Helper()
	var body bytes.Buffer
	card := 0
	for _, sw := range swipes {
		for range sw.n {
			card++
			fmt.Fprintf(&body, `{"time":%q,"card":"c%d","dir":"in","lat":%v,"lng":%v}`+"\n", sw.minute.Add(17*time.Second).Format(time.RFC3339), card, sw.at.Lat, sw.at.Lng)
		}
	}
	resp, err := http.Post(s.url+"/api/v1/ingest/swipes", "application/x-ndjson", &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a ingest.Answer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != 200 || a.Accepted != card {
		t.Fatalf("ingest: status %d, %+v, %v; want %d accepted", resp.StatusCode, a, err, card)
	}
}

// call posts body (or GETs when body is nil) and decodes the JSON answer
// into v, failing unless the status is want.
func (s *queryServer) call(t testing.TB, path string, body any, want int, v any) {
	t.Helper()
	var resp *http.Response
	var err error
	if body == nil {
		resp, err = http.Get(s.url + path)
	} else {
		data, _ := json.Marshal(body)
		resp, err = http.Post(s.url+path, "application/json", bytes.NewReader(data))
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s: status %d, want %d: %s", path, resp.StatusCode, want, buf.String())
	}
	if v != nil {
		if err := json.Unmarshal(buf.Bytes(), v); err != nil {
			t.Fatalf("%s: %v in %s", path, err, buf.String())
		}
	}
}

// corridorReply is what the tests read of a corridor answer.
type corridorReply struct {
	Res      int     `json:"res"`
	Rings    int     `json:"rings"`
	Length   float64 `json:"length_m"`
	Cells    int     `json:"cells"`
	Total    int64   `json:"total"`
	Segments []struct {
		Index     int      `json:"index"`
		From      float64  `json:"from_m"`
		To        float64  `json:"to_m"`
		PathCells int      `json:"path_cells"`
		Cells     []string `json:"cells"`
		Total     int64    `json:"total"`
	} `json:"segments"`
	Steps []struct {
		Time  time.Time `json:"time"`
		Total int64     `json:"total"`
		Loads []int64   `json:"loads"`
	} `json:"steps"`
	Peak *struct {
		Segment int       `json:"segment"`
		Time    time.Time `json:"time"`
		Load    int64     `json:"load"`
	} `json:"peak"`
}

func latLngs(path []h3.LatLng) [][2]float64 {
	out := make([][2]float64, len(path))
	for i, p := range path {
		out[i] = [2]float64{p.Lat, p.Lng}
	}
	return out
}

// eastward runs 3 km west to east through Hangzhou.
var eastward = []h3.LatLng{{Lat: 30.25, Lng: 120.10}, {Lat: 30.25, Lng: 120.13}}

func TestCorridorSectionLoadsInPathOrder(t *testing.T) {
	t0 := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	s := startQueryServer(t, t0.Add(2*time.Hour))
	// Taps at the centre of every res-9 cell the path crosses, i+1 of them
	// at path cell i, in one of three 10-minute steps; and taps off the
	// corridor, which must not count.
	path9 := h3.GridPath(h3.LatLngToCell(eastward[0], 9), h3.LatLngToCell(eastward[1], 9))
	var swipes []swipe
	for i, c := range path9 {
		swipes = append(swipes, swipe{c.LatLng(), t0.Add(time.Duration(i*7%30) * time.Minute), i + 1})
	}
	swipes = append(swipes,
		swipe{h3.LatLng{Lat: 30.27, Lng: 120.115}, t0.Add(5 * time.Minute), 50}, // 2 km north
		swipe{path9[3].LatLng(), t0.Add(-time.Minute), 40},                      // before from
		swipe{path9[3].LatLng(), t0.Add(30 * time.Minute), 40},                  // at to
	)
	s.postSwipes(t, swipes)

	for _, res := range []int{9, 8} {
		// The oracle: H3's own grid path at res, and each tap's parent.
		pathRes := h3.GridPath(h3.LatLngToCell(eastward[0], res), h3.LatLngToCell(eastward[1], res))
		want := make([][]int64, 3)
		for i := range want {
			want[i] = make([]int64, len(pathRes))
		}
		var wantTotal int64
		for i, c := range path9 {
			seg := slices.Index(pathRes, c.Parent(res))
			if seg < 0 {
				continue // off the coarser path
			}
			want[i*7%30/10][seg] += int64(i + 1)
			wantTotal += int64(i + 1)
		}
		var got corridorReply
		s.call(t, "/api/v1/corridor", map[string]any{
			"path": latLngs(eastward), "width": 0, "metric": "swipes_in", "res": res,
			"from": t0.Format(time.RFC3339), "to": t0.Add(30 * time.Minute).Format(time.RFC3339), "step": "10m",
		}, 200, &got)
		if got.Res != res || len(got.Segments) != len(pathRes) || len(got.Steps) != 3 {
			t.Fatalf("res %d: answer at res %d with %d segments, %d steps; want %d segments, 3 steps", res, got.Res, len(got.Segments), len(got.Steps), len(pathRes))
		}
		for i, seg := range got.Segments {
			if seg.Index != i || len(seg.Cells) != 1 || seg.Cells[0] != pathRes[i].String() {
				t.Fatalf("res %d: segment %d is %+v, want the path cell %s", res, i, seg, pathRes[i])
			}
		}
		for k, st := range got.Steps {
			if !st.Time.Equal(t0.Add(time.Duration(k) * 10 * time.Minute)) {
				t.Fatalf("res %d: step %d at %v", res, k, st.Time)
			}
			if !slices.Equal(st.Loads, want[k]) {
				t.Fatalf("res %d: step %d loads\n%v, want\n%v", res, k, st.Loads, want[k])
			}
		}
		if got.Total != wantTotal {
			t.Fatalf("res %d: total %d, want %d", res, got.Total, wantTotal)
		}
		// The peak: the largest single load, the earliest on a tie.
		var peak, peakSeg, peakStep int64
		for k := range want {
			for j, v := range want[k] {
				if v > peak {
					peak, peakSeg, peakStep = v, int64(j), int64(k)
				}
			}
		}
		if got.Peak == nil || got.Peak.Load != peak || int64(got.Peak.Segment) != peakSeg || !got.Peak.Time.Equal(t0.Add(time.Duration(peakStep)*10*time.Minute)) {
			t.Fatalf("res %d: peak %+v, want %d at segment %d step %d", res, got.Peak, peak, peakSeg, peakStep)
		}
	}
}

func TestCorridorCSV(t *testing.T) {
	t0 := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	s := startQueryServer(t, t0.Add(2*time.Hour))
	path9 := h3.GridPath(h3.LatLngToCell(eastward[0], 9), h3.LatLngToCell(eastward[1], 9))
	s.postSwipes(t, []swipe{{path9[2].LatLng(), t0.Add(6 * time.Minute), 3}})
	body := fmt.Sprintf(`{"path":{"type":"LineString","coordinates":[[120.10,30.25],[120.13,30.25]]},"metric":"swipes_in","from":%d,"to":%d,"step":"5m","segment":"cell"}`, t0.Unix(), t0.Add(10*time.Minute).Unix())
	resp, err := http.Post(s.url+"/api/v1/corridor?format=csv", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if resp.StatusCode != 200 || lines[0] != "time,segment,from_m,to_m,load" || len(lines) != 1+2*len(path9) {
		t.Fatalf("status %d, %d lines:\n%s", resp.StatusCode, len(lines), buf.String())
	}
	row := strings.Split(lines[1+len(path9)+2], ",")
	if row[0] != t0.Add(5*time.Minute).Format(time.RFC3339) || row[1] != "2" || row[4] != "3" {
		t.Fatalf("row of segment 2 in the second step: %v", row)
	}
}

func TestCorridorCrossingItselfCountsOnce(t *testing.T) {
	t0 := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	s := startQueryServer(t, t0.Add(2*time.Hour))
	// Out east 2.9 km, back west 1.4 km over the same cells, then north.
	loop := []h3.LatLng{{Lat: 30.25, Lng: 120.10}, {Lat: 30.25, Lng: 120.13}, {Lat: 30.25, Lng: 120.115}, {Lat: 30.27, Lng: 120.115}}
	out := h3.GridPath(h3.LatLngToCell(loop[0], 9), h3.LatLngToCell(loop[1], 9))
	north := h3.GridPath(h3.LatLngToCell(loop[2], 9), h3.LatLngToCell(loop[3], 9))
	var swipes []swipe
	var total int64
	for i, c := range out {
		swipes = append(swipes, swipe{c.LatLng(), t0, 1 + i%4})
		total += int64(1 + i%4)
	}
	top := north[len(north)-1]
	swipes = append(swipes, swipe{top.LatLng(), t0, 9})
	s.postSwipes(t, swipes)

	var byCell corridorReply
	s.call(t, "/api/v1/corridor", map[string]any{"path": latLngs(loop), "metric": "swipes_in", "from": t0.Unix(), "to": t0.Add(5 * time.Minute).Unix(), "step": "5m"}, 200, &byCell)
	if byCell.Total != total+9 {
		t.Fatalf("total %d, want %d: the cells passed twice count once", byCell.Total, total+9)
	}
	for i, c := range out {
		if byCell.Segments[i].Cells[0] != c.String() || byCell.Steps[0].Loads[i] != int64(1+i%4) {
			t.Fatalf("segment %d: %v with load %d, want outbound cell %s with %d", i, byCell.Segments[i].Cells, byCell.Steps[0].Loads[i], c, 1+i%4)
		}
	}
	last := len(byCell.Segments) - 1
	if byCell.Segments[last].Cells[0] != top.String() || byCell.Steps[0].Loads[last] != 9 {
		t.Fatalf("last segment %v with load %d, want %s with 9", byCell.Segments[last].Cells, byCell.Steps[0].Loads[last], top)
	}

	// In 1 km segments the return leg (3 to 4.3 km) holds no cell of its own.
	var byKm corridorReply
	s.call(t, "/api/v1/corridor", map[string]any{"path": latLngs(loop), "metric": "swipes_in", "from": t0.Unix(), "to": t0.Add(5 * time.Minute).Unix(), "step": "5m", "segment": 1000}, 200, &byKm)
	if byKm.Total != total+9 || len(byKm.Segments) != 7 {
		t.Fatalf("1 km segments: total %d over %d segments, want %d over 7", byKm.Total, len(byKm.Segments), total+9)
	}
	if seg := byKm.Segments[3]; len(seg.Cells) != 0 || byKm.Steps[0].Loads[3] != 0 {
		t.Fatalf("segment 3 (the way back) holds %v with load %d", seg.Cells, byKm.Steps[0].Loads[3])
	}
	var firstKm int64
	for i, c := range out {
		if h3.GreatCircleDistanceM(loop[0], c.LatLng()) < 900 {
			firstKm += int64(1 + i%4)
		}
	}
	if byKm.Steps[0].Loads[0] < firstKm {
		t.Fatalf("first kilometre load %d, want at least the %d within 900 m", byKm.Steps[0].Loads[0], firstKm)
	}
}

func TestCorridorWidthWidensSegments(t *testing.T) {
	t0 := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	s := startQueryServer(t, t0.Add(2*time.Hour))
	path9 := h3.GridPath(h3.LatLngToCell(eastward[0], 9), h3.LatLngToCell(eastward[1], 9))
	// A neighbour of path cell 5 that no other path cell touches.
	var side h3.Cell
	for _, n := range h3.GridDisk(path9[5], 1) {
		if n != path9[5] && !slices.Contains(path9, n) && !h3.Cell(path9[4]).IsNeighbor(n) && !h3.Cell(path9[6]).IsNeighbor(n) {
			side = n
			break
		}
	}
	if side == 0 {
		t.Fatalf("no neighbour of %s off the path", path9[5])
	}
	s.postSwipes(t, []swipe{{side.LatLng(), t0, 4}})
	for _, tc := range []struct {
		width float64
		load  int64
	}{{0, 0}, {500, 4}} {
		var got corridorReply
		s.call(t, "/api/v1/corridor", map[string]any{"path": latLngs(eastward), "width": tc.width, "metric": "swipes_in", "from": t0.Unix(), "to": t0.Add(5 * time.Minute).Unix()}, 200, &got)
		if got.Steps[0].Loads[5] != tc.load || got.Total != tc.load {
			t.Fatalf("width %v: segment 5 load %d, total %d; want %d", tc.width, got.Steps[0].Loads[5], got.Total, tc.load)
		}
	}
}

func TestCorridorBadInputNamesTheParameter(t *testing.T) {
	s := startQueryServer(t, time.Now())
	path := latLngs(eastward)
	for _, tc := range []struct {
		body  map[string]any
		param string
	}{
		{map[string]any{"path": path}, `"metric"`},
		{map[string]any{"metric": "swipes_in"}, `"path"`},
		{map[string]any{"metric": "swipes_in", "path": [][2]float64{{30, 120}, {95, 120}}}, `"path"`},
		{map[string]any{"metric": "swipes_in", "path": path, "width": -3}, `"width"`},
		{map[string]any{"metric": "swipes_in", "path": path, "segment": "km"}, `"segment"`},
		{map[string]any{"metric": "swipes_in", "path": path, "segment": 20}, `"segment"`},
		{map[string]any{"metric": "swipes_in", "path": path, "res": 11}, `"res"`},
		{map[string]any{"metric": "swipes_in", "path": path, "step": "90s"}, `"step"`},
		{map[string]any{"metric": "swipes_in", "path": path, "from": "yesterday"}, `"from"`},
		{map[string]any{"metric": "swipes_in", "path": path, "widht": 100}, `"body"`},
	} {
		var e struct{ Error string }
		s.call(t, "/api/v1/corridor", tc.body, 400, &e)
		if !strings.Contains(e.Error, "parameter "+tc.param) {
			t.Errorf("%v: error %q does not name %s", tc.body, e.Error, tc.param)
		}
	}
}

// path50km runs about 50 km across Hangzhou, south-west to north-east,
// with a bend.
var path50km = []h3.LatLng{{Lat: 30.10, Lng: 120.00}, {Lat: 30.25, Lng: 120.18}, {Lat: 30.35, Lng: 120.42}}

// fillSyntheticDay stores a day of swipes_in at day: every cell of the
// 500 m corridor of path50km every minute, and 2000 random cells of the
// surrounding 50 × 35 km each minute, then flushes them into parts.
func fillSyntheticDay(b *testing.B, st *storage.Store, day time.Time) {
	c, err := geo.NewCorridor(path50km, 500, 9, 0)
	if err != nil {
		b.Fatal(err)
	}
	id, err := st.MetricID(vocab.SwipesIn)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var deltas []storage.Delta
	rows := 0
	for m := range 24 * 60 {
		minute := day.Unix()/60 + int64(m)
		for _, cell := range c.Cells {
			deltas = append(deltas, storage.Delta{Key: storage.Key{Metric: id, Cell: uint64(cell), Minute: minute}, Value: int64(1 + rng.IntN(20))})
		}
		for range 2000 {
			ll := h3.LatLng{Lat: 30.05 + rng.Float64()*0.35, Lng: 119.95 + rng.Float64()*0.52}
			deltas = append(deltas, storage.Delta{Key: storage.Key{Metric: id, Cell: uint64(h3.LatLngToCell(ll, 9)), Minute: minute}, Value: int64(1 + rng.IntN(5))})
		}
		if m%30 == 29 {
			if err := st.Add(deltas); err != nil {
				b.Fatal(err)
			}
			rows += len(deltas)
			deltas = deltas[:0]
		}
	}
	if err := st.Flush(); err != nil {
		b.Fatal(err)
	}
	b.Logf("stored %d rows; corridor of %d cells", rows, len(c.Cells))
}

// BenchmarkCorridor50km asks the section load of a 50 km corridor, 500 m
// wide, over one day at a 5-minute step (288 steps), through HTTP, from a
// store holding a synthetic day.
func BenchmarkCorridor50km(b *testing.B) {
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -1)
	s := startQueryServer(b, day.Add(36*time.Hour))
	fillSyntheticDay(b, s.st, day)
	body := map[string]any{"path": latLngs(path50km), "width": 500, "metric": "swipes_in", "from": day.Unix(), "to": day.Add(24 * time.Hour).Unix(), "step": "5m"}
	var got corridorReply
	s.call(b, "/api/v1/corridor", body, 200, &got)
	if len(got.Steps) != 288 || got.Length < 49000 || got.Total == 0 {
		b.Fatalf("%d steps over %v m, total %d", len(got.Steps), got.Length, got.Total)
	}
	b.Logf("%.1f km, %d cells, %d segments, %d rings", got.Length/1000, got.Cells, len(got.Segments), got.Rings)
	for b.Loop() {
		s.call(b, "/api/v1/corridor", body, 200, nil)
	}
}

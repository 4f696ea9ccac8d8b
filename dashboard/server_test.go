package dashboard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/api"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/ingest"
	"github.com/flowd/flowd/internal/flowdtest"
	"github.com/flowd/flowd/storage"
	"github.com/gorilla/websocket"
)

// testServer is a real flowd on 127.0.0.1: store, registry, bucketer,
// ingest handlers, the API server and the dashboard mounted as serve does.
type testServer struct {
	URL   string
	Dash  *Dashboard
	Reg   *geo.Registry
	Close func() // stops the server; also run at the test's end
}

// testSitesGeoJSON is one square site of capacity 1000 near West Lake.
const testSitesGeoJSON = `{"type":"FeatureCollection","features":[{"type":"Feature",
"properties":{"id":"lake","name":"Lake","capacity":1000,"daily_capacity":5000},
"geometry":{"type":"Polygon","coordinates":[[[120.14,30.24],[120.15,30.24],[120.15,30.25],[120.14,30.25],[120.14,30.24]]]}}]}`

func startServer(t testing.TB, dataDir string, opts Options) *testServer {
	t.Helper()
	var d *Dashboard
	fs := flowdtest.New(t, dataDir, func(st *storage.Store, reg *geo.Registry) (api.Parts, func()) {
		sites, err := geo.ReadSitesGeoJSON(strings.NewReader(testSitesGeoJSON))
		if err != nil {
			t.Fatal(err)
		}
		if err := reg.PutSites(sites); err != nil {
			t.Fatal(err)
		}
		cards, err := ingest.LoadOrCreateKey(filepath.Join(dataDir, "secret.key"))
		if err != nil {
			t.Fatal(err)
		}
		opts.Store, opts.Registry, opts.DataDir = st, reg, dataDir
		if d, err = New(opts); err != nil {
			t.Fatal(err)
		}
		b := &ingest.Bucketer{Registry: reg, Store: st, Cards: cards, Res: 9}
		b.Deltas = append(b.Deltas, d.Hub)
		b.Footfall = append(b.Footfall, d.Sites)
		return api.Parts{Ingest: ingest.NewHandler(b, 64), Live: d}, func() { d.Close() }
	})
	fs.API.Logf = t.Logf
	fs.Serve()
	return &testServer{URL: fs.URL, Dash: d, Reg: fs.Registry, Close: fs.Close}
}

// post sends an NDJSON body to an ingest endpoint and fails on a non-2xx.
func (s *testServer) post(t testing.TB, kind string, body []byte) time.Duration {
	t.Helper()
	start := time.Now()
	resp, err := http.Post(s.URL+"/api/v1/ingest/"+kind, "application/x-ndjson", bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 || bytes.Contains(data, []byte(`"rejected":[{`)) {
		t.Errorf("POST %s: %s: %s", kind, resp.Status, data)
	}
	return time.Since(start)
}

// getJSON decodes a GET answer into v.
func (s *testServer) getJSON(t testing.TB, path string, v any) {
	t.Helper()
	resp, err := http.Get(s.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s: %s", path, resp.Status, data)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, data)
	}
}

// density returns GET /api/v1/density as a map of cell to value.
func (s *testServer) density(t testing.TB, metric string, bbox [4]float64, res int) map[string]int64 {
	var ans struct {
		Cells []struct {
			Cell  string `json:"cell"`
			Value int64  `json:"value"`
		} `json:"cells"`
	}
	s.getJSON(t, fmt.Sprintf("/api/v1/density?metric=%s&res=%d&bbox=%g,%g,%g,%g", metric, res, bbox[0], bbox[1], bbox[2], bbox[3]), &ans)
	out := map[string]int64{}
	for _, c := range ans.Cells {
		out[c.Cell] = c.Value
	}
	return out
}

// liveClient is a test's WebSocket connection to /api/v1/live.
type liveClient struct {
	conn *websocket.Conn
}

func (s *testServer) dial(t testing.TB, d *websocket.Dialer) *liveClient {
	t.Helper()
	if d == nil {
		d = websocket.DefaultDialer
	}
	conn, resp, err := d.Dial("ws"+strings.TrimPrefix(s.URL, "http")+"/api/v1/live", nil)
	if err != nil {
		t.Fatalf("dial /api/v1/live: %v (%v)", err, resp)
	}
	t.Cleanup(func() { conn.Close() })
	return &liveClient{conn: conn}
}

func (c *liveClient) subscribe(t testing.TB, bbox [4]float64, res int, metric string) {
	t.Helper()
	msg := map[string]any{"type": "subscribe", "bbox": bbox, "res": res, "metric": metric}
	if err := c.conn.WriteJSON(msg); err != nil {
		t.Fatal(err)
	}
}

// message is any server message; fields of other types stay empty.
type message struct {
	Type   string            `json:"type"`
	T      int64             `json:"t"`
	Res    int               `json:"res"`
	Metric string            `json:"metric"`
	Full   bool              `json:"full"`
	Set    []json.RawMessage `json:"set"`
	Del    []string          `json:"del"`
	Site   string            `json:"site"`
	Kind   string            `json:"kind"`
	From   Level             `json:"from"`
	To     Level             `json:"to"`
	Error  string            `json:"error"`
}

// read returns the next message, failing the test after timeout.
func (c *liveClient) read(t testing.TB, timeout time.Duration) message {
	t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	var m message
	if err := c.conn.ReadJSON(&m); err != nil {
		t.Fatalf("reading a live message: %v", err)
	}
	return m
}

// apply folds a cells frame into values.
func (m *message) apply(t testing.TB, values map[string]int64) {
	t.Helper()
	if m.Full {
		clear(values)
	}
	for _, raw := range m.Set {
		var pair [2]any
		if err := json.Unmarshal(raw, &pair); err != nil {
			t.Fatalf("set entry %s: %v", raw, err)
		}
		values[pair[0].(string)] = int64(pair[1].(float64))
	}
	for _, c := range m.Del {
		delete(values, c)
	}
}

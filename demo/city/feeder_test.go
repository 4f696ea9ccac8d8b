package city

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// ingestServer is a stand-in flowd: it checks the token and content type,
// decodes (gunzipping when asked) and counts the NDJSON lines per endpoint,
// and answers the first failFirst requests with 503.
type ingestServer struct {
	mu        sync.Mutex
	failFirst int
	requests  int
	failed    int
	lines     map[string]int
	puts      map[string][]byte
	bad       []string
}

func (s *ingestServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if s.requests <= s.failFirst {
		s.failed++
		w.Header().Set("Retry-After", "0")
		http.Error(w, `{"error":"busy"}`, http.StatusServiceUnavailable)
		return
	}
	if r.Header.Get("Authorization") != "Bearer secret" {
		io.Copy(io.Discard, r.Body)
		http.Error(w, `{"error":"token"}`, http.StatusUnauthorized)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	if r.Method == http.MethodPut {
		b, _ := io.ReadAll(body)
		s.puts[r.URL.Path] = b
		fmt.Fprint(w, `{"accepted":1,"rejected":[]}`)
		return
	}
	if r.Header.Get("Content-Type") != "application/x-ndjson" || !strings.HasPrefix(r.URL.Path, "/api/v1/ingest/") {
		http.Error(w, "unexpected request", http.StatusBadRequest)
		return
	}
	n := 0
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m["time"] == nil {
			s.bad = append(s.bad, sc.Text())
			continue
		}
		n++
	}
	s.lines[r.URL.Path] += n
	fmt.Fprintf(w, `{"accepted":%d,"rejected":[]}`, n)
}

func newIngestServer(t *testing.T, failFirst int) (*ingestServer, string) {
	s := &ingestServer{failFirst: failFirst, lines: map[string]int{}, puts: map[string][]byte{}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func TestFeederPostsEverythingAndRetries503(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip=%v", gz), func(t *testing.T) {
			srv, url := newIngestServer(t, 2)
			c := New(Config{Seed: 9, Cameras: 30, Scale: 0.05})
			from := DefaultStart.Add(7*time.Hour + 50*time.Minute)
			to := from.Add(20 * time.Minute)
			want := map[string]int{}
			total := 0
			for m := from; m.Before(to); m = m.Add(time.Minute) {
				c.Minute(m, func(e *Event) { want[e.Kind.Path()]++; total++ })
			}
			f := &Feeder{URL: url, Token: "secret", BatchSize: 300, Senders: 3, Gzip: gz, Backoff: 10 * time.Millisecond}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := f.PutRegistries(ctx, c); err != nil {
				t.Fatal(err)
			}
			var last int64
			if err := f.Run(ctx, c, from, to, func(n int64) { last = n }); err != nil {
				t.Fatal(err)
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if srv.failed != 2 {
				t.Errorf("server failed %d requests, want 2", srv.failed)
			}
			if len(srv.bad) > 0 {
				t.Fatalf("%d undecodable lines, first %q", len(srv.bad), srv.bad[0])
			}
			for path, n := range want {
				if srv.lines[path] != n {
					t.Errorf("%s: server got %d events, generated %d", path, srv.lines[path], n)
				}
			}
			if last != int64(total) || f.Rejected() != 0 {
				t.Errorf("progress ended at %d of %d, %d rejected", last, total, f.Rejected())
			}
			if !bytes.Equal(srv.puts["/api/v1/stations"], c.StationsCSV()) || !bytes.Equal(srv.puts["/api/v1/sites"], c.SitesGeoJSON()) ||
				!bytes.Equal(srv.puts["/api/v1/sensors"], c.SensorsCSV()) {
				t.Error("registries not received intact")
			}
		})
	}
}

func TestFeederStopsOnClientError(t *testing.T) {
	_, url := newIngestServer(t, 0)
	c := New(Config{Seed: 9, Cameras: 5, Scale: 0.01})
	f := &Feeder{URL: url, Token: "wrong"}
	start := time.Now()
	err := f.Run(context.Background(), c, DefaultStart.Add(8*time.Hour), DefaultStart.Add(9*time.Hour), nil)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("err = %v, want the 401", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("took %v: a 401 must not be retried", time.Since(start))
	}
}

func TestFeederGivesUpAfterMaxRetries(t *testing.T) {
	srv, url := newIngestServer(t, 1000)
	c := New(Config{Seed: 9, Cameras: 5, Scale: 0.01})
	f := &Feeder{URL: url, Token: "secret", MaxRetries: 2, Senders: 1, Backoff: 10 * time.Millisecond}
	err := f.PutRegistries(context.Background(), c)
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("err = %v, want a 503", err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.requests != 3 {
		t.Fatalf("%d requests, want 1 + 2 retries", srv.requests)
	}
}

// Live mode posts the present second by second until ctx ends.
func TestFeederLive(t *testing.T) {
	srv, url := newIngestServer(t, 0)
	c := New(Config{Seed: 9, Cameras: 200, Scale: 20})
	f := &Feeder{URL: url, Token: "secret", Live: true, Tick: 200 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 1100*time.Millisecond)
	defer cancel()
	posts := 0
	if err := f.Run(ctx, c, time.Time{}, time.Time{}, func(int64) { posts++ }); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.lines["/api/v1/ingest/counts"] == 0 || posts < 1 {
		t.Fatalf("live run posted %d times: %v", posts, srv.lines)
	}
}

package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPeerStreamAggregationSumsByArrival pins what the peer's stream
// aggregation, the bench's comparison for flowd's bucketing, does with
// the readings the bench sends it: a real VictoriaMetrics, with
// PeerAggrConfig at an interval of a second instead of a minute, is sent
// three readings of one series stamped at three minutes of 2019. flowd
// keeps three minute buckets of them; the peer writes one sum of the
// three, stamped at the wall-clock end of the interval they arrived in,
// and nothing at their own minutes. Its per-event CPU in BENCH.md is
// then that of parsing and summing by arrival, not of flowd's job (see
// BENCH.md, "Peer input"): if a later peer buckets by the samples' own
// times, this test fails and that text is out of date.
func TestPeerStreamAggregationSumsByArrival(t *testing.T) {
	bin, err := exec.LookPath("victoria-metrics")
	if err != nil {
		t.Skip("victoria-metrics is not installed (.ci/run and make bench install it)")
	}
	dir := t.TempDir()
	cfg := strings.Replace(PeerAggrConfig, "interval: 1m", "interval: 1s", 1)
	if cfg == PeerAggrConfig {
		t.Fatal("PeerAggrConfig has no 'interval: 1m' to shorten")
	}
	path := filepath.Join(dir, "stream-aggr.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := StartPeer(bin, dir, "-streamAggr.config="+path, "-streamAggr.dropInput")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(10 * time.Second)
	// Readings of the first interval after a start may be dropped (the
	// flusher aligns itself first): send after a few.
	time.Sleep(3 * time.Second)
	t0 := time.Date(2019, 1, 7, 8, 0, 0, 0, time.UTC).UnixMilli()
	body := fmt.Sprintf("det_count{cell=\"a\"} 5 %d\ndet_count{cell=\"a\"} 7 %d\ndet_count{cell=\"a\"} 11 %d\n", t0, t0+60_000, t0+120_000)
	sent := time.Now()
	resp, err := http.Post(p.URL+"/api/v1/import/prometheus", "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("import: %s", resp.Status)
	}

	type series struct {
		Values     []float64 `json:"values"`
		Timestamps []int64   `json:"timestamps"`
	}
	var got []series
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if r, err := http.Get(p.URL + "/internal/force_flush"); err == nil {
			r.Body.Close()
		}
		q := url.Values{"match[]": {`{__name__=~"det_count.*"}`}, "start": {"0"}}
		r, err := http.Get(p.URL + "/api/v1/export?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		sc := bufio.NewScanner(r.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var s series
			if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
				t.Fatalf("export line %q: %v", sc.Text(), err)
			}
			got = append(got, s)
		}
		r.Body.Close()
		if len(got) > 0 {
			break
		}
	}
	if len(got) != 1 || len(got[0].Values) != 1 {
		t.Fatalf("the peer holds %+v; want one series of one sum", got)
	}
	v, ts := got[0].Values[0], got[0].Timestamps[0]
	t.Logf("the peer holds %v at %v", v, time.UnixMilli(ts).UTC())
	if v != 23 {
		t.Errorf("the sum is %v; want 23, the three readings' minutes summed together", v)
	}
	if ts < sent.Add(-2*time.Second).UnixMilli() {
		t.Errorf("the sum is stamped %v; want the wall-clock time it was written, after %v", time.UnixMilli(ts).UTC(), sent.UTC())
	}
}

package ingest_test

import (
	"encoding/json"
	"fmt"
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
	"github.com/flowd/flowd/vocab"
)

// testSiteGeoJSON is one square site of capacity 1000.
const testSiteGeoJSON = `{"type":"FeatureCollection","features":[{"type":"Feature",
"properties":{"id":"lake","name":"Lake","capacity":1000},
"geometry":{"type":"Polygon","coordinates":[[[120.14,30.24],[120.15,30.24],[120.15,30.25],[120.14,30.25],[120.14,30.24]]]}}]}`

// startIngest serves ingest on 127.0.0.1 over a store with the default
// retentions (30 days of minutes, 2 years of hours), a station S1, a
// sensor C1 and a site lake.
func startIngest(t *testing.T) *flowdtest.Server {
	t.Helper()
	return startIngestWith(t, func(*ingest.Handler) {}, func(*flowdtest.Server) {})
}

// startIngestWith is startIngest with the handler and the server set by
// setHandler and setServer before it serves.
func startIngestWith(t *testing.T, setHandler func(*ingest.Handler), setServer func(*flowdtest.Server)) *flowdtest.Server {
	t.Helper()
	dir := t.TempDir()
	fs := flowdtest.New(t, dir, func(st *storage.Store, reg *geo.Registry) (api.Parts, func()) {
		if err := reg.PutStations([]geo.Station{{ID: "S1", Name: "One", Lat: 30.25, Lng: 120.16}}); err != nil {
			t.Fatal(err)
		}
		if err := reg.PutSensors([]geo.Sensor{{ID: "C1", Name: "Cam", Lat: 30.25, Lng: 120.16}}); err != nil {
			t.Fatal(err)
		}
		sites, err := geo.ReadSitesGeoJSON(strings.NewReader(testSiteGeoJSON))
		if err != nil {
			t.Fatal(err)
		}
		if err := reg.PutSites(sites); err != nil {
			t.Fatal(err)
		}
		cards, err := ingest.LoadOrCreateKey(filepath.Join(dir, "secret.key"))
		if err != nil {
			t.Fatal(err)
		}
		b := &ingest.Bucketer{Registry: reg, Store: st, Cards: cards, Res: 9}
		h := ingest.NewHandler(b, 8)
		setHandler(h)
		return api.Parts{Ingest: h}, nil
	})
	setServer(fs)
	return fs.Serve()
}

// post sends an NDJSON body to an ingest endpoint and decodes the answer.
func post(t *testing.T, fs *flowdtest.Server, kind, body string) (int, ingest.Answer) {
	t.Helper()
	resp, err := http.Post(fs.URL+"/api/v1/ingest/"+kind, "application/x-ndjson", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a ingest.Answer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, a
}

func timeText(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// TestRetentionAtIngest sends counts from now, 60 days ago (past the
// minute retention, within the hour retention) and 3 years ago (past
// both): the first two are accepted and the second counted as kept hourly
// only; the third is refused with a line error naming -retention-hour.
// After a flush the hourly tier holds both kept lines.
func TestRetentionAtIngest(t *testing.T) {
	fs := startIngest(t)
	now := time.Now()
	old, ancient := now.Add(-60*24*time.Hour), now.Add(-3*365*24*time.Hour)
	var body strings.Builder
	for _, tm := range []time.Time{now, old, ancient} {
		fmt.Fprintf(&body, `{"time":%q,"sensor":"C1","class":"car","count":5}`+"\n", timeText(tm))
	}
	status, a := post(t, fs, "counts", body.String())
	if status != 200 || a.Accepted != 2 || a.HourlyOnly != 1 || a.RejectedTotal != 1 {
		t.Fatalf("status %d, answer %+v; want 200, 2 accepted, 1 hourly only, 1 rejected", status, a)
	}
	if e := a.Rejected[0]; e.Line != 3 || e.Field != "time" || !strings.Contains(e.Reason, "-retention-hour") {
		t.Fatalf("the ancient line's error %+v does not name line 3, field time and the flag -retention-hour", e)
	}
	if err := fs.Store.Flush(); err != nil {
		t.Fatal(err)
	}
	all := []vocab.CellRange{{Lo: 0, Hi: ^uint64(0)}}
	sum := func(tier storage.Tier) int64 {
		var total int64
		if err := fs.Store.Scan(tier, "count_car", all, 0, 1<<40, func(_ uint64, _, v int64) { total += v }); err != nil {
			t.Fatal(err)
		}
		return total
	}
	if m, h := sum(storage.TierMinute), sum(storage.TierHour); m != 5 || h != 10 {
		t.Fatalf("after a flush: minute tier %d, hour tier %d; want 5 and 10", m, h)
	}
}

// TestRejectedTotalCountsEveryLine sends 2,500 invalid lines and 10 valid
// ones: the answer lists at most MaxLineErrors of them plus a line saying
// how many more, and rejected_total counts all 2,500.
func TestRejectedTotalCountsEveryLine(t *testing.T) {
	fs := startIngest(t)
	now := timeText(time.Now())
	var body strings.Builder
	for i := range 2510 {
		if i%251 == 0 {
			fmt.Fprintf(&body, `{"time":%q,"sensor":"C1","class":"car","count":1}`+"\n", now)
		} else {
			fmt.Fprintf(&body, `{"time":%q,"sensor":"C1","class":"car","count":-1}`+"\n", now)
		}
	}
	status, a := post(t, fs, "counts", body.String())
	if status != 200 || a.Accepted != 10 || a.RejectedTotal != 2500 || len(a.Rejected) > ingest.MaxLineErrors+1 {
		t.Fatalf("status %d: %d accepted, rejected_total %d, %d listed; want 200, 10, 2500, at most %d", status, a.Accepted, a.RejectedTotal, len(a.Rejected), ingest.MaxLineErrors+1)
	}
	// Lines refused after decoding (an unknown sensor) count the same way.
	body.Reset()
	for range 1500 {
		fmt.Fprintf(&body, `{"time":%q,"sensor":"nowhere","class":"car","count":1}`+"\n", now)
	}
	status, a = post(t, fs, "counts", body.String())
	if status != 400 || a.Accepted != 0 || a.RejectedTotal != 1500 || len(a.Rejected) > ingest.MaxLineErrors+1 {
		t.Fatalf("unknown sensors: status %d: %d accepted, rejected_total %d, %d listed; want 400, 0, 1500, at most %d", status, a.Accepted, a.RejectedTotal, len(a.Rejected), ingest.MaxLineErrors+1)
	}
}

// TestValuesAreBounded sends counts and gate readings past the documented
// maxima, the overflow of the issue among them: each is refused with a line
// error naming the field and its maximum, and what was kept adds up
// without wrapping. Values at the maxima are accepted.
func TestValuesAreBounded(t *testing.T) {
	fs := startIngest(t)
	now := timeText(time.Now())
	var body strings.Builder
	for range 10 {
		fmt.Fprintf(&body, `{"time":%q,"sensor":"C1","class":"car","count":999999999999999999}`+"\n", now)
	}
	fmt.Fprintf(&body, `{"time":%q,"sensor":"C1","class":"car","count":1,"speed":1e308}`+"\n", now)
	fmt.Fprintf(&body, `{"time":%q,"sensor":"C1","class":"car","count":%d,"speed":%d}`+"\n", now, ingest.MaxCount, ingest.MaxSpeed)
	status, a := post(t, fs, "counts", body.String())
	if status != 200 || a.Accepted != 1 || a.RejectedTotal != 11 {
		t.Fatalf("counts: status %d, answer %+v; want 200, 1 accepted, 11 rejected", status, a)
	}
	for _, e := range a.Rejected {
		if (e.Field != "count" && e.Field != "speed") || !strings.Contains(e.Reason, "at most") {
			t.Fatalf("counts: line error %+v does not name the field and its maximum", e)
		}
	}
	body.Reset()
	for range 10 {
		fmt.Fprintf(&body, `{"time":%q,"site":"lake","in":999999999999999999}`+"\n", now)
	}
	fmt.Fprintf(&body, `{"time":%q,"site":"lake","occupancy":999999999999999999}`+"\n", now)
	fmt.Fprintf(&body, `{"time":%q,"site":"lake","in":%d,"out":%d,"occupancy":%d}`+"\n", now, ingest.MaxCount, ingest.MaxCount, ingest.MaxOccupancy)
	status, a = post(t, fs, "footfall", body.String())
	if status != 200 || a.Accepted != 1 || a.RejectedTotal != 11 {
		t.Fatalf("footfall: status %d, answer %+v; want 200, 1 accepted, 11 rejected", status, a)
	}
	all := []vocab.CellRange{{Lo: 0, Hi: ^uint64(0)}}
	for metric, want := range map[string]int64{"count_car": ingest.MaxCount, "speed_car": ingest.MaxCount * ingest.MaxSpeed, "footfall_in": ingest.MaxCount} {
		var total int64
		if err := fs.Store.Scan(storage.TierMinute, metric, all, 0, 1<<40, func(_ uint64, _, v int64) { total += v }); err != nil {
			t.Fatal(err)
		}
		if total != want {
			t.Errorf("%s holds %d, want %d", metric, total, want)
		}
	}
}

// TestFutureReadingsRejected sends gate readings stamped now, within the
// tolerated clock skew, and tomorrow (the case, also as unix
// seconds and in CSV): the first two are kept, the later ones are each
// refused with a line error naming line, field and value, and nothing of
// them reaches the store.
func TestFutureReadingsRejected(t *testing.T) {
	fs := startIngest(t)
	now := time.Now()
	tomorrow := now.Add(24 * time.Hour)
	body := fmt.Sprintf(`{"time":%q,"site":"lake","in":10}
{"time":%q,"site":"lake","in":20}
{"time":%q,"site":"lake","in":4000}
{"time":%d,"site":"lake","in":5000}
`, timeText(now), timeText(now.Add(ingest.DefaultMaxAhead-time.Minute)), timeText(tomorrow), tomorrow.Unix())
	status, a := post(t, fs, "footfall", body)
	if status != 200 || a.Accepted != 2 || a.RejectedTotal != 2 {
		t.Fatalf("status %d, answer %+v; want 200, 2 accepted, 2 rejected", status, a)
	}
	for i, e := range a.Rejected {
		if e.Line != 3+i || e.Field != "time" || e.Value != timeText(tomorrow) || !strings.Contains(e.Reason, "future") || !strings.Contains(e.Reason, "-max-clock-skew") {
			t.Errorf("line error %+v; want line %d, field time, value %s, a reason naming the future and -max-clock-skew", e, 3+i, timeText(tomorrow))
		}
	}
	resp, err := http.Post(fs.URL+"/api/v1/ingest/footfall", "text/csv", strings.NewReader("time,site,in\n"+timeText(tomorrow)+",lake,7\n"))
	if err != nil {
		t.Fatal(err)
	}
	var csvAns ingest.Answer
	json.NewDecoder(resp.Body).Decode(&csvAns)
	resp.Body.Close()
	if resp.StatusCode != 400 || csvAns.RejectedTotal != 1 || csvAns.Rejected[0].Line != 2 || csvAns.Rejected[0].Field != "time" {
		t.Fatalf("CSV: status %d, answer %+v; want 400 with line 2's time refused", resp.StatusCode, csvAns)
	}
	var total int64
	all := []vocab.CellRange{{Lo: 0, Hi: ^uint64(0)}}
	if err := fs.Store.Scan(storage.TierMinute, vocab.FootfallIn, all, 0, 1<<40, func(_ uint64, _, v int64) { total += v }); err != nil {
		t.Fatal(err)
	}
	if total != 30 {
		t.Fatalf("footfall_in holds %d, want the 30 of the two kept lines", total)
	}
}

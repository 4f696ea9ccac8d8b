package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/demo/city"
)

// TestImportHistoryFiles imports a gzipped AFC day and an NDJSON file of
// counts with one bad line through `flowd import`, and checks the totals,
// the progress output and the rejected line's file and line number.
func TestImportHistoryFiles(t *testing.T) {
	c := city.New(city.Config{Seed: 9, Scale: 0.005})
	dir := t.TempDir()
	stations := filepath.Join(dir, "stations.csv")
	os.WriteFile(stations, c.StationsCSV(), 0o644)
	// History is kept: the AFC day is of 2019.
	srv := startFlowd(t, t.TempDir(), append(registryFlags(t), "-stations", stations, "-retention-minute", "876000h", "-retention-hour", "876000h")...)

	day := time.Date(2019, 1, 7, 0, 0, 0, 0, time.UTC)
	var afc bytes.Buffer
	truth, _, err := c.AFCDay(day, &afc)
	if err != nil {
		t.Fatal(err)
	}
	taps := strings.Count(afc.String(), "\n") - 1
	afcPath := filepath.Join(dir, "afc-2019-01-07.csv.gz")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(afc.Bytes())
	zw.Close()
	os.WriteFile(afcPath, gz.Bytes(), 0o644)

	t0 := testT0()
	counts := fmt.Sprintf(`{"time":%d,"sensor":"D1","class":"car","count":10}
{"time":%d,"sensor":"D1","class":"car","count":20}
{"time":%d,"sensor":"D1","class":"car","count":-5}
{"time":%d,"sensor":"D1","class":"car","count":30}
`, t0.Unix(), t0.Unix(), t0.Unix(), t0.Unix())
	countsPath := filepath.Join(dir, "counts.ndjson")
	os.WriteFile(countsPath, []byte(counts), 0o644)

	out, err := exec.Command(flowdBin, "import", "-url", srv.url, "-batch", "3000", afcPath, countsPath).CombinedOutput()
	if err != nil {
		t.Fatalf("flowd import: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{"100%", countsPath + ":3: field \"count\"", fmt.Sprintf("imported %d events from 2 files", taps+3), "1 lines rejected"} {
		if !strings.Contains(text, want) {
			t.Errorf("import output lacks %q:\n%s", want, text)
		}
	}
	s := srv.series(t, "metric=count_car&cells="+cellOf(t, 30.2700, 120.1500, 9).String()+"&"+span(t0, 1))
	if s.Total != 60 {
		t.Errorf("imported counts sum to %d, want 60", s.Total)
	}
	var od odAnswer
	srv.get(t, fmt.Sprintf("/api/v1/od?by=station&top=1&from=%d&to=%d", day.Unix(), day.Add(48*time.Hour).Unix())).json(t, &od)
	var want int64
	for _, n := range truth {
		want += int64(n)
	}
	if od.Trips != want {
		t.Errorf("imported AFC day gives %d trips, want %d", od.Trips, want)
	}
}

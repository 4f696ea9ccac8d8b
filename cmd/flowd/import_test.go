package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"net"
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
	if code := exitCode(err); code != 2 {
		t.Fatalf("flowd import with a rejected line: exit %d (%v), want 2\n%s", code, err, out)
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

// exitCode is a finished command's exit status, -1 when it did not run.
func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}

// flowd import's exit status says what became of the lines, its output to
// a file holds no terminal escapes, and a server that is not there is
// said to be so at once.
func TestImportExitStatusAndPlainOutput(t *testing.T) {
	srv := startFlowd(t, t.TempDir(), registryFlags(t)...)
	dir := t.TempDir()
	bad := filepath.Join(dir, "counts-bad.ndjson")
	os.WriteFile(bad, []byte(`{"time":1,"sensor":"D1","class":"car","count":1}`+"\n"+`{"time":2,"sensor":"D1","class":"car","count":1}`+"\n"), 0o644)
	out, err := exec.Command(flowdBin, "import", "-url", srv.url, bad).CombinedOutput()
	if code := exitCode(err); code != 3 || !strings.Contains(string(out), "no line was kept") || strings.Contains(string(out), "\033") {
		t.Errorf("import of only bad lines: exit %d, want 3, no escape codes:\n%q", code, out)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stopped := "http://" + ln.Addr().String()
	ln.Close()
	start := time.Now()
	out, err = exec.Command(flowdBin, "import", "-url", stopped, bad).CombinedOutput()
	if code := exitCode(err); code != 1 || !strings.Contains(string(out), "the server is not reachable at "+stopped) ||
		strings.Contains(string(out), "100%") || time.Since(start) > 5*time.Second {
		t.Errorf("import to a stopped server: exit %d after %v:\n%s\nwant exit 1 at once, saying the server is not reachable", code, time.Since(start), out)
	}
}

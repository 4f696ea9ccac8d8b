package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/demo/city"
	"github.com/uber/h3-go/v4"
)

// exportDay is the synthetic day the export tests publish: a Monday long
// settled, kept by retention flags that reach back to it.
var exportDay = time.Date(2019, 1, 7, 0, 0, 0, 0, time.UTC)

// startExportServer starts flowd with the synthetic city's stations and a
// token file, and ingests the city's AFC day.
func startExportServer(t *testing.T) (srv *child, data string) {
	t.Helper()
	c := city.New(city.Config{Seed: 5, Scale: 0.05})
	dir := t.TempDir()
	stations := filepath.Join(dir, "stations.csv")
	if err := os.WriteFile(stations, c.StationsCSV(), 0o644); err != nil {
		t.Fatal(err)
	}
	flags := []string{"-stations", stations, "-tokens", writeTokens(t), "-retention-minute", "876000h", "-retention-hour", "876000h"}
	data = t.TempDir()
	srv = startFlowd(t, data, flags...)
	var afc bytes.Buffer
	if _, _, err := c.AFCDay(exportDay, &afc); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&afc)
	sc.Scan() // the header
	var rows []string
	for sc.Scan() {
		rows = append(rows, sc.Text())
	}
	for len(rows) > 0 {
		n := min(len(rows), 20000)
		r := authDo(t, "POST", srv.url+"/api/v1/ingest/swipes", tokIngest, "text/csv", []byte(city.AFCHeader+strings.Join(rows[:n], "\n")+"\n"))
		if r.status != 200 || !strings.Contains(string(r.body), fmt.Sprintf(`"accepted":%d`, n)) {
			t.Fatalf("ingest: %.300s", r)
		}
		rows = rows[n:]
	}
	return srv, data
}

// runExport runs `flowd export` and returns its stderr; it fails the test
// unless the exit status is want.
func runExport(t *testing.T, want int, args ...string) string {
	t.Helper()
	cmd := exec.Command(flowdBin, append([]string{"export"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != want {
		t.Fatalf("flowd export %s: exit status %d, want %d:\n%s", strings.Join(args, " "), code, want, stderr.String())
	}
	return stderr.String()
}

// readDir returns every file of dir by name.
func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = data
	}
	return out
}

func readCSV(t *testing.T, data []byte) (header []string, rows []map[string]string) {
	t.Helper()
	all, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil || len(all) == 0 {
		t.Fatalf("not CSV (%v): %.200s", err, data)
	}
	for _, r := range all[1:] {
		row := map[string]string{}
		for i, h := range all[0] {
			row[h] = r[i]
		}
		rows = append(rows, row)
	}
	return all[0], rows
}

// readGet GETs path with the read token and decodes the answer.
func readGet(t *testing.T, c *child, path string, v any) {
	t.Helper()
	r := authDo(t, "GET", c.url+path, tokRead, "", nil)
	if r.status != 200 {
		t.Fatalf("%s: %s", path, r)
	}
	r.json(t, v)
}

// TestExportHoldsOnlyReadTokenFigures exports the synthetic day with a
// read token from a real server, twice, and checks that the two exports
// are byte for byte the same, and that every figure of the files is the
// one a read token is answered when it asks for that figure by another
// route: a cell's hour through /series rather than /density, a station's
// hour through /density rather than /series, a station pair through the
// cell OD matrix rather than the station one; the same for a res-7
// export's cells. An admin's token, a day not yet settled and bad flags
// are refused, naming what was wrong.
func TestExportHoldsOnlyReadTokenFigures(t *testing.T) {
	srv, data := startExportServer(t)
	day := exportDay.Format(time.DateOnly)
	out1, out2 := t.TempDir(), t.TempDir()
	log := runExport(t, 0, "-url", srv.url, "-token", tokRead, "-dir", out1, "-day", day)
	if !strings.Contains(log, "export: 2019-01-07: ") || !strings.Contains(log, "answers (100%) 2019-01-07 station OD matrix") || strings.Contains(log, "\r") {
		t.Errorf("progress on stderr, not a terminal: want plain lines ending at 100%%:\n%s", log)
	}
	var spent [2]struct{ Spent float64 }
	readGet(t, srv, "/api/v1/privacy", &spent[0])
	runExport(t, 0, "-url", srv.url, "-token", tokRead, "-dir", out2, "-day", day)
	readGet(t, srv, "/api/v1/privacy", &spent[1])
	t.Logf("the read token spent ε %g on the first export, %g more on the second", spent[0].Spent, spent[1].Spent-spent[0].Spent)
	if spent[1].Spent != spent[0].Spent {
		t.Errorf("re-running the export cost ε %g: its figures are the same, so it should be free", spent[1].Spent-spent[0].Spent)
	}

	files, again := readDir(t, filepath.Join(out1, day)), readDir(t, filepath.Join(out2, day))
	var names []string
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	want := []string{"cells-res8.csv", "cells-res8.geojson", "manifest.json", "od-stations.csv", "od-stations.geojson", "stations.csv", "stations.geojson"}
	if !slices.Equal(names, want) {
		t.Fatalf("files %v, want %v (no temporary file left)", names, want)
	}
	for _, name := range names {
		if !bytes.Equal(files[name], again[name]) {
			t.Errorf("%s differs between two exports of the same day", name)
		}
	}

	for _, name := range []string{"cells-res8.csv", "stations.csv", "od-stations.csv"} {
		head := bytes.SplitN(files[name], []byte("\n"), 4)
		t.Logf("%s begins:\n%s", name, bytes.Join(head[:3], []byte("\n")))
	}
	checkManifest(t, srv, data, files)
	from, to := exportDay.Unix(), exportDay.Add(24*time.Hour).Unix()
	figures := 0 // card-derived figures of k or more checked

	// Cells: each cell's hours through /series.
	_, cellRows := readCSV(t, files["cells-res8.csv"])
	type cellHour struct{ cell, hour string }
	exported := map[cellHour]map[string]string{}
	for _, r := range cellRows {
		exported[cellHour{r["cell"], r["hour"]}] = r
	}
	asked := map[string]bool{}
	for _, r := range cellRows {
		if asked[r["cell"]] {
			continue
		}
		asked[r["cell"]] = true
		for _, m := range []string{"swipes_in", "swipes_out"} {
			var a struct{ Points [][2]int64 }
			readGet(t, srv, fmt.Sprintf("/api/v1/series?metric=%s&cells=%s&step=1h&from=%d&to=%d", m, r["cell"], from, to), &a)
			for _, p := range a.Points {
				hour := time.Unix(p[0], 0).UTC().Format(time.RFC3339)
				row, ok := exported[cellHour{r["cell"], hour}]
				got := "0"
				if ok {
					got = row[m]
				}
				if got != strconv.FormatInt(p[1], 10) {
					t.Errorf("cell %s hour %s %s: exported %s, a read token's /series says %d", r["cell"], hour, m, got, p[1])
				}
				if p[1] >= 10 {
					figures++
				}
			}
		}
	}

	// Stations: each hour's density at the stations' resolution.
	_, stationRows := readCSV(t, files["stations.csv"])
	density := map[string]map[string]string{} // hour+metric → cell → value
	for h := range 24 {
		at := exportDay.Add(time.Duration(h) * time.Hour)
		for _, m := range []string{"swipes_in", "swipes_out"} {
			var a struct {
				Cells []struct {
					Cell  string
					Value int64
				}
			}
			readGet(t, srv, fmt.Sprintf("/api/v1/density?metric=%s&res=9&bbox=119.9,30.0,120.5,30.6&from=%d&to=%d", m, at.Unix(), at.Add(time.Hour).Unix()), &a)
			byCell := map[string]string{}
			for _, c := range a.Cells {
				byCell[c.Cell] = strconv.FormatInt(c.Value, 10)
			}
			density[at.Format(time.RFC3339)+m] = byCell
		}
	}
	for _, r := range stationRows {
		for _, m := range []string{"swipes_in", "swipes_out"} {
			want, ok := density[r["hour"]+m][r["cell"]]
			if !ok {
				want = "0"
			}
			if r[m] != want {
				t.Errorf("station %s hour %s %s: exported %s, a read token's /density says %s", r["station"], r["hour"], m, r[m], want)
			}
			if n, _ := strconv.Atoi(want); n >= 10 {
				figures++
			}
		}
	}
	if len(stationRows) < 24*50 {
		t.Errorf("%d station rows: want 24 hours of every station", len(stationRows))
	}

	// Station pairs: the cell OD matrix at the stations' resolution.
	cellOf := map[string]string{}
	for _, r := range stationRows {
		cellOf[r["station"]] = r["cell"]
	}
	var od struct {
		Pairs []struct {
			Origin, Destination string
			Trips               int64
			MeanMinutes         *float64 `json:"mean_minutes"`
		}
	}
	readGet(t, srv, fmt.Sprintf("/api/v1/od?by=cell&res=9&top=100000&from=%d&to=%d", from, to), &od)
	byCells := map[string][2]string{}
	for _, p := range od.Pairs {
		mean := ""
		if p.MeanMinutes != nil {
			mean = strconv.FormatFloat(*p.MeanMinutes, 'g', -1, 64)
		}
		byCells[p.Origin+">"+p.Destination] = [2]string{strconv.FormatInt(p.Trips, 10), mean}
	}
	_, odRows := readCSV(t, files["od-stations.csv"])
	for _, r := range odRows {
		want, ok := byCells[cellOf[r["origin"]]+">"+cellOf[r["destination"]]]
		if !ok || r["trips"] != want[0] || r["mean_minutes"] != want[1] {
			t.Errorf("pair %s→%s: exported %s trips, %s min; a read token's cell OD matrix says %v (listed: %v)", r["origin"], r["destination"], r["trips"], r["mean_minutes"], want, ok)
		}
		figures++
	}
	if len(odRows) != len(byCells) {
		t.Errorf("%d pairs exported, the cell OD matrix releases %d", len(odRows), len(byCells))
	}
	t.Logf("%d cell rows, %d station rows, %d pairs; %d figures of k or more compared", len(cellRows), len(stationRows), len(odRows), figures)
	if figures < 1000 || len(odRows) < 20 {
		t.Errorf("only %d figures of k or more and %d pairs: the synthetic day is too small to show anything", figures, len(odRows))
	}

	// The GeoJSON files carry the same rows.
	for _, name := range []string{"cells-res8", "stations", "od-stations"} {
		var fc struct{ Features []json.RawMessage }
		if err := json.Unmarshal(files[name+".geojson"], &fc); err != nil {
			t.Fatalf("%s.geojson: %v", name, err)
		}
		_, rows := readCSV(t, files[name+".csv"])
		if len(fc.Features) != len(rows) {
			t.Errorf("%s.geojson: %d features, the CSV %d rows", name, len(fc.Features), len(rows))
		}
	}
	var cellsGeo struct {
		Features []struct{ Properties map[string]any }
	}
	json.Unmarshal(files["cells-res8.geojson"], &cellsGeo)
	for i, f := range cellsGeo.Features {
		r := cellRows[i]
		if f.Properties["cell"] != r["cell"] || f.Properties["hour"] != r["hour"] || fmt.Sprint(f.Properties["swipes_in"]) != r["swipes_in"] {
			t.Errorf("cells-res8.geojson feature %d %v: the CSV row is %v", i, f.Properties, r)
			break
		}
	}

	// Resolution 7: the coarser cells, checked the same way for swipes in.
	res7 := t.TempDir()
	runExport(t, 0, "-url", srv.url, "-token", tokRead, "-dir", res7, "-day", day, "-res", "7")
	coarse, err := os.ReadFile(filepath.Join(res7, day, "cells-res7.csv"))
	if err != nil {
		t.Fatal(err)
	}
	_, coarseRows := readCSV(t, coarse)
	seen := map[string]map[string]string{}
	for _, r := range coarseRows {
		if seen[r["cell"]] == nil {
			seen[r["cell"]] = map[string]string{}
		}
		seen[r["cell"]][r["hour"]] = r["swipes_in"]
	}
	for cell, hours := range seen {
		var a struct{ Points [][2]int64 }
		readGet(t, srv, fmt.Sprintf("/api/v1/series?metric=swipes_in&cells=%s&step=1h&from=%d&to=%d", cell, from, to), &a)
		for _, p := range a.Points {
			hour := time.Unix(p[0], 0).UTC().Format(time.RFC3339)
			if got, ok := hours[hour]; (ok || p[1] != 0) && got != strconv.FormatInt(p[1], 10) {
				t.Errorf("res-7 cell %s hour %s: exported %q, a read token's /series says %d", cell, hour, got, p[1])
			}
		}
	}
	for cell := range seen {
		if c := h3.Cell(h3.IndexFromString(cell)); !c.IsValid() || c.Resolution() != 7 {
			t.Errorf("cells-res7.csv names %s: not a res-7 cell", cell)
		}
	}
	if len(seen) < 5 {
		t.Errorf("only %d res-7 cells exported", len(seen))
	}

	// An admin sees exact figures: not for publishing.
	if log := runExport(t, 1, "-url", srv.url, "-token", tokAdmin, "-dir", t.TempDir(), "-day", day); !strings.Contains(log, "exact figures") {
		t.Errorf("an admin's export: %s; want it refused for its exact figures", log)
	}
	// Today has not settled.
	today := time.Now().UTC().Format(time.DateOnly)
	if log := runExport(t, 1, "-url", srv.url, "-token", tokRead, "-dir", t.TempDir(), "-day", today); !strings.Contains(log, "day "+today+" has not settled") {
		t.Errorf("an export of today: %s; want it refused as not settled", log)
	}
	for _, bad := range [][]string{{"-res", "9"}, {"-bbox", "120,30"}, {"-day", "2019-13-01"}} {
		log := runExport(t, 1, append([]string{"-url", srv.url, "-token", tokRead, "-dir", t.TempDir()}, bad...)...)
		if !strings.Contains(log, bad[0]+" ") || !strings.Contains(log, bad[1]) {
			t.Errorf("flowd export %s: %s; want an error naming the flag and its value", strings.Join(bad, " "), log)
		}
	}
}

// checkManifest checks that the manifest states the mechanism and its
// parameters as the server does, names each file by its SHA-256, and
// holds no secret.
func checkManifest(t *testing.T, srv *child, data string, files map[string][]byte) {
	t.Helper()
	var m struct {
		Day     string
		Privacy struct {
			Mechanism  string
			Epsilon    float64
			K          int64
			PeopleStep string `json:"people_step"`
			LinkedStep string `json:"linked_step"`
			FinestRes  int    `json:"finest_res"`
			NoiseKeyID string `json:"noise_key_id"`
		}
		Tables []struct {
			Files []struct {
				Name   string
				SHA256 string
			}
		}
	}
	if err := json.Unmarshal(files["manifest.json"], &m); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	var terms struct {
		NoiseKeyID string `json:"noise_key_id"`
	}
	readGet(t, srv, "/api/v1/privacy", &terms)
	p := m.Privacy
	if m.Day != "2019-01-07" || p.Mechanism == "" || p.Epsilon != 0.5 || p.K != 10 || p.PeopleStep != "15m0s" || p.LinkedStep != "1h0m0s" ||
		p.FinestRes != 9 || len(p.NoiseKeyID) != 16 || p.NoiseKeyID != terms.NoiseKeyID {
		t.Errorf("manifest: %+v; want the day, the mechanism, ε 0.5, k 10, the floors and the server's noise key id %s", m, terms.NoiseKeyID)
	}
	listed := 0
	for _, tb := range m.Tables {
		for _, f := range tb.Files {
			sum := sha256.Sum256(files[f.Name])
			if hex.EncodeToString(sum[:]) != f.SHA256 {
				t.Errorf("manifest: %s has SHA-256 %s, the file %x", f.Name, f.SHA256, sum)
			}
			listed++
		}
	}
	if listed != len(files)-1 {
		t.Errorf("manifest lists %d files of %d", listed, len(files)-1)
	}
	for _, key := range []string{"privacy.key", "secret.key"} {
		secret, err := os.ReadFile(filepath.Join(data, key))
		if err != nil || len(bytes.TrimSpace(secret)) < 32 {
			t.Fatalf("%s: %v", key, err)
		}
		for name, body := range files {
			if bytes.Contains(body, bytes.TrimSpace(secret)) {
				t.Errorf("%s holds the secret of %s", name, key)
			}
		}
	}
}

// TestScheduledExport: a server started with -export-dir writes the last
// day released in full, and the week before it, at once; each day's files
// are byte for byte those `flowd export` writes with a read token, so
// the schedule passes the same layer. Without -tokens it refuses to start.
func TestScheduledExport(t *testing.T) {
	data, tokens := t.TempDir(), writeTokens(t)
	flags := append(registryFlags(t), "-tokens", tokens)
	srv := startFlowd(t, data, flags...)
	var terms struct {
		LinkedUntil time.Time `json:"linked_released_until"`
	}
	readGet(t, srv, "/api/v1/privacy", &terms)
	last := terms.LinkedUntil.Truncate(24*time.Hour).AddDate(0, 0, -1)
	var nd strings.Builder
	for i := range 60 {
		at := last.Add(8*time.Hour + time.Duration(i)*time.Minute)
		fmt.Fprintf(&nd, `{"time":%d,"card":"c%d","dir":"in","station":"S1"}`+"\n", at.Unix(), i)
		fmt.Fprintf(&nd, `{"time":%d,"card":"c%d","dir":"out","station":"S2"}`+"\n", at.Add(20*time.Minute).Unix(), i)
	}
	if r := authDo(t, "POST", srv.url+"/api/v1/ingest/swipes", tokIngest, "application/x-ndjson", []byte(nd.String())); r.status != 200 || !strings.Contains(string(r.body), `"accepted":120`) {
		t.Fatalf("ingest: %s", r)
	}
	srv.stop()

	dir := t.TempDir()
	srv = startFlowd(t, data, append(flags, "-export-dir", dir, "-export-every", "1h")...)
	day := last.Format(time.DateOnly)
	waitFor(t, 60*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(dir, day, "manifest.json"))
		return err == nil
	})
	// The log line follows the manifest's rename: give it a moment.
	logged := func() bool {
		return strings.Contains(srv.Logs(), "flowd: export: "+day+" written to "+filepath.Join(dir, day))
	}
	for end := time.Now().Add(5 * time.Second); !logged() && time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond)
	}
	if !logged() {
		t.Errorf("no log line of the export of %s:\n%s", day, srv.Logs())
	}
	days, _ := os.ReadDir(dir)
	if len(days) != 7 {
		t.Errorf("%d days written into an empty directory, want the last and the 6 before it", len(days))
	}

	byHand := t.TempDir()
	runExport(t, 0, "-url", srv.url, "-token", tokRead, "-dir", byHand, "-day", day)
	scheduled, read := readDir(t, filepath.Join(dir, day)), readDir(t, filepath.Join(byHand, day))
	if len(scheduled) != 7 {
		t.Errorf("%d files written by the schedule, want 7", len(scheduled))
	}
	for name, body := range read {
		if !bytes.Equal(scheduled[name], body) {
			t.Errorf("%s: the scheduled export differs from a read token's", name)
		}
	}
	_, pairs := readCSV(t, scheduled["od-stations.csv"])
	if len(pairs) != 1 || pairs[0]["origin"] != "S1" || pairs[0]["destination"] != "S2" {
		t.Errorf("OD pairs %v, want S1→S2 alone", pairs)
	} else if n, _ := strconv.Atoi(pairs[0]["trips"]); n < 45 || n > 75 {
		t.Errorf("S1→S2: %d trips exported; want 60 give or take the layer's noise", n)
	}

	_, err := startFlowdEnv(t, t.TempDir(), nil, "-export-dir", dir)
	if err == nil || !strings.Contains(err.Error(), "-export-dir "+dir+" needs -tokens") {
		t.Errorf("-export-dir without -tokens: %v; want a refusal naming -tokens", err)
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// longRetention keeps the years of the real samples.
var longRetention = []string{"-retention-minute", "876000h", "-retention-hour", "876000h"}

// sharedData returns the path of a file of ../shared/data, skipping the test
// when the folder is not beside the checkout (a user's clone).
func sharedData(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join("..", "..", "..", "shared", "data", name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("real sample %s not found (%v): ../shared/data is not beside this checkout", name, err)
	}
	return p
}

// docsMap is a mapping file of docs/import, the ones the documentation shows.
func docsMap(name string) string { return filepath.Join("..", "..", "docs", "import", name) }

// runImport runs `flowd import` with args and returns its output and exit status.
func runImport(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(flowdBin, append([]string{"import"}, args...)...).CombinedOutput()
	code := exitCode(err)
	if code < 0 {
		t.Fatalf("flowd import did not run: %v", err)
	}
	return string(out), code
}

func wantIn(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("import output lacks %q:\n%s", w, tail(out, 3000))
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// The Melbourne pedestrian counts, nine Januaries of one column per sensor
// named by its description, load as they are with the mapping file of
// docs/import: names resolved through the sensor registry (loaded from
// the city's own sensor list) or the file, local times in
// Australia/Melbourne, every -1, undefined and empty cell reported missing
// and none counted, and the 2010 file's totals row (no date) rejected by
// its line. The expected figures were computed from the files apart from
// flowd (a short Python script summing every cell that is not a missing
// marker); 2010's equals the file's own totals row, 7,395,066.
func TestImportMelbourneWideTables(t *testing.T) {
	sensors := sharedData(t, "melbourne-sensor-locations.csv")
	type year struct {
		events, sum, missing int64
	}
	years := map[int]year{
		2010: {13392, 7395066, 0}, 2011: {12648, 7189013, 744}, 2012: {13392, 7951156, 0},
		2013: {13032, 8002388, 7056}, 2014: {20494, 11575942, 2}, 2015: {24546, 11370469, 6},
		2016: {30504, 18272877, 0}, 2017: {31248, 15806279, 0}, 2018: {27269, 17060212, 3979},
	}
	var files []string
	for y := 2010; y <= 2018; y++ {
		files = append(files, sharedData(t, fmt.Sprintf("melbourne-pedestrian-counts-%d-01.csv", y)))
	}
	srv := startFlowd(t, t.TempDir(), append(longRetention, "-sensors", sensors)...)
	out, code := runImport(t, append([]string{"-url", srv.url, "-map", docsMap("melbourne-pedestrian-counts.json"),
		"-state", t.TempDir(), "-show-errors", "100000"}, files...)...)
	if code != 2 {
		t.Errorf("exit %d, want 2 (the 2010 totals row is rejected)", code)
	}
	wantIn(t, out,
		"imported 186525 events from 9 files",
		"; 1 lines rejected; 11787 cells missing",
		"melbourne-pedestrian-counts-2010-01.csv:8762: field \"Date\" value \"\": required",
		"melbourne-pedestrian-counts-2011-01.csv:2: column \"Bourke Street Mall (North)\" value \"\": missing",
		"melbourne-pedestrian-counts-2014-01.csv:726: column \"QV Market-Elizabeth (West)\" value \"undefined\": missing",
		"melbourne-pedestrian-counts-2018-01.csv:2: column \"Flagstaff Station\" value \"-1\": missing",
	)
	if n := strings.Count(out, ": missing (not counted as 0)"); n != 11787 {
		t.Errorf("%d missing cells listed, want 11787", n)
	}
	const bbox = "144.90,-37.86,145.00,-37.77"
	for y, want := range years {
		// Melbourne's January is summer time, UTC+11: the month starts at
		// 13:00 UTC on 31 December.
		from := time.Date(y-1, 12, 31, 13, 0, 0, 0, time.UTC)
		s := srv.series(t, fmt.Sprintf("metric=count_person&bbox=%s&step=1h&from=%d&to=%d", bbox, from.Unix(), from.AddDate(0, 0, 31).Unix()))
		if s.Total != want.sum {
			t.Errorf("January %d: %d people counted, want %d", y, s.Total, want.sum)
		}
		if y == 2018 && (len(s.Points) == 0 || s.Points[0][0] != from.Unix() || s.Points[0][1] != 49073) {
			t.Errorf("January 2018's first hour (1 January 00:00 in Melbourne, 13:00 UTC before): %v, want [%d 49073] (its row without the column the mapping leaves out)", s.Points[:1], from.Unix())
		}
	}
}

// Hangzhou's AFC records name stations by the competition's stationID; the
// mapping file joins it to line and name (hangzhou-metro-station-ids.csv)
// and those to coordinates (hangzhou-metro-stations.csv). The raw records
// are not public here, so the test writes rows of their schema for every
// stationID. Station 46 is listed once per line (2 and 4) and stays one
// station; stations 10 and 51 are spelt 凤起路A站 and 凤起路B站 in the ids
// file and need the mapping's names, without which their taps are rejected
// by line, never dropped or placed elsewhere.
func TestImportHangzhouAFCStationJoin(t *testing.T) {
	sharedData(t, "hangzhou-metro-station-ids.csv")
	sharedData(t, "hangzhou-metro-stations.csv")
	srv := startFlowd(t, t.TempDir(), longRetention...)
	dir := t.TempDir()
	var afc strings.Builder
	afc.WriteString("time,lineID,stationID,deviceID,status,userID,payType\n")
	var in, out, at46 int64
	for id := 0; id <= 80; id++ {
		for k := 0; k < id%5+1; k++ {
			// 08:mm in Hangzhou (UTC+8) is 00:mm UTC.
			fmt.Fprintf(&afc, "2019-01-07 08:%02d:%02d,B,%d,%d,1,C%06d%02d,1\n", k, id%60, id, id*40, id, k)
			fmt.Fprintf(&afc, "2019-01-07 08:%02d:%02d,B,%d,%d,0,C%06d%02d,1\n", k+20, id%60, (id+7)%81, id*40, id, k)
			in++
			out++
			if id == 46 {
				at46++
			}
		}
	}
	path := filepath.Join(dir, "afc-2019-01-07.csv")
	os.WriteFile(path, []byte(afc.String()), 0o644)

	text, code := runImport(t, "-url", srv.url, "-map", docsMap("hangzhou-afc.json"), "-state", t.TempDir(), path)
	if code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, text)
	}
	wantIn(t, text, fmt.Sprintf("imported %d events from 1 files", in+out), "; 0 lines rejected")
	day := time.Date(2019, 1, 7, 0, 0, 0, 0, time.UTC)
	q := fmt.Sprintf("&bbox=119.5,29.8,120.7,30.6&step=1h&from=%d&to=%d", day.Unix(), day.Add(24*time.Hour).Unix())
	if s := srv.series(t, "metric=swipes_in"+q); s.Total != in || s.Points[0][1] != in {
		t.Errorf("swipes_in: %d in all, %v in the first hour; want %d, all between 00:00 and 01:00 UTC", s.Total, s.Points[:1], in)
	}
	if s := srv.series(t, "metric=swipes_out"+q); s.Total != out {
		t.Errorf("swipes_out: %d, want %d", s.Total, out)
	}
	// 钱江路站 (120.118106, 30.282065 in the coordinates file, on lines 2
	// and 4 alike).
	cell := cellOf(t, 30.282065, 120.118106, 9).String()
	if s := srv.series(t, fmt.Sprintf("metric=swipes_in&cells=%s&step=1h&from=%d&to=%d", cell, day.Unix(), day.Add(time.Hour).Unix())); s.Total != at46 {
		t.Errorf("taps in at station 46's cell: %d, want %d", s.Total, at46)
	}

	// The same join without the names of 10 and 51: their taps are
	// rejected, each by line, and said at the start.
	mapping := fmt.Sprintf(`{"layout":"rows","kind":"swipes","tz":"Asia/Shanghai",
		"columns":{"card":"userID","dir":"status","station":"stationID","line":null,"mode":null},
		"stations":{"ids":%q,"coordinates":%q}}`,
		mustAbs(t, sharedData(t, "hangzhou-metro-station-ids.csv")), mustAbs(t, sharedData(t, "hangzhou-metro-stations.csv")))
	mapPath := filepath.Join(dir, "no-names.json")
	os.WriteFile(mapPath, []byte(mapping), 0o644)
	only := filepath.Join(dir, "afc-10-51.csv")
	os.WriteFile(only, []byte("time,lineID,stationID,deviceID,status,userID,payType\n"+
		"2019-01-07 09:00:00,A,10,400,1,Cx1,1\n2019-01-07 09:00:00,C,51,2040,1,Cx2,1\n"), 0o644)
	text, code = runImport(t, "-url", srv.url, "-map", mapPath, "-state", t.TempDir(), only)
	if code != 3 {
		t.Errorf("taps only at stations the join cannot place: exit %d, want 3", code)
	}
	wantIn(t, text, "station 10 (line 1, 凤起路A站) has no row of that line and name in",
		only+":2: field \"stationID\" value \"10\": station 10 (line 1, 凤起路A站)",
		only+":3: field \"stationID\" value \"51\": station 51 (line 2, 凤起路B站)",
		"imported 0 events from 1 files", "; 2 lines rejected")
}

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Buenos Aires' card taps (rail CHECK IN / CHECK OUT; bus and subway taps,
// which have no direction, are boardings) load with the mapping file of
// docs/import: hour-resolution local times, coordinates, cards.
func TestImportBuenosAiresTaps(t *testing.T) {
	path := sharedData(t, "buenos-aires-afc-taps-sample.csv")
	srv := startFlowd(t, t.TempDir(), longRetention...)
	text, code := runImport(t, "-url", srv.url, "-map", docsMap("buenos-aires-taps.json"), "-state", t.TempDir(), path)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, text)
	}
	wantIn(t, text, "imported 29 events from 1 files", "; 0 lines rejected")
	// 11 September 2019 in Buenos Aires (UTC-3) starts at 03:00 UTC; the
	// first taps are at hour 6, the last at hour 22.
	from := time.Date(2019, 9, 11, 3, 0, 0, 0, time.UTC)
	q := fmt.Sprintf("&bbox=-59.0,-35.0,-58.0,-34.4&step=1h&from=%d&to=%d", from.Unix(), from.Add(24*time.Hour).Unix())
	in := srv.series(t, "metric=swipes_in"+q)
	if in.Total != 26 || in.Points[6][1] != 2 || in.Points[5][1] != 0 {
		t.Errorf("swipes_in: %d in all, %d at 06:00 and %d at 05:00 local; want 26, 2 and 0", in.Total, in.Points[6][1], in.Points[5][1])
	}
	if out := srv.series(t, "metric=swipes_out"+q); out.Total != 3 {
		t.Errorf("swipes_out: %d, want 3", out.Total)
	}
}

// A GTFS-ride board_alight.txt and a PeMS station 5-minute file (written
// here: no public sample sits in ../shared/data) load by -layout alone,
// their local times in America/Los_Angeles across the clock changes of
// 2018: a GTFS time counts from noon minus 12 hours of its service day (on
// 4 November, 01:00 PDT); PeMS' repeated hour 01:00–01:55 lands once in
// summer time and once in winter time, and 02:30 on 11 March, which never
// happened, is rejected naming its line.
func TestImportGTFSRideAndPeMS(t *testing.T) {
	dir := t.TempDir()
	// The feed's stops.txt, as it is, and the PeMS station, are the sensors.
	sensors := filepath.Join(dir, "sensors.csv")
	os.WriteFile(sensors, []byte("id,name,lat,lng\n400001,I-80 E Ashby,37.8500,-122.2900\n"), 0o644)
	srv := startFlowd(t, t.TempDir(), append(longRetention, "-sensors", sensors)...)
	stops := "stop_id,stop_code,stop_name,stop_lat,stop_lon,location_type\nS1,101,Main & 1st,37.7750,-122.4190,0\nS2,109,Main & 9th,37.7790,-122.4100,0\n400001,,I-80 E Ashby,37.8500,-122.2900,0\n"
	if r := do(t, "PUT", srv.url+"/api/v1/sensors", "text/csv", []byte(stops), false); r.status != 200 {
		t.Fatalf("PUT stops.txt as sensors: %s", r)
	}

	ride := filepath.Join(dir, "board_alight.txt")
	os.WriteFile(ride, []byte("trip_id,stop_id,stop_sequence,record_use,boardings,alightings,service_date,service_arrival_time,service_departure_time\n"+
		"t1,S1,1,0,12,0,20181104,00:30:00,00:30:30\n"+
		"t1,S2,2,0,3,9,20181104,00:41:00,\n"+
		"t2,S1,1,0,7,,20181104,13:00:00,\n"+
		"t3,S2,5,0,4,6,20181104,25:10:00,25:10:00\n"), 0o644)
	text, code := runImport(t, "-url", srv.url, "-layout", "gtfs-ride", "-tz", "America/Los_Angeles", "-state", t.TempDir(), ride)
	if code != 0 {
		t.Fatalf("gtfs-ride: exit %d:\n%s", code, text)
	}
	wantIn(t, text, "imported 7 events from 1 files", "; 0 lines rejected; 1 cells missing",
		ride+":4: column \"alightings\" value \"\": missing")
	sf := time.Date(2018, 11, 4, 8, 0, 0, 0, time.UTC)
	q := fmt.Sprintf("&bbox=-122.5,37.7,-122.3,37.8&step=10m&from=%d&to=%d", sf.Unix(), sf.Add(26*time.Hour).Unix())
	board := srv.series(t, "metric=count_boarding"+q)
	// 00:30 counts from 01:00 PDT: 08:30 UTC; 13:00 is 21:00 UTC; 25:10 is
	// 01:10 PST on the 5th, 09:10 UTC.
	got := map[int64]int64{}
	for _, p := range board.Points {
		if p[1] != 0 {
			got[p[0]] = p[1]
		}
	}
	want := map[int64]int64{sf.Add(30 * time.Minute).Unix(): 12, sf.Add(40 * time.Minute).Unix(): 3, sf.Add(13 * time.Hour).Unix(): 7, sf.Add(25*time.Hour + 10*time.Minute).Unix(): 4}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("boardings by 10 minutes (unix: count): %v, want %v", got, want)
	}
	if a := srv.series(t, "metric=count_alighting"+q); a.Total != 15 {
		t.Errorf("alightings: %d, want 15", a.Total)
	}

	var pems strings.Builder
	row := func(ts string, flow string) {
		fmt.Fprintf(&pems, "%s,400001,4,80,E,ML,.43,10,100,%s,.0512,60.0,2,40,.05,60,1\n", ts, flow)
	}
	row("11/04/2018 00:55:00", "100")
	for pass := 0; pass < 2; pass++ {
		for m := 0; m < 60; m += 5 {
			row(fmt.Sprintf("11/04/2018 01:%02d:00", m), fmt.Sprint(10+pass))
		}
	}
	row("11/04/2018 02:00:00", "")
	row("03/11/2018 02:30:00", "50")
	pemsPath := filepath.Join(dir, "d04_text_station_5min_2018_11_04.txt")
	os.WriteFile(pemsPath, []byte(pems.String()), 0o644)
	text, code = runImport(t, "-url", srv.url, "-layout", "pems", "-tz", "America/Los_Angeles", "-state", t.TempDir(), pemsPath)
	if code != 2 {
		t.Errorf("pems with a time that never happened: exit %d, want 2", code)
	}
	wantIn(t, text, "imported 25 events from 1 files", "; 1 lines rejected; 1 cells missing",
		pemsPath+":27: field \"Timestamp\" value \"03/11/2018 02:30:00\": 2018-03-11 02:30:00 does not exist in America/Los_Angeles",
		pemsPath+":26: column \"Total Flow\" value \"\": missing")
	// 00:55 PDT is 07:55 UTC; the first 01:00–01:55 (PDT) is 08:00–08:55
	// UTC, the second (PST) 09:00–09:55.
	q = fmt.Sprintf("&cells=%s&step=1h&from=%d&to=%d", cellOf(t, 37.85, -122.29, 9), sf.Add(-time.Hour).Unix(), sf.Add(2*time.Hour).Unix())
	veh := srv.series(t, "metric=count_vehicle"+q)
	if len(veh.Points) != 3 || veh.Points[0][1] != 100 || veh.Points[1][1] != 120 || veh.Points[2][1] != 132 {
		t.Errorf("vehicles by hour from 07:00 UTC: %v, want 100, 12×10, 12×11", veh.Points)
	}
	speed := srv.series(t, "metric=speed_vehicle"+q)
	if wantSpeed := int64(34003); speed.Total < wantSpeed-400 || speed.Total > wantSpeed+400 {
		t.Errorf("speed_vehicle (km/h × count): %d, want about %d (60 mph is 96.6 km/h)", speed.Total, wantSpeed)
	}
}

var summaryLine = regexp.MustCompile(`imported (\d+) events from (\d+) files in [^;]+; (\d+) lines rejected(; \d+ cells missing)?`)

// An import interrupted with SIGINT finishes the batch in flight, keeps its
// progress and exits 130; run again, it resumes after the last acknowledged
// line and ends with the totals — in its summary and in the store — of an
// uninterrupted import of the same file.
func TestImportResumesAfterSIGINT(t *testing.T) {
	dir := t.TempDir()
	g := writeGates(t, dir, 12000)
	sensors, file, mapping, start := g.sensors, g.file, g.mapping, g.start
	args := func(url, state string) []string {
		return []string{"import", "-url", url, "-map", mapping, "-batch", "300", "-state", state, file}
	}
	q := fmt.Sprintf("metric=count_person&bbox=120.1,30.2,120.2,30.3&step=720h&from=%d&to=%d", start.Unix(), start.Add(30*24*time.Hour).Unix())

	whole := startFlowd(t, t.TempDir(), append(longRetention, "-sensors", sensors)...)
	out, err := exec.Command(flowdBin, args(whole.url, t.TempDir())...).CombinedOutput()
	if code := exitCode(err); code != 2 {
		t.Fatalf("uninterrupted import: exit %d, want 2 (the oops cells):\n%s", code, tail(string(out), 2000))
	}
	wantSummary := summaryLine.FindStringSubmatch(string(out))
	wantTotal := whole.series(t, q).Total
	if wantSummary == nil || wantTotal != g.sumThrough(1<<30) {
		t.Fatalf("uninterrupted import: stored %d, want the table's %d; its output:\n%s", wantTotal, g.sumThrough(1<<30), tail(string(out), 2000))
	}

	split := startFlowd(t, t.TempDir(), append(longRetention, "-sensors", sensors)...)
	state := t.TempDir()
	cmd := exec.Command(flowdBin, args(split.url, state)...)
	var first strings.Builder
	cmd.Stdout, cmd.Stderr = &first, &first
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once the ledger shows acknowledged batches.
	waitLedger(t, state, regexp.MustCompile(`"done": [1-9]`))
	cmd.Process.Signal(os.Interrupt)
	err = cmd.Wait()
	if code := exitCode(err); code != 130 {
		t.Fatalf("interrupted import: exit %d, want 130:\n%s", code, tail(first.String(), 2000))
	}
	wantIn(t, first.String(), "interrupted", "stopped: kept", "run the same command again to resume")
	if part := split.series(t, q).Total; part <= 0 || part >= wantTotal {
		t.Fatalf("after the interruption the store holds %d of %d: the import was not stopped midway", part, wantTotal)
	}

	out, err = exec.Command(flowdBin, args(split.url, state)...).CombinedOutput()
	if code := exitCode(err); code != 2 {
		t.Fatalf("resumed import: exit %d, want 2:\n%s", code, tail(string(out), 2000))
	}
	wantIn(t, string(out), "resuming "+file+" after line ")
	got := summaryLine.FindStringSubmatch(string(out))
	if got == nil || fmt.Sprint(got[1:]) != fmt.Sprint(wantSummary[1:]) {
		t.Errorf("resumed import's summary %q, want the uninterrupted one's %q", got, wantSummary)
	}
	if total := split.series(t, q).Total; total != wantTotal {
		t.Errorf("after resuming the store holds %d people, want %d as without the interruption", total, wantTotal)
	}
	if ledgers, _ := filepath.Glob(filepath.Join(state, "import-*.json")); len(ledgers) != 0 {
		t.Errorf("a finished import left its ledger: %v", ledgers)
	}
}

// gates is a wide table of one minute a row and eight sensors named in
// the registry ("Gate 1"…), with -1 cells (missing) and "oops" cells
// (rejected), and the flowd import files that go with it.
type gates struct {
	sensors, file, mapping string
	start                  time.Time
	rowSum                 []int64 // of the valid cells of each data row; row r is line r+2
}

func writeGates(t *testing.T, dir string, rows int) gates {
	g := gates{sensors: filepath.Join(dir, "sensors.csv"), file: filepath.Join(dir, "gates.csv"),
		mapping: filepath.Join(dir, "gates.json"), start: time.Date(2019, 3, 1, 0, 0, 0, 0, time.UTC)}
	var reg, head strings.Builder
	reg.WriteString("id,name,lat,lng\n")
	head.WriteString("time")
	for i := 1; i <= 8; i++ {
		fmt.Fprintf(&reg, "g%d,Gate %d,30.%04d,120.1500\n", i, i, 2500+i*20)
		fmt.Fprintf(&head, ",Gate %d", i)
	}
	os.WriteFile(g.sensors, []byte(reg.String()), 0o644)
	var table strings.Builder
	table.WriteString(head.String() + "\n")
	for r := 0; r < rows; r++ {
		table.WriteString(g.start.Add(time.Duration(r) * time.Minute).Format("2006-01-02 15:04"))
		var sum int64
		for i := 1; i <= 8; i++ {
			switch v := (r*7 + i*13) % 97; {
			case v == 0:
				table.WriteString(",-1")
			case v == 1:
				table.WriteString(",oops")
			default:
				fmt.Fprintf(&table, ",%d", v)
				sum += int64(v)
			}
		}
		table.WriteString("\n")
		g.rowSum = append(g.rowSum, sum)
	}
	os.WriteFile(g.file, []byte(table.String()), 0o644)
	os.WriteFile(g.mapping, []byte(`{"layout":"wide","kind":"counts","class":"person","interval":"1m","time":{"column":"time","formats":["2006-01-02 15:04"]},"missing":["-1"]}`), 0o644)
	return g
}

// sumThrough is the sum of the data rows up to file line line.
func (g gates) sumThrough(line int) int64 {
	var s int64
	for r := 0; r+2 <= line && r < len(g.rowSum); r++ {
		s += g.rowSum[r]
	}
	return s
}

// waitLedger waits until the ledger under state matches re.
func waitLedger(t *testing.T, state string, re *regexp.Regexp) []byte {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ledgers, _ := filepath.Glob(filepath.Join(state, "import-*.json"))
		if len(ledgers) == 1 {
			if data, _ := os.ReadFile(ledgers[0]); re.Match(data) {
				return data
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("the import's ledger did not match %s within 30 s", re)
	return nil
}

// An import killed while the server holds its batch (stopped with SIGSTOP,
// so the answer cannot come) leaves that batch in flight. The next run
// refuses to guess, naming its lines; the store says whether the server
// kept it, as it would tell a person, and -inflight skip or resend then
// ends with every reading counted once.
func TestImportInFlightBatchOfAKilledImport(t *testing.T) {
	dir := t.TempDir()
	g := writeGates(t, dir, 6000)
	srv := startFlowd(t, t.TempDir(), append(longRetention, "-sensors", g.sensors)...)
	state := t.TempDir()
	args := func(extra ...string) []string {
		return append(append([]string{"import", "-url", srv.url, "-map", g.mapping, "-batch", "300", "-state", state}, extra...), g.file)
	}
	q := fmt.Sprintf("metric=count_person&bbox=120.1,30.2,120.2,30.3&step=720h&from=%d&to=%d", g.start.Unix(), g.start.Add(30*24*time.Hour).Unix())

	cmd := exec.Command(flowdBin, args()...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitLedger(t, state, regexp.MustCompile(`(?s)"done": [1-9].*"in_flight"`))
	srv.cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(300 * time.Millisecond) // the importer now waits on a batch
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	srv.cmd.Process.Signal(syscall.SIGCONT)

	var ledger struct {
		Files []struct {
			Done int `json:"done"`
		} `json:"files"`
		InFlight []struct{ From, To int } `json:"in_flight"`
	}
	json.Unmarshal(waitLedger(t, state, regexp.MustCompile(`in_flight`)), &ledger)
	if len(ledger.InFlight) != 1 || ledger.InFlight[0].From != ledger.Files[0].Done+1 {
		t.Fatalf("ledger of the killed import: %+v, want one batch in flight right after the done lines", ledger)
	}
	span := ledger.InFlight[0]
	out, err := exec.Command(flowdBin, args()...).CombinedOutput()
	if code := exitCode(err); code != 1 || !strings.Contains(string(out), fmt.Sprintf("%s lines %d-%d", mustAbs(t, g.file), span.From, span.To)) ||
		!strings.Contains(string(out), "whether it kept them is unknown") {
		t.Fatalf("resuming without -inflight: exit %d, want 1 naming lines %d-%d:\n%s", code, span.From, span.To, out)
	}

	// Give the server time to finish what it received, then look.
	time.Sleep(500 * time.Millisecond)
	how := ""
	switch stored := srv.series(t, q).Total; stored {
	case g.sumThrough(span.From - 1):
		how = "resend"
	case g.sumThrough(span.To):
		how = "skip"
	default:
		t.Fatalf("the store holds %d: neither the %d of the lines before the batch nor the %d with it", stored, g.sumThrough(span.From-1), g.sumThrough(span.To))
	}
	out, err = exec.Command(flowdBin, args("-inflight", how)...).CombinedOutput()
	if code := exitCode(err); code != 2 {
		t.Fatalf("resuming with -inflight %s: exit %d, want 2 (the oops cells):\n%s", how, code, tail(string(out), 2000))
	}
	if total := srv.series(t, q).Total; total != g.sumThrough(1<<30) {
		t.Errorf("after -inflight %s the store holds %d, want %d", how, total, g.sumThrough(1<<30))
	}
	t.Logf("the killed import's batch was settled with -inflight %s", how)
}

// -tz reads flowd's own offset-less times ("2019-01-07 06:41:33", which
// the server takes as UTC) in a zone, in CSV and NDJSON alike; absolute
// times stay as they are, and a time in a spring-forward gap is rejected
// by the importer, naming its line.
func TestImportFlowdFilesInLocalTime(t *testing.T) {
	srv := startFlowd(t, t.TempDir(), append(longRetention, registryFlags(t)...)...)
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "counts.csv")
	os.WriteFile(csvPath, []byte("time,sensor,class,count\n"+
		"2019-03-10 01:30:00,D1,car,5\n"+ // 09:30 UTC (PST)
		"2019-03-10 02:30:00,D1,car,7\n"+ // never happened in Los Angeles
		"2019-03-10 03:30:00,D1,car,11\n"+ // 10:30 UTC (PDT)
		"2019-03-10T12:00:00Z,D1,car,13\n"), 0o644)
	ndPath := filepath.Join(dir, "counts.ndjson")
	os.WriteFile(ndPath, []byte(`{"time":"2019-03-10 04:00:00","sensor":"D1","class":"car","count":17}`+"\n"+
		`{"time":1552219200,"sensor":"D1","class":"car","count":19}`+"\n"), 0o644) // 11:00 UTC; 12:00 UTC
	text, code := runImport(t, "-url", srv.url, "-tz", "America/Los_Angeles", "-state", t.TempDir(), csvPath, ndPath)
	if code != 2 {
		t.Errorf("exit %d, want 2 (the time in the gap)", code)
	}
	wantIn(t, text, "imported 5 events from 2 files", "; 1 lines rejected",
		csvPath+":3: field \"time\" value \"2019-03-10 02:30:00\": 2019-03-10 02:30:00 does not exist in America/Los_Angeles")
	day := time.Date(2019, 3, 10, 9, 0, 0, 0, time.UTC)
	s := srv.series(t, fmt.Sprintf("metric=count_car&cells=%s&step=30m&from=%d&to=%d", cellOf(t, 30.2700, 120.1500, 9), day.Unix(), day.Add(4*time.Hour).Unix()))
	got := map[int64]int64{}
	for _, p := range s.Points {
		if p[1] != 0 {
			got[(p[0]-day.Unix())/60] = p[1]
		}
	}
	if want := map[int64]int64{30: 5, 90: 11, 120: 17, 180: 13 + 19}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("counts by minutes after 09:00 UTC: %v, want %v", got, want)
	}
}

package city

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The ground truth must be what anyone recovers from the file by matching
// each card's tap-in with its next tap-out.
func TestAFCDayTruthMatchesRecount(t *testing.T) {
	c := New(Config{Seed: 11, Cameras: 1, Scale: 0.02})
	var buf bytes.Buffer
	truth, unmatched, err := c.AFCDay(DefaultStart.Add(10*time.Hour), &buf)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	sc.Scan()
	if sc.Text()+"\n" != AFCHeader {
		t.Fatalf("header %q", sc.Text())
	}
	type open struct {
		station int
		at      time.Time
	}
	opened := map[string]open{}
	got := map[[2]int]int{}
	lost, rows, trips := 0, 0, 0
	var prev time.Time
	for line := 2; sc.Scan(); line++ {
		f := strings.Split(sc.Text(), ",")
		if len(f) != 7 {
			t.Fatalf("line %d: %d fields: %q", line, len(f), sc.Text())
		}
		at, err := time.ParseInLocation("2006-01-02 15:04:05", f[0], Hangzhou)
		if err != nil {
			t.Fatalf("line %d: time: %v", line, err)
		}
		if at.Before(prev) {
			t.Fatalf("line %d: %v before %v", line, at, prev)
		}
		prev = at
		st, err := strconv.Atoi(f[2])
		if err != nil || st < 0 || st > 80 {
			t.Fatalf("line %d: stationID %q", line, f[2])
		}
		if dev, _ := strconv.Atoi(f[3]); dev/40 != st {
			t.Fatalf("line %d: deviceID %s not at station %d", line, f[3], st)
		}
		if len(f[5]) != 33 || f[5][0] != 'C' || !strings.Contains("0123", f[6]) || f[1] != string(rune('A'+mustAtoi(c.Stations[st].Line))) {
			t.Fatalf("line %d: %q", line, sc.Text())
		}
		rows++
		switch f[4] {
		case "1":
			if _, ok := opened[f[5]]; ok {
				lost++
			}
			opened[f[5]] = open{st, at}
		case "0":
			o, ok := opened[f[5]]
			if !ok {
				lost++
				continue
			}
			delete(opened, f[5])
			if d := at.Sub(o.at); d < 5*time.Minute || d > time.Hour {
				t.Fatalf("line %d: trip of %v", line, d)
			}
			got[[2]int{o.station, st}]++
			trips++
		default:
			t.Fatalf("line %d: status %q", line, f[4])
		}
	}
	lost += len(opened)
	if lost != unmatched {
		t.Errorf("recount finds %d unmatched taps, AFCDay says %d", lost, unmatched)
	}
	if len(got) != len(truth) {
		t.Errorf("recount has %d OD pairs, truth %d", len(got), len(truth))
	}
	for k, v := range truth {
		if got[k] != v {
			t.Fatalf("OD %v: recount %d, truth %d", k, got[k], v)
		}
	}
	share := float64(unmatched) / float64(rows)
	t.Logf("%d rows, %d trips over %d OD pairs, %d unmatched (%.1f %%)", rows, trips, len(truth), unmatched, 100*share)
	if share < 0.01 || share > 0.03 {
		t.Errorf("unmatched share %.3f, want about 0.02", share)
	}
	if trips < 20000 {
		t.Errorf("only %d trips at Scale 0.02", trips)
	}
}

func mustAtoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

const stationsFile = "../../../shared/data/hangzhou-metro-stations.csv"

func TestStationsFile(t *testing.T) {
	if _, err := os.Stat(stationsFile); err != nil {
		t.Skip("no shared data folder next to the repo (a user's clone has none): ", err)
	}
	c := New(Config{Seed: 1, Cameras: 1, StationsFile: stationsFile})
	if c.StationsErr != nil {
		t.Fatal(c.StationsErr)
	}
	if len(c.Stations) != 82 {
		t.Fatalf("%d stations, want the file's 82 rows", len(c.Stations))
	}
	seen := map[LatLng]string{}
	for _, name := range []string{"新塘站", "新风站", "文新站", "南苑站"} {
		var s *Station
		for i := range c.Stations {
			if c.Stations[i].Name == name {
				s = &c.Stations[i]
			}
		}
		if s == nil {
			t.Fatalf("%s missing", name)
		}
		if isFallback(s.Pos) || distKm(s.Pos, geocoderFallback) < 0.05 {
			t.Errorf("%s still at the geocoder fallback point", name)
		}
		if other, ok := seen[s.Pos]; ok {
			t.Errorf("%s and %s coincide", name, other)
		}
		seen[s.Pos] = name
		// It must sit on its own line: near one of that line's stations.
		near := 1e9
		for i := range c.Stations {
			if o := &c.Stations[i]; o != s && o.Line == s.Line {
				near = min(near, distKm(o.Pos, s.Pos))
			}
		}
		if near > 2 {
			t.Errorf("%s (line %s) is %.1f km from its line", name, s.Line, near)
		}
	}
	if !strings.Contains(string(c.StationsCSV()), "\n0,中医药大学站,30.084214,119.889364,4\n") {
		t.Errorf("registry CSV:\n%s", c.StationsCSV()[:200])
	}
}

func TestStationsFileMissingFallsBack(t *testing.T) {
	c := New(Config{Seed: 1, Cameras: 1, StationsFile: "/nonexistent/stations.csv"})
	if c.StationsErr == nil || len(c.Stations) != 81 {
		t.Fatalf("err %v, %d stations", c.StationsErr, len(c.Stations))
	}
}

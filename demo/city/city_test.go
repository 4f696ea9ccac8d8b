package city

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// small is a city cheap enough to run whole days of in a test.
func small(seed int64) *City { return New(Config{Seed: seed, Cameras: 40, Scale: 0.02}) }

func minuteBytes(c *City, t time.Time) []byte {
	var b []byte
	c.Minute(t, func(e *Event) { b = AppendNDJSON(b, e) })
	return b
}

func TestDeterministicBySeed(t *testing.T) {
	at := DefaultStart.Add(8 * time.Hour)
	a, b, other := small(7), small(7), small(8)
	for _, f := range []func(*City) []byte{
		(*City).StationsCSV, (*City).SensorsCSV, (*City).SitesGeoJSON,
		func(c *City) []byte { return minuteBytes(c, at) },
		func(c *City) []byte { return minuteBytes(c, at.Add(37*time.Minute)) },
	} {
		if !bytes.Equal(f(a), f(b)) {
			t.Fatal("same seed, different output")
		}
	}
	if bytes.Equal(minuteBytes(a, at), minuteBytes(other, at)) {
		t.Fatal("seeds 7 and 8 gave the same minute")
	}
	if bytes.Equal(a.StationsCSV(), other.StationsCSV()) {
		t.Fatal("seeds 7 and 8 gave the same stations")
	}
}

// Spans of a minute must add up to the minute, so a live feed posting a
// minute second by second sends exactly what a replay sends.
func TestMinuteSpansAddUp(t *testing.T) {
	c := small(3)
	at := DefaultStart.Add(17*time.Hour + 50*time.Minute)
	type key struct {
		k        Kind
		id, gate string
		cls      Class
		dir      Dir
		card     Card
	}
	sum := func(cuts []int) map[key]int {
		got := map[key]int{}
		for i := 0; i+1 < len(cuts); i++ {
			c.MinuteSpan(at, cuts[i], cuts[i+1], func(e *Event) {
				switch e.Kind {
				case KindSwipe:
					got[key{k: e.Kind, id: e.ID, dir: e.Dir, card: e.Card}]++
				case KindCount:
					got[key{k: e.Kind, id: e.ID, cls: e.Class}] += e.Count
				case KindFootfall:
					got[key{k: e.Kind, id: e.ID, gate: e.Gate, dir: DirIn}] += e.In
					got[key{k: e.Kind, id: e.ID, gate: e.Gate, dir: DirOut}] += e.Out
				}
			})
		}
		return got
	}
	whole := sum([]int{0, 60})
	var seconds []int
	for s := 0; s <= 60; s++ {
		seconds = append(seconds, s)
	}
	parts := sum(seconds)
	if len(whole) == 0 {
		t.Fatal("no events at 17:50")
	}
	for k, v := range whole {
		if parts[k] != v {
			t.Fatalf("%+v: whole minute %d, sum of seconds %d", k, v, parts[k])
		}
	}
	for k, v := range parts {
		if whole[k] != v {
			t.Fatalf("%+v: sum of seconds %d, whole minute %d", k, v, whole[k])
		}
	}
}

func TestDailyRhythm(t *testing.T) {
	c := small(1)
	count := func(day time.Time, hour int) (taps, vehicles int) {
		for m := 0; m < 10; m++ {
			c.Minute(day.Add(time.Duration(hour)*time.Hour+time.Duration(m)*time.Minute), func(e *Event) {
				switch {
				case e.Kind == KindSwipe:
					taps++
				case e.Kind == KindCount && e.Class == ClassCar:
					vehicles += e.Count
				}
			})
		}
		return
	}
	monday := DefaultStart
	t8, v8 := count(monday, 8)
	t3, v3 := count(monday, 3)
	t13, _ := count(monday, 13)
	t18, _ := count(monday, 18)
	t.Logf("weekday taps per 10 min: 03:00 %d, 08:00 %d, 13:00 %d, 18:00 %d; cars 03:00 %d, 08:00 %d", t3, t8, t13, t18, v3, v8)
	if !(t8 > 2*t13 && t18 > 2*t13 && t13 > t3) {
		t.Errorf("taps do not peak at 8:00 and 18:00 over midday and night: %d %d %d %d", t3, t8, t13, t18)
	}
	if v8 < 4*v3 {
		t.Errorf("cars at 08:00 (%d) not well above 03:00 (%d)", v8, v3)
	}

	// A Tuesday's taps add up to about Scale × 3 million.
	day := 0
	for m := 0; m < 1440; m++ {
		c.swipes(floorDiv(monday.Add(24*time.Hour).Unix(), 60)+int64(m), 0, 60, func(*Event) { day++ })
	}
	if want := 3e6 * c.cfg.Scale; math.Abs(float64(day)-want) > 0.05*want {
		t.Errorf("taps on a weekday = %d, want about %.0f", day, want)
	}
}

func TestHolidayShiftsTripsToScenicStations(t *testing.T) {
	share := func(holiday bool) float64 {
		c := New(Config{Seed: 2, Cameras: 1, Scale: 0.05, Holiday: holiday})
		near, all := 0, 0
		for m := 10 * 60; m < 12*60; m += 3 {
			c.Minute(DefaultStart.Add(time.Duration(m)*time.Minute), func(e *Event) {
				if e.Kind == KindSwipe && e.Dir == DirOut {
					all++
					for i := range c.Stations {
						if c.Stations[i].ID == e.ID && distKm(c.Stations[i].Pos, WestLake) < 3 {
							near++
						}
					}
				}
			})
		}
		return float64(near) / float64(all)
	}
	ordinary, holiday := share(false), share(true)
	t.Logf("tap-outs within 3 km of West Lake, 10:00–12:00: weekday %.2f, holiday %.2f", ordinary, holiday)
	if holiday < ordinary*1.3 {
		t.Errorf("holiday share %.2f not clearly above weekday %.2f", holiday, ordinary)
	}
}

func TestWestLakeRegistry(t *testing.T) {
	var fc struct {
		Type     string
		Features []struct {
			Geometry struct {
				Type        string
				Coordinates [][][2]float64
			}
			Properties map[string]any
		}
	}
	c := small(1)
	if err := json.Unmarshal(c.SitesGeoJSON(), &fc); err != nil {
		t.Fatal(err)
	}
	if fc.Type != "FeatureCollection" || len(fc.Features) != 12 {
		t.Fatalf("got %s with %d features", fc.Type, len(fc.Features))
	}
	found := false
	for _, f := range fc.Features {
		ring := f.Geometry.Coordinates[0]
		if f.Geometry.Type != "Polygon" || len(ring) < 4 || ring[0] != ring[len(ring)-1] {
			t.Errorf("%v: not a closed polygon", f.Properties["id"])
		}
		if f.Properties["id"] == "west-lake" {
			found = true
			if f.Properties["capacity"] != 219000.0 || f.Properties["daily_capacity"] != 797500.0 {
				t.Errorf("west-lake capacities %v / %v, want 219000 / 797500", f.Properties["capacity"], f.Properties["daily_capacity"])
			}
			if f.Properties["yellow"] != 0.8 || f.Properties["red"] != 0.95 {
				t.Errorf("west-lake thresholds %v", f.Properties)
			}
		}
	}
	if !found {
		t.Fatal("no west-lake feature")
	}
}

// Occupancy is the running sum of in − out: it must rise through the day,
// pass the yellow line only on holidays, and be back near zero at midnight.
func TestWestLakeOccupancy(t *testing.T) {
	for _, holiday := range []bool{false, true} {
		c := New(Config{Seed: 5, Cameras: 1, Scale: 0.001, Holiday: holiday})
		var occ, peak, entries int
		var at4, peakAt int
		for m := 0; m < 1440; m++ {
			c.footfall(floorDiv(DefaultStart.Unix(), 60)+int64(m), 0, 60, func(e *Event) {
				if e.ID == "west-lake" {
					occ += e.In - e.Out
					entries += e.In
				}
			})
			if occ < 0 {
				t.Fatalf("holiday=%v: occupancy %d at minute %d", holiday, occ, m)
			}
			if occ > peak {
				peak, peakAt = occ, m
			}
			if m == 4*60 {
				at4 = occ
			}
		}
		frac := float64(peak) / 219000
		t.Logf("holiday=%v: west-lake peak %d (%.0f %%) at %02d:%02d, %d entries, occupancy at 04:00 %d, at 24:00 %d",
			holiday, peak, 100*frac, peakAt/60, peakAt%60, entries, at4, occ)
		if holiday && (frac < 0.8 || frac > 1) {
			t.Errorf("holiday peak %.2f of capacity, want 0.8–1", frac)
		}
		if !holiday && frac > 0.6 {
			t.Errorf("ordinary-day peak %.2f of capacity, want well under yellow", frac)
		}
		if at4 > 500 || occ > 50 || peakAt < 10*60 || peakAt > 18*60 {
			t.Errorf("occupancy %d at 04:00, %d at midnight, peak at minute %d", at4, occ, peakAt)
		}
	}
}

func TestWriteFiles(t *testing.T) {
	c := small(1)
	dir := t.TempDir()
	from := DefaultStart.Add(8 * time.Hour)
	if err := c.WriteFiles(dir, from, from.Add(3*time.Minute), "csv"); err != nil {
		t.Fatal(err)
	}
	for name, head := range map[string]string{
		"swipes.csv": SwipesCSVHeader, "counts.csv": CountsCSVHeader, "footfall.csv": FootfallCSVHeader,
		"stations.csv": "id,name,lat,lng,line\n", "sensors.csv": "id,name,lat,lng,kind\n", "sites.geojson": "{",
	} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte(head)) || bytes.Count(b, []byte("\n")) < 3 {
			t.Errorf("%s: %.80q", name, b)
		}
	}
	if err := c.WriteFiles(dir, from, from, "xml"); err == nil {
		t.Error("format xml accepted")
	}
}

// TestShiftMovesTheHours checks that a city shifted by 9 hours shows at
// 06:00 Hangzhou the footfall an unshifted one shows at 15:00, and posts
// only the kinds asked for.
func TestShiftMovesTheHours(t *testing.T) {
	plain := New(Config{Seed: 5, Cameras: 1, Scale: 0.001})
	shifted := New(Config{Seed: 5, Cameras: 1, Scale: 0.001, Shift: 9 * time.Hour})
	at := DefaultStart.Add(6 * time.Hour)
	sum := func(c *City, t time.Time) (in, kinds int) {
		c.MinuteSpanKinds(t, 0, 60, []Kind{KindFootfall}, func(e *Event) {
			if e.Kind != KindFootfall {
				kinds++
			}
			in += e.In
		})
		return in, kinds
	}
	early, _ := sum(plain, at)
	want, _ := sum(plain, at.Add(9*time.Hour))
	got, others := sum(shifted, at)
	if got != want || got <= 10*early || others != 0 {
		t.Errorf("shifted city at 06:00: %d entries, want the %d of 15:00 (06:00 unshifted: %d); %d events of other kinds", got, want, early, others)
	}
}

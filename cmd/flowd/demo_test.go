package main

import (
	"regexp"
	"testing"
	"time"

	"github.com/flowd/flowd/demo/city"
)

// demoStatus is the part of a site's status the demo test reads.
type demoStatus struct {
	Occupancy    int64 `json:"occupancy"`
	Capacity     int64 `json:"capacity"`
	EntriesToday int64 `json:"entries_today"`
	Trend        []struct {
		Occupancy int64 `json:"occupancy"`
	} `json:"trend"`
}

// TestDemoSitesFillOverTheDayOnce runs flowd -demo shifted to a Hangzhou
// afternoon: West Lake's entries are the whole day's since its 04:00 day
// start, its occupancy is the city's (tens of thousands, not 0) and its
// trend holds the last hour. Stopped and started again on the same data,
// the demo back-fills only what the store lacks: the day's entries are
// not counted twice.
func TestDemoSitesFillOverTheDayOnce(t *testing.T) {
	now := time.Now()
	hz := now.In(city.Hangzhou)
	tod := hz.Sub(time.Date(hz.Year(), hz.Month(), hz.Day(), 0, 0, 0, 0, city.Hangzhou))
	shift := (15*time.Hour - tod).Truncate(time.Minute)
	zone := time.FixedZone("shifted", int((8*time.Hour+shift)/time.Second))
	lt := now.In(zone)
	day := time.Date(lt.Year(), lt.Month(), lt.Day(), 4, 0, 0, 0, zone)
	c := city.New(city.Config{Seed: 1, Shift: shift})
	// footfall sums West Lake's entries and net flow over [from, to).
	footfall := func(from, to time.Time) (in, net int64) {
		for m := from.Truncate(time.Minute); m.Before(to); m = m.Add(time.Minute) {
			c.MinuteSpanKinds(m, 0, 60, []city.Kind{city.KindFootfall}, func(e *city.Event) {
				if e.ID == "west-lake" {
					in += int64(e.In)
					net += int64(e.In - e.Out)
				}
			})
		}
		return in, net
	}
	done := regexp.MustCompile(`demo back-fill done up to (\S+)`)
	run := func(data string) (f *child, filled time.Time, st demoStatus) {
		f = startFlowd(t, data, "-demo", "-demo-scale", "0.01", "-demo-shift", shift.String())
		deadline := time.Now().Add(90 * time.Second)
		for {
			if m := done.FindStringSubmatch(f.Logs()); m != nil {
				var err error
				if filled, err = time.Parse(time.RFC3339, m[1]); err != nil {
					t.Fatal(err)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the demo back-fill did not finish within 90 s:\n%s", f.Logs())
			}
			time.Sleep(200 * time.Millisecond)
		}
		st = getAnswer[demoStatus](t, f, "/api/v1/sites/west-lake/status")
		return f, filled, st
	}
	data := t.TempDir()
	f, filled, st := run(data)
	asked := time.Now()
	lo, occLo := footfall(day, filled)
	hi, _ := footfall(day, asked.Add(time.Minute))
	t.Logf("shift %v: West Lake at %s: %d entries (city: %d to %d), occupancy %d (city %d)", shift, filled.In(zone).Format("15:04"), st.EntriesToday, lo, hi, st.Occupancy, occLo)
	if st.EntriesToday < lo || st.EntriesToday > hi {
		t.Errorf("entries today %d; want the city's since 04:00, %d to %d", st.EntriesToday, lo, hi)
	}
	if st.Occupancy < st.Capacity/10 || st.Occupancy < occLo*9/10 || st.Occupancy > occLo*11/10 {
		t.Errorf("occupancy %d of %d on a Hangzhou afternoon; want the city's %d", st.Occupancy, st.Capacity, occLo)
	}
	if len(st.Trend) != 13 || st.Trend[0].Occupancy < st.Capacity/10 {
		t.Errorf("trend %+v: want 13 points over the last hour, all busy", st.Trend)
	}
	f.stop()
	stopped := time.Now()

	_, filled2, st2 := run(data)
	lost, _ := footfall(stopped.Add(-time.Minute), stopped.Add(time.Minute))
	lo2, _ := footfall(day, filled2)
	hi2, _ := footfall(day, time.Now().Add(time.Minute))
	if st2.EntriesToday < lo2-lost || st2.EntriesToday > hi2 {
		t.Errorf("after a restart: entries today %d; want the city's %d to %d (a minute's %d may be lost), not counted twice", st2.EntriesToday, lo2-lost, hi2, lost)
	}
}

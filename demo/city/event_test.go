package city

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var cardRE = regexp.MustCompile(`^C[0-9a-f]{32}$`)

func TestNDJSONLines(t *testing.T) {
	c := New(Config{Seed: 4, Cameras: 60, Scale: 0.05, Holiday: true})
	ids := map[string]bool{}
	for _, s := range c.Stations {
		ids["station:"+s.ID] = true
	}
	for _, s := range c.Sensors {
		ids["sensor:"+s.ID] = true
	}
	for _, s := range c.Sites {
		ids["site:"+s.ID] = true
	}
	at := DefaultStart.Add(11*time.Hour + 3*time.Minute)
	var buf []byte
	c.Minute(at, func(e *Event) { buf = AppendNDJSON(buf, e) })
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(buf))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%v: %s", err, sc.Bytes())
		}
		ts, err := time.Parse(time.RFC3339, m["time"].(string))
		if err != nil || ts.Unix()/60 != at.Unix()/60 || !strings.HasSuffix(m["time"].(string), "+08:00") {
			t.Fatalf("time %v (%v) not in minute %v", m["time"], err, at)
		}
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range m {
				if !yield(k) {
					return
				}
			}
		})
		str := func(k string) string { s, _ := m[k].(string); return s }
		num := func(k string) float64 { f, _ := m[k].(float64); return f }
		switch {
		case m["card"] != nil:
			seen["swipe"]++
			if !slices.Equal(keys, []string{"card", "dir", "line", "station", "time"}) || !cardRE.MatchString(str("card")) ||
				(str("dir") != "in" && str("dir") != "out") || !ids["station:"+str("station")] || str("line") == "" {
				t.Fatalf("bad swipe %s", sc.Bytes())
			}
		case m["sensor"] != nil:
			seen["count"]++
			if !slices.Equal(keys, []string{"class", "count", "interval", "sensor", "speed", "time"}) || !ids["sensor:"+str("sensor")] ||
				!slices.Contains(classNames[:], str("class")) || num("count") < 1 || num("interval") != 60 || num("speed") < 2 || num("speed") > 100 {
				t.Fatalf("bad count %s", sc.Bytes())
			}
		case m["site"] != nil:
			seen["footfall"]++
			if !slices.Equal(keys, []string{"gate", "in", "out", "site", "time"}) || !ids["site:"+str("site")] ||
				num("in") < 0 || num("out") < 0 || num("in")+num("out") == 0 {
				t.Fatalf("bad footfall %s", sc.Bytes())
			}
		default:
			t.Fatalf("unknown line %s", sc.Bytes())
		}
	}
	t.Logf("one holiday minute at 11:03: %v", seen)
	if seen["swipe"] < 50 || seen["count"] < 50 || seen["footfall"] < 12 {
		t.Fatalf("too few events: %v", seen)
	}
}

func TestCSVRows(t *testing.T) {
	c := New(Config{Seed: 4, Cameras: 20, Scale: 0.05})
	var bufs [KindFootfall + 1][]byte
	for _, k := range Kinds {
		bufs[k] = append(bufs[k], CSVHeader(k)...)
	}
	c.Minute(DefaultStart.Add(8*time.Hour), func(e *Event) { bufs[e.Kind] = AppendCSV(bufs[e.Kind], e) })
	for _, k := range Kinds {
		rows, err := csv.NewReader(bytes.NewReader(bufs[k])).ReadAll()
		if err != nil {
			t.Fatalf("%v: %v", k, err)
		}
		if len(rows) < 2 {
			t.Fatalf("%v: no rows", k)
		}
		for _, r := range rows[1:] {
			if _, err := time.Parse(time.RFC3339, r[0]); err != nil {
				t.Fatalf("%v: %v", k, err)
			}
		}
	}
}

func TestAppendRFC3339MatchesTime(t *testing.T) {
	for _, u := range []int64{0, 951782399, 951782400, 1546814493, 1709251199, 4102444800, -1} {
		want := time.Unix(u, 0).In(Hangzhou).Format(time.RFC3339)
		if got := string(appendRFC3339(nil, u)); got != want {
			t.Errorf("%d: %s, want %s", u, got, want)
		}
	}
}

func TestAppendAllocations(t *testing.T) {
	e := &Event{Kind: KindCount, Time: 1546814493, ID: "cam-0001", Class: ClassBus, Count: 3, Interval: 60, Speed: 31.25}
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = AppendCSV(AppendNDJSON(buf[:0], e), e) }); n != 0 {
		t.Fatalf("%v allocations per event", n)
	}
	if got := string(AppendNDJSON(nil, e)); got != `{"time":"2019-01-07T06:41:33+08:00","sensor":"cam-0001","class":"bus","count":3,"interval":60,"speed":31.3}`+"\n" {
		t.Fatalf("got %s", got)
	}
}

func TestExpNeg(t *testing.T) {
	for x := 0.0; x < 40; x += 0.013 {
		if got, want := expNeg(x), math.Exp(-x); math.Abs(got-want) > 3e-5*want {
			t.Fatalf("expNeg(%v) = %v, want %v", x, got, want)
		}
	}
}

package api_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowd/flowd/ingest"
)

// A generated metro day whose cards carry the AFC's payType, mapped to
// two rider groups: each group's OD matrix is exactly the trips of its
// cards (paired from the AFC rows here), and the two groups' OD pairs,
// section loads and swipes sum to the whole.
func TestRiderGroupsSumToTheWhole(t *testing.T) {
	groups, err := ingest.ParseRiderGroups(strings.NewReader("0=adult,1=adult\n2=student,3=student # concessions"))
	if err != nil {
		t.Fatal(err)
	}
	fs, day, afc := startMetroDay(t, 0.01, groups)
	// The trips of each group, as the matcher pairs taps: a card's tap-in
	// and its next tap, a tap-out within 3 h; the group of the tap-out.
	rows, err := csv.NewReader(bytes.NewReader(afc)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	type open struct {
		at      time.Time
		station string
	}
	opened := map[string]open{}
	want := map[string]map[[2]string]int64{"adult": {}, "student": {}}
	for _, r := range rows[1:] {
		at, err := time.Parse("2006-01-02 15:04:05", r[0])
		if err != nil {
			t.Fatal(err)
		}
		card, station := r[5], r[2]
		if r[4] == "1" {
			opened[card] = open{at, station}
			continue
		}
		o, ok := opened[card]
		delete(opened, card)
		if !ok || at.Sub(o.at) > 3*time.Hour || at.Before(o.at) {
			continue
		}
		g := "adult"
		if n, _ := strconv.Atoi(r[6]); n >= 2 {
			g = "student"
		}
		want[g][[2]string{o.station, station}]++
	}
	span := fmt.Sprintf("&from=%d&to=%d", day.Add(-24*time.Hour).Unix(), day.Add(48*time.Hour).Unix())
	odOf := func(group string) map[[2]string]int64 {
		r := get(t, fs.URL+"/api/v1/od?by=station&top=100000"+group+span)
		var a struct {
			Pairs []struct {
				Origin, Destination string
				Trips               int64
			}
		}
		if err := json.Unmarshal(r.body, &a); err != nil || r.status != 200 {
			t.Fatalf("od%s: %d %.300s", group, r.status, r.body)
		}
		m := map[[2]string]int64{}
		for _, p := range a.Pairs {
			m[[2]string{p.Origin, p.Destination}] = p.Trips
		}
		return m
	}
	whole, adult, student := odOf(""), odOf("&group=adult"), odOf("&group=student")
	for g, got := range map[string]map[[2]string]int64{"adult": adult, "student": student} {
		if len(got) == 0 || fmt.Sprint(got) != fmt.Sprint(want[g]) {
			t.Errorf("%s: %d OD pairs; want exactly the %d pairs of its cards' trips", g, len(got), len(want[g]))
		}
	}
	for k, n := range whole {
		if adult[k]+student[k] != n {
			t.Errorf("pair %v: %d trips, adult %d + student %d", k, n, adult[k], student[k])
		}
	}
	sections := func(group string) [][]int64 {
		r := get(t, fs.URL+"/api/v1/sections?line=1&step=1h"+group+span)
		var a struct{ Sections []struct{ Loads []int64 } }
		if err := json.Unmarshal(r.body, &a); err != nil || r.status != 200 {
			t.Fatalf("sections%s: %d %.300s", group, r.status, r.body)
		}
		var loads [][]int64
		for _, s := range a.Sections {
			loads = append(loads, s.Loads)
		}
		return loads
	}
	sw, sa, ss := sections(""), sections("&group=adult"), sections("&group=student")
	for i := range sw {
		for k := range sw[i] {
			if sw[i][k] != sa[i][k]+ss[i][k] {
				t.Fatalf("section %d step %d: load %d, adult %d + student %d", i, k, sw[i][k], sa[i][k], ss[i][k])
			}
		}
	}
	total := func(group string) int64 {
		r := get(t, fs.URL+"/api/v1/series?metric=swipes_in&bbox=119.9,30.0,120.5,30.5&res=7&step=1h"+group+span)
		var a struct{ Total int64 }
		if err := json.Unmarshal(r.body, &a); err != nil || r.status != 200 {
			t.Fatalf("series%s: %d %.300s", group, r.status, r.body)
		}
		return a.Total
	}
	if w, a, s := total(""), total("&group=adult"), total("&group=student"); w == 0 || a+s != w || a == 0 || s == 0 {
		t.Errorf("swipes in: %d, adult %d + student %d", w, a, s)
	}
	for _, tc := range []struct{ query, param string }{
		{"/api/v1/od?group=retired", "group"},
		{"/api/v1/series?metric=trips&group=adult&cells=89309a4740fffff", "metric"},
	} {
		if r := get(t, fs.URL+tc.query); r.status != 400 || !strings.Contains(string(r.body), fmt.Sprintf(`parameter \"%s\"`, tc.param)) {
			t.Errorf("%s: %d %s; want a 400 naming %s", tc.query, r.status, r.body, tc.param)
		}
	}
}

package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	influxhttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/influxdata/influxdb-client-go/v2/api/write"
)

// A device that speaks InfluxDB line protocol writes to flowd with the
// InfluxDB client unchanged (its Token header, its v2 write path, no
// Content-Type), and its points come back as counts and footfall; a bad
// line is named by line, field and value, on the v2 path and on v1's.
func TestLineProtocolFromAnInfluxClient(t *testing.T) {
	c := startFlowd(t, t.TempDir(), append(registryFlags(t), "-tokens", writeTokens(t))...)
	t0 := testT0()
	client := influxdb2.NewClientWithOptions(c.url, tokIngest, influxdb2.DefaultOptions().SetPrecision(time.Second))
	defer client.Close()
	w := client.WriteAPIBlocking("any-org", "any-bucket")
	ctx := context.Background()
	err := w.WritePoint(ctx,
		write.NewPoint("counts", map[string]string{"sensor": "D1", "class": "car", "host": "edge-7"}, map[string]any{"count": 12, "speed": 40.0}, t0),
		write.NewPoint("counts", map[string]string{"sensor": "D1", "class": "bus"}, map[string]any{"count": 4, "interval": 120}, t0),
		write.NewPoint("footfall", map[string]string{"site": "lake", "gate": "north"}, map[string]any{"in": 50, "out": 20}, t0.Add(time.Minute)),
		write.NewPoint("footfall", map[string]string{"site": "lake"}, map[string]any{"in": 5}, t0.Add(2*time.Minute)),
	)
	if err != nil {
		t.Fatalf("writing points with the InfluxDB client: %v", err)
	}
	d1 := cellOf(t, 30.2700, 120.1500, 9)
	win := span(t0, 4)
	for _, tc := range []struct {
		query string
		want  []int64
	}{
		{"metric=count_car&cells=" + d1.String() + "&" + win, []int64{12, 0, 0, 0}},
		{"metric=speed_car&cells=" + d1.String() + "&" + win, []int64{480, 0, 0, 0}},
		{"metric=count_bus&cells=" + d1.String() + "&" + win, []int64{2, 2, 0, 0}},
		{"metric=footfall_in&site=lake&" + win, []int64{0, 50, 5, 0}},
		{"metric=footfall_out&site=lake&" + win, []int64{0, 20, 0, 0}},
	} {
		r := authDo(t, "GET", c.url+"/api/v1/series?"+tc.query, tokRead, "", nil)
		var a seriesAnswer
		r.json(t, &a)
		var got []int64
		for _, p := range a.Points {
			got = append(got, p[1])
		}
		if r.status != 200 || !slices.Equal(got, tc.want) {
			t.Errorf("series %s: %d %v, want %v", tc.query, r.status, got, tc.want)
		}
	}

	// Every line bad: the client's error carries flowd's message.
	err = w.WriteRecord(ctx, "counts,sensor=D1,class=car count=abc", "weather,city=hz temp=3")
	var herr *influxhttp.Error
	if err == nil || !errors.As(err, &herr) || herr.StatusCode != 400 ||
		!strings.Contains(herr.Message, `line 1: field "count": value "abc": must be a number`) {
		t.Errorf("writing only bad lines: %v; want a 400 naming line 1's count", err)
	}

	// InfluxDB 1.x's path as curl posts it (a form's Content-Type) with
	// Telegraf's Basic credentials: the good line is kept, each bad one
	// listed.
	body := fmt.Sprintf("counts,sensor=D1,class=car count=3i %[1]d\n"+
		"counts,sensor=D9,class=car count=1i %[1]d\n"+
		"counts,sensor=D1 count=1i %[1]d\n"+
		"weathr,city=hz temp=3 %[1]d\n"+
		"counts,sensor=D1,class=car count=2.5,interval=60i %[1]d\n"+
		"counts,sensor=D1,class=car cuont=2i %[1]d\n"+
		"counts,sensor=D1,class=car count=1i 1\n"+
		"counts,sensor=D1,class=car count=\n", t0.Add(3*time.Minute).Unix())
	req, _ := http.NewRequest("POST", c.url+"/write?db=flowd&precision=s", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("telegraf:"+tokIngest)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var a ingestAnswer
	r := response{status: resp.StatusCode}
	r.body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	r.json(t, &a)
	want := []string{
		`2 sensor "D9" unknown sensor; load it with PUT /api/v1/sensors`,
		`3 class "" required tag`,
		`4 measurement "weathr" unknown measurement (did you mean counts?): flowd takes counts and footfall`,
		`5 count "2.5" must be an integer from 0 to 1000000`,
		`6 cuont "2" unknown field of counts (did you mean count?): want count, interval, speed`,
		`7 time "1" must be within the years 2000 to 2100 (check the precision parameter)`,
		`8  "" cannot parse field value for "count": field value cannot be empty`,
	}
	var got []string
	for _, e := range a.Rejected {
		got = append(got, fmt.Sprintf("%d %s %q %s", e.Line, e.Field, e.Value, e.Reason))
	}
	if r.status != 200 || a.Accepted != 1 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("POST /write with bad lines: %d, accepted %d, rejected:\n%s\nwant:\n%s", r.status, a.Accepted, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

package api_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/flowd/flowd/api"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/internal/flowdtest"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
)

// monthBBox is about 2,000 res-9 cells of Hangzhou.
const monthBBox = "120.07,30.20,120.21,30.30"

// startMonthOfCounts serves a store holding a count in every res-9 cell
// of monthBBox every hour of the 30 days before this hour, flushed to
// parts (the hour tier; the minute tier holds the same rows).
func startMonthOfCounts(b *testing.B) (*flowdtest.Server, int, time.Time) {
	b.Helper()
	fs := flowdtest.New(b, b.TempDir(), func(*storage.Store, *geo.Registry) (api.Parts, func()) { return api.Parts{}, nil })
	box, _ := geo.ParseBBox(monthBBox)
	cells, err := box.Cells(9, 10000)
	if err != nil {
		b.Fatal(err)
	}
	id, err := fs.Store.MetricID(vocab.SwipesIn)
	if err != nil {
		b.Fatal(err)
	}
	end := time.Now().UTC().Truncate(time.Hour)
	ds := make([]storage.Delta, 0, len(cells)*24)
	for h := end.Add(-30 * 24 * time.Hour); h.Before(end); h = h.Add(time.Hour) {
		for i, c := range cells {
			ds = append(ds, storage.Delta{Key: storage.Key{Metric: id, Cell: uint64(c), Minute: h.Unix() / 60}, Value: int64(1 + i%7)})
		}
		if len(ds) >= len(cells)*24 {
			if err := fs.Store.Add(ds); err != nil {
				b.Fatal(err)
			}
			ds = ds[:0]
		}
	}
	if err := fs.Store.Add(ds); err != nil {
		b.Fatal(err)
	}
	if err := fs.Store.Flush(); err != nil {
		b.Fatal(err)
	}
	fs.Serve()
	return fs, len(cells), end
}

func getOK(b *testing.B, url string) {
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("%s: %d", url, resp.StatusCode)
	}
}

// BenchmarkDensityMonthRes7 asks for the density of the area at res 7
// over the month, warm, over HTTP: the hour tier answers.
func BenchmarkDensityMonthRes7(b *testing.B) {
	fs, cells, end := startMonthOfCounts(b)
	url := fmt.Sprintf("%s/api/v1/density?metric=swipes_in&bbox=%s&res=7&from=%d&to=%d", fs.URL, monthBBox, end.Add(-30*24*time.Hour).Unix(), end.Unix())
	getOK(b, url)
	b.Logf("%d cells, %d hours", cells, 30*24)
	for b.Loop() {
		getOK(b, url)
	}
}

// BenchmarkSeriesMonthHourly asks for the series of the area's res-9
// cells, one by one, over the month at a 1-hour step, warm, over HTTP.
func BenchmarkSeriesMonthHourly(b *testing.B) {
	fs, cells, end := startMonthOfCounts(b)
	url := fmt.Sprintf("%s/api/v1/series?metric=swipes_in&bbox=%s&from=%d&to=%d&step=1h", fs.URL, monthBBox, end.Add(-30*24*time.Hour).Unix(), end.Unix())
	getOK(b, url)
	b.Logf("%d cells, %d hours", cells, 30*24)
	for b.Loop() {
		getOK(b, url)
	}
}

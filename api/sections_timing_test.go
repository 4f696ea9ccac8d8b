package api_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// BenchmarkSectionsDay asks for the hourly section load of line 1 over a
// day of the synthetic city's metro (a tenth of Hangzhou's riders), with
// the store flushed to parts, over HTTP.
func BenchmarkSectionsDay(b *testing.B) {
	fs, day, _ := startMetroDay(b, 0.1, nil)
	if err := fs.Store.Flush(); err != nil {
		b.Fatal(err)
	}
	url := fmt.Sprintf("%s/api/v1/sections?line=1&from=%d&to=%d&step=1h", fs.URL, day.Unix(), day.Add(24*time.Hour).Unix())
	for b.Loop() {
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("sections: %d", resp.StatusCode)
		}
	}
}

package ingest

import (
	"bytes"
	"io"
	"testing"
)

// benchmarkDecode decodes body (holding n events) over and over and reports
// the cost per event.
func benchmarkDecode(b *testing.B, body []byte, n int, dec func(io.Reader) ([]LineError, error)) {
	r := bytes.NewReader(body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(body)
		errs, err := dec(r)
		if err != nil || errs != nil {
			b.Fatal(err, errs)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
}

func BenchmarkDecodeSwipesNDJSON(b *testing.B) {
	const n = 10000
	benchmarkDecode(b, swipeBody(n), n, func(r io.Reader) ([]LineError, error) {
		return DecodeSwipes(r, NDJSON, 4096, func(int, *Swipe) {})
	})
}

func BenchmarkDecodeSwipesGzipNDJSON(b *testing.B) {
	const n = 10000
	body := gzipped(b, swipeBody(n))
	benchmarkDecode(b, body, n, func(r io.Reader) ([]LineError, error) {
		rc, err := Body(r, "gzip", 64<<20)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return DecodeSwipes(rc, NDJSON, 4096, func(int, *Swipe) {})
	})
}

func BenchmarkDecodeCountsCSV(b *testing.B) {
	const n = 10000
	benchmarkDecode(b, countBodyCSV(n), n, func(r io.Reader) ([]LineError, error) {
		return DecodeCounts(r, CSV, 4096, func(int, *Count) {})
	})
}

func BenchmarkDecodeCountsNDJSON(b *testing.B) {
	body := countBodies(1, false, 60).bodies[0]
	n := bytes.Count(body, []byte{'\n'})
	benchmarkDecode(b, body, n, func(r io.Reader) ([]LineError, error) {
		return DecodeCounts(r, NDJSON, 4096, func(int, *Count) {})
	})
}

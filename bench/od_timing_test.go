package bench

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowd/flowd/api"
	"github.com/flowd/flowd/demo/city"
	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/ingest"
	"github.com/flowd/flowd/storage"
)

// BenchmarkODDay ingests one day of a Hangzhou-sized AFC feed (about 3
// million taps at Scale 1) through the real pipeline — CSV decoding,
// pseudonymisation, bucketing, trip matching, durable WAL commits — and
// then asks for the station OD matrix of the day over HTTP. It reports taps
// per second of ingest and the OD query's latency.
func BenchmarkODDay(b *testing.B) {
	c := city.New(city.Config{Seed: 1, Scale: 1})
	day := time.Date(2019, 1, 7, 0, 0, 0, 0, time.UTC)
	var rows [][]byte
	var batch bytes.Buffer
	n := 0
	c.AFCRows(day, func(row []byte) {
		if n == 0 {
			batch.WriteString(city.AFCHeader)
		}
		batch.Write(row)
		if n++; n == 10000 {
			rows = append(rows, bytes.Clone(batch.Bytes()))
			batch.Reset()
			n = 0
		}
	})
	if n > 0 {
		rows = append(rows, bytes.Clone(batch.Bytes()))
	}
	taps := 0
	for _, r := range rows {
		taps += bytes.Count(r, []byte("\n")) - 1
	}
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		st, err := storage.Open(filepath.Join(dir, "store"), storage.Options{FlushInterval: time.Minute, Logf: func(string, ...any) {}})
		if err != nil {
			b.Fatal(err)
		}
		reg := geo.New(9)
		stations, err := geo.ReadStationsCSV(bytes.NewReader(c.StationsCSV()))
		if err != nil {
			b.Fatal(err)
		}
		if err := reg.PutStations(stations); err != nil {
			b.Fatal(err)
		}
		cards, err := ingest.LoadOrCreateKey(filepath.Join(dir, "secret.key"))
		if err != nil {
			b.Fatal(err)
		}
		bk := &ingest.Bucketer{Registry: reg, Store: st, Cards: cards, Res: 9, Trips: ingest.NewTrips(st, 3*time.Hour, nil)}
		b.StartTimer()
		start := time.Now()
		for _, body := range rows {
			bt := bk.NewBatch()
			var addErr error
			_, err := ingest.DecodeSwipes(bytes.NewReader(body), ingest.CSV, 1<<16, func(line int, s *ingest.Swipe) {
				if addErr == nil {
					addErr = bt.AddSwipe(line, s)
				}
			})
			if err == nil {
				err = addErr
			}
			if err == nil {
				err = bt.Commit()
			}
			bt.Release()
			if err != nil {
				b.Fatal(err)
			}
		}
		ingestTime := time.Since(start)

		srv := api.NewServer(st, reg, filepath.Join(dir, "registry"), api.Parts{})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go srv.Serve(ln, 1<<20)
		url := fmt.Sprintf("http://%s/api/v1/od?by=station&top=100&from=%d&to=%d", ln.Addr(), day.Unix(), day.Add(48*time.Hour).Unix())
		var odTimes []time.Duration
		for range 5 {
			t0 := time.Now()
			resp, err := http.Get(url)
			if err != nil || resp.StatusCode != 200 {
				b.Fatalf("od: %v %v", err, resp)
			}
			resp.Body.Close()
			odTimes = append(odTimes, time.Since(t0))
		}
		b.StopTimer()
		srv.Shutdown()
		st.Close()
		b.ReportMetric(float64(taps)/ingestTime.Seconds(), "taps/s")
		b.ReportMetric(float64(odTimes[0].Milliseconds()), "od-first-ms")
		b.ReportMetric(float64(median(odTimes).Milliseconds()), "od-warm-ms")
		b.ReportMetric(float64(taps), "taps")
		b.StartTimer()
	}
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}

package bench

import (
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/flowd/flowd/demo/city"
	"github.com/uber/h3-go/v4"
)

// PeerAggrConfig is the peer's stream aggregation: every series summed into
// one-minute buckets, all labels kept, raw samples dropped. It is the
// bucketing flowd does at ingest, done by the peer.
const PeerAggrConfig = `- match: '{__name__=~".+"}'
  interval: 1m
  outputs: [sum_samples]
`

// StartPeerAggr starts the peer with PeerAggrConfig.
func StartPeerAggr(bin, dir string) (*Proc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "stream-aggr.yaml")
	if err := os.WriteFile(cfg, []byte(PeerAggrConfig), 0o644); err != nil {
		return nil, err
	}
	return StartPeer(bin, dir, "-streamAggr.config="+cfg, "-streamAggr.dropInput")
}

// PeerRawRequests renders the events of minutes [from, to) of the day as
// the peer's raw samples, one Prometheus text line per value an event adds
// (a detector count adds its count and its speed × count), in requests of
// about batch lines for /api/v1/import/prometheus. Events is the number of
// events each request carries, so rates compare with flowd's.
func (d *Day) PeerRawRequests(from, to, batch int) ([]Request, error) {
	labels := map[h3.Cell][]byte{}
	labelsOf := func(c h3.Cell) []byte {
		l, ok := labels[c]
		if !ok {
			cell, cell8, cell6 := PeerLabels(SeriesKey{Cell: c})
			l = []byte(`{cell="` + cell + `",cell8="` + cell8 + `",cell6="` + cell6 + `"} `)
			labels[c] = l
		}
		return l
	}
	line := func(b []byte, name string, c h3.Cell, v int64, ms int64) []byte {
		b = append(b, name...)
		b = append(b, labelsOf(c)...)
		b = strconv.AppendInt(b, v, 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, ms, 10)
		return append(b, '\n')
	}
	var out []Request
	cur := Request{Path: "/api/v1/import/prometheus", Type: "text/plain"}
	var body []byte
	lines := 0
	var err error
	for m := from; m < to; m++ {
		d.City.Minute(d.Start.Add(time.Duration(m)*time.Minute), func(e *city.Event) {
			ms := e.Time * 1000
			err = firstError(err, d.eventValues(e, func(metric string, cell h3.Cell, v int64) {
				body = line(body, metric, cell, v, ms)
				lines++
			}))
			cur.Events++
			if lines >= batch {
				cur.Parts = [][]byte{body}
				out = append(out, cur)
				cur = Request{Path: cur.Path, Type: cur.Type}
				body, lines = nil, 0
			}
		})
		if err != nil {
			return nil, err
		}
	}
	if cur.Events > 0 {
		cur.Parts = [][]byte{body}
		out = append(out, cur)
	}
	return out, nil
}

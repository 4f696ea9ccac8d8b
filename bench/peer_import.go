package bench

import (
	"slices"
	"strconv"
	"time"
)

// peerChunkMinutes is how many minutes of one series go on one import line:
// the hour of buckets a flowd rollup shipper would send at once.
const peerChunkMinutes = 60

// PeerBody is one /api/v1/import request for the peer.
type PeerBody struct {
	Samples int
	Body    []byte
}

// PeerLabels are the labels each series carries besides its name: the base
// cell and its parents at resolutions 8 and 6, so that area queries and
// density maps select by label the way flowd selects by id range.
func PeerLabels(k SeriesKey) (cell, cell8, cell6 string) {
	return k.Cell.String(), k.Cell.Parent(8).String(), k.Cell.Parent(6).String()
}

// PeerImport renders the day's buckets as VictoriaMetrics JSON-line import
// bodies of about batch samples each: per hour, one line per series with
// that hour's values, timestamps at the start of each minute.
func (d *Day) PeerImport(batch int) []PeerBody {
	return importBodies(d.Series, d.Samples, d.Start, batch, func(k SeriesKey) []byte {
		cell, cell8, cell6 := PeerLabels(k)
		h := append([]byte(nil), `{"metric":{"__name__":"`...)
		h = append(h, k.Metric...)
		h = append(h, `","cell":"`...)
		h = append(h, cell...)
		h = append(h, `","cell8":"`...)
		h = append(h, cell8...)
		h = append(h, `","cell6":"`...)
		h = append(h, cell6...)
		return append(h, `"},"values":[`...)
	})
}

// importBodies renders samples of series, in minute order from start, as
// JSON-line import bodies of about batch samples each: per hour, one line
// per series with that hour's values. head writes a series' line up to
// its values.
func importBodies(series []SeriesKey, samples []Sample, start time.Time, batch int, head func(SeriesKey) []byte) []PeerBody {
	heads := make([][]byte, len(series))
	for i, k := range series {
		heads[i] = head(k)
	}
	startMS := start.Unix() * 1000
	var out []PeerBody
	cur := PeerBody{}
	var chunk []Sample
	for lo := 0; lo < len(samples); {
		hour := samples[lo].Minute / peerChunkMinutes
		hi := lo
		for hi < len(samples) && samples[hi].Minute/peerChunkMinutes == hour {
			hi++
		}
		chunk = append(chunk[:0], samples[lo:hi]...)
		slices.SortStableFunc(chunk, func(a, b Sample) int { return int(a.Series) - int(b.Series) })
		for i := 0; i < len(chunk); {
			j := i
			for j < len(chunk) && chunk[j].Series == chunk[i].Series {
				j++
			}
			b := append(cur.Body, heads[chunk[i].Series]...)
			for n, s := range chunk[i:j] {
				if n > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendInt(b, s.Value, 10)
			}
			b = append(b, `],"timestamps":[`...)
			for n, s := range chunk[i:j] {
				if n > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendInt(b, startMS+int64(s.Minute)*60000, 10)
			}
			cur.Body = append(b, "]}\n"...)
			cur.Samples += j - i
			if cur.Samples >= batch {
				out = append(out, cur)
				cur = PeerBody{}
			}
			i = j
		}
		lo = hi
	}
	if cur.Samples > 0 {
		out = append(out, cur)
	}
	return out
}

package bench

import (
	"slices"
	"strconv"
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
	heads := make([][]byte, len(d.Series))
	for i, k := range d.Series {
		cell, cell8, cell6 := PeerLabels(k)
		h := append([]byte(nil), `{"metric":{"__name__":"`...)
		h = append(h, k.Metric...)
		h = append(h, `","cell":"`...)
		h = append(h, cell...)
		h = append(h, `","cell8":"`...)
		h = append(h, cell8...)
		h = append(h, `","cell6":"`...)
		h = append(h, cell6...)
		h = append(h, `"},"values":[`...)
		heads[i] = h
	}
	start := d.Start.Unix() * 1000
	var out []PeerBody
	cur := PeerBody{}
	var chunk []Sample
	for lo := 0; lo < len(d.Samples); {
		hour := d.Samples[lo].Minute / peerChunkMinutes
		hi := lo
		for hi < len(d.Samples) && d.Samples[hi].Minute/peerChunkMinutes == hour {
			hi++
		}
		chunk = append(chunk[:0], d.Samples[lo:hi]...)
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
				b = strconv.AppendInt(b, start+int64(s.Minute)*60000, 10)
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

package bench

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/flowd/flowd/demo/city"
	"github.com/flowd/flowd/vocab"
	"github.com/uber/h3-go/v4"
)

// DetectorFeed is ingest's second workload, apart from the city (issue 10:
// the gains must hold on any realistic feed, not only on the bench's): a
// province's roadside detectors, each on a base cell of its own, each
// reporting every minute a count of cars and their mean speed. It has no
// swipes, no footfall, no readings of longer intervals and no detectors
// sharing a cell, and several times the city's detectors; its lines are
// of one sensor each, so that no two lines in a row name the same one.
//
// It is held as flowd's NDJSON, as the peer's raw samples (for its stream
// aggregation, labelled by cell alone, the lightest form that still tells
// the cells apart) and as the minute buckets both store (for the peer's
// import).
type DetectorFeed struct {
	Detectors int
	Minutes   int
	Start     time.Time
	Res       int
	// SensorsCSV is the detectors' registry, for PUT /api/v1/sensors.
	SensorsCSV []byte
	Blocks     []Block // flowd's NDJSON counts, in minute order
	// Raw are the peer's requests of raw samples, about batch lines each:
	// a reading's count and its speed sum.
	Raw     []Request
	Series  []SeriesKey
	Samples []Sample // in minute order
	Events  int64
}

// detectorBox is where the feed's detectors stand: about 90 by 95 km
// around Hangzhou, some 80,000 base cells of resolution 9.
var detectorBox = struct{ lat0, lat1, lng0, lng1 float64 }{29.8, 30.6, 119.6, 120.6}

// GenerateDetectors makes a feed of n detectors over minutes minutes from
// start, their cells at resolution res, the peer's raw requests of about
// batch lines each.
func GenerateDetectors(seed uint64, n, minutes int, start time.Time, res, batch int) *DetectorFeed {
	r := rand.New(rand.NewPCG(seed, 0x64657465))
	f := &DetectorFeed{Detectors: n, Minutes: minutes, Start: start, Res: res}
	type detector struct {
		id    string
		cell  h3.Cell
		rate  float64 // cars a minute, on average
		speed float64 // km/h, on average
	}
	dets := make([]detector, 0, n)
	taken := map[h3.Cell]bool{}
	csv := []byte("id,name,lat,lng,kind\n")
	for len(dets) < n {
		lat := detectorBox.lat0 + r.Float64()*(detectorBox.lat1-detectorBox.lat0)
		lng := detectorBox.lng0 + r.Float64()*(detectorBox.lng1-detectorBox.lng0)
		cell := h3.LatLngToCell(h3.LatLng{Lat: lat, Lng: lng}, res)
		if taken[cell] {
			continue
		}
		taken[cell] = true
		u := r.Float64()
		d := detector{id: fmt.Sprintf("det-%05d", len(dets)), cell: cell, rate: 1 + 40*u*u, speed: 25 + 70*r.Float64()}
		dets = append(dets, d)
		csv = fmt.Appendf(csv, "%s,detector %d,%s,%s,loop\n", d.id, len(dets)-1,
			strconv.FormatFloat(lat, 'f', 6, 64), strconv.FormatFloat(lng, 'f', 6, 64))
	}
	f.SensorsCSV = csv

	countSeries := make([]uint32, n)
	speedSeries := make([]uint32, n)
	for i, d := range dets {
		countSeries[i] = uint32(len(f.Series))
		f.Series = append(f.Series, SeriesKey{Metric: "count_car", Cell: d.cell})
		speedSeries[i] = uint32(len(f.Series))
		f.Series = append(f.Series, SeriesKey{Metric: "speed_car", Cell: d.cell})
	}
	cellLabel := make([][]byte, n)
	for i, d := range dets {
		cellLabel[i] = []byte(`{cell="` + d.cell.String() + `"} `)
	}

	var cut blockCutter
	var lines []byte
	var ends []int32
	raw := Request{Path: "/api/v1/import/prometheus", Type: "text/plain"}
	var body []byte
	rawLines := 0
	for m := range minutes {
		t := start.Add(time.Duration(m) * time.Minute)
		ms := t.UnixMilli()
		stamp := t.In(city.Hangzhou).AppendFormat(nil, time.RFC3339)
		lines, ends = lines[:0], ends[:0]
		for i, d := range dets {
			count := max(1, int64(d.rate*(0.5+r.Float64())+0.5))
			tenths := int64((d.speed+10*(r.Float64()-0.5))*10 + 0.5)
			lines = append(lines, `{"time":"`...)
			lines = append(lines, stamp...)
			lines = append(lines, `","sensor":"`...)
			lines = append(lines, d.id...)
			lines = append(lines, `","class":"car","count":`...)
			lines = strconv.AppendInt(lines, count, 10)
			lines = append(lines, `,"interval":60,"speed":`...)
			lines = strconv.AppendFloat(lines, float64(tenths)/10, 'f', 1, 64)
			lines = append(lines, "}\n"...)
			ends = append(ends, int32(len(lines)))
			f.Events++

			// As flowd buckets it: the speed sum is km/h, as the line
			// writes it, times the count, rounded.
			speedSum := vocab.SpeedSum(float64(tenths)/10, count)
			f.Samples = append(f.Samples,
				Sample{Series: countSeries[i], Minute: int32(m), Value: count},
				Sample{Series: speedSeries[i], Minute: int32(m), Value: speedSum})
			body = appendRawSample(body, "count_car", cellLabel[i], count, ms)
			body = appendRawSample(body, "speed_car", cellLabel[i], speedSum, ms)
			rawLines += 2
			raw.Events++
			if rawLines >= batch {
				raw.Parts = [][]byte{body}
				f.Raw = append(f.Raw, raw)
				raw = Request{Path: raw.Path, Type: raw.Type}
				body, rawLines = nil, 0
			}
		}
		cut.add(lines, ends)
	}
	if raw.Events > 0 {
		raw.Parts = [][]byte{body}
		f.Raw = append(f.Raw, raw)
	}
	f.Blocks = cut.finish()
	return f
}

// appendRawSample writes one Prometheus text line.
func appendRawSample(b []byte, name string, labels []byte, v, ms int64) []byte {
	b = append(b, name...)
	b = append(b, labels...)
	b = strconv.AppendInt(b, v, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, ms, 10)
	return append(b, '\n')
}

// FlowdRequests cuts the feed into flowd's requests of batch events.
func (f *DetectorFeed) FlowdRequests(batch int) []Request {
	return FlowdRequests([][]Block{f.Blocks}, []string{city.KindCount.Path()}, batch)
}

// PeerImport renders the feed's buckets as the peer's JSON-line imports of
// about batch samples, each series labelled by its cell alone.
func (f *DetectorFeed) PeerImport(batch int) []PeerBody {
	return importBodies(f.Series, f.Samples, f.Start, batch, func(k SeriesKey) []byte {
		return []byte(`{"metric":{"__name__":"` + k.Metric + `","cell":"` + k.Cell.String() + `"},"values":[`)
	})
}

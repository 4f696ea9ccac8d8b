package remote

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/storage"
	"github.com/flowd/flowd/vocab"
	"github.com/klauspost/compress/gzip"
)

// sampleKey names one final bucket value: the series (tier, metric, cell,
// sub-key) and the bucket's first minute.
type sampleKey struct {
	tier   storage.Tier
	metric string
	cell   uint64
	sub    uint64
	minute int64
}

// samples gathers final bucket values, combining two values of one bucket
// as its metric's kind says (summed, or the maximum of a sketch register).
type samples map[sampleKey]int64

func (s samples) add(k sampleKey, v int64) {
	old, ok := s[k]
	if !ok {
		s[k] = v
		return
	}
	if vocab.KindOf(k.metric) == vocab.Sketch {
		s[k] = max(old, v)
		return
	}
	s[k] = storage.SatAdd(old, v)
}

// HourSuffix ends the name of a metric's hourly rollup series in
// VictoriaMetrics: count_car:1h holds the hours of count_car.
const HourSuffix = ":1h"

// SeriesName returns the VictoriaMetrics metric name of a flowd metric's
// buckets of tier t: a per-entity or rider group's family goes under its
// metric's name, told apart by labels (Family).
func SeriesName(metric string, t storage.Tier) string {
	base, _, _ := Family(metric)
	if t == storage.TierHour {
		return base + HourSuffix
	}
	return base
}

// The labels that tell a metric's families apart in VictoriaMetrics,
// whose metric names cannot hold flowd's @ and # bare in MetricsQL:
// count_car@sensor is count_car{entity="sensor"}, swipes_in#student is
// swipes_in{group="student"}. The metric's own series have neither.
const (
	EntityLabel = "entity"
	GroupLabel  = "group"
)

// Family splits a flowd metric name into its metric, the kind of entity
// of a per-entity family (sensor, station, site) and the rider group of
// a group's family; entity and group are empty for the metric itself.
func Family(name string) (base, entity, group string) {
	base = name
	if i := strings.IndexByte(base, vocab.GroupSep); i >= 0 {
		base, group = base[:i], base[i+1:]
	}
	if vocab.IsPerEntity(base) {
		i := strings.LastIndexByte(base, '@')
		base, entity = base[:i], base[i+1:]
	}
	return base, entity, group
}

// familyMatchers returns the label matchers that pick metric's family
// among the series of its name: entity="",group="" for the metric itself.
func familyMatchers(metric string) string {
	_, entity, group := Family(metric)
	return fmt.Sprintf("%s=%q,%s=%q", EntityLabel, entity, GroupLabel, group)
}

// CellLabel is the label holding a bucket's base cell; ResLabel(r) holds
// its parent at resolution r.
const CellLabel = "cell"

// ResLabel returns the label of a bucket's parent cell at resolution r:
// "r7" for resolution 7.
func ResLabel(r int) string { return "r" + strconv.Itoa(r) }

// CellHex writes an H3 id as VictoriaMetrics labels and flowd's API show it.
func CellHex(c uint64) string { return strconv.FormatUint(c, 16) }

// labeler writes the labels of series: the cell and its parents, a
// sub-key's label, the node.
type labeler struct {
	node    string
	parents []int // resolutions coarser than the base one, ascending
}

// appendSeries appends the "metric" object of k's series in the JSON line
// format of /api/v1/import.
func (l *labeler) appendSeries(dst []byte, k sampleKey) []byte {
	dst = append(dst, `{"__name__":`...)
	dst = strconv.AppendQuote(dst, SeriesName(k.metric, k.tier))
	if _, entity, group := Family(k.metric); entity != "" || group != "" {
		if entity != "" {
			dst = appendLabel(dst, EntityLabel, entity)
		}
		if group != "" {
			dst = appendLabel(dst, GroupLabel, group)
		}
	}
	dst = appendLabel(dst, CellLabel, CellHex(k.cell))
	for _, r := range l.parents {
		dst = appendLabel(dst, ResLabel(r), CellHex(geo.Parent(k.cell, r)))
	}
	switch base := vocab.BaseMetric(k.metric); {
	case base == vocab.Trips || base == vocab.TripSeconds:
		dst = appendLabel(dst, "dest", CellHex(k.sub))
		for _, r := range l.parents {
			dst = appendLabel(dst, "dest_"+ResLabel(r), CellHex(geo.Parent(k.sub, r)))
		}
	case vocab.KindOf(k.metric) == vocab.Sketch:
		dst = appendLabel(dst, "reg", strconv.FormatUint(k.sub, 10))
	case k.sub != 0:
		dst = appendLabel(dst, "sub", strconv.FormatUint(k.sub, 10))
	}
	dst = appendLabel(dst, "node", l.node)
	return append(dst, '}')
}

func appendLabel(dst []byte, name, value string) []byte {
	dst = append(dst, ',')
	dst = strconv.AppendQuote(dst, name)
	dst = append(dst, ':')
	return strconv.AppendQuote(dst, value)
}

// encodeSegment writes samples as a gzip-compressed body for
// /api/v1/import: one JSON line a series, its buckets in time order, each
// stamped with its first minute in milliseconds.
func (l *labeler) encodeSegment(s samples) ([]byte, error) {
	keys := make([]sampleKey, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareSamples)
	raw := make([]byte, 0, 40*len(keys)+4096) // grown once for the labels of a series a few samples

	for i := 0; i < len(keys); {
		j := i + 1
		for j < len(keys) && sameSeries(keys[i], keys[j]) {
			j++
		}
		raw = append(raw, `{"metric":`...)
		raw = l.appendSeries(raw, keys[i])
		raw = append(raw, `,"values":[`...)
		for n, k := range keys[i:j] {
			if n > 0 {
				raw = append(raw, ',')
			}
			raw = strconv.AppendInt(raw, s[k], 10)
		}
		raw = append(raw, `],"timestamps":[`...)
		for n, k := range keys[i:j] {
			if n > 0 {
				raw = append(raw, ',')
			}
			raw = strconv.AppendInt(raw, k.minute*60_000, 10)
		}
		raw = append(raw, "]}\n"...)
		i = j
	}
	var b bytes.Buffer
	b.Grow(len(raw)/8 + 4096)
	w, err := gzip.NewWriterLevel(&b, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(raw); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func sameSeries(a, b sampleKey) bool {
	return a.tier == b.tier && a.metric == b.metric && a.cell == b.cell && a.sub == b.sub
}

func compareSamples(a, b sampleKey) int {
	switch {
	case a.tier != b.tier:
		return int(a.tier) - int(b.tier)
	case a.metric != b.metric:
		if a.metric < b.metric {
			return -1
		}
		return 1
	case a.cell != b.cell:
		if a.cell < b.cell {
			return -1
		}
		return 1
	case a.sub != b.sub:
		if a.sub < b.sub {
			return -1
		}
		return 1
	}
	return int(a.minute - b.minute)
}

package cityfile

import (
	"strconv"
)

// pems reads a PeMS station 5-minute file (the Caltrans clearinghouse's
// station_5min text files, which have no header row): Timestamp, Station,
// District, Freeway, Direction, Lane Type, Station Length, Samples,
// % Observed, Total Flow, Avg Occupancy, Avg Speed, then five columns per
// lane. Each row becomes a count of its station's total flow over the
// interval, with the mean speed in km/h when the station measures one.
type pems struct {
	sp       *Spec
	tr       *timeReader
	interval string
	mph      bool
}

// Columns of a PeMS station 5-minute row.
const (
	pemsTime  = 0
	pemsID    = 1
	pemsFlow  = 9
	pemsSpeed = 11
)

var pemsHeader = []string{"Timestamp", "Station", "District", "Freeway", "Direction", "Lane Type", "Station Length", "Samples", "% Observed", "Total Flow", "Avg Occupancy", "Avg Speed"}

func newPeMS(sp *Spec) (*pems, error) {
	sp.Time = TimeSpec{Column: "Timestamp", Formats: []string{"01/02/2006 15:04:05"}}
	tr, err := newTimeReader(sp, newColumns(pemsHeader), pemsHeader, false)
	if err != nil {
		return nil, err
	}
	return &pems{sp: sp, tr: tr, interval: strconv.FormatInt(int64(sp.interval.Seconds()), 10), mph: sp.SpeedUnit == "mph"}, nil
}

func (p *pems) Kind() string   { return "counts" }
func (p *pems) Header() string { return headerOf("counts") }

func (p *pems) Convert(line int, rec []string, dst []byte) ([]byte, Result) {
	var res Result
	if blank(rec) {
		res.Blank = true
		return dst, res
	}
	if len(rec) < len(pemsHeader) {
		res.Rejected = append(res.Rejected, Problem{line, "", strconv.Itoa(len(rec)) + " fields",
			"a PeMS station 5-minute row has at least 12 fields: " + quoteList(pemsHeader)})
		return dst, res
	}
	if line == 1 && cell(rec, pemsTime) == "Timestamp" {
		res.Blank = true // a header row someone added
		return dst, res
	}
	t, pr := p.tr.read(line, rec)
	if pr != nil {
		res.Rejected = append(res.Rejected, *pr)
		return dst, res
	}
	station := cell(rec, pemsID)
	if station == "" {
		res.Rejected = append(res.Rejected, Problem{line, "Station", "", "required"})
		return dst, res
	}
	flow := cell(rec, pemsFlow)
	if flow == "" {
		res.Missing = append(res.Missing, Problem{line, "Total Flow", "", "missing"})
		return dst, res
	}
	n, err := strconv.ParseInt(flow, 10, 64)
	if err != nil || n < 0 {
		res.Rejected = append(res.Rejected, Problem{line, "Total Flow", flow, "want a non-negative integer"})
		return dst, res
	}
	var speed []byte
	if s := cell(rec, pemsSpeed); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v < 0 {
			res.Rejected = append(res.Rejected, Problem{line, "Avg Speed", s, "want a non-negative number"})
			return dst, res
		}
		if p.mph {
			v *= 1.609344
		}
		speed = strconv.AppendFloat(speed, v, 'f', 1, 64)
	}
	// time,sensor,class,count,interval,speed
	dst = appendTime(dst, t)
	dst = append(dst, ',')
	dst = appendField(dst, station)
	dst = append(dst, ',')
	dst = append(dst, p.sp.Class...)
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, n, 10)
	dst = append(dst, ',')
	dst = append(dst, p.interval...)
	dst = append(dst, ',')
	dst = append(dst, speed...)
	dst = append(dst, '\n')
	res.Events = 1
	return dst, res
}

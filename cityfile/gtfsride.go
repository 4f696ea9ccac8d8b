package cityfile

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// gtfsRide reads a GTFS-ride board_alight.txt: per trip and stop, the
// passengers who boarded and alighted there. Each becomes a count of the
// class boarding or alighting at the sensor of the stop's id (load the
// feed's stops.txt as sensors: `PUT /api/v1/sensors`), at the actual
// arrival time (or departure, without one) on the service date.
type gtfsRide struct {
	sp                   *Spec
	stop, date           int
	arrival, departure   int
	boardings, alighting int
	clock                *Clock
}

func newGTFSRide(sp *Spec, header []string) (*gtfsRide, error) {
	cols := newColumns(header)
	g := &gtfsRide{sp: sp,
		stop: cols.find("stop_id"), date: cols.find(sp.Time.Column),
		arrival: cols.find("service_arrival_time"), departure: cols.find("service_departure_time"),
		boardings: cols.find("boardings"), alighting: cols.find("alightings")}
	var err error
	if g.clock, err = NewClock(sp.TZ, false); err != nil {
		return nil, err
	}
	if g.stop < 0 || g.date < 0 || (g.arrival < 0 && g.departure < 0) || (g.boardings < 0 && g.alighting < 0) {
		return nil, fmt.Errorf("a GTFS-ride board_alight.txt needs columns stop_id, %s, service_arrival_time or service_departure_time, boardings or alightings; the header has %s",
			sp.Time.Column, quoteList(header))
	}
	return g, nil
}

func (g *gtfsRide) Kind() string   { return "counts" }
func (g *gtfsRide) Header() string { return headerOf("counts") }

func (g *gtfsRide) Convert(line int, rec []string, dst []byte) ([]byte, Result) {
	var res Result
	if blank(rec) {
		res.Blank = true
		return dst, res
	}
	stop := cell(rec, g.stop)
	if stop == "" {
		res.Rejected = append(res.Rejected, Problem{line, "stop_id", "", "required"})
		return dst, res
	}
	t, p := g.when(line, rec)
	if p != nil {
		res.Rejected = append(res.Rejected, *p)
		return dst, res
	}
	var ts []byte
	ts = appendTime(ts, t)
	for _, c := range [...]struct {
		index       int
		name, class string
	}{{g.boardings, "boardings", "boarding"}, {g.alighting, "alightings", "alighting"}} {
		if c.index < 0 {
			continue
		}
		text := cell(rec, c.index)
		if text == "" {
			res.Missing = append(res.Missing, Problem{line, c.name, text, "missing"})
			continue
		}
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil || n < 0 {
			res.Rejected = append(res.Rejected, Problem{line, c.name, text, "want a non-negative integer"})
			continue
		}
		// time,sensor,class,count,interval,speed
		dst = append(dst, ts...)
		dst = append(dst, ',')
		dst = appendField(dst, stop)
		dst = append(dst, ',')
		dst = append(dst, c.class...)
		dst = append(dst, ',')
		dst = strconv.AppendInt(dst, n, 10)
		dst = append(dst, ",60,\n"...)
		res.Events++
	}
	return dst, res
}

// when returns the record's instant. GTFS times count from "noon minus
// 12 hours" of the service day and may pass 24:00:00 for trips after
// midnight; on the days the clocks change, noon minus 12 hours is not
// midnight, and counting from it is what keeps those times unambiguous.
func (g *gtfsRide) when(line int, rec []string) (time.Time, *Problem) {
	dateText := cell(rec, g.date)
	day, err := time.Parse("20060102", dateText)
	if err != nil {
		return time.Time{}, &Problem{line, g.sp.Time.Column, dateText, "want a date as YYYYMMDD"}
	}
	field, text := "service_arrival_time", cell(rec, g.arrival)
	if text == "" {
		field, text = "service_departure_time", cell(rec, g.departure)
	}
	secs, ok := gtfsSeconds(text)
	if !ok {
		return time.Time{}, &Problem{line, field, text, "want a time as HH:MM:SS (past 24:00:00 for trips after midnight)"}
	}
	noon, err := g.clock.Instant(day.Add(12 * time.Hour))
	if err != nil {
		return time.Time{}, &Problem{line, g.sp.Time.Column, dateText, err.Error()}
	}
	return noon.Add(time.Duration(secs-12*3600) * time.Second), nil
}

// gtfsSeconds parses H:MM:SS or HH:MM:SS, hours up to 47.
func gtfsSeconds(s string) (int, bool) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 || len(parts[1]) != 2 || len(parts[2]) != 2 {
		return 0, false
	}
	var v [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return 0, false
		}
		v[i] = n
	}
	if v[0] > 47 || v[1] > 59 || v[2] > 59 {
		return 0, false
	}
	return v[0]*3600 + v[1]*60 + v[2], true
}

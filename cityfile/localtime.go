package cityfile

import (
	"fmt"
	"time"
)

// Clock turns the wall-clock times of a file written in one time zone into
// instants. Daylight saving time makes two kinds of wall time special:
//
//   - a time in the gap of a spring-forward change (02:30 when the clocks
//     jump from 02:00 to 03:00) never happened: it is an error, not a guess,
//     since moving it either way would pile its reading onto another hour;
//   - a time in the repeated hour of a fall-back change happened twice: it
//     is taken as the first occurrence until the file's times go back within
//     that hour (or, in a file of one row per time, repeat a time), and as
//     the second from then on. A file listing the repeated hour once has it
//     in the first occurrence.
type Clock struct {
	loc *time.Location
	// repeatIsSecond says that a wall time equal to the last ambiguous one
	// is the second occurrence: files with one row per time.
	repeatIsSecond bool

	ambDay    int64 // days since the epoch of the last ambiguous wall time
	ambLast   int64 // that wall time, as seconds of a UTC clock
	ambSecond bool  // from then on the second occurrence
}

// NewClock returns a clock of the IANA zone name ("" or "UTC" for UTC).
func NewClock(name string, repeatIsSecond bool) (*Clock, error) {
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %v (want an IANA name such as Australia/Melbourne)", name, err)
	}
	return &Clock{loc: loc, repeatIsSecond: repeatIsSecond, ambDay: -1 << 62}, nil
}

// Zone returns the clock's zone name.
func (c *Clock) Zone() string { return c.loc.String() }

// UTC reports whether the clock's times are UTC already.
func (c *Clock) UTC() bool { return c.loc == time.UTC }

// Instant returns the instant of the wall time given as the fields of w
// (read as if on a UTC clock), or an error for a time that did not exist.
func (c *Clock) Instant(w time.Time) (time.Time, error) {
	if c.loc == time.UTC {
		return w, nil
	}
	wall := w.Unix()
	var cands [2]int64
	n := 0
	// The offsets in force a day either side cover any one change.
	for _, probe := range [...]int64{wall - 86400, wall, wall + 86400} {
		_, off := time.Unix(probe, 0).In(c.loc).Zone()
		inst := wall - int64(off)
		if _, off2 := time.Unix(inst, 0).In(c.loc).Zone(); off2 != off {
			continue
		}
		if n > 0 && cands[n-1] == inst || n == 2 && cands[0] == inst {
			continue
		}
		if n < 2 {
			cands[n] = inst
			n++
		}
	}
	switch {
	case n == 0:
		before := time.Unix(wall-86400, 0).In(c.loc)
		_, offBefore := before.Zone()
		_, offAfter := time.Unix(wall+86400, 0).In(c.loc).Zone()
		jump := time.Duration(offAfter-offBefore) * time.Second
		return time.Time{}, fmt.Errorf("%s does not exist in %s: the clocks were put forward %v then",
			w.Format("2006-01-02 15:04:05"), c.loc, jump)
	case n == 1:
		return time.Unix(cands[0], int64(w.Nanosecond())).UTC(), nil
	}
	if cands[0] > cands[1] {
		cands[0], cands[1] = cands[1], cands[0]
	}
	day := wall / 86400
	switch {
	case day != c.ambDay:
		c.ambDay, c.ambSecond = day, false
	case wall < c.ambLast, wall == c.ambLast && c.repeatIsSecond:
		c.ambSecond = true
	}
	c.ambLast = wall
	inst := cands[0]
	if c.ambSecond {
		inst = cands[1]
	}
	return time.Unix(inst, int64(w.Nanosecond())).UTC(), nil
}

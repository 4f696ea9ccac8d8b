package city

import (
	"bufio"
	"io"
	"slices"
	"strconv"
	"time"
)

// AFCHeader is the header row of the 2019 Hangzhou metro AFC competition
// files, the schema AFCRows and AFCDay write.
const AFCHeader = "time,lineID,stationID,deviceID,status,userID,payType\n"

// afcTap is one row before formatting.
type afcTap struct {
	time    int64
	station int
	gate    int
	in      bool
	card    uint64
}

// AFCRows calls fn with each row (newline included, no header) of the day
// holding day in the AFC competition schema, in time order: the taps of every
// trip that starts that Hangzhou day, including tap-outs just past midnight,
// and the day's unmatched taps. stationID is the station's index; lineID is
// the letter 'A'+line number (line 2 → C, as in the competition's sample
// row); deviceID is stationID×40 + gate; payType (0–3) is fixed per card.
// row is reused after fn returns.
func (c *City) AFCRows(day time.Time, fn func(row []byte)) {
	c.afcDay(day, fn, nil)
}

// AFCDay writes AFCHeader and the rows of AFCRows to w and returns the exact
// ground truth: the number of trips per (origin stationID, destination
// stationID), and the number of unmatched taps. Matching every card's tap-in
// with its next tap-out in the file recovers truth exactly.
func (c *City) AFCDay(day time.Time, w io.Writer) (truth map[[2]int]int, unmatched int, err error) {
	bw := bufio.NewWriterSize(w, 1<<16)
	if _, err := bw.WriteString(AFCHeader); err != nil {
		return nil, 0, err
	}
	truth = map[[2]int]int{}
	unmatched = c.afcDay(day, func(row []byte) {
		if err == nil {
			_, err = bw.Write(row)
		}
	}, truth)
	if err == nil {
		err = bw.Flush()
	}
	return truth, unmatched, err
}

// afcDay generates the day minute by minute, sorting each minute's taps by
// time, and records trips into truth when it is not nil.
func (c *City) afcDay(day time.Time, fn func([]byte), truth map[[2]int]int) (unmatched int) {
	y, mo, d := day.In(Hangzhou).Date()
	first := time.Date(y, mo, d, 0, 0, 0, 0, Hangzhou).Unix() / 60
	end := first + 1440
	var taps []afcTap
	var row []byte
	for m := first; m < end+maxDur+1; m++ {
		taps = taps[:0]
		if m < end {
			for dur := minDur; dur <= maxDur; dur++ {
				c.tripsStarting(m, dur, func(tr *trip) {
					taps = append(taps, afcTap{tr.in, tr.o, tr.gateIn, true, tr.card})
					if truth != nil {
						truth[[2]int{tr.o, tr.d}]++
					}
				})
			}
			c.orphans(m, func(o *orphanTap) {
				taps = append(taps, afcTap{o.time, o.station, o.gate, o.in, o.card})
				unmatched++
			})
		}
		for dur := minDur; dur <= maxDur; dur++ {
			if s := m - int64(dur); s >= first && s < end {
				c.tripsStarting(s, dur, func(tr *trip) {
					taps = append(taps, afcTap{tr.out, tr.d, tr.gateOut, false, tr.card})
				})
			}
		}
		slices.SortStableFunc(taps, func(a, b afcTap) int { return int(a.time - b.time) })
		for i := range taps {
			row = c.appendAFC(row[:0], &taps[i])
			fn(row)
		}
	}
	return unmatched
}

func (c *City) appendAFC(dst []byte, t *afcTap) []byte {
	s := &c.Stations[t.station]
	dst = appendAFCTime(dst, t.time)
	dst = append(dst, ',')
	line, _ := strconv.Atoi(s.Line)
	dst = append(dst, byte('A'+line%26))
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, int64(t.station), 10)
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, int64(t.station*40+t.gate), 10)
	if t.in {
		dst = append(dst, ",1,"...)
	} else {
		dst = append(dst, ",0,"...)
	}
	id := c.card(t.card)
	dst = id.appendTo(dst)
	dst = append(dst, ',')
	return append(dst, byte('0'+payType(id)), '\n')
}

// payType spreads the competition's four pay types over cards, mostly 1 and 2.
func payType(id Card) int {
	switch v := id[15] % 20; {
	case v == 0:
		return 0
	case v < 8:
		return 1
	case v < 19:
		return 2
	default:
		return 3
	}
}

package city

import (
	"math"
	"time"
)

// Minute calls fn for every event of the simulated minute holding t: the
// taps in and out of the metro, one count per detector and class that saw
// anything, and one footfall record per site gate that let anyone through.
// The *Event is reused between calls.
func (c *City) Minute(t time.Time, fn func(*Event)) { c.MinuteSpan(t, 0, 60, fn) }

// MinuteSpan calls fn for the part of the minute holding t that lies in
// seconds [from, to): taps stamped in it, and counts and footfall scaled to
// the span so that the spans of a minute add up exactly to the minute
// (counts cover Interval = to-from seconds and are stamped at the span's
// start). Live feeds use it to move every second.
func (c *City) MinuteSpan(t time.Time, from, to int, fn func(*Event)) {
	c.MinuteSpanKinds(t, from, to, nil, fn)
}

// MinuteSpanKinds is MinuteSpan for the events of kinds alone (nil: all),
// generating only those.
func (c *City) MinuteSpanKinds(t time.Time, from, to int, kinds []Kind, fn func(*Event)) {
	from, to = max(from, 0), min(to, 60)
	if from >= to {
		return
	}
	m := floorDiv(t.Unix(), 60)
	if kinds == nil {
		kinds = Kinds[:]
	}
	for _, k := range kinds {
		switch k {
		case KindSwipe:
			c.swipes(m, from, to, fn)
		case KindCount:
			c.counts(m, from, to, fn)
		case KindFootfall:
			c.footfall(m, from, to, fn)
		default:
			panic("BUG: unknown event kind " + k.String())
		}
	}
}

// Counts calls fn for every detector count of the minute holding t, the
// same counts Minute gives, without generating its taps and footfall: weeks
// of cameras for a test, at the cost of the cameras alone.
func (c *City) Counts(t time.Time, fn func(*Event)) { c.counts(floorDiv(t.Unix(), 60), 0, 60, fn) }

func (c *City) swipes(m int64, from, to int, fn func(*Event)) {
	lo, hi := m*60+int64(from), m*60+int64(to)
	e := &Event{Kind: KindSwipe}
	for d := minDur; d <= maxDur; d++ {
		c.tripsStarting(m, d, func(tr *trip) {
			if tr.in >= lo && tr.in < hi {
				s := &c.Stations[tr.o]
				e.Time, e.ID, e.Line, e.Dir, e.Card = tr.in, s.ID, s.Line, DirIn, c.card(tr.card)
				fn(e)
			}
		})
		c.tripsStarting(m-int64(d), d, func(tr *trip) {
			if tr.out >= lo && tr.out < hi {
				s := &c.Stations[tr.d]
				e.Time, e.ID, e.Line, e.Dir, e.Card = tr.out, s.ID, s.Line, DirOut, c.card(tr.card)
				fn(e)
			}
		})
	}
	c.orphans(m, func(o *orphanTap) {
		if o.time >= lo && o.time < hi {
			s := &c.Stations[o.station]
			e.Time, e.ID, e.Line, e.Card = o.time, s.ID, s.Line, c.card(o.card)
			e.Dir = DirOut
			if o.in {
				e.Dir = DirIn
			}
			fn(e)
		}
	})
}

// counts draws every detector's minute: Poisson counts around the class's
// rhythm, busier near West Lake on holidays and weekends, and speeds that
// drop with the square of the road's load.
func (c *City) counts(m int64, from, to int, fn func(*Event)) {
	dt := c.dayTypeOf(m)
	rh := c.rhythm[dt]
	mod := c.minuteOfDay(m)
	h := (float64(mod) + 0.5) / 60
	lift := 0.0
	switch dt {
	case dayHoliday:
		lift = 1.2 * daytime(h)
	case dayWeekend:
		lift = 0.5 * daytime(h)
	}
	r := newRNG(c.cfg.Seed, saltCamera, uint64(m), 0)
	e := &Event{Kind: KindCount, Time: m*60 + int64(from), Interval: to - from}
	for i := range c.Sensors {
		s := &c.Sensors[i]
		boost := 1 + lift*s.scenic
		load := math.Min(1, rh.load[mod]*boost)
		car := s.freeSpeed*(1-s.congest*load*load) + 3*r.normal()
		for cl := Class(0); cl < numClasses; cl++ {
			if s.base[cl] == 0 {
				continue
			}
			mean := s.base[cl] * rh.traffic[cl][mod] * c.cfg.Scale
			if cl == ClassCar || cl == ClassPerson {
				mean *= boost
			}
			n := r.poisson(mean)
			noise := r.normal()
			part := n*to/60 - n*from/60
			if part == 0 {
				continue
			}
			var v float64
			switch cl {
			case ClassCar:
				v = car
			case ClassBus:
				v = car*0.8 + noise
			case ClassTruck:
				v = car*0.92 + noise
			case ClassBike:
				v = 14 + 2.5*noise
			case ClassPerson:
				v = 4.6 + 0.6*noise
			}
			e.ID, e.Class, e.Count, e.Speed = s.ID, cl, part, math.Max(v, 2)
			fn(e)
		}
	}
}

// footfall turns each site's cumulative flows into the span's entries and
// exits per gate (floors of cumulative sums, so they never drift).
func (c *City) footfall(m int64, from, to int, fn func(*Event)) {
	dt := c.dayTypeOf(m)
	mod := c.minuteOfDay(m)
	day := dayNumber(m + c.shift)
	e := &Event{Kind: KindFootfall, Time: m*60 + int64(from)}
	f0, f1 := float64(from)/60, float64(to)/60
	for i := range c.Sites {
		s := &c.Sites[i]
		fl := &s.flow[dt]
		k := c.dayFactor(s, dt, day, i)
		in0 := fl.in[mod] + (fl.in[mod+1]-fl.in[mod])*f0
		in1 := fl.in[mod] + (fl.in[mod+1]-fl.in[mod])*f1
		out0 := fl.out[mod] + (fl.out[mod+1]-fl.out[mod])*f0
		out1 := fl.out[mod] + (fl.out[mod+1]-fl.out[mod])*f1
		for g, share := range s.gateShare {
			w := k * share
			e.In = int(math.Floor(w*in1) - math.Floor(w*in0))
			e.Out = int(math.Floor(w*out1) - math.Floor(w*out0))
			if e.In == 0 && e.Out == 0 {
				continue
			}
			e.ID, e.Gate = s.ID, s.Gates[g]
			fn(e)
		}
	}
}

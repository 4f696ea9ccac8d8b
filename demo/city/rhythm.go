package city

import "math"

// dayType selects a day's rhythm.
type dayType uint8

const (
	dayWeekday dayType = iota
	dayWeekend
	dayHoliday
	numDayTypes
)

// Trips per day at Scale 1. With the unmatched taps they make about three
// million taps on a weekday, the size of Hangzhou's 2019 metro AFC days.
var tripsPerDay = [numDayTypes]float64{1.47e6, 1.2e6, 1.35e6}

// orphanShare is the fraction of taps that belong to no trip (a tap-in whose
// tap-out is lost, or the reverse): 2 % of all taps.
const orphanShare = 0.02

// OD profiles: who travels where at a time of day.
const (
	profCommuteIn   = iota // home → work
	profCommuteOut         // work → home
	profErrand             // anywhere → anywhere
	profLeisureOut         // home → scenic
	profLeisureBack        // scenic → home
	numProfiles
)

func gauss(h, mu, sigma float64) float64 { d := (h - mu) / sigma; return math.Exp(-0.5 * d * d) }

func smoothstep(a, b, x float64) float64 {
	t := math.Min(1, math.Max(0, (x-a)/(b-a)))
	return t * t * (3 - 2*t)
}

// metroService is 1 while the metro runs (about 06:00–23:00) and 0 at night.
func metroService(h float64) float64 {
	return smoothstep(5.5, 6.5, h) * (1 - smoothstep(22.5, 23.5, h))
}

// daytime is the broad plateau of urban activity.
func daytime(h float64) float64 { return smoothstep(6.5, 9, h) * (1 - smoothstep(20, 23, h)) }

// tripShape is the unnormalised rate of each OD profile at hour h: commuter
// peaks at 8:00 and 18:00 on weekdays; weekends and holidays move the load
// to leisure trips towards the scenic stations and back.
func tripShape(dt dayType, h float64) [numProfiles]float64 {
	var p [numProfiles]float64
	switch dt {
	case dayWeekday:
		p = [numProfiles]float64{1.0 * gauss(h, 8, 0.75), 0.85 * gauss(h, 18, 1), 0.28 * daytime(h), 0.04 * gauss(h, 11, 2.5), 0.04 * gauss(h, 17, 2.5)}
	case dayWeekend:
		p = [numProfiles]float64{0.2 * gauss(h, 8.5, 1.2), 0.25 * gauss(h, 18, 1.5), 0.45 * daytime(h), 0.3 * gauss(h, 11, 2), 0.3 * gauss(h, 17.5, 2)}
	default:
		p = [numProfiles]float64{0.08 * gauss(h, 8.5, 1.2), 0.1 * gauss(h, 18, 1.5), 0.35 * daytime(h), 0.75 * gauss(h, 10.5, 2), 0.75 * gauss(h, 17.5, 2)}
	}
	s := metroService(h)
	for k := range p {
		p[k] *= s
	}
	return p
}

// dayRhythm is everything about a day type that does not depend on the date.
type dayRhythm struct {
	tripRate [1440]float64              // trips starting per minute (Scale applied)
	mix      [1440][numProfiles]float64 // profile shares of tripRate
	traffic  [numClasses][1440]float64  // detector rhythm per class, peak ≈ 1
	load     [1440]float64              // road load for speeds, 0..1
}

func buildRhythm(dt dayType, scale float64) *dayRhythm {
	d := &dayRhythm{}
	total := 0.0
	for m := 0; m < 1440; m++ {
		p := tripShape(dt, (float64(m)+0.5)/60)
		sum := 0.0
		for _, v := range p {
			sum += v
		}
		d.tripRate[m] = sum
		total += sum
		if sum > 0 {
			for k := range p {
				d.mix[m][k] = p[k] / sum
			}
		}
	}
	for m := range d.tripRate {
		d.tripRate[m] *= tripsPerDay[dt] * scale / total
	}
	for m := 0; m < 1440; m++ {
		h := (float64(m) + 0.5) / 60
		var motor, active float64
		switch dt {
		case dayWeekday:
			motor = 0.06 + 0.5*daytime(h) + 0.45*gauss(h, 8, 1) + 0.45*gauss(h, 17.75, 1.2)
			active = 0.02 + 0.45*daytime(h) + 0.5*gauss(h, 8, 0.8) + 0.5*gauss(h, 18, 1)
		case dayWeekend:
			motor = 0.06 + 0.55*daytime(h) + 0.3*gauss(h, 11, 2.5) + 0.3*gauss(h, 17, 2.5)
			active = 0.03 + 0.55*daytime(h) + 0.4*gauss(h, 14, 3)
		default:
			motor = 0.06 + 0.6*daytime(h) + 0.35*gauss(h, 11, 2.5) + 0.35*gauss(h, 17, 2.5)
			active = 0.03 + 0.6*daytime(h) + 0.6*gauss(h, 14, 3)
		}
		d.traffic[ClassCar][m] = motor
		d.traffic[ClassBus][m] = metroService(h) * (0.55*daytime(h) + 0.3*gauss(h, 8, 1) + 0.3*gauss(h, 18, 1))
		// Hangzhou keeps lorries out of the centre by day.
		d.traffic[ClassTruck][m] = 0.75 - 0.5*daytime(h)
		d.traffic[ClassBike][m] = active
		d.traffic[ClassPerson][m] = active
		d.load[m] = math.Min(1, motor)
	}
	return d
}

// minuteOfDay is the Hangzhou minute of the day of a unix minute, with the
// city's Shift.
func (c *City) minuteOfDay(unixMinute int64) int { return minuteOfDay(unixMinute + c.shift) }

// dayTypeOf is the rhythm of the Hangzhou day holding a unix minute (with
// the city's Shift).
func (c *City) dayTypeOf(unixMinute int64) dayType {
	if c.cfg.Holiday {
		return dayHoliday
	}
	switch (dayNumber(unixMinute+c.shift)%7 + 11) % 7 { // 1970-01-01 was a Thursday
	case 0, 6:
		return dayWeekend
	}
	return dayWeekday
}

// buildFlows precomputes a site's cumulative entries and exits for each day
// type. Occupancy follows a flat-topped bump peaking mid-afternoon at the
// day type's peak fraction of capacity, with slow wobbles; visitors stay
// stayHours on average, so entries = occupancy/stay + rise and exits =
// occupancy/stay + fall, jittered alike so their difference stays the bump.
func (s *Site) buildFlows(seed int64, idx int) {
	r := newRNG(seed, saltLayout, 6, uint64(idx))
	ph1, ph2 := r.float64()*2*math.Pi, r.float64()*2*math.Pi
	for dt := dayType(0); dt < numDayTypes; dt++ {
		occ := func(m int) float64 {
			h := float64(m) / 60
			z := (h - 14) / 5
			wob := 1 + 0.05*math.Sin(2*math.Pi*h/3+ph1) + 0.03*math.Sin(2*math.Pi*h/1.1+ph2)
			return s.peak[dt] * float64(s.Capacity) * math.Exp(-z*z*z*z) * wob
		}
		in := make([]float64, 1441)
		out := make([]float64, 1441)
		stayMin := s.stayHours * 60
		for m := 0; m < 1440; m++ {
			o0, o1 := occ(m), occ(m+1)
			turn := (o0 + o1) / 2 / stayMin * (0.75 + 0.5*r.float64())
			in[m+1] = in[m] + turn + math.Max(0, o1-o0)
			out[m+1] = out[m] + turn + math.Max(0, o0-o1)
		}
		// Everyone has left by midnight.
		out[1440] = in[1440]
		for m := 0; m <= 1440; m++ {
			s.maxOcc[dt] = math.Max(s.maxOcc[dt], occ(m))
		}
		s.flow[dt] = siteFlow{in, out}
	}
}

// dayFactor scales a site's whole day by 0.93–1.07 so days differ, never
// pushing the peak past 97 % of capacity.
func (c *City) dayFactor(s *Site, dt dayType, day int64, idx int) float64 {
	r := newRNG(c.cfg.Seed, saltDay, uint64(day), uint64(idx))
	return math.Min(0.93+0.14*r.float64(), 0.97*float64(s.Capacity)/s.maxOcc[dt])
}

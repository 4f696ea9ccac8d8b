package dashboard

import "github.com/flowd/flowd/vocab"

// siteDay is one site day as flowd knows it: the entries and exits of each
// minute since the day began and the occupancy readings. Occupancy follows
// from them by one rule, the same for the live status, the trend and the
// history of days (docs/live-protocol.md, "Site occupancy"):
//
//   - the day starts at 0: -site-day-start is a time the sites are closed;
//   - each minute adds its entries and takes away its exits, but occupancy
//     never goes below 0. Exits beyond the people counted in belong to
//     entries that were never seen (a gate offline, history not loaded);
//     they are dropped at once rather than carried as a deficit, which
//     would hide the entries after them and leave the site at 0 while
//     people are inside;
//   - a minute holding an occupancy reading (a site's own headcount) ends
//     at that reading, the latest of the minute, whatever the gates said:
//     the readings re-baseline the count, the gates move it in between.
//
// Minutes are taken in time order, not arrival order, so late readings
// land where they belong.
type siteDay struct {
	start, end     int64 // unix ms of the day's start and of the next day's
	entries, exits int64
	net            []int64 // entries minus exits of each minute since start
	readings       map[int]occReading
}

// occReading is the latest occupancy reading of one minute.
type occReading struct{ ms, value int64 }

func newSiteDay(start, end int64) *siteDay {
	return &siteDay{start: start, end: end}
}

// minute returns the index of the minute holding ms, or -1 when ms is
// outside the day.
func (d *siteDay) minute(ms int64) int {
	if ms < d.start || ms >= d.end {
		return -1
	}
	return int((ms - d.start) / 60000)
}

func (d *siteDay) grow(k int) {
	for len(d.net) <= k {
		d.net = append(d.net, 0)
	}
}

// add counts a gate reading of the day; it reports false, counting
// nothing, for a reading of another day.
func (d *siteDay) add(r *vocab.SiteReading) bool {
	k := d.minute(r.Time)
	if k < 0 {
		return false
	}
	d.addFlows(k, r.In, r.Out)
	if r.HasOccupancy {
		if d.readings == nil {
			d.readings = map[int]occReading{}
		}
		if cur, ok := d.readings[k]; !ok || r.Time >= cur.ms {
			d.readings[k] = occReading{r.Time, r.Occupancy}
		}
	}
	return true
}

// addFlows counts entries and exits in minute k of the day.
func (d *siteDay) addFlows(k int, in, out int64) {
	d.grow(k)
	d.entries += in
	d.exits += out
	d.net[k] += in - out
}

// walk calls fn with the occupancy at the end of each minute of the day
// up to the last one that holds a reading, in time order, and returns the
// occupancy at the end of that minute (0 for a day with no readings).
func (d *siteDay) walk(fn func(k int, occ int64)) int64 {
	var occ int64
	for k, n := range d.net {
		occ = max(occ+n, 0)
		if r, ok := d.readings[k]; ok {
			occ = r.value
		}
		if fn != nil {
			fn(k, occ)
		}
	}
	return occ
}

// occupancy is the occupancy after every reading of the day so far.
func (d *siteDay) occupancy() int64 { return d.walk(nil) }

// peak returns the day's highest occupancy and the unix ms of the end of
// the minute it was first reached (0 when the site stayed empty).
func (d *siteDay) peak() (occ, at int64) {
	d.walk(func(k int, v int64) {
		if v > occ {
			occ, at = v, d.start+int64(k+1)*60000
		}
	})
	return occ, at
}

// occupancyAt fills out[i] with the occupancy once every minute that ends
// by ends[i] (unix ms, ascending) has been counted: 0 at the day's start.
func (d *siteDay) occupancyAt(ends []int64, out []int64) {
	i := 0
	var last int64
	d.walk(func(k int, occ int64) {
		minuteEnd := d.start + int64(k+1)*60000
		for ; i < len(ends) && ends[i] < minuteEnd; i++ {
			out[i] = last
		}
		last = occ
	})
	for ; i < len(ends); i++ {
		out[i] = last
	}
}

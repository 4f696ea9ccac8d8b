package city

import "math"

// Trip durations are whole minutes d in [minDur, maxDur]: the tap-in falls in
// minute m at second s1 and the tap-out in minute m+d at second s2, so a trip
// lasts more than 5 and less than 60 minutes.
const (
	minDur = 6
	maxDur = 59
	numDur = maxDur - minDur + 1
)

// cardGroups: a trip ends less than 61 minutes after the minute it started
// in, so cards handed out in minutes 62 apart never ride at the same time.
const cardGroups = 62

// cardPool hands out card ids so that one card is never on two trips at
// once, which keeps "match a card's tap-in with its next tap-out" exact. The
// pool is split into cardGroups groups by start minute; within a minute each
// duration bucket owns k slots of its group, rotated by a per-minute offset
// so cards are reused at random. Unmatched taps use two separate pools, one
// that only ever taps in and one that only ever taps out.
type cardPool struct {
	k       int    // slots per (minute, duration)
	group   uint64 // cards per group: k*numDur
	size    uint64 // cards on trips
	orphans uint64 // cards in each unmatched pool
}

func newCardPool(scale float64) cardPool {
	k := max(8, int(math.Round(1.5e6*scale/cardGroups/numDur)))
	p := cardPool{k: k, group: uint64(k * numDur)}
	p.size = p.group * cardGroups
	p.orphans = max(1024, p.size/16)
	return p
}

// trip is one matched journey.
type trip struct {
	o, d            int   // origin and destination station index
	in, out         int64 // unix seconds of tap-in and tap-out
	card            uint64
	gateIn, gateOut int
}

// odBucket lists the OD pairs of one profile whose travel time falls in one
// duration bucket, as a Walker alias table so a draw costs O(1).
type odBucket struct {
	prob  []float64
	alias []uint32
	pair  []uint32 // origin<<16 | destination
	total float64
}

func (b *odBucket) add(pair uint32, w float64) {
	b.pair = append(b.pair, pair)
	b.prob = append(b.prob, w)
	b.total += w
}

// finish turns the weights in prob into Vose's alias table.
func (b *odBucket) finish() {
	n := len(b.prob)
	b.alias = make([]uint32, n)
	var small, large []int
	for i := range b.prob {
		b.prob[i] *= float64(n) / b.total
		b.alias[i] = uint32(i)
		if b.prob[i] < 1 {
			small = append(small, i)
		} else {
			large = append(large, i)
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		b.alias[s] = uint32(l)
		b.prob[l] -= 1 - b.prob[s]
		if b.prob[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	for _, i := range append(small, large...) {
		b.prob[i] = 1
	}
}

func (b *odBucket) sample(r *rng) (o, d int) {
	x := r.uint64()
	i := int(((x >> 32) * uint64(len(b.prob))) >> 32)
	if float64(x&0xffffffff)*0x1p-32 >= b.prob[i] {
		i = int(b.alias[i])
	}
	p := b.pair[i]
	return int(p >> 16), int(p & 0xffff)
}

// odTable is one profile's gravity model split by trip duration.
type odTable struct {
	bucket [maxDur + 1]odBucket
	share  [maxDur + 1]float64 // fraction of the profile's trips in each bucket
}

// durSpread spreads a pair's trips over its travel time -2..+3 minutes
// (waiting, walking, transfers).
var durSpread = [...]float64{0.1, 0.2, 0.3, 0.2, 0.12, 0.08}

// buildOD makes the gravity tables: weight = origin weight × destination
// weight × exp(-distance/9 km); travel time = 4 min + 2.6 min/km of straight
// distance (a network about 1.3 times longer, run at 30 km/h) ± a per-pair
// wobble.
func buildOD(st []Station, seed int64) [numProfiles]odTable {
	r := newRNG(seed, saltLayout, 7, 0)
	n := len(st)
	tt := make([]float64, n*n)
	dist := make([]float64, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			dist[i*n+j] = distKm(st[i].Pos, st[j].Pos)
			tt[i*n+j] = 4 + 2.6*dist[i*n+j] + r.normal()*1.5
		}
	}
	var tabs [numProfiles]odTable
	for k := range tabs {
		ow := func(s *Station) float64 {
			switch k {
			case profCommuteIn:
				return s.home
			case profCommuteOut:
				return s.work
			case profLeisureBack:
				return s.scenic
			}
			return (s.home + s.work) / 2
		}
		dw := func(s *Station) float64 {
			switch k {
			case profCommuteIn:
				return s.work
			case profCommuteOut, profLeisureBack:
				return s.home
			case profLeisureOut:
				return s.scenic
			}
			return (s.home + s.work) / 2
		}
		t := &tabs[k]
		total := 0.0
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				if i == j {
					continue
				}
				w := ow(&st[i]) * dw(&st[j]) * math.Exp(-dist[i*n+j]/9)
				base := int(math.Round(tt[i*n+j])) - 2
				for x, f := range durSpread {
					d := min(max(base+x, minDur), maxDur)
					t.bucket[d].add(uint32(i)<<16|uint32(j), w*f)
					total += w * f
				}
			}
		}
		for d := minDur; d <= maxDur; d++ {
			if b := &t.bucket[d]; b.total > 0 {
				t.share[d] = b.total / total
				b.finish()
			}
		}
	}
	return tabs
}

// tripsStarting calls fn for each trip that taps in during unix minute m and
// lasts d minutes. The stream depends only on (seed, m, d), so the tap-ins
// of minute m and the tap-outs of minute m+d regenerate the same trips.
func (c *City) tripsStarting(m int64, d int, fn func(*trip)) {
	mod := c.minuteOfDay(m)
	rh := c.rhythm[c.dayTypeOf(m)]
	rate := rh.tripRate[mod]
	if rate == 0 {
		return
	}
	r := newRNG(c.cfg.Seed, saltTrip, uint64(m), uint64(d))
	group := uint64(m % cardGroups)
	if m < 0 {
		group = uint64(m%cardGroups + cardGroups)
	}
	rot := seedOf(c.cfg.Seed, saltRotate, uint64(m), 0) % c.pool.group
	slot := 0
	var tr trip
	for k := 0; k < numProfiles; k++ {
		lam := rate * rh.mix[mod][k] * c.od[k].share[d]
		if lam == 0 {
			continue
		}
		b := &c.od[k].bucket[d]
		for n := r.poisson(lam); n > 0; n-- {
			tr.o, tr.d = b.sample(&r)
			tr.in = m*60 + int64(r.intn(60))
			tr.out = (m+int64(d))*60 + int64(r.intn(60))
			g := r.uint64()
			if slot >= c.pool.k {
				continue // the bucket's cards are all out: drop, keeping the stream aligned
			}
			tr.card = group + cardGroups*((rot+uint64((d-minDur)*c.pool.k+slot))%c.pool.group)
			tr.gateIn = int((g >> 32) % uint64(c.Stations[tr.o].Gates))
			tr.gateOut = int((g & 0xffffffff) % uint64(c.Stations[tr.d].Gates))
			slot++
			fn(&tr)
		}
	}
}

// orphanTap is a tap that belongs to no trip.
type orphanTap struct {
	station int
	time    int64
	card    uint64
	in      bool
	gate    int
}

// orphans calls fn for the unmatched taps of unix minute m.
func (c *City) orphans(m int64, fn func(*orphanTap)) {
	mod := c.minuteOfDay(m)
	rate := c.rhythm[c.dayTypeOf(m)].tripRate[mod]
	if rate == 0 {
		return
	}
	// Trips give two taps each; orphans are orphanShare of all taps.
	lam := rate * 2 * orphanShare / (1 - orphanShare) / 2
	r := newRNG(c.cfg.Seed, saltOrphan, uint64(m), 0)
	var o orphanTap
	for dir := 0; dir < 2; dir++ {
		o.in = dir == 0
		for n := r.poisson(lam); n > 0; n-- {
			o.station = c.sampleStation(r.float64())
			o.time = m*60 + int64(r.intn(60))
			o.card = c.pool.size + r.uint64()%c.pool.orphans
			if !o.in {
				o.card += c.pool.orphans
			}
			o.gate = r.intn(c.Stations[o.station].Gates)
			fn(&o)
		}
	}
}

// sampleStation draws a station by activity (home + work weight).
func (c *City) sampleStation(u float64) int {
	x := u * c.stationCum[len(c.stationCum)-1]
	lo, hi := 0, len(c.stationCum)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if c.stationCum[mid] > x {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// Card is a transit card id: 128 bits, written "C" + 32 hex digits like the
// hashed userIDs of the Hangzhou AFC data.
type Card [16]byte

// card is the id of pool card idx; the hash makes ids look random and differ
// by seed.
func (c *City) card(idx uint64) Card {
	h1 := seedOf(c.cfg.Seed, saltCard, idx, 0)
	h2 := mix64(h1 ^ 0x6a09e667f3bcc909)
	var id Card
	for i := 0; i < 8; i++ {
		id[i] = byte(h1 >> (56 - 8*i))
		id[8+i] = byte(h2 >> (56 - 8*i))
	}
	return id
}

const hexDigits = "0123456789abcdef"

// AppendText appends "C" and the 32 hex digits.
func (id Card) AppendText(dst []byte) ([]byte, error) { return id.appendTo(dst), nil }

// String is the card as text.
func (id Card) String() string { return string(id.appendTo(nil)) }

func (id Card) appendTo(dst []byte) []byte {
	dst = append(dst, 'C')
	for _, b := range id {
		dst = append(dst, hexDigits[b>>4], hexDigits[b&15])
	}
	return dst
}

package ingest

import (
	"strconv"
	"strings"
)

// Swipe is one transit-card tap as decoded from a request body.
//
// It holds no pointers of its own so that a decoder reuses one value for
// every line; its strings alias the decoder's buffers (see DecodeSwipes).
type Swipe struct {
	Time      int64 // unix milliseconds
	Card      string
	In        bool // true for a tap-in (entry), false for a tap-out (exit)
	Station   string
	Lat, Lng  float64
	HasLatLng bool
	Line      string
	Mode      string
	// Group is the card's category as the fare system writes it (the AFC
	// exports' payType), mapped to a rider group by -rider-groups.
	Group string
}

// Count is one camera or detector count of a class over an interval.
type Count struct {
	Time     int64 // unix milliseconds, start of the interval
	Sensor   string
	Class    string
	Count    int64
	Interval int64 // seconds; 60 when the input leaves it out
	Speed    float64
	HasSpeed bool
}

// Footfall is one scenic-site gate reading: entries and exits over an
// interval, or an instantaneous occupancy, or both.
type Footfall struct {
	Time         int64 // unix milliseconds
	Site         string
	Gate         string
	In, Out      int64
	Occupancy    int64
	HasOccupancy bool
}

// LineError says which line of a body was rejected and why.
//
// Value is the offending input as given, cut to maxErrorValueLen bytes; a
// swipe's is always empty, because raw card ids must never reach logs or
// answers and a shifted column can put one in any field.
type LineError struct {
	Line   int    `json:"line"`
	Field  string `json:"field,omitempty"`
	Value  string `json:"value,omitempty"`
	Reason string `json:"reason"`
	// More, on the LineError that ends a list cut short, is how many
	// invalid lines it stands for; 0 on the others, each one line.
	More int `json:"-"`
}

// Lines is how many rejected lines e stands for.
func (e *LineError) Lines() int { return max(1, e.More) }

// Error formats e as `line 3: field "count": value "-2": must not be negative`,
// leaving out the field and value parts when they are empty.
func (e *LineError) Error() string {
	var b strings.Builder
	b.WriteString("line ")
	b.WriteString(strconv.Itoa(e.Line))
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString("field ")
		b.WriteString(strconv.Quote(e.Field))
		b.WriteString(": ")
	}
	if e.Value != "" {
		b.WriteString("value ")
		b.WriteString(strconv.Quote(e.Value))
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

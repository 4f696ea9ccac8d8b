package city

import "strconv"

// Kind says which ingest endpoint an Event belongs to.
type Kind uint8

// Event kinds, one per ingest endpoint.
const (
	KindSwipe Kind = iota + 1
	KindCount
	KindFootfall
)

// String is the kind's endpoint name: "swipes", "counts" or "footfall".
func (k Kind) String() string {
	switch k {
	case KindSwipe:
		return "swipes"
	case KindCount:
		return "counts"
	case KindFootfall:
		return "footfall"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Path is the kind's ingest endpoint, e.g. /api/v1/ingest/swipes.
func (k Kind) Path() string { return "/api/v1/ingest/" + k.String() }

// Kinds lists the event kinds in the order Minute emits them.
var Kinds = [...]Kind{KindSwipe, KindCount, KindFootfall}

// Class is what a detector counted.
type Class uint8

// Detector classes.
const (
	ClassCar Class = iota
	ClassBus
	ClassBike
	ClassPerson
	ClassTruck
	numClasses
)

var classNames = [numClasses]string{"car", "bus", "bike", "person", "truck"}

// String is the class as the counts endpoint spells it.
func (c Class) String() string {
	if c < numClasses {
		return classNames[c]
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// Dir is a swipe's direction.
type Dir uint8

// Swipe directions.
const (
	DirIn Dir = iota + 1
	DirOut
)

// String is "in" or "out".
func (d Dir) String() string {
	if d == DirIn {
		return "in"
	}
	return "out"
}

// Event is one observation for an ingest endpoint. Which fields matter
// depends on Kind; ID is the station, sensor or site registry id. Events
// handed to callbacks are reused: copy one to keep it.
type Event struct {
	Kind Kind
	Time int64 // unix seconds
	ID   string

	Card Card   // swipe
	Dir  Dir    // swipe
	Line string // swipe

	Class    Class   // count
	Count    int     // count
	Interval int     // count: seconds the count covers
	Speed    float64 // count: mean km/h, 0 when not measured

	Gate    string // footfall
	In, Out int    // footfall: entries and exits
}

// CSV headers, one per kind, matching AppendCSV.
const (
	SwipesCSVHeader   = "time,card,dir,station,line\n"
	CountsCSVHeader   = "time,sensor,class,count,interval,speed\n"
	FootfallCSVHeader = "time,site,gate,in,out\n"
)

// CSVHeader is the header row AppendCSV's rows of kind k go under.
func CSVHeader(k Kind) string {
	switch k {
	case KindSwipe:
		return SwipesCSVHeader
	case KindCount:
		return CountsCSVHeader
	case KindFootfall:
		return FootfallCSVHeader
	}
	panic("BUG: unknown event kind " + k.String())
}

// appendSpeed writes km/h with one decimal without strconv's float path.
func appendSpeed(dst []byte, v float64) []byte {
	t := int(v*10 + 0.5)
	dst = strconv.AppendInt(dst, int64(t/10), 10)
	return append(dst, '.', byte('0'+t%10))
}

// AppendNDJSON appends e as one JSON line. Ids are the generator's own
// (letters, digits, '-'), so nothing needs escaping.
func AppendNDJSON(dst []byte, e *Event) []byte {
	dst = append(dst, `{"time":"`...)
	dst = appendRFC3339(dst, e.Time)
	switch e.Kind {
	case KindSwipe:
		dst = append(dst, `","card":"`...)
		dst = e.Card.appendTo(dst)
		dst = append(dst, `","dir":"`...)
		dst = append(dst, e.Dir.String()...)
		dst = append(dst, `","station":"`...)
		dst = append(dst, e.ID...)
		dst = append(dst, `","line":"`...)
		dst = append(dst, e.Line...)
		dst = append(dst, `"}`...)
	case KindCount:
		dst = append(dst, `","sensor":"`...)
		dst = append(dst, e.ID...)
		dst = append(dst, `","class":"`...)
		dst = append(dst, e.Class.String()...)
		dst = append(dst, `","count":`...)
		dst = strconv.AppendInt(dst, int64(e.Count), 10)
		dst = append(dst, `,"interval":`...)
		dst = strconv.AppendInt(dst, int64(e.Interval), 10)
		if e.Speed > 0 {
			dst = append(dst, `,"speed":`...)
			dst = appendSpeed(dst, e.Speed)
		}
		dst = append(dst, '}')
	case KindFootfall:
		dst = append(dst, `","site":"`...)
		dst = append(dst, e.ID...)
		dst = append(dst, `","gate":"`...)
		dst = append(dst, e.Gate...)
		dst = append(dst, `","in":`...)
		dst = strconv.AppendInt(dst, int64(e.In), 10)
		dst = append(dst, `,"out":`...)
		dst = strconv.AppendInt(dst, int64(e.Out), 10)
		dst = append(dst, '}')
	default:
		panic("BUG: unknown event kind " + e.Kind.String())
	}
	return append(dst, '\n')
}

// AppendCSV appends e as one CSV row under CSVHeader(e.Kind).
func AppendCSV(dst []byte, e *Event) []byte {
	dst = appendRFC3339(dst, e.Time)
	dst = append(dst, ',')
	switch e.Kind {
	case KindSwipe:
		dst = e.Card.appendTo(dst)
		dst = append(dst, ',')
		dst = append(dst, e.Dir.String()...)
		dst = append(dst, ',')
		dst = append(dst, e.ID...)
		dst = append(dst, ',')
		dst = append(dst, e.Line...)
	case KindCount:
		dst = append(dst, e.ID...)
		dst = append(dst, ',')
		dst = append(dst, e.Class.String()...)
		dst = append(dst, ',')
		dst = strconv.AppendInt(dst, int64(e.Count), 10)
		dst = append(dst, ',')
		dst = strconv.AppendInt(dst, int64(e.Interval), 10)
		dst = append(dst, ',')
		if e.Speed > 0 {
			dst = appendSpeed(dst, e.Speed)
		}
	case KindFootfall:
		dst = append(dst, e.ID...)
		dst = append(dst, ',')
		dst = append(dst, e.Gate...)
		dst = append(dst, ',')
		dst = strconv.AppendInt(dst, int64(e.In), 10)
		dst = append(dst, ',')
		dst = strconv.AppendInt(dst, int64(e.Out), 10)
	default:
		panic("BUG: unknown event kind " + e.Kind.String())
	}
	return append(dst, '\n')
}

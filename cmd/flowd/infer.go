package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/flowd/flowd/geo"
	"github.com/flowd/flowd/ingest"
)

// inferConfig holds the flags of destination inference for tap-in-only
// lines.
type inferConfig struct {
	on       bool
	walkKm   float64
	transfer time.Duration
	dayStart string
	tz       string
}

func inferFlags(fs *flag.FlagSet, c *inferConfig) {
	fs.BoolVar(&c.on, "infer-destinations", true, "infer where legs of lines without a tap-out end, from the card's next tap-in that day (trips_inferred, legs_inferred)")
	fs.Float64Var(&c.walkKm, "infer-walk", ingest.DefaultMaxWalkKm, "farthest, in km, an inferred alighting stop may lie from where the card next boards")
	fs.DurationVar(&c.transfer, "transfer-window", ingest.DefaultTransfer, "longest time between two tap-ins of one inferred trip; legs further apart are trips of their own")
	fs.StringVar(&c.dayStart, "service-day-start", "03:00", "time of day (HH:MM, in -service-tz) when the transit service day starts: a leg's destination is inferred from a tap-in of the same service day only")
	fs.StringVar(&c.tz, "service-tz", "", "IANA time zone of -service-day-start, e.g. America/Argentina/Buenos_Aires (default the server's local zone)")
}

// inference returns the Inference the flags ask for, nil when off, and
// its horizon: how long after a tap-in its leg's destination may be
// written.
func (c inferConfig) inference(reg *geo.Registry) (*ingest.Inference, time.Duration, error) {
	if !c.on {
		return nil, 0, nil
	}
	start, err := time.Parse("15:04", c.dayStart)
	if err != nil {
		return nil, 0, fmt.Errorf("-service-day-start %q: want HH:MM", c.dayStart)
	}
	loc := time.Local
	if c.tz != "" {
		if loc, err = time.LoadLocation(c.tz); err != nil {
			return nil, 0, fmt.Errorf("-service-tz %q: %w", c.tz, err)
		}
	}
	if c.walkKm <= 0 || c.walkKm > 5 {
		return nil, 0, fmt.Errorf("-infer-walk %v: want a distance in km above 0 and at most 5", c.walkKm)
	}
	if c.transfer <= 0 || c.transfer > 6*time.Hour {
		return nil, 0, fmt.Errorf("-transfer-window %v: want a positive duration of at most 6h", c.transfer)
	}
	return &ingest.Inference{
		Registry:  reg,
		MaxWalkKm: c.walkKm,
		Transfer:  c.transfer,
		DayStart:  time.Duration(start.Hour())*time.Hour + time.Duration(start.Minute())*time.Minute,
		Loc:       loc,
	}, 24 * time.Hour, nil
}

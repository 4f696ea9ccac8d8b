package main

import (
	"context"
	"log"
	"time"

	"github.com/flowd/flowd/demo/city"
)

// reportRejections logs, once an interval, how many of the demo feed's
// events the server rejected since the last report and why: the feed goes
// on when an operator replaces a registry under it (its swipes then name
// stations the server no longer knows), and the log says so.
func reportRejections(ctx context.Context, every time.Duration, feeders ...*city.Feeder) {
	t := time.NewTicker(every)
	defer t.Stop()
	var reported int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var total int64
		why := ""
		for _, f := range feeders {
			total += f.Rejected()
			if w := f.LastRejection(); w != "" {
				why = w
			}
		}
		if total > reported {
			log.Printf("flowd: demo feed: the server rejected %d of its events in the last %v and the feed goes on (was a registry replaced while it runs?); the last: %s", total-reported, every, why)
			reported = total
		}
	}
}

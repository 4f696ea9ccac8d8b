package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/flowd/flowd/demo/city"
)

// feed sends the synthetic city to a running flowd: registries first, then
// events for a past span as fast as it takes them, or live.
func feed(args []string) error {
	fs := flag.NewFlagSet("feed", flag.ContinueOnError)
	url := fs.String("url", "http://127.0.0.1:8080", "flowd to feed")
	token := fs.String("token", "", "bearer token with the ingest role")
	scale := fs.Float64("scale", 0.05, "size of the city's traffic (1 = a realistic day)")
	seed := fs.Int64("seed", 1, "random seed; the same seed gives the same city and events")
	live := fs.Bool("live", false, "follow the wall clock instead of sending a past span")
	span := fs.Duration("span", 24*time.Hour, "past span to send, ending now (without -live)")
	shift := fs.Duration("shift", 0, "move the city's hours: at time t it lives Hangzhou's t+shift")
	batch := fs.Int("batch", 5000, "events per request")
	senders := fs.Int("senders", 4, "requests in flight")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := demoCityConfig(*scale, shift.Truncate(time.Minute))
	cfg.Seed = *seed
	c := city.New(cfg)
	f := &city.Feeder{URL: *url, Token: *token, BatchSize: *batch, Senders: *senders, Live: *live}
	if err := f.PutRegistries(ctx, c); err != nil {
		return err
	}
	now := time.Now().Truncate(time.Minute)
	from, to := now.Add(-*span), now
	if *live {
		from, to = now, now.Add(100*365*24*time.Hour)
	}
	start := time.Now()
	var sent int64
	err := f.Run(ctx, c, from, to, func(n int64) {
		sent = n
		fmt.Fprintf(os.Stderr, "\rsent %d events (%.0f/s)", n, float64(n)/time.Since(start).Seconds())
	})
	fmt.Fprintf(os.Stderr, "\nsent %d events in %v; %d rejected\n", sent, time.Since(start).Round(time.Millisecond), f.Rejected())
	if ctx.Err() != nil {
		return nil
	}
	return err
}
